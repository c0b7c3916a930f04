#!/usr/bin/python3
# Two tulipa-chat instances sharing rooms through a real redis-server and one real PostgreSQL 15 (the postgres_server
# fixture; a database of this test's own): a browser-like WebSocket user and a TCP user on each of the two loops of
# instance A (--loops 2: each loop is an instance for Redis, and the loops also share rooms in-process), a TCP user
# and a WebSocket user on instance B.
# - everyone sees the room's messages in one order (ids increasing, the same texts in the same order on every
#   client, terminal or browser), each exactly once, while users on both instances write at once;
# - Redis is killed: each instance keeps serving its own clients; Redis comes back on the same port, the instances
#   resubscribe and read what they missed from the shared store: still one order, no loss, no duplicate;
# - a page that reconnects to the other instance with the last id it saw gets exactly what it missed (from the
#   store: the ring is kept small with --history 3);
# - nicks are unique across the instances and loops (case-insensitively), a page that comes back asking for a nick held on
#   the other instance stays a guest; private messages reach users (and guests) on the other instance, both ways,
#   also after Redis came back empty (each instance claims its nicks again); a message to nobody says so;
# - an instance dies (SIGKILL): once its liveness (--redis-liveness 1) ran out its nicks are free on the other one,
#   and messages to its users say that nobody is called so;
# - SIGTERM: the survivor exits 0.
# Usage: chat_scale_out_test.py TULIPA_CHAT_BINARY PG_STATE_FILE (run by CTest with the postgres_server fixture).
import asyncio, json, signal, sys, tempfile

import websockets

from chat_clients import WATCHDOG, Chat, PgDatabase, Redis, TcpUser, one_per_instance

BIN, PG_STATE = sys.argv[1], sys.argv[2]


class WsUser:
    """A page: the room's messages (id, 'nick: text') in the order it got them."""
    async def connect(self, inst, nick, after=None):
        query = "?nick=" + nick + "&room=lobby" + ("&after=%d" % after if after is not None else "")
        self.ws = await websockets.connect(inst.ws_url + query, origin=inst.origin)
        self.seen = []
        await self.until(lambda e: e["type"] == "you_are")
        return self

    def note(self, e):
        if e["type"] == "message" and e["room"] == "lobby":
            self.seen.append((e["id"], e["nick"] + ": " + e["text"]))

    async def until(self, pred):
        async def loop():
            while True:
                for line in (await self.ws.recv()).split("\n"):
                    if not line:
                        continue
                    e = json.loads(line)
                    self.note(e)
                    if pred(e):
                        return e
        return await asyncio.wait_for(loop(), WATCHDOG)

    async def until_count(self, n):
        if len(self.seen) < n:
            await self.until(lambda e: len(self.seen) >= n)


def same_order(users, n):
    """Every user saw the same n messages in the same order, each once; the pages saw increasing ids."""
    ref = None
    for u in users:
        texts = [s[1] if isinstance(s, tuple) else s for s in u.seen]
        assert len(texts) == n, (len(texts), n, texts)
        assert len(set(texts)) == n, "a duplicate: %s" % texts
        if isinstance(u, WsUser):
            ids = [s[0] for s in u.seen]
            assert ids == sorted(ids) and len(set(ids)) == n, ids
        if ref is None:
            ref = texts
        assert texts == ref, "two orders:\n%s\n%s" % (ref, texts)
    return ref


async def main():
    db = PgDatabase(PG_STATE, "chat_scale_out")
    with tempfile.TemporaryDirectory() as tmp:
        redis = Redis(tmp)
        redis.start()
        args = ["--store", db.url, "--redis", redis.url, "--redis-liveness", "1", "--history", "3"]
        a = Chat(BIN, args + ["--loops", "2"], "A")
        b = Chat(BIN, args, "B")
        try:
            page_a = await WsUser().connect(a, "pagea")
            # A runs two loops, each an instance for Redis: a terminal on each.
            by_loop, spare = await one_per_instance(a.tcp_port, 2)
            term_a, term_a2 = by_loop.values()
            for u in spare:
                u.close()
            for u, nick in ((term_a, "terma"), (term_a2, "terma2")):
                await u.send("/nick " + nick)
                await u.until_line("* you are " + nick)
            term_b = await TcpUser().connect(b.tcp_port, "termb")
            page_b = await WsUser().connect(b, "pageb")
            users = [page_a, term_a, term_a2, term_b, page_b]

            # Everyone writes at once, on both instances and both of A's loops.
            for i in range(10):
                await page_a.ws.send("a-page %d" % i)
                await term_a.send("a-term %d" % i)
                await term_a2.send("a2-term %d" % i)
                await term_b.send("b-term %d" % i)
                await page_b.ws.send("b-page %d" % i)
            n = 50
            for u in users:
                await u.until_count(n)
            same_order(users, n)

            # Nicks are unique across the instances and A's loops, whatever their case; a page asking for one held
            # on the other instance stays a guest.
            await term_a.send("/nick TermB")
            await term_a.until_line("! the nick TermB is taken")
            await term_a2.send("/nick TERMA")
            await term_a2.until_line("! the nick TERMA is taken")
            await term_b.send("/nick PAGEA")
            await term_b.until_line("! the nick PAGEA is taken")
            thief = WsUser()
            await thief.connect(b, "TermA")
            await thief.until(lambda e: e["type"] == "error" and "TermA is taken" in e["text"])
            await thief.ws.close()
            # Private messages cross the instances, both ways, and reach guests; one to nobody says so.
            await term_a.send("/msg TERMB psst from a")
            await term_b.until_line("[terma -> you] psst from a")
            await term_a.until_line("[you -> TERMB] psst from a")
            await term_b.send("/msg pagea back from b")
            await page_a.until(lambda e: e["type"] == "private_in" and e["text"] == "back from b" and
                               e["nick"] == "termb")
            await term_b.until_line("[you -> pagea] back from b")
            guest_b = await TcpUser().connect_guest(b.tcp_port)
            await term_a.send("/msg %s hello guest" % guest_b.nick)
            await guest_b.until_line("[terma -> you] hello guest")
            # ... and between A's loops.
            await term_a.send("/msg TermA2 between loops")
            await term_a2.until_line("[terma -> you] between loops")
            await term_a2.send("/msg terma and back")
            await term_a.until_line("[terma2 -> you] and back")
            await term_a.send("/msg nobody1 anyone?")
            await term_a.until_line("! nobody is called nobody1")

            # Redis goes away. Each instance keeps serving its own clients...
            redis.kill()
            await term_b.send("b while redis is away")
            await term_b.until_line("<termb> b while redis is away")
            await page_a.ws.send("a while redis is away")
            await page_a.until(lambda e: e.get("text") == "a while redis is away")
            # ... and once it is back, both resubscribe and read what they missed from the store.
            redis.start()
            n += 2
            for u in users:
                await u.until_count(n)
            # Redis came back empty: each instance claims its nicks again, and private messages cross again.
            await term_a.ask_until("/msg termb after the outage", "[you -> termb] after the outage",
                                   "! nobody is called termb")
            await term_b.until_line("[terma -> you] after the outage")
            # After the outage, messages flow through Redis again.
            await term_b.send("b after redis came back")
            await page_a.ws.send("a after redis came back")
            n += 2
            for u in users:
                await u.until_count(n)
            order = same_order(users, n)

            # A page that saw only the first 5 messages comes back on the other instance: the rest, from the
            # store (beyond the ring of 3), in the same order, once.
            fifth_id = page_a.seen[4][0]
            await page_a.ws.close()
            back = WsUser()
            await back.connect(b, "pagea", after=fifth_id)
            await back.until_count(n - 5)
            assert [s[1] for s in back.seen] == order[5:], [s[1] for s in back.seen]
            await back.ws.close()
            await page_b.ws.close()

            # B dies: once its liveness ran out, its nicks are A's to give, and its users are nobody.
            b.proc.kill()
            b.proc.wait()
            await term_a.ask_until("/msg %s still there?" % guest_b.nick, "! nobody is called " + guest_b.nick,
                                   "[you -> " + guest_b.nick)
            await term_a.ask_until("/nick termb", "* you are termb", "! the nick termb is taken")
            for t in (term_a, term_a2, term_b, guest_b):
                t.close()
        finally:
            for inst in (a, b):
                if inst.proc.poll() is None:
                    inst.stop()
            assert b.proc.returncode == -signal.SIGKILL and a.proc.returncode == 0
            if redis.proc.poll() is None:
                redis.kill()
    db.drop()


asyncio.run(main())
print("chat_scale_out_test: ok")
