// Regenerates node-parity.jsonl: what Node's socket.io-parser makes of each input.
//
//   npm install socket.io-parser@4.2.7   (the version socket.io 4.8 resolves to)
//   node node-parity.js < node-parity.jsonl > new.jsonl && mv new.jsonl node-parity.jsonl
//
// Each line is {"msgs": [...], "node": [...]}: the Engine.IO message payloads of one
// connection, in order ({"t": text} or {"b": hex bytes}), and for each packet Node's
// decoder emits, or the error it throws (decoding stops there, as the connection would):
//   {"type", "nsp", "id" (String(id) or null), "data" (JSON.stringify of the data with
//    each attachment back as {"_placeholder":true,"num":N}, or null), "enc" (the
//    Encoder's text for the packet, binary packets re-encoded from placeholders)}
//   {"error": message}
// The inputs are cases where iolite agrees with Node; see tests/decoder_agrees_with_node.rs.
const { Decoder, Encoder } = require("socket.io-parser");
const readline = require("readline");

function withPlaceholders(v, atts) {
  if (Buffer.isBuffer(v)) return { _placeholder: true, num: atts.indexOf(v) };
  if (Array.isArray(v)) return v.map((x) => withPlaceholders(x, atts));
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = withPlaceholders(v[k], atts);
    return o;
  }
  return v;
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const { msgs } = JSON.parse(line);
  const node = [];
  const decoder = new Decoder();
  let decoded = null;
  let bins = [];
  decoder.on("decoded", (p) => (decoded = p));
  for (const m of msgs) {
    decoded = null;
    try {
      if (m.t !== undefined) {
        bins = [];
        decoder.add(m.t);
      } else {
        const b = Buffer.from(m.b, "hex");
        bins.push(b);
        decoder.add(b);
      }
    } catch (e) {
      node.push({ error: e.message });
      break;
    }
    if (decoded) {
      const p = decoded;
      const data = p.data === undefined ? undefined : withPlaceholders(p.data, bins);
      const binary = bins.length > 0 && m.t === undefined;
      const type = binary ? p.type + 3 : p.type;
      const enc = new Encoder().encode({ type, nsp: p.nsp, id: p.id, data, attachments: bins.length })[0];
      node.push({
        type: p.type,
        nsp: p.nsp,
        id: p.id === undefined ? null : String(p.id),
        data: data === undefined ? null : JSON.stringify(data),
        enc,
      });
    }
  }
  console.log(JSON.stringify({ msgs, node }));
});
