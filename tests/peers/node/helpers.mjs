// Shared helpers for the Node peer suites.
//
// Servers: every test file starts its own server(s) with `startServer(env)`. The command comes
// from PEER_SERVER_CMD (run through `sh -c` from the repository root, default
// `node tests/peers/reference-server.mjs`); the server must print `listening on <port>`.
// If PEER_URL is set, files that need a server with the default settings (and do not ask for a
// dedicated one) use that URL instead of spawning.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import assert from "node:assert/strict";
import { io, Manager } from "socket.io-client";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const SERVER_CMD = process.env.PEER_SERVER_CMD || "node tests/peers/reference-server.mjs";

/**
 * Start a peer server with the given contract env vars (PING_INTERVAL, PARSER, ...).
 * Returns {url, port, close()}.
 */
export async function startServer(env = {}, { dedicated = false } = {}) {
  if (process.env.PEER_URL && !dedicated && Object.keys(env).length === 0) {
    const url = process.env.PEER_URL.replace(/\/+$/, "");
    return { url, port: Number(new URL(url).port), close: async () => {} };
  }
  const child = spawn("sh", ["-c", `exec ${SERVER_CMD}`], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group, so close() also stops e.g. `cargo run` children
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
    if (stderr.length > 20000) stderr = stderr.slice(-20000);
  });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      reject(new Error(`server did not print "listening on <port>" in time: ${SERVER_CMD}\n${stderr}`));
    }, 120000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (${code}): ${SERVER_CMD}\n${stderr}`));
    });
  });
  child.stdout.resume();
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stderr: () => stderr,
    close: async () => {
      if (closed) return;
      closed = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        return;
      }
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }, 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Sockets created by `client()`; `closeAll()` closes them (call it in afterEach). */
const opened = new Set();

/** A new socket.io-client socket on its own Manager (forceNew). */
export function client(url, nsp = "/", opts = {}) {
  const s = io(url + nsp, { forceNew: true, reconnection: false, ...opts });
  opened.add(s);
  return s;
}

/** A Manager whose sockets share one Engine.IO connection. */
export function manager(url, opts = {}) {
  const m = new Manager(url, { reconnection: false, ...opts });
  const origSocket = m.socket.bind(m);
  m.socket = (nsp, o) => {
    const s = origSocket(nsp, o);
    opened.add(s);
    return s;
  };
  return m;
}

export function closeAll() {
  for (const s of opened) {
    s.io.reconnection(false);
    s.disconnect();
    s.io.engine?.close();
  }
  opened.clear();
}

/** Resolve with the args of the next `event` on `emitter`, reject after `ms`. */
export function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out waiting for "${event}"`));
    }, ms);
    const handler = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, handler);
  });
}

/** Wait for "connect"; reject on connect_error. */
export function connected(socket, ms = 5000) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error("timed out waiting for connect"));
    }, ms);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Wait for "connect_error" and return the error; fail if the socket connects. */
export function connectError(socket, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error("timed out waiting for connect_error"));
    }, ms);
    const onConnect = () => {
      cleanup();
      reject(new Error("connected, expected connect_error"));
    };
    const onError = (err) => {
      cleanup();
      resolve(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** emitWithAck with a client-side timeout so a missing ack fails the test instead of hanging. */
export function ask(socket, event, ...args) {
  return socket.timeout(5000).emitWithAck(event, ...args);
}

/** Collect every payload of `event` into an array. */
export function collect(socket, event) {
  const got = [];
  socket.on(event, (...args) => got.push(args));
  return got;
}

/** Poll `fn` until it returns a value other than null/undefined. */
export async function eventually(fn, ms = 5000, step = 20) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("eventually: timed out");
    await sleep(step);
  }
}

/** The server's recorded disconnect reason for socket id `id`, asked through `via`. */
export function serverReason(via, id) {
  return eventually(() => ask(via, "last-reason", id));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Recursively replace binary values by {bin: hex} so structures can be compared exactly. */
export function normalize(x) {
  if (Buffer.isBuffer(x)) return { bin: x.toString("hex") };
  if (x instanceof ArrayBuffer) return { bin: Buffer.from(x).toString("hex") };
  if (ArrayBuffer.isView(x)) return { bin: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("hex") };
  if (Array.isArray(x)) return x.map(normalize);
  if (x && typeof x === "object") {
    const o = {};
    for (const k of Object.keys(x)) o[k] = normalize(x[k]);
    return o;
  }
  return x;
}

/**
 * With connection state recovery on, the server appends the packet's offset (a string) as an
 * extra last argument to every event it stores (everything but acks and volatile emits), and
 * socket.io-client hands it to the listener as is. Check it is there and strip it.
 */
export function stripOffset(args) {
  assert.ok(args.length >= 1, "expected an offset argument");
  const offset = args[args.length - 1];
  assert.equal(typeof offset, "string", `expected a trailing offset string, got ${JSON.stringify(offset)}`);
  assert.match(offset, /^[\w.-]+$/);
  return args.slice(0, -1);
}
