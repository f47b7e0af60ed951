"""Interop check: a third-party client (Python `websockets`, which offers permessage-deflate
by default) against `test-servers echo` and `perf` /echo (ws-client's own framing, server
role: compressed both ways), `echo --no-deflate` (uncompressed) and `load` (tungstenite's
framing, never compressed).

Where compressed, also 300 messages on one connection (context kept both ways, a third of
them fragmented, many repeating earlier ones), and 200 sent by a raw client with CPython's
zlib that ends each message with a final block and starts the next stream with the last
32 KiB as its dictionary (RFC 7692 section 7.2.3.4 with context takeover).

Proves the servers speak standard WebSocket to a client we did not write. Usage:
    python3 scripts/interop_echo.py path/to/test-servers
Needs `pip install websockets`. Exits non-zero on any mismatch.
"""

import asyncio
import base64
import json
import os
import random
import struct
import subprocess
import sys
import zlib

import websockets


async def check(url: str, deflate: bool) -> None:
    async with websockets.connect(url, max_size=None) as ws:
        agreed = [e.name for e in ws.protocol.extensions]
        expected = ["permessage-deflate"] if deflate else []
        assert agreed == expected, f"extensions {agreed}, expected {expected}"
        text = json.dumps([{"id": i, "name": f"item {i}"} for i in range(2000)])
        await ws.send(text)
        assert await ws.recv() == text, "JSON text echo differs"
        await ws.send("hello from python")
        assert await ws.recv() == "hello from python"
        for size in (0, 125, 126, 65535, 65536, 1 << 20):
            payload = bytes(i % 251 for i in range(size))
            await ws.send(payload)
            assert await ws.recv() == payload, f"binary echo of {size} bytes differs"
        pong = await ws.ping(b"interop")
        await asyncio.wait_for(pong, 5)
    # A message over the server's limit is answered with close code 1009.
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(b"x" * ((1 << 20) + 1))
        try:
            await asyncio.wait_for(ws.recv(), 5)
            raise AssertionError("oversized message was echoed")
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            assert code == 1009, f"expected close code 1009, got {code}"


def sample(rng: random.Random, earlier: list) -> bytes:
    """Text-like or random bytes, or a piece of an earlier message (a match far back)."""
    size = rng.choice([0, 1, 60, 700, 3000, 20000, 40000, 70000])
    if earlier and rng.random() < 0.4:
        source = rng.choice(earlier)
        start = rng.randrange(len(source) + 1)
        return source[start:start + size]
    if rng.random() < 0.3:
        return rng.randbytes(min(size, 5000))
    words = [b"alpha ", b"beta ", b"gamma ", b"%d " % rng.randrange(1000)]
    return b"".join(rng.choice(words) for _ in range(size // 5 + 1))[:size]


async def check_context(url: str) -> None:
    rng = random.Random(7)
    earlier = []
    async with websockets.connect(url, max_size=None) as ws:
        for i in range(300):
            payload = sample(rng, earlier)
            earlier = (earlier + [payload])[-20:]
            if len(payload) > 3 and rng.random() < 0.3:
                cuts = sorted(rng.sample(range(1, len(payload)), 3))
                await ws.send([payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])])
            else:
                await ws.send(payload)
            assert await ws.recv() == payload, f"message {i} of {len(payload)} bytes differs"
    await check_final_blocks(url, rng)


async def check_final_blocks(url: str, rng: random.Random) -> None:
    authority, _, path = url.split("//")[1].partition("/")
    host, port = authority.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 101 " in head and b"permessage-deflate" in head.lower(), head
    inflater = zlib.decompressobj(-15)
    sent = b""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    for i in range(200):
        payload = sample(rng, [sent[-40000:]] if sent else [])
        data = compressor.compress(payload) + compressor.flush(zlib.Z_FINISH)
        sent = (sent + payload)[-65536:]
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=sent[-32768:])
        mask = os.urandom(4)
        length = len(data)
        header = bytes([0xC2])  # FIN, RSV1, binary
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", length)
        writer.write(header + mask + bytes(b ^ mask[j % 4] for j, b in enumerate(data)))
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length >= 126:
            wide = 2 if length == 126 else 8
            length = int.from_bytes(await reader.readexactly(wide), "big")
        echo = await reader.readexactly(length)
        assert first & 0x0F == 0x2, f"message {i}: frame {first:#x} {echo[:40]!r}"
        if first & 0x40:
            echo = inflater.decompress(echo + b"\x00\x00\xff\xff")
        assert echo == payload, f"final-block message {i} of {len(payload)} bytes differs"
    writer.close()


def run(binary: str, mode: str, path: str, deflate: bool, *flags: str) -> None:
    server = subprocess.Popen(
        [binary, mode, "--port", "0", "--max-message-size", "1048576", "--exit-on-stdin-eof", *flags],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(server.stdout.readline())
        assert ready["event"] == "listening", ready
        url = ready["url"].rstrip("/") + path
        asyncio.run(asyncio.wait_for(check(url, deflate), 60))
        if deflate:
            asyncio.run(asyncio.wait_for(check_context(url), 120))
        server.stdin.close()
        stopped = json.loads(server.stdout.readline())
        assert server.wait(timeout=15) == 0
        assert stopped["event"] == "stopped", stopped
        if deflate:
            # Compressed both ways: fewer bytes on the wire than in the messages.
            assert stopped["wire_bytes_in"] < stopped["bytes_in"], stopped
            assert stopped["wire_bytes_out"] < stopped["bytes_out"], stopped
        label = " ".join([mode, path, *flags]) + (" (compressed)" if deflate else "")
        print(f"interop: python websockets {websockets.__version__} echoed through test-servers {label}: ok")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def main() -> int:
    binary = sys.argv[1]
    run(binary, "echo", "/", True)
    run(binary, "perf", "/echo", True)
    run(binary, "echo", "/", False, "--no-deflate")
    run(binary, "load", "/", False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
