// The Node reference implementation of tests/peers/CONTRACT.md (socket.io 4.8.x).
//
// Usage: PORT=0 PING_INTERVAL=25000 PING_TIMEOUT=20000 MAX_PAYLOAD=1000000 \
//        CONNECT_TIMEOUT=45000 PARSER=json node tests/peers/reference-server.mjs
// Prints `listening on <port>` once the HTTP server listens on 127.0.0.1.
import { createServer } from "node:http";
import { Server } from "socket.io";
import msgpackParser from "socket.io-msgpack-parser";

function intEnv(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number.parseInt(v, 10);
  if (!Number.isFinite(n)) throw new Error(`bad ${name}: ${v}`);
  return n;
}

const port = intEnv("PORT", 0);
const opts = {
  path: "/socket.io/",
  pingInterval: intEnv("PING_INTERVAL", 25000),
  pingTimeout: intEnv("PING_TIMEOUT", 20000),
  maxHttpBufferSize: intEnv("MAX_PAYLOAD", 1000000),
  connectTimeout: intEnv("CONNECT_TIMEOUT", 45000),
  cors: { origin: true, credentials: true },
  connectionStateRecovery: {
    maxDisconnectionDuration: 120000,
    skipMiddlewares: true,
  },
};
if ((process.env.PARSER || "json") === "msgpack") {
  opts.parser = msgpackParser;
}

const httpServer = createServer();
const io = new Server(httpServer, opts);

// socket id -> last disconnect reason (all namespaces)
const reasons = new Map();

function recordReasons(socket) {
  socket.on("disconnect", (reason) => {
    reasons.set(socket.id, reason);
  });
}

function echoHandler(socket) {
  socket.on("echo", (...args) => {
    if (typeof args[args.length - 1] === "function") {
      const ack = args.pop();
      ack(...args);
    } else {
      socket.emit("echo", ...args);
    }
  });
}

const sortedRooms = (socket) => [...socket.rooms].sort();

// ---- namespace "/" ----
io.on("connection", (socket) => {
  recordReasons(socket);
  echoHandler(socket);

  let lastAny = null;
  socket.onAny((event, ...args) => {
    if (event === "last-any") return;
    // drop the ack callback (if any): record what the client sent
    if (typeof args[args.length - 1] === "function") args.pop();
    lastAny = [event, ...args];
  });

  socket.on("join", (room, ack) => {
    socket.join(room);
    ack(sortedRooms(socket));
  });
  socket.on("leave", (room, ack) => {
    socket.leave(room);
    ack(sortedRooms(socket));
  });
  socket.on("to-room", (room, ...args) => {
    socket.to(room).emit("room", ...args);
  });
  socket.on("to-all-except", (room, ...rest) => {
    const ack = rest.pop();
    io.except(room).emit("except", ...rest);
    ack();
  });
  socket.on("to-all", (...rest) => {
    const ack = rest.pop();
    io.emit("all", ...rest);
    ack();
  });
  socket.on("ask-me", (timeoutMs, ...rest) => {
    const ack = rest.pop();
    socket.timeout(timeoutMs).emit("question", ...rest, (err, ...res) => {
      ack(err ? { error: err.message } : { response: res });
    });
  });
  socket.on("ask-room", (room, timeoutMs, ack) => {
    io.to(room)
      .timeout(timeoutMs)
      .emit("question", (err, res) => {
        ack({ error: err ? err.message : null, responses: res });
      });
  });
  socket.on("volatile", (n, ack) => {
    ack();
    for (let i = 0; i < n; i++) socket.volatile.emit("v", i);
  });
  socket.on("burst", (n, ack) => {
    for (let i = 0; i < n; i++) socket.emit("seq", i);
    ack();
  });
  socket.on("to-room-seq", (room, n, ack) => {
    for (let i = 0; i < n; i++) io.to(room).emit("seq", i);
    ack();
  });
  socket.on("set-data", (value, ack) => {
    socket.data.value = value;
    ack();
  });
  socket.on("get-data", (ack) => {
    ack(socket.data.value ?? null);
  });
  socket.on("whoami", (ack) => {
    ack({
      id: socket.id,
      recovered: socket.recovered,
      rooms: sortedRooms(socket),
      transport: socket.conn.transport.name,
    });
  });
  socket.on("disconnect-me", (close) => {
    socket.disconnect(close);
  });
  socket.on("drop-transport", () => {
    socket.conn.close();
  });
  socket.on("disconnect-all", () => {
    io.disconnectSockets();
  });
  socket.on("fetch", async (room, ack) => {
    const sockets = await io.in(room).fetchSockets();
    ack(sockets.map((s) => s.id).sort());
  });
  socket.on("join-all", (room, target, ack) => {
    io.in(target).socketsJoin(room);
    ack();
  });
  socket.on("leave-all", (room, target, ack) => {
    io.in(target).socketsLeave(room);
    ack();
  });
  socket.on("last-reason", (id, ack) => {
    ack(reasons.get(id) ?? null);
  });
  socket.on("last-any", (ack) => {
    ack(lastAny);
  });
  socket.on("server-emit", (...rest) => {
    const ack = rest.pop();
    io.serverSideEmit("hello", ...rest);
    ack();
  });
});

// ---- namespace "/admin" ----
const admin = io.of("/admin");
admin.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "secret") {
    next();
  } else {
    const err = new Error("not authorized");
    err.data = { reason: "bad token" };
    next(err);
  }
});
admin.on("connection", (socket) => {
  recordReasons(socket);
  echoHandler(socket);
  socket.on("whoami", (ack) => {
    ack({
      id: socket.id,
      recovered: socket.recovered,
      rooms: sortedRooms(socket),
      transport: socket.conn.transport.name,
      auth: socket.handshake.auth,
    });
  });
});

// ---- dynamic namespaces ----
io.of(/^\/dyn-[a-z0-9]+$/).on("connection", (socket) => {
  recordReasons(socket);
  echoHandler(socket);
  socket.on("name", (ack) => {
    ack(socket.nsp.name);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on ${httpServer.address().port}`);
});

const shutdown = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
