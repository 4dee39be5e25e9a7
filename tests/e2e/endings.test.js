'use strict';
// How sessions end other than by the client: the admission queue (client_timeout), the idle
// and session limits, a crashed browser, DELETE through the API, and protocol errors.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { e2e, checkRecord, waitFor, sleep, requireClient, wsConnect, wsClosed, cdpCall } = require('./harness');

const puppeteer = requireClient('puppeteer-core');

async function connect(ctx, d) {
  const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), protocolTimeout: 20000 });
  ctx.defer(() => browser.disconnect());
  const state = { disconnected: false, at: 0 };
  browser.on('disconnected', () => {
    state.disconnected = true;
    state.at = Date.now();
  });
  const page = await browser.newPage();
  const { sessionId } = await (await page.createCDPSession()).send('Browser.getSessionId');
  return { browser, page, sessionId, state };
}

e2e('queue: with --max-sessions 1 --queue-timeout 1 a second client gets 503 after ~1 s and a client_timeout record; a waiting client is admitted when the slot frees', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0, args: ['--max-sessions', '1', '--queue-timeout', '1'] });
  const site = await ctx.pages();
  const from = Date.now();
  const first = await connect(ctx, d);
  await first.page.goto(site.url('/p/1'));

  const t0 = Date.now();
  const refused = await wsConnect(d.wsEndpoint(), { timeout: 10000 });
  const waited = Date.now() - t0;
  assert.equal(refused.status, 503, 'the queued client is refused');
  assert.ok(waited >= 900 && waited < 4000, `refused after ${waited} ms (queue timeout 1 s)`);
  assert.match(refused.headers['content-type'], /application\/json/);
  assert.equal(typeof refused.json.error, 'string');

  const timedOut = await waitFor(
    async () => (await d.sessions('status=failed')).find((s) => s.error && s.error.code === 'client_timeout'),
    { timeout: 5000, what: 'the client_timeout record' },
  );
  checkRecord(timedOut, { from, to: Date.now(), minDuration: 0.9, maxDuration: 4 });
  assert.notEqual(timedOut.session_id, first.sessionId);
  assert.equal(timedOut.status, 'failed');
  assert.equal(timedOut.navigations, 0);
  assert.equal(timedOut.target_url, null);
  assert.equal(timedOut.end_url, null);
  assert.equal(timedOut.api_name, 'scraping_browser1');
  assert.ok(timedOut.error.message.length > 0);

  // the first session did not notice
  assert.equal(await first.page.evaluate(() => document.title), 'one');
  assert.equal((await d.session(first.sessionId)).status, 'running');

  // a client that waits is admitted as soon as the slot frees (well within the 1 s limit)
  const waiting = wsConnect(d.wsEndpoint(), { timeout: 10000 });
  await sleep(200);
  const freedAt = Date.now();
  first.browser.disconnect();
  const admitted = await waiting;
  assert.ok(admitted.ws, `admitted, not ${admitted.status} ${admitted.body}`);
  assert.ok(Date.now() - freedAt < 800, `admitted ${Date.now() - freedAt} ms after the slot freed`);
  const closed = wsClosed(admitted.ws);
  const reply = await cdpCall(admitted.ws, 1, 'Browser.getSessionId');
  const secondId = reply.result.sessionId;
  assert.notEqual(secondId, first.sessionId);
  admitted.ws.close(1000);
  await closed;
  assert.equal((await d.ended(secondId)).status, 'finished');
  const firstRec = await d.ended(first.sessionId);
  assert.equal(firstRec.status, 'finished');
  assert.equal(firstRec.navigations, 1);
  const all = await d.api('GET', '/browser_sessions');
  assert.equal(all.json.total, 3);
});

e2e('idle timeout: --idle-timeout 1 keeps a busy session and ends a quiet one with inactivity_timeout; the client is disconnected', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0, args: ['--idle-timeout', '1'] });
  const site = await ctx.pages();
  const from = Date.now();
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  // busy for 2.5 s (a message every 300 ms): more than the idle limit in all, never idle
  const busyUntil = Date.now() + 2500;
  let quietFrom = 0;
  while (Date.now() < busyUntil) {
    assert.equal(await s.page.evaluate(() => 1 + 1), 2);
    quietFrom = Date.now(); // the last message (the answer) arrived
    await sleep(300);
  }
  assert.equal(s.state.disconnected, false, 'a busy session is not idle');
  await waitFor(() => s.state.disconnected, { timeout: 8000, what: 'the idle session to be closed' });
  const quiet = s.state.at - quietFrom;
  assert.ok(quiet >= 900 && quiet < 4000, `closed after ${quiet} ms of quiet`);
  const rec = await d.ended(s.sessionId);
  checkRecord(rec, { from, to: Date.now(), minDuration: 3.4 });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'inactivity_timeout');
  assert.equal(rec.navigations, 1);
  assert.equal(rec.target_url, site.url('/p/1'));
  assert.equal(rec.end_url, site.url('/p/1'));
});

e2e('idle timeout: a browser slower to start than --idle-timeout does not end the session (the idle limit runs from the browser\'s first message)', { timeout: 60000 }, async (ctx) => {
  // Chromium behind a wrapper that waits 2.5 s before starting it: a launch slower than the idle
  // limit of 1 s, as on a loaded machine. The client's first commands wait for the browser.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-e2e-slow-'));
  ctx.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  const wrapper = path.join(dir, 'slow-chromium');
  fs.writeFileSync(wrapper, '#!/bin/sh\nsleep 2.5\nexec /usr/bin/chromium "$@"\n', { mode: 0o755 });
  const d = await ctx.daemon({ site: true, pool: 0, args: ['--idle-timeout', '1', '--chromium', wrapper] });
  const from = Date.now();
  const s = await connect(ctx, d);
  assert.ok(Date.now() - from >= 2500, 'the session waited for the slow launch');
  assert.equal(s.state.disconnected, false, 'the launch is not idleness');
  assert.equal(await s.page.evaluate(() => 6 * 7), 42);
  // once the browser is up, the idle limit applies as usual
  await waitFor(() => s.state.disconnected, { timeout: 8000, what: 'the idle session to be closed' });
  const rec = await d.ended(s.sessionId);
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'inactivity_timeout');
});

e2e('session timeout: --session-timeout 2 ends a busy session at ~2 s with session_timeout and a close frame (1001)', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0, args: ['--session-timeout', '2'] });
  const from = Date.now();
  const { ws } = await wsConnect(d.wsEndpoint());
  const openedAt = Date.now();
  const closed = wsClosed(ws);
  let closedAt = 0;
  closed.then(() => {
    closedAt = Date.now();
  });
  const { result } = await cdpCall(ws, 1, 'Browser.getSessionId');
  // busy all along (Browser.getVersion goes to Chromium and back)
  let id = 2;
  // until the close begins: once the server's close frame is in, the socket is CLOSING and
  // sending on it throws, before the 'close' event sets closedAt
  while (!closedAt && ws.readyState === ws.OPEN && Date.now() - openedAt < 8000) {
    const r = await Promise.race([cdpCall(ws, id++, 'Browser.getVersion'), closed]);
    if (r && r.result) assert.match(r.result.product, /Chrom/);
    await sleep(100);
  }
  const { code, reason } = await closed;
  assert.equal(code, 1001, 'going away');
  assert.match(reason, /session_timeout/);
  const lived = closedAt - openedAt;
  assert.ok(lived >= 1800 && lived < 3500, `closed ${lived} ms after the upgrade`);
  const rec = await d.ended(result.sessionId);
  // (a few ms of slack: the timer runs on libuv's cached monotonic clock, the record on the
  // wall clock, both in whole ms)
  checkRecord(rec, { from, to: Date.now(), minDuration: 1.99, maxDuration: 3.5 });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'session_timeout');
  assert.equal(rec.navigations, 0);
});

e2e('browser crash: kill -9 of the session\'s Chromium -> browser_disconnected, the client sees the connection close', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const from = Date.now();
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  await s.page.goto(site.url('/p/2'));
  const mains = d.chromiumMains();
  assert.equal(mains.length, 1, `one Chromium main process: ${JSON.stringify(mains.map((m) => m.pid))}`);
  assert.ok(d.profiles().length === 1, 'one profile directory');
  process.kill(mains[0].pid, 'SIGKILL');
  await waitFor(() => s.state.disconnected, { timeout: 8000, what: 'the client to be disconnected' });
  const rec = await d.ended(s.sessionId);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'browser_disconnected');
  assert.equal(rec.navigations, 2);
  assert.equal(rec.target_url, site.url('/p/1'));
  assert.equal(rec.end_url, site.url('/p/2'));
  // the crashed browser's processes and profile go too (also checked at teardown)
  await waitFor(() => d.chromiumMains().length === 0 && d.profiles().length === 0, { timeout: 8000, what: 'cleanup' });
  // and the daemon still serves new sessions
  const again = await wsConnect(d.wsEndpoint());
  assert.ok(again.ws);
  const closed = wsClosed(again.ws);
  again.ws.close(1000);
  await closed;
});

e2e('DELETE of a running session (a slow navigation in flight): 204, the client is disconnected, job_killed; again 409; unknown 404; malformed 400', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const from = Date.now();
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  // a navigation still loading when the session is killed: it never commits, so it never counts
  const slow = s.page.goto(site.url('/slow?ms=5000')).catch(() => null);
  await waitFor(() => site.requests.some((r) => r.url === '/slow?ms=5000'), { what: 'the slow request to arrive' });
  const del = await d.api('DELETE', `/browser_sessions/${s.sessionId}`);
  assert.equal(del.status, 204);
  assert.equal(del.text, '');
  await waitFor(() => s.state.disconnected, { timeout: 5000, what: 'the client to be disconnected' });
  const rec = await d.ended(s.sessionId);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'job_killed');
  assert.equal(rec.navigations, 1, 'the slow page never committed');
  assert.equal(rec.end_url, site.url('/p/1'));
  await slow;

  const again = await d.api('DELETE', `/browser_sessions/${s.sessionId}`);
  assert.equal(again.status, 409);
  assert.deepEqual(again.json, { error: 'Session is not running', session_id: s.sessionId });
  const unknown = '01234567-89ab-7def-8123-456789abcdef';
  const nf = await d.api('DELETE', `/browser_sessions/${unknown}`);
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.json, { error: 'Session not found', session_id: unknown });
  const bad = await d.api('DELETE', '/browser_sessions/not-a-uuid');
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { error: 'Invalid session_id format' });
  const noKey = await d.api('DELETE', `/browser_sessions/${s.sessionId}`, { key: null });
  assert.equal(noKey.status, 401);

  // a raw client sees the close frame: 1001 with the reason
  const { ws } = await wsConnect(d.wsEndpoint());
  const closed = wsClosed(ws);
  const { result } = await cdpCall(ws, 1, 'Browser.getSessionId');
  assert.equal((await d.api('DELETE', `/browser_sessions/${result.sessionId}`)).status, 204);
  const { code, reason } = await closed;
  assert.equal(code, 1001);
  assert.match(reason, /job_killed/);
  assert.equal((await d.ended(result.sessionId)).error.code, 'job_killed');
});

e2e('protocol errors: invalid JSON -> close 1007 and cdp_error; an unmasked client frame -> close 1002 and cdp_error', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1 });
  const from = Date.now();

  // invalid JSON in a text frame
  const { ws } = await wsConnect(d.wsEndpoint());
  const closed = wsClosed(ws);
  const { result } = await cdpCall(ws, 1, 'Browser.getSessionId');
  const version = await cdpCall(ws, 2, 'Browser.getVersion');
  assert.ok(version.result.product, 'relayed to Chromium and back');
  ws.send('{"id": 3, "method": "Browser.getVersion"'); // cut short
  const { code, reason } = await closed;
  assert.equal(code, 1007, 'invalid frame payload data');
  assert.match(reason, /cdp_error/);
  const rec = await d.ended(result.sessionId);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'cdp_error');

  // an invalid frame: a client frame without a mask, on a raw socket
  const sock = net.connect({ host: '127.0.0.1', port: d.cdpPort });
  ctx.defer(() => sock.destroy());
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(
    'GET /devtools/browser/raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: ${d.basicAuth()}\r\n\r\n`,
  );
  let input = Buffer.alloc(0);
  let ended = false;
  sock.on('data', (c) => {
    input = Buffer.concat([input, c]);
  });
  sock.on('close', () => {
    ended = true;
  });
  await waitFor(() => input.includes('\r\n\r\n'), { timeout: 10000, what: 'the 101' });
  const headEnd = input.indexOf('\r\n\r\n') + 4;
  const head = input.subarray(0, headEnd).toString();
  assert.match(head, /^HTTP\/1\.1 101 /);
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  assert.ok(head.includes(`Sec-WebSocket-Accept: ${accept}`));
  await sleep(300); // the session is recorded
  const running = (await d.sessions('status=running'))[0];
  assert.ok(running, 'the raw session runs');
  const payload = Buffer.from('{"id":1,"method":"Browser.getVersion"}');
  sock.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload])); // FIN+text, no mask bit
  await waitFor(() => ended, { timeout: 5000, what: 'the server to close the connection' });
  const frames = input.subarray(headEnd);
  const closeAt = frames.indexOf(0x88);
  assert.ok(closeAt >= 0, `a close frame (got ${frames.toString('hex').slice(0, 80)})`);
  const closeCode = frames.readUInt16BE(closeAt + 2);
  assert.equal(closeCode, 1002, 'protocol error');
  const rec2 = await d.ended(running.session_id);
  assert.equal(rec2.status, 'failed');
  assert.equal(rec2.error.code, 'cdp_error');
});
