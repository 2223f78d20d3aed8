// Applies one emitter command (a JSON object, shared with the Rust tests) to an
// @socket.io/redis-emitter `Emitter`:
//   {op: "emit", nsp?, to?: [room], except?: [room], flags?: ["volatile" | "compress" | "nocompress"], event, args}
//   {op: "socketsJoin" | "socketsLeave", nsp?, to?, except?, rooms: room | [room]}
//   {op: "disconnectSockets", nsp?, to?, except?, close}
//   {op: "serverSideEmit", nsp?, event, args}
// Binary values travel as {"$bin": "<hex>"}.

export const fromWire = (v) => {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string") return Buffer.from(v.$bin, "hex");
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromWire(x)]));
  }
  return v;
};

export function apply(emitter, c) {
  const e = c.nsp !== undefined ? emitter.of(c.nsp) : emitter;
  if (c.op === "serverSideEmit") return e.serverSideEmit(c.event, ...(c.args || []));
  let op = e.to([]);
  for (const r of c.to || []) op = op.to(r);
  for (const r of c.except || []) op = op.except(r);
  for (const f of c.flags || []) {
    if (f === "volatile") op = op.volatile;
    else if (f === "compress") op = op.compress(true);
    else if (f === "nocompress") op = op.compress(false);
  }
  switch (c.op) {
    case "emit":
      return op.emit(c.event, ...fromWire(c.args || []));
    case "socketsJoin":
      return op.socketsJoin(c.rooms);
    case "socketsLeave":
      return op.socketsLeave(c.rooms);
    case "disconnectSockets":
      return op.disconnectSockets(!!c.close);
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}
