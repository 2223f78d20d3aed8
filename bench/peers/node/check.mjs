// Checks that a server does what docs/bench-contract.md asks, with real clients (ws and
// socket.io-client), so that every server compared by scripts/bench does the same work.
//   node check.mjs --ws ws://127.0.0.1:3000
//   node check.mjs --sio http://127.0.0.1:3001
// Prints one line per failed check and exits 1 if any failed.
import { WebSocket } from "ws";
import { io } from "socket.io-client";

const TIMEOUT_MS = 3000;
const failures = [];
const fail = (msg) => failures.push(msg);

const args = process.argv.slice(2);
const arg = (flag) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const wsUrl = arg("--ws");
const sioUrl = arg("--sio");
if (!wsUrl && !sioUrl) {
  console.error("usage: node check.mjs [--ws ws://HOST:PORT] [--sio http://HOST:PORT]");
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const withTimeout = (p, what) =>
  Promise.race([p, sleep(TIMEOUT_MS).then(() => Promise.reject(new Error(`timed out: ${what}`)))]);

// A raw WebSocket client that keeps what it receives.
function wsClient(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const got = [];
  ws.on("message", (data, isBinary) => got.push({ data: Buffer.from(data), isBinary }));
  const opened = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once("error", reject);
  });
  return { ws, got, opened };
}

async function checkWs(base) {
  const url = (path) => base.replace(/\/$/, "") + path;
  const echo = wsClient(url("/echo"));
  await withTimeout(echo.opened, "/echo open");
  echo.ws.send("hello");
  echo.ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
  echo.ws.send("second");
  await sleep(300);
  const e = echo.got;
  if (e.length !== 3) fail(`/echo: got ${e.length} messages back, wanted 3`);
  else {
    if (e[0].isBinary || e[0].data.toString() !== "hello") fail("/echo: text not echoed as the same text");
    if (!e[1].isBinary || !e[1].data.equals(Buffer.from([0, 1, 2, 255]))) fail("/echo: binary not echoed as the same binary");
    if (e[2].data.toString() !== "second") fail("/echo: out of order");
  }
  echo.ws.close();

  const a1 = wsClient(url("/broadcast?room=a"));
  const a2 = wsClient(url("/broadcast?room=a"));
  const b1 = wsClient(url("/broadcast?room=b"));
  const n1 = wsClient(url("/broadcast"));
  const n2 = wsClient(url("/broadcast"));
  await withTimeout(Promise.all([a1, a2, b1, n1, n2].map((c) => c.opened)), "/broadcast open");
  a1.ws.send("to-a-1");
  a1.ws.send("to-a-2");
  n1.ws.send("to-none");
  await sleep(300);
  const texts = (c) => c.got.map((m) => m.data.toString()).join(",");
  if (texts(a2) !== "to-a-1,to-a-2") fail(`/broadcast: the other member of room a got [${texts(a2)}]`);
  if (a1.got.length) fail("/broadcast: the sender got its own message");
  if (b1.got.length) fail("/broadcast: a member of another room got a message");
  if (texts(n2) !== "to-none") fail(`/broadcast without room: the other member got [${texts(n2)}]`);
  for (const c of [a1, a2, b1, n1, n2]) c.ws.close();

  const bad = wsClient(url("/nope"));
  try {
    await withTimeout(bad.opened, "/nope");
    fail("/nope: handshake accepted, wanted it refused");
    bad.ws.close();
  } catch (err) {
    if (!/HTTP 404/.test(String(err))) fail(`/nope: refused with ${err.message}, wanted HTTP 404`);
  }
}

function sioClient(url) {
  const s = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  const messages = [];
  const echoes = [];
  s.on("message", (...a) => messages.push(a));
  s.on("echo", (...a) => echoes.push(a));
  const connected = new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("connect_error", reject);
  });
  return { s, messages, echoes, connected };
}

async function checkSio(url) {
  const [c1, c2, c3] = [sioClient(url), sioClient(url), sioClient(url)];
  await withTimeout(Promise.all([c1, c2, c3].map((c) => c.connected)), "socket.io connect");
  const acked = await withTimeout(c1.s.emitWithAck("echo", "e0:1:2:xx"), "echo ack");
  if (acked !== "e0:1:2:xx") fail(`echo: acked ${JSON.stringify(acked)}, wanted the argument back`);
  const two = await withTimeout(
    new Promise((resolve) => c1.s.emit("echo", "a", { b: 1 }, (...r) => resolve(r))),
    "echo ack with two arguments",
  );
  if (JSON.stringify(two) !== JSON.stringify(["a", { b: 1 }])) fail(`echo with two arguments: acked ${JSON.stringify(two)}`);
  c1.s.emit("echo", "no-ack");
  await sleep(200);
  if (JSON.stringify(c1.echoes) !== JSON.stringify([["no-ack"]])) fail(`echo without ack: got echo events ${JSON.stringify(c1.echoes)}`);

  await withTimeout(c1.s.emitWithAck("join", { room: "r" }), "join ack (c1)");
  await withTimeout(c2.s.emitWithAck("join", { room: "r" }), "join ack (c2)");
  await withTimeout(c3.s.emitWithAck("join", { room: "other" }), "join ack (c3)");
  c1.s.emit("publish", { room: "r", payload: "m1:0:5:xx" });
  c3.s.emit("publish", { room: "r", payload: "m3:0:6:xx" });
  await sleep(300);
  const m = (c) => JSON.stringify(c.messages);
  // Two publishers on two connections: no order between them is promised.
  const sorted = (c) => JSON.stringify([...c.messages].sort());
  if (sorted(c2) !== JSON.stringify([["m1:0:5:xx"], ["m3:0:6:xx"]])) fail(`publish: a member got ${m(c2)}`);
  if (m(c1) !== JSON.stringify([["m3:0:6:xx"]])) fail(`publish: the publishing member got ${m(c1)} (wanted only the other's)`);
  if (c3.messages.length) fail(`publish: a non-member got ${m(c3)}`);
  await withTimeout(c2.s.emitWithAck("leave", { room: "r" }), "leave ack");
  c3.s.emit("publish", { room: "r", payload: "m3:1:7:xx" });
  await sleep(300);
  if (c2.messages.length !== 2) fail(`leave: got ${m(c2)} after leaving`);
  for (const c of [c1, c2, c3]) c.s.close();
}

try {
  if (wsUrl) await checkWs(wsUrl);
  if (sioUrl) await checkSio(sioUrl);
} catch (err) {
  fail(err.message);
}
for (const f of failures) console.log(`contract: ${f}`);
process.exit(failures.length ? 1 : 0);
