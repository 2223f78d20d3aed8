/*
 * iolite.js: a small Socket.IO v5 / Engine.IO v4 client for browsers. One file, no build step, no
 * dependencies. Load it with <script src="/iolite.js"></script>; it defines `window.iolite`.
 * The API is a subset of socket.io-client 4.x, with the same names and meanings:
 *
 *   const socket = iolite.io(url?, opts?)  // "http://host:port/namespace"; none: this page's origin, "/"
 *   opts (defaults): path ("/socket.io/"), transports (["websocket", "polling"]), auth (object, or
 *     function (cb) { cb(object) }), query (object or string), reconnection (true),
 *     reconnectionAttempts (Infinity), reconnectionDelay (1000), reconnectionDelayMax (5000),
 *     randomizationFactor (0.5), timeout (20000: per connection attempt), autoConnect (true),
 *     ackTimeout (none), upgrade (true), withCredentials (false), forceNew (false), multiplex
 *     (true: io() calls for one server share a connection, one socket per namespace).
 *
 *   socket.id, .connected, .disconnected, .recovered, .active, .io (the Manager)
 *   socket.on/once/off(event, fn), socket.onAny/prependAny/offAny(fn)
 *   socket.emit(event, ...args, ack?)            ack(...response)
 *   socket.timeout(ms).emit(event, ...args, cb)  cb(err, ...response); err: "operation has timed out"
 *   socket.emitWithAck(event, ...args)           Promise of the first response argument
 *   socket.volatile.emit(...)                    dropped unless it can be sent right now
 *   socket.connect(), socket.disconnect()
 *   socket events: "connect", "connect_error" (err.message, err.data), "disconnect" (reason), and the
 *     server's events. Reasons: "io server disconnect", "io client disconnect", "ping timeout",
 *     "transport close", "transport error", "parse error".
 *   socket.io events: "reconnect_attempt" (n), "reconnect" (n), "reconnect_error" (err),
 *     "reconnect_failed", "error" (err), "open", "close" (reason), "ping".
 *   socket.io.engine: the Engine.IO connection (id, transport.name, maxPayload, close()).
 *
 * Transports: WebSocket first; when the WebSocket cannot be opened (a proxy refuses the upgrade, say)
 * or has no handshake after timeout / 4, the same attempt falls back to HTTP long-polling (each
 * reconnection tries WebSocket again). transports ["polling", "websocket"] starts with polling and
 * upgrades to WebSocket as socket.io-client does; ["polling"] never upgrades. Polling POSTs are
 * split to stay within the server's maxPayload.
 * While disconnected, emits are buffered and sent in order on (re)connection; volatile emits are
 * dropped. Reconnection uses socket.io-client's exponential backoff with jitter. With connection
 * state recovery on the server, the socket keeps its session id and the offset of the last event
 * (the extra last argument the server appends, which listeners receive, as with socket.io-client)
 * and asks for what it missed when it reconnects.
 * Binary: ArrayBuffer and typed arrays at any depth, both ways; received binaries are ArrayBuffers.
 */
(function (global) {
  "use strict";

  // ------------------------------------------------------------------ events

  // A listener's exception must not break the protocol's state, so it is rethrown on its own.
  function call(fn, self, args) {
    try { fn.apply(self, args); } catch (e) { setTimeout(() => { throw e; }); }
  }

  class Emitter {
    on(ev, fn) {
      const m = (this._listeners = this._listeners || new Map());
      if (!m.has(String(ev))) m.set(String(ev), []);
      m.get(String(ev)).push(fn);
      return this;
    }
    once(ev, fn) {
      const w = (...args) => (this.off(ev, w), fn.apply(this, args));
      w.fn = fn;
      return this.on(ev, w);
    }
    off(ev, fn) {
      if (!this._listeners) return this;
      if (ev === undefined) this._listeners.clear();
      else if (fn === undefined) this._listeners.delete(String(ev));
      else {
        const l = this._listeners.get(String(ev)) || [];
        const i = l.findIndex((x) => x === fn || x.fn === fn);
        if (i >= 0) l.splice(i, 1);
      }
      return this;
    }
    listeners(ev) { return ((this._listeners && this._listeners.get(String(ev))) || []).slice(); }
    hasListeners(ev) { return this.listeners(ev).length > 0; }
    _emit(ev, ...args) { for (const fn of this.listeners(ev)) call(fn, this, args); }
  }

  const on = (emitter, ev, fn) => (emitter.on(ev, fn), () => emitter.off(ev, fn));

  function transportError(message, description) {
    return Object.assign(new Error(message), { type: "TransportError", description });
  }

  // ------------------------------------------------------------------ Engine.IO packets

  const TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];
  const isBin = (x) => x instanceof ArrayBuffer || ArrayBuffer.isView(x);
  const bytes = (b) => (b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  const utf8 = new TextEncoder();

  function toBase64(buf) {
    const u8 = bytes(buf);
    let s = "";
    for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
    return btoa(s);
  }

  function fromBase64(s) {
    const bin = atob(s);
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return u8.buffer;
  }

  // Binary messages go as WebSocket binary frames, or as "b" + base64 in a polling payload.
  function encodePacket(p, binaryFrames) {
    if (isBin(p.data)) return binaryFrames ? p.data : "b" + toBase64(p.data);
    return TYPES.indexOf(p.type) + (p.data === undefined ? "" : p.data);
  }

  // null for anything that is not an Engine.IO packet
  function decodePacket(d) {
    if (typeof d !== "string") return { type: "message", data: d };
    if (d[0] === "b") {
      try { return { type: "message", data: fromBase64(d.slice(1)) }; } catch { return null; }
    }
    if (!/^[0-6]/.test(d)) return null;
    return d.length > 1 ? { type: TYPES[d[0]], data: d.slice(1) } : { type: TYPES[d[0]] };
  }

  // ------------------------------------------------------------------ transports
  // Both emit "open", "packet", "drain" (writable again), "error" and "close" (not after close()).

  class Polling extends Emitter {
    constructor(engine) {
      super();
      Object.assign(this, { engine, name: "polling", readyState: "closed", writable: false, polling: false });
    }
    open() {
      this.readyState = "opening";
      this._poll();
    }
    _request(method, body) {
      const init = { method, cache: "no-store", credentials: this.engine.opts.withCredentials ? "include" : "same-origin" };
      if (body !== undefined) Object.assign(init, { body, headers: { "Content-Type": "text/plain;charset=UTF-8" } });
      return fetch(this.engine.url("polling"), init).then((res) => {
        if (res.status !== 200) throw new Error("HTTP status " + res.status);
        return res.text();
      });
    }
    _fail(message, err) {
      if (this.readyState !== "closed" && this.readyState !== "paused") this._emit("error", transportError(message, err));
    }
    _poll() {
      this.polling = true;
      this._request("GET").then((text) => this._onData(text), (err) => this._fail("poll error", err));
    }
    _onData(text) {
      if (this.readyState === "closed" || this.readyState === "paused") return;
      for (const chunk of text.split("\x1e")) {
        const p = decodePacket(chunk);
        if (!p) return this._emit("error", transportError("parse error", chunk));
        if (this.readyState === "opening" && p.type === "open") {
          this.readyState = "open";
          this.writable = true;
        }
        if (p.type === "close") return this._closed("transport closed by the server");
        this._emit("packet", p);
        if (this.readyState === "closed") return;
      }
      this.polling = false;
      this._emit("pollComplete");
      if (this.readyState === "open") this._poll();
    }
    send(packets) {
      this.writable = false;
      const body = packets.map((p) => encodePacket(p, false)).join("\x1e");
      this._request("POST", body).then(() => {
        if (this.readyState === "closed") return;
        this.writable = true;
        this._emit("drain");
      }, (err) => this._fail("post error", err));
    }
    // For the switch to WebSocket: stops polling once the pending GET and POST are answered.
    pause(onPause) {
      this.readyState = "pausing";
      let pending = 1;
      const done = () => {
        if (--pending > 0 || this.readyState !== "pausing") return;
        this.readyState = "paused";
        onPause();
      };
      if (this.polling) this.once("pollComplete", done), pending++;
      if (!this.writable) this.once("drain", done), pending++;
      done(); // the initial 1
    }
    resume() {
      if (this.readyState !== "pausing" && this.readyState !== "paused") return;
      this.readyState = "open";
      if (!this.polling) this._poll();
    }
    // The server answers the pending GET itself once it has the close packet; aborting the GET
    // instead would make it see a transport error.
    close() {
      if (this.readyState === "open") this._request("POST", "1").catch(() => {});
      this.readyState = "closed";
      this.writable = false;
    }
    _closed(description) {
      this.readyState = "closed"; // the server has closed the session: no close packet back
      this.close();
      this._emit("close", { description });
    }
  }

  class WS extends Emitter {
    constructor(engine) {
      super();
      Object.assign(this, { engine, name: "websocket", readyState: "closed", writable: false });
    }
    open() {
      this.readyState = "opening";
      try {
        this.ws = new WebSocket(this.engine.url("websocket"));
      } catch (err) {
        return setTimeout(() => this._emit("error", transportError("websocket error", err)));
      }
      this.ws.binaryType = "arraybuffer";
      this.ws.onopen = () => {
        Object.assign(this, { readyState: "open", writable: true });
        this._emit("open");
      };
      this.ws.onclose = (ev) => this._closed("websocket connection closed", ev);
      this.ws.onerror = (ev) => this._emit("error", transportError("websocket error", ev));
      this.ws.onmessage = (ev) => {
        const p = decodePacket(ev.data);
        if (!p) this._emit("error", transportError("parse error", ev.data));
        else if (p.type === "close") this._closed("transport closed by the server");
        else this._emit("packet", p);
      };
    }
    // Sends at once: the transport stays writable, so there is no "drain".
    send(packets) {
      for (const p of packets) this.ws.send(encodePacket(p, true));
    }
    close() {
      if (this.ws) {
        this.ws.onopen = this.ws.onclose = this.ws.onerror = this.ws.onmessage = null;
        this.ws.close();
        this.ws = null;
      }
      Object.assign(this, { readyState: "closed", writable: false });
    }
    _closed(description, context) {
      this.close();
      this._emit("close", { description, context });
    }
  }

  // ------------------------------------------------------------------ Engine.IO connection

  class Engine extends Emitter {
    constructor(opts) {
      super();
      Object.assign(this, { opts, id: null, writeBuffer: [], upgrading: false, readyState: "opening", maxPayload: 0 });
      this._pingDeadline = Infinity;
      this._candidates = opts.transports.slice();
      this._wsFailed = false;
      this._open();
    }
    url(transport) {
      const q = new URLSearchParams(this.opts.query);
      q.set("EIO", "4");
      q.set("transport", transport);
      if (this.id) q.set("sid", this.id);
      const ws = transport === "websocket";
      if (!ws) q.set("t", Math.random().toString(36).slice(2, 10)); // defeats caches
      return (ws ? "ws" : "http") + (this.opts.secure ? "s" : "") + "://" + this.opts.host + this.opts.path + "?" + q;
    }
    _open() {
      const name = this._candidates[0];
      if (!name) return setTimeout(() => this._onError(transportError("No transports available")));
      this._setTransport(name === "websocket" ? new WS(this) : new Polling(this));
      this.transport.open();
      // a proxy may also hold a WebSocket upgrade unanswered: the next transport gets its turn
      clearTimeout(this._fallBackTimer);
      if (this._candidates.length > 1) this._fallBackTimer = setTimeout(() => this._fallBack(), this.opts.fallBackDelay);
    }
    _setTransport(t) {
      if (this.transport) this.transport.off();
      this.transport = t;
      t.on("drain", () => (this.writeBuffer.length ? this.flush() : this._emit("drain")));
      t.on("packet", (p) => this._onPacket(p));
      t.on("error", (e) => this._onError(e));
      t.on("close", (d) => this._onClose("transport close", d));
    }
    // Before the handshake, a transport that fails hands over to the next one.
    _fallBack() {
      clearTimeout(this._fallBackTimer);
      if (this.readyState !== "opening" || this._candidates.length < 2) return false;
      if (this.transport.name === "websocket") this._wsFailed = true;
      this.transport.off();
      this.transport.close();
      this._candidates.shift();
      this._open();
      return true;
    }
    _onPacket(p) {
      if (this.readyState === "closed") return;
      if (p.type === "open") this._onHandshake(p.data);
      else if (p.type === "message") this._emit("data", p.data);
      else if (p.type === "ping") {
        this._send("pong");
        this._emit("ping");
        this._resetPingTimer();
      }
    }
    _onHandshake(data) {
      let hs = null;
      try { hs = JSON.parse(data); } catch {}
      if (!hs || typeof hs.sid !== "string") return this._onError(transportError("parse error", data));
      clearTimeout(this._fallBackTimer);
      Object.assign(this, { id: hs.sid, pingInterval: hs.pingInterval, pingTimeout: hs.pingTimeout, maxPayload: hs.maxPayload });
      this.readyState = "open";
      this._emit("open");
      if (this.readyState !== "open") return;
      this.flush();
      const upgrades = Array.isArray(hs.upgrades) ? hs.upgrades : [];
      const wanted = this.opts.upgrade && this.opts.transports.includes("websocket") && !this._wsFailed;
      if (wanted && this.transport.name === "polling" && upgrades.includes("websocket")) this._probe();
      this._resetPingTimer();
    }
    // The server pings; silence for pingInterval + pingTimeout means the connection is dead.
    _resetPingTimer() {
      clearTimeout(this._pingTimer);
      const delay = this.pingInterval + this.pingTimeout;
      this._pingDeadline = Date.now() + delay;
      this._pingTimer = setTimeout(() => this._onClose("ping timeout"), delay);
    }
    // A background tab's timers may fire late: an emit checks the deadline itself.
    pingExpired() {
      if (Date.now() <= this._pingDeadline) return false;
      setTimeout(() => this._onClose("ping timeout"));
      return true;
    }
    // polling -> WebSocket: "2probe" / "3probe" on the new WebSocket, pause polling, then "5".
    _probe() {
      const ws = new WS(this);
      let done = false;
      const fail = () => {
        if (done) return;
        done = true;
        this.off("close", fail);
        ws.off();
        ws.close();
        if (!this.upgrading) return;
        this.upgrading = false;
        if (this.readyState !== "closed") this.transport.resume(), this.flush();
      };
      ws.on("open", () => ws.send([{ type: "ping", data: "probe" }]));
      ws.on("packet", (p) => {
        if (done || this.upgrading) return;
        if (p.type !== "pong" || p.data !== "probe") return fail();
        this.upgrading = true;
        this.transport.pause(() => {
          if (done || this.readyState === "closed") return;
          done = true;
          this.off("close", fail);
          ws.off();
          this._setTransport(ws);
          ws.send([{ type: "upgrade" }]);
          this.upgrading = false;
          this._emit("upgrade", ws);
          this.flush();
        });
      });
      ws.on("error", fail).on("close", fail);
      this.once("close", fail);
      ws.open();
    }
    _send(type, data) {
      if (this.readyState === "closing" || this.readyState === "closed") return;
      this.writeBuffer.push({ type, data });
      this.flush();
    }
    write(data) { this._send("message", data); }
    flush() {
      const t = this.transport;
      if (this.readyState === "closed" || !t.writable || this.upgrading || !this.writeBuffer.length) return;
      t.send(this.writeBuffer.splice(0, this._batchLength()));
    }
    // A polling POST above the server's maxPayload would get a 413: the batch is split.
    _batchLength() {
      const buf = this.writeBuffer;
      if (this.transport.name !== "polling" || !this.maxPayload) return buf.length;
      let size = 0;
      for (let i = 0; i < buf.length; i++) {
        const enc = encodePacket(buf[i], false);
        size += (i ? 1 : 0) + (/^[\x00-\x7f]*$/.test(enc) ? enc.length : utf8.encode(enc).length);
        if (i > 0 && size > this.maxPayload) return i;
      }
      return buf.length;
    }
    // Waits for what is being written (a DISCONNECT, say) so that it reaches the server first.
    close() {
      if (this.readyState !== "opening" && this.readyState !== "open") return this;
      const busy = this.readyState === "open" && !this.upgrading && (this.writeBuffer.length || !this.transport.writable);
      this.readyState = "closing";
      if (busy) this.once("drain", () => this._onClose("forced close"));
      else this._onClose("forced close");
      return this;
    }
    _onError(err) {
      if (this._fallBack()) return;
      this._emit("error", err);
      this._onClose("transport error", err);
    }
    _onClose(reason, description) {
      if (this.readyState === "closed") return;
      if (reason === "transport close" && this._fallBack()) return;
      clearTimeout(this._pingTimer);
      clearTimeout(this._fallBackTimer);
      if (this.transport) this.transport.off(), this.transport.close();
      Object.assign(this, { readyState: "closed", id: null, writeBuffer: [] });
      this._emit("close", reason, description);
    }
  }

  // ------------------------------------------------------------------ Socket.IO packets

  const [CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK] = [0, 1, 2, 3, 4, 5, 6];
  const RESERVED = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];
  const isObject = (x) => Object.prototype.toString.call(x) === "[object Object]";
  const plain = (x) => x && typeof x === "object" && typeof x.toJSON !== "function";

  function hasBin(x) {
    if (isBin(x)) return true;
    if (Array.isArray(x)) return x.some(hasBin);
    return !!plain(x) && Object.keys(x).some((k) => hasBin(x[k]));
  }

  // binaries -> {_placeholder: true, num}, collected in `bufs`
  function deconstruct(x, bufs) {
    if (isBin(x)) return { _placeholder: true, num: bufs.push(x) - 1 };
    if (Array.isArray(x)) return x.map((v) => deconstruct(v, bufs));
    if (!plain(x)) return x;
    const o = {};
    for (const k of Object.keys(x)) o[k] = deconstruct(x[k], bufs);
    return o;
  }

  function reconstruct(x, bufs) {
    if (!x || typeof x !== "object") return x;
    if (x._placeholder === true) {
      if (Number.isInteger(x.num) && x.num >= 0 && x.num < bufs.length) return bufs[x.num];
      throw new Error("illegal attachments");
    }
    if (Array.isArray(x)) return x.map((v) => reconstruct(v, bufs));
    for (const k of Object.keys(x)) x[k] = reconstruct(x[k], bufs);
    return x;
  }

  // One string, then the binary attachments as Engine.IO messages of their own.
  function encode(p) {
    let bufs = [];
    let { type, data } = p;
    if ((type === EVENT || type === ACK) && hasBin(data)) {
      data = deconstruct(data, bufs);
      type += 3;
    }
    let s = "" + type;
    if (type === BINARY_EVENT || type === BINARY_ACK) s += bufs.length + "-";
    if (p.nsp && p.nsp !== "/") s += p.nsp + ",";
    if (p.id != null) s += p.id;
    if (data != null) s += JSON.stringify(data);
    return [s, ...bufs];
  }

  function decodeString(str) {
    const m = /^([0-6])(?:(\d+)-)?(\/[^,]*(?:,|$))?(\d+)?([^]*)$/.exec(str);
    if (!m) throw new Error("unknown packet type");
    const p = { type: Number(m[1]), nsp: m[3] ? m[3].replace(/,$/, "") : "/" };
    const binary = p.type === BINARY_EVENT || p.type === BINARY_ACK;
    if (binary !== (m[2] !== undefined)) throw new Error("illegal attachments");
    if (binary) {
      p.attachments = Number(m[2]);
      if (p.attachments < 1 || p.attachments > 10) throw new Error("illegal attachments");
    }
    if (m[4] !== undefined) p.id = Number(m[4]);
    if (m[5]) {
      try { p.data = JSON.parse(m[5]); } catch { throw new Error("invalid payload"); }
      if (!payloadValid(p.type, p.data)) throw new Error("invalid payload");
    }
    return p;
  }

  function payloadValid(type, d) {
    if (type === CONNECT) return isObject(d);
    if (type === CONNECT_ERROR) return typeof d === "string" || isObject(d);
    if (type === ACK || type === BINARY_ACK) return Array.isArray(d);
    if (type === EVENT || type === BINARY_EVENT) {
      return Array.isArray(d) && (typeof d[0] === "number" || (typeof d[0] === "string" && !RESERVED.includes(d[0])));
    }
    return false;
  }

  // ------------------------------------------------------------------ reconnection backoff

  // socket.io-client's: min * 2^attempt, minus or plus a random part of it (jitter), at most max.
  class Backoff {
    constructor(opts = {}) {
      this.ms = opts.min || 100;
      this.max = opts.max || 10000;
      this.factor = opts.factor || 2;
      this.jitter = opts.jitter > 0 && opts.jitter <= 1 ? opts.jitter : 0;
      this.attempts = 0;
    }
    duration() {
      let ms = this.ms * Math.pow(this.factor, this.attempts++);
      if (this.jitter) {
        const rand = Math.random();
        const deviation = Math.floor(rand * this.jitter * ms);
        ms = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation;
      }
      return Math.min(ms, this.max) | 0;
    }
    reset() { this.attempts = 0; }
  }

  // ------------------------------------------------------------------ Manager

  class Manager extends Emitter {
    constructor(uri, opts = {}) {
      super();
      Object.assign(this, { uri, opts, nsps: {}, subs: [], _readyState: "closed", _reconnecting: false });
      this.reconnection(opts.reconnection !== false);
      this._attempts = opts.reconnectionAttempts || Infinity;
      this.backoff = new Backoff({
        min: opts.reconnectionDelay || 1000,
        max: opts.reconnectionDelayMax || 5000,
        jitter: opts.randomizationFactor == null ? 0.5 : opts.randomizationFactor,
      });
      this._timeout = opts.timeout == null ? 20000 : opts.timeout;
      this._autoConnect = opts.autoConnect !== false;
      if (this._autoConnect) this.open();
    }
    reconnection(v) {
      if (v === undefined) return this._reconnection;
      this._reconnection = !!v;
      if (!v) this.skipReconnect = true;
      return this;
    }
    open(fn) {
      if (this._readyState === "open" || this._readyState === "opening") return this;
      const o = this.opts;
      const engine = (this.engine = new Engine({
        secure: this.uri.secure,
        host: this.uri.host,
        path: (o.path || "/socket.io").replace(/\/$/, "") + "/",
        query: o.query || {},
        transports: o.transports || ["websocket", "polling"],
        upgrade: o.upgrade !== false,
        withCredentials: !!o.withCredentials,
        fallBackDelay: this._timeout === false ? 5000 : this._timeout / 4,
      }));
      this._readyState = "opening";
      this.skipReconnect = false;
      const onError = (err) => {
        this._cleanup();
        this._readyState = "closed";
        this._emit("error", err);
        if (fn) fn(err);
        else this._maybeReconnectOnOpen();
      };
      const offOpen = on(engine, "open", () => {
        this._onopen();
        if (fn) fn();
      });
      this.subs.push(offOpen, on(engine, "error", onError));
      // a transport closed before the handshake without an error is a failed attempt too
      this.subs.push(on(engine, "close", (reason) => onError(transportError(reason))));
      if (this._timeout !== false) {
        const timer = setTimeout(() => {
          offOpen();
          onError(new Error("timeout"));
          engine.close();
        }, this._timeout);
        this.subs.push(() => clearTimeout(timer));
      }
      return this;
    }
    connect(fn) { return this.open(fn); }
    _onopen() {
      this._cleanup();
      this._readyState = "open";
      this._emit("open");
      const e = this.engine;
      this.subs.push(
        on(e, "ping", () => this._emit("ping")),
        on(e, "data", (d) => this._ondata(d)),
        on(e, "error", (err) => this._emit("error", err)),
        on(e, "close", (reason, desc) => this._onclose(reason, desc))
      );
    }
    _ondata(data) {
      try {
        if (typeof data === "string") {
          if (this._recon) throw new Error("got plaintext data when reconstructing a packet");
          const p = decodeString(data);
          if (!p.attachments) return this._emit("packet", p);
          p.type -= 3; // BINARY_EVENT -> EVENT, BINARY_ACK -> ACK, once the attachments are in
          this._recon = { packet: p, bufs: [] };
        } else {
          const r = this._recon;
          if (!r) throw new Error("got binary data when not reconstructing a packet");
          if (r.bufs.push(data) < r.packet.attachments) return;
          this._recon = null;
          r.packet.data = reconstruct(r.packet.data, r.bufs);
          this._emit("packet", r.packet);
        }
      } catch (e) {
        this._onclose("parse error", e);
      }
    }
    socket(nsp, opts) {
      let s = this.nsps[nsp];
      if (!s) s = this.nsps[nsp] = new Socket(this, nsp, opts);
      else if (this._autoConnect && !s.active) s.connect();
      return s;
    }
    _destroy() { if (!Object.values(this.nsps).some((s) => s.active)) this._close(); }
    _packet(packet) { for (const part of encode(packet)) this.engine.write(part); }
    _cleanup() {
      for (const off of this.subs) off();
      this.subs = [];
      this._recon = null;
    }
    _close() {
      this.skipReconnect = true;
      this._reconnecting = false;
      this._onclose("forced close");
    }
    disconnect() { this._close(); }
    close() { this._close(); }
    _onclose(reason, description) {
      this._cleanup();
      if (this.engine) this.engine.close();
      this.backoff.reset();
      this._readyState = "closed";
      this._emit("close", reason, description);
      if (this._reconnection && !this.skipReconnect) this._reconnect();
    }
    _maybeReconnectOnOpen() {
      if (!this._reconnecting && this._reconnection && this.backoff.attempts === 0) this._reconnect();
    }
    _reconnect() {
      if (this._reconnecting || this.skipReconnect) return;
      if (this.backoff.attempts >= this._attempts) {
        this.backoff.reset();
        this._reconnecting = false;
        return this._emit("reconnect_failed");
      }
      this._reconnecting = true;
      const timer = setTimeout(() => {
        if (this.skipReconnect) return;
        this._emit("reconnect_attempt", this.backoff.attempts);
        if (this.skipReconnect) return; // a listener gave up
        this.open((err) => {
          if (err) {
            this._reconnecting = false;
            this._reconnect();
            return this._emit("reconnect_error", err);
          }
          const attempts = this.backoff.attempts;
          this._reconnecting = false;
          this.backoff.reset();
          this._emit("reconnect", attempts);
        });
      }, this.backoff.duration());
      this.subs.push(() => clearTimeout(timer));
    }
  }

  // ------------------------------------------------------------------ Socket

  class Socket extends Emitter {
    constructor(io, nsp, opts = {}) {
      super();
      Object.assign(this, { io, nsp, connected: false, recovered: false, receiveBuffer: [], sendBuffer: [] });
      Object.assign(this, { ids: 0, acks: {}, flags: {}, auth: opts.auth, _opts: Object.assign({}, opts) });
      if (io._autoConnect) this.open();
    }
    get disconnected() { return !this.connected; }
    get active() { return !!this.subs; }
    get volatile() {
      this.flags.volatile = true;
      return this;
    }
    timeout(ms) {
      this.flags.timeout = ms;
      return this;
    }
    connect() {
      if (this.connected) return this;
      const io = this.io;
      this.subs = this.subs || [
        on(io, "open", () => this._onopen()),
        on(io, "packet", (p) => this._onpacket(p)),
        on(io, "error", (err) => this.connected || this._emit("connect_error", err)),
        on(io, "close", (reason, desc) => this._onclose(reason, desc)),
      ];
      if (!io._reconnecting) io.open();
      if (io._readyState === "open") this._onopen();
      return this;
    }
    open() { return this.connect(); }
    send(...args) { return this.emit("message", ...args); }
    emit(ev, ...args) {
      if (RESERVED.includes(ev)) throw new Error('"' + String(ev) + '" is a reserved event name');
      const packet = { type: EVENT, data: [ev, ...args] };
      if (typeof args[args.length - 1] === "function") {
        packet.id = this.ids++;
        this._registerAck(packet.id, packet.data.pop());
      }
      const engine = this.io.engine;
      const writable = !!(engine && engine.transport && engine.transport.writable);
      const isConnected = this.connected && !(engine && engine.pingExpired());
      if (this.flags.volatile && !(writable && isConnected)) {
        // dropped: a volatile emit is never buffered
      } else if (isConnected) this._packet(packet);
      else this.sendBuffer.push(packet);
      this.flags = {};
      return this;
    }
    _registerAck(id, ack) {
      const timeout = this.flags.timeout != null ? this.flags.timeout : this._opts.ackTimeout;
      if (timeout == null) return (this.acks[id] = ack);
      const timer = setTimeout(() => {
        delete this.acks[id];
        this.sendBuffer = this.sendBuffer.filter((p) => p.id !== id);
        ack.call(this, new Error("operation has timed out"));
      }, timeout);
      const fn = (...args) => {
        clearTimeout(timer);
        ack.apply(this, args);
      };
      fn.withError = true;
      this.acks[id] = fn;
    }
    emitWithAck(ev, ...args) {
      return new Promise((resolve, reject) => {
        const fn = (err, res) => (err ? reject(err) : resolve(res));
        fn.withError = true;
        this.emit(ev, ...args, fn);
      });
    }
    _packet(packet) {
      packet.nsp = this.nsp;
      this.io._packet(packet);
    }
    _onopen() {
      if (typeof this.auth === "function") this.auth((data) => this._sendConnect(data));
      else this._sendConnect(this.auth);
    }
    // With recovery on, the session id and the last offset ride along with the auth payload.
    _sendConnect(data) {
      if (this._pid) data = Object.assign({ pid: this._pid, offset: this._lastOffset }, data);
      this._packet({ type: CONNECT, data });
    }
    _onclose(reason, description) {
      this.connected = false;
      delete this.id;
      this._emit("disconnect", reason, description);
      // an ack whose packet is still buffered may yet be answered after the reconnection
      for (const id of Object.keys(this.acks)) {
        if (this.sendBuffer.some((p) => String(p.id) === id)) continue;
        const ack = this.acks[id];
        delete this.acks[id];
        if (ack.withError) call(ack, this, [new Error("socket has been disconnected")]);
      }
    }
    _onpacket(p) {
      if (p.nsp !== this.nsp) return;
      if (p.type === CONNECT) {
        if (p.data && typeof p.data.sid === "string") this._onconnect(p.data.sid, p.data.pid);
        else this._emit("connect_error", new Error("invalid CONNECT packet (a Socket.IO v2 server?)"));
      } else if (p.type === EVENT) {
        const args = p.data || [];
        if (p.id != null) args.push(this._ackFn(p.id));
        if (this.connected) this._emitEvent(args);
        else this.receiveBuffer.push(args);
      } else if (p.type === ACK) {
        const ack = this.acks[p.id];
        if (typeof ack !== "function") return;
        delete this.acks[p.id];
        call(ack, this, ack.withError ? [null, ...(p.data || [])] : p.data || []);
      } else if (p.type === DISCONNECT) {
        this._destroy();
        this._onclose("io server disconnect");
      } else if (p.type === CONNECT_ERROR) {
        this._destroy();
        const d = p.data;
        const err = new Error(typeof d === "string" ? d : d.message);
        if (isObject(d)) err.data = d.data;
        this._emit("connect_error", err);
      }
    }
    _emitEvent(args) {
      for (const fn of this.listenersAny()) call(fn, this, args);
      this._emit(...args);
      if (this._pid && typeof args[args.length - 1] === "string") this._lastOffset = args[args.length - 1];
    }
    _ackFn(id) {
      let sent = false;
      return (...args) => {
        if (sent) return;
        sent = true;
        this._packet({ type: ACK, id, data: args });
      };
    }
    _onconnect(id, pid) {
      this.id = id;
      this.recovered = !!pid && this._pid === pid;
      this._pid = pid;
      this.connected = true;
      for (const args of this.receiveBuffer) this._emitEvent(args);
      for (const packet of this.sendBuffer) this._packet(packet);
      this.receiveBuffer = [];
      this.sendBuffer = [];
      this._emit("connect");
    }
    _destroy() {
      if (this.subs) this.subs.forEach((off) => off());
      this.subs = undefined;
      this.io._destroy(this);
    }
    disconnect() {
      if (this.connected) this._packet({ type: DISCONNECT });
      this._destroy();
      if (this.connected) this._onclose("io client disconnect");
      return this;
    }
    close() { return this.disconnect(); }
    onAny(fn) {
      (this._any = this._any || []).push(fn);
      return this;
    }
    prependAny(fn) {
      (this._any = this._any || []).unshift(fn);
      return this;
    }
    offAny(fn) {
      const i = fn ? (this._any || []).indexOf(fn) : -1;
      if (!fn) this._any = [];
      else if (i >= 0) this._any.splice(i, 1);
      return this;
    }
    listenersAny() { return (this._any || []).slice(); }
  }

  // ------------------------------------------------------------------ io()

  const managers = {};

  function io(uri, opts) {
    if (uri && typeof uri === "object") [opts, uri] = [uri, undefined];
    opts = Object.assign({}, opts);
    const u = new URL(uri == null ? "/" : uri, typeof location !== "undefined" ? location.href : undefined);
    const target = { secure: u.protocol === "https:" || u.protocol === "wss:", host: u.host };
    const nsp = u.pathname || "/";
    if (u.search && !opts.query) opts.query = u.search.slice(1);
    const key = u.protocol.replace(/^ws/, "http") + "//" + u.host + "|" + (opts.path || "/socket.io");
    const cached = managers[key];
    const fresh = opts.forceNew || opts.multiplex === false || (cached && cached.nsps[nsp]);
    const manager = fresh ? new Manager(target, opts) : (managers[key] = cached || new Manager(target, opts));
    return manager.socket(nsp, opts);
  }
  io.connect = io;

  global.iolite = { io, connect: io, Manager, Socket, Backoff, protocol: 5 };
})(typeof globalThis !== "undefined" ? globalThis : window);
