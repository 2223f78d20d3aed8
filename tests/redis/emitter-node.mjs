// @socket.io/redis-emitter 5.x on a real Redis, driven by the iolite-redis emitter tests
// (crates/redis/tests/emitter.rs) over stdin/stdout.
//
// Environment: REDIS_URL (redis://127.0.0.1:PORT), KEY (default socket.io).
// Prints {"event": "ready"} once connected, then answers each command line (see
// emitter-ops.mjs, plus an `id`) with {"id": N, "ok": true} once Redis has it (a PING sent
// after the PUBLISH on the same connection was answered), or {"id": N, "error": "..."}.

import { createInterface } from "node:readline";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import { apply } from "./emitter-ops.mjs";

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const client = createClient({ url: process.env.REDIS_URL });
client.on("error", () => {});
await client.connect();
const emitter = new Emitter(client, { key: process.env.KEY || "socket.io" });

createInterface({ input: process.stdin }).on("line", async (line) => {
  let c;
  try {
    c = JSON.parse(line);
  } catch {
    return;
  }
  try {
    apply(emitter, c);
    await client.ping();
    out({ id: c.id, ok: true });
  } catch (e) {
    out({ id: c.id, error: String(e && e.message ? e.message : e) });
  }
});
process.stdin.on("end", () => process.exit(0));
out({ event: "ready" });
