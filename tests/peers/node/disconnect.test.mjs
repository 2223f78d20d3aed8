// Disconnect reasons, as seen by the client ("disconnect" event) and by the server
// (`last-reason`). The server for this file runs with a short heartbeat and a small
// maxHttpBufferSize so that "ping timeout" and oversized packets are quick to reach.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, client, manager, closeAll, connected, once, ask, serverReason, sleep } from "./helpers.mjs";

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 10000;

let server, probe;
before(async () => {
  server = await startServer({
    PING_INTERVAL: String(PING_INTERVAL),
    PING_TIMEOUT: String(PING_TIMEOUT),
    MAX_PAYLOAD: String(MAX_PAYLOAD),
  });
});
after(async () => {
  await server.close();
});
afterEach(closeAll);

/** A connected socket plus a promise of its first "disconnect" ([reason, details]). */
async function setup(transport, opts = {}) {
  probe = client(server.url, "/", { transports: ["websocket"] });
  const s = client(server.url, "/", { transports: [transport], ...opts });
  await Promise.all([connected(s), connected(probe)]);
  const disconnected = once(s, "disconnect", 5000);
  return { s, id: s.id, disconnected };
}

for (const transport of ["websocket", "polling"]) {
  const tag = `[${transport}]`;

  test(`${tag} client socket.disconnect(): "io client disconnect" / server "client namespace disconnect"`, async () => {
    const { s, id, disconnected } = await setup(transport);
    s.disconnect();
    const [reason] = await disconnected;
    assert.equal(reason, "io client disconnect");
    assert.equal(await serverReason(probe, id), "client namespace disconnect");
    // no automatic reconnection after a deliberate disconnect
    assert.equal(s.active, false);
  });

  test(`${tag} disconnect-me(false): "io server disconnect" / server "server namespace disconnect"; other namespaces stay`, async () => {
    probe = client(server.url, "/", { transports: ["websocket"] });
    const m = manager(server.url, { transports: [transport] });
    const s = m.socket("/");
    const other = m.socket("/dyn-keep");
    await Promise.all([connected(s), connected(other), connected(probe)]);
    const { id } = s;
    const disconnected = once(s, "disconnect");
    s.emit("disconnect-me", false);
    const [reason] = await disconnected;
    assert.equal(reason, "io server disconnect");
    assert.equal(await serverReason(probe, id), "server namespace disconnect");
    // the client does not reconnect by itself after a server-side disconnect
    assert.equal(s.active, false);
    // the Engine.IO connection stays open for the other namespace
    assert.equal(await ask(other, "name"), "/dyn-keep");
    assert.equal(other.connected, true);
  });

  test(`${tag} disconnect-me(true): every namespace of the connection is disconnected`, async () => {
    probe = client(server.url, "/", { transports: ["websocket"] });
    const m = manager(server.url, { transports: [transport] });
    const s = m.socket("/");
    const other = m.socket("/dyn-gone");
    await Promise.all([connected(s), connected(other), connected(probe)]);
    const ids = [s.id, other.id];
    const reasons = Promise.all([once(s, "disconnect"), once(other, "disconnect")]);
    s.emit("disconnect-me", true);
    assert.deepEqual(
      (await reasons).map(([r]) => r),
      ["io server disconnect", "io server disconnect"],
    );
    assert.equal(await serverReason(probe, ids[0]), "server namespace disconnect");
    assert.equal(await serverReason(probe, ids[1]), "server namespace disconnect");
  });

  test(`${tag} drop-transport: client "transport close" / server "forced close", then reconnects`, async () => {
    const { s, id, disconnected } = await setup(transport, { reconnection: true, reconnectionDelay: 50 });
    s.emit("drop-transport");
    const [reason] = await disconnected;
    assert.equal(reason, "transport close");
    assert.equal(await serverReason(probe, id), "forced close");
    await once(s, "connect");
    assert.equal(await ask(s, "echo", "back"), "back");
  });

  test(`${tag} client closes its engine: client "forced close" / server "transport close"`, async () => {
    const { s, id, disconnected } = await setup(transport);
    s.io.engine.close();
    const [reason] = await disconnected;
    assert.equal(reason, "forced close");
    assert.equal(await serverReason(probe, id), "transport close");
  });

  test(`${tag} client stops answering pings: server "ping timeout" / client "transport close"`, async () => {
    const { s, id, disconnected } = await setup(transport);
    const engine = s.io.engine;
    const orig = engine._sendPacket;
    engine._sendPacket = function (type, ...rest) {
      if (type === "pong") return;
      return orig.call(this, type, ...rest);
    };
    const started = Date.now();
    const [reason] = await disconnected;
    assert.equal(reason, "transport close");
    assert.equal(await serverReason(probe, id), "ping timeout");
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= PING_TIMEOUT, `too early: ${elapsed} ms`);
  });

  test(`${tag} server pings stop reaching the client: client "ping timeout" / server "transport close"`, async () => {
    const { s, id, disconnected } = await setup(transport);
    // the client keeps answering pings but no longer re-arms its own heartbeat timer
    s.io.engine._resetPingTimeout = () => {};
    const [reason] = await disconnected;
    assert.equal(reason, "ping timeout");
    assert.equal(await serverReason(probe, id), "transport close");
  });
}

test("[websocket] the client's TCP connection dies: server and client see \"transport close\"", async () => {
  const { s, id, disconnected } = await setup("websocket");
  s.io.engine.transport.ws._socket.destroy();
  const [reason] = await disconnected;
  assert.equal(reason, "transport close");
  assert.equal(await serverReason(probe, id), "transport close");
});

test("[websocket] message larger than maxHttpBufferSize: server \"transport error\" / client \"transport close\"", async () => {
  const { s, id, disconnected } = await setup("websocket");
  s.emit("echo", "x".repeat(MAX_PAYLOAD * 2));
  const [reason] = await disconnected;
  assert.equal(reason, "transport close");
  assert.equal(await serverReason(probe, id), "transport error");
});

test("[polling] POST larger than maxHttpBufferSize: client \"transport error\" / server \"transport close\"", async () => {
  const { s, id, disconnected } = await setup("polling");
  s.emit("echo", "x".repeat(MAX_PAYLOAD * 2));
  const [reason, details] = await disconnected;
  assert.equal(reason, "transport error");
  // the POST was answered with 413
  assert.equal(details.description, 413);
  assert.equal(await serverReason(probe, id), "transport close");
});

test("[polling] overlapping GET: server \"transport error\" / client \"transport close\"", async () => {
  const { s, id, disconnected } = await setup("polling");
  await sleep(50); // let the client's long-poll GET reach the server
  const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&sid=${s.io.engine.id}`);
  assert.equal(res.status, 400);
  const [reason] = await disconnected;
  assert.equal(reason, "transport close");
  assert.equal(await serverReason(probe, id), "transport error");
});

test("[websocket] malformed Engine.IO packet: server \"parse error\"", async () => {
  const { s, id, disconnected } = await setup("websocket");
  s.io.engine.transport.ws.send("x");
  const [reason] = await disconnected;
  assert.equal(reason, "transport close");
  assert.equal(await serverReason(probe, id), "parse error");
});

for (const [name, frame] of [
  ["malformed Socket.IO packet", "4zz"],
  ["unknown Socket.IO packet type", "49"],
]) {
  test(`[websocket] ${name}: the server closes the connection ("forced close")`, async () => {
    const { s, id, disconnected } = await setup("websocket");
    s.io.engine.transport.ws.send(frame);
    const [reason] = await disconnected;
    assert.equal(reason, "transport close");
    assert.equal(await serverReason(probe, id), "forced close");
  });
}

test("disconnect-all: every socket of / gets \"io server disconnect\", other namespaces stay", async () => {
  const own = await startServer({}, { dedicated: true });
  try {
    const sockets = [
      client(own.url, "/", { transports: ["websocket"] }),
      client(own.url, "/", { transports: ["polling"] }),
      client(own.url, "/", { transports: ["websocket"] }),
    ];
    const dyn = client(own.url, "/dyn-stay");
    await Promise.all([...sockets, dyn].map((s) => connected(s)));
    const ids = sockets.map((s) => s.id);
    const reasons = Promise.all(sockets.map((s) => once(s, "disconnect")));
    sockets[0].emit("disconnect-all");
    assert.deepEqual(
      (await reasons).map(([r]) => r),
      ["io server disconnect", "io server disconnect", "io server disconnect"],
    );
    assert.equal(dyn.connected, true);
    assert.equal(await ask(dyn, "name"), "/dyn-stay");
    const fresh = client(own.url);
    await connected(fresh);
    for (const id of ids) assert.equal(await serverReason(fresh, id), "server namespace disconnect");
  } finally {
    closeAll();
    await own.close();
  }
});

test("last-reason is null for a socket that is still connected or never existed", async () => {
  const { id } = await setup("websocket");
  assert.equal(await ask(probe, "last-reason", id), null);
  assert.equal(await ask(probe, "last-reason", "no-such-id"), null);
});
