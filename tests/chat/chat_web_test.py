#!/usr/bin/python3
# The web side of the real tulipa-chat binary, with real sockets: the page is served, a WebSocket user and a TCP
# user chat in one room, an XSS attempt arrives as an escaped JSON string, a reconnect with the last id it saw gets
# exactly the messages it missed, a burst past the flood gate arrives whole and in order, and an upgrade from
# another site's Origin is refused (403).
# Usage: chat_web_test.py TULIPA_CHAT_BINARY (run by CTest).
import asyncio, json, os, socket, subprocess, sys, tempfile, urllib.request

import websockets

BIN = sys.argv[1]


def events(message):
    return [json.loads(line) for line in message.split("\n") if line]


async def until(ws, pred):
    """Receives JSON-line messages until pred(event) holds for one; returns it (a 30 s watchdog, not a timing test)."""
    async def loop():
        while True:
            for e in events(await ws.recv()):
                if pred(e):
                    return e
    return await asyncio.wait_for(loop(), 30)


def read_until(sock, buf, text):
    while text not in buf[0]:
        data = sock.recv(65536)
        if not data:
            raise AssertionError("EOF before " + text)
        buf[0] += data.decode()


async def main():
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--store",
                                 "sqlite:" + os.path.join(tmp, "chat.db")], stdout=subprocess.PIPE, text=True)
        try:
            lines = [proc.stdout.readline() for _ in range(3)]
            tcp_port = int(lines[1].split("127.0.0.1:")[1].split(":")[0])
            http_url = lines[2].split("browsers on ")[1].strip()
            ws_url = http_url.replace("http://", "ws://") + "ws"
            host = http_url[len("http://"):].rstrip("/")

            page = urllib.request.urlopen(http_url).read().decode()
            assert '<script src="/app.js">' in page, page
            js = urllib.request.urlopen(http_url + "app.js").read().decode()
            assert "textContent" in js and "innerHTML" not in js

            tcp = socket.create_connection(("127.0.0.1", tcp_port), timeout=30)
            tbuf = [""]
            tcp.sendall(b"/nick terminal\n")
            read_until(tcp, tbuf, "* you are terminal\n")

            origin = "http://" + host
            async with websockets.connect(ws_url + "?nick=webby", origin=origin) as ws:
                await until(ws, lambda e: e["type"] == "members" and "terminal" in e["names"])
                xss = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
                await ws.send(xss)
                m = await until(ws, lambda e: e["type"] == "message")
                assert m["text"] == xss and m["nick"] == "webby", m
                first_id = m["id"]
                read_until(tcp, tbuf, "<webby> " + xss + "\n")
                tcp.sendall("from the terminal \x1b[31mred\n".encode())
                t = await until(ws, lambda e: e["type"] == "message" and e["nick"] == "terminal")
                assert t["text"] == "from the terminal \\x1b[31mred", t

            # While the page is away, two more messages; on its return it asks for what came after first_id.
            tcp.sendall(b"missed one\nmissed two\n")
            read_until(tcp, tbuf, "<terminal> missed two\n")
            async with websockets.connect(ws_url + "?nick=webby&room=lobby&after=%d" % first_id, origin=origin) as ws:
                got = []
                async def collect():
                    while len(got) < 3:
                        got.extend(e for e in events(await ws.recv()) if e["type"] == "message")
                await asyncio.wait_for(collect(), 30)
                texts = [e["text"] for e in got]
                assert texts == ["from the terminal \\x1b[31mred", "missed one", "missed two"], texts
                assert all(e["history"] for e in got)
                ids = [e["id"] for e in got]
                assert ids == sorted(ids) and ids[0] > first_id, ids

            # A burst past the flood gate (20 lines at once, then 5 a second): the messages that must wait are
            # queued while the socket is not read, and reach the room in order as the gate allows, none lost.
            async with websockets.connect(ws_url + "?nick=burst", origin=origin) as ws:
                await until(ws, lambda e: e["type"] == "members")
                for i in range(24):
                    await ws.send("burst %d" % i)
                read_until(tcp, tbuf, "<burst> burst 23\n")
                got = [line[line.index("<burst> "):] for line in tbuf[0].split("\n") if "<burst> " in line]
                assert got == ["<burst> burst %d" % i for i in range(24)], got

            try:
                async with websockets.connect(ws_url, origin="http://evil.example"):
                    raise AssertionError("a foreign Origin was accepted")
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 403, e
            tcp.close()
        finally:
            proc.terminate()
            assert proc.wait(30) == 0


asyncio.run(main())
print("chat_web_test: ok")
