#!/usr/bin/python3
# tulipa-chat --loops 2: two loops (threads) on the same ports (SO_REUSEPORT), one SQLite store, rooms shared.
# - TCP clients connect until both loops hold one (a guest's name says its loop: guest-0-..., guest-1-...);
# - members on different loops see the room's messages in one order, each once, while both write at once;
# - nicks are unique across the loops, private messages cross them;
# - SIGTERM: exit 0.
# Usage: chat_loops_test.py TULIPA_CHAT_BINARY
import asyncio, os, signal, subprocess, sys, tempfile

BIN = sys.argv[1]
WATCHDOG = 30  # seconds: a bound on each wait, not a timing assertion


class TcpUser:
    async def connect(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.seen = []
        line = await self.until_line("* you are ")
        self.nick = line.split("* you are ")[1].strip()
        return self

    async def send(self, line):
        self.writer.write((line + "\n").encode())
        await self.writer.drain()

    async def until_line(self, *texts):
        async def loop():
            while True:
                line = (await self.reader.readline()).decode()
                assert line, "EOF"
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3 and parts[1] == "#lobby" and parts[2].startswith("<"):
                    self.seen.append(parts[2])
                if any(t in line for t in texts):
                    return line
        return await asyncio.wait_for(loop(), WATCHDOG)

    async def until_count(self, n):
        while len(self.seen) < n:
            await self.until_line("\n")


async def main():
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--loops", "2", "--store",
                                 "sqlite:" + os.path.join(tmp, "chat.db")], stdout=subprocess.PIPE, text=True)
        try:
            port = None
            while True:
                line = proc.stdout.readline()
                assert line, "exited before serving"
                if "line clients on" in line:
                    port = int(line.split("127.0.0.1:")[1].split(":")[0])
                if "browsers on" in line:
                    break
            # The kernel spreads connections over the loops: connect until each loop holds one (bounded).
            by_loop, spare = {}, []
            for _ in range(64):
                u = await TcpUser().connect(port)
                loop = u.nick.split("-")[1]
                if loop in by_loop:
                    spare.append(u)
                else:
                    by_loop[loop] = u
                if len(by_loop) == 2:
                    break
            assert sorted(by_loop) == ["0", "1"], by_loop.keys()
            a, b = by_loop["0"], by_loop["1"]
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
                u.writer.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(WATCHDOG) == 0, "did not exit 0 on SIGTERM"


asyncio.run(main())
print("chat_loops_test: ok")
