'use strict';
// Security end to end (issue 15): what a session is billed for (Chromium's own background
// requests must not reach the session's proxy), with real Chromium sessions through browserd
// and a local site on 127.0.0.1 that counts the bytes browserd's proxy exchanged with it; one
// customer's credentials against another's sessions and zones, from every door; and a flood of
// wrong passwords and keys (one answer for every kind of wrong, then 429 per source address).
const assert = require('node:assert/strict');
const { e2e, requireClient, sleep, waitFor, canIsolateDns, fakeDns, BIN, rawUpgrade, wsConnect, wsClosed, cdpCall } = require('./harness');
const H = require('./traffic_helpers');

const puppeteer = requireClient('puppeteer-core');

const ALLOW_LOOPBACK = ['--allow-private', '127.0.0.1/32'];
// Chromium's background requests came within the first 2-6 s of a browser's life (update
// checks, account and search-engine preconnects, optimisation hints): a session that lives
// this long after its page loaded gives each of them the time to show.
const QUIET_MS = 10000;

for (const pool of [0, 1]) {
  e2e(`billing truth (pool ${pool}): a session that loads one page is billed that page's bytes and the proxy-hop lines, nothing else`, { timeout: 90000 }, async (ctx) => {
    const PAGE = H.htmlOfSize(5000, 'billed');
    const site = await new H.Site({ '/page': H.fixed(PAGE) }).start();
    ctx.defer(() => site.close());
    const dns = canIsolateDns() ? await fakeDns() : null;
    const d = await ctx.daemon({ pool, args: ALLOW_LOOPBACK });
    if (pool) await sleep(QUIET_MS); // a warm browser's own life before any session: not billed to anyone
    const log = H.watchProxyLog(d);
    const logMark = log.length;
    const dnsMark = dns ? dns.queries.length : 0;

    const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), protocolTimeout: 60000 });
    ctx.defer(() => browser.disconnect());
    const page = await browser.newPage();
    const cdp = await page.createCDPSession();
    const { sessionId } = await cdp.send('Browser.getSessionId');
    const r = await page.goto(site.url('/page'));
    assert.equal(r.status(), 200);
    assert.equal(await page.title(), 'billed');
    await sleep(QUIET_MS);
    const live = await H.getBandwidth(cdp);
    await browser.close();
    const rec = await d.ended(sessionId);

    const s = site.front.snapshot();
    const paths = site.requests.map((q) => q.url);
    ctx.log(`site: ${paths.join(' ')}; ${s.received} in + ${s.sent} out; record bandwidth ${rec.bandwidth}`);
    const foreign = log.slice(logMark).map((l) => `${l.event} ${l.target} (${l.detail})`);
    assert.deepEqual(foreign, [], 'the proxy saw no request to a host other than the test site');
    if (dns) assert.deepEqual(dns.queries.slice(dnsMark), [], 'browserd resolved no name (the site is an IP address)');
    assert.ok(paths.includes('/page'), `the site served /page: ${paths}`);
    // the favicon (when Chromium asks for it) is a request of the page's: its bytes are in s.total
    const expected = s.total + site.requests.length * H.plainHop(site.origin);
    assert.equal(live.total, expected, `Browser.getBandwidth ${live.total} = site ${s.total} + ${site.requests.length} x hop`);
    assert.equal(rec.bandwidth, expected, `billed ${rec.bandwidth} = site ${s.total} + ${site.requests.length} x hop`);
  });
}

// ------------------------------------------------------------------ tenants ----

// The flooding client's own source address (any of 127.0.0.0/8 is this machine): the limit is
// per address, so the harness's own requests from 127.0.0.1 stay unaffected.
const FLOODER = '127.0.0.77';
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

e2e('tenant isolation: customer A\'s key cannot list, read or end B\'s session (the same 404 as a made-up id), A\'s zone password opens none of B\'s zones', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ pool: 0 });
  // B: another customer with a zone of the same name as A's, and a key
  H.cli(BIN, d.db, 'customer', 'add', 'cust_b');
  const keyB = H.cli(BIN, d.db, 'key', 'add', 'cust_b').trim();
  const pwB = H.cli(BIN, d.db, 'zone', 'add', 'cust_b', d.creds.zone).trim();
  const pwB2 = H.cli(BIN, d.db, 'zone', 'add', 'cust_b', 'b_only').trim();
  const A = { customer: d.creds.customer, zone: d.creds.zone, password: d.creds.password };
  const B = { customer: 'cust_b', zone: d.creds.zone, password: pwB };

  // every mix of A's and B's parts is refused, with the one 403 body
  const refused = [
    ['A\'s password for B\'s zone of the same name', { ...B, password: A.password }],
    ['A\'s password for B\'s other zone', { customer: 'cust_b', zone: 'b_only', password: A.password }],
    ['B\'s password for A\'s zone', { ...A, password: B.password }],
    ['B\'s other zone\'s password for B\'s first zone', { ...B, password: pwB2 }],
    ['A\'s customer with B\'s zone that A has not', { ...A, zone: 'b_only', password: pwB2 }],
  ];
  const bodies = new Set();
  for (const [what, o] of refused) {
    const r = await rawUpgrade(d.cdpPort, { Authorization: d.basicAuth(o) });
    assert.equal(r.status, 403, what);
    bodies.add(r.text);
  }
  assert.equal(bodies.size, 1, `one body for every refusal: ${[...bodies].join(' | ')}`);

  // B's own credentials open a session of B's
  const b = await wsConnect(d.wsEndpoint(B));
  assert.ok(b.ws, `B's credentials: ${b.status} ${b.body}`);
  const closedB = wsClosed(b.ws);
  const sidB = (await cdpCall(b.ws, 1, 'Browser.getSessionId')).result.sessionId;
  assert.match(sidB, UUID_V7);
  await H.settled(async () => (await d.api('GET', `/browser_sessions/${sidB}`, { key: keyB })).status, { stableFor: 200 });
  const own = await d.api('GET', `/browser_sessions/${sidB}`, { key: keyB });
  assert.equal(own.status, 200);
  assert.equal(own.json.session.status, 'running');

  // A's key: B's session is in no list, and GET and DELETE answer as for an id that never was
  const listA = await d.api('GET', '/browser_sessions?limit=100&status=running');
  assert.equal(listA.status, 200);
  assert.equal(listA.json.total, 0, 'A has no running session: B\'s is not counted');
  assert.ok(!listA.json.sessions.some((x) => x.session_id === sidB));
  const madeUp = '0190a1b2-c3d4-7e5f-8a9b-00000000beef';
  for (const method of ['GET', 'DELETE']) {
    const other = await d.api(method, `/browser_sessions/${sidB}`);
    const none = await d.api(method, `/browser_sessions/${madeUp}`);
    assert.equal(other.status, 404, `${method} B's session with A's key`);
    assert.deepEqual(other.json, { error: 'Session not found', session_id: sidB });
    assert.equal(none.status, 404);
    assert.deepEqual(other.json, { ...none.json, session_id: sidB }, `${method}: the same answer as a made-up id`);
    assert.equal(other.text.replace(sidB, madeUp), none.text, `${method}: byte for byte but the id`);
  }
  // B's session still runs after A's DELETE
  assert.equal((await cdpCall(b.ws, 2, 'Browser.getVersion')).result.product.slice(0, 6), 'Chrome');
  const still = await d.api('GET', `/browser_sessions/${sidB}`, { key: keyB });
  assert.equal(still.json.session.status, 'running');
  // and B's key sees nothing of A's
  const a = await wsConnect(d.wsEndpoint(A));
  assert.ok(a.ws);
  const closedA = wsClosed(a.ws);
  const sidA = (await cdpCall(a.ws, 1, 'Browser.getSessionId')).result.sessionId;
  assert.notEqual(sidA, sidB);
  await H.settled(async () => (await d.api('GET', `/browser_sessions/${sidA}`)).status, { stableFor: 200 });
  assert.equal((await d.api('GET', `/browser_sessions/${sidA}`, { key: keyB })).status, 404);
  const listB = await d.api('GET', '/browser_sessions?limit=100', { key: keyB });
  assert.deepEqual(listB.json.sessions.map((x) => x.session_id), [sidB]);
  a.ws.close(1000);
  b.ws.close(1000);
  await Promise.all([closedA, closedB]);
  await waitFor(async () => (await d.api('GET', `/browser_sessions/${sidB}`, { key: keyB })).json.session.status === 'finished',
    { timeout: 10000, what: 'B\'s session to end' });
});

// ------------------------------------------------------------------ floods ----

e2e('a flood of wrong zone passwords: one 403 for unknown customer, unknown zone and wrong password, then 429 with Retry-After for every attempt from that address (right ones too, the API too); other addresses go on', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ pool: 0, args: ['--auth-fail-limit', '4', '--auth-fail-refill', '3600'] });
  const from = { localAddress: FLOODER };
  const tries = [
    { password: d.creds.password + 'x' },
    { customer: 'nobody' },
    { zone: 'no_such_zone' },
    { customer: 'nobody', zone: 'no_such_zone', password: 'x' },
  ];
  const bodies = new Set();
  for (const o of tries) {
    const r = await rawUpgrade(d.cdpPort, { Authorization: d.basicAuth(o) }, from);
    assert.equal(r.status, 403, JSON.stringify(o));
    assert.equal(r.headers['retry-after'], undefined);
    bodies.add(r.text);
  }
  assert.equal(bodies.size, 1, `unknown customer, unknown zone and a wrong password answer alike: ${[...bodies].join(' | ')}`);
  // the fifth attempt, with the right credentials: refused before they are looked at
  const r = await rawUpgrade(d.cdpPort, { Authorization: d.basicAuth() }, from);
  assert.equal(r.status, 429);
  assert.match(r.headers['retry-after'], /^[1-9][0-9]*$/);
  assert.ok(Number(r.headers['retry-after']) <= 3600);
  assert.match(r.json.error, /Too many failed authentications/);
  // the API listener shares the table: the right key from that address waits as well
  const api = await d.api('GET', '/browser_sessions', from);
  assert.equal(api.status, 429);
  assert.match(api.headers['retry-after'], /^[1-9][0-9]*$/);
  assert.deepEqual(Object.keys(api.json), ['error']);
  assert.equal((await d.api('GET', '/healthz', { key: null, ...from })).status, 200, 'what needs no key is not limited');
  // nothing was started or recorded; another address (127.0.0.1) is not held back
  assert.deepEqual(d.chromiumMains(), []);
  assert.equal((await d.api('GET', '/browser_sessions')).json.total, 0);
  const ok = await wsConnect(d.wsEndpoint());
  assert.ok(ok.ws, `127.0.0.1 still connects: ${ok.status}`);
  const closed = wsClosed(ok.ws);
  ok.ws.close(1000);
  await closed;
});

e2e('a flood of wrong API keys: one 401 for unknown, revoked and malformed keys, then 429 with Retry-After, the CDP port too; other addresses go on', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ pool: 0, args: ['--auth-fail-limit', '3', '--auth-fail-refill', '3600'] });
  const from = { localAddress: FLOODER };
  const revoked = H.cli(BIN, d.db, 'key', 'add', 'default').trim();
  const revokedId = H.cli(BIN, d.db, 'key', 'list', 'default').split('\n').filter((l) => l.includes('key_')).pop().split(/\s+/)[0];
  H.cli(BIN, d.db, 'key', 'revoke', revokedId);
  assert.equal((await d.api('GET', '/browser_sessions', from)).status, 200, 'the right key works before the flood');
  const bodies = new Set();
  for (const key of ['0'.repeat(64), revoked, 'short']) {
    const r = await d.api('GET', '/browser_sessions', { key, ...from });
    assert.equal(r.status, 401, key);
    bodies.add(r.text);
  }
  assert.equal(bodies.size, 1, `one body: ${[...bodies].join(' | ')}`);
  const r = await d.api('GET', '/browser_sessions', from);
  assert.equal(r.status, 429, 'the right key, from the flooding address');
  assert.match(r.headers['retry-after'], /^[1-9][0-9]*$/);
  const cdp = await rawUpgrade(d.cdpPort, { Authorization: d.basicAuth() }, from);
  assert.equal(cdp.status, 429);
  assert.equal((await d.api('GET', '/browser_sessions')).status, 200, '127.0.0.1 is not held back');
});
