// Writes the fixtures of iolite-redis's codec tests, produced by the real Node encoders:
//
// - crates/redis/tests/fixtures/notepack-values.json: values as notepack.io encodes them
//   (the encoder @socket.io/redis-adapter uses), with the JSON view iolite must decode them
//   to (buffers as placeholders + attachments, undefined as null in arrays and left out of
//   maps, dates as their toJSON string) and whether iolite's encoder must write the same
//   bytes back.
// - crates/redis/tests/fixtures/node-wire.json: the messages @socket.io/redis-adapter 8.x
//   publishes (channel and bytes), captured from a real socket.io 4.8 server whose adapter
//   is given recording Redis clients: broadcasts, each request type, and its responses to
//   requests from another node.
//
// Run from tests/redis after `npm ci`: `node gen-fixtures.mjs`. The output is committed;
// rerun it only when the pinned versions change.

import { createServer } from "node:http";
import { writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import msgpack from "notepack.io";
import { Server } from "socket.io";
import { io as ioc } from "socket.io-client";
import { createAdapter } from "@socket.io/redis-adapter";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "../../crates/redis/tests/fixtures");
mkdirSync(out, { recursive: true });

// ---------------------------------------------------------------------------------------
// Values

function view(v, atts) {
  if (v === undefined || typeof v === "function") return undefined;
  if (v === null) return null;
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v !== "object") return v;
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    const b = Buffer.isBuffer(v)
      ? v
      : v instanceof ArrayBuffer
        ? Buffer.from(v)
        : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    atts.push(b.toString("hex"));
    return { _placeholder: true, num: atts.length - 1 };
  }
  if (v instanceof Date) return v.toJSON();
  // notepack encodes what toJSON returns (a Date's was handled above: it has its own format).
  if (typeof v.toJSON === "function") return view(v.toJSON(), atts);
  if (Array.isArray(v)) return v.map((x) => { const y = view(x, atts); return y === undefined ? null : y; });
  const o = {};
  for (const k of Object.keys(v)) {
    const y = view(v[k], atts);
    if (y !== undefined) o[k] = y;
  }
  return o;
}

const str = (n, c = "a") => c.repeat(n);
const bytes = (n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));
const obj = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => ["k" + i, i]));

// [name, value, iolite writes the same bytes, for large values: how the test rebuilds the
// value (`str`: n times "a"; `bytes`: byte i is (7i + 3) mod 256), stored as the header
// bytes only]
const cases = [
  ["null", null, true],
  ["true", true, true],
  ["false", false, true],
  ["zero", 0, true],
  ["negative zero", -0, true],
  ["fixint max", 127, true],
  ["uint8 min", 128, true],
  ["uint8 max", 255, true],
  ["uint16 min", 256, true],
  ["uint16 max", 65535, true],
  ["uint32 min", 65536, true],
  ["uint32 max", 4294967295, true],
  ["uint64 min", 4294967296, true],
  ["max safe integer", Number.MAX_SAFE_INTEGER, true],
  ["integral double past 2^53", 2 ** 53 + 2, true],
  ["negative fixint -1", -1, true],
  ["negative fixint min", -32, true],
  ["int8 max", -33, true],
  ["int8 min", -128, true],
  ["int16 max", -129, true],
  ["int16 min", -32768, true],
  ["int32 max", -32769, true],
  ["int32 min", -2147483648, true],
  ["int64 max", -2147483649, true],
  ["min safe integer", Number.MIN_SAFE_INTEGER, true],
  ["float 1.5", 1.5, true],
  ["float -0.25", -0.25, true],
  ["float 0.1", 0.1, true],
  ["float 1e-300", 1e-300, true],
  ["NaN", NaN, false],
  ["Infinity", Infinity, false],
  ["empty string", "", true],
  ["fixstr", "hello", true],
  ["fixstr max", str(31), true],
  ["str8 min", str(32), true],
  ["str8 max", str(255), true],
  ["str16 min", str(256), true],
  ["str16 max", str(65535), true, { kind: "str", n: 65535 }],
  ["str32 min", str(65536), true, { kind: "str", n: 65536 }],
  ["unicode", "é€😀 ok", true],
  ["str8 by utf-8 length", str(11, "€"), true],
  ["empty array", [], true],
  ["fixarray max", Array.from({ length: 15 }, (_, i) => i), true],
  ["array16 min", Array.from({ length: 16 }, (_, i) => i), true],
  ["empty map", {}, true],
  ["fixmap max", obj(15), true],
  ["map16 min", obj(16), true],
  ["nested", { a: [1, { b: null, c: [true, "x"] }], d: { e: {} } }, true],
  ["key order kept", { z: 1, a: 2, m: 3 }, true],
  ["empty buffer", Buffer.alloc(0), true],
  ["bin8", bytes(3), true],
  ["bin8 max", bytes(255), true],
  ["bin16 min", bytes(256), true],
  ["bin32 min", bytes(65536), true, { kind: "bytes", n: 65536 }],
  ["buffers in place", ["ev", { file: bytes(4), more: [bytes(1), "x", bytes(2)] }], true],
  ["Uint8Array", new Uint8Array([5, 6, 7]), true],
  ["ArrayBuffer", new Uint8Array([8, 9]).buffer, true],
  ["undefined in array", [1, undefined, 2], false],
  ["undefined in map", { a: 1, b: undefined, c: 3 }, false],
  ["function in map", { a: 1, f() {}, c: 3 }, false],
  ["undefined alone", undefined, false],
  ["Date, timestamp 32", new Date(1700000000000), false],
  ["Date, timestamp 64", new Date(1700000000123), false],
  ["Date before 1970, timestamp 96", new Date(-86400000), false],
  ["Map is an empty map", new Map([["a", 1]]), false],
  ["object with toJSON", { toJSON() { return { j: 1 }; } }, false],
];

const values = cases.map(([name, value, roundtrip, gen]) => {
  const encoded = msgpack.encode(value);
  if (gen) {
    const content = gen.kind === "str" ? Buffer.from(value) : value;
    if (!encoded.subarray(encoded.length - content.length).equals(content)) throw new Error(name);
    const head = encoded.subarray(0, encoded.length - content.length).toString("hex");
    return { name, gen, head, roundtrip };
  }
  const atts = [];
  const v = view(value, atts);
  return {
    name,
    hex: encoded.toString("hex"),
    json: v === undefined ? null : v,
    attachments: atts,
    roundtrip,
  };
});
writeFileSync(join(out, "notepack-values.json"), JSON.stringify(values, null, 1) + "\n");

// ---------------------------------------------------------------------------------------
// Protocol messages

const published = [];
const fake = () => ({
  pSubscribe() {},
  subscribe() {},
  sSubscribe() {},
  pUnsubscribe() {},
  unsubscribe() {},
  on() {},
  off() {},
  publish(channel, msg) {
    published.push({ channel, msg: Buffer.isBuffer(msg) ? msg : Buffer.from(msg) });
    return Promise.resolve(1);
  },
  // PUBSUB NUMSUB: this node and one other.
  sendCommand(args) {
    return Promise.resolve([args[2], 2]);
  },
});

const http = createServer();
const io = new Server(http, {
  adapter: createAdapter(fake(), fake(), { requestsTimeout: 300 }),
});
const root = io.of("/");
root.adapter.uid = "nodeA1";
const admin = io.of("/admin");
admin.adapter.uid = "nodeA2";

io.on("connection", (socket) => {
  socket.data = { user: "bo", n: 1 };
  socket.join("team");
  socket.on("disconnect", () => {});
});
io.on("sse-q", (a, cb) => cb({ got: a, from: "node" }));

await new Promise((r) => http.listen(0, "127.0.0.1", r));
const port = http.address().port;
const client = ioc(`http://127.0.0.1:${port}`, {
  transports: ["websocket"],
  auth: { name: "fixture" },
  query: { q: "1" },
});
client.on("q", (x, cb) => cb({ ok: x, bin: Buffer.from([9, 8]) }));
await new Promise((r) => client.on("connect", r));
await new Promise((r) => setTimeout(r, 50));

const wire = [];
const capture = async (name, f) => {
  const start = published.length;
  await f();
  await new Promise((r) => setTimeout(r, 50));
  for (const { channel, msg } of published.slice(start)) {
    const json = msg[0] === 0x7b;
    wire.push({
      name,
      channel,
      encoding: json ? "json" : "msgpack",
      ...(json ? { text: msg.toString() } : { hex: msg.toString("hex") }),
    });
  }
};
const quiet = (p) => p.catch(() => {});

await capture("broadcast", () => io.emit("hello", 1, "two", { three: 3 }));
await capture("broadcast to one room, except, binary", () =>
  io.to("room1").except("room2").emit("bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) }),
);
await capture("broadcast to two rooms, volatile, compress false", () =>
  io.to(["a", "b"]).volatile.compress(false).emit("multi"),
);
await capture("broadcast on /admin", () => admin.emit("adm", null));
await capture("broadcast with ack (BROADCAST request)", () => {
  io.timeout(200).emit("q", 42, () => {});
});
await capture("fetchSockets (REMOTE_FETCH request)", () => quiet(io.in("team").except("x").fetchSockets()));
await capture("socketsJoin (REMOTE_JOIN request)", () => io.in("r").socketsJoin(["x", "y"]));
await capture("socketsLeave (REMOTE_LEAVE request)", () => io.socketsLeave("x"));
await capture("disconnectSockets (REMOTE_DISCONNECT request)", () => io.in("r").disconnectSockets(true));
await capture("serverSideEmit (SERVER_SIDE_EMIT request)", () => io.serverSideEmit("sse", 1, { a: 2 }));
await capture("serverSideEmit with ack (SERVER_SIDE_EMIT request)", () => {
  io.serverSideEmit("sse-ack", "x", () => {});
});
await capture("allRooms (ALL_ROOMS request)", () => quiet(root.adapter.allRooms()));

// Node answering another node's requests.
const request = (r) => root.adapter.onrequest("socket.io-request#/#", Buffer.from(JSON.stringify(r)));
await capture("REMOTE_FETCH response", () =>
  request({ uid: "other1", requestId: "req001", type: 5, opts: { rooms: ["team"], except: [] } }),
);
await capture("ALL_ROOMS response", () => request({ uid: "other1", requestId: "req002", type: 1 }));
await capture("SERVER_SIDE_EMIT response", () =>
  request({ uid: "other1", requestId: "req003", type: 6, data: ["sse-q", 7] }),
);
await capture("BROADCAST responses (client count, then the client's ack)", async () => {
  root.adapter.onrequest(
    "socket.io-request#/#",
    msgpack.encode({
      uid: "other1",
      requestId: "req004",
      type: 7,
      packet: { type: 2, data: ["q", "hi"], nsp: "/" },
      opts: { rooms: [], except: [], flags: { timeout: 1000 } },
    }),
  );
  await new Promise((r) => setTimeout(r, 200));
});

writeFileSync(join(out, "node-wire.json"), JSON.stringify(wire, null, 1) + "\n");
client.close();
io.close();
console.log(`${values.length} values, ${wire.length} wire messages`);
process.exit(0);
