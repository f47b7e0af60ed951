// Interop peer for permessage-deflate: a third-party server (Node's `ws`) with compression,
// for the integration test `deflate_interop` (ws-client against it).
//
// Usage: node scripts/node-interop/deflate_server.mjs '{"serverNoContextTakeover": true}'
// The JSON argument holds `ws`'s perMessageDeflate options (threshold 0 unless given). Echoes
// every message; prints one JSON line {"port": N, "ws": VERSION} once listening; a text
// message "extensions?" is answered with the parameters the server agreed to, as JSON in
// RFC 7692's names. Exits when stdin closes.

import { WebSocketServer } from "ws";

const WS_VERSION = (await import("ws/package.json", { with: { type: "json" } })).default
  .version;
const options = { threshold: 0, ...JSON.parse(process.argv[2] ?? "{}") };
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: options });

server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    if (!isBinary && data.toString() === "extensions?") {
      // `ws` keeps the accepted offer here; there is no public accessor on the server side.
      const agreed = ws._extensions["permessage-deflate"];
      ws.send(JSON.stringify(agreed ? agreed.params : null));
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
});

server.on("listening", () => {
  console.log(JSON.stringify({ port: server.address().port, ws: WS_VERSION }));
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
