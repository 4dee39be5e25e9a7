'use strict';
// Security end to end (issue 15): what a session is billed for (Chromium's own background
// requests must not reach the session's proxy), with real Chromium sessions through browserd
// and a local site on 127.0.0.1 that counts the bytes browserd's proxy exchanged with it.
const assert = require('node:assert/strict');
const { e2e, requireClient, sleep, canIsolateDns, fakeDns } = require('./harness');
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
