#!/usr/bin/python3
# tulipa-chat --loops 2: two loops (threads) on the same ports (SO_REUSEPORT), one store, rooms shared. On SQLite
# (one writer for both loops), on PostgreSQL (--pg: a connection per loop, the loop bus), or on SQLite with --redis
# (--redis: a redis-server of the test's own; each loop is an instance for Redis, nicks and private messages go
# through it):
# - TCP clients connect until both loops hold one (a guest's name says its loop: guest-N-...);
# - members on different loops see the room's messages in one order, each once, while both write at once;
# - nicks are unique across the loops, private messages cross them;
# - SIGTERM: exit 0.
# Usage: chat_loops_test.py TULIPA_CHAT_BINARY [--pg PG_STATE_FILE | --redis]
import asyncio, os, sys, tempfile

from chat_clients import Chat, PgDatabase, Redis, one_per_instance

BIN = sys.argv[1]
MODE = sys.argv[2] if len(sys.argv) > 2 else "sqlite"


async def scenario(chat):
    by_loop, spare = await one_per_instance(chat.tcp_port, 2)
    a, b = by_loop.values()
    await a.send("/nick alice")
    await a.until_line("* you are alice")
    await b.send("/nick ALICE")
    await b.until_line("! the nick ALICE is taken")
    await b.send("/nick bob")
    await b.until_line("* you are bob")
    # Both write at once: one order for both, each message once.
    for i in range(20):
        await a.send("a%d" % i)
        await b.send("b%d" % i)
    await a.until_count(40)
    await b.until_count(40)
    assert len(set(a.seen)) == 40, a.seen
    assert a.seen == b.seen, (a.seen, b.seen)
    # Private messages across the loops, both ways.
    await a.send("/msg BOB hi bob")
    await b.until_line("[alice -> you] hi bob")
    await b.send("/msg alice hi alice")
    await a.until_line("[bob -> you] hi alice")
    for u in [a, b] + spare:
        u.close()


async def main():
    with tempfile.TemporaryDirectory() as tmp:
        args, pg, redis = ["--loops", "2"], None, None
        if MODE == "--pg":
            pg = PgDatabase(sys.argv[3], "chat_loops")
            args += ["--store", pg.url]
        else:
            args += ["--store", "sqlite:" + os.path.join(tmp, "chat.db")]
        if MODE == "--redis":
            redis = Redis(tmp)
            redis.start()
            args += ["--redis", redis.url]
        try:
            chat = Chat(BIN, args)
            try:
                await scenario(chat)
            finally:
                chat.stop()
        finally:
            if redis:
                redis.kill()
            if pg:
                pg.drop()


asyncio.run(main())
print("chat_loops_test %s: ok" % MODE)
