// A Node.js socket.io 4.8 node with the sharded adapter of @socket.io/redis-adapter 8.3
// (`createShardedAdapter`, Redis 7 SSUBSCRIBE/SPUBLISH), driven by the iolite-redis tests
// (crates/redis/tests/sharded.rs) over stdin/stdout, with the protocol of node-node.mjs.
//
// Environment: REDIS_URL (redis://127.0.0.1:PORT) or REDIS_CLUSTER (redis://h:p,redis://h:p:
// a Redis Cluster), PORT (0: any free port),
// SUBSCRIPTION_MODE (static, dynamic, dynamic-private; default dynamic), CHANNEL_PREFIX
// (default socket.io).
//
// Prints `{"event": "listening", "port": N}` once the adapter is made, then one JSON
// object per line: `{"id": N, "ok": result}` / `{"id": N, "error": "..."}` answering
// command N, and `{"event": ...}` for what happens on its own (connections, server-side
// events).
//
// Commands, one JSON object per line on stdin, each with an `id` and an `op`:
//   emit {room?, except?, event, args}
//   emitWithAck {room?, except?, event, args, timeout}  -> {err, responses}
//   fetchSockets {room?}                                 -> [{id, rooms, data}]
//   socketsJoin {room?, join} / socketsLeave {room?, leave} / disconnectSockets {room?, close}
//   serverSideEmit {event, args}
//   serverSideEmitWithAck {event, args}                 -> {err, responses}
//   serverCount -> n        localSockets -> [{id, rooms}]
// Binary values travel as {"$bin": "<hex>"} both ways.

import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { Server } from "socket.io";
import { createShardedAdapter } from "@socket.io/redis-adapter";
import { createClient, createCluster } from "redis";

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const toWire = (v) => {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    const b = Buffer.isBuffer(v)
      ? v
      : v instanceof ArrayBuffer
        ? Buffer.from(v)
        : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return { $bin: b.toString("hex") };
  }
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
  return v;
};
const fromWire = (v) => {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string") return Buffer.from(v.$bin, "hex");
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromWire(x)]));
  }
  return v;
};

// REDIS_CLUSTER (comma-separated redis:// URLs of some nodes): a Redis Cluster instead.
const pubClient = process.env.REDIS_CLUSTER
  ? createCluster({ rootNodes: process.env.REDIS_CLUSTER.split(",").map((url) => ({ url })) })
  : createClient({ url: process.env.REDIS_URL });
const subClient = pubClient.duplicate();
// node-redis emits "error" while Redis is away; without a listener that would throw.
pubClient.on("error", () => {});
subClient.on("error", () => {});
await Promise.all([pubClient.connect(), subClient.connect()]);

const http = createServer();
const io = new Server(http, {
  adapter: createShardedAdapter(pubClient, subClient, {
    channelPrefix: process.env.CHANNEL_PREFIX || "socket.io",
    subscriptionMode: process.env.SUBSCRIPTION_MODE || "dynamic",
  }),
});

io.on("connection", (socket) => {
  const auth = socket.handshake.auth || {};
  socket.data = { node: "node", name: auth.name ?? null };
  for (const r of auth.rooms || []) socket.join(r);
  out({ event: "connection", id: socket.id, name: auth.name ?? null });
});

for (const name of ["sse", "who"]) {
  io.on(name, (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    out({ event: "serverSide", name, args: toWire(args), withAck: !!cb });
    if (cb) cb({ node: "node", args: toWire(args) });
  });
}

const target = (c) => {
  let op = io.of("/");
  if (c.room !== undefined) op = op.to(c.room);
  if (c.except !== undefined) op = op.except(c.except);
  return op;
};

const handlers = {
  emit: (c) => {
    target(c).emit(c.event, ...fromWire(c.args || []));
    return true;
  },
  emitWithAck: (c) =>
    new Promise((resolve) => {
      target(c)
        .timeout(c.timeout)
        .emit(c.event, ...fromWire(c.args || []), (err, responses) =>
          resolve({ err: err ? err.message : null, responses: toWire(responses || []) }),
        );
    }),
  fetchSockets: async (c) =>
    (await target(c).fetchSockets()).map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })),
  socketsJoin: (c) => (target(c).socketsJoin(c.join), true),
  socketsLeave: (c) => (target(c).socketsLeave(c.leave), true),
  disconnectSockets: (c) => (target(c).disconnectSockets(!!c.close), true),
  serverSideEmit: (c) => (io.serverSideEmit(c.event, ...(c.args || [])), true),
  serverSideEmitWithAck: (c) =>
    new Promise((resolve) => {
      io.serverSideEmit(c.event, ...(c.args || []), (err, responses) =>
        resolve({ err: err ? err.message : null, responses: responses || [] }),
      );
    }),
  serverCount: () => io.of("/").adapter.serverCount(),
  localSockets: () => [...io.of("/").sockets.values()].map((s) => ({ id: s.id, rooms: [...s.rooms] })),
  exit: () => process.exit(0),
};

createInterface({ input: process.stdin }).on("line", async (line) => {
  let c;
  try {
    c = JSON.parse(line);
  } catch {
    return;
  }
  try {
    const h = handlers[c.op];
    if (!h) throw new Error(`unknown op ${c.op}`);
    out({ id: c.id, ok: await h(c) });
  } catch (e) {
    out({ id: c.id, error: String(e && e.message ? e.message : e) });
  }
});
// The test closes stdin when it is done (or dies): go too.
process.stdin.on("end", () => process.exit(0));

http.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  out({ event: "listening", port: http.address().port });
});
