// Namespaces: /admin with a connect middleware, dynamic namespaces, unknown namespaces,
// multiplexing several namespaces over one Engine.IO connection.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  startServer,
  client,
  manager,
  closeAll,
  connected,
  connectError,
  once,
  ask,
  serverReason,
  stripOffset,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.close();
});
afterEach(closeAll);

for (const transport of ["websocket", "polling"]) {
  test(`[${transport}] /admin with the right token connects`, async () => {
    const s = client(server.url, "/admin", { transports: [transport], auth: { token: "secret", extra: [1] } });
    await connected(s);
    const me = await ask(s, "whoami");
    assert.deepEqual(me, {
      id: s.id,
      recovered: false,
      rooms: [s.id],
      transport,
      auth: { token: "secret", extra: [1] },
    });
    assert.equal(await ask(s, "echo", "admin-echo"), "admin-echo");
    // "/" events do not exist on /admin
    await assert.rejects(s.timeout(200).emitWithAck("get-data"), /operation has timed out/);
  });

  test(`[${transport}] /admin with a bad token: connect_error with message and data`, async () => {
    const s = client(server.url, "/admin", { transports: [transport], auth: { token: "nope" } });
    const err = await connectError(s);
    assert.ok(err instanceof Error);
    assert.equal(err.message, "not authorized");
    assert.deepEqual(err.data, { reason: "bad token" });
    assert.equal(s.connected, false);
    assert.equal(s.id, undefined);
  });

  test(`[${transport}] unknown namespace: connect_error "Invalid namespace"`, async () => {
    const s = client(server.url, "/nope", { transports: [transport] });
    const err = await connectError(s);
    assert.equal(err.message, "Invalid namespace");
    assert.equal(err.data, undefined);
  });
}

test("/admin without any auth is refused", async () => {
  const s = client(server.url, "/admin");
  const err = await connectError(s);
  assert.equal(err.message, "not authorized");
  assert.deepEqual(err.data, { reason: "bad token" });
});

test("dynamic namespace /dyn-abc connects; its name is reported", async () => {
  const s = client(server.url, "/dyn-abc");
  await connected(s);
  assert.equal(await ask(s, "name"), "/dyn-abc");
  assert.equal(await ask(s, "echo", 5), 5);
  const t = client(server.url, "/dyn-x9");
  await connected(t);
  assert.equal(await ask(t, "name"), "/dyn-x9");
});

test("names that do not match the dynamic pattern are invalid", async () => {
  for (const nsp of ["/dyn-", "/dyn-ABC", "/dyn-a_b", "/Admin"]) {
    const s = client(server.url, nsp);
    const err = await connectError(s);
    assert.equal(err.message, "Invalid namespace", nsp);
  }
});

test("several namespaces share one Engine.IO connection", async () => {
  const m = manager(server.url, { transports: ["websocket"] });
  const root = m.socket("/");
  const admin = m.socket("/admin", { auth: { token: "secret" } });
  const dyn = m.socket("/dyn-multi");
  const bad = m.socket("/nope");
  const badErr = connectError(bad).catch((e) => e);
  await Promise.all([connected(root), connected(admin), connected(dyn)]);
  assert.ok(m.engine.id);
  // each namespace socket has its own id
  assert.equal(new Set([root.id, admin.id, dyn.id]).size, 3);
  assert.equal((await ask(admin, "whoami")).id, admin.id);
  assert.equal(await ask(dyn, "name"), "/dyn-multi");
  assert.equal(await ask(root, "echo", "root"), "root");
  // events do not leak between namespaces
  const gotAdmin = [];
  admin.on("echo", (...a) => gotAdmin.push(a));
  const rootEcho = once(root, "echo");
  root.emit("echo", "only-root");
  assert.deepEqual(stripOffset(await rootEcho), ["only-root"]);
  assert.equal(await ask(admin, "echo", "x"), "x");
  assert.deepEqual(gotAdmin, []);
  // a refused namespace on the same connection does not disturb the others
  const err = await badErr;
  assert.equal(err.message, "Invalid namespace");
  assert.equal(await ask(root, "echo", "still"), "still");

  // leaving one namespace: server sees "client namespace disconnect", the others stay
  const adminId = admin.id;
  const [reason] = await Promise.all([once(admin, "disconnect"), Promise.resolve(admin.disconnect())]);
  assert.deepEqual(reason, ["io client disconnect", undefined]);
  assert.equal(await serverReason(root, adminId), "client namespace disconnect");
  assert.equal(root.connected, true);
  assert.equal(await ask(dyn, "echo", "dyn-still"), "dyn-still");
});
