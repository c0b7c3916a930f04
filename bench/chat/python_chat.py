#!/usr/bin/python3
# The Python peer of tulipa-chat for bench/chat/run.sh: a small idiomatic chat on asyncio (streams for TCP line
# clients) and websockets (Debian python3-websockets; no permessage-deflate, as tulipa-chat's default), with what
# chat_load uses of the chat: rooms, "/join ROOM", and every other line (or WebSocket message) said in the room and
# delivered to each member, the sender included: a JSON object to a WebSocket (websockets.broadcast), "12:34:56
# #room <nick> text" to a TCP client. A joiner is told its room and how many are in it; joins are not announced (as
# tulipa-chat in rooms above 100 members).
#   python_chat.py TCP_PORT WS_PORT        prints "ready" once both listen on 127.0.0.1
import asyncio
import itertools
import json
import sys
import time

import websockets

rooms = {}  # name -> set of members
guests = itertools.count(1)


class Member:
    __slots__ = ("ws", "writer", "nick", "room")

    def __init__(self, ws=None, writer=None):
        self.ws, self.writer, self.nick, self.room = ws, writer, f"guest-{next(guests)}", None

    def notice(self, obj, text):
        if self.ws is not None:
            websockets.broadcast((self.ws,), json.dumps(obj))
        else:
            self.writer.write((text + "\n").encode())


def join(m, room):
    leave(m)
    m.room = room
    r = rooms.setdefault(room, set())
    r.add(m)
    m.notice({"type": "members", "room": room, "count": len(r)}, f"* in #{room} ({len(r)})")


def leave(m):
    r = rooms.get(m.room)
    if r is not None:
        r.discard(m)
        if not r:
            del rooms[m.room]


def say(m, text):
    now = time.time()
    members = rooms[m.room]
    socks = [o.ws for o in members if o.ws is not None]
    if socks:
        msg = {"type": "message", "time": int(now * 1000), "room": m.room, "nick": m.nick, "text": text}
        websockets.broadcast(socks, json.dumps(msg))
    line = None
    for o in members:
        if o.writer is not None:
            if line is None:
                line = f"{time.strftime('%H:%M:%S', time.gmtime(now))} #{m.room} <{m.nick}> {text}\n".encode()
            o.writer.write(line)


def receive(m, text):
    if text.startswith("/join "):
        join(m, text[6:].strip().lower())
    elif text.strip():
        say(m, text)


async def ws_client(ws, *path):
    m = Member(ws=ws)
    join(m, "lobby")
    try:
        async for message in ws:
            if isinstance(message, str):
                receive(m, message)
    except websockets.ConnectionClosed:
        pass
    finally:
        leave(m)


async def tcp_client(reader, writer):
    m = Member(writer=writer)
    join(m, "lobby")
    try:
        while line := await reader.readline():
            receive(m, line.decode("utf-8", "replace").rstrip("\r\n"))
    except (ConnectionError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        leave(m)
        writer.close()


async def main():
    tcp_port, ws_port = int(sys.argv[1]), int(sys.argv[2])
    tcp = await asyncio.start_server(tcp_client, "127.0.0.1", tcp_port, backlog=4096)
    async with websockets.serve(ws_client, "127.0.0.1", ws_port, compression=None, backlog=4096):
        print("ready", flush=True)
        async with tcp:
            await tcp.serve_forever()


asyncio.run(main())
