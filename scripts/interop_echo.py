"""Interop check: a third-party client (Python `websockets`, which offers permessage-deflate
by default) against `test-servers echo` and `perf` /echo (ws-client's own framing, server
role: compressed both ways), `echo --no-deflate` (uncompressed) and `load` (tungstenite's
framing, never compressed).

Proves the servers speak standard WebSocket to a client we did not write. Usage:
    python3 scripts/interop_echo.py path/to/test-servers
Needs `pip install websockets`. Exits non-zero on any mismatch.
"""

import asyncio
import json
import subprocess
import sys

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
        asyncio.run(asyncio.wait_for(check(ready["url"].rstrip("/") + path, deflate), 60))
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
