// socket.io-msgpack-parser on both sides (server started with PARSER=msgpack).
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import msgpackParser from "socket.io-msgpack-parser";
import {
  startServer,
  client,
  closeAll,
  connected,
  connectError,
  once,
  ask,
  normalize,
  stripOffset,
  serverReason,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer({ PARSER: "msgpack" });
});
after(async () => {
  await server.close();
});
afterEach(closeAll);

const mp = (transport, extra = {}) => ({ transports: [transport], parser: msgpackParser, ...extra });

for (const transport of ["websocket", "polling"]) {
  const tag = `[msgpack/${transport}]`;

  test(`${tag} echo with ack and without`, async () => {
    const s = client(server.url, "/", mp(transport));
    await connected(s);
    const args = [1, -2.5, "str", null, true, { a: [1, { b: "c" }] }, [], {}];
    const res = await new Promise((resolve, reject) =>
      s.timeout(5000).emit("echo", ...args, (err, ...r) => (err ? reject(err) : resolve(r))),
    );
    assert.deepEqual(res, args);
    const ev = once(s, "echo");
    s.emit("echo", "no-ack", 2 ** 40);
    assert.deepEqual(stripOffset(await ev), ["no-ack", 2 ** 40]);
  });

  test(`${tag} binary`, async () => {
    const s = client(server.url, "/", mp(transport));
    await connected(s);
    const args = [Buffer.from([1, 2, 3]), { nested: [Buffer.alloc(0), Buffer.from("hi")] }];
    const res = await new Promise((resolve, reject) =>
      s.timeout(5000).emit("echo", ...args, (err, ...r) => (err ? reject(err) : resolve(r))),
    );
    assert.deepEqual(normalize(res), normalize(args));
  });

  test(`${tag} acks: server -> client, timeouts`, async () => {
    const s = client(server.url, "/", mp(transport));
    await connected(s);
    s.on("question", (...a) => a.pop()("answer", ...a));
    assert.deepEqual(await ask(s, "ask-me", 2000, "q", 1), { response: ["answer", "q", 1] });
    s.off("question");
    s.on("question", () => {});
    assert.deepEqual(await ask(s, "ask-me", 100), { error: "operation has timed out" });
    await assert.rejects(s.timeout(100).emitWithAck("no-such-event"), /operation has timed out/);
  });

  test(`${tag} namespaces: /admin accepted and refused (error data survives msgpack)`, async () => {
    const ok = client(server.url, "/admin", mp(transport, { auth: { token: "secret" } }));
    await connected(ok);
    assert.deepEqual((await ask(ok, "whoami")).auth, { token: "secret" });
    const bad = client(server.url, "/admin", mp(transport, { auth: { token: "bad" } }));
    const err = await connectError(bad);
    assert.equal(err.message, "not authorized");
    assert.deepEqual(err.data, { reason: "bad token" });
    const unknown = client(server.url, "/nope", mp(transport));
    assert.equal((await connectError(unknown)).message, "Invalid namespace");
  });

  test(`${tag} rooms and disconnect reasons`, async () => {
    const a = client(server.url, "/", mp(transport));
    const b = client(server.url, "/", mp(transport));
    await Promise.all([connected(a), connected(b)]);
    const room = `mp-${transport}`;
    assert.deepEqual(await ask(b, "join", room), [b.id, room].sort());
    const got = once(b, "room");
    a.emit("to-room", room, { x: 1 });
    assert.deepEqual(stripOffset(await got), [{ x: 1 }]);
    const id = b.id;
    const disc = once(b, "disconnect");
    b.emit("disconnect-me", false);
    assert.equal((await disc)[0], "io server disconnect");
    assert.equal(await serverReason(a, id), "server namespace disconnect");
  });
}

test("[msgpack] a JSON-parser client is cut off by a msgpack server", async () => {
  // the client's text CONNECT frame is not msgpack: the server closes the connection at once
  const s = client(server.url, "/", { transports: ["websocket"] });
  let connectedEver = false;
  s.on("connect", () => (connectedEver = true));
  const [reason] = await once(s.io, "close", 3000);
  assert.equal(reason, "transport close");
  assert.equal(connectedEver, false);
});
