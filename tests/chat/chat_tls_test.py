#!/usr/bin/python3
# tulipa-chat --tls CERT KEY with a certificate generated for the test: the page over https, its WebSocket over
# wss (a user there chats with a TLS line client), the certificate verified by the clients; nothing is served in
# clear on those ports.
# Usage: chat_tls_test.py TULIPA_CHAT_BINARY (run by CTest).
import asyncio, json, os, socket, ssl, subprocess, sys, tempfile, urllib.request

import websockets

BIN = sys.argv[1]
WATCHDOG = 30  # seconds: a bound on each wait, not a timing assertion


async def until(ws, pred):
    async def loop():
        while True:
            for line in (await ws.recv()).split("\n"):
                if line and pred(json.loads(line)):
                    return json.loads(line)
    return await asyncio.wait_for(loop(), WATCHDOG)


def read_until(sock, buf, text):
    while text not in buf[0]:
        data = sock.recv(65536)
        if not data:
            raise AssertionError("EOF before " + text + " in " + buf[0])
        buf[0] += data.decode()


async def main():
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        proc = subprocess.Popen([BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--store",
                                 "sqlite:" + os.path.join(tmp, "chat.db"), "--tls", cert, key],
                                stdout=subprocess.PIPE, text=True)
        try:
            tcp_port = http_url = None
            while http_url is None:
                line = proc.stdout.readline()
                assert line, "the server exited"
                if "line clients on" in line:
                    assert "(TLS)" in line, line
                    tcp_port = int(line.split("127.0.0.1:")[1].split(" ")[0])
                if "browsers on" in line:
                    http_url = line.split("browsers on ")[1].strip()
            assert http_url.startswith("https://127.0.0.1:"), http_url
            host = http_url[len("https://"):].rstrip("/")
            ctx = ssl.create_default_context(cafile=cert)

            # The page over https, verified against the generated certificate.
            page = urllib.request.urlopen(http_url, context=ctx, timeout=WATCHDOG).read().decode()
            assert '<script src="/app.js">' in page, page
            # Nothing in clear: a plain HTTP request gets no page.
            with socket.create_connection(("127.0.0.1", int(host.split(":")[1])), timeout=WATCHDOG) as plain:
                plain.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
                try:
                    answer = plain.recv(65536)
                except ConnectionResetError:
                    answer = b""
                assert b"<script" not in answer, answer

            # A TLS line client and a wss user in one room.
            raw = socket.create_connection(("127.0.0.1", tcp_port), timeout=WATCHDOG)
            term = ctx.wrap_socket(raw, server_hostname="localhost")
            tbuf = [""]
            term.sendall(b"/nick terminal\n")
            read_until(term, tbuf, "* you are terminal\n")
            async with websockets.connect("wss://" + host + "/ws?nick=secure", ssl=ctx,
                                          origin="https://" + host) as ws:
                await until(ws, lambda e: e["type"] == "members" and "terminal" in e["names"])
                await ws.send("over wss")
                read_until(term, tbuf, "<secure> over wss\n")
                term.sendall(b"over tls\n")
                m = await until(ws, lambda e: e["type"] == "message" and e["nick"] == "terminal")
                assert m["text"] == "over tls", m
            # Another site's page is refused over wss too.
            try:
                async with websockets.connect("wss://" + host + "/ws", ssl=ctx, origin="https://evil.example"):
                    raise AssertionError("a foreign Origin was accepted")
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 403, e
            term.close()
        finally:
            proc.terminate()
            assert proc.wait(WATCHDOG) == 0


asyncio.run(main())
print("chat_tls_test: ok")
