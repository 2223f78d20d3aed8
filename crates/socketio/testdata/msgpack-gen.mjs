// Regenerates msgpack-parity.json: what npm's socket.io-msgpack-parser 3.0.2 (notepack.io
// 2.2) writes for a table of packets, and what its Decoder makes of those bytes and of a
// table of invalid messages. Read by crates/socketio/tests/msgpack_parity.rs.
//
//   (cd tests/peers && npm ci)        # once: the pinned socket.io-msgpack-parser
//   node crates/socketio/testdata/msgpack-gen.mjs
//
// (run from anywhere: the packages are loaded from tests/peers/node_modules, and the output
// is written next to this script).
//
// Output: {"valid": [...], "invalid": [...]}. Each case has "name" and "hex", the message:
// either what Node's Encoder wrote for a packet object, or hand-made bytes. Then
//   "node": what Node's Decoder emitted, as a view:
//     {"type", "kind" (type, or 5 / 6 for an EVENT / ACK that holds binary: the type iolite
//      reports), "nsp", "id" (number or null), "data" (JSON.stringify of the data with each
//      Buffer / ArrayBuffer replaced by {"_placeholder":true,"num":N} in wire order, or null
//      when absent), "attachments" (hex)}
//   or {"error": message} when it threw.
//   "exact": (valid cases) whether iolite's encoder must write these very bytes for the
//     decoded packet: true for packet objects built as Node's socket.emit builds them (keys
//     type, data, id, nsp) from values notepack writes canonically.
//   "ours": (invalid cases Node accepts) the start of the Debug text of the MsgpackError
//     iolite returns instead, and "why".
// Long runs in "hex", "data" and "attachments" are written as "\u0000<count>*<unit>\u0000"
// (NUL is in neither hex nor JSON.stringify output) to keep the file small.

import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { types } from "node:util";

const require = createRequire(new URL("../../../tests/peers/package.json", import.meta.url));
const { Encoder, Decoder } = require("socket.io-msgpack-parser");
const parserVersion = require("socket.io-msgpack-parser/package.json").version;
const notepackVersion = require("notepack.io/package.json").version;

const enc = new Encoder();
const encode = (packet) => {
  const out = enc.encode(packet);
  if (out.length !== 1) throw new Error("one message per packet expected");
  return out[0];
};
const hex = (h) => Buffer.from(h.replace(/\s+/g, ""), "hex");
const str = (s) => {
  // A fixstr / str 8 as notepack writes it.
  const b = Buffer.from(s, "utf8");
  const head = b.length < 32 ? Buffer.from([0xa0 | b.length]) : Buffer.from([0xd9, b.length]);
  return Buffer.concat([head, b]).toString("hex");
};
// A packet map of hex-encoded [key, value] fields, in order.
const pkt = (...fields) =>
  hex((0x80 | fields.length).toString(16) + fields.map(([k, v]) => str(k) + v).join(""));

// A short description of a value, for case names.
const desc = (v) => {
  if (v === undefined) return "undefined";
  if (Buffer.isBuffer(v)) return "Buffer";
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (v instanceof Date) return "Date";
  return typeof v === "number" ? String(v) : JSON.stringify(v);
};
const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));
const bytes = (n, seed = 0) => Buffer.from(range(n, (i) => (i * 7 + seed) & 0xff));
const nested = (depth, leaf) => (depth === 0 ? leaf : [nested(depth - 1, leaf)]);

// ---------------------------------------------------------------------------------------
// Valid: packet objects (exact unless said otherwise) and hand-made messages (never exact).

const ev = (data, extra = {}) => ({ type: 2, data, ...extra, nsp: "/" });
const valid = [
  // Every type, as socket.io's server builds them.
  ["connect, no data", { type: 0, nsp: "/" }],
  ["connect reply", { type: 0, data: { sid: "oSO0OpakMV_3jnilAAAA", pid: "x1" }, nsp: "/" }],
  ["connect to /admin with auth", { type: 0, data: { token: "abc" }, nsp: "/admin" }],
  ["connect with binary auth", { type: 0, data: { key: bytes(4) }, nsp: "/" }],
  ["disconnect", { type: 1, nsp: "/admin" }],
  ["connect_error string", { type: 4, data: "Unauthorized", nsp: "/" }],
  ["connect_error object", { type: 4, data: { message: "Not authorized", data: { code: 42 } }, nsp: "/a" }],
  ["event", ev(["foo"])],
  ["event with args", ev(["message", 1, "2", { 3: [true] }])],
  ["event numeric name", ev([1, "a"])],
  ["ack empty", { type: 3, data: [], id: 0, nsp: "/" }],
  ["ack args", { type: 3, data: [null, "ok", { a: [1, 2] }], id: 12, nsp: "/admin" }],
  // Ack ids of every width.
  ...[0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1].map((id) => [
    `ack id ${id}`,
    { type: 2, data: ["a"], id, nsp: "/" },
  ]),
  // Namespaces.
  ...["/admin", "/ünï😀", "/a/b", "/" + "n".repeat(40)].map((nsp) => [
    `namespace ${nsp.slice(0, 12)}`,
    { type: 2, data: ["a"], nsp },
  ]),
  // Numbers of every width.
  ["uints", ev(["n", 0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32])],
  ["big uints", ev(["n", 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64 - 2048])],
  ["negative ints", ev(["n", -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1])],
  ["big negative ints", ev(["n", -(2 ** 53 - 1), -(2 ** 53), -(2 ** 63)])],
  ["floats", ev(["n", 0.5, -1.5, 1.1, 1e-7, 5e-324, -2.5e-300, 123456.789, 2 ** 52 - 0.5, -(2 ** 52) + 0.5])],
  ["negative zero", ev(["n", -0])],
  ["NaN and infinities", ev(["n", NaN, Infinity, -Infinity]), false],
  // notepack writes an integral double past 2^64 modulo 2^64 (garbage, which both decode
  // alike; every double from 2^53 up is integral, so 1.5e300 and Number.MAX_VALUE too).
  ["integral doubles past 2^64", ev(["n", 1e20, -1e19, 1.5e300, Number.MAX_VALUE]), false],
  // Strings of every width, and Unicode.
  ...[0, 1, 31, 32, 255, 256, 65535, 65536].map((n) => [`string of ${n} bytes`, ev(["s", "a".repeat(n)])]),
  ["unicode strings", ev(["héllo wörld", "日本語", "😀🎉", "é".repeat(16), "😀".repeat(8), "\u0000\u001f\u007f\u2028"])],
  ["unicode keys", ev(["k", { "clé": 1, "键": 2, "😀": 3, "": 4 }])],
  // Binary of every width, nested.
  // (past 255 bytes mostly one byte value, so that the run notation keeps the file small)
  ...[0, 1, 255, 256, 65535, 65536].map((n) => [
    `binary of ${n} bytes`,
    ev(["b", n < 256 ? bytes(n) : Buffer.concat([bytes(16), Buffer.alloc(n - 16, 0x5a)])]),
  ]),
  [
    "nested binary",
    ev(["upload", { name: "a.bin", file: bytes(3, 1) }, [bytes(2, 2), { deep: [bytes(1, 3)] }]]),
  ],
  ["binary with ack id", { type: 2, data: ["b", bytes(5)], id: 9, nsp: "/admin" }],
  ["binary ack", { type: 3, data: [bytes(2), "x"], id: 4, nsp: "/" }],
  ["ten buffers", ev(["b", ...range(10, (i) => bytes(i, i))])],
  // Arrays and maps of every width.
  ...[0, 15, 16, 65535, 65536].map((n) => [`array of ${n}`, ev(["a", range(n, () => 0)])]),
  ...[0, 15, 16, 300].map((n) => [`map of ${n}`, ev(["m", Object.fromEntries(range(n, (i) => [`k${i}`, i]))])]),
  ["empty containers", ev(["e", [], {}, [[]], { a: {} }, ""])],
  ["bools and nulls", ev(["v", true, false, null, { t: true, f: false, n: null }])],
  // data nested 127 deep, as deep as the JSON parser goes.
  ["nesting 127 deep", ev(["d", nested(125, [])])],
  // Shapes socket.io builds with other key orders, or with values notepack writes its own way.
  ["client connect without auth (data undefined)", { type: 0, data: undefined, nsp: "/" }, false],
  ["client event (options, id)", { type: 2, data: ["hello", 1], options: { compress: true }, id: 3, nsp: "/" }, false],
  ["client ack (id first)", { type: 3, id: 3, data: ["ok"], nsp: "/" }, false],
  ["server ack (id first)", { id: 7, type: 3, data: [bytes(2)], nsp: "/" }, false],
  ["broadcast with ack (nsp before id)", { type: 2, data: ["b"], nsp: "/", id: 5 }, false],
  ["undefined values", ev(["u", undefined, { a: undefined, b: 1 }]), false],
  [
    "dates",
    ev(["d", new Date(0), new Date(-1), new Date(1700000000123), new Date(8.64e15), new Date(-8.64e15), new Date(-62198755200000)]),
    false,
  ],
  ["typed arrays (ext 0)", ev(["t", new Uint8Array([1, 2, 3]), new Int16Array([-1, 2]), new ArrayBuffer(2)]), false],
  ["__proto__ key", ev(["p", { a: 1, ["__proto__"]: { polluted: true }, b: 2 }]), false],
  ["__proto__ key holding binary", ev(["p", { ["__proto__"]: bytes(2) }, bytes(1)]), false],
  // Hand-made messages.
  ["type and id as float 64", pkt(["type", "cb4000000000000000"], ["data", "91a161"], ["id", "cb4014000000000000"], ["nsp", str("/")])],
  ["float 32", pkt(["type", "02"], ["data", "93a161ca3fc00000ca7f800000"], ["nsp", str("/")])],
  ["non-minimal widths", pkt(["type", "cc02"], ["data", "dc0003d90161d10001de0001a16bcd0002"], ["id", "ce00000007"], ["nsp", "d9012f"])],
  ["map 16 packet", hex("de0003" + str("type") + "02" + str("data") + "91a161" + str("nsp") + str("/"))],
  ["ext types", pkt(["type", "02"], ["data", "95a165d6ff00000001d50a0102c7030501020 3d40701".replace(/ /g, "")], ["nsp", str("/")])],
  ["invalid date", pkt(["type", "02"], ["data", "92a164d7007fffffffffffffff"], ["nsp", str("/")])],
  ["non-string keys", pkt(["type", "02"], ["data", "92a16b8601a161ffa162cb3ff8000000000000a163c0a164c3a165d40000a166"], ["nsp", str("/")])],
  ["duplicate keys", pkt(["type", "02"], ["data", "92a16b84a16101a16202a16103a162d40000"], ["nsp", str("/")])],
  ["duplicate packet keys", pkt(["type", "00"], ["data", "91a161"], ["type", "02"], ["nsp", str("/x")], ["nsp", str("/")])],
  ["invalid utf-8", pkt(["type", "02"], ["data", "94a173a2e282a3eda080a4f4908080"], ["nsp", str("/")])],
  ["unknown keys ignored", pkt(["x", "93c0c40100d40000"], ["type", "02"], ["data", "91a161"], ["nsp", str("/")], ["options", "81a163c3"])],
];

// ---------------------------------------------------------------------------------------
// Invalid: Node's Decoder throws, or iolite is stricter ("ours").

const ours = (error, why) => ({ error, why });
const evp = (data) => pkt(["type", "02"], ["data", data], ["nsp", str("/")]);
const okPacket = encode(ev(["a", 1]));
const invalid = [
  // Not msgpack.
  ["empty", hex("")],
  ["0xc1", hex("c1")],
  ["0xc1 inside", evp("92a161c1")],
  ["trailing bytes", Buffer.concat([okPacket, hex("00")])],
  ...[1, 5, 12, okPacket.length - 1].map((n) => [`truncated to ${n}`, okPacket.subarray(0, n)]),
  ["string past the end", evp("92a161a5616263")],
  ["binary past the end", evp("92a161c40a0102")],
  ["ext past the end", evp("92a161c70a000102")],
  ["map 32 claiming 2^32-1 entries", hex("dfffffffff" + str("type") + "02")],
  ["array 32 claiming 2^32-1 items", evp("ddffffffff")],
  ["str 32 claiming 4 GiB", evp("92a161dbffffffff61")],
  ["bin 32 claiming 4 GiB", evp("92a161c6ffffffff00")],
  // Not a packet.
  ["nil", hex("c0")],
  ["undefined", hex("d40000")],
  ["array", encode(["a"])],
  ["string", encode("2")],
  ["number", encode(2)],
  ["empty map", encode({})],
  ["missing type", encode({ data: ["a"], nsp: "/" })],
  ...[5, 6, 7, -1, 1.5, "2", true, null, NaN, [2]].map((type) => [`type ${desc(type)}`, encode({ type, data: ["a"], nsp: "/" })]),
  ["type undefined", encode({ type: undefined, nsp: "/" })],
  ["missing nsp", encode({ type: 2, data: ["a"] })],
  ...[1, null, ["/"], undefined].map((nsp) => [`nsp ${desc(nsp)}`, encode({ type: 2, data: ["a"], nsp })]),
  ["type checked before nsp", encode({ type: 9, nsp: 1 })],
  // Payloads Node refuses.
  ...[
    [0, []], [0, "x"], [0, null], [0, 1], [0, bytes(1)], [0, new Date(0)],
    [1, {}], [1, null], [1, []],
    [4, undefined], [4, []], [4, 1], [4, null], [4, bytes(1)],
    [2, undefined], [2, {}], [2, "a"], [2, null], [2, bytes(1)], [2, new Uint8Array([1])],
    [3, undefined], [3, {}], [3, null],
  ].map(([type, data]) => [`type ${type} data ${desc(data)}`, encode({ type, data, nsp: "/" })]),
  ["missing data", encode({ type: 3, id: 1, nsp: "/" })],
  ["payload checked before id", encode({ type: 2, data: {}, id: "x", nsp: "/" })],
  // Ids Node refuses.
  ...["1", 1.5, null, NaN, Infinity, true, [1]].map((id) => [`id ${desc(id)}`, encode({ type: 2, data: ["a"], id, nsp: "/" })]),
  // Node accepts; iolite does not.
  ["event without name", encode(ev([])), ours("InvalidPayload(MissingEventName", "the JSON parser's rule")],
  ...["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"].map((name) => [
    `reserved event ${name}`,
    encode(ev([name, 1])),
    ours("InvalidPayload(ReservedEventName", "the JSON parser's rule"),
  ]),
  ...[true, null, {}, [], bytes(1)].map((name) => [
    `event name ${desc(name)}`,
    encode(ev([name])),
    ours("InvalidPayload(InvalidEventName", "the JSON parser's rule"),
  ]),
  ["nsp without slash", encode({ type: 0, nsp: "admin" }), ours("UnsupportedNamespace(MissingLeadingSlash", "Namespace cannot hold it")],
  ["empty nsp", encode({ type: 0, nsp: "" }), ours("UnsupportedNamespace(MissingLeadingSlash", "Namespace cannot hold it")],
  ["nsp with comma", encode({ type: 2, data: ["a"], nsp: "/a,b" }), ours("UnsupportedNamespace(ContainsComma", "Namespace cannot hold it")],
  ["negative id", encode({ type: 2, data: ["a"], id: -1, nsp: "/" }), ours("NegativeAckId", "ids are u64")],
  ["id 2^53", encode({ type: 2, data: ["a"], id: 2 ** 53, nsp: "/" }), ours("AckIdTooLarge", "max_ack_id")],
  ["id 2^64-2048", encode({ type: 3, data: [], id: 2 ** 64 - 2048, nsp: "/" }), ours("AckIdTooLarge", "max_ack_id")],
  ["eleven buffers", encode(ev(["b", ...range(11, (i) => bytes(i))])), ours("TooManyAttachments", "max_attachments")],
  ["eleven buffers outside data", encode({ type: 2, data: ["b"], x: range(11, () => bytes(1)), nsp: "/" }), ours("TooManyAttachments", "max_attachments")],
  ["nesting 128 deep", encode(ev(["d", nested(126, [])])), ours("TooDeep", "MAX_DEPTH")],
  ["nesting 1000 deep", encode(ev(["d", nested(999, [])])), ours("TooDeep", "MAX_DEPTH")],
  ["array key", evp("92a16b819101c0"), ours("UnsupportedMapKey", "not a property name")],
  ["map key", evp("92a16b8180c0"), ours("UnsupportedMapKey", "not a property name")],
  ["binary key", evp("92a16b81c40161c0"), ours("UnsupportedMapKey", "not a property name")],
  ["date key", evp("92a16b81d7000000000000000000c0"), ours("UnsupportedMapKey", "not a property name")],
  ["literal placeholder", encode(ev(["x", { _placeholder: true, num: 0 }])), ours("LiteralPlaceholder", "ambiguous with binary")],
  ["literal placeholder with binary", encode(ev(["x", bytes(1), { num: 0, _placeholder: true }])), ours("LiteralPlaceholder", "ambiguous with binary")],
  [
    "packet as __proto__",
    hex("81" + str("__proto__") + encode(ev(["a"])).toString("hex")),
    ours("InvalidPacketType", "a top-level __proto__ is ignored"),
  ],
];

// ---------------------------------------------------------------------------------------

function nodeDecode(buf) {
  const d = new Decoder();
  let out;
  d.on("decoded", (p) => (out = p));
  try {
    d.add(buf);
  } catch (e) {
    return { error: e.message };
  }
  const atts = [];
  const walk = (v) => {
    // By internal slots: an object whose prototype a `__proto__` key made Buffer.prototype
    // is no buffer.
    if (types.isUint8Array(v) || types.isArrayBuffer(v)) {
      atts.push(Buffer.from(v).toString("hex"));
      return { _placeholder: true, num: atts.length - 1 };
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object" && !types.isDate(v)) {
      const o = {};
      for (const k of Object.keys(v)) o[k] = walk(v[k]);
      return o;
    }
    return v;
  };
  const data = out.data === undefined ? null : JSON.stringify(walk(out.data));
  const binary = atts.length > 0 && (out.type === 2 || out.type === 3);
  return {
    type: out.type,
    kind: binary ? out.type + 3 : out.type,
    nsp: out.nsp,
    id: out.id === undefined ? null : out.id,
    data,
    attachments: atts,
  };
}

const runs = (s) =>
  s.replace(/(.{1,4}?)\1{31,}/gs, (m, unit) => `\u0000${m.length / unit.length}*${unit}\u0000`);

const names = new Set();
const check = (name) => {
  if (names.has(name)) throw new Error(`duplicate case name ${name}`);
  names.add(name);
};
const compact = (node) =>
  node.error !== undefined
    ? node
    : { ...node, data: node.data === null ? null : runs(node.data), attachments: node.attachments.map(runs) };

const out = {
  generator: `msgpack-gen.mjs: socket.io-msgpack-parser ${parserVersion}, notepack.io ${notepackVersion}`,
  valid: valid.map(([name, what, exact]) => {
    check(name);
    const isBuffer = Buffer.isBuffer(what);
    const buf = isBuffer ? what : encode(what);
    const node = nodeDecode(buf);
    if (node.error !== undefined) throw new Error(`valid case ${name} rejected by Node: ${node.error}`);
    return { name, hex: runs(buf.toString("hex")), exact: !isBuffer && exact !== false, node: compact(node) };
  }),
  invalid: invalid.map(([name, buf, ourError]) => {
    check(name);
    const node = nodeDecode(buf);
    if ((node.error === undefined) !== (ourError !== undefined)) {
      throw new Error(`invalid case ${name}: Node ${node.error === undefined ? "accepts" : "rejects"} it`);
    }
    const c = { name, hex: runs(buf.toString("hex")), node: compact(node) };
    if (ourError) c.ours = ourError.error, c.why = ourError.why;
    return c;
  }),
};

const path = new URL("./msgpack-parity.json", import.meta.url);
writeFileSync(path, JSON.stringify(out, null, 1) + "\n");
console.log(`wrote ${out.valid.length} valid and ${out.invalid.length} invalid cases to ${path.pathname}`);
