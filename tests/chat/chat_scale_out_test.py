#!/usr/bin/python3
# Two tulipa-chat instances sharing rooms through a real redis-server and one real PostgreSQL 15 (the postgres_server
# fixture; a database of this test's own): a browser-like WebSocket user and a TCP user on instance A, a TCP user
# and a WebSocket user on instance B.
# - everyone sees the room's messages in one order (ids increasing, the same texts in the same order on every
#   client, terminal or browser), each exactly once, while users on both instances write at once;
# - Redis is killed: each instance keeps serving its own clients; Redis comes back on the same port, the instances
#   resubscribe and read what they missed from the shared store: still one order, no loss, no duplicate;
# - a page that reconnects to the other instance with the last id it saw gets exactly what it missed (from the
#   store: the ring is kept small with --history 3);
# - nicks are unique across the instances (case-insensitively), a page that comes back asking for a nick held on
#   the other instance stays a guest; private messages reach users (and guests) on the other instance, both ways,
#   also after Redis came back empty (each instance claims its nicks again); a message to nobody says so;
# - an instance dies (SIGKILL): once its liveness (--redis-liveness 1) ran out its nicks are free on the other one,
#   and messages to its users say that nobody is called so;
# - SIGTERM: the survivor exits 0.
# Usage: chat_scale_out_test.py TULIPA_CHAT_BINARY PG_STATE_FILE (run by CTest with the postgres_server fixture).
import asyncio, json, os, signal, socket, subprocess, sys, tempfile, time

import websockets

BIN, PG_STATE = sys.argv[1], sys.argv[2]
WATCHDOG = 60  # seconds: a bound on each wait, not a timing assertion


def pg_state():
    env = {}
    for line in open(PG_STATE):
        k, _, v = line.strip().partition("=")
        env[k] = v.strip('"')
    return env


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    def __init__(self, tmp):
        self.dir, self.port, self.proc = tmp, free_port(), None

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + WATCHDOG
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            assert time.monotonic() < deadline and self.proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)

    def kill(self):
        self.proc.kill()
        self.proc.wait()


class Instance:
    def __init__(self, name, store, redis_url, history):
        self.name = name
        self.proc = subprocess.Popen([BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--store", store,
                                      "--redis", redis_url, "--redis-liveness", "1", "--history", str(history)],
                                     stdout=subprocess.PIPE, text=True)
        while True:
            line = self.proc.stdout.readline()
            assert line, name + " exited before serving"
            if "line clients on" in line:
                self.tcp_port = int(line.split("127.0.0.1:")[1].split(":")[0])
            if "browsers on" in line:
                self.http = line.split("browsers on ")[1].strip()
                break
        self.ws_url = self.http.replace("http://", "ws://") + "ws"
        self.origin = self.http.rstrip("/")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(WATCHDOG) == 0, self.name + " did not exit 0 on SIGTERM"


class TcpUser:
    """A terminal: the room's messages as 'nick: text' in the order it got them."""
    async def connect(self, port, nick):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.seen = []
        await self.send("/nick " + nick)
        await self.until_line("* you are " + nick)
        return self

    async def connect_guest(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.seen = []
        self.nick = (await self.until_line("* you are ")).split("* you are ")[1].strip()
        return self

    async def send(self, line):
        self.writer.write((line + "\n").encode())
        await self.writer.drain()

    async def until_line(self, *texts):
        """The first line holding one of `texts`."""
        async def loop():
            while True:
                line = (await self.reader.readline()).decode()
                assert line, "EOF"
                self.note(line)
                if any(t in line for t in texts):
                    return line
        return await asyncio.wait_for(loop(), WATCHDOG)

    async def ask_until(self, line, wanted, refused):
        """Sends `line` again while the answer is `refused`, until it is `wanted` (what changes is time: a
        liveness running out, an instance claiming its nicks again); bounded by WATCHDOG."""
        deadline = time.monotonic() + WATCHDOG
        while True:
            await self.send(line)
            got = await self.until_line(wanted, refused)
            if wanted in got:
                return
            assert time.monotonic() < deadline, "still %r after %d s" % (got, WATCHDOG)
            await asyncio.sleep(0.1)

    def note(self, line):
        # "HH:MM:SS #lobby <nick> text"
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) == 3 and parts[1] == "#lobby" and parts[2].startswith("<"):
            nick, _, text = parts[2][1:].partition("> ")
            self.seen.append(nick + ": " + text)

    async def until_count(self, n):
        async def loop():
            while len(self.seen) < n:
                line = (await self.reader.readline()).decode()
                assert line, "EOF"
                self.note(line)
        await asyncio.wait_for(loop(), WATCHDOG)


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
    pg = pg_state()
    db = "chat_scale_out"
    psql = [pg["PG_BIN"] + "/psql", "-h", "127.0.0.1", "-p", pg["PG_PORT"], "-U", "postgres", "-d", "postgres",
            "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    subprocess.run(psql + ["DROP DATABASE IF EXISTS %s WITH (FORCE)" % db], check=True, capture_output=True)
    subprocess.run(psql + ["CREATE DATABASE " + db], check=True)
    store = "postgres://postgres@127.0.0.1:%s/%s" % (pg["PG_PORT"], db)

    with tempfile.TemporaryDirectory() as tmp:
        redis = Redis(tmp)
        redis.start()
        redis_url = "redis://127.0.0.1:%d" % redis.port
        a = Instance("A", store, redis_url, 3)
        b = Instance("B", store, redis_url, 3)
        try:
            page_a = await WsUser().connect(a, "pagea")
            term_a = await TcpUser().connect(a.tcp_port, "terma")
            term_b = await TcpUser().connect(b.tcp_port, "termb")
            page_b = await WsUser().connect(b, "pageb")
            users = [page_a, term_a, term_b, page_b]

            # Everyone writes at once, on both instances.
            for i in range(10):
                await page_a.ws.send("a-page %d" % i)
                await term_a.send("a-term %d" % i)
                await term_b.send("b-term %d" % i)
                await page_b.ws.send("b-page %d" % i)
            n = 40
            for u in users:
                await u.until_count(n)
            same_order(users, n)

            # Nicks are unique across the instances, whatever their case; a page asking for one held on the other
            # instance stays a guest.
            await term_a.send("/nick TermB")
            await term_a.until_line("! the nick TermB is taken")
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
            for t in (term_a, term_b, guest_b):
                t.writer.close()
        finally:
            for inst in (a, b):
                if inst.proc.poll() is None:
                    inst.stop()
            assert b.proc.returncode == -signal.SIGKILL and a.proc.returncode == 0
            if redis.proc.poll() is None:
                redis.kill()
    subprocess.run(psql + ["DROP DATABASE IF EXISTS %s WITH (FORCE)" % db], capture_output=True)


asyncio.run(main())
print("chat_scale_out_test: ok")
