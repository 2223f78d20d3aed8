// Regenerates js-number-tostring.txt: `<f64 bits in hex> <String(x) in Node>` for the
// layout boundaries of Number::toString (every power of ten and one ulp either side, and
// -1.5 times it), a shortest-digit tie, and pseudo-random bit patterns.
//   node js-number-tostring.js > js-number-tostring.txt
const buf = new DataView(new ArrayBuffer(8));
const bits = (x) => { buf.setFloat64(0, x); return buf.getBigUint64(0); };
const float = (b) => { buf.setBigUint64(0, BigInt.asUintN(64, b)); return buf.getFloat64(0); };
const values = [];
for (let e = -325; e <= 309; e++) {
  const p = Number(`1e${e}`);
  for (const v of [p, float(bits(p) + 1n), float(bits(p) - 1n)]) values.push(v);
  values.push(-p * 1.5);
}
values.push(999900000000000.25, 2 ** 53, 2 ** 53 + 2, 2 ** 60, 1e21 - 65536, 0.1 + 0.2, 5e-324, Number.MAX_VALUE);
let x = 0x9e3779b97f4a7c15n;
for (let i = 0; i < 1000; i++) {
  x ^= BigInt.asUintN(64, x << 13n); x ^= x >> 7n; x ^= BigInt.asUintN(64, x << 17n);
  values.push(float(x));
}
console.log(`# node ${process.version}: bits String(x)`);
for (const v of values) if (Number.isFinite(v)) console.log(bits(v).toString(16).padStart(16, "0"), String(v));
