// The raw WebSocket side of docs/bench-contract.md on Node's `ws`, as iolite's
// crates/bench/examples/bench_server.rs does it:
//   /echo                  every text or binary message back to its sender
//   /broadcast?room=NAME   every text or binary message to every other connection of room
//                          NAME (no room: the room named ""), in order
//   anything else          handshake refused with 404
// node ws-server.mjs [--host 127.0.0.1] [--port 3000]   (or env PORT)
import http from "node:http";
import { WebSocketServer } from "ws";
import { announce, hostPort } from "./common.mjs";

const NAME = "ws-server";
const { host, port } = hostPort(NAME, 3000);

const server = http.createServer((_req, res) => {
  res.writeHead(404).end("paths: /echo, /broadcast?room=NAME\n");
});
// The generator offers no permessage-deflate; turning it off here too keeps ws from
// setting up zlib for nothing.
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
const rooms = new Map();

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://localhost");
  const route = url.pathname === "/echo" || url.pathname === "/broadcast" ? url.pathname : null;
  if (!route) {
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  // Latency is what is measured: no Nagle delay on small frames.
  socket.setNoDelay(true);
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (route === "/echo") {
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
      return;
    }
    const name = url.searchParams.get("room") ?? "";
    let room = rooms.get(name);
    if (!room) rooms.set(name, (room = new Set()));
    room.add(ws);
    ws.on("message", (data, isBinary) => {
      for (const peer of room) {
        if (peer !== ws && peer.readyState === 1) peer.send(data, { binary: isBinary });
      }
    });
    ws.on("close", () => {
      room.delete(ws);
      if (room.size === 0 && rooms.get(name) === room) rooms.delete(name);
    });
  });
});

// The same accept queue as bench_server's (Node's default is 511).
server.listen({ host, port, backlog: 4096 }, () => announce(NAME, server));
