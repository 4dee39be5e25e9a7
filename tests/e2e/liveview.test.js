'use strict';
// The live view (Page.inspect, docs/liveview.md) with real Chromium on both ends: a Puppeteer
// session's page, and a second Chromium of the test's own (puppeteer.launch) that opens the
// live URL. It sees frames that change with the page; through a view with input it clicks a
// button, types and scrolls on the remote page and the page sees it; a read-only view's click
// does nothing; wrong tokens get one and the same 404; one screencast serves two viewers and
// stops with the last; the session's bandwidth does not move while it is watched; the views
// close (with a reason) when the session ends, and the token dies with it.
//
// The viewer Chromium carries the daemon's BROWSERD_E2E_TAG so that the harness's leftover
// check covers it, and resolves no host name (everything it loads is on 127.0.0.1).

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');

const h = require('./harness');

const puppeteer = h.requireClient('puppeteer-core');
const CHROMIUM = process.env.BROWSERD_CHROMIUM || '/usr/bin/chromium';

async function viewerBrowser(ctx, d) {
  const args = ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--disable-background-networking'];
  if (process.getuid() === 0) args.push('--no-sandbox');
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true, args, userDataDir: path.join(d.root, 'viewer'),
    env: { ...process.env, BROWSERD_E2E_TAG: d.tag }, defaultViewport: { width: 1200, height: 900 },
  });
  ctx.defer(() => browser.close());
  return browser;
}

/** Opens a live URL in a tab of the viewer browser; waits for its first frame. */
async function openView(vbrowser, url) {
  const page = await vbrowser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  const r = await page.goto(url);
  assert.equal(r.status(), 200, 'the viewer page');
  await page.waitForFunction(() => Number(document.body.dataset.frames) >= 1, { timeout: 15000 });
  return { page, problems };
}

const imgSrc = (page) => page.$eval('#screen', (img) => img.src);

/** Where a point of the session's page (CSS px of an 800x600 viewport) is in the view. */
async function viewPoint(view, x, y) {
  const r = await view.page.$eval('#screen', (img) => {
    const b = img.getBoundingClientRect();
    return { left: b.left, top: b.top, width: b.width, height: b.height };
  });
  return { x: r.left + (x / 800) * r.width, y: r.top + (y / 600) * r.height };
}

function upgrade(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: p, agent: false,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64') },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode });
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

const get = (d, p) => h.httpRequest({ port: d.cdpPort, path: p });

// spellcheck="false": typing into a field with spell checking on makes Chromium fetch a
// dictionary (redirector.gvt1.com) through the session's proxy, ~700 bytes billed that have
// nothing to do with the live view (seen once in this test; a billing matter of its own).
const PAGE = `
  <button id="b" style="position:absolute;left:100px;top:100px;width:200px;height:100px">press</button>
  <input id="t" spellcheck="false" autocomplete="off" style="position:absolute;left:100px;top:300px;width:300px;height:40px">
  <div style="height:5000px"></div>`;

e2e_liveview();

function e2e_liveview() {
  h.e2e('live view: frames that follow the page, input through the view, read-only, wrong tokens, one screencast, bandwidth, the end', { timeout: 120000 }, async (ctx) => {
    const d = await ctx.daemon({ site: true, pool: 1 });
    const site = await ctx.pages();
    const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), defaultViewport: { width: 800, height: 600 } });
    ctx.defer(() => browser.disconnect());
    const page = await browser.newPage();
    await page.goto(site.url('/blank'), { waitUntil: 'networkidle0' });
    await page.evaluate((html) => {
      document.body.innerHTML = html;
      window.clicks = 0;
      document.getElementById('b').addEventListener('click', () => { window.clicks++; });
    }, PAGE);
    const cdp = await page.createCDPSession();
    const { sessionId } = await cdp.send('Browser.getSessionId');

    // bad params: -32602 with a clear message
    await assert.rejects(cdp.send('Page.inspect', { input: 'yes' }), /params\.input must be a boolean/);
    await assert.rejects(cdp.send('Page.inspect', [1]), /params must be an object/);

    const { url: roUrl } = await cdp.send('Page.inspect');
    const { url: rwUrl } = await cdp.send('Page.inspect', { input: true });
    const re = new RegExp(`^http://127\\.0\\.0\\.1:${d.cdpPort}/live/[0-9a-f]{64}$`);
    assert.match(roUrl, re);
    assert.match(rwUrl, re);
    assert.notEqual(roUrl, rwUrl, 'a token per grant');
    // the browser-level session asks for the session's page too
    const bcdp = await browser.target().createCDPSession();
    assert.match((await bcdp.send('Page.inspect')).url, re);

    // nobody watches: nothing is encoded
    assert.deepEqual(await d.gauges('browserd_liveview_viewers', 'browserd_liveview_screencasts'), [0, 0]);
    const bw0 = (await cdp.send('Browser.getBandwidth')).bandwidth.total;
    assert.ok(bw0 > 0, 'the page itself was billed');

    const vbrowser = await viewerBrowser(ctx, d);
    const ro = await openView(vbrowser, roUrl);
    assert.equal(await ro.page.$eval('#mode', (e) => e.textContent), 'read-only');
    assert.deepEqual(await d.gauges('browserd_liveview_viewers', 'browserd_liveview_screencasts'), [1, 1]);

    // frames follow the page
    const before = await imgSrc(ro.page);
    await page.evaluate(() => { document.body.style.background = 'rgb(200, 30, 30)'; });
    await ro.page.waitForFunction((src) => document.getElementById('screen').src !== src, { timeout: 15000 }, before);

    // a read-only view's click is dropped (and said so)
    const button = await viewPoint(ro, 200, 150);
    await ro.page.mouse.click(button.x, button.y);
    await ro.page.waitForFunction(() => Number(document.body.dataset.refused) >= 1, { timeout: 10000 });

    // a view with input: a second viewer of the same page, still one screencast
    const rw = await openView(vbrowser, rwUrl);
    assert.equal(await rw.page.$eval('#mode', (e) => e.textContent), 'input allowed');
    assert.deepEqual(await d.gauges('browserd_liveview_viewers', 'browserd_liveview_screencasts'), [2, 1]);
    const b2 = await viewPoint(rw, 200, 150);
    await rw.page.mouse.click(b2.x, b2.y);
    await h.waitFor(async () => (await page.evaluate(() => window.clicks)) >= 1, { what: 'the click through the view' });
    // keys: click into the field, type
    const field = await viewPoint(rw, 250, 320);
    await rw.page.mouse.click(field.x, field.y);
    await h.waitFor(async () => page.evaluate(() => document.activeElement && document.activeElement.id === 't'),
      { what: 'the field focused through the view' });
    await rw.page.keyboard.type('hi!');
    await h.waitFor(async () => (await page.evaluate(() => document.getElementById('t').value)) === 'hi!',
      { what: 'the text typed through the view' });
    // wheel: the page scrolls
    await rw.page.mouse.move(b2.x, b2.y + 200);
    await rw.page.mouse.wheel({ deltaY: 600 });
    await h.waitFor(async () => (await page.evaluate(() => window.scrollY)) > 0, { what: 'the page scrolled through the view' });
    // exactly the one click: the read-only view's never landed
    assert.equal(await page.evaluate(() => window.clicks), 1);

    // wrong tokens: one and the same 404, on the page and on its WebSocket
    const tok = rwUrl.split('/').pop();
    const wrong = tok.slice(0, -1) + (tok.endsWith('0') ? '1' : '0');
    const answers = [];
    for (const p of [`/live/${wrong}`, `/live/${'0'.repeat(64)}`, '/live/short', `/live/${tok}/other`]) {
      const r = await get(d, p);
      assert.equal(r.status, 404, p);
      answers.push(r.text);
    }
    assert.equal(new Set(answers).size, 1, 'no hint which wrong token came close');
    assert.equal((await upgrade(d.cdpPort, `/live/${wrong}/ws`)).status, 404);
    assert.equal((await get(d, '/live/viewer.js')).status, 200);
    // the log never holds a token
    assert.ok(!d.log.includes(tok) && !d.log.includes(wrong), 'no token in the log');

    // the frames travel over the pipe: the session's bandwidth has not moved while watched
    const [sent] = await d.gauges('browserd_liveview_frames_sent_total');
    assert.ok(sent >= 3, `frames sent ${sent}`);
    assert.equal((await cdp.send('Browser.getBandwidth')).bandwidth.total, bw0, 'watching costs the session nothing');

    // the dashboard's way in: POST /browser_sessions/{id}/live with the API key
    const viaApi = await d.api('POST', `/browser_sessions/${sessionId}/live?input=true`);
    assert.equal(viaApi.status, 200, viaApi.text);
    assert.match(viaApi.json.url, re);
    assert.equal((await get(d, new URL(viaApi.json.url).pathname)).status, 200);
    assert.equal((await d.api('GET', `/browser_sessions/${sessionId}/live`)).status, 405);
    assert.equal((await d.api('POST', `/browser_sessions/${sessionId}/live`, { key: null })).status, 401);
    assert.equal((await d.api('POST', '/browser_sessions/0192f5e8-7b3c-7def-8a12-000000000001/live')).status, 404);

    // the dashboard: a running session's details have a live view button that opens one
    const dash = await vbrowser.newPage();
    await dash.goto(`http://127.0.0.1:${d.apiPort}/`);
    await dash.waitForSelector('#api-key', { visible: true });
    await dash.type('#api-key', d.creds.apiKey);
    await dash.keyboard.press('Enter');
    await dash.waitForSelector(`#sessions tbody button.open[data-id="${sessionId}"]`);
    await dash.click(`#sessions tbody button.open[data-id="${sessionId}"]`);
    await dash.waitForSelector('#live-view', { visible: true });
    // what the button opens (a new tab, window.open) is caught and opened in a tab of the test's own
    await dash.evaluate(() => { window.open = (u) => { window.__opened = u; return null; }; });
    await dash.click('#live-view');
    await dash.waitForFunction(() => typeof window.__opened === 'string', { timeout: 10000 });
    const dashUrl = await dash.evaluate(() => window.__opened);
    assert.match(dashUrl, re);
    const fromDash = await openView(vbrowser, dashUrl);
    assert.equal(await fromDash.page.$eval('#mode', (e) => e.textContent), 'read-only');
    await fromDash.page.close();
    await dash.close();
    await h.waitFor(async () => JSON.stringify(await d.gauges('browserd_liveview_viewers', 'browserd_liveview_screencasts')) === '[2,1]',
      { what: 'the dashboard\'s view gone' });

    // the last viewer that leaves stops the screencast
    await ro.page.close();
    await h.waitFor(async () => (await d.gauges('browserd_liveview_viewers'))[0] === 1, { what: 'one viewer left' });
    assert.deepEqual(await d.gauges('browserd_liveview_screencasts'), [1]);
    await rw.page.close();
    await h.waitFor(async () => (await d.gauges('browserd_liveview_screencasts'))[0] === 0, { what: 'the screencast stopped with the last viewer' });
    assert.deepEqual(await d.gauges('browserd_liveview_viewers'), [0]);
    // the token lives on with its session: a new viewer starts the screencast again
    const again = await openView(vbrowser, rwUrl);
    assert.deepEqual(await d.gauges('browserd_liveview_viewers', 'browserd_liveview_screencasts'), [1, 1]);

    // the session ends: the view closes with a reason, the token dies
    await browser.close();
    await again.page.waitForFunction(() => document.body.dataset.state === 'closed', { timeout: 10000 });
    assert.equal(await again.page.evaluate(() => document.body.dataset.closeReason), 'session ended');
    assert.equal((await get(d, `/live/${tok}`)).status, 404, 'the token died with the session');
    assert.deepEqual(await d.gauges('browserd_liveview_viewers', 'browserd_liveview_screencasts'), [0, 0]);
    const after = await d.api('POST', `/browser_sessions/${sessionId}/live`);
    assert.equal(after.status, 409, 'no live view of an ended session');
    const rec = await d.ended(sessionId);
    assert.equal(rec.status, 'finished');
    assert.equal(rec.bandwidth, bw0, 'the record is billed the page, not its live view');
    assert.deepEqual([...ro.problems, ...rw.problems, ...again.problems], []);
  });

  h.e2e('live view off: Page.inspect refused, /live is 404', { timeout: 60000 }, async (ctx) => {
    const d = await ctx.daemon({ site: true, pool: 0, args: ['--live-view', 'off'] });
    const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint() });
    ctx.defer(() => browser.disconnect());
    const page = await browser.newPage();
    const cdp = await page.createCDPSession();
    await assert.rejects(cdp.send('Page.inspect'), /live view is off/);
    const { sessionId } = await cdp.send('Browser.getSessionId');
    const r = await d.api('POST', `/browser_sessions/${sessionId}/live`);
    assert.equal(r.status, 409);
    assert.equal(r.json.error, 'Live view is off');
    assert.equal((await get(d, '/live/viewer.js')).status, 404);
    await browser.close();
  });
}
