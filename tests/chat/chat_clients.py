# What the chat's Python tests share (chat_loops_test.py, chat_scale_out_test.py): a terminal user on a real socket,
# the server under test started from its binary, a redis-server of the test's own, and the PostgreSQL fixture's
# address. Every wait is bounded by WATCHDOG (a bound, not a timing assertion); nothing sleeps to synchronise.
import asyncio, signal, socket, subprocess, time

WATCHDOG = 60  # seconds


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pg_state(path):
    """The postgres_server fixture's state file (tests/postgres/pg_server.sh) as a dict: PG_BIN, PG_PORT, ..."""
    env = {}
    for line in open(path):
        k, _, v = line.strip().partition("=")
        env[k] = v.strip('"')
    return env


class PgDatabase:
    """A database of the test's own on the fixture's server, dropped and made again; `url` is the chat's --store."""
    def __init__(self, state_file, name):
        pg = pg_state(state_file)
        self.psql = [pg["PG_BIN"] + "/psql", "-h", "127.0.0.1", "-p", pg["PG_PORT"], "-U", "postgres", "-d",
                     "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c"]
        self.name = name
        self.drop()
        subprocess.run(self.psql + ["CREATE DATABASE " + name], check=True)
        self.url = "postgres://postgres@127.0.0.1:%s/%s" % (pg["PG_PORT"], name)

    def drop(self):
        subprocess.run(self.psql + ["DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name], check=True,
                       capture_output=True)


class Redis:
    """A redis-server on a free port of 127.0.0.1, with nothing saved; start() waits until it answers PING."""
    def __init__(self, tmp):
        self.dir, self.port, self.proc = tmp, free_port(), None
        self.url = "redis://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + WATCHDOG
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            assert time.monotonic() < deadline and self.proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)  # polling a process that is starting: nothing to wait on

    def kill(self):
        self.proc.kill()
        self.proc.wait()


class Chat:
    """tulipa-chat started with `args` on free ports; it has said where line clients and browsers connect."""
    def __init__(self, binary, args, name="chat"):
        self.name = name
        self.proc = subprocess.Popen([binary, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"] + args,
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
        await self.connect_guest(port)
        await self.send("/nick " + nick)
        await self.until_line("* you are " + nick)
        self.nick = nick
        return self

    async def connect_guest(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.seen = []
        self.nick = (await self.until_line("* you are ")).split("* you are ")[1].strip()
        return self

    def instance(self):
        """The instance (or loop) that named this guest: N in guest-N-M."""
        return self.nick.split("-")[1]

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

    def close(self):
        self.writer.close()


async def one_per_instance(port, count, tries=64):
    """Guests connected to `port` until `count` instances (the loops of --loops N) named one each: {instance: user},
    and the spare ones. The kernel spreads connections over the loops (SO_REUSEPORT); bounded by `tries`."""
    by_instance, spare = {}, []
    for _ in range(tries):
        u = await TcpUser().connect_guest(port)
        if u.instance() in by_instance:
            spare.append(u)
        else:
            by_instance[u.instance()] = u
        if len(by_instance) == count:
            break
    assert len(by_instance) == count, by_instance.keys()
    return by_instance, spare
