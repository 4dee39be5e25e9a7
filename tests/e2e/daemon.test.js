'use strict';
// browserd itself going away mid-session: SIGKILL (the supervisors clean up; the next start
// fails the orphaned session with worker_disconnect) and SIGTERM (graceful: close frames,
// worker_disconnect records, waiting clients get 503).
const assert = require('node:assert/strict');
const { e2e, checkRecord, waitFor, sleep, requireClient, wsConnect, wsClosed, cdpCall, BIN } = require('./harness');
const { cli } = require('./traffic_helpers');

const puppeteer = requireClient('puppeteer-core');

async function connect(ctx, d) {
  const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), protocolTimeout: 20000 });
  ctx.defer(() => browser.disconnect());
  const state = { disconnected: false };
  browser.on('disconnected', () => {
    state.disconnected = true;
  });
  const page = await browser.newPage();
  const { sessionId } = await (await page.createCDPSession()).send('Browser.getSessionId');
  return { browser, page, sessionId, state };
}

e2e('browserd SIGKILLed mid-session: the client is cut off, no Chromium or profile survives, and the restart fails the session with worker_disconnect (duration up to its last save)', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1 });
  const site = await ctx.pages();
  const from = Date.now();
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  await s.page.goto(site.url('/p/2'));
  await sleep(2600); // past the first periodic save (every 2 s)
  const running = await d.session(s.sessionId);
  assert.equal(running.status, 'running');
  assert.equal(running.navigations, 2);
  assert.ok(d.chromiumMains().length >= 2, 'the session\'s browser and a pooled one');

  const killAt = Date.now();
  d.signal('SIGKILL');
  const exit = await d.waitExit(5000);
  assert.equal(exit.signal, 'SIGKILL');
  await waitFor(() => s.state.disconnected, { timeout: 8000, what: 'the client to see the connection close' });
  // the supervisors notice browserd's death and take everything with them
  const left = await d.waitClean(10000);
  assert.deepEqual(left, { processes: [], profiles: [] }, 'nothing of the killed daemon survives');

  const d2 = await ctx.restart(d);
  assert.match(d2.log, /event=orphans_failed sessions=1\b/);
  const rec = await d2.session(s.sessionId);
  checkRecord(rec, { from, to: Date.now(), minDuration: 1.9, maxDuration: (killAt - from) / 1000 });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'worker_disconnect');
  assert.equal(rec.navigations, 2);
  assert.equal(rec.target_url, site.url('/p/1'));
  assert.equal(rec.end_url, site.url('/p/2'));
  assert.deepEqual(await d2.sessions('status=running'), []);

  // the restarted daemon serves sessions as usual
  const again = await connect(ctx, d2);
  await again.page.goto(site.url('/p/3'));
  await again.browser.close();
  const rec2 = await d2.ended(again.sessionId);
  assert.equal(rec2.status, 'finished');
  assert.equal(rec2.end_url, site.url('/p/3'));
});

e2e('browserd SIGTERMed with live sessions: it drains (a waiting and a new client get 503, /ready false, the sessions go on); a second SIGTERM: close frames (1001 worker_disconnect), exit 0, records failed with worker_disconnect, nothing left', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1, args: ['--max-sessions', '2', '--max-queue', '1'] });
  const site = await ctx.pages();
  const from = Date.now();
  const s = await connect(ctx, d);
  const sOpened = Date.now(); // after its upgrade
  await s.page.goto(site.url('/p/1'));
  const rawFrom = Date.now();
  const { ws } = await wsConnect(d.wsEndpoint());
  const rawOpened = Date.now();
  const rawClosed = wsClosed(ws);
  const rawId = (await cdpCall(ws, 1, 'Browser.getSessionId')).result.sessionId;
  // a third client waits for a slot (queue timeout 30 s by default)
  const waiting = wsConnect(d.wsEndpoint(), { timeout: 20000 });
  await sleep(300);

  const full = await d.api('GET', '/ready', { key: null });
  assert.equal(full.status, 503, 'both slots and the one queue place taken');
  assert.equal(full.json.reason, 'full');
  const refused = await wsConnect(d.wsEndpoint(), { timeout: 10000 });
  assert.equal(refused.status, 503, 'a client beyond the queue, at once');
  d.signal('SIGTERM');
  const w = await waiting;
  assert.equal(w.status, 503, 'the waiting client, at the drain');
  const ready = await d.api('GET', '/ready', { key: null });
  assert.equal(ready.status, 503);
  assert.equal(ready.json.reason, 'draining');
  const pressure = await d.api('GET', '/pressure', { key: null });
  assert.equal(pressure.json.pressure.isAvailable, false);
  assert.equal(pressure.json.pressure.reason, 'draining');
  assert.equal(pressure.json.pressure.running, 2);
  const late = await wsConnect(d.wsEndpoint(), { timeout: 10000 });
  assert.equal(late.status, 503, 'a new client while draining');
  // the running sessions go on
  assert.equal((await s.page.goto(site.url('/p/2'))).status(), 200);
  assert.equal((await cdpCall(ws, 2, 'Browser.getVersion')).id, 2);

  const termAt = Date.now();
  d.signal('SIGTERM'); // the second: at once
  const { code, reason } = await rawClosed;
  assert.equal(code, 1001, 'going away');
  assert.match(reason, /worker_disconnect/);
  await waitFor(() => s.state.disconnected, { timeout: 8000, what: 'puppeteer to be disconnected' });
  const exit = await d.waitExit(10000);
  const exitedAt = Date.now();
  assert.deepEqual(exit, { code: 0, signal: null }, 'a clean exit');
  assert.match(d.log, /event=stopped/);
  const left = await d.waitClean(8000);
  assert.deepEqual(left, { processes: [], profiles: [] });

  // the records were saved at the stop (the next start finds no orphan)
  const d2 = await ctx.restart(d);
  assert.doesNotMatch(d2.log, /orphans_failed/);
  // each lasted from its upgrade to the stop
  for (const [id, navs, earliest, opened] of [[s.sessionId, 2, from, sOpened], [rawId, 0, rawFrom, rawOpened]]) {
    const rec = await d2.session(id);
    checkRecord(rec, { from, to: Date.now(), minDuration: (termAt - opened) / 1000, maxDuration: (exitedAt - earliest) / 1000 });
    assert.equal(rec.status, 'failed');
    assert.equal(rec.error.code, 'worker_disconnect');
    assert.equal(rec.navigations, navs);
  }
  // only the two sessions: the client that never got a browser is not one
  const all = await d2.api('GET', '/browser_sessions');
  assert.equal(all.json.total, 2);
});

e2e('drain: two sessions running at SIGTERM; the one whose client leaves within --drain-timeout finishes, the other ends with worker_disconnect at the timeout; exit 0, nothing left', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0, args: ['--drain-timeout', '3'] });
  const site = await ctx.pages();
  const a = await connect(ctx, d);
  const b = await connect(ctx, d);
  await a.page.goto(site.url('/p/1'));
  await b.page.goto(site.url('/p/2'));
  const termAt = Date.now();
  d.signal('SIGTERM');
  await sleep(300);
  assert.equal(d.running, true, 'still running while it drains');
  await a.page.goto(site.url('/p/3')); // a session goes on while draining
  await a.browser.close();
  const exit = await d.waitExit(15000);
  const exitedAt = Date.now();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.ok(exitedAt - termAt >= 2500, `it waited for the drain timeout (${exitedAt - termAt} ms)`);
  assert.match(d.log, /event=stopping reason=drain_timeout/);
  await waitFor(() => b.state.disconnected, { timeout: 8000, what: 'the second client to be cut off' });
  assert.deepEqual(await d.waitClean(8000), { processes: [], profiles: [] });
  const d2 = await ctx.restart(d);
  const ra = await d2.session(a.sessionId);
  assert.equal(ra.status, 'finished');
  assert.equal(ra.end_url, site.url('/p/3'));
  const rb = await d2.session(b.sessionId);
  assert.equal(rb.status, 'failed');
  assert.equal(rb.error.code, 'worker_disconnect');
  assert.ok(rb.duration >= 2.5, `lasted until the drain timeout (${rb.duration} s)`);
});

e2e('logs: a full run at --log-level debug, text and JSON, holds no secret (API keys, zone passwords, proxy credentials, wrong ones tried); every JSON line parses; a line per request and per session end', { timeout: 90000 }, async (ctx) => {
  const proxySecret = 'Pr0xyS3cretPass';
  const zoneProxySecret = 'Z0neProxyS3cret';
  const metricsToken = 'M3tricsT0kenS3cret';
  for (const format of ['text', 'json']) {
    const d = await ctx.daemon({
      site: true,
      pool: 1,
      args: ['--log-level', 'debug', '--log-format', format, '--upstream-proxy', `http://loguser:${proxySecret}@127.0.0.1:9`,
        '--metrics-token', metricsToken],
    });
    // a zone with its own proxy and credentials, set through the CLI
    const zonePassword = cli(BIN, d.db, 'zone', 'add', 'default', 'logged').trim();
    cli(BIN, d.db, 'zone', 'set-proxy', 'default', 'logged', `http://zuser:${zoneProxySecret}@127.0.0.1:9`);
    const wrongKey = 'k' + d.creds.apiKey.slice(1).split('').reverse().join('');
    await d.api('GET', '/browser_sessions?limit=1');
    await d.api('GET', '/browser_sessions', { key: wrongKey });
    await d.api('GET', '/ready', { key: null });
    assert.equal((await d.api('GET', '/metrics', { key: metricsToken })).status, 200);
    assert.equal((await d.api('GET', '/metrics', { key: metricsToken.slice(1) })).status, 401);
    const wrongPassword = d.creds.password.split('').reverse().join('') + 'W';
    const bad = await wsConnect(d.wsEndpoint({ password: wrongPassword }), { timeout: 10000 });
    assert.equal(bad.status, 403);
    const s = await connect(ctx, d);
    await s.page.goto('about:blank');
    await s.browser.close();
    const z = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint({ zone: 'logged', password: zonePassword }), protocolTimeout: 20000 });
    const zp = await z.newPage();
    await zp.goto('http://site.example/').catch(() => {}); // through the (absent) zone proxy: fails
    await z.close();
    await d.ended(s.sessionId);
    await d.stop();
    const log = d.log;
    for (const [what, secret] of [
      ['the API key', d.creds.apiKey], ['a wrong API key', wrongKey], ['the zone password', d.creds.password],
      ['a wrong zone password', wrongPassword], ['the second zone password', zonePassword],
      ['the upstream proxy password', proxySecret], ['the zone proxy password', zoneProxySecret],
      ['the metrics token', metricsToken], ['a wrong metrics token', metricsToken.slice(1)],
    ]) assert.ok(!log.includes(secret), `${format} log holds ${what}`);
    assert.match(log, /event[=":]+request/);
    assert.match(log, /event[=":]+session_end/);
    if (format === 'json') {
      const lines = log.split('\n').filter((l) => l.startsWith('{'));
      assert.ok(lines.length > 5);
      for (const l of lines) {
        const o = JSON.parse(l);
        assert.ok(o.ts && o.level && o.module && o.event, l);
      }
      const end = lines.map((l) => JSON.parse(l)).find((o) => o.event === 'session_end' && o.session === s.sessionId);
      assert.ok(end, 'the session end line');
      assert.equal(end.status, 'finished');
      assert.equal(typeof end.navigations, 'number');
      assert.equal(typeof end.bandwidth, 'number');
    }
  }
});
