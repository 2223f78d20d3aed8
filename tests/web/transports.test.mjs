// web/iolite.js in Chromium: transports (WebSocket first, polling, upgrade, fallback when the
// WebSocket is refused), POST batching within maxPayload, heartbeat.
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
  describe(`[${kind}] transports`, () => {
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

    test("WebSocket first: connects over WebSocket, without a single polling request", async () => {
      page = await openPage(browser, pages.url);
      const polls = [];
      page.on("request", (r) => r.url().includes("transport=polling") && polls.push(r.url()));
      const r = await page.evaluate(async (url) => {
        const s = h.io(url);
        await h.connected(s);
        return {
          id: s.id,
          engine: s.io.engine.transport.name,
          who: await h.ask(s, "whoami"),
          echo: await h.acked(s, "echo", "a", 1, { b: [true, null, "é😀"] }),
        };
      }, server.url);
      assert.equal(r.engine, "websocket");
      assert.equal(r.who.transport, "websocket");
      assert.equal(r.who.id, r.id);
      assert.match(r.id, /^[\w-]{20}$/);
      assert.equal(r.who.recovered, false);
      assert.deepEqual(r.echo, ["a", 1, { b: [true, null, "é😀"] }]);
      assert.deepEqual(polls, []);
    });

    test("polling only: connects over long-polling and never opens a WebSocket", async () => {
      page = await openPage(browser, pages.url);
      const sockets = [];
      page.on("websocket", (ws) => sockets.push(ws.url()));
      const r = await page.evaluate(async (url) => {
        const s = h.io(url, { transports: ["polling"] });
        await h.connected(s);
        const echoes = [];
        for (let i = 0; i < 5; i++) echoes.push(await h.ask(s, "echo", i));
        await h.sleep(300); // an upgrade would have started by now
        return { engine: s.io.engine.transport.name, who: await h.ask(s, "whoami"), echoes };
      }, server.url);
      assert.equal(r.engine, "polling");
      assert.equal(r.who.transport, "polling");
      assert.deepEqual(r.echoes, [0, 1, 2, 3, 4]);
      assert.deepEqual(sockets, []);
    });

    test("polling first, then upgrades to WebSocket (2probe/3probe/5) without losing or reordering messages", async () => {
      page = await openPage(browser, pages.url);
      const r = await page.evaluate(async (url) => {
        const s = h.io(url, { transports: ["polling", "websocket"] });
        const first = await h.within(new Promise((resolve) => s.io.on("open", () => resolve(s.io.engine.transport.name))));
        await h.connected(s);
        // sent while the upgrade is in progress
        const acks = await Promise.all([...Array(20).keys()].map((i) => h.ask(s, "echo", i)));
        const got = h.collect(s, "echo");
        for (let i = 0; i < 20; i++) s.emit("echo", i);
        await h.until(() => got.length === 20);
        await h.until(() => s.io.engine.transport.name === "websocket");
        return { first, acks, got: got.map((a) => h.stripOffset(a)[0]), who: await h.ask(s, "whoami"), id: s.id };
      }, server.url);
      assert.equal(r.first, "polling");
      assert.deepEqual(r.acks, [...Array(20).keys()]);
      assert.deepEqual(r.got, [...Array(20).keys()]);
      assert.equal(r.who.transport, "websocket");
      assert.equal(r.who.id, r.id);
    });

    test("falls back to polling when the WebSocket upgrade is refused (same-origin page behind a proxy)", async () => {
      const proxy = await startPageServer({ upstream: server.url, refuseUpgrade: true });
      try {
        page = await openPage(browser, proxy.url);
        const r = await page.evaluate(async () => {
          const s = h.io(); // default URL: this page's origin
          await h.connected(s);
          return {
            engine: s.io.engine.transport.name,
            who: await h.ask(s, "whoami"),
            echo: await h.ask(s, "echo", "through the proxy"),
          };
        });
        assert.equal(r.engine, "polling");
        assert.equal(r.who.transport, "polling");
        assert.equal(r.echo, "through the proxy");
        assert.ok(proxy.upgrades >= 1, "the WebSocket was tried first");
      } finally {
        await proxy.close();
      }
    });

    test("falls back to polling when the WebSocket upgrade is never answered (after timeout / 4)", async () => {
      const proxy = await startPageServer({ upstream: server.url, hangUpgrade: true });
      try {
        page = await openPage(browser, proxy.url);
        const r = await page.evaluate(async () => {
          const t0 = Date.now();
          const s = h.io("/", { timeout: 2000 });
          await h.connected(s);
          return { ms: Date.now() - t0, engine: s.io.engine.transport.name, who: await h.ask(s, "whoami") };
        });
        assert.equal(r.engine, "polling");
        assert.equal(r.who.transport, "polling");
        assert.ok(r.ms >= 450 && r.ms < 2000, `connected after ${r.ms} ms`);
        assert.equal(proxy.upgrades, 1);
      } finally {
        await proxy.close();
      }
    });

    test("a same-origin page behind a proxy that passes upgrades connects over WebSocket", async () => {
      const proxy = await startPageServer({ upstream: server.url });
      try {
        page = await openPage(browser, proxy.url);
        const r = await page.evaluate(async () => {
          const s = h.io("/");
          await h.connected(s);
          return { who: await h.ask(s, "whoami") };
        });
        assert.equal(r.who.transport, "websocket");
        assert.equal(proxy.upgrades, 1);
      } finally {
        await proxy.close();
      }
    });

    test("unreachable server: connect_error, manager error, then reconnect_attempt", async () => {
      page = await openPage(browser, pages.url);
      const r = await page.evaluate(async () => {
        // port 1 on loopback: refused
        const s = h.io("http://127.0.0.1:1", { reconnection: true, reconnectionDelay: 50, randomizationFactor: 0 });
        const managerError = h.once(s.io, "error");
        const [err] = await h.once(s, "connect_error");
        const [attempt] = await h.once(s.io, "reconnect_attempt");
        return { message: err.message, type: err.type, managerError: (await managerError)[0].message, attempt, connected: s.connected };
      });
      assert.equal(r.message, "poll error"); // WebSocket first, then polling: both refused
      assert.equal(r.type, "TransportError");
      assert.equal(r.managerError, "poll error");
      assert.equal(r.attempt, 1);
      assert.equal(r.connected, false);
    });
  });

  describe(`[${kind}] limits and heartbeat`, () => {
    let server, pages, page;
    before(async () => {
      server = await startServer(kind, { MAX_PAYLOAD: "2000", PING_INTERVAL: "300", PING_TIMEOUT: "300" });
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

    test("polling: POST batches are split to stay within the server's maxPayload", async () => {
      page = await openPage(browser, pages.url);
      const posts = [];
      page.on("request", (r) => {
        if (r.method() === "POST") posts.push(Buffer.byteLength(r.postData() || ""));
      });
      const r = await page.evaluate(async (url) => {
        const s = h.io(url, { transports: ["polling"] });
        const reasons = h.collect(s, "disconnect");
        await h.connected(s);
        const big = "x".repeat(400);
        // queued together while one POST is in flight: 12 * ~430 bytes > 2000
        const acks = await Promise.all([...Array(12).keys()].map((i) => h.ask(s, "echo", i, big)));
        return { acks, reasons, connected: s.connected, maxPayload: s.io.engine.maxPayload };
      }, server.url);
      assert.equal(r.maxPayload, 2000);
      assert.deepEqual(r.acks, [...Array(12).keys()]);
      assert.deepEqual(r.reasons, []);
      assert.equal(r.connected, true);
      assert.ok(posts.length >= 4, `expected the 12 events in several POSTs, got ${JSON.stringify(posts)}`);
      for (const n of posts) assert.ok(n <= 2000, `POST of ${n} bytes > maxPayload`);
    });

    for (const transport of ["websocket", "polling"]) {
      test(`[${transport}] answers the server's pings (stays connected for many ping intervals)`, async () => {
        page = await openPage(browser, pages.url);
        const r = await page.evaluate(
          async ({ url, transport }) => {
            const s = h.io(url, { transports: [transport] });
            let pings = 0;
            s.io.on("ping", () => pings++);
            const reasons = h.collect(s, "disconnect");
            await h.connected(s);
            const id = s.id;
            await h.sleep(2000); // more than 3 * (pingInterval + pingTimeout)
            return { pings, reasons, id, sameId: s.id === id, echo: await h.ask(s, "echo", "alive") };
          },
          { url: server.url, transport }
        );
        assert.ok(r.pings >= 4, `only ${r.pings} pings`);
        assert.deepEqual(r.reasons, []);
        assert.equal(r.sameId, true);
        assert.equal(r.echo, "alive");
      });
    }

    test("detects a silent connection: disconnect 'ping timeout' after pingInterval + pingTimeout", async () => {
      const proxy = await startPageServer({ upstream: server.url });
      try {
        page = await openPage(browser, proxy.url);
        await page.evaluate(async () => {
          window.s = h.io("/");
          await h.connected(window.s);
        });
        proxy.freeze(); // nothing passes any more, and the socket stays open
        const r = await page.evaluate(async () => {
          const t0 = Date.now();
          const [reason] = await h.once(window.s, "disconnect", 5000);
          return { reason, ms: Date.now() - t0, connected: window.s.connected };
        });
        assert.equal(r.reason, "ping timeout");
        // the last ping came 0..300 ms before the freeze; the deadline is 600 ms after it
        assert.ok(r.ms >= 250 && r.ms <= 1500, `took ${r.ms} ms`);
        assert.equal(r.connected, false);
      } finally {
        await proxy.close();
      }
    });
  });
}
