// Raw Engine.IO over HTTP (fetch) and raw WebSocket frames: error answers, headers and bodies
// exactly as Node's engine.io 6.6 produces them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import WebSocket from "ws";
import { startServer, sleep } from "./helpers.mjs";

const MAX_PAYLOAD = 1000;
const PING_INTERVAL = 500;
const PING_TIMEOUT = 400;

let server, base;
before(async () => {
  server = await startServer({
    MAX_PAYLOAD: String(MAX_PAYLOAD),
    PING_INTERVAL: String(PING_INTERVAL),
    PING_TIMEOUT: String(PING_TIMEOUT),
  });
  base = `${server.url}/socket.io/`;
});
after(async () => {
  await server.close();
});

const ORIGIN = "http://example.com";

async function req(query, init = {}) {
  const res = await fetch(`${base}?${query}`, init);
  const body = await res.text();
  return { status: res.status, headers: res.headers, body };
}

/** Assert an Engine.IO JSON error answer. */
function assertJsonError(r, status, code, message) {
  assert.equal(r.status, status);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.equal(r.body, JSON.stringify({ code, message }));
  assert.equal(r.headers.get("access-control-allow-credentials"), "true");
}

async function handshake(extra = "") {
  const r = await req(`EIO=4&transport=polling${extra}`);
  assert.equal(r.status, 200);
  assert.equal(r.body[0], "0");
  return JSON.parse(r.body.slice(1)).sid;
}
const poll = (sid, init) => req(`EIO=4&transport=polling&sid=${sid}`, init);
const post = (sid, body) => poll(sid, { method: "POST", body });

// ---- handshake and normal answers ----

test("polling handshake: status, headers and exact body", async () => {
  const r = await req("EIO=4&transport=polling");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/plain; charset=UTF-8");
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.equal(r.headers.get("access-control-allow-credentials"), "true");
  assert.equal(r.headers.get("access-control-allow-origin"), null, "no Origin sent, none echoed");
  assert.equal(r.headers.get("content-length"), String(Buffer.byteLength(r.body)));
  const m = /^0\{"sid":"([\w-]{20})","upgrades":\["websocket"\],"pingInterval":(\d+),"pingTimeout":(\d+),"maxPayload":(\d+)\}$/.exec(
    r.body,
  );
  assert.ok(m, `unexpected handshake ${r.body}`);
  assert.deepEqual(m.slice(2).map(Number), [PING_INTERVAL, PING_TIMEOUT, MAX_PAYLOAD]);
});

test("CORS: the Origin is echoed with credentials allowed", async () => {
  const r = await req("EIO=4&transport=polling", { headers: { Origin: ORIGIN } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), ORIGIN);
  assert.equal(r.headers.get("access-control-allow-credentials"), "true");
  assert.equal(r.headers.get("vary"), "Origin");
  // also on errors
  const e = await req("EIO=4&transport=foo", { headers: { Origin: ORIGIN } });
  assertJsonError(e, 400, 0, "Transport unknown");
  assert.equal(e.headers.get("access-control-allow-origin"), ORIGIN);
});

test("CORS preflight: 204 with the allowed methods", async () => {
  const r = await req("EIO=4&transport=polling", {
    method: "OPTIONS",
    headers: {
      Origin: ORIGIN,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type,x-custom",
    },
  });
  assert.equal(r.status, 204);
  assert.equal(r.body, "");
  assert.equal(r.headers.get("access-control-allow-origin"), ORIGIN);
  assert.equal(r.headers.get("access-control-allow-credentials"), "true");
  assert.equal(r.headers.get("access-control-allow-methods"), "GET,HEAD,PUT,PATCH,POST,DELETE");
  assert.equal(r.headers.get("access-control-allow-headers"), "content-type,x-custom");
});

test("POST answers 200 \"ok\" as text/html; CONNECT reply carries sid and pid", async () => {
  const sid = await handshake();
  const p = await post(sid, "40");
  assert.equal(p.status, 200);
  assert.equal(p.body, "ok");
  assert.equal(p.headers.get("content-type"), "text/html");
  assert.equal(p.headers.get("cache-control"), "no-store");
  const g = await poll(sid);
  assert.equal(g.status, 200);
  assert.equal(g.headers.get("content-type"), "text/plain; charset=UTF-8");
  assert.match(g.body, /^40\{"sid":"[\w-]{20}","pid":"[\w-]{20}"\}$/);
});

test("payloads are batched with \\x1e; binary travels as base64 \"b\" packets", async () => {
  const sid = await handshake();
  await post(sid, "40");
  assert.match((await poll(sid)).body, /^40/);
  const p = await post(sid, '451-["echo",{"_placeholder":true,"num":0}]\x1ebAQID\x1e42["echo","x"]\x1e421["echo","y"]');
  assert.equal(p.body, "ok");
  await sleep(30);
  let body = (await poll(sid)).body;
  // everything queued so far comes in one payload
  const m =
    /^451-\["echo",\{"_placeholder":true,"num":0\},"([\w.-]+)"\]\x1ebAQID\x1e42\["echo","x","([\w.-]+)"\]\x1e431\["y"\]$/.exec(
      body,
    );
  assert.ok(m, `unexpected payload ${JSON.stringify(body)}`);
  assert.notEqual(m[1], m[2], "each stored packet has its own offset");
});

test("heartbeat over raw polling: ping \"2\", answered by pong \"3\"", async () => {
  // From before the handshake: the server's ping timer starts when it answers, and a slow
  // answer must not make the ping look early.
  const started = Date.now();
  const sid = await handshake();
  const g = await poll(sid);
  assert.equal(g.body, "2");
  assert.ok(Date.now() - started >= PING_INTERVAL - 100);
  assert.equal((await post(sid, "3")).body, "ok");
  const g2 = await poll(sid);
  assert.equal(g2.body, "2", "still alive after the pong: next ping");
  // no pong this time: the session dies after pingTimeout; the pending GET gets the close packet
  const g3 = await poll(sid);
  assert.equal(g3.status, 200);
  assert.equal(g3.body, "1");
  assertJsonError(await poll(sid), 400, 1, "Session ID unknown");
});

// ---- error answers ----

test("unknown transport: 400 code 0 \"Transport unknown\"", async () => {
  assertJsonError(await req("EIO=4&transport=foo"), 400, 0, "Transport unknown");
  assertJsonError(await req("EIO=4"), 400, 0, "Transport unknown");
});

test("unknown sid: 400 code 1 \"Session ID unknown\" (GET and POST)", async () => {
  assertJsonError(await req("EIO=4&transport=polling&sid=nope"), 400, 1, "Session ID unknown");
  assertJsonError(
    await req("EIO=4&transport=polling&sid=nope", { method: "POST", body: "40" }),
    400,
    1,
    "Session ID unknown",
  );
});

test("POST without sid: 400 code 2 \"Bad handshake method\"", async () => {
  assertJsonError(await req("EIO=4&transport=polling", { method: "POST", body: "40" }), 400, 2, "Bad handshake method");
});

test("transport=websocket without an upgrade: 400 code 3 \"Bad request\"", async () => {
  assertJsonError(await req("EIO=4&transport=websocket"), 400, 3, "Bad request");
});

test("EIO=3, missing EIO, EIO=5: 400 code 5 \"Unsupported protocol version\"", async () => {
  for (const q of ["EIO=3&transport=polling", "transport=polling", "EIO=5&transport=polling"]) {
    assertJsonError(await req(q), 400, 5, "Unsupported protocol version");
  }
});

test("overlapping GET polls: the second gets 400 (empty body), the first gets close, session gone", async () => {
  const sid = await handshake();
  const first = poll(sid);
  await sleep(50);
  const second = await poll(sid);
  assert.equal(second.status, 400);
  assert.equal(second.body, "");
  assert.equal(second.headers.get("content-type"), null);
  const f = await first;
  assert.equal(f.status, 200);
  assert.equal(f.body, "1");
  assertJsonError(await poll(sid), 400, 1, "Session ID unknown");
});

test("POST larger than maxHttpBufferSize: 413, empty body; the session survives", async () => {
  const sid = await handshake();
  assert.equal((await post(sid, "40")).body, "ok");
  assert.match((await poll(sid)).body, /^40\{"sid"/);
  const big = await post(sid, "4" + "x".repeat(MAX_PAYLOAD));
  assert.equal(big.status, 413);
  assert.equal(big.body, "");
  assert.equal(big.headers.get("content-type"), null);
  // a payload of exactly maxHttpBufferSize bytes is fine, and the session still works
  const prefix = '42["echo","';
  const filler = "y".repeat(MAX_PAYLOAD - prefix.length - 2);
  const exact = `${prefix}${filler}"]`;
  assert.equal(exact.length, MAX_PAYLOAD);
  const ok = await post(sid, exact);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, "ok");
  assert.match((await poll(sid)).body, new RegExp(`^42\\["echo","${filler}","[\\w.-]+"\\]$`));
});

for (const [name, body] of [
  ["malformed payload", "zzz"],
  ["empty payload", ""],
]) {
  test(`${name}: POST answers 200 "ok", then the session is closed`, async () => {
    const sid = await handshake();
    const p = await post(sid, body);
    assert.equal(p.status, 200);
    assert.equal(p.body, "ok");
    assertJsonError(await poll(sid), 400, 1, "Session ID unknown");
  });
}

test("close packet \"1\" from the client ends the session", async () => {
  const sid = await handshake();
  assert.equal((await post(sid, "1")).body, "ok");
  assertJsonError(await poll(sid), 400, 1, "Session ID unknown");
});

// ---- WebSocket ----

/** Send a raw HTTP upgrade request and return everything the server writes before closing. */
function rawUpgrade(query) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(server.port, "127.0.0.1", () => {
      sock.write(
        `GET /socket.io/?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      );
    });
    let out = "";
    sock.on("data", (d) => (out += d.toString("latin1")));
    sock.on("close", () => resolve(out));
    sock.on("error", reject);
    setTimeout(() => {
      sock.destroy();
      reject(new Error(`no close; got ${JSON.stringify(out)}`));
    }, 2000);
  });
}

/**
 * A raw HTTP response split into status line, headers (names lower-cased: HTTP header names
 * are case-insensitive, and Node's and hyper's spellings differ) and body. `Date` is left
 * out: Node's raw abort writes none, hyper always adds one.
 */
function parseRaw(raw) {
  const [head, body] = [raw.slice(0, raw.indexOf("\r\n\r\n")), raw.slice(raw.indexOf("\r\n\r\n") + 4)];
  const [status, ...lines] = head.split("\r\n");
  const headers = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    const name = l.slice(0, i).trim().toLowerCase();
    if (name !== "date") headers[name] = l.slice(i + 1).trim();
  }
  return { status, headers, body };
}

for (const [name, query, message] of [
  ["an unknown sid", "EIO=4&transport=websocket&sid=nope", "Session ID unknown"],
  ["an unknown transport", "EIO=4&transport=foo", "Transport unknown"],
]) {
  test(`WebSocket upgrade with ${name}: 400 "${message}" as text/html and the socket is closed`, async () => {
    // rawUpgrade resolves only once the server has closed the connection.
    assert.deepEqual(parseRaw(await rawUpgrade(query)), {
      status: "HTTP/1.1 400 Bad Request",
      headers: {
        connection: "close",
        "content-type": "text/html",
        "content-length": String(message.length),
      },
      body: message,
    });
  });
}

function frames(ws) {
  const queue = [];
  let wake = null;
  ws.on("message", (data, isBinary) => {
    queue.push(isBinary ? Buffer.from(data) : data.toString());
    wake?.();
  });
  return async (ms = 2000) => {
    const deadline = Date.now() + ms;
    while (!queue.length) {
      if (Date.now() > deadline) throw new Error("no frame");
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    return queue.shift();
  };
}

test("raw WebSocket session: handshake, CONNECT, binary event frames", async () => {
  const ws = new WebSocket(`${base.replace("http", "ws")}?EIO=4&transport=websocket`);
  const next = frames(ws);
  await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
  try {
    assert.match(
      await next(),
      new RegExp(
        `^0\\{"sid":"[\\w-]{20}","upgrades":\\[\\],"pingInterval":${PING_INTERVAL},"pingTimeout":${PING_TIMEOUT},"maxPayload":${MAX_PAYLOAD}\\}$`,
      ),
    );
    ws.send("40");
    // A ping may come first when the steps above took a ping interval (a loaded machine).
    let reply = await next();
    while (reply === "2") {
      ws.send("3");
      reply = await next();
    }
    assert.match(reply, /^40\{"sid":"[\w-]{20}","pid":"[\w-]{20}"\}$/);
    // binary event: a text frame then one binary frame per attachment, raw (no "b" prefix, no type byte)
    ws.send('452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    ws.send(Buffer.from([1, 2, 3]));
    ws.send(Buffer.alloc(0));
    assert.match(
      await next(),
      /^452-\["echo",\{"_placeholder":true,"num":0\},\{"_placeholder":true,"num":1\},"[\w.-]+"\]$/,
    );
    assert.deepEqual(await next(), Buffer.from([1, 2, 3]));
    assert.deepEqual(await next(), Buffer.alloc(0));
    // ack with binary
    ws.send('451-7["echo",{"_placeholder":true,"num":0}]');
    ws.send(Buffer.from([9]));
    assert.equal(await next(), '461-7[{"_placeholder":true,"num":0}]');
    assert.deepEqual(await next(), Buffer.from([9]));
    // heartbeat
    assert.equal(await next(PING_INTERVAL + 500), "2");
    ws.send("3");
  } finally {
    ws.close();
  }
});

test("upgrade polling -> websocket by hand: probe, noop for the pending GET, then polling is refused", async () => {
  const sid = await handshake();
  const pending = poll(sid);
  await sleep(30);
  const ws = new WebSocket(`${base.replace("http", "ws")}?EIO=4&transport=websocket&sid=${sid}`);
  const next = frames(ws);
  await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
  try {
    ws.send("2probe");
    assert.equal(await next(), "3probe");
    const p = await pending;
    assert.equal(p.status, 200);
    assert.equal(p.body, "6", "the pending GET is flushed with a noop");
    ws.send("5");
    await sleep(30);
    // once upgraded, polling requests for the session are bad requests
    assertJsonError(await poll(sid), 400, 3, "Bad request");
    assertJsonError(await post(sid, "40"), 400, 3, "Bad request");
    ws.send("40");
    // A ping may come first when the steps above took a ping interval (a loaded machine).
    let reply = await next();
    while (reply === "2") {
      ws.send("3");
      reply = await next();
    }
    assert.match(reply, /^40\{"sid":"[\w-]{20}","pid":"[\w-]{20}"\}$/);
  } finally {
    ws.close();
  }
});
