// Rooms: join/leave, to-room, to-all-except, ask-room, fetch/join-all/leave-all, to-room-seq.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, client, closeAll, connected, once, ask, collect, stripOffset } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.close();
});
afterEach(closeAll);

let roomSeq = 0;
const uniqueRoom = (name) => `${name}-${process.pid}-${++roomSeq}`;

async function clients(n, opts = {}) {
  const list = Array.from({ length: n }, (_, i) =>
    client(server.url, "/", { transports: [i % 2 ? "polling" : "websocket"], ...opts }),
  );
  await Promise.all(list.map((s) => connected(s)));
  return list;
}

/** A round trip on each socket: anything the server sent before now has arrived. */
const barrier = (...sockets) => Promise.all(sockets.map((s) => ask(s, "echo", "barrier")));

test("join and leave return the sorted room list", async () => {
  const [s] = await clients(1);
  const r1 = uniqueRoom("b"), r2 = uniqueRoom("a");
  assert.deepEqual(await ask(s, "join", r1), [r1, s.id].sort());
  assert.deepEqual(await ask(s, "join", r2), [r1, r2, s.id].sort());
  assert.deepEqual(await ask(s, "join", r2), [r1, r2, s.id].sort(), "joining twice is a no-op");
  assert.deepEqual(await ask(s, "leave", r1), [r2, s.id].sort());
  assert.deepEqual(await ask(s, "leave", "never-joined"), [r2, s.id].sort());
  assert.deepEqual((await ask(s, "whoami")).rooms, [r2, s.id].sort());
});

test("to-room reaches the room members but not the sender", async () => {
  const [a, b, c, d] = await clients(4);
  const room = uniqueRoom("r");
  await Promise.all([ask(a, "join", room), ask(b, "join", room), ask(d, "join", room)]);
  const got = [a, b, c, d].map((s) => collect(s, "room"));
  a.emit("to-room", room, "hi", { n: 1 });
  await Promise.all([once(b, "room"), once(d, "room")]);
  await barrier(a, b, c, d);
  assert.equal(got[0].length, 0, "sender excluded");
  assert.deepEqual(got[1].map(stripOffset), [["hi", { n: 1 }]]);
  assert.equal(got[2].length, 0, "non-member excluded");
  assert.deepEqual(got[3].map(stripOffset), [["hi", { n: 1 }]]);
  // after leaving, nothing more arrives
  await ask(b, "leave", room);
  a.emit("to-room", room, "second");
  await once(d, "room");
  await barrier(a, b, c, d);
  assert.equal(got[1].length, 1);
  assert.deepEqual(got[3].map(stripOffset), [["hi", { n: 1 }], ["second"]]);
});

test("to-room to a socket id reaches that socket only", async () => {
  const [a, b, c] = await clients(3);
  const gotC = collect(c, "room");
  const got = once(b, "room");
  a.emit("to-room", b.id, "private");
  assert.deepEqual(stripOffset(await got), ["private"]);
  await barrier(c);
  assert.equal(gotC.length, 0);
});

test("to-all-except skips the members of the room (sender included if not a member)", async () => {
  const [a, b, c] = await clients(3);
  const room = uniqueRoom("x");
  await Promise.all([ask(a, "join", room), ask(c, "join", room)]);
  const tag = `except-${Math.random()}`;
  const got = [a, b, c].map((s) => collect(s, "except"));
  await ask(a, "to-all-except", room, tag, [1, 2]);
  await barrier(a, b, c);
  const mine = (g) => g.filter((args) => args[0] === tag).map(stripOffset);
  assert.deepEqual(mine(got[0]), []);
  assert.deepEqual(mine(got[1]), [[tag, [1, 2]]]);
  assert.deepEqual(mine(got[2]), []);
  // a sender outside the room gets it too
  const tag2 = `except2-${Math.random()}`;
  await ask(b, "to-all-except", room, tag2);
  await barrier(a, b, c);
  assert.deepEqual(got[1].filter((args) => args[0] === tag2).map(stripOffset), [[tag2]]);
  assert.deepEqual(got[0].filter((args) => args[0] === tag2), []);
});

test("ask-room collects one ack per member", async () => {
  const [a, b, c, asker] = await clients(4);
  const room = uniqueRoom("q");
  await Promise.all([a, b, c].map((s) => ask(s, "join", room)));
  a.on("question", (cb) => cb("from-a"));
  b.on("question", (cb) => cb({ from: "b" }));
  c.on("question", (cb) => cb("from-c", "extra-args-are-dropped"));
  const res = await ask(asker, "ask-room", room, 2000);
  assert.equal(res.error, null);
  // only the first argument of each ack is kept; order is arrival order
  assert.equal(res.responses.length, 3);
  const sorted = res.responses.map((r) => JSON.stringify(r)).sort();
  assert.deepEqual(sorted, ['"from-a"', '"from-c"', '{"from":"b"}']);
});

test("ask-room with a member that never answers: timeout error and the partial responses", async () => {
  const [a, b, silent, asker] = await clients(4);
  const room = uniqueRoom("q");
  await Promise.all([a, b, silent].map((s) => ask(s, "join", room)));
  a.on("question", (cb) => cb("a"));
  b.on("question", (cb) => cb("b"));
  let silentAsked = 0;
  silent.on("question", () => silentAsked++);
  const started = Date.now();
  const res = await ask(asker, "ask-room", room, 300);
  assert.ok(Date.now() - started >= 250);
  assert.equal(res.error, "operation has timed out");
  assert.deepEqual([...res.responses].sort(), ["a", "b"]);
  assert.equal(silentAsked, 1);
});

test("ask-room to an empty room answers at once with no responses", async () => {
  const [asker] = await clients(1);
  const started = Date.now();
  const res = await ask(asker, "ask-room", uniqueRoom("empty"), 3000);
  assert.deepEqual(res, { error: null, responses: [] });
  assert.ok(Date.now() - started < 2000, "should not wait for the timeout");
});

test("fetch, join-all and leave-all", async () => {
  const [a, b, c] = await clients(3);
  const f = uniqueRoom("f"), g = uniqueRoom("g");
  await Promise.all([ask(a, "join", f), ask(b, "join", f)]);
  assert.deepEqual(await ask(c, "fetch", f), [a.id, b.id].sort());
  assert.deepEqual(await ask(c, "fetch", g), []);
  assert.deepEqual(await ask(c, "fetch", c.id), [c.id]);

  await ask(c, "join-all", g, f);
  assert.deepEqual(await ask(c, "fetch", g), [a.id, b.id].sort());
  assert.deepEqual((await ask(a, "whoami")).rooms, [a.id, f, g].sort());
  // members of g now get broadcasts to g
  const got = once(b, "room");
  c.emit("to-room", g, "via-join-all");
  assert.deepEqual(stripOffset(await got), ["via-join-all"]);

  await ask(c, "leave-all", f, a.id);
  assert.deepEqual(await ask(c, "fetch", f), [b.id]);
  await ask(c, "leave-all", g, f);
  assert.deepEqual(await ask(c, "fetch", g), [a.id], "only b was still in f");
  assert.deepEqual((await ask(b, "whoami")).rooms, [b.id, f].sort());
});

test("to-room-seq: room broadcasts keep their order (and include the sender if a member)", async () => {
  const [a, b, c] = await clients(3);
  const room = uniqueRoom("seq");
  await Promise.all([ask(a, "join", room), ask(b, "join", room)]);
  const got = [a, b, c].map((s) => collect(s, "seq"));
  await ask(a, "to-room-seq", room, 300);
  await barrier(a, b, c);
  const expected = [...Array(300).keys()].map((i) => [i]);
  assert.deepEqual(got[0].map(stripOffset), expected);
  assert.deepEqual(got[1].map(stripOffset), expected);
  assert.equal(got[2].length, 0);
  // same broadcast, same offset on each receiver
  assert.deepEqual(
    got[0].map((x) => x[1]),
    got[1].map((x) => x[1]),
  );
});
