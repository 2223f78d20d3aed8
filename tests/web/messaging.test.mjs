// web/iolite.js in Chromium: events, acks both ways, timeouts, binary, namespaces, auth,
// disconnect reasons.
import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { SERVER_KINDS, startServer, startPageServer, launchBrowser, openPage, checkPage } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser.close();
});

for (const kind of SERVER_KINDS) {
  describe(`[${kind}] messaging`, () => {
    let server, pages, page;
    before(async () => {
      server = await startServer(kind);
      pages = await startPageServer();
    });
    after(async () => {
      await pages.close();
      await server.close();
    });
    afterEach(async () => {
      if (!page) return;
      const p = page;
      page = null;
      await p.done();
      checkPage(p);
    });
    const run = async (fn, arg = {}) => {
      page = await openPage(browser, pages.url);
      return page.evaluate(fn, { url: server.url, ...arg });
    };

    test("events: on/once/off/onAny/offAny; server events carry the recovery offset as last argument", async () => {
      const r = await run(async ({ url }) => {
        const s = h.io(url);
        await h.connected(s);
        const all = h.collect(s, "echo");
        const onceGot = [];
        s.once("echo", (...a) => onceGot.push(a));
        const any = [];
        const anyFn = (...a) => any.push(a);
        s.onAny(anyFn);
        const removed = [];
        const removedFn = (...a) => removed.push(a);
        s.on("echo", removedFn);
        s.off("echo", removedFn);
        s.emit("echo", "one");
        await h.until(() => all.length === 1);
        s.offAny(anyFn);
        s.emit("echo", "two", { n: 2 });
        await h.until(() => all.length === 2);
        let reserved = null;
        try {
          s.emit("connect");
        } catch (e) {
          reserved = e.message;
        }
        return { all, onceGot, any, removed, lastAny: await h.ask(s, "last-any"), reserved };
      });
      assert.equal(r.all.length, 2);
      assert.equal(typeof r.all[0][1], "string");
      assert.deepEqual(r.all.map((a) => a.slice(0, -1)), [["one"], ["two", { n: 2 }]]);
      assert.notEqual(r.all[0][1], r.all[1][2], "each stored packet has its own offset");
      assert.deepEqual(r.onceGot, [r.all[0]]);
      assert.deepEqual(r.any, [["echo", ...r.all[0]]]);
      assert.deepEqual(r.removed, []);
      assert.deepEqual(r.lastAny, ["echo", "two", { n: 2 }]);
      assert.equal(r.reserved, '"connect" is a reserved event name');
    });

    test("acks both ways: client -> server ack, server -> client ack, server-side ack timeout", async () => {
      const r = await run(async ({ url }) => {
        const s = h.io(url);
        await h.connected(s);
        const acked = await h.acked(s, "echo", "a", 2, [3], { four: 4 });
        const questions = [];
        s.on("question", (...args) => {
          const ack = args.pop();
          questions.push(args);
          if (args[0] !== "ignore me") ack("answer to " + args[0], 42);
        });
        const answered = await h.ask(s, "ask-me", 2000, "q1", { x: 1 });
        const unanswered = await h.ask(s, "ask-me", 200, "ignore me");
        const empty = await h.acked(s, "echo");
        return { acked, answered, unanswered, questions, empty };
      });
      assert.deepEqual(r.acked, ["a", 2, [3], { four: 4 }]);
      assert.deepEqual(r.answered, { response: ["answer to q1", 42] });
      assert.deepEqual(r.unanswered, { error: "operation has timed out" });
      assert.deepEqual(r.questions, [["q1", { x: 1 }], ["ignore me"]]);
      assert.deepEqual(r.empty, []);
    });

    test("timeout(ms).emit, emitWithAck and ackTimeout", async () => {
      const r = await run(async ({ url }) => {
        const s = h.io(url);
        await h.connected(s);
        const t0 = Date.now();
        // nobody acks an event the server has no handler for
        const [timedOut, ...rest] = await h.within(new Promise((res) => s.timeout(200).emit("nobody-listens", 1, (...a) => res(a))));
        const waited = Date.now() - t0;
        const inTime = await h.within(new Promise((res) => s.timeout(2000).emit("echo", "x", "y", (...a) => res(a))));
        const withAck = await h.within(s.emitWithAck("echo", "z", "ignored"));
        let rejected = null;
        await h.within(s.timeout(100).emitWithAck("nobody-listens").catch((e) => (rejected = e.message)));
        const s2 = h.io(url, { ackTimeout: 150 });
        await h.connected(s2);
        const [optErr] = await h.within(new Promise((res) => s2.emit("nobody-listens", (...a) => res(a))));
        const [optOk, optRes] = await h.within(new Promise((res) => s2.emit("echo", 7, (...a) => res(a))));
        return { timedOut: timedOut && timedOut.message, rest, waited, inTime, withAck, rejected, opt: [optErr.message, optOk, optRes], pending: Object.keys(s.acks).length };
      });
      assert.equal(r.timedOut, "operation has timed out");
      assert.deepEqual(r.rest, []);
      assert.ok(r.waited >= 190 && r.waited < 1500, `waited ${r.waited}`);
      assert.deepEqual(r.inTime, [null, "x", "y"]);
      assert.equal(r.withAck, "z");
      assert.equal(r.rejected, "operation has timed out");
      assert.deepEqual(r.opt, ["operation has timed out", null, 7]);
      assert.equal(r.pending, 0);
    });

    for (const transport of ["websocket", "polling"]) {
      test(`[${transport}] binary both ways: ArrayBuffer and typed arrays at any depth`, async () => {
        const r = await run(
          async ({ url, transport }) => {
            const s = h.io(url, { transports: [transport] });
            await h.connected(s);
            const whole = new Uint8Array([0, 1, 2, 253, 254, 255]).buffer;
            const backing = new Uint8Array([9, 9, 10, 11, 12, 9]);
            const view = backing.subarray(2, 5); // only these 3 bytes go out
            const i16 = new Int16Array([-2, 513]);
            const big = new Uint8Array(70000).map((_, i) => i % 251);
            const sent = [whole, "text", { nested: [view, { deep: i16 }], n: 1 }, big];
            const acked = await h.acked(s, "echo", ...sent);
            // server -> client as an event (with its offset), and client ack with binary -> server
            const evt = h.once(s, "echo");
            s.emit("echo", view, "plain");
            const [evBin, evText, offset] = await evt;
            s.on("question", (q, ack) => ack(new Uint8Array([q.byteLength, 7, 8]), { b: new Float32Array([1.5]) }));
            const viaAck = await h.ask(s, "ask-me", 2000, new ArrayBuffer(5));
            return {
              acked: h.norm(acked),
              isArrayBuffer: acked[0] instanceof ArrayBuffer && acked[2].nested[0] instanceof ArrayBuffer,
              bigOk: acked[3].byteLength === 70000 && new Uint8Array(acked[3]).every((b, i) => b === i % 251),
              ev: h.norm([evBin, evText]),
              offset: typeof offset,
              viaAck: h.norm(viaAck),
              engine: s.io.engine.transport.name,
            };
          },
          { transport }
        );
        assert.equal(r.engine, transport);
        assert.deepEqual(r.acked.slice(0, 3), [
          { ArrayBuffer: "000102fdfeff" },
          "text",
          { nested: [{ ArrayBuffer: "0a0b0c" }, { deep: { ArrayBuffer: "feff0102" } }], n: 1 },
        ]);
        assert.equal(r.isArrayBuffer, true);
        assert.equal(r.bigOk, true);
        assert.deepEqual(r.ev, [{ ArrayBuffer: "0a0b0c" }, "plain"]);
        assert.equal(r.offset, "string");
        assert.deepEqual(r.viaAck, { response: [{ ArrayBuffer: "050708" }, { b: { ArrayBuffer: "0000c03f" } }] });
      });
    }

    test("namespaces from the URL: /dyn-<x> connects, an unknown one gets connect_error", async () => {
      const r = await run(async ({ url }) => {
        const d = h.io(url + "/dyn-abc1");
        await h.connected(d);
        const name = await h.ask(d, "name");
        const bad = h.io(url + "/nope");
        const [err] = await h.once(bad, "connect_error");
        return { name, nsp: d.nsp, err: err.message, active: bad.active };
      });
      assert.equal(r.name, "/dyn-abc1");
      assert.equal(r.nsp, "/dyn-abc1");
      assert.equal(r.err, "Invalid namespace");
      assert.equal(r.active, false);
    });

    test("multiplexing: io() calls for one server share the connection, one socket per namespace", async () => {
      const r = await run(async ({ url }) => {
        const a = iolite.io(url, { reconnection: false });
        const b = iolite.io(url + "/dyn-mux", { reconnection: false });
        const c = iolite.io(url, { reconnection: false }); // same namespace again: new connection
        await Promise.all([h.connected(a), h.connected(b), h.connected(c)]);
        const res = { shared: a.io === b.io, separate: a.io !== c.io, ids: new Set([a.id, b.id, c.id]).size };
        res.name = await h.ask(b, "name");
        for (const s of [a, b, c]) s.disconnect();
        return res;
      });
      assert.deepEqual(r, { shared: true, separate: true, ids: 3, name: "/dyn-mux" });
    });

    test("auth: refusal gives connect_error with message and data, no reconnection; auth as a function passes", async () => {
      const r = await run(async ({ url }) => {
        const s = h.io(url + "/admin", { auth: { token: "wrong" }, reconnection: true, reconnectionDelay: 50 });
        let attempts = 0;
        s.io.on("reconnect_attempt", () => attempts++);
        const [err] = await h.once(s, "connect_error");
        await h.sleep(400);
        const ok = h.io(url + "/admin", { auth: (cb) => setTimeout(() => cb({ token: "secret", user: "ann" }), 10) });
        await h.connected(ok);
        return { message: err.message, data: err.data, attempts, connected: s.connected, active: s.active, who: await h.ask(ok, "whoami") };
      });
      assert.equal(r.message, "not authorized");
      assert.deepEqual(r.data, { reason: "bad token" });
      assert.equal(r.attempts, 0);
      assert.equal(r.connected, false);
      assert.equal(r.active, false);
      assert.deepEqual(r.who.auth, { token: "secret", user: "ann" });
    });

    test("disconnect reasons: io server disconnect (no reconnection), io client disconnect, connect() again", async () => {
      const r = await run(async ({ url }) => {
        const watcher = h.io(url);
        const s = h.io(url, { reconnection: true, reconnectionDelay: 50, randomizationFactor: 0 });
        await Promise.all([h.connected(watcher), h.connected(s)]);
        let attempts = 0;
        s.io.on("reconnect_attempt", () => attempts++);
        const firstId = s.id;
        const bye = h.once(s, "disconnect");
        s.emit("disconnect-me", false);
        const [serverReason] = await bye;
        await h.sleep(300);
        const afterServer = { connected: s.connected, attempts, id: s.id };
        const serverSide1 = await h.ask(watcher, "last-reason", firstId);

        s.connect();
        await h.connected(s);
        const secondId = s.id;
        const reasons = h.collect(s, "disconnect");
        s.disconnect();
        await h.sleep(300);
        const serverSide2 = await h.ask(watcher, "last-reason", secondId);
        return { serverReason, afterServer, serverSide1, secondId, firstId, reasons, serverSide2, connected: s.connected };
      });
      assert.equal(r.serverReason, "io server disconnect");
      assert.deepEqual(r.afterServer, { connected: false, attempts: 0, id: undefined });
      assert.equal(r.serverSide1, "server namespace disconnect");
      assert.notEqual(r.secondId, r.firstId);
      assert.deepEqual(r.reasons.map((a) => a[0]), ["io client disconnect"]);
      assert.equal(r.serverSide2, "client namespace disconnect");
      assert.equal(r.connected, false);
    });

    for (const transport of ["websocket", "polling"]) {
      test(`[${transport}] closing: what the client and the server each record`, async () => {
        const r = await run(
          async ({ url, transport }) => {
            const watcher = h.io(url);
            await h.connected(watcher);
            const out = {};
            // socket.disconnect(): the DISCONNECT reaches the server before the connection closes
            const a = h.io(url, { transports: [transport] });
            await h.connected(a);
            const aId = a.id;
            a.disconnect();
            // the engine closed from the client: "forced close" here, "transport close" there
            const b = h.io(url, { transports: [transport] });
            await h.connected(b);
            const bId = b.id;
            const bReason = h.once(b, "disconnect");
            b.io.engine.close();
            out.engineClose = (await bReason)[0];
            // disconnect-me with close=true
            const c = h.io(url, { transports: [transport] });
            await h.connected(c);
            const cReason = h.once(c, "disconnect");
            const cId = c.id;
            c.emit("disconnect-me", true);
            out.serverClose = (await cReason)[0];
            for (let i = 0; i < 100; i++) {
              out.server = await Promise.all([aId, bId, cId].map((id) => h.ask(watcher, "last-reason", id)));
              if (!out.server.includes(null)) break;
              await h.sleep(20);
            }
            return out;
          },
          { transport }
        );
        assert.equal(r.engineClose, "forced close");
        assert.equal(r.serverClose, "io server disconnect");
        assert.deepEqual(r.server, ["client namespace disconnect", "transport close", "server namespace disconnect"]);
      });
    }

    test("server volatile emits: whatever arrives is in order, without offset; a client volatile emit goes out when connected", async () => {
      const r = await run(async ({ url }) => {
        const s = h.io(url);
        await h.connected(s);
        const v = h.collect(s, "v");
        await h.ask(s, "volatile", 20);
        await h.ask(s, "echo", "barrier");
        s.volatile.emit("echo", "vol");
        const [echo] = await h.once(s, "echo");
        return { v, echo };
      });
      for (const args of r.v) assert.equal(args.length, 1, `volatile packets are not stored: ${JSON.stringify(args)}`);
      const values = r.v.map((a) => a[0]);
      for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], "volatile out of order");
      for (const x of values) assert.ok(Number.isInteger(x) && x >= 0 && x < 20);
      assert.equal(r.echo, "vol");
    });
  });
}
