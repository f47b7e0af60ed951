"""Interop peer for permessage-deflate: a third-party server (Python `websockets`) with
compression, for the integration test `deflate_interop` (ws-client against it).

Usage: python3 scripts/interop_deflate_server.py '{"server_no_context_takeover": true}'
The JSON argument holds ServerPerMessageDeflateFactory's parameters. Echoes every message;
prints one JSON line {"port": N, "websockets": VERSION} once listening; a text message
"extensions?" is answered with the extension the server agreed to, as it sees it. Exits
when stdin closes.
"""

import asyncio
import json
import sys

import websockets
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def echo(ws) -> None:
    async for message in ws:
        if message == "extensions?":
            await ws.send(repr(ws.protocol.extensions))
        else:
            await ws.send(message)


async def main() -> None:
    params = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    factory = ServerPerMessageDeflateFactory(**params)
    async with serve(
        echo, "127.0.0.1", 0, compression=None, extensions=[factory], max_size=None
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port, "websockets": websockets.__version__}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
