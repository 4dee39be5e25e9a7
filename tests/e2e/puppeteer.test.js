'use strict';
// Puppeteer against browserd: a full session (every kind of navigation the contract names,
// screenshot, evaluate, popup, Browser.close) checked field by field through the API, and a
// 50 MB message in each direction.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { e2e, checkRecord, waitFor, requireClient, sha256 } = require('./harness');

const puppeteer = requireClient('puppeteer-core');

async function connect(d, extra = {}) {
  const browser = await puppeteer.connect({
    browserWSEndpoint: d.wsEndpoint(),
    defaultViewport: { width: 800, height: 600 },
    protocolTimeout: 60000,
    ...extra,
  });
  return browser;
}

/** Waits until the live record shows n navigations; returns it. */
async function liveRecord(d, id, n) {
  return waitFor(
    async () => {
      const s = await d.session(id);
      return s.navigations === n ? s : null;
    },
    { timeout: 5000, what: `the live record of ${id} to show ${n} navigations` },
  );
}

e2e('puppeteer: links, goto, reload, back/forward, form post, same-document changes, redirect, popup, screenshot, evaluate, Browser.close; every field of the record', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1 });
  const site = await ctx.pages();
  const from = Date.now();
  const browser = await connect(d);
  ctx.defer(() => browser.disconnect());
  const connectedAt = Date.now();
  let disconnected = false;
  browser.on('disconnected', () => {
    disconnected = true;
  });

  const page = await browser.newPage();
  const cdp = await page.createCDPSession();
  const { sessionId } = await cdp.send('Browser.getSessionId');
  // also answered on the browser-level session
  const bcdp = await browser.target().createCDPSession();
  assert.deepEqual(await bcdp.send('Browser.getSessionId'), { sessionId });

  // A running session is listed at once: running, nothing navigated yet.
  const first = await d.session(sessionId);
  checkRecord(first, { from, to: Date.now() });
  assert.equal(first.status, 'running');
  assert.equal(first.navigations, 0);
  assert.equal(first.target_url, null);
  assert.equal(first.end_url, null);
  assert.equal(first.duration, null);
  assert.equal(first.error, null);

  const url = (p) => site.url(p);
  // 1: Page.navigate
  await page.goto(url('/p/1'));
  // 2: a link
  await Promise.all([page.waitForNavigation(), page.click('#next')]);
  assert.equal(page.url(), url('/p/2'));
  // 3: reload
  await page.reload();
  // 4, 5: history traversals that load a document (the pages are no-store: no bfcache)
  await page.goBack();
  assert.equal(page.url(), url('/p/1'));
  await page.goForward();
  assert.equal(page.url(), url('/p/2'));
  let live = await liveRecord(d, sessionId, 5);
  assert.equal(live.status, 'running');
  assert.equal(live.target_url, url('/p/1'));
  assert.equal(live.end_url, url('/p/2'));
  // 6: a form post
  await page.click('#q', { count: 3 }); // select the field's text, then replace it
  await page.type('#q', 'hello world');
  await Promise.all([page.waitForNavigation(), page.click('#send')]);
  assert.equal(page.url(), url('/submit'));
  assert.equal(await page.$eval('#got', (e) => e.textContent), 'hello world');
  assert.ok(site.requests.some((r) => r.method === 'POST' && r.url === '/submit' && r.body === 'q=hello+world'));

  // screenshot and evaluate
  const png = await page.screenshot({ type: 'png' });
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
  assert.equal(png.readUInt32BE(16), 800, 'PNG width');
  assert.equal(png.readUInt32BE(20), 600, 'PNG height');
  assert.equal(await page.evaluate(() => document.title), 'submitted');
  assert.deepEqual(await page.evaluate((a, b) => ({ sum: a + b, href: location.href }), 2, 3), { sum: 5, href: url('/submit') });

  // internal pages: never counted, never target_url or end_url
  await page.goto('about:blank');
  await page.goto('data:text/html,<title>data</title>');
  assert.equal(await page.title(), 'data');

  // 7: a page, then same-document changes (fragment, pushState, location.hash): not counted
  await page.goto(url('/spa'));
  await page.click('#frag');
  await waitFor(() => page.evaluate(() => location.hash === '#section'), { what: 'the fragment' });
  await page.click('#push');
  await waitFor(() => page.evaluate(() => location.pathname === '/spa/pushed'), { what: 'pushState' });
  await page.evaluate(() => {
    location.hash = 'again';
  });
  await waitFor(() => page.evaluate(() => location.hash === '#again'), { what: 'location.hash' });
  live = await liveRecord(d, sessionId, 7);
  assert.equal(live.end_url, url('/spa'), 'end_url: the last counted navigation, not the pushState URL');

  // 8: a redirect chain (302 -> 301 -> 200) is one navigation with the final URL
  const res = await page.goto(url('/redirect/a'));
  assert.equal(res.url(), url('/landing?from=redirect'));
  assert.equal(res.request().redirectChain().length, 2);
  live = await liveRecord(d, sessionId, 8);
  assert.equal(live.end_url, url('/landing?from=redirect'));

  // 9: the opener; 10: a popup (window.open on a click) counts in whichever page it happens
  await page.goto(url('/popup'));
  const popupTarget = browser.waitForTarget((t) => t.url() === url('/popup/target'), { timeout: 10000 });
  await page.click('#open');
  const popup = await (await popupTarget).page();
  await popup.waitForFunction(() => document.readyState === 'complete' && document.title === 'popup');
  assert.equal(await popup.evaluate(() => !!window.opener), true);
  live = await liveRecord(d, sessionId, 10);
  assert.equal(live.end_url, url('/popup/target'));

  // 11: back in the first page
  await page.goto(url('/p/3'));
  live = await liveRecord(d, sessionId, 11);
  assert.equal(live.end_url, url('/p/3'));
  await popup.close();
  const list = await d.sessions('status=running');
  assert.deepEqual(list.map((s) => s.session_id), [sessionId]);

  const closingAt = Date.now();
  await browser.close(); // Browser.close
  await waitFor(() => disconnected, { timeout: 5000, what: 'puppeteer to see the disconnect' });
  const rec = await d.ended(sessionId);
  const to = Date.now();
  checkRecord(rec, { from, to, minDuration: (closingAt - connectedAt) / 1000 - 0.2, maxDuration: (to - from) / 1000 + 0.5 });
  assert.deepEqual(rec, {
    session_id: sessionId,
    api_name: 'scraping_browser1',
    status: 'finished',
    target_url: url('/p/1'),
    end_url: url('/p/3'),
    navigations: 11,
    timestamp: rec.timestamp,
    duration: rec.duration,
    captcha: 'none',
    bandwidth: rec.bandwidth,
    error: null,
  });
  // every page went through the session's traffic proxy (exact counts: traffic.test.js)
  assert.ok(rec.bandwidth > 0, `bandwidth ${rec.bandwidth} for 11 pages`);
  ctx.log(`recorded duration ${rec.duration} s, bandwidth ${rec.bandwidth}`);
  // the list agrees with the single record
  const all = await d.api('GET', '/browser_sessions');
  assert.equal(all.json.total, 1);
  assert.deepEqual(all.json.sessions[0], rec);
  assert.deepEqual(await d.sessions('status=finished&target_url=127.0.0.1'), [rec]);
});

e2e('puppeteer: 50 MB in each direction through page.evaluate arrives intact', { timeout: 120000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const browser = await connect(d, { protocolTimeout: 100000 });
  ctx.defer(() => browser.disconnect());
  const page = await browser.newPage();
  await page.goto(site.url('/blank')); // a secure context (loopback): crypto.subtle works

  const SIZE = 50 * 1024 * 1024 + 13;
  // base64 of random bytes: every byte of the string is ASCII and nothing repeats
  const big = crypto.randomBytes(Math.ceil((SIZE * 3) / 4)).toString('base64').slice(0, SIZE);
  assert.equal(big.length, SIZE);
  const hash = sha256(big);

  // client -> browser: a 50 MB argument; the page hashes what it received and keeps it
  const up = await page.evaluate(async (s) => {
    window.big = s;
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s));
    return { length: s.length, hash: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('') };
  }, big);
  assert.deepEqual(up, { length: SIZE, hash });

  // browser -> client: the same 50 MB string back (a 50 MB result message)
  const down = await page.evaluate(() => window.big);
  assert.equal(down.length, SIZE);
  assert.equal(sha256(down), hash);

  // and a string the page makes itself (different content; hashed on both sides)
  const made = await page.evaluate(async (n) => {
    const parts = [];
    let x = 12345;
    for (let i = 0; i < n / 1024; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      parts.push(x.toString(36).padStart(8, '0').repeat(128));
    }
    const s = parts.join('');
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s));
    return { s, hash: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('') };
  }, 50 * 1024 * 1024);
  assert.equal(made.s.length, 50 * 1024 * 1024);
  assert.equal(sha256(made.s), made.hash);

  // the session is still healthy afterwards
  assert.equal(await page.evaluate(() => 6 * 7), 42);
  const cdp = await page.createCDPSession();
  const { sessionId } = await cdp.send('Browser.getSessionId');
  await browser.disconnect(); // the client closes the WebSocket
  const rec = await d.ended(sessionId);
  assert.equal(rec.status, 'finished');
  assert.equal(rec.error, null);
  assert.equal(rec.navigations, 1);
  assert.equal(rec.end_url, site.url('/blank'));
});

e2e('puppeteer: an https navigation that fails right before Browser.close is the last navigation (page_navigated_error)', { timeout: 60000 }, async (ctx) => {
  // Chromium answers Page.navigate with the error before it commits its error page, and a
  // client typically closes at once: the failure must be recorded all the same.
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const browser = await connect(d);
  ctx.defer(() => browser.disconnect());
  const page = await browser.newPage();
  const { sessionId } = await (await page.createCDPSession()).send('Browser.getSessionId');
  await page.goto(site.url('/p/1'));
  const bad = 'https://no-such-host.invalid/path';
  // through browserd's proxy the failed CONNECT shows as ERR_TUNNEL_CONNECTION_FAILED;
  // without one Chromium says ERR_NAME_NOT_RESOLVED
  await assert.rejects(page.goto(bad), /net::ERR_(TUNNEL_CONNECTION_FAILED|NAME_NOT_RESOLVED)/);
  await browser.close();
  const rec = await d.ended(sessionId);
  assert.equal(rec.navigations, 2);
  assert.equal(rec.end_url, bad);
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'page_navigated_error');
  assert.match(rec.error.message, new RegExp(`^net::ERR_[A-Z_]+ at ${bad.replace(/[.?/]/g, '\\$&')}$`));
  ctx.log(`recorded error: ${rec.error.message}`);
});

e2e('a raw CDP client receives nothing it did not ask for: browserd\'s own observer (its attach, its page sessions) stays invisible, with a pooled browser and a launched one', { timeout: 60000 }, async (ctx) => {
  const { wsConnect, cdpCall, sleep } = require('./harness');
  for (const pool of [1, 0]) {
    const d = await ctx.daemon({ pool });
    if (pool) await waitFor(async () => (await d.poolBrowsers()) >= 1, { timeout: 20000, what: 'a warm browser' });
    const { ws } = await wsConnect(d.wsEndpoint());
    ctx.defer(() => ws.terminate());
    const unasked = [];
    ws.on('message', (m) => unasked.push(m.toString()));
    await sleep(1500); // the observer attaches, discovers the first page and auto-attaches to it meanwhile
    assert.deepEqual(unasked, [], `pool ${pool}: messages nobody asked for`);
    const v = await cdpCall(ws, 1, 'Browser.getVersion');
    assert.match(v.result.product, /Chrome/);
    const targets = await cdpCall(ws, 2, 'Target.getTargets');
    assert.ok(targets.result.targetInfos.some((t) => t.type === 'page'));
    assert.deepEqual(unasked.map((m) => JSON.parse(m).id), [1, 2], `pool ${pool}: only the two answers`);
    ws.close();
  }
});
