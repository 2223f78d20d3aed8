// Connection state recovery (maxDisconnectionDuration 120000, skipMiddlewares true).
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, client, closeAll, connected, once, ask, collect, stripOffset, serverReason } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.close();
});
afterEach(closeAll);

const N = 20;

for (const transport of ["websocket", "polling"]) {
  test(`[${transport}] drop-transport, missed room messages are replayed exactly once, in order`, async () => {
    const room = `rec-${transport}-${process.pid}`;
    const a = client(server.url, "/", {
      transports: [transport],
      reconnection: true,
      reconnectionDelay: 300,
      reconnectionDelayMax: 300,
      randomizationFactor: 0,
    });
    const b = client(server.url, "/", { transports: ["websocket"] });
    await Promise.all([connected(a), connected(b)]);
    const id = a.id;
    assert.equal(a.recovered, false);
    await ask(a, "join", room);
    await ask(a, "set-data", { kept: true });

    const got = collect(a, "room");
    // message 0 while connected: the client learns an offset (recovery needs one)
    b.emit("to-room", room, 0);
    await once(a, "room");

    const disconnected = once(a, "disconnect");
    a.emit("drop-transport");
    const [reason] = await disconnected;
    assert.equal(reason, "transport close");
    // the server has already closed the session: reason "forced close"
    assert.equal(await serverReason(b, id), "forced close");

    // while A is away
    for (let i = 1; i <= N; i++) b.emit("to-room", room, i);
    await ask(b, "echo", "barrier"); // all N were handled by the server
    assert.equal(a.connected, false);

    await once(a, "connect", 5000);
    assert.equal(a.recovered, true);
    assert.equal(a.id, id);
    // the replayed packets are delivered with (or right after) the CONNECT
    await ask(a, "echo", "barrier");
    const values = got.map((args) => stripOffset(args));
    assert.deepEqual(values, [...Array(N + 1).keys()].map((i) => [i]));
    // offsets are unique
    assert.equal(new Set(got.map((args) => args[1])).size, N + 1);

    const me = await ask(a, "whoami");
    assert.deepEqual(me, { id, recovered: true, rooms: [id, room].sort(), transport });
    assert.deepEqual(await ask(a, "get-data"), { kept: true });
    // still in its room
    const more = once(a, "room");
    b.emit("to-room", room, "after");
    assert.deepEqual(stripOffset(await more), ["after"]);
  });
}

test("recovery skips the connect middleware of /admin (skipMiddlewares)", async () => {
  const s = client(server.url, "/admin", {
    transports: ["websocket"],
    auth: { token: "secret" },
    reconnection: true,
    reconnectionDelay: 50,
    randomizationFactor: 0,
  });
  await connected(s);
  const id = s.id;
  // to get an offset, the server must send us a stored packet: echo without ack does
  const echoed = once(s, "echo");
  s.emit("echo", "x");
  await echoed;
  // from now on the token is wrong: a fresh connection would be refused
  s.auth = { token: "wrong" };
  // drop the engine connection from the client side (server reason "transport close")
  const [pid, offset] = [s._pid, s._lastOffset];
  assert.equal(typeof pid, "string");
  assert.equal(typeof offset, "string");
  s.io.engine.transport.ws._socket.destroy();
  await once(s, "disconnect");
  await once(s, "connect");
  assert.equal(s.recovered, true);
  assert.equal(s.id, id);
  // the restored socket carries the new handshake: its auth is what the client sent this time,
  // including the pid and offset the client adds for recovery
  assert.deepEqual((await ask(s, "whoami")).auth, { token: "wrong", pid, offset });
});

test("without a received offset the client is not recovered (new id)", async () => {
  const a = client(server.url, "/", { reconnection: true, reconnectionDelay: 50, randomizationFactor: 0 });
  await connected(a);
  const id = a.id;
  await ask(a, "echo", "acks carry no offset");
  a.emit("drop-transport");
  await once(a, "disconnect");
  await once(a, "connect");
  assert.equal(a.recovered, false);
  assert.notEqual(a.id, id);
});

test("after \"io server disconnect\" the session is gone: reconnecting gives a new id", async () => {
  const a = client(server.url);
  await connected(a);
  const id = a.id;
  const echoed = once(a, "echo");
  a.emit("echo", "get an offset");
  await echoed;
  const disconnected = once(a, "disconnect");
  a.emit("disconnect-me", false);
  assert.equal((await disconnected)[0], "io server disconnect");
  a.connect();
  await connected(a);
  assert.equal(a.recovered, false);
  assert.notEqual(a.id, id);
});

test("a bogus pid/offset is not recovered", async () => {
  const a = client(server.url);
  await connected(a);
  // simulate a client that remembers a session the server never had
  a.disconnect();
  a._pid = "does-not-exist";
  a._lastOffset = "nope";
  a.connect();
  await connected(a);
  assert.equal(a.recovered, false);
  assert.equal((await ask(a, "whoami")).recovered, false);
});
