// Per-socket data, onAny, volatile, ordering, serverSideEmit.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, client, closeAll, connected, ask, collect, eventually, stripOffset } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.close();
});
afterEach(closeAll);

test("per-socket data is kept per socket", async () => {
  const a = client(server.url);
  const b = client(server.url);
  await Promise.all([connected(a), connected(b)]);
  assert.equal(await ask(a, "get-data"), null);
  await ask(a, "set-data", { name: "alice", tags: ["x", "y"] });
  await ask(b, "set-data", 17);
  assert.deepEqual(await ask(a, "get-data"), { name: "alice", tags: ["x", "y"] });
  assert.equal(await ask(b, "get-data"), 17);
  await ask(a, "set-data", null);
  assert.equal(await ask(a, "get-data"), null);
});

test("onAny sees every incoming event (last-any)", async () => {
  const s = client(server.url);
  await connected(s);
  assert.equal(await ask(s, "last-any"), null);
  s.emit("no-such-event", 1, { two: 2 }, [3]);
  assert.deepEqual(await ask(s, "last-any"), ["no-such-event", 1, { two: 2 }, [3]]);
  // an event with an ack: the ack callback is not part of the recorded args
  await ask(s, "echo", "e");
  assert.deepEqual(await ask(s, "last-any"), ["echo", "e"]);
  await ask(s, "get-data");
  assert.deepEqual(await ask(s, "last-any"), ["get-data"]);
});

for (const transport of ["websocket", "polling"]) {
  test(`[${transport}] volatile emits do not break the connection`, async () => {
    const s = client(server.url, "/", { transports: [transport] });
    await connected(s);
    const got = collect(s, "v");
    await ask(s, "volatile", 100);
    // whatever volatile packets were delivered arrive in order and are well-formed
    assert.equal(await ask(s, "echo", "after"), "after");
    // volatile packets are not stored for recovery: no offset argument
    const values = got.map((args) => {
      assert.equal(args.length, 1, `unexpected extra args ${JSON.stringify(args)}`);
      return args[0];
    });
    for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], "volatile out of order");
    for (const v of values) assert.ok(Number.isInteger(v) && v >= 0 && v < 100);
  });

  test(`[${transport}] burst: 1000 events arrive in order`, async () => {
    const s = client(server.url, "/", { transports: [transport] });
    await connected(s);
    const got = collect(s, "seq");
    await ask(s, "burst", 1000);
    // the ack is sent after the 1000 events on the same connection, so they all precede it
    assert.equal(got.length, 1000);
    assert.deepEqual(
      got.map((a) => stripOffset(a)),
      [...Array(1000).keys()].map((i) => [i]),
    );
    // every stored packet has its own offset
    assert.equal(new Set(got.map((a) => a[1])).size, 1000);
  });
}

test("to-all reaches every socket including the sender", async () => {
  const a = client(server.url);
  const b = client(server.url, "/", { transports: ["polling"] });
  await Promise.all([connected(a), connected(b)]);
  const tag = `all-${Math.random()}`;
  const gotA = collect(a, "all");
  const gotB = collect(b, "all");
  await ask(a, "to-all", tag, 2);
  await eventually(() => (gotB.some((x) => x[0] === tag) ? true : null));
  const mine = (got) => got.filter((x) => x[0] === tag);
  assert.equal(mine(gotA).length, 1);
  assert.equal(mine(gotB).length, 1);
  assert.deepEqual(stripOffset(mine(gotA)[0]), [tag, 2]);
  assert.deepEqual(stripOffset(mine(gotB)[0]), [tag, 2]);
  // one broadcast = one stored packet = the same offset for every receiver
  assert.equal(mine(gotA)[0][2], mine(gotB)[0][2]);
});

test("server-emit (serverSideEmit on a single node) acks and does not disturb clients", async () => {
  const s = client(server.url);
  await connected(s);
  const got = collect(s, "hello");
  await ask(s, "server-emit", "world", 1);
  assert.equal(await ask(s, "echo", "ok"), "ok");
  assert.deepEqual(got, []);
});
