// Interop check: Node's `ws` client (a third-party implementation that offers
// permessage-deflate by default) against `test-servers echo` and `perf` /echo (ws-client's
// own framing, server role), across the offers `ws` can make: its default, no context
// takeover both ways, narrowed windows, and a threshold of 0 so that small messages are
// compressed too; then `echo --no-deflate` and `load` (tungstenite's framing), where nothing
// is compressed.
//
// Usage (after `npm ci` in this folder):
//     node scripts/node-interop/interop_echo.mjs path/to/test-servers
// Exits non-zero on any mismatch, with what differed.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import assert from "node:assert/strict";
import WebSocket from "ws";

const LIMIT = 1 << 20;
const WS_VERSION = (await import("ws/package.json", { with: { type: "json" } })).default
  .version;

/** Fails with `what` unless `promise` settles within `ms`. */
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A client whose messages are read in order with `next()`. */
async function open(url, perMessageDeflate) {
  const ws = new WebSocket(url, { perMessageDeflate, maxPayload: 0 });
  const queue = [];
  const waiting = [];
  ws.on("message", (data, isBinary) => {
    const message = { data: isBinary ? Buffer.from(data) : data.toString("utf8"), isBinary };
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(message);
    else queue.push(message);
  });
  const closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)));
  ws.on("close", () => waiting.splice(0).forEach((w) => w.reject(new Error("closed"))));
  await within(10_000, `open ${url}`, new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  }));
  const next = () =>
    within(10_000, "a message", new Promise((resolve, reject) => {
      const queued = queue.shift();
      if (queued) resolve(queued);
      else waiting.push({ resolve, reject });
    }));
  return { ws, next, closed };
}

function send(ws, data) {
  return new Promise((resolve, reject) => ws.send(data, (e) => (e ? reject(e) : resolve())));
}

async function check(url, offer, compressed) {
  const { ws, next } = await open(url, offer);
  const agreed = ws.extensions;
  if (compressed) assert.match(agreed, /^permessage-deflate/, `extensions: ${agreed}`);
  else assert.equal(agreed, "", `no extension expected, got ${agreed}`);

  const json = JSON.stringify(
    Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `item ${i}`, score: (i * 7919) % 1000 })),
  );
  // Several messages in a row, so that a kept context is used across them.
  for (const text of [json, "hello from node", json.slice(0, 300), json]) {
    await send(ws, text);
    const echoed = await next();
    assert.equal(echoed.isBinary, false);
    assert.equal(echoed.data, text, "text echo differs");
  }
  for (const size of [0, 1, 125, 126, 1023, 1024, 65535, 65536, LIMIT]) {
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = i % 251;
    await send(ws, payload);
    const echoed = await next();
    assert.equal(echoed.isBinary, true);
    assert.ok(payload.equals(echoed.data), `binary echo of ${size} bytes differs`);
  }
  const pong = new Promise((resolve) => ws.once("pong", (data) => resolve(data.toString())));
  ws.ping("interop");
  assert.equal(await within(5_000, "pong", pong), "interop");
  ws.close(1000);

  // A message over the server's limit is answered with close code 1009.
  const big = await open(url, offer);
  big.ws.send(Buffer.alloc(LIMIT + 1, 7));
  assert.equal(await within(10_000, "close after an oversized message", big.closed), 1009);
}

/** Starts `test-servers MODE --port 0`, runs the checks, stops it and returns its stats. */
async function run(binary, mode, path, compressed, offers, flags = []) {
  const server = spawn(
    binary,
    [mode, "--port", "0", "--max-message-size", String(LIMIT), "--exit-on-stdin-eof", ...flags],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  try {
    const lines = createInterface({ input: server.stdout })[Symbol.asyncIterator]();
    const ready = JSON.parse((await within(20_000, "the ready line", lines.next())).value);
    assert.equal(ready.event, "listening", JSON.stringify(ready));
    const url = ready.url.replace(/\/$/, "") + path;
    for (const [name, offer] of Object.entries(offers)) {
      await within(60_000, `${mode} ${path} ${name}`, check(url, offer, compressed));
      const label = [mode, path, ...flags, `offer ${name}`].join(" ");
      console.log(`interop: node ws ${WS_VERSION} echoed through test-servers ${label}: ok`);
    }
    server.stdin.end();
    const stopped = JSON.parse((await within(15_000, "the stopped line", lines.next())).value);
    assert.equal(stopped.event, "stopped", JSON.stringify(stopped));
    const code = await within(15_000, "the server's exit", new Promise((r) => server.once("exit", r)));
    assert.equal(code, 0, "test-servers exit status");
    if (compressed) {
      // Compressed both ways: fewer bytes on the wire than in the messages.
      assert.ok(stopped.wire_bytes_in < stopped.bytes_in, JSON.stringify(stopped));
      assert.ok(stopped.wire_bytes_out < stopped.bytes_out, JSON.stringify(stopped));
    }
  } finally {
    if (server.exitCode === null) server.kill();
  }
}

const OFFERS = {
  default: true,
  "threshold 0": { threshold: 0 },
  "no context takeover": { threshold: 0, clientNoContextTakeover: true, serverNoContextTakeover: true },
  "windows 9 and 10": { threshold: 0, clientMaxWindowBits: 9, serverMaxWindowBits: 10 },
};

const binary = process.argv[2];
assert.ok(binary, "usage: node interop_echo.mjs path/to/test-servers");
await run(binary, "echo", "/", true, OFFERS);
await run(binary, "perf", "/echo", true, { default: true, "threshold 0": { threshold: 0 } });
await run(binary, "echo", "/", false, { default: true }, ["--no-deflate"]);
await run(binary, "load", "/", false, { default: true });
