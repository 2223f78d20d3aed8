// The chat page (web/index.html, app.js, style.css) in Debian's headless Chromium against the
// real `iolite` binary with a real SQLite store. Run: `node --test tests/web/chat.test.mjs`
// after `cargo build -p iolite-server` (IOLITE_BIN points elsewhere, e.g. a release build).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.IOLITE_BIN || path.join(ROOT, 'target/debug/iolite');
const SHOTS = path.join(ROOT, 'target/web-shots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 700 };

// ---------- the server ----------

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

class IoliteServer {
  constructor(extraArgs = []) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iolite-web-'));
    this.extraArgs = extraArgs;
    this.log = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}/`;
  }

  async start() {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run \`cargo build -p iolite-server\` first`);
    this.port ??= await freePort();
    const args = ['--port', String(this.port), '--store-path', path.join(this.dir, 'chat.sqlite3'), ...this.extraArgs];
    this.proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    const keep = (chunk) => { this.log = (this.log + chunk).slice(-20000); };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    const exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = exited;
    const deadline = Date.now() + 20000;
    for (;;) {
      const early = await Promise.race([exited, new Promise((r) => setTimeout(r, 100, null))]);
      if (early) throw new Error(`iolite exited (${JSON.stringify(early)}) while starting:\n${this.log}`);
      try {
        const res = await fetch(this.url);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`iolite did not answer on ${this.url} within 20 s:\n${this.log}`);
    }
  }

  // SIGKILL: a crash, so nothing gets a clean goodbye and the page has to notice by itself.
  async kill() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  async stop() {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------- the browser ----------

// IOLITE_WEB_DIR=web serves the page's files from that folder instead of the copy compiled
// into the binary, to work on the page without a rebuild. Unset (CI), the binary serves them.
const WEB_DIR = process.env.IOLITE_WEB_DIR && path.resolve(ROOT, process.env.IOLITE_WEB_DIR);
const WEB_FILES = { '/': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css', '/iolite.js': 'iolite.js' };

let browser;
before(async () => {
  // A page answered by route.fulfill (IOLITE_WEB_DIR) does not count as loopback, so Chromium's
  // local network access checks would block its routed WebSocket to 127.0.0.1.
  const args = WEB_DIR ? ['--disable-features=LocalNetworkAccessChecks'] : [];
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args });
  fs.mkdirSync(SHOTS, { recursive: true });
});
after(async () => {
  await browser?.close();
});

function uniqueRoom(prefix) {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

// A chat page in its own browser context (its own storage, like another person's browser).
async function openPage(server, { viewport = DESKTOP, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  if (WEB_DIR) {
    await context.route((url) => url.port === String(server.port) && url.pathname in WEB_FILES, (route) =>
      route.fulfill({ path: path.join(WEB_DIR, WEB_FILES[new URL(route.request().url()).pathname]) }));
  }
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  await page.goto(server.url);
  return { context, page, problems };
}

async function signIn(page, nick) {
  await page.fill('#nick', nick);
  await page.click('#login-form button[type=submit]');
  await waitConnected(page);
  await page.waitForFunction((n) => document.getElementById('me-name').textContent === n, nick);
}

async function openChat(server, nick, opts) {
  const client = await openPage(server, opts);
  await signIn(client.page, nick);
  return client;
}

function waitConnected(page, timeout = 20000) {
  return page.waitForSelector('#conn[data-state="connected"]', { timeout });
}

function isNarrow(page) {
  return page.viewportSize().width < 700;
}

async function joinRoom(page, room, nick) {
  if (isNarrow(page)) await page.click('#rooms-toggle');
  await page.fill('#join-name', room);
  await page.press('#join-name', 'Enter');
  // The presence broadcast can come before the join's answer: the history line is only
  // written once the answer (with the latest messages) is in.
  await page.waitForFunction(({ room, nick }) =>
    document.getElementById('room-name').textContent === room &&
    document.getElementById('history-state').textContent !== '' &&
    [...document.querySelectorAll('#members .member-name')].some((n) => n.textContent === nick),
  { room, nick });
}

async function showRoom(page, room) {
  if (isNarrow(page)) await page.click('#rooms-toggle');
  await page.click(`#my-rooms li[data-room="${room}"] .room-btn`);
  await page.waitForFunction((r) => document.getElementById('room-name').textContent === r, room);
}

async function send(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

// The rendered messages of the room on screen, oldest first.
function messages(page) {
  return page.$$eval('#messages li.msg', (items) => items.map((li) => ({
    id: li.dataset.id === undefined ? null : Number(li.dataset.id),
    pending: li.classList.contains('pending'),
    author: li.querySelector('.author')?.textContent ?? null,
    text: li.querySelector('.text')?.textContent ?? null,
    datetime: li.querySelector('time')?.getAttribute('datetime') ?? null,
    time: li.querySelector('time')?.textContent ?? null,
  })));
}

function waitForText(page, text, timeout = 10000) {
  return page.waitForFunction((t) => [...document.querySelectorAll('#messages li.msg:not(.pending) .text')].some((n) => n.textContent === t), text, { timeout });
}

function assertNoGapNoDuplicate(list) {
  const ids = list.filter((m) => !m.pending).map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, `duplicate ids: ${ids}`);
  for (let i = 1; i < ids.length; i += 1) assert.equal(ids[i], ids[i - 1] + 1, `gap or disorder between ${ids[i - 1]} and ${ids[i]}`);
  return ids;
}

// Writes `count` messages through a second socket that the page's own /iolite.js opens:
// a real client, paced under the server's rate limit.
async function seedMessages(page, room, count, prefix) {
  await page.evaluate(async ({ room, count, prefix }) => {
    const socket = window.iolite.io(location.origin, { auth: { name: `seeder-${prefix}` }, forceNew: true, multiplex: false });
    const ask = (event, payload) => new Promise((resolve, reject) => {
      socket.timeout(10000).emit(event, payload, (err, res) => (err ? reject(err) : res.ok ? resolve(res) : reject(new Error(JSON.stringify(res)))));
    });
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
    await ask('room:join', { room });
    for (let i = 1; i <= count; i += 1) {
      await ask('message:send', { room, text: `${prefix} ${i}`, clientId: `${prefix}-${i}` });
      await new Promise((r) => setTimeout(r, 60));
    }
    socket.disconnect();
  }, { room, count, prefix });
}

// ---------- the tests ----------

describe('chat page against the iolite binary', () => {
  const server = new IoliteServer();
  before(async () => { await server.start(); });
  after(async () => { await server.stop(); });

  test('two people chat in a room and see author and time; the page rejoins after a reload', async () => {
    const room = uniqueRoom('lobby');
    const ada = await openChat(server, 'ada');
    const bob = await openChat(server, 'bob');
    try {
      await joinRoom(ada.page, room, 'ada');
      await joinRoom(bob.page, room, 'bob');
      const before = Date.now();
      await send(ada.page, 'hello bob');
      await waitForText(bob.page, 'hello bob');
      // Shift+Enter is a new line, Enter sends.
      await bob.page.fill('#input', 'hi ada');
      await bob.page.press('#input', 'Shift+Enter');
      await bob.page.type('#input', 'second line');
      await bob.page.press('#input', 'Enter');
      await waitForText(ada.page, 'hi ada\nsecond line');
      await waitForText(bob.page, 'hi ada\nsecond line');

      for (const { page } of [ada, bob]) {
        const list = await messages(page);
        assert.deepEqual(list.map((m) => [m.author, m.text]), [['ada', 'hello bob'], ['bob', 'hi ada\nsecond line']]);
        for (const m of list) {
          assert.ok(Number.isSafeInteger(m.id) && !m.pending);
          const ts = Date.parse(m.datetime);
          assert.ok(ts >= before - 5000 && ts <= Date.now() + 5000, `time ${m.datetime} is now`);
          assert.match(m.time, /\d{1,2}[:.]\d{2}/);
        }
        assert.ok(list[0].id < list[1].id);
      }
      assert.equal(await ada.page.inputValue('#input'), '', 'the composer is cleared after sending');

      await ada.page.screenshot({ path: path.join(SHOTS, 'desktop.png') });

      // A reload remembers the nickname and the rooms, and shows the history again.
      await ada.page.reload();
      await waitConnected(ada.page);
      await ada.page.waitForFunction((r) => document.getElementById('room-name').textContent === r, room);
      await waitForText(ada.page, 'hi ada\nsecond line');
      assert.equal(await ada.page.textContent('#me-name'), 'ada');
      assert.deepEqual((await messages(ada.page)).map((m) => m.text), ['hello bob', 'hi ada\nsecond line']);
      assert.deepEqual([...ada.problems, ...bob.problems], []);
    } finally {
      await ada.context.close();
      await bob.context.close();
    }
  });

  test('the presence list follows people joining and leaving', async () => {
    const room = uniqueRoom('presence');
    const ada = await openChat(server, 'ada');
    const bob = await openChat(server, 'bob');
    const members = (page) => page.$$eval('#members .member-name', (n) => n.map((x) => x.textContent).sort());
    const waitMembers = (page, want) => page.waitForFunction((want) =>
      JSON.stringify([...document.querySelectorAll('#members .member-name')].map((x) => x.textContent).sort()) === JSON.stringify(want), want);
    try {
      await joinRoom(ada.page, room, 'ada');
      assert.deepEqual(await members(ada.page), ['ada']);
      await joinRoom(bob.page, room, 'bob');
      await waitMembers(ada.page, ['ada', 'bob']);
      assert.equal(await ada.page.textContent('#member-count'), '2');
      // Leaving with the button...
      await bob.page.click(`#my-rooms li[data-room="${room}"] .leave`);
      await waitMembers(ada.page, ['ada']);
      assert.equal(await bob.page.$(`#my-rooms li[data-room="${room}"]`), null);
      // ...and by closing the tab.
      await joinRoom(bob.page, room, 'bob');
      await waitMembers(ada.page, ['ada', 'bob']);
      await bob.context.close();
      await waitMembers(ada.page, ['ada']);
      assert.deepEqual(ada.problems, []);
    } finally {
      await ada.context.close();
      await bob.context.close();
    }
  });

  test('the typing indicator shows on the other side and goes away', async () => {
    const room = uniqueRoom('typing');
    const ada = await openChat(server, 'ada');
    const bob = await openChat(server, 'bob');
    try {
      await joinRoom(ada.page, room, 'ada');
      await joinRoom(bob.page, room, 'bob');
      assert.equal(await bob.page.textContent('#typing'), '');
      await ada.page.type('#input', 'I am wri', { delay: 30 });
      await bob.page.waitForFunction(() => document.getElementById('typing').textContent === 'ada is typing…');
      assert.equal(await ada.page.textContent('#typing'), '', 'nobody sees their own indicator');
      await ada.page.press('#input', 'Enter');
      await bob.page.waitForFunction(() => document.getElementById('typing').textContent === '');
      await waitForText(bob.page, 'I am wri');
    } finally {
      await ada.context.close();
      await bob.context.close();
    }
  });

  test('unread counts grow on a room not shown and clear when it is opened', async () => {
    const quiet = uniqueRoom('quiet');
    const busy = uniqueRoom('busy');
    const ada = await openChat(server, 'ada');
    const bob = await openChat(server, 'bob');
    const badge = (page, room) => page.$eval(`#my-rooms li[data-room="${room}"]`, (li) => li.querySelector('.badge')?.textContent ?? null);
    try {
      await joinRoom(ada.page, busy, 'ada');
      await joinRoom(ada.page, quiet, 'ada');
      await joinRoom(bob.page, busy, 'bob');
      for (const text of ['one', 'two', 'three']) await send(bob.page, text);
      await ada.page.waitForFunction((r) => document.querySelector(`#my-rooms li[data-room="${r}"] .badge`)?.textContent === '3', busy);
      assert.equal(await badge(ada.page, quiet), null);
      assert.match(await ada.page.title(), /^\(\d+\) /);
      assert.deepEqual(await messages(ada.page), [], 'the quiet room shows none of them');
      await showRoom(ada.page, busy);
      assert.equal(await badge(ada.page, busy), null);
      assert.deepEqual((await messages(ada.page)).map((m) => m.text), ['one', 'two', 'three']);
      // Messages in the room on screen do not count.
      await send(bob.page, 'four');
      await waitForText(ada.page, 'four');
      assert.equal(await badge(ada.page, busy), null);
    } finally {
      await ada.context.close();
      await bob.context.close();
    }
  });

  test('older history loads on scroll, by id, with no gap and no duplicate', async () => {
    const room = uniqueRoom('history');
    const ada = await openChat(server, 'ada');
    try {
      await seedMessages(ada.page, room, 120, 'old');
      await joinRoom(ada.page, room, 'ada');
      const first = await messages(ada.page);
      assert.ok(first.length < 120, `the first page is a page (${first.length})`);
      assert.equal(first.at(-1).text, 'old 120');
      for (let i = 0; i < 20; i += 1) {
        const state = await ada.page.textContent('#history-state');
        if (state.startsWith('This is the start')) break;
        await ada.page.$eval('#scroller', (s) => { s.scrollTop = 0; });
        await ada.page.waitForTimeout(250);
      }
      const all = await messages(ada.page);
      assert.equal(all.length, 120);
      assertNoGapNoDuplicate(all);
      assert.deepEqual(all.map((m) => m.text), Array.from({ length: 120 }, (_, i) => `old ${i + 1}`));
      assert.match(await ada.page.textContent('#history-state'), /start of/);
    } finally {
      await ada.context.close();
    }
  });

  test('HTML in messages and names is shown as text and runs nothing', async () => {
    const room = uniqueRoom('inject');
    const evilName = '<b>mal</b>';
    const payloads = [
      '<img src=x onerror="window.__pwned=(window.__pwned||0)+1">',
      '<script>window.__pwned=(window.__pwned||0)+1</script>',
      '<a href="javascript:window.__pwned=1">click</a> &amp; &lt;',
      'javascript:window.__pwned=1 and http://x/<svg onload=window.__pwned=1>',
    ];
    const mal = await openChat(server, evilName);
    const bob = await openChat(server, 'bob');
    try {
      await joinRoom(mal.page, room, evilName);
      await joinRoom(bob.page, room, 'bob');
      for (const text of payloads) await send(mal.page, text);
      await waitForText(bob.page, payloads.at(-1));
      await bob.page.waitForTimeout(500);
      for (const { page } of [mal, bob]) {
        const list = await messages(page);
        assert.deepEqual(list.map((m) => m.text), payloads);
        assert.ok(list.every((m) => m.author === evilName));
        const injected = await page.$$eval('#messages img, #messages script, #messages svg, #messages a, #messages b, #members b', (n) => n.map((x) => x.outerHTML));
        assert.deepEqual(injected, [], 'no element came from user text');
        assert.ok(await page.$$eval('#messages .text', (ts) => ts.every((t) => t.childElementCount === 0)));
        assert.equal(await page.evaluate(() => window.__pwned), undefined);
      }
      assert.deepEqual(await bob.page.$$eval('#members .member-name', (n) => n.map((x) => x.textContent).sort()), [evilName, 'bob'].sort());
      assert.deepEqual([...mal.problems, ...bob.problems], []);
    } finally {
      await mal.context.close();
      await bob.context.close();
    }
  });

  test('a network drop: messages typed offline are sent after, and missed ones arrive once', async () => {
    const room = uniqueRoom('drop');
    const ada = await openChat(server, 'ada');
    const bob = await openChat(server, 'bob');
    try {
      await joinRoom(ada.page, room, 'ada');
      await joinRoom(bob.page, room, 'bob');
      await send(bob.page, 'before the drop');
      await waitForText(ada.page, 'before the drop');
      await ada.context.setOffline(true);
      await ada.page.waitForSelector('#conn[data-state="offline"]');
      await send(ada.page, 'typed offline');
      await ada.page.waitForSelector('#messages li.pending');
      for (let i = 1; i <= 5; i += 1) await send(bob.page, `while ada was away ${i}`);
      await waitForText(bob.page, 'while ada was away 5');
      await ada.context.setOffline(false);
      await waitConnected(ada.page);
      await waitForText(ada.page, 'typed offline', 15000);
      await waitForText(ada.page, 'while ada was away 5');
      await ada.page.waitForTimeout(500);
      const list = await messages(ada.page);
      assert.equal(list.filter((m) => m.pending).length, 0);
      assertNoGapNoDuplicate(list);
      assert.deepEqual(list.map((m) => m.text), ['before the drop', ...[1, 2, 3, 4, 5].map((i) => `while ada was away ${i}`), 'typed offline']);
      await waitForText(bob.page, 'typed offline');
      assert.equal((await messages(bob.page)).filter((m) => m.text === 'typed offline').length, 1);
    } finally {
      await ada.context.close();
      await bob.context.close();
    }
  });

  test('a lost acknowledgement: the resend with the same clientId is answered, not stored twice', async () => {
    const room = uniqueRoom('lostack');
    const text = 'the answer to this one gets lost';
    const ada = await openPage(server);
    const bob = await openChat(server, 'bob');
    // Ada's WebSocket goes through the test, which passes every frame on (the real server,
    // the real page) except that it swallows the answer and the broadcast of one message
    // and then cuts the connection, as a network drop at the worst moment would.
    let cut = false;
    let sendId = null;
    await ada.context.routeWebSocket(/\/socket\.io\//, (ws) => {
      const upstream = ws.connectToServer();
      ws.onMessage((frame) => {
        const send = !cut && typeof frame === 'string' && frame.match(/^42(\d+)\["message:send",/);
        if (send && frame.includes(text)) sendId = send[1];
        upstream.send(frame);
      });
      upstream.onMessage((frame) => {
        if (!cut && typeof frame === 'string' && sendId !== null) {
          if (frame.startsWith('42["message",') && frame.includes(text)) return;
          if (frame.startsWith(`43${sendId}[`)) {
            cut = true;
            ws.close();
            upstream.close();
            return;
          }
        }
        ws.send(frame);
      });
    });
    try {
      await signIn(ada.page, 'ada');
      await joinRoom(ada.page, room, 'ada');
      await joinRoom(bob.page, room, 'bob');
      await send(ada.page, text);
      await waitForText(bob.page, text); // the server did store and broadcast it
      await waitForText(ada.page, text, 20000); // after the reconnect and the resend
      assert.equal(cut, true, 'the connection was cut before the answer came');
      await ada.page.waitForTimeout(500);
      for (const { page } of [ada, bob]) {
        const list = await messages(page);
        assert.equal(list.filter((m) => m.text === text).length, 1, JSON.stringify(list));
        assert.equal(list.filter((m) => m.pending).length, 0);
      }
      assert.deepEqual([...ada.problems, ...bob.problems], []);
    } finally {
      await ada.context.close();
      await bob.context.close();
    }
  });

  test('the page lays out at phone width without horizontal scrolling', async () => {
    const room = uniqueRoom('phone');
    const ada = await openChat(server, 'ada', { viewport: PHONE, colorScheme: 'dark' });
    const bob = await openChat(server, 'bob');
    try {
      await joinRoom(ada.page, room, 'ada');
      await joinRoom(bob.page, room, 'bob');
      await send(bob.page, 'Hello from a desktop browser, how does this look on a small screen?');
      await send(bob.page, `a-very-long-word-${'x'.repeat(300)}`);
      await send(bob.page, `https://example.com/${'path/'.repeat(40)}`);
      await send(ada.page, 'Looks fine here 👍');
      await waitForText(ada.page, 'Looks fine here 👍');
      const widths = await ada.page.evaluate(() => ({
        doc: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
        scroller: document.getElementById('scroller').scrollWidth,
        scrollerClient: document.getElementById('scroller').clientWidth,
        composer: document.getElementById('composer').getBoundingClientRect().right,
      }));
      assert.ok(widths.doc <= 375 && widths.body <= 375, JSON.stringify(widths));
      assert.ok(widths.scroller <= widths.scrollerClient, JSON.stringify(widths));
      assert.ok(widths.composer <= 375, JSON.stringify(widths));
      assert.equal(await ada.page.isVisible('#sidebar'), false, 'the rooms list is a drawer on a phone');
      await ada.page.screenshot({ path: path.join(SHOTS, 'phone.png') });
      await ada.page.click('#rooms-toggle');
      await ada.page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().left >= 0);
      assert.equal(await ada.page.getAttribute('#rooms-toggle', 'aria-expanded'), 'true');
      await ada.page.waitForTimeout(300);
      await ada.page.screenshot({ path: path.join(SHOTS, 'phone-rooms.png') });
      assert.ok(await ada.page.evaluate(() => document.documentElement.scrollWidth <= 375));
      await ada.page.keyboard.press('Escape');
      assert.equal(await ada.page.getAttribute('#rooms-toggle', 'aria-expanded'), 'false');
    } finally {
      await ada.context.close();
      await bob.context.close();
    }
  });

  test('a refused nickname is explained on the sign-in form', async () => {
    const { context, page } = await openPage(server);
    try {
      await page.fill('#nick', 'x'.repeat(20) + '\u0007' + 'y');
      await page.click('#login-form button[type=submit]');
      assert.match(await page.textContent('#login-error'), /control characters/);
      // A stored name the server refuses comes back as connect_error invalid_name.
      await page.evaluate(() => localStorage.setItem('iolite.nick', JSON.stringify('a\u0001b')));
      await page.reload();
      await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('not accepted'));
      assert.equal(await page.isVisible('#login'), true);
    } finally {
      await context.close();
    }
  });
});

describe('server restart', () => {
  const server = new IoliteServer();
  before(async () => { await server.start(); });
  after(async () => { await server.stop(); });

  test('the page reconnects, sends what was typed offline once, and catches up with no gap', async () => {
    const room = uniqueRoom('restart');
    const ada = await openChat(server, 'ada');
    const bob = await openChat(server, 'bob');
    try {
      await joinRoom(ada.page, room, 'ada');
      await joinRoom(bob.page, room, 'bob');
      await send(ada.page, 'before');
      await waitForText(bob.page, 'before');

      await server.kill();
      await ada.page.waitForSelector('#conn[data-state="reconnecting"]');
      assert.match(await ada.page.textContent('#conn-text'), /Reconnecting/);
      await send(ada.page, 'typed while the server was down');
      const pending = await ada.page.waitForSelector('#messages li.pending');
      assert.match(await pending.textContent(), /typed while the server was down/);
      assert.match(await pending.textContent(), /Waiting/);

      // Ada stays away while the server comes back and Bob writes more than one history page.
      await ada.context.setOffline(true);
      await server.start();
      await waitConnected(bob.page);
      const missed = Array.from({ length: 60 }, (_, i) => `missed ${i + 1}`);
      for (const text of missed) await send(bob.page, text);
      await waitForText(bob.page, 'missed 60', 20000);
      await bob.page.waitForFunction(() => !document.querySelector('#messages li.pending'), null, { timeout: 20000 });

      await ada.context.setOffline(false);
      await waitConnected(ada.page);
      await ada.page.waitForFunction(() => !document.querySelector('#messages li.pending'), null, { timeout: 20000 });
      await waitForText(ada.page, 'missed 60');
      await ada.page.waitForTimeout(500);
      const list = await messages(ada.page);
      assertNoGapNoDuplicate(list);
      assert.deepEqual(list.map((m) => m.text), ['before', ...missed, 'typed while the server was down']);

      await waitForText(bob.page, 'typed while the server was down');
      assert.equal((await messages(bob.page)).filter((m) => m.text === 'typed while the server was down').length, 1);

      // And the store kept it once: a newcomer sees the same history.
      const cid = await openChat(server, 'cid');
      try {
        await joinRoom(cid.page, room, 'cid');
        const seen = (await messages(cid.page)).map((m) => m.text);
        assert.equal(seen.at(-1), 'typed while the server was down');
        assert.equal(seen.filter((t) => t === 'typed while the server was down').length, 1);
      } finally {
        await cid.context.close();
      }
      assert.deepEqual([...ada.problems, ...bob.problems], []);
    } finally {
      await ada.context.close();
      await bob.context.close();
    }
  });
});

// HS256 by hand: the test needs a token, not a JWT library.
function jwt(secret, claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

describe('server with JWT auth', () => {
  const secret = randomBytes(24).toString('hex');
  const server = new IoliteServer(['--auth-secret', secret]);
  before(async () => { await server.start(); });
  after(async () => { await server.stop(); });

  test('the page asks for a token, refuses a bad one with the reason, and signs in with a good one', async () => {
    const { context, page, problems } = await openPage(server);
    try {
      await page.fill('#nick', 'ada');
      await page.click('#login-form button[type=submit]');
      // No token: connect_error auth_required brings the token field up.
      await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('token'));
      assert.equal(await page.isVisible('#token'), true);
      const now = Math.floor(Date.now() / 1000);
      await page.fill('#token', jwt('not the secret', { sub: 'u1', name: 'Ada L.', exp: now + 600 }));
      await page.click('#login-form button[type=submit]');
      await page.waitForFunction(() => document.getElementById('login-error').textContent.startsWith('The token was refused'));
      await page.fill('#token', jwt(secret, { sub: 'u1', name: 'Ada L.', exp: now + 600 }));
      await page.click('#login-form button[type=submit]');
      await waitConnected(page);
      await page.waitForFunction(() => document.getElementById('me-name').textContent === 'Ada L.');
      assert.equal(await page.evaluate(() => JSON.parse(sessionStorage.getItem('iolite.token')).split('.').length), 3);
      const room = uniqueRoom('auth');
      await joinRoom(page, room, 'Ada L.');
      await send(page, 'signed in');
      await waitForText(page, 'signed in');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
