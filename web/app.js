// The iolite chat page (protocol: docs/chat-protocol.md). No framework and no build step.
// Every piece of user-provided text reaches the DOM through textContent or text nodes.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const KEYS = { nick: 'iolite.nick', rooms: 'iolite.rooms', current: 'iolite.current', outbox: 'iolite.outbox', token: 'iolite.token' };
  const ROOM_NAME = /^[A-Za-z0-9._-]{1,64}$/;
  const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
  const REQUEST_TIMEOUT_MS = 10000;
  const TYPING_REPEAT_MS = 2500; // typing:true is repeated this often while keys keep coming
  const TYPING_IDLE_MS = 3000; // this long without a key and the page says typing:false
  const TYPING_EXPIRE_MS = 6000; // someone else's indicator goes away if no update arrives
  const GROUP_WINDOW_MS = 5 * 60 * 1000;
  const NEAR_EDGE_PX = 120;
  const FINAL_JOIN_ERRORS = ['forbidden', 'not_found', 'bad_request', 'too_many_rooms'];

  const state = {
    socket: null, user: null,
    limits: { messageLength: 2000, roomsPerSocket: 50, historyPage: 50, eventsPerSecond: 20 },
    rooms: new Map(), // the rooms the user is in (remembered across reloads), name -> room
    directory: new Map(), // every room the server told about, name -> {members}
    current: null,
    connSeq: 0, helloSeq: -1, // connSeq grows at each connect and disconnect: work begun before stops
    typing: { room: null, sentAt: 0, idleTimer: 0 },
    bucket: { tokens: 10, at: Date.now() },
  };

  const chatError = (code, message) => Object.assign(new Error(message), { code });

  // ---------- storage ----------

  function load(store, key, fallback) {
    try {
      return JSON.parse(store.getItem(key)) ?? fallback;
    } catch {
      return fallback;
    }
  }

  // Private mode or a full quota throw: the page keeps working, it only forgets on reload.
  function save(store, key, value) {
    try {
      if (value === null || value === undefined) store.removeItem(key);
      else store.setItem(key, JSON.stringify(value));
    } catch { /* see above */ }
  }

  function saveRooms() {
    save(localStorage, KEYS.rooms, [...state.rooms.keys()]);
    save(localStorage, KEYS.current, state.current);
  }

  // Unsent messages survive a reload too, and keep their clientId so a resend stays idempotent.
  function saveOutbox() {
    const all = [...state.rooms.values()].flatMap((r) => r.pending.map(({ clientId, room, text, ts }) => ({ clientId, room, text, ts })));
    save(localStorage, KEYS.outbox, all);
  }

  // ---------- small helpers ----------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(className, text, onClick, label) {
    const b = el('button', className, text);
    b.type = 'button';
    if (label) b.setAttribute('aria-label', label);
    b.addEventListener('click', onClick);
    return b;
  }

  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const newClientId = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  const charCount = (text) => [...text].length; // the server counts Unicode scalar values, not UTF-16 units

  function avatar(user, className = 'avatar') {
    const node = el('span', className, ([...(user.name || '?').trim()][0] || '?').toUpperCase());
    let hue = 0;
    for (const ch of String(user.id || user.name)) hue = (hue * 31 + ch.codePointAt(0)) % 360;
    node.style.setProperty('--hue', String(hue));
    node.setAttribute('aria-hidden', 'true');
    return node;
  }

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

  function timeEl(ts) {
    const date = new Date(ts);
    const node = el('time', 'time');
    if (Number.isNaN(date.getTime())) return node;
    node.dateTime = date.toISOString();
    node.title = fullFmt.format(date);
    const today = new Date().toDateString() === date.toDateString();
    node.textContent = today ? timeFmt.format(date) : `${dayFmt.format(date)}, ${timeFmt.format(date)}`;
    return node;
  }

  function isMessage(m) {
    return !!m && typeof m === 'object' && Number.isSafeInteger(m.id) && typeof m.room === 'string' &&
      typeof m.text === 'string' && !!m.user && typeof m.user === 'object' && typeof m.user.name === 'string';
  }

  const isMembers = (list) => Array.isArray(list) && list.every((u) => u && typeof u.name === 'string');
  const isMine = (user) => !!state.user && user.id === state.user.id;
  const connected = () => !!state.socket && state.socket.connected;

  // ---------- notices and connection state ----------

  let noticeTimer = 0;
  function notify(text, sticky = false) {
    $('notice-text').textContent = text;
    $('notice').hidden = false;
    clearTimeout(noticeTimer);
    if (!sticky) noticeTimer = setTimeout(() => { $('notice').hidden = true; }, 6000);
  }

  const CONN_TEXT = { idle: 'Not connected', connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Offline' };

  function setConn(kind, detail = '') {
    $('conn').dataset.state = kind;
    $('conn').title = detail;
    $('conn-text').textContent = detail ? `${CONN_TEXT[kind]} · ${detail}` : CONN_TEXT[kind];
    $('reconnect').hidden = kind !== 'offline' || !state.socket || navigator.onLine === false;
    document.body.dataset.conn = kind;
  }

  // Not connected, and the client retries: "offline" while the browser has no network at all.
  const setRetrying = (detail = '') => (navigator.onLine === false ? setConn('offline', 'no network') : setConn('reconnecting', detail));

  // ---------- rooms and messages ----------

  function newRoom(name) {
    return {
      name,
      joined: false, wasJoined: false, // the server has us in the room on this (the last) connection
      caughtUp: false, // nothing is missing up to syncedUpTo, and live messages follow on
      syncedUpTo: null, // the room:sync cursor: no gap below it
      ids: [], byId: new Map(), // confirmed messages; ids ascending
      pending: [], flushing: false, // ours, not acknowledged yet: {clientId, room, text, ts, status: queued|sending, attempt}
      hasMore: false, loadingOlder: false, // older history exists on the server
      members: [], unread: 0,
      typing: new Map(), // user id -> {name, timer}
      quiet: false, // joined automatically: a refusal is not worth a notice
    };
  }

  const lastId = (room) => (room.ids.length ? room.ids[room.ids.length - 1] : 0);
  const currentRoom = () => (state.current ? state.rooms.get(state.current) || null : null);

  function ensureRoom(name) {
    if (!state.rooms.has(name)) state.rooms.set(name, newRoom(name));
    saveRooms();
    return state.rooms.get(name);
  }

  // Adds messages by id (a known id is skipped) and settles our pending ones by clientId.
  // `live` messages are new to the reader and count as unread when the room is not on screen.
  function addMessages(room, messages, live) {
    let added = 0;
    let fromOthers = 0;
    for (const m of messages) {
      if (!isMessage(m) || m.room !== room.name) continue;
      if (m.clientId && isMine(m.user) && room.pending.some((p) => p.clientId === m.clientId)) {
        room.pending = room.pending.filter((p) => p.clientId !== m.clientId);
        saveOutbox();
      }
      if (room.byId.has(m.id)) continue;
      room.byId.set(m.id, m);
      let at = room.ids.length;
      while (at > 0 && room.ids[at - 1] > m.id) at -= 1; // usually 0 steps: ids mostly come in order
      room.ids.splice(at, 0, m.id);
      added += 1;
      if (!isMine(m.user)) fromOthers += 1;
    }
    if (live && fromOthers && (room !== currentRoom() || document.hidden)) {
      room.unread += fromOthers;
      renderRoomLists();
    }
    return added;
  }

  // ---------- requests ----------

  // A token bucket a little under the server's, so a burst of catch-up requests waits
  // instead of being refused (five refusals in 10 s would get the connection closed).
  // Takes a token and returns 0, or returns how many ms until one (plus `reserve`) is there.
  function takeToken(reserve = 0) {
    const b = state.bucket;
    const rate = Math.max(1, Number(state.limits.eventsPerSecond) || 1);
    b.tokens = Math.min(rate, b.tokens + ((Date.now() - b.at) / 1000) * rate);
    b.at = Date.now();
    if (b.tokens < 1 + reserve) return Math.ceil(((1 + reserve - b.tokens) / rate) * 1000);
    b.tokens -= 1;
    return 0;
  }

  async function pace() {
    for (let wait = takeToken(); wait > 0; wait = takeToken()) await new Promise((r) => setTimeout(r, wait));
  }

  // An acknowledged request: resolves with the `{ok: true, ...}` answer, rejects with an Error that has a `code`.
  async function request(event, payload) {
    await pace();
    const socket = state.socket;
    if (!socket || !socket.connected) throw chatError('offline', 'Not connected');
    return new Promise((resolve, reject) => {
      socket.timeout(REQUEST_TIMEOUT_MS).emit(event, payload, (err, res) => {
        if (err) return reject(chatError('timeout', 'The server did not answer in time'));
        if (!res || typeof res !== 'object') return reject(chatError('internal', 'Unexpected answer from the server'));
        if (res.ok === true) return resolve(res);
        const e = res.error && typeof res.error === 'object' ? res.error : {};
        return reject(chatError(String(e.code || 'internal'), String(e.message || e.code || 'Refused by the server')));
      });
    });
  }

  // ---------- connection ----------

  function authPayload() {
    const name = load(localStorage, KEYS.nick, '');
    const token = load(sessionStorage, KEYS.token, '');
    return { ...(name ? { name } : {}), ...(token ? { token } : {}) };
  }

  function connect() {
    if (!window.iolite || typeof window.iolite.io !== 'function') {
      notify('The chat client (/iolite.js) did not load. Check the connection and reload the page.', true);
      setConn('offline');
      return;
    }
    $('login').hidden = true;
    $('app').hidden = false;
    setConn('connecting');
    if (state.socket) {
      state.socket.auth = authPayload();
      state.socket.connect();
      return;
    }
    const socket = window.iolite.io(location.origin, {
      auth: authPayload(),
      forceNew: true, // after a sign-out, a shared connection would still carry the old listeners
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    state.socket = socket;
    const handlers = {
      connect: onConnect, disconnect: onDisconnect, connect_error: onConnectError, hello: onHello, message: onMessage,
      presence: onPresence, typing: onTyping, 'room:new': onRoomNew,
      'chat:error': (e) => notify(`The server refused an action: ${(e && (e.message || e.code)) || 'no reason given'}`),
    };
    for (const [event, handler] of Object.entries(handlers)) socket.on(event, handler);
    socket.io.on('reconnect_attempt', (n) => setRetrying(`attempt ${n}`));
  }

  function onConnect() {
    state.connSeq += 1;
    setConn('connected');
    $('notice').hidden = true;
    const recovered = state.socket.recovered === true;
    for (const room of state.rooms.values()) {
      // A recovered session keeps its rooms, and the server replays what it missed.
      room.joined = room.caughtUp = recovered && room.wasJoined;
    }
    if (recovered) resume();
  }

  function onDisconnect(reason) {
    state.connSeq += 1;
    for (const room of state.rooms.values()) {
      Object.assign(room, { wasJoined: room.joined, joined: false, caughtUp: false });
      for (const p of room.pending) if (p.status === 'sending') p.status = 'queued';
      for (const t of room.typing.values()) clearTimeout(t.timer);
      room.typing.clear();
    }
    stopTyping(false);
    renderAll();
    if (reason === 'io client disconnect') setConn('idle');
    else if (reason === 'io server disconnect') setConn('offline', 'disconnected by the server'); // no automatic retry then
    else setRetrying();
  }

  function onConnectError(err) {
    const code = err && err.data && typeof err.data === 'object' ? err.data.code : undefined;
    const message = (err && err.message) || 'connection refused';
    if (code === 'auth_required' || code === 'invalid_token') {
      if (code === 'invalid_token') save(sessionStorage, KEYS.token, null);
      setConn('offline', 'sign-in needed');
      showLogin(code === 'auth_required' ? 'This server needs an access token to sign in.' : `The token was refused: ${message}`, true);
    } else if (code === 'invalid_name') {
      setConn('offline', 'name refused');
      showLogin(`That nickname is not accepted: ${message}`);
    } else if (code) {
      setConn('offline', message);
      notify(`Could not connect: ${message}`, true);
    } else {
      // A transport error: the client tries again with backoff by itself.
      setRetrying(message);
    }
  }

  function onHello(hello) {
    if (!hello || typeof hello !== 'object' || !hello.user) return;
    state.user = { id: String(hello.user.id), name: String(hello.user.name) };
    if (hello.limits && typeof hello.limits === 'object') Object.assign(state.limits, hello.limits);
    $('input').maxLength = state.limits.messageLength;
    if (Array.isArray(hello.rooms)) setDirectory(hello.rooms);
    $('me').hidden = false;
    $('me-name').textContent = state.user.name;
    $('me-avatar').replaceWith(Object.assign(avatar(state.user, 'avatar small'), { id: 'me-avatar' }));
    if (state.rooms.size === 0 && load(localStorage, KEYS.rooms, null) === null) {
      ensureRoom('general').quiet = true; // a first visit lands somewhere, not on an empty page
      selectRoom('general');
    }
    if (state.helloSeq !== state.connSeq) {
      state.helloSeq = state.connSeq;
      if (!state.socket.recovered) resume();
    }
    renderAll();
  }

  // Brings every room up to date on a new connection, then sends what waited in the outbox.
  async function resume() {
    const seq = state.connSeq;
    for (const room of [...state.rooms.values()]) {
      if (seq !== state.connSeq) return;
      if (!room.joined) await joinOnServer(room, seq);
      else if (!room.caughtUp) await catchUp(room, seq);
    }
    if (seq === state.connSeq) for (const room of state.rooms.values()) flushRoom(room);
  }

  async function joinOnServer(room, seq) {
    let res;
    try {
      res = await request('room:join', { room: room.name });
    } catch (e) {
      if (seq !== state.connSeq) return;
      const final = FINAL_JOIN_ERRORS.includes(e.code);
      if (!(final && room.quiet)) notify(`Could not join #${room.name}: ${e.message}`);
      if (final) dropRoom(room.name);
      return;
    }
    if (seq !== state.connSeq || state.rooms.get(room.name) !== room) return;
    room.joined = true;
    room.quiet = false;
    if (isMembers(res.members)) setMembers(room, res.members);
    if (room.ids.length === 0) {
      addMessages(room, Array.isArray(res.messages) ? res.messages : [], false);
      room.hasMore = res.hasMore === true;
      room.syncedUpTo = lastId(room);
      room.caughtUp = true;
      if (room === currentRoom()) renderMessages('bottom');
    } else {
      // Back after a connection that was not recovered: ask for exactly what came after.
      await catchUp(room, seq);
    }
    renderRoomLists();
  }

  // room:sync from the last id with no gap before it, page after page.
  async function catchUp(room, seq) {
    let after = room.syncedUpTo ?? lastId(room);
    try {
      for (;;) {
        const res = await request('room:sync', { room: room.name, after });
        if (seq !== state.connSeq) return;
        const messages = Array.isArray(res.messages) ? res.messages.filter(isMessage) : [];
        addMessages(room, messages, true);
        if (messages.length) after = Math.max(after, messages[messages.length - 1].id);
        room.syncedUpTo = after;
        if (room === currentRoom()) renderMessages();
        if (res.hasMore !== true || messages.length === 0) break;
      }
    } catch (e) {
      if (seq === state.connSeq) notify(`Could not catch up on #${room.name}: ${e.message}`);
      return;
    }
    // Live messages that came in meanwhile are above the last page, so there is no gap below.
    room.syncedUpTo = Math.max(after, lastId(room));
    room.caughtUp = true;
  }

  // ---------- server events ----------

  function onMessage(m) {
    if (!isMessage(m)) return;
    const room = state.rooms.get(m.room);
    if (!room) return;
    const isNewest = m.id > lastId(room);
    const added = addMessages(room, [m], true);
    if (room.caughtUp) room.syncedUpTo = Math.max(room.syncedUpTo ?? 0, lastId(room));
    clearTypist(room, m.user.id);
    if (room !== currentRoom()) return;
    if (added && isNewest) appendMessage(room, m);
    else renderMessages();
    renderTyping();
  }

  function onPresence(p) {
    if (!p || typeof p.room !== 'string' || !isMembers(p.members)) return;
    if (state.rooms.has(p.room)) setMembers(state.rooms.get(p.room), p.members);
    if (state.directory.has(p.room)) state.directory.get(p.room).members = p.members.length;
    renderRoomLists();
  }

  function setMembers(room, members) {
    room.members = members.map((u) => ({ id: String(u.id), name: String(u.name) }));
    if (room === currentRoom()) renderMembers();
  }

  function onTyping(t) {
    if (!t || typeof t.room !== 'string' || !t.user || typeof t.user.name !== 'string') return;
    const room = state.rooms.get(t.room);
    if (!room || isMine(t.user)) return;
    clearTypist(room, t.user.id);
    if (t.typing === true) {
      const timer = setTimeout(() => { clearTypist(room, t.user.id); renderTyping(); }, TYPING_EXPIRE_MS);
      room.typing.set(t.user.id, { name: t.user.name, timer });
    }
    if (room === currentRoom()) renderTyping();
  }

  function clearTypist(room, userId) {
    clearTimeout(room.typing.get(userId)?.timer);
    room.typing.delete(userId);
  }

  function onRoomNew(r) {
    if (r && typeof r.name === 'string' && !state.directory.has(r.name)) state.directory.set(r.name, { members: 0 });
    renderRoomLists();
  }

  function setDirectory(rooms) {
    state.directory.clear();
    for (const r of rooms) if (r && typeof r.name === 'string') state.directory.set(r.name, { members: Number(r.members) || 0 });
    renderRoomLists();
  }

  async function refreshDirectory() {
    try {
      const res = await request('rooms:list', {});
      if (Array.isArray(res.rooms)) setDirectory(res.rooms);
    } catch (e) {
      notify(`Could not load the room list: ${e.message}`);
    }
  }

  // ---------- user actions ----------

  function joinRoom(name) {
    const known = state.rooms.has(name);
    const refusal = !ROOM_NAME.test(name) ? 'Room names are 1 to 64 letters, digits, “-”, “_” or “.”.'
      : !known && state.rooms.size >= state.limits.roomsPerSocket ? `You can be in at most ${state.limits.roomsPerSocket} rooms.` : '';
    if (refusal) {
      notify(refusal);
      return false;
    }
    const room = ensureRoom(name);
    selectRoom(name);
    // Offline, resume() joins it when the connection is back.
    if (!known && connected() && state.helloSeq === state.connSeq) {
      joinOnServer(room, state.connSeq).then(() => flushRoom(room));
    }
    return true;
  }

  function leaveRoom(name) {
    const room = state.rooms.get(name);
    if (!room) return;
    if (room.pending.length && !confirm(`Leave #${name}? ${room.pending.length} unsent message(s) will be discarded.`)) return;
    if (room.joined) request('room:leave', { room: name }).catch((e) => notify(`Could not leave #${name}: ${e.message}`));
    dropRoom(name);
  }

  function dropRoom(name) {
    const room = state.rooms.get(name);
    if (!room) return;
    for (const t of room.typing.values()) clearTimeout(t.timer);
    state.rooms.delete(name);
    if (state.current === name) state.current = state.rooms.keys().next().value ?? null;
    saveRooms();
    saveOutbox();
    renderAll();
  }

  function selectRoom(name) {
    if (!state.rooms.has(name)) return;
    if (state.typing.room && state.typing.room !== name) stopTyping(true);
    state.current = name;
    state.rooms.get(name).unread = 0;
    saveRooms();
    closeDrawers();
    renderAll();
    $('input').focus({ preventScroll: true });
  }

  function sendFromComposer() {
    const room = currentRoom();
    const text = $('input').value.trim();
    if (!room || !text) return;
    if (charCount(text) > state.limits.messageLength) {
      notify(`Messages are limited to ${state.limits.messageLength} characters (this one has ${charCount(text)}).`);
      return;
    }
    room.pending.push({ clientId: newClientId(), room: room.name, text, ts: Date.now(), status: 'queued', attempt: 0 });
    saveOutbox();
    $('input').value = '';
    autoGrow();
    stopTyping(true);
    renderMessages('bottom');
    flushRoom(room);
  }

  // Sends a room's queued messages one at a time, so they keep the order they were typed in.
  async function flushRoom(room) {
    if (room.flushing) return;
    room.flushing = true;
    try {
      for (;;) {
        if (!connected() || !room.joined || !room.caughtUp || state.rooms.get(room.name) !== room) return;
        const p = room.pending.find((q) => q.status === 'queued');
        if (!p) return;
        const retryIn = await sendPending(room, p);
        if (retryIn) {
          setTimeout(() => flushRoom(room), retryIn);
          return;
        }
      }
    } finally {
      room.flushing = false;
    }
  }

  // Returns how long to wait before trying again, or 0 to go on with the next message.
  async function sendPending(room, p) {
    p.status = 'sending';
    p.attempt += 1;
    const attempt = p.attempt;
    updatePending(room, p);
    try {
      const res = await request('message:send', { room: room.name, text: p.text, clientId: p.clientId });
      if (!isMessage(res.message)) throw chatError('internal', 'Unexpected answer from the server');
      // A resend with the same clientId gets the stored message back: never a duplicate.
      room.pending = room.pending.filter((q) => q !== p);
      saveOutbox();
      onMessage(res.message);
      renderMessages();
      return 0;
    } catch (e) {
      if (p.attempt !== attempt || !room.pending.includes(p)) return 0;
      // Offline: resume() sends it after the reconnect. Anything not listed here is final.
      const retryIn = { offline: 0, timeout: 2000, rate_limited: 1500 }[e.code];
      if (retryIn !== undefined) {
        p.status = 'queued';
        updatePending(room, p);
        return retryIn;
      }
      // Refused for good (too long, forbidden...): say why and give the text back to edit.
      room.pending = room.pending.filter((q) => q !== p);
      saveOutbox();
      renderMessages();
      notify(`Your message to #${room.name} was not sent: ${e.message}`);
      if (room === currentRoom() && !$('input').value) $('input').value = p.text;
      return 0;
    }
  }

  async function loadOlder(room) {
    if (!room || !room.hasMore || room.loadingOlder || !room.joined || room.ids.length === 0) return;
    room.loadingOlder = true;
    renderHistoryState();
    const seq = state.connSeq;
    let loaded = false;
    try {
      const res = await request('history', { room: room.name, before: room.ids[0], limit: state.limits.historyPage });
      if (seq !== state.connSeq) return;
      const messages = Array.isArray(res.messages) ? res.messages : [];
      addMessages(room, messages, false);
      room.hasMore = res.hasMore === true && messages.length > 0;
      loaded = true;
      if (room === currentRoom()) renderMessages('prepend');
    } catch (e) {
      notify(`Could not load older messages: ${e.message}`);
    } finally {
      room.loadingOlder = false;
      renderHistoryState();
    }
    // A short page may not fill the screen: go on until it scrolls or the history ends.
    if (loaded && room === currentRoom() && $('scroller').scrollTop < NEAR_EDGE_PX) loadOlder(room);
  }

  // ---------- typing ----------

  function onComposerInput() {
    autoGrow();
    const room = currentRoom();
    if (!room || !connected() || !room.joined) return;
    if (!$('input').value.trim()) return stopTyping(true);
    const t = state.typing;
    if (t.room !== room.name || Date.now() - t.sentAt > TYPING_REPEAT_MS) {
      if (t.room && t.room !== room.name) stopTyping(true);
      emitTyping(room.name, true);
      t.room = room.name;
      t.sentAt = Date.now();
    }
    clearTimeout(t.idleTimer);
    t.idleTimer = setTimeout(() => stopTyping(true), TYPING_IDLE_MS);
  }

  function stopTyping(tell) {
    const t = state.typing;
    clearTimeout(t.idleTimer);
    if (tell && t.room && connected()) emitTyping(t.room, false);
    Object.assign(t, { room: null, sentAt: 0 });
  }

  // Best effort: typing never waits for a token, and leaves one for requests.
  function emitTyping(room, typing) {
    if (takeToken(1) === 0) state.socket.emit('typing', { room, typing });
  }

  // ---------- rendering ----------

  function renderAll() {
    renderRoomLists();
    renderMembers();
    renderMessages('bottom');
    renderTyping();
    const room = currentRoom();
    $('room-name').textContent = room ? room.name : 'no room';
    $('input').placeholder = room ? `Message #${room.name}` : 'Join a room to write';
    $('input').disabled = !room;
    $('send').disabled = !room;
    $('people-toggle').disabled = !room;
    $('empty-room').hidden = !!room;
  }

  function roomItem(name, { active = false, unread = 0, members = 0, joined }) {
    const li = el('li', active ? 'room-item active' : 'room-item');
    li.dataset.room = name;
    const open = button('room-btn', undefined, () => (joined ? selectRoom(name) : joinRoom(name)));
    if (active) open.setAttribute('aria-current', 'true');
    open.append(el('span', 'hash', '#'), el('span', 'room-label', name));
    const extra = unread > 0 ? el('span', 'badge', unread > 99 ? '99+' : String(unread))
      : members > 0 ? el('span', 'count', String(members)) : null;
    if (extra) open.append(Object.assign(extra, { ariaLabel: unread > 0 ? `${unread} unread` : `${members} present` }));
    li.append(open);
    if (joined) li.append(button('icon-btn leave', '×', () => leaveRoom(name), `Leave #${name}`));
    return li;
  }

  function renderRoomLists() {
    const mine = [...state.rooms.values()]
      .map((r) => roomItem(r.name, { active: r.name === state.current, unread: r.unread, joined: true }));
    $('my-rooms').replaceChildren(...mine);
    $('my-rooms-empty').hidden = mine.length > 0;
    const others = [...state.directory.entries()]
      .filter(([name]) => !state.rooms.has(name))
      .sort((a, b) => b[1].members - a[1].members || a[0].localeCompare(b[0]))
      .map(([name, info]) => roomItem(name, { members: info.members, joined: false }));
    $('all-rooms').replaceChildren(...others);
    $('all-rooms-empty').hidden = others.length > 0;
    let total = 0;
    for (const r of state.rooms.values()) total += r.unread;
    document.title = total ? `(${total}) iolite chat` : 'iolite chat';
    $('rooms-toggle-badge').hidden = total === 0;
    $('rooms-toggle-badge').textContent = total > 99 ? '99+' : String(total);
  }

  function renderMembers() {
    const room = currentRoom();
    const members = room ? [...room.members].sort((a, b) => a.name.localeCompare(b.name)) : [];
    $('member-count').textContent = String(members.length);
    $('members').replaceChildren(...members.map((u) => {
      const li = el('li', 'member');
      li.append(avatar(u, 'avatar small'), el('span', 'member-name', u.name));
      if (isMine(u)) li.append(el('span', 'you', 'you'));
      return li;
    }));
  }

  function renderTyping() {
    const room = currentRoom();
    const names = room ? [...room.typing.values()].map((t) => t.name) : [];
    const node = $('typing');
    node.replaceChildren();
    if (names.length === 0) return;
    const who = names.length === 1 ? `${names[0]} is typing`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing` : `${names.length} people are typing`;
    const dots = el('span', 'dots');
    dots.append(el('i'), el('i'), el('i')); // empty: nothing for a screen reader to read
    node.append(dots, `${who}…`);
  }

  // Empty until the room's first page is in (the tests wait on that).
  function renderHistoryState(room = currentRoom()) {
    $('history-state').textContent = !room ? '' : room.loadingOlder ? 'Loading older messages…'
      : room.hasMore ? 'Scroll up for older messages' : room.joined || room.ids.length ? `This is the start of #${room.name}.` : '';
  }

  const PENDING_TEXT = { queued: 'Waiting for the connection…', sending: 'Sending…' };

  // One message: a confirmed one (`m` from the server) or, with `room` and a pending entry,
  // one of ours not acknowledged yet.
  function messageEl(m, prev, room = null) {
    const pending = room !== null;
    const user = pending ? state.user || { id: '', name: load(localStorage, KEYS.nick, '') || 'you' } : m.user;
    const li = el('li', pending ? `msg mine pending ${m.status}` : 'msg');
    if (pending) li.dataset.clientId = m.clientId;
    else li.dataset.id = String(m.id);
    if (isMine(user)) li.classList.add('mine');
    if (!pending && prev && prev.user.id === m.user.id && m.ts >= prev.ts && m.ts - prev.ts < GROUP_WINDOW_MS) li.classList.add('grouped');
    const meta = el('div', 'meta');
    meta.append(el('span', 'author', user.name), timeEl(m.ts));
    if (pending) meta.append(el('span', 'status', PENDING_TEXT[m.status]));
    const bubble = el('div', 'bubble');
    bubble.append(meta, el('div', 'text', m.text));
    li.append(avatar(user), bubble);
    return li;
  }

  function updatePending(room, p) {
    if (room !== currentRoom()) return;
    const old = $('messages').querySelector(`li[data-client-id="${CSS.escape(p.clientId)}"]`);
    if (old) old.replaceWith(messageEl(p, null, room));
  }

  const isNearBottom = (sc = $('scroller')) => sc.scrollHeight - sc.scrollTop - sc.clientHeight < NEAR_EDGE_PX;

  function scrollToBottom() {
    $('scroller').scrollTop = $('scroller').scrollHeight;
    $('jump').hidden = true;
  }

  // Rebuilds the list of the room on screen. `keep`: 'bottom' scrolls down, 'prepend' keeps
  // what the reader sees in place while older messages come in above; otherwise the view
  // stays put, or follows the end if it was there.
  function renderMessages(keep) {
    const room = currentRoom();
    const sc = $('scroller');
    const wasNearBottom = isNearBottom();
    const oldHeight = sc.scrollHeight;
    const oldTop = sc.scrollTop;
    const frag = document.createDocumentFragment();
    if (room) {
      let prev = null;
      for (const id of room.ids) {
        const m = room.byId.get(id);
        frag.append(messageEl(m, prev));
        prev = m;
      }
      for (const p of room.pending) frag.append(messageEl(p, null, room));
    }
    $('messages').replaceChildren(frag);
    renderHistoryState();
    if (keep === 'bottom' || (keep !== 'prepend' && wasNearBottom)) scrollToBottom();
    else if (keep === 'prepend') sc.scrollTop = oldTop + (sc.scrollHeight - oldHeight);
    else sc.scrollTop = oldTop;
    if (room && room.hasMore && sc.scrollHeight <= sc.clientHeight + NEAR_EDGE_PX) loadOlder(room);
  }

  // The common case, one new message at the end: no rebuild, and no jump if the reader scrolled up.
  function appendMessage(room, m) {
    const wasNearBottom = isNearBottom();
    const node = messageEl(m, room.ids.length > 1 ? room.byId.get(room.ids[room.ids.length - 2]) : null);
    $('messages').insertBefore(node, $('messages').querySelector('li.pending'));
    renderHistoryState();
    if (wasNearBottom || isMine(m.user)) scrollToBottom();
    else $('jump').hidden = false;
  }

  // ---------- layout ----------

  function autoGrow(input = $('input')) {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
  }

  function setDrawer(which) {
    if (which) document.body.dataset.drawer = which;
    else delete document.body.dataset.drawer;
    $('rooms-toggle').setAttribute('aria-expanded', String(which === 'rooms'));
    $('people-toggle').setAttribute('aria-expanded', String(which === 'people'));
    $('scrim').hidden = !which;
  }

  const closeDrawers = () => setDrawer(null);
  const toggleDrawer = (which) => setDrawer(document.body.dataset.drawer === which ? null : which);

  function showLogin(error = '', wantToken = false) {
    $('app').hidden = true;
    $('me').hidden = true;
    $('login').hidden = false;
    $('nick').value = load(localStorage, KEYS.nick, '') || '';
    $('token').value = load(sessionStorage, KEYS.token, '') || '';
    $('login-error').textContent = error;
    if (wantToken || $('token').value) $('token-box').open = true;
    (wantToken ? $('token') : $('nick')).focus();
  }

  // ---------- wiring ----------

  function onLoginSubmit(event) {
    event.preventDefault();
    const nick = $('nick').value.trim();
    const token = $('token').value.trim();
    if (!token && !nick) {
      $('login-error').textContent = 'Choose a nickname.';
      return;
    }
    if (nick && (charCount(nick) > 32 || CONTROL_CHARS.test(nick))) {
      $('login-error').textContent = 'A nickname has 1 to 32 characters and no control characters.';
      return;
    }
    save(localStorage, KEYS.nick, nick || null);
    save(sessionStorage, KEYS.token, token || null);
    $('login-error').textContent = '';
    connect();
  }

  function signOut() {
    if (state.socket) state.socket.disconnect();
    for (const key of [KEYS.nick, KEYS.rooms, KEYS.current, KEYS.outbox]) save(localStorage, key, null);
    save(sessionStorage, KEYS.token, null);
    location.reload(); // the simplest clean slate
  }

  function restoreSaved() {
    const current = load(localStorage, KEYS.current, null); // read first: ensureRoom saves
    const names = load(localStorage, KEYS.rooms, []);
    for (const name of Array.isArray(names) ? names : []) if (typeof name === 'string' && ROOM_NAME.test(name)) ensureRoom(name);
    const outbox = load(localStorage, KEYS.outbox, []);
    for (const p of Array.isArray(outbox) ? outbox : []) {
      const room = p && state.rooms.get(p.room);
      if (!room || typeof p.text !== 'string' || typeof p.clientId !== 'string') continue;
      room.pending.push({ clientId: p.clientId, room: p.room, text: p.text, ts: Number(p.ts) || Date.now(), status: 'queued', attempt: 0 });
    }
    state.current = state.rooms.has(current) ? current : state.rooms.keys().next().value ?? null;
  }

  function bind() {
    const submit = (fn) => (event) => { event.preventDefault(); fn(); };
    const listeners = [
      ['login-form', 'submit', onLoginSubmit],
      ['logout', 'click', signOut],
      ['reconnect', 'click', () => connect()],
      ['notice-close', 'click', () => { $('notice').hidden = true; }],
      ['rooms-toggle', 'click', () => toggleDrawer('rooms')],
      ['people-toggle', 'click', () => toggleDrawer('people')],
      ['scrim', 'click', closeDrawers],
      ['rooms-refresh', 'click', refreshDirectory],
      ['jump', 'click', scrollToBottom],
      ['join-form', 'submit', submit(() => { if (joinRoom($('join-name').value.trim())) $('join-name').value = ''; })],
      ['composer', 'submit', submit(sendFromComposer)],
      ['input', 'keydown', (e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submit(sendFromComposer)(e); }],
      ['input', 'input', onComposerInput],
      ['input', 'blur', () => stopTyping(true)],
      ['scroller', 'scroll', () => {
        if ($('scroller').scrollTop < NEAR_EDGE_PX) loadOlder(currentRoom());
        if (isNearBottom()) $('jump').hidden = true;
      }],
    ];
    for (const [id, event, handler] of listeners) $(id).addEventListener(event, handler);
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && document.body.dataset.drawer) closeDrawers(); });
    document.addEventListener('visibilitychange', () => {
      const room = currentRoom();
      if (document.hidden || !room || !room.unread) return;
      room.unread = 0;
      renderRoomLists();
    });
    // The network is gone: drop the connection now, not after a ping timeout (a WebSocket can
    // linger); the client reconnects, and recovers the session, when the network is back.
    window.addEventListener('offline', () => {
      if (connected() && state.socket.io && state.socket.io.engine) state.socket.io.engine.close();
      else if (state.socket) setRetrying();
    });
    window.addEventListener('online', () => { if (!connected()) setRetrying(); });
    // Member counts of rooms we are not in only come from rooms:list.
    setInterval(() => { if (connected() && !document.hidden) refreshDirectory(); }, 60000);
  }

  bind();
  restoreSaved();
  renderAll();
  if (load(localStorage, KEYS.nick, '') || load(sessionStorage, KEYS.token, '')) connect();
  else showLogin();
})();
