// A Node.js socket.io 4.8 node with @socket.io/redis-adapter 8.x, driven by the iolite-redis
// cluster tests (crates/redis/tests/cluster.rs) over stdin/stdout.
//
// Environment: REDIS_URL (redis://127.0.0.1:PORT) or REDIS_CLUSTER (redis://h:p,redis://h:p:
// a Redis Cluster), PORT (0: any free port),
// REQUESTS_TIMEOUT (ms, the adapter's requestsTimeout; default 5000), ADAPTER (`streams`:
// @socket.io/redis-streams-adapter instead), RECOVERY (set: connection state recovery on).
//
// Prints `listening on <port>` once the adapter is subscribed, then one JSON object per
// line: `{"id": N, "ok": result}` / `{"id": N, "error": "..."}` answering command N, and
// `{"event": ...}` for what happens on its own (server-side events, connections).
//
// Commands, one JSON object per line on stdin, each with an `id` and an `op`:
//   emit {room?, except?, event, args, volatile?, local?}
//   emitWithAck {room?, except?, event, args, timeout}  -> {err, responses}
//   fetchSockets {room?}                                 -> [{id, rooms, data, auth, url}]
//   socketsJoin {room?, join} / socketsLeave {room?, leave} / disconnectSockets {room?, close}
//   remote {sid, action: "join"|"leave"|"disconnect"|"emit", room?, event?, args?}
//   serverSideEmit {event, args}
//   serverSideEmitWithAck {event, args}                 -> {err, responses}
//   serverCount -> n        allRooms -> [room]           localSockets -> [{id, rooms}]
// Binary values travel as {"$bin": "<hex>"} both ways.

import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
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
// ADAPTER=streams: @socket.io/redis-streams-adapter (one client), with connection state
// recovery when RECOVERY is set.
const io = new Server(http, {
  adapter:
    process.env.ADAPTER === "streams"
      ? createStreamsAdapter(pubClient)
      : createAdapter(pubClient, subClient, {
          requestsTimeout: Number(process.env.REQUESTS_TIMEOUT || 5000),
        }),
  ...(process.env.RECOVERY ? { connectionStateRecovery: { maxDisconnectionDuration: 60000 } } : {}),
});

io.on("connection", (socket) => {
  const auth = socket.handshake.auth || {};
  // A recovered socket (RECOVERY) comes back with its data and rooms: keep them.
  if (!socket.recovered) {
    socket.data = { node: "node", name: auth.name ?? null };
    for (const r of auth.rooms || []) socket.join(r);
  }
  out({ event: "connection", id: socket.id, name: auth.name ?? null, recovered: socket.recovered });
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
  if (c.volatile) op = op.volatile;
  if (c.local) op = op.local;
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
    (await target(c).fetchSockets()).map((s) => ({
      id: s.id,
      rooms: [...s.rooms],
      data: s.data,
      auth: s.handshake.auth,
      url: s.handshake.url,
    })),
  socketsJoin: (c) => (target(c).socketsJoin(c.join), true),
  socketsLeave: (c) => (target(c).socketsLeave(c.leave), true),
  disconnectSockets: (c) => (target(c).disconnectSockets(!!c.close), true),
  remote: async (c) => {
    const s = (await io.fetchSockets()).find((x) => x.id === c.sid);
    if (!s) throw new Error("no such socket");
    if (c.action === "join") s.join(c.room);
    else if (c.action === "leave") s.leave(c.room);
    else if (c.action === "disconnect") s.disconnect(!!c.close);
    else if (c.action === "emit") s.emit(c.event, ...fromWire(c.args || []));
    return true;
  },
  serverSideEmit: (c) => (io.serverSideEmit(c.event, ...(c.args || [])), true),
  serverSideEmitWithAck: (c) =>
    new Promise((resolve) => {
      io.serverSideEmit(c.event, ...(c.args || []), (err, responses) =>
        resolve({ err: err ? err.message : null, responses: responses || [] }),
      );
    }),
  serverCount: () => io.of("/").adapter.serverCount(),
  allRooms: async () => [...(await io.of("/").adapter.allRooms())],
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
  console.log(`listening on ${http.address().port}`);
});
