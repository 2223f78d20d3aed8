// Shared harness for the browser suites: real peer servers, a page server, Debian's Chromium.
//
// - Peer servers (tests/peers/CONTRACT.md): `startServer(kind, env)` with kind "iolite"
//   (target/debug/examples/peer_server, built by scripts/web-test) or "node" (the socket.io
//   4.8.4 reference server, tests/peers/reference-server.mjs, after `npm ci` in tests/peers).
//   `WEB_PEER_SERVERS` (comma-separated, default "iolite,node") chooses which ones the suites
//   run against; every suite runs each of its scenarios once per server.
// - Page server: `startPageServer({upstream, refuseUpgrade})` serves a blank page that loads
//   /iolite.js (web/iolite.js, read on each request) and /page-helpers.js, and can proxy
//   /socket.io/ to a peer server so the page talks to it from the same origin; the proxy can
//   refuse WebSocket upgrades and freeze proxied WebSockets (nothing passes either way).
// - Browser: `launchBrowser()` starts /usr/bin/chromium (or CHROMIUM) headless through
//   playwright-core; `openPage(browser, url)` opens a page in a fresh context and records page
//   errors, which `checkPage` turns into a failure.
import { spawn } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";
import { connect as netConnect } from "node:net";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, "../..");

export const SERVER_KINDS = (process.env.WEB_PEER_SERVERS || "iolite,node")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);

const SERVER_CMDS = {
  iolite: path.join(REPO_ROOT, "target/debug/examples/peer_server"),
  node: `node ${path.join(REPO_ROOT, "tests/peers/reference-server.mjs")}`,
};

/**
 * Start a peer server of `kind` with the contract's env vars; `port` 0 = any free port.
 * Returns {kind, url, port, close(signal)}; close waits for the process to exit.
 */
export async function startServer(kind, env = {}, port = 0) {
  const cmd = SERVER_CMDS[kind];
  if (!cmd) throw new Error(`unknown server kind ${kind}`);
  const child = spawn("sh", ["-c", `exec ${cmd}`], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: String(port), ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group: close() reaches every child
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-20000);
  });
  const exited = new Promise((r) => child.once("exit", r));
  const got = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start in time\n${stderr}`)), 60000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} server exited early (${code})\n${stderr}`));
    });
  });
  child.stdout.resume();
  let closed = false;
  return {
    kind,
    port: got,
    url: `http://127.0.0.1:${got}`,
    stderr: () => stderr,
    async close(signal = "SIGTERM") {
      if (closed) return exited;
      closed = true;
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, signal);
        } catch {}
        const t = setTimeout(() => {
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch {}
        }, 3000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/** Start a server on a port that was just used, retrying while the port is still taken. */
export async function restartServer(kind, env, port) {
  for (let i = 0; ; i++) {
    try {
      return await startServer(kind, env, port);
    } catch (e) {
      if (i >= 20) throw e;
      await sleep(100);
    }
  }
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>iolite test page</title>
<script src="/iolite.js"></script>
<script src="/page-helpers.js"></script>
</head><body></body></html>`;

/**
 * An HTTP server for the test page. With `upstream` (a peer server URL) it also proxies
 * /socket.io/ (HTTP requests and WebSocket upgrades) to it; `refuseUpgrade` answers upgrades
 * 403, `hangUpgrade` never answers them. Returns {url, upgrades (count of
 * upgrade requests seen), freeze() (stop forwarding proxied WebSocket bytes), close()}.
 */
export async function startPageServer({ upstream, refuseUpgrade = false, hangUpgrade = false } = {}) {
  const up = upstream ? new URL(upstream) : null;
  const sockets = new Set();
  const tunnels = new Set();
  const state = { upgrades: 0, frozen: false };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    if (up && url.pathname.startsWith("/socket.io/")) {
      const preq = httpRequest(
        { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
        (pres) => {
          res.writeHead(pres.statusCode, pres.headers);
          pres.pipe(res);
        }
      );
      preq.on("error", () => res.destroy());
      req.pipe(preq);
      return;
    }
    const files = { "/iolite.js": "../../web/iolite.js", "/page-helpers.js": "page-helpers.js" };
    if (url.pathname === "/") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(PAGE);
    } else if (files[url.pathname]) {
      const body = await readFile(path.join(HERE, files[url.pathname]));
      res.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-store" });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req, socket, head) => {
    state.upgrades++;
    if (hangUpgrade) {
      // never answered, like a proxy that buffers the upgrade request
      sockets.add(socket);
      return;
    }
    if (!up || refuseUpgrade) {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const target = netConnect(Number(up.port), up.hostname, () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      target.write(raw + "\r\n");
      if (head.length) target.write(head);
    });
    tunnels.add(target);
    // frozen: bytes are swallowed both ways, like a network that stopped delivering
    target.on("data", (d) => state.frozen || socket.write(d));
    socket.on("data", (d) => state.frozen || target.write(d));
    // a frozen network does not deliver the other side's close either
    const end = () => {
      tunnels.delete(target);
      target.destroy();
      if (!state.frozen) socket.destroy();
    };
    target.on("close", end).on("error", end);
    socket.on("close", end).on("error", end);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    get upgrades() {
      return state.upgrades;
    },
    freeze() {
      state.frozen = true;
    },
    async close() {
      for (const s of sockets) s.destroy();
      for (const t of tunnels) t.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
  });
}

/** A page in a fresh browser context, at `url`, with iolite and the page helpers loaded. */
export async function openPage(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(url);
  await page.waitForFunction(() => window.iolite && window.h);
  page.pageErrors = errors;
  page.done = async () => {
    await page.evaluate(() => window.h.closeAll()).catch(() => {});
    await context.close();
  };
  return page;
}

/** Fails when the page threw an uncaught exception (iolite rethrows listener errors). */
export function checkPage(page) {
  assert.deepEqual(
    page.pageErrors.map((e) => String(e)),
    [],
    "uncaught exceptions in the page"
  );
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns something other than null/undefined/false. */
export async function eventually(fn, ms = 5000, step = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error("eventually: timed out");
    await sleep(step);
  }
}
