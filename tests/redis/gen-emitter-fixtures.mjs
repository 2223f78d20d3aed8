// Writes crates/redis/tests/fixtures/emitter-wire.json: what @socket.io/redis-emitter 5.x
// publishes (channel and bytes) for each command (see emitter-ops.mjs), captured with a
// recording Redis client. iolite-redis's `Emitter` must publish the same bytes
// (crates/redis/tests/emitter_fixtures.rs).
//
// Run from tests/redis after `npm ci`: `node gen-emitter-fixtures.mjs`. The output is
// committed; rerun it only when the pinned versions change.

import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { Emitter } from "@socket.io/redis-emitter";
import { apply } from "./emitter-ops.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const file = join(here, "../../crates/redis/tests/fixtures/emitter-wire.json");

const long = "x".repeat(300);
const cases = [
  { op: "emit", event: "hello", args: [] },
  { op: "emit", event: "hello", args: ["a", 1, 1.5, -3, 0.1, null, true, false, { a: [1, "x"], b: {} }, [], 2 ** 40, -(2 ** 33)] },
  { op: "emit", to: ["r"], event: "e", args: [1] },
  { op: "emit", to: ["r", "s"], except: ["x", "y"], event: "e", args: [1] },
  { op: "emit", to: ["r", "r"], except: ["x", "x"], event: "e", args: [] },
  { op: "emit", except: ["x"], event: "e", args: [] },
  { op: "emit", nsp: "admin", to: ["r"], event: "e", args: ["n"] },
  { op: "emit", nsp: "/admin", event: "e", args: ["n"] },
  { op: "emit", flags: ["volatile", "compress"], event: "e", args: [] },
  { op: "emit", flags: ["nocompress", "volatile", "compress"], event: "e", args: [] },
  { op: "emit", event: "bin", args: [{ $bin: "0102" }, { nested: { $bin: "ff" }, list: [{ $bin: "" }] }] },
  { op: "emit", to: ["AbCdEfGhIjKlMnOpQrSt"], event: "direct", args: ["only you"] },
  { op: "emit", to: ["é✓ room"], event: "ünï", args: [long, { [long]: long }] },
  { key: "custom", op: "emit", to: ["r"], event: "e", args: [] },
  { op: "emit", event: "connect", args: [], error: true },
  { op: "emit", event: "disconnecting", args: [], error: true },
  { op: "socketsJoin", rooms: "a" },
  { op: "socketsJoin", to: ["r"], except: ["x"], rooms: ["a", "b"] },
  { op: "socketsLeave", nsp: "admin", to: ["r", "s"], rooms: ["a"] },
  { op: "disconnectSockets", close: false },
  { op: "disconnectSockets", except: ["vip"], close: true },
  { key: "custom", op: "disconnectSockets", to: ["AbCdEfGhIjKlMnOpQrSt"], close: false },
  { op: "serverSideEmit", event: "sse", args: [] },
  { op: "serverSideEmit", nsp: "/admin", event: "sse", args: ["x", 1, 2.5, { a: null }, [true], 1e21, "é\u2028\"\\"] },
];

const fixtures = [];
for (const c of cases) {
  const published = [];
  const client = { publish: (channel, msg) => published.push({ channel, hex: Buffer.from(msg).toString("hex") }) };
  const emitter = new Emitter(client, c.key ? { key: c.key } : undefined);
  let error = null;
  try {
    apply(emitter, c);
  } catch (e) {
    error = String(e.message);
  }
  if (!!error !== !!c.error) throw new Error(`case ${JSON.stringify(c)}: error ${error}`);
  fixtures.push({ cmd: c, error, published });
}
writeFileSync(file, JSON.stringify(fixtures, null, 1) + "\n");
console.log(`wrote ${fixtures.length} cases to ${file}`);
