'use strict';
// Zone credentials on the CDP port: what the client sees before any upgrade (407 / 403, JSON
// bodies with a reason), no session recorded for a refused client, and a good client after.
const assert = require('node:assert/strict');
const { e2e, checkRecord, requireClient, wsConnect, wsClosed, rawUpgrade } = require('./harness');

const puppeteer = requireClient('puppeteer-core');

e2e('credentials: 407 without, 403 for a wrong password / unknown zone / unknown customer / malformed name; nothing recorded; a good client then works', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ pool: 0 });
  const from = Date.now();
  const port = d.cdpPort;

  // no credentials at all: 407 with Proxy-Authenticate, before the upgrade
  let r = await rawUpgrade(port, {});
  assert.equal(r.status, 407);
  assert.match(r.headers['proxy-authenticate'] || '', /^Basic /i);
  assert.match(r.headers['content-type'], /application\/json/);
  assert.equal(typeof r.json.error, 'string');
  r = await wsConnect(`ws://127.0.0.1:${port}`);
  assert.equal(r.status, 407, 'the ws client sees 407');

  const cases = [
    ['wrong password', { password: d.creds.password + 'x' }],
    ['unknown zone', { zone: 'no_such_zone' }],
    ['unknown customer', { customer: 'nobody' }],
  ];
  for (const [what, o] of cases) {
    r = await wsConnect(d.wsEndpoint(o));
    assert.equal(r.status, 403, what);
    assert.match(r.headers['content-type'], /application\/json/, what);
    assert.equal(typeof r.json.error, 'string', what);
    assert.ok(r.json.error.length > 10, `${what}: a reason (${r.json.error})`);
    // the raw request sees the same
    const raw = await rawUpgrade(port, { Authorization: d.basicAuth(o) });
    assert.equal(raw.status, 403, `${what} (raw upgrade)`);
    assert.deepEqual(raw.json, r.json, `${what}: the same body`);
  }
  // a user name that is not brd-customer-<id>-zone-<zone>
  r = await wsConnect(`ws://someone:${d.creds.password}@127.0.0.1:${port}`);
  assert.equal(r.status, 403, 'malformed user name');
  // another scheme than Basic, or no password: the credentials are missing
  r = await rawUpgrade(port, { Authorization: 'Bearer ' + d.creds.apiKey });
  assert.equal(r.status, 407, 'Bearer on the CDP port');
  r = await rawUpgrade(port, { Authorization: d.basicAuth({ password: '' }) });
  assert.equal(r.status, 407, 'an empty password');

  // Puppeteer reports the refusal as an error mentioning the status
  // (puppeteer-core rejects with the ws ErrorEvent, whose message carries the status)
  await assert.rejects(puppeteer.connect({ browserWSEndpoint: d.wsEndpoint({ password: 'wrong' }) }), (e) => {
    const msg = e?.message ?? e?.error?.message ?? String(e);
    assert.match(msg, /403/);
    return true;
  });

  // nothing was recorded, and no browser was started (checked again at teardown)
  const list = await d.api('GET', '/browser_sessions');
  assert.equal(list.status, 200);
  assert.equal(list.json.total, 0, 'refused clients are not sessions');
  assert.deepEqual(d.chromiumMains(), []);

  // the right credentials in the Authorization header (no user info in the URL) work
  const good = await wsConnect(`ws://127.0.0.1:${port}`, { headers: { Authorization: d.basicAuth() } });
  assert.ok(good.ws, `upgrade with good credentials: ${good.status} ${good.body}`);
  const closed = wsClosed(good.ws);
  const { result } = await new Promise((resolve) => {
    good.ws.once('message', (m) => resolve(JSON.parse(m.toString())));
    good.ws.send(JSON.stringify({ id: 1, method: 'Browser.getSessionId' }));
  });
  good.ws.close(1000);
  await closed;
  const rec = await d.ended(result.sessionId);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'finished');
  assert.equal(rec.navigations, 0);
  assert.equal(rec.target_url, null, 'no navigation: target_url null');
  assert.equal(rec.end_url, null);
  assert.equal(rec.error, null);
});
