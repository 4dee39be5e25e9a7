'use strict';
// Playwright (connectOverCDP) against browserd: a session whose last navigation fails
// (failed / page_navigated_error), and one whose failed navigations are followed by a good one.
const assert = require('node:assert/strict');
const { e2e, checkRecord, waitFor, requireClient, canIsolateDns, fakeDns, freePort } = require('./harness');

const { chromium } = requireClient('playwright-core');
const noDns = !canIsolateDns() && 'needs root for a private resolver (unshare -m): no DNS query may leave the machine';

/**
 * A navigation that must fail with `code` (e.g. ERR_NAME_NOT_RESOLVED). What the client sees
 * depends on who failed: Chromium itself rejects the goto with net::<code>; browserd's traffic
 * proxy (plain HTTP) answers with its own error page, marked X-Browserd-Proxy-Error: <code>,
 * which Chromium shows like any page. Either way the record must show a failed navigation.
 */
async function failedGoto(page, url, code) {
  const outcome = await page.goto(url).then(
    async (res) => ({ status: res.status(), proxyError: (await res.allHeaders())['x-browserd-proxy-error'] }),
    (e) => ({ error: e.message.split('\n')[0] }),
  );
  if (outcome.error) assert.match(outcome.error, new RegExp(`net::${code}`));
  else assert.equal(outcome.proxyError, code, `the proxy's error page for ${url}: ${JSON.stringify(outcome)}`);
}

e2e('playwright over http:// (discovery): link, form post, redirect, same-document changes, popup, screenshot, failed navigation last -> page_navigated_error', { timeout: 90000, skip: noDns }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1 });
  const site = await ctx.pages();
  const url = (p) => site.url(p);
  const from = Date.now();
  const browser = await chromium.connectOverCDP(d.httpEndpoint(), { timeout: 20000 });
  ctx.defer(() => browser.close());
  const connectedAt = Date.now();
  let disconnected = false;
  browser.on('disconnected', () => {
    disconnected = true;
  });
  const cdp = await browser.newBrowserCDPSession();
  const { sessionId } = await cdp.send('Browser.getSessionId');
  const context = browser.contexts()[0];
  assert.ok(context, 'the default context');
  const page = await context.newPage();
  // also through a page session
  const pcdp = await context.newCDPSession(page);
  assert.deepEqual(await pcdp.send('Browser.getSessionId'), { sessionId });

  await page.goto(url('/p/1')); // 1
  await Promise.all([page.waitForURL(url('/p/2')), page.click('#next')]); // 2
  await page.fill('#q', 'from playwright');
  await Promise.all([page.waitForURL(url('/submit')), page.click('#send')]); // 3
  assert.equal(await page.textContent('#got'), 'from playwright');
  const res = await page.goto(url('/redirect/a')); // 4: one navigation, the final URL
  assert.equal(res.url(), url('/landing?from=redirect'));
  await page.goto(url('/spa')); // 5
  await page.click('#frag');
  await page.click('#push');
  await page.waitForURL(url('/spa/pushed?x=1'));
  await page.goto('about:blank');
  await page.goto(url('/popup')); // 6
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#open')]); // 7
  await popup.waitForLoadState('load');
  assert.equal(await popup.title(), 'popup');
  const shot = await page.screenshot();
  assert.equal(shot.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
  assert.equal(await page.evaluate(() => document.title), 'opener');

  const live = await waitFor(
    async () => {
      const s = await d.session(sessionId);
      return s.navigations === 7 ? s : null;
    },
    { timeout: 5000, what: '7 navigations in the live record' },
  );
  assert.equal(live.status, 'running');
  assert.equal(live.end_url, url('/popup/target'));

  // 8: the last navigation fails (name not resolved; the private resolver says NXDOMAIN)
  const bad = 'http://no-such-host.invalid/some/path?q=1';
  await failedGoto(page, bad, 'ERR_NAME_NOT_RESOLVED');
  assert.ok((await fakeDns()).queries.includes('no-such-host.invalid'), 'the lookup went to the private resolver');
  const closingAt = Date.now();
  await browser.close(); // for a connected browser: disconnects (the client closes the WebSocket)
  await waitFor(() => disconnected, { timeout: 5000, what: 'the disconnect' });
  const rec = await d.ended(sessionId);
  const to = Date.now();
  checkRecord(rec, { from, to, minDuration: (closingAt - connectedAt) / 1000 - 0.2 });
  assert.deepEqual(rec, {
    session_id: sessionId,
    api_name: 'scraping_browser1',
    status: 'failed',
    target_url: url('/p/1'),
    end_url: bad,
    navigations: 8,
    timestamp: rec.timestamp,
    duration: rec.duration,
    captcha: 'none',
    bandwidth: rec.bandwidth,
    error: { code: 'page_navigated_error', message: `net::ERR_NAME_NOT_RESOLVED at ${bad}` },
  });
});

e2e('playwright over ws://: failed navigations (name not resolved, connection refused) earlier, a good one last -> finished', { timeout: 60000, skip: noDns }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const browser = await chromium.connectOverCDP(d.wsEndpoint(), { timeout: 20000 });
  ctx.defer(() => browser.close());
  const cdp = await browser.newBrowserCDPSession();
  const { sessionId } = await cdp.send('Browser.getSessionId');
  const page = await browser.contexts()[0].newPage();
  // Chromium answers Page.navigate with the error before it commits the error page; a next
  // goto started in between is interrupted by that commit, so wait for it (client side).
  const errorPage = () => page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame(), timeout: 5000 });
  const bad = 'http://nothing-here.invalid/';
  let committed = errorPage();
  await failedGoto(page, bad, 'ERR_NAME_NOT_RESOLVED');
  await committed;
  const s = await waitFor(async () => {
    const r = await d.session(sessionId);
    return r.navigations === 1 ? r : null;
  }, { what: 'the failed navigation to count' });
  assert.equal(s.target_url, bad, 'a failed navigation counts, with the URL attempted');
  assert.equal(s.end_url, bad);
  assert.equal(s.status, 'running');
  assert.equal(s.error, null, 'no error while running');
  const closed = `http://127.0.0.1:${await freePort()}/refused`;
  committed = errorPage();
  await failedGoto(page, closed, 'ERR_CONNECTION_REFUSED');
  await committed;
  await page.goto(site.url('/p/3'));
  await browser.close();
  const rec = await d.ended(sessionId);
  assert.equal(rec.status, 'finished');
  assert.equal(rec.error, null);
  assert.equal(rec.navigations, 3);
  assert.equal(rec.target_url, bad);
  assert.equal(rec.end_url, site.url('/p/3'));
});
