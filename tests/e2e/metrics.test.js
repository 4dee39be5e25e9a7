'use strict';
// GET /metrics during runs with real Puppeteer sessions, read by a real Prometheus parser
// (Debian's python3-prometheus-client, through prom_parse.py): every counter moves exactly as
// the sessions and requests did; the metrics listener of its own and the metrics token.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { e2e, waitFor, requireClient, httpRequest, freePort, wsConnect } = require('./harness');

const puppeteer = requireClient('puppeteer-core');
const PARSER = path.join(__dirname, 'prom_parse.py');

/** The text through prometheus_client: {families: {name: type}, samples: [[name, labels, value]]}. */
function parse(text) {
  const r = spawnSync('/usr/bin/python3', [PARSER], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `prometheus_client could not parse /metrics: ${r.stderr}\n${text.slice(0, 2000)}`);
  const out = JSON.parse(r.stdout);
  out.value = (name, labels = {}) => {
    const hit = out.samples.filter(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v));
    return hit.reduce((sum, [, , v]) => sum + v, 0);
  };
  out.series = (name) => out.samples.filter(([n]) => n === name);
  return out;
}

async function scrape(port, headers = {}) {
  const r = await httpRequest({ port, method: 'GET', path: '/metrics', headers });
  assert.equal(r.status, 200, `/metrics: ${r.status} ${r.text}`);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return parse(r.text);
}

async function connect(ctx, d) {
  const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), protocolTimeout: 20000 });
  ctx.defer(() => browser.disconnect());
  const page = await browser.newPage();
  const { sessionId } = await (await page.createCDPSession()).send('Browser.getSessionId');
  return { browser, page, sessionId };
}

/** Every ended-session series: "status/error" -> count. */
function endedSeries(m) {
  return Object.fromEntries(m.series('browserd_sessions_ended_total').map(([, l, v]) => [`${l.status}/${l.error}`, v]));
}

e2e('metrics: a finished and an idle session move exactly their counters; CDP, proxy, store, API and process metrics are true', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1, args: ['--idle-timeout', '1.5'] });
  const site = await ctx.pages();
  const before = await scrape(d.apiPort);
  for (const [name, type] of Object.entries({
    browserd_sessions_running: 'gauge', browserd_sessions_queued: 'gauge', browserd_sessions_ended: 'counter',
    browserd_connect_duration_seconds: 'histogram', browserd_queue_wait_seconds: 'histogram', browserd_pool_size: 'gauge',
    browserd_pool_warm: 'gauge', browserd_browsers_in_use: 'gauge', browserd_api_requests: 'counter',
    browserd_api_request_duration_seconds: 'histogram', browserd_cdp_messages: 'counter', browserd_cdp_bytes: 'counter',
    browserd_proxy_bytes: 'counter', browserd_store_write_duration_seconds: 'histogram', browserd_spool_records: 'gauge',
    browserd_catalog_sessions: 'gauge', process_resident_memory_bytes: 'gauge', process_cpu_seconds: 'counter',
    process_open_fds: 'gauge',
  })) assert.equal(before.families[name], type, `family ${name}`);
  assert.equal(before.value('browserd_pool_size'), 1);
  assert.equal(before.value('browserd_sessions_running'), 0);

  // one session that finishes (the client closes the browser), one that goes idle
  const ok = await connect(ctx, d);
  await ok.page.goto(site.url('/p/1'));
  const during = await scrape(d.apiPort);
  assert.equal(during.value('browserd_sessions_running'), 1);
  assert.equal(during.value('browserd_browsers_in_use'), 1);
  await ok.browser.close();
  const finished = await d.ended(ok.sessionId);
  assert.equal(finished.status, 'finished');

  const idle = await connect(ctx, d);
  await idle.page.goto(site.url('/p/2'));
  const failed = await d.ended(idle.sessionId, 15000);
  assert.equal(failed.error.code, 'inactivity_timeout');

  const after = await waitFor(async () => {
    const m = await scrape(d.apiPort);
    return m.value('browserd_sessions_running') === 0 ? m : null;
  }, { timeout: 10000, what: 'no session running in /metrics' });
  const e0 = endedSeries(before), e1 = endedSeries(after);
  const moved = Object.keys(e1).filter((k) => e1[k] !== (e0[k] || 0)).map((k) => `${k}+${e1[k] - (e0[k] || 0)}`);
  assert.deepEqual(moved.sort(), ['failed/inactivity_timeout+1', 'finished/none+1'], 'ended-session counters that moved');

  const delta = (name, labels) => after.value(name, labels) - before.value(name, labels);
  assert.equal(delta('browserd_connect_duration_seconds_count'), 2, 'connect latency: one sample per session');
  assert.equal(delta('browserd_queue_wait_seconds_count'), 2, 'queue wait: one sample per session');
  assert.ok(delta('browserd_connect_duration_seconds_sum') > 0);
  assert.equal(after.value('browserd_connect_duration_seconds_bucket', { le: '+Inf' }), after.value('browserd_connect_duration_seconds_count'));
  for (const direction of ['client_to_browser', 'browser_to_client']) {
    const msgs = delta('browserd_cdp_messages_total', { direction }), bytes = delta('browserd_cdp_bytes_total', { direction });
    assert.ok(msgs >= 5, `${direction}: ${msgs} messages`);
    assert.ok(bytes > msgs * 10, `${direction}: ${bytes} bytes for ${msgs} messages`);
  }
  // the sessions' billed bandwidth is the browser side of their proxies; the pool's browsers add their own
  const browserSide = delta('browserd_proxy_bytes_total', { side: 'browser' });
  assert.ok(browserSide >= finished.bandwidth + failed.bandwidth,
    `proxy browser-side bytes ${browserSide} < the sessions' bandwidth ${finished.bandwidth} + ${failed.bandwidth}`);
  assert.ok(finished.bandwidth > 0);
  assert.ok(delta('browserd_store_write_duration_seconds_count') >= 2, 'store writes timed');
  assert.equal(after.value('browserd_store_write_failures_total'), 0);
  assert.equal(after.value('browserd_spool_records'), 0);
  assert.equal(after.value('browserd_catalog_sessions'), (await d.sessions()).length);
  assert.ok(after.value('process_resident_memory_bytes') > 1e6);
  assert.ok(after.value('process_open_fds') > 5);
  assert.ok(after.value('process_cpu_seconds_total') > 0);
  assert.ok(after.value('process_start_time_seconds') > Date.now() / 1000 - 600);
  // sampled every 10 s off the loop: the first sample may predate the pool's Chromium
  const sample = await waitFor(async () => {
    const m = await scrape(d.apiPort);
    return m.value('browserd_browsers_processes') >= 3 ? m : null;
  }, { timeout: 25000, interval: 1000, what: 'a sample of the browsers\' memory with the pool\'s Chromium in it' });
  const memory = sample.value('browserd_browsers_memory_bytes');
  assert.ok(memory > 20e6, `the pool's Chromium (${sample.value('browserd_browsers_processes')} processes) in ${memory} bytes`);
  assert.ok(sample.value('browserd_browsers_memory_sample_age_seconds') < 12);

  // the API's counters: exactly the requests made between two scrapes (and the first scrape itself)
  const a = await scrape(d.apiPort);
  for (let i = 0; i < 3; i++) assert.equal((await d.api('GET', '/browser_sessions?limit=1')).status, 200);
  assert.equal((await d.api('GET', `/browser_sessions/${ok.sessionId}`)).status, 200);
  assert.equal((await d.api('GET', '/browser_sessions?limit=0')).status, 400);
  assert.equal((await d.api('GET', '/nope')).status, 404);
  assert.equal((await d.api('GET', '/browser_sessions', { key: null })).status, 401);
  assert.equal((await d.api('GET', '/ready', { key: null })).status, 200);
  const b = await scrape(d.apiPort);
  const req = (m, route, code) => m.value('browserd_api_requests_total', { route, code: String(code) });
  for (const [route, code, n] of [['/browser_sessions', 200, 3], ['/browser_sessions/{session_id}', 200, 1],
    ['/browser_sessions', 400, 1], ['other', 404, 1], ['/browser_sessions', 401, 1], ['/ready', 200, 1], ['/metrics', 200, 1]])
    assert.equal(req(b, route, code) - req(a, route, code), n, `${route} ${code}`);
  assert.equal(b.value('browserd_api_request_duration_seconds_count', { route: '/browser_sessions' }) -
    a.value('browserd_api_request_duration_seconds_count', { route: '/browser_sessions' }), 5);
});

e2e('metrics: on a listener of its own with a token: 401 without it or with a wrong one, 200 with it; not on the API listener; refusals counted; off means no /metrics', { timeout: 60000 }, async (ctx) => {
  const token = 'MetricsT0ken-' + Date.now();
  const port = await freePort();
  const d = await ctx.daemon({ pool: 0, args: ['--metrics-listen', `127.0.0.1:${port}`, '--metrics-token', token] });
  for (const headers of [{}, { Authorization: 'Bearer wrong' }, { Authorization: `Basic ${token}` }, { Authorization: `Bearer ${token}x` }]) {
    const r = await httpRequest({ port, method: 'GET', path: '/metrics', headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.headers['www-authenticate'], 'Bearer');
    assert.deepEqual(r.json, { error: 'Invalid credentials' });
  }
  const auth = { Authorization: `bearer  ${token} ` };
  const m = await scrape(port, auth);
  assert.ok(m.value('browserd_http_connections', { server: 'metrics' }) >= 1);
  assert.equal((await httpRequest({ port, method: 'HEAD', path: '/metrics', headers: auth })).status, 200);
  const post = await httpRequest({ port, method: 'POST', path: '/metrics', headers: auth });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  assert.equal((await httpRequest({ port, method: 'GET', path: '/browser_sessions', headers: auth })).status, 404);
  // the API listener does not serve it: an unknown path there
  assert.equal((await d.api('GET', '/metrics')).status, 404);
  // CDP clients refused before a session: counted by reason
  assert.equal((await wsConnect(d.wsEndpoint({ password: 'wrong' }), { timeout: 10000 })).status, 403);
  assert.equal((await wsConnect(d.wsEndpoint({ password: 'wrong' }), { timeout: 10000 })).status, 403);
  const after = await scrape(port, auth);
  assert.equal(after.value('browserd_cdp_refused_total', { reason: 'invalid_credentials' }), 2);

  const off = await ctx.daemon({ pool: 0, args: ['--metrics-listen', 'off'] });
  assert.equal((await off.api('GET', '/metrics')).status, 404);
  assert.equal((await off.api('GET', '/metrics', { key: null })).status, 401);
});
