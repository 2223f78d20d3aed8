// Binary round trips with both parsers (JSON default parser, socket.io-msgpack-parser) and
// both transports (polling carries binary as base64 "b" packets).
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import msgpackParser from "socket.io-msgpack-parser";
import { startServer, client, closeAll, connected, once, ask, normalize, stripOffset } from "./helpers.mjs";

const servers = {};
before(async () => {
  [servers.json, servers.msgpack] = await Promise.all([startServer(), startServer({ PARSER: "msgpack" })]);
});
after(async () => {
  await Promise.all(Object.values(servers).map((s) => s.close()));
});
afterEach(closeAll);

const bytes = (...xs) => Buffer.from(xs);
const big = Buffer.alloc(200_000);
for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 256;

const cases = {
  "single buffer": [bytes(1, 2, 3)],
  "empty buffer": [Buffer.alloc(0)],
  "several buffers": [bytes(0), bytes(255, 254), "mid", bytes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)],
  "nested in objects and arrays": [
    {
      a: bytes(0xde, 0xad),
      b: [bytes(0xbe, 0xef), { c: bytes(0), d: [[bytes(1)]] }, "text"],
      e: { f: { g: Buffer.alloc(0) } },
      n: null,
      num: 1.5,
    },
    [bytes(9), bytes(8)],
  ],
  "large buffer": [big],
  "Uint8Array and ArrayBuffer inputs": [new Uint8Array([5, 6, 7]), new Uint8Array([8, 9]).buffer],
};

for (const parser of ["json", "msgpack"]) {
  for (const transport of ["websocket", "polling"]) {
    const opts = () => ({ transports: [transport], ...(parser === "msgpack" ? { parser: msgpackParser } : {}) });
    const tag = `[${parser}/${transport}]`;

    for (const [name, args] of Object.entries(cases)) {
      test(`${tag} echo with ack: ${name}`, async () => {
        const s = client(servers[parser].url, "/", opts());
        await connected(s);
        const res = await new Promise((resolve, reject) =>
          s.timeout(5000).emit("echo", ...args, (err, ...r) => (err ? reject(err) : resolve(r))),
        );
        // binary values must come back as binary (normalize() maps only real binary to {bin})
        assert.deepEqual(normalize(res), normalize(args));
      });
    }

    test(`${tag} echo without ack: binary event from the server`, async () => {
      const s = client(servers[parser].url, "/", opts());
      await connected(s);
      const args = cases["nested in objects and arrays"];
      const got = once(s, "echo");
      s.emit("echo", ...args);
      const res = stripOffset(await got);
      assert.deepEqual(normalize(res), normalize(args));
      assert.ok(Buffer.isBuffer(res[0].a) || res[0].a instanceof ArrayBuffer);
    });

    test(`${tag} binary in a server -> client question and in the client's ack`, async () => {
      const s = client(servers[parser].url, "/", opts());
      await connected(s);
      let question;
      s.on("question", (...a) => {
        const cb = a.pop();
        question = a;
        cb({ back: bytes(4, 5, 6) }, Buffer.alloc(0));
      });
      const res = await ask(s, "ask-me", 2000, bytes(1, 2), { x: [bytes(3)] });
      assert.deepEqual(normalize(question), normalize([bytes(1, 2), { x: [bytes(3)] }]));
      assert.deepEqual(normalize(res), normalize({ response: [{ back: bytes(4, 5, 6) }, Buffer.alloc(0)] }));
    });

    test(`${tag} binary broadcast to a room`, async () => {
      const a = client(servers[parser].url, "/", opts());
      const b = client(servers[parser].url, "/", opts());
      await Promise.all([connected(a), connected(b)]);
      const room = `bin-${Math.random()}`;
      await ask(b, "join", room);
      const got = once(b, "room");
      a.emit("to-room", room, { data: bytes(10, 20, 30) }, bytes());
      assert.deepEqual(normalize(stripOffset(await got)), normalize([{ data: bytes(10, 20, 30) }, bytes()]));
    });
  }
}

test("binary type on the Node client is Buffer", async () => {
  const s = client(servers.json.url, "/", { transports: ["websocket"] });
  await connected(s);
  const res = await ask(s, "echo", bytes(1));
  assert.ok(Buffer.isBuffer(res), `got ${Object.prototype.toString.call(res)}`);
});
