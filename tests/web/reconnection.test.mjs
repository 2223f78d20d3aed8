// web/iolite.js in Chromium: reconnection with backoff after the server dies and comes back on
// the same port, buffering while offline, volatile drops, connection state recovery.
import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { SERVER_KINDS, startServer, restartServer, startPageServer, launchBrowser, openPage, checkPage } from "./harness.mjs";

let browser, pages;
before(async () => {
  browser = await launchBrowser();
  pages = await startPageServer();
});
after(async () => {
  await pages.close();
  await browser.close();
});

let page;
afterEach(async () => {
  if (!page) return;
  const p = page;
  page = null;
  await p.done();
  checkPage(p);
});

test("Backoff: min * 2^n capped at max, jitter within +/- randomizationFactor", async () => {
  page = await openPage(browser, pages.url);
  const r = await page.evaluate(() => {
    const plain = new iolite.Backoff({ min: 100, max: 1000, jitter: 0 });
    const seq = [...Array(6)].map(() => plain.duration());
    const samples = [];
    for (let i = 0; i < 500; i++) {
      const b = new iolite.Backoff({ min: 1000, max: 5000, jitter: 0.5 });
      samples.push(b.duration());
    }
    plain.reset();
    return { seq, min: Math.min(...samples), max: Math.max(...samples), distinct: new Set(samples).size, afterReset: plain.duration() };
  });
  assert.deepEqual(r.seq, [100, 200, 400, 800, 1000, 1000]);
  assert.ok(r.min >= 500 && r.max <= 1500, `jittered delays out of range: ${r.min}..${r.max}`);
  assert.ok(r.min < 900 && r.max > 1100 && r.distinct > 50, "jitter spreads the delays");
  assert.equal(r.afterReset, 100);
});

test("reconnect_failed after reconnectionAttempts, and no attempt after that", async () => {
  page = await openPage(browser, pages.url);
  const r = await page.evaluate(async () => {
    const s = h.io("http://127.0.0.1:1", { reconnection: true, reconnectionAttempts: 3, reconnectionDelay: 30, randomizationFactor: 0 });
    const attempts = [];
    const errors = h.collect(s.io, "reconnect_error");
    s.io.on("reconnect_attempt", (n) => attempts.push(n));
    await h.once(s.io, "reconnect_failed", 5000);
    await h.sleep(500);
    return { attempts, errors: errors.length, connected: s.connected };
  });
  assert.deepEqual(r.attempts, [1, 2, 3]);
  assert.equal(r.errors, 3);
  assert.equal(r.connected, false);
});

for (const kind of SERVER_KINDS) {
  describe(`[${kind}] server restart`, () => {
    let server;
    before(async () => {
      server = await startServer(kind);
    });
    after(async () => {
      await server.close();
    });

    // The server is killed (SIGKILL, like a crash) and started again on the same port.
    async function bounce(whileDown) {
      const port = server.port;
      await server.close("SIGKILL");
      await whileDown();
      server = await restartServer(kind, {}, port);
    }

    test("reconnects with exponential backoff after the server is killed and restarted on the same port", async () => {
      page = await openPage(browser, pages.url);
      await page.evaluate(async (url) => {
        const s = (window.s = h.io(url, { reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 800, randomizationFactor: 0 }));
        await h.connected(s);
        window.firstId = s.id;
        window.log = [];
        s.on("disconnect", (reason) => log.push({ ev: "disconnect", reason, t: Date.now() }));
        s.io.on("reconnect_attempt", (n) => log.push({ ev: "attempt", n, t: Date.now() }));
        s.io.on("reconnect", (n) => log.push({ ev: "reconnect", n, t: Date.now() }));
        s.on("connect", () => log.push({ ev: "connect", t: Date.now() }));
      }, server.url);
      await bounce(() => page.evaluate(() => h.until(() => log.filter((e) => e.ev === "attempt").length >= 4, 8000)));
      const r = await page.evaluate(async () => {
        await h.until(() => window.s.connected, 8000);
        return { log, recovered: window.s.recovered, changed: window.s.id !== window.firstId, echo: await h.ask(window.s, "echo", "back") };
      });
      const log = r.log;
      assert.equal(log[0].ev, "disconnect");
      assert.equal(log[0].reason, "transport close");
      const attempts = log.filter((e) => e.ev === "attempt");
      assert.deepEqual(attempts.map((e) => e.n), [...Array(attempts.length).keys()].map((i) => i + 1));
      // disconnect -> attempt 1: 200 ms, then 400, 800, 800 (capped) after each failure
      const gaps = [attempts[0].t - log[0].t, ...attempts.slice(1, 4).map((e, i) => e.t - attempts[i].t)];
      [200, 400, 800, 800].forEach((want, i) => {
        assert.ok(gaps[i] >= want - 20 && gaps[i] <= want + 400, `gap ${i}: ${gaps[i]} ms, want ~${want} (${JSON.stringify(gaps)})`);
      });
      const tail = log.slice(-2).map((e) => e.ev);
      assert.deepEqual(tail, ["reconnect", "connect"]);
      assert.equal(log.at(-2).n, attempts.length);
      assert.equal(r.recovered, false); // a new server process knows nothing of the old session
      assert.equal(r.changed, true);
      assert.equal(r.echo, "back");
    });

    for (const transport of ["websocket", "polling"]) {
      test(`[${transport}] emits while offline are buffered, then sent in order with their acks; volatile ones are dropped`, async () => {
        page = await openPage(browser, pages.url);
        await page.evaluate(
          async ({ url, transport }) => {
            const s = (window.s = h.io(url, { transports: [transport], reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 }));
            await h.connected(s);
            window.got = h.collect(s, "echo");
            window.offline = h.once(s, "disconnect");
          },
          { url: server.url, transport }
        );
        let buffered;
        await bounce(async () => {
          buffered = await page.evaluate(async () => {
            const [reason] = await window.offline;
            const s = window.s;
            s.volatile.emit("echo", "dropped");
            s.emit("echo", "b1");
            window.acks = [h.acked(s, "echo", "with", "ack"), h.acked(s, "set-data", "kept")];
            s.emit("echo", "b2", new Uint8Array([1, 2]));
            s.volatile.emit("echo", "dropped too");
            s.emit("echo", "b3");
            return { reason, size: s.sendBuffer.length, connected: s.connected };
          });
        });
        const r = await page.evaluate(async () => {
          const acks = await Promise.all(window.acks);
          await h.until(() => got.length >= 3);
          await h.ask(window.s, "echo", "barrier");
          return { acks, got: h.norm(got.map((a) => h.stripOffset(a))), data: await h.ask(window.s, "get-data"), left: window.s.sendBuffer.length };
        });
        // a closed WebSocket is a "transport close"; a failed poll request a "transport error"
        assert.equal(buffered.reason, transport === "websocket" ? "transport close" : "transport error");
        assert.equal(buffered.connected, false);
        assert.equal(buffered.size, 5, "4 emits buffered, the volatile ones not");
        assert.deepEqual(r.acks, [["with", "ack"], []]);
        assert.deepEqual(r.got, [["b1"], ["b2", { ArrayBuffer: "0102" }], ["b3"]]);
        assert.equal(r.data, "kept");
        assert.equal(r.left, 0);
      });
    }
  });

  describe(`[${kind}] connection state recovery`, () => {
    let server;
    before(async () => {
      server = await startServer(kind);
    });
    after(async () => {
      await server.close();
    });

    for (const transport of ["websocket", "polling"]) {
      test(`[${transport}] after a forced transport drop: same id, rooms and data kept, missed events delivered once, in order`, async () => {
        page = await openPage(browser, pages.url);
        const r = await page.evaluate(
          async ({ url, transport }) => {
            const room = "web-rec-" + transport;
            const a = h.io(url, { transports: [transport], reconnection: true, reconnectionDelay: 700, reconnectionDelayMax: 700, randomizationFactor: 0 });
            const b = h.io(url);
            await Promise.all([h.connected(a), h.connected(b)]);
            const id = a.id;
            await h.ask(a, "join", room);
            await h.ask(a, "set-data", { v: 1 });
            const got = h.collect(a, "room");
            b.emit("to-room", room, 0); // an offset to recover from
            await h.until(() => got.length === 1);
            const events = [];
            a.on("disconnect", (reason) => events.push("disconnect:" + reason));
            a.on("connect", () => events.push("connect:" + a.recovered));
            const down = h.once(a, "disconnect");
            a.emit("drop-transport");
            await down;
            for (let i = 1; i <= 10; i++) b.emit("to-room", room, i);
            await h.ask(b, "echo", "barrier"); // the server has handled the 10 emits
            const missedWhileDown = got.length;
            await h.once(a, "connect", 5000);
            await h.ask(a, "echo", "barrier");
            return {
              events,
              sameId: a.id === id,
              recovered: a.recovered,
              missedWhileDown,
              got: got.map((args) => h.stripOffset(args)[0]),
              offsets: new Set(got.map((args) => args[1])).size,
              who: await h.ask(a, "whoami"),
              data: await h.ask(a, "get-data"),
              reason: await h.ask(b, "last-reason", id),
            };
          },
          { url: server.url, transport }
        );
        assert.deepEqual(r.events, ["disconnect:transport close", "connect:true"]);
        assert.equal(r.sameId, true);
        assert.equal(r.recovered, true);
        assert.equal(r.missedWhileDown, 1);
        assert.deepEqual(r.got, [...Array(11).keys()]);
        assert.equal(r.offsets, 11);
        assert.equal(r.who.recovered, true);
        assert.ok(r.who.rooms.includes(`web-rec-${transport}`));
        assert.deepEqual(r.data, { v: 1 });
        assert.equal(r.reason, "forced close");
      });
    }

    test("without any stored event received there is no offset: the reconnection is a new session", async () => {
      page = await openPage(browser, pages.url);
      const r = await page.evaluate(async ({ url }) => {
        const a = h.io(url, { reconnection: true, reconnectionDelay: 100, randomizationFactor: 0 });
        await h.connected(a);
        const id = a.id;
        a.emit("drop-transport");
        await h.once(a, "disconnect");
        await h.once(a, "connect", 5000);
        return { recovered: a.recovered, sameId: a.id === id };
      }, { url: server.url });
      assert.deepEqual(r, { recovered: false, sameId: false });
    });
  });
}
