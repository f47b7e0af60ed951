"""Interop check: a third-party client (Python `websockets`) against `test-servers echo`
(tungstenite's framing) and `test-servers perf` /echo (ws-client's own framing, server role).

Proves the servers speak standard WebSocket to a client we did not write. Usage:
    python3 scripts/interop_echo.py path/to/test-servers
Needs `pip install websockets`. Exits non-zero on any mismatch.
"""

import asyncio
import json
import subprocess
import sys

import websockets


async def check(url: str) -> None:
    async with websockets.connect(url, max_size=None) as ws:
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


def run(binary: str, mode: str, path: str) -> None:
    server = subprocess.Popen(
        [binary, mode, "--port", "0", "--max-message-size", "1048576", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(server.stdout.readline())
        assert ready["event"] == "listening", ready
        asyncio.run(asyncio.wait_for(check(ready["url"].rstrip("/") + path), 60))
        server.stdin.close()
        stopped = json.loads(server.stdout.readline())
        assert server.wait(timeout=15) == 0
        assert stopped["event"] == "stopped", stopped
        print(f"interop: python websockets {websockets.__version__} echoed through test-servers {mode}: ok")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def main() -> int:
    binary = sys.argv[1]
    run(binary, "echo", "/")
    run(binary, "perf", "/echo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
