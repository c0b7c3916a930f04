# Python websockets (Debian python3-websockets) as an echo server for our client: python3 ws_server.py deflate|plain
# Listens on 127.0.0.1, an ephemeral port, prints "PORT n", serves until killed.
import asyncio, sys
import websockets

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main(deflate):
    async with websockets.serve(echo, "127.0.0.1", 0, compression="deflate" if deflate else None,
                                max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()

asyncio.run(main(sys.argv[1] == "deflate"))
