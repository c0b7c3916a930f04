# Python websockets (Debian python3-websockets) as a client of our server: python3 ws_client.py URL deflate|plain
# Sends text (short, multi-byte, large and compressible), binary and a ping; checks every echo; closes with 1000.
import asyncio, sys
import websockets

async def main(url, deflate):
    async with websockets.connect(url, compression="deflate" if deflate else None, max_size=None) as ws:
        got = ws.extensions
        if deflate != bool(got):
            raise SystemExit(f"extensions negotiated: {got}")
        for msg in ["hello", "h\u00e9llo \u2603 \U0001F600", "abc" * 50000, bytes(range(256)) * 300, b""]:
            await ws.send(msg)
            echo = await ws.recv()
            if echo != msg:
                raise SystemExit(f"bad echo for a {type(msg).__name__} of {len(msg)}")
        await (await ws.ping(b"ping!"))
        await ws.close(1000, "done")
    print("ok", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2] == "deflate"))
