// The Socket.IO side of docs/bench-contract.md on Node's `socket.io`, the same handlers as
// iolite's crates/bench/examples/bench_server.rs: `echo` acks with its arguments (or emits
// `echo` back without an ack), `join` / `leave` {room} and ack, `publish` {room, payload}
// emits `message` to the room except the sender. Path /socket.io/, both transports,
// default heartbeat, no connection state recovery.
// node sio-server.mjs [--host 127.0.0.1] [--port 3001] [--redis redis://HOST:PORT]   (or env PORT)
//
// --redis: a node of a cluster through @socket.io/redis-adapter (pub/sub, default options),
// as iolite's bench_server --redis; `publish` then reaches the room on every node.
import http from "node:http";
import { Server } from "socket.io";
import { announce, hostPort, optionValue } from "./common.mjs";

const NAME = "sio-server";
const { host, port } = hostPort(NAME, 3001);
const redisUrl = optionValue(NAME, 3001, "--redis");

let adapter;
if (redisUrl !== undefined) {
  // Loaded only here, so the single-node server's memory is what it was without them.
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const { createClient } = await import("redis");
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  // A lost Redis must show in the log, not crash the node (node-redis throws on an
  // "error" event nobody listens to).
  for (const c of [pubClient, subClient]) c.on("error", (e) => console.error(`${NAME}: redis: ${e.message}`));
  await Promise.all([pubClient.connect(), subClient.connect()]);
  adapter = createAdapter(pubClient, subClient);
}

const server = http.createServer();
// Latency is what is measured: no Nagle delay on small frames.
server.on("connection", (socket) => socket.setNoDelay(true));
// permessage-deflate is off by default in engine.io 6; said here so the run does not depend on it.
const io = new Server(server, { perMessageDeflate: false, ...(adapter ? { adapter } : {}) });

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = typeof args.at(-1) === "function" ? args.pop() : null;
    if (ack) ack(...args);
    else socket.emit("echo", ...args);
  });
  socket.on("join", (arg, ack) => {
    if (arg && typeof arg.room === "string") socket.join(arg.room);
    if (typeof ack === "function") ack();
  });
  socket.on("leave", (arg, ack) => {
    if (arg && typeof arg.room === "string") socket.leave(arg.room);
    if (typeof ack === "function") ack();
  });
  socket.on("publish", (arg) => {
    if (arg && typeof arg.room === "string") socket.to(arg.room).emit("message", arg.payload);
  });
});

// The same accept queue as bench_server's (Node's default is 511).
server.listen({ host, port, backlog: 4096 }, () => announce(NAME, server));
