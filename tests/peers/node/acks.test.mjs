// Acknowledgements both ways, with and without timeouts.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, client, closeAll, connected, once, ask, stripOffset } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.close();
});
afterEach(closeAll);

for (const transport of ["websocket", "polling"]) {
  test(`[${transport}] echo with ack returns every argument`, async () => {
    const s = client(server.url, "/", { transports: [transport] });
    await connected(s);
    const args = await new Promise((resolve, reject) => {
      s.timeout(5000).emit("echo", 1, "two", { three: [3, 3.5, null, true] }, "ünïcödé ✓", (err, ...res) =>
        err ? reject(err) : resolve(res),
      );
    });
    assert.deepEqual(args, [1, "two", { three: [3, 3.5, null, true] }, "ünïcödé ✓"]);
  });

  test(`[${transport}] echo without ack comes back as an event`, async () => {
    const s = client(server.url, "/", { transports: [transport] });
    await connected(s);
    const got = once(s, "echo");
    s.emit("echo", "a", { b: 1 }, [2]);
    assert.deepEqual(stripOffset(await got), ["a", { b: 1 }, [2]]);
  });

  test(`[${transport}] ack with no arguments`, async () => {
    const s = client(server.url, "/", { transports: [transport] });
    await connected(s);
    const res = await new Promise((resolve, reject) => {
      s.timeout(5000).emit("set-data", "x", (err, ...r) => (err ? reject(err) : resolve(r)));
    });
    assert.deepEqual(res, []);
  });

  test(`[${transport}] server -> client ack (ask-me)`, async () => {
    const s = client(server.url, "/", { transports: [transport] });
    await connected(s);
    let questionArgs;
    s.on("question", (...args) => {
      const cb = args.pop();
      questionArgs = args;
      cb("answer", ...args, { n: 42 });
    });
    const res = await ask(s, "ask-me", 2000, "q", 7, { deep: ["x"] });
    assert.deepEqual(questionArgs, ["q", 7, { deep: ["x"] }]);
    assert.deepEqual(res, { response: ["answer", "q", 7, { deep: ["x"] }, { n: 42 }] });
  });

  test(`[${transport}] server-side ack timeout when the client never answers`, async () => {
    const s = client(server.url, "/", { transports: [transport] });
    await connected(s);
    let asked = 0;
    s.on("question", () => {
      asked++; // never call the ack
    });
    const started = Date.now();
    const res = await ask(s, "ask-me", 200, "q");
    assert.deepEqual(res, { error: "operation has timed out" });
    assert.equal(asked, 1);
    assert.ok(Date.now() - started >= 150, "timed out too early");
  });
}

test("client-side ack timeout (emitWithAck to an event the server ignores)", async () => {
  const s = client(server.url);
  await connected(s);
  const started = Date.now();
  await assert.rejects(s.timeout(200).emitWithAck("no-such-event", 1), (err) => {
    assert.equal(err.message, "operation has timed out");
    return true;
  });
  assert.ok(Date.now() - started >= 150);
  // callback flavour
  const err = await new Promise((resolve) => s.timeout(100).emit("no-such-event", (e) => resolve(e)));
  assert.ok(err instanceof Error);
  assert.equal(err.message, "operation has timed out");
  // the connection is still fine
  assert.equal(await ask(s, "echo", "still here"), "still here");
});

test("a late server ack after the client timeout is ignored", async () => {
  const s = client(server.url);
  await connected(s);
  s.on("question", (cb) => setTimeout(() => cb("late"), 300));
  // the server waits 1000 ms for our answer; we give up after 100 ms
  await assert.rejects(s.timeout(100).emitWithAck("ask-me", 1000), /operation has timed out/);
  // our answer (after 300 ms) still reaches the server, which acks us late: no crash
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(await ask(s, "echo", "ok"), "ok");
});

test("many concurrent acks are matched to the right calls", async () => {
  const s = client(server.url);
  await connected(s);
  const n = 500;
  const res = await Promise.all(Array.from({ length: n }, (_, i) => ask(s, "echo", { i })));
  assert.deepEqual(
    res,
    Array.from({ length: n }, (_, i) => ({ i })),
  );
});
