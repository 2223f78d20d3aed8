// Helpers for the browser suites, loaded by the test page after iolite.js: window.h.
// Tests run their scenario in the page with page.evaluate and use these to wait for events.
(function () {
  "use strict";
  const opened = [];

  function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out waiting for " + what)), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  window.h = {
    /** `promise`, or a rejection after `ms`. */
    within: (promise, ms = 5000, what = "a promise") => withTimeout(promise, ms, what),
    /** A socket on its own connection (forceNew), reconnection off unless asked for. */
    io(url, opts) {
      const s = iolite.io(url, Object.assign({ forceNew: true, reconnection: false }, opts));
      opened.push(s);
      return s;
    },
    closeAll() {
      for (const s of opened) {
        s.io.reconnection(false);
        s.disconnect();
        if (s.io.engine) s.io.engine.close();
      }
      opened.length = 0;
    },
    /** The args of the next `ev` on `emitter`. */
    once(emitter, ev, ms = 5000) {
      let fn;
      return withTimeout(
        new Promise((resolve) => {
          fn = (...args) => resolve(args);
          emitter.once(ev, fn);
        }),
        ms,
        '"' + ev + '"'
      ).catch((e) => {
        emitter.off(ev, fn);
        throw e;
      });
    },
    /** Resolves on "connect", rejects with the connect_error's message. */
    connected(s, ms = 5000) {
      if (s.connected) return Promise.resolve(s);
      return withTimeout(
        new Promise((resolve, reject) => {
          s.once("connect", () => resolve(s));
          s.once("connect_error", (e) => reject(new Error("connect_error: " + e.message)));
        }),
        ms,
        "connect"
      );
    },
    /** emitWithAck with a deadline, so a missing ack fails instead of hanging. */
    ask(s, ev, ...args) {
      return s.timeout(5000).emitWithAck(ev, ...args);
    },
    /** All the arguments of the ack of `ev`, with a deadline. */
    acked(s, ev, ...args) {
      return withTimeout(new Promise((resolve) => s.emit(ev, ...args, (...res) => resolve(res))), 5000, "ack of " + ev);
    },
    /** Every payload of `ev`, as arrays of arguments. */
    collect(s, ev) {
      const got = [];
      s.on(ev, (...args) => got.push(args));
      return got;
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    async until(fn, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!fn()) {
        if (Date.now() > deadline) throw new Error("until: timed out on " + fn);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    /** JSON-comparable form: binaries become {ArrayBuffer: hex} / {Uint8Array: hex} ... */
    norm(x) {
      const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join("");
      if (x instanceof ArrayBuffer) return { ArrayBuffer: hex(new Uint8Array(x)) };
      if (ArrayBuffer.isView(x)) return { [x.constructor.name]: hex(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)) };
      if (Array.isArray(x)) return x.map((v) => h.norm(v));
      if (x && typeof x === "object") {
        const o = {};
        for (const k of Object.keys(x)) o[k] = h.norm(x[k]);
        return o;
      }
      if (typeof x === "function") return "<function>";
      return x;
    },
    /** Drops the recovery offset that the server appends to stored events (checks it is one). */
    stripOffset(args) {
      const last = args[args.length - 1];
      if (typeof last !== "string" || !/^[\w.-]+$/.test(last)) throw new Error("no offset in " + JSON.stringify(args));
      return args.slice(0, -1);
    },
  };
  const h = window.h;
})();
