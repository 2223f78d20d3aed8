// Transports: WebSocket only, polling only, polling then upgrade.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, client, closeAll, connected, once, ask, sleep } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.close();
});
afterEach(closeAll);

test("websocket only: connects, echoes, server sees websocket", async () => {
  const s = client(server.url, "/", { transports: ["websocket"] });
  const handshake = once(s.io.engine, "handshake");
  await connected(s);
  assert.equal(s.io.engine.transport.name, "websocket");
  assert.match(s.id, /^[\w-]{20}$/);
  const me = await ask(s, "whoami");
  assert.deepEqual(me, { id: s.id, recovered: false, rooms: [s.id], transport: "websocket" });
  assert.deepEqual(await ask(s, "echo", "hello", 1, { a: [true, null] }), "hello");
  // the handshake (over the WebSocket) offers no upgrades
  const [hs] = await handshake;
  assert.deepEqual(hs, {
    sid: s.io.engine.id,
    upgrades: [],
    pingInterval: 25000,
    pingTimeout: 20000,
    maxPayload: 1000000,
  });
});

test("polling only: connects, echoes, stays on polling", async () => {
  const s = client(server.url, "/", { transports: ["polling"] });
  await connected(s);
  assert.equal(s.io.engine.transport.name, "polling");
  const me = await ask(s, "whoami");
  assert.equal(me.id, s.id);
  assert.equal(me.transport, "polling");
  // several packets in flight at once are batched into one payload
  const results = await Promise.all([1, 2, 3, 4, 5].map((i) => ask(s, "echo", `msg-${i}`)));
  assert.deepEqual(results, ["msg-1", "msg-2", "msg-3", "msg-4", "msg-5"]);
  // a large payload (the server may compress the response)
  const big = "x".repeat(100_000) + "é€😀";
  assert.equal(await ask(s, "echo", big), big);
  await sleep(100);
  assert.equal(s.io.engine.transport.name, "polling");
});

test("polling then upgrade to websocket", async () => {
  const s = client(server.url, "/", { transports: ["polling", "websocket"] });
  const handshake = once(s.io.engine, "handshake").then((hs) => [hs[0], s.io.engine.transport.name]);
  const upgraded = once(s.io.engine, "upgrade");
  await connected(s);
  const [hs, firstTransport] = await handshake;
  assert.equal(firstTransport, "polling");
  assert.deepEqual(hs.upgrades, ["websocket"]);
  const [transport] = await upgraded;
  assert.equal(transport.name, "websocket");
  assert.equal(s.io.engine.transport.name, "websocket");
  const me = await ask(s, "whoami");
  assert.equal(me.transport, "websocket");
  assert.equal(me.id, s.id);
  assert.equal(await ask(s, "echo", "after upgrade"), "after upgrade");
});

test("messages sent during the upgrade are not lost", async () => {
  const s = client(server.url, "/", { transports: ["polling", "websocket"] });
  await connected(s);
  const acks = [];
  for (let i = 0; i < 50; i++) acks.push(ask(s, "echo", i));
  const upgraded =
    s.io.engine.transport.name === "websocket" ? Promise.resolve() : once(s.io.engine, "upgrade");
  for (let i = 50; i < 100; i++) acks.push(ask(s, "echo", i));
  assert.deepEqual(await Promise.all(acks), [...Array(100).keys()]);
  await upgraded;
  assert.equal(s.io.engine.transport.name, "websocket");
});
