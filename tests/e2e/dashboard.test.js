'use strict';
// The dashboard (GET /, docs/dashboard.md) in a real Chromium driven by Puppeteer, against a
// real browserd with imported sessions: the page's headers (CSP, nosniff), a wrong key, sign-in
// with the keyboard, the rows against what the API returns for the same query under every
// filter, sort and page, a bookmarked query, markup in the data shown as text, the charts'
// numbers against /browser_sessions/stats, a live session that appears and is ended from its
// details, and screenshots (desktop and 375 px) under the build directory's artifacts/.
//
// The viewer is a Chromium of its own (puppeteer.launch), not one of browserd's: it carries the
// daemon's BROWSERD_E2E_TAG so that the harness's leftover check covers it, and resolves no
// host name (everything it loads is on 127.0.0.1).

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const h = require('./harness');

const puppeteer = h.requireClient('puppeteer-core');
const ARTIFACTS = path.join(path.dirname(h.BIN), 'artifacts');
const CHROMIUM = process.env.BROWSERD_CHROMIUM || '/usr/bin/chromium';

const XSS_URL = 'https://xss.test/<img src=x onerror="window.__xss=1">';
const XSS_ZONE = '<b id="bold">zone</b>';

// ---------------------------------------------------------------- data ----

const uid = (n) => `0192f5e8-7b3c-7def-8a12-${String(n).padStart(12, '0')}`;
const HOSTS = ['https://www.example.com/a', 'https://example.com/', 'https://shop.example.org/cart', 'http://news.test/x',
  'https://www.example.com/b?q=1', null];
const CODES = ['page_navigated_error', 'session_timeout', 'browser_disconnected', 'job_killed'];

/** 140 ended sessions over 2025-12-01..03 of two zones (deterministic), and one with markup. */
function records() {
  const out = [];
  let x = 7; // mulberry32
  const rnd = (n) => {
    x = (x + 0x6d2b79f5) | 0;
    let z = Math.imul(x ^ (x >>> 15), 1 | x);
    z = (z + Math.imul(z ^ (z >>> 7), 61 | z)) ^ z;
    return (((z ^ (z >>> 14)) >>> 0) % n);
  };
  const base = Date.parse('2025-12-01T00:00:00Z');
  for (let n = 1; n <= 140; n++) {
    const failed = rnd(4) === 0;
    const target = HOSTS[rnd(HOSTS.length)];
    const end = target === null ? null : HOSTS[rnd(HOSTS.length - 1)];
    out.push({
      session_id: uid(n), api_name: rnd(3) === 0 ? 'scraping_browser2' : 'scraping_browser1',
      status: failed ? 'failed' : 'finished', target_url: target, end_url: end, navigations: target ? 1 + rnd(9) : 0,
      timestamp: new Date(base + rnd(3 * 24) * 3600e3 + rnd(3600) * 1000).toISOString(),
      duration: rnd(5) === 0 ? 3600 + rnd(7200) : rnd(120000) / 1000, captcha: ['none', 'detected', 'solved'][rnd(3)],
      bandwidth: rnd(5) === 0 ? 0 : rnd(50000000),
      error: failed ? { code: CODES[rnd(CODES.length)], message: `net::ERR_X at <i>${n}</i>` } : null,
    });
  }
  out.push({
    session_id: uid(999), api_name: XSS_ZONE, status: 'failed', target_url: XSS_URL, end_url: XSS_URL, navigations: 1,
    timestamp: '2025-12-02T12:00:00.000Z', duration: 1.5, captcha: 'none', bandwidth: 1234,
    error: { code: '<script>window.__xss=2</script>', message: '<img src=y onerror="window.__xss=3">' },
  });
  return out;
}

function importSessions(d, recs) {
  const r = spawnSync(h.BIN, ['--db', d.db, 'sessions', 'import', 'default', '-'], {
    input: recs.map((r) => JSON.stringify(r)).join('\n') + '\n', encoding: 'utf8',
  });
  assert.equal(r.status, 0, `import: ${r.stderr}`);
}

// ---------------------------------------------------------------- the viewer ----

async function viewer(ctx, d) {
  const args = ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--disable-background-networking'];
  if (process.getuid() === 0) args.push('--no-sandbox');
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true, args, userDataDir: path.join(d.root, 'viewer'),
    env: { ...process.env, BROWSERD_E2E_TAG: d.tag },
  });
  ctx.defer(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  const urls = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // a 401 or 400 answer is logged by Chromium as a failed resource: expected in the tests
    if (m.type() === 'error' && !/status of (400|401|409)/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('request', (r) => urls.push(r.url()));
  await page.setViewport({ width: 1280, height: 900 });
  return { browser, page, problems, urls };
}

const tableIds = (page) => page.$$eval('#sessions tbody tr[data-id]', (trs) => trs.map((tr) => tr.dataset.id));

async function apiList(d, query) {
  const r = await d.api('GET', `/browser_sessions${query ? `?${query}` : ''}`);
  assert.equal(r.status, 200, `GET /browser_sessions?${query}: ${r.status} ${r.text}`);
  return r.json;
}

/** Waits until the table holds exactly the API's page for `query` (and says its total). */
async function rowsEqualApi(page, d, query, what) {
  const want = await apiList(d, query);
  let got;
  await h.waitFor(async () => {
    got = await tableIds(page);
    const summary = await page.$eval('#summary', (e) => e.textContent);
    return JSON.stringify(got) === JSON.stringify(want.sessions.map((s) => s.session_id)) &&
      (want.total === 0 ? summary === 'No sessions' : summary.endsWith(`of ${want.total.toLocaleString('en-US')} sessions`));
  }, { timeout: 8000, what: `the table to show the API's page for ${query || '(no query)'} (${what})` }).catch((e) => {
    throw new Error(`${e.message}\nwant ${want.sessions.map((s) => s.session_id).join(' ')}\ngot  ${(got || []).join(' ')}`);
  });
  return want;
}

const pageQuery = (page) => new URL(page.url()).search.replace(/^\?/, '');

/** Types into a text field with the keyboard (clearing it first) and submits with Enter. */
async function typeAndSubmit(page, selector, text) {
  await page.focus(selector);
  await page.$eval(selector, (e) => e.select());
  await page.keyboard.press('Backspace');
  if (text) await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

async function selectByKeyboard(page, selector, value) {
  // a <select> takes the value and fires change as a user's choice does
  await page.select(selector, value);
}

// ---------------------------------------------------------------- the test ----

h.e2e('dashboard: sign-in, the table against the API under every filter, sort and page, live sessions, charts, escaping', { timeout: 180000 }, async (ctx) => {
  const t = ctx.t;
  const d = await ctx.daemon({ pool: 0 });
  const recs = records();
  importSessions(d, recs);
  const key = d.creds.apiKey;
  const origin = `http://127.0.0.1:${d.apiPort}`;
  const { page, problems, urls } = await viewer(ctx, d);

  await t.test('the page, its script and style: no key, strict CSP, nosniff, no inline code; other methods 405', async () => {
    const page1 = await h.httpRequest({ port: d.apiPort, path: '/' });
    assert.equal(page1.status, 200);
    assert.match(page1.headers['content-type'], /^text\/html; charset=utf-8$/);
    const csp = page1.headers['content-security-policy'];
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(page1.headers['x-content-type-options'], 'nosniff');
    assert.doesNotMatch(page1.text, /<script(?![^>]*\ssrc=)/, 'an inline script');
    assert.doesNotMatch(page1.text, /\son[a-z]+=|\sstyle=|<style/i, 'inline handlers or style');
    assert.doesNotMatch(page1.text, /\s(src|href)="(?![/#]|data:,")/, 'a resource from another origin');
    assert.equal((await h.httpRequest({ port: d.apiPort, path: '/dashboard' })).text, page1.text);
    const js = await h.httpRequest({ port: d.apiPort, path: '/dashboard/app.js' });
    assert.equal(js.status, 200);
    assert.match(js.headers['content-type'], /^text\/javascript/);
    assert.doesNotMatch(js.text, /\.(inner|outer)HTML\s*=|insertAdjacentHTML\(|document\.write|\beval\(|new Function/, 'markup from strings');
    assert.equal(js.headers['x-content-type-options'], 'nosniff');
    const css = await h.httpRequest({ port: d.apiPort, path: '/dashboard/app.css' });
    assert.match(css.headers['content-type'], /^text\/css/);
    const post = await h.httpRequest({ port: d.apiPort, method: 'POST', path: '/' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    // the rest of the API still wants a key
    assert.equal((await h.httpRequest({ port: d.apiPort, path: '/dashboard/nope' })).status, 401);
  });

  await t.test('a wrong key: a clear message, nothing shown', async () => {
    const res = await page.goto(`${origin}/`);
    assert.equal(res.status(), 200);
    await page.waitForSelector('#api-key', { visible: true });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'api-key', 'the key field has the focus');
    await page.keyboard.type('0'.repeat(64));
    await page.keyboard.press('Enter');
    await h.waitFor(async () => /not accepted/.test(await page.$eval('#signin-message', (e) => e.textContent)),
      { timeout: 5000, what: 'the wrong-key message' });
    assert.equal(await page.$eval('#signin-message', (e) => e.getAttribute('role')), 'alert');
    assert.equal(await page.$eval('#app', (e) => e.hidden), true);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  await t.test('sign in with the keyboard: the first page is the API\'s, every cell as text', async () => {
    await page.focus('#api-key');
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#sessions tbody tr[data-id]');
    const want = await rowsEqualApi(page, d, '', 'the default page');
    assert.equal(want.sessions.length, 50);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('browserd.apiKey')), key);
    const first = want.sessions[0];
    const cells = await page.$$eval('#sessions tbody tr:first-child td', (tds) => tds.map((td) => td.textContent));
    assert.equal(cells[0], first.timestamp.replace('T', ' ').replace('Z', ''));
    assert.equal(cells[2], first.status);
    assert.equal(cells[3], first.api_name);
    assert.equal(cells[4], first.target_url ?? '—');
    assert.equal(cells[6], String(first.navigations));
    assert.equal(cells[10], first.error ? first.error.code : '—');
  });

  await t.test('each filter changes the rows as the API does, and is kept in the URL', async () => {
    const cases = [
      ['#f-status', 'failed', 'status=failed'],
      ['#f-api_name', 'scraping_browser2', 'status=failed&api_name=scraping_browser2'],
      ['#f-api_name', '', 'status=failed'],
      ['#f-status', 'all', ''],
      ['#f-target_url', 'example.com', 'target_url=example.com'],
      ['#f-target_url', 'https://www.example.com/a', 'target_url=https%3A%2F%2Fwww.example.com%2Fa'],
      ['#f-target_url', '', ''],
      ['#f-end_url', 'shop.example.org', 'end_url=shop.example.org'],
      ['#f-end_url', '', ''],
      ['#f-start_date', '2025-12-02', 'start_date=2025-12-02'],
      ['#f-end_date', '2025-12-02T12:00:00Z', 'start_date=2025-12-02&end_date=2025-12-02T12%3A00%3A00Z'],
      ['#f-start_date', '2025-12-02T06:00:00+02:00', null], // a '+' typed is sent as %2B, as the API needs
      ['#f-start_date', '', 'end_date=2025-12-02T12%3A00%3A00Z'],
      ['#f-end_date', '', ''],
    ];
    for (const [sel, value, query] of cases) {
      if (sel === '#f-status') await selectByKeyboard(page, sel, value);
      else await typeAndSubmit(page, sel, value);
      if (query === null) {
        // a raw "+" offset typed into the field: the page encodes it (%2B), the API reads it
        await h.waitFor(async () => pageQuery(page).includes('start_date='), { what: 'the URL to change' });
        await rowsEqualApi(page, d, pageQuery(page), `${sel}=${value}`);
        continue;
      }
      await h.waitFor(async () => pageQuery(page) === query, { timeout: 5000, what: `the URL to say ${query} (is ${pageQuery(page)})` });
      const want = await rowsEqualApi(page, d, query, `${sel}=${value}`);
      if (query) assert.ok(want.total < recs.length, `${query} filters nothing out`);
    }
    // the filters narrow: a domain takes its subdomains, a prefix does not
    assert.ok((await apiList(d, 'target_url=example.com')).total > (await apiList(d, 'target_url=https://www.example.com/a')).total);
  });

  await t.test('a query the API refuses: its details are shown, not a stale table', async () => {
    await typeAndSubmit(page, '#f-start_date', 'yesterday');
    await h.waitFor(async () => /start_date: must be an RFC 3339 date-time or YYYY-MM-DD/.test(
      await page.$eval('#query-message', (e) => e.textContent)), { what: 'the 400 details' });
    assert.deepEqual(await tableIds(page), []);
    await typeAndSubmit(page, '#f-start_date', '');
    await rowsEqualApi(page, d, '', 'after clearing the bad date');
    assert.equal(await page.$eval('#query-message', (e) => e.textContent), '');
  });

  await t.test('each sort and order, from the form and from the column headers', async () => {
    for (const [sort, order] of [['duration', 'desc'], ['duration', 'asc'], ['bandwidth', 'asc'], ['bandwidth', 'desc'], ['timestamp', 'asc']]) {
      await selectByKeyboard(page, '#f-sort', sort);
      await selectByKeyboard(page, '#f-order', order);
      const q = [sort !== 'timestamp' && `sort=${sort}`, order !== 'desc' && `order=${order}`].filter(Boolean).join('&');
      await h.waitFor(async () => pageQuery(page) === q, { what: `the URL to say ${q}` });
      await rowsEqualApi(page, d, q, `${sort} ${order}`);
    }
    // a header button with the keyboard: bandwidth descending, then ascending
    await page.focus('button.sort[data-sort="bandwidth"]');
    await page.keyboard.press('Enter');
    await h.waitFor(async () => pageQuery(page) === 'sort=bandwidth', { what: 'sort=bandwidth from the header' });
    await rowsEqualApi(page, d, 'sort=bandwidth', 'the bandwidth header');
    assert.equal(await page.$eval('th[data-sort="bandwidth"]', (e) => e.getAttribute('aria-sort')), 'descending');
    await page.keyboard.press('Enter');
    await h.waitFor(async () => pageQuery(page) === 'sort=bandwidth&order=asc', { what: 'ascending from the header' });
    await rowsEqualApi(page, d, 'sort=bandwidth&order=asc', 'the bandwidth header again');
    await page.click('button.sort[data-sort="timestamp"]');
    await h.waitFor(async () => pageQuery(page) === '', { what: 'the default order back' });
  });

  await t.test('paging: next, last, previous, first, and the page size', async () => {
    await selectByKeyboard(page, '#f-limit', '25');
    await rowsEqualApi(page, d, 'limit=25', 'limit 25');
    await page.click('#page-next');
    await rowsEqualApi(page, d, 'limit=25&offset=25', 'page 2');
    await page.click('#page-last');
    const last = await rowsEqualApi(page, d, 'limit=25&offset=125', 'the last page');
    assert.equal(last.count, recs.length - 125);
    assert.equal(await page.$eval('#page-next', (e) => e.disabled), true);
    await page.click('#page-prev');
    await rowsEqualApi(page, d, 'limit=25&offset=100', 'the page before the last');
    await page.click('#page-first');
    await rowsEqualApi(page, d, 'limit=25', 'the first page');
    assert.equal(await page.$eval('#page-prev', (e) => e.disabled), true);
    // the back button walks the history of queries
    await page.goBack();
    await rowsEqualApi(page, d, 'limit=25&offset=100', 'back');
    await selectByKeyboard(page, '#f-limit', '50');
    await rowsEqualApi(page, d, '', 'limit 50 again');
  });

  await t.test('a bookmarked query opens as it was: the form filled, the API\'s rows', async () => {
    const q = 'status=failed&target_url=example.com&sort=duration&order=asc&limit=10&offset=10';
    await page.goto(`${origin}/dashboard?${q}`);
    await rowsEqualApi(page, d, q, 'the bookmark');
    assert.equal(await page.$eval('#f-status', (e) => e.value), 'failed');
    assert.equal(await page.$eval('#f-target_url', (e) => e.value), 'example.com');
    assert.equal(await page.$eval('#f-sort', (e) => e.value), 'duration');
    assert.equal(await page.$eval('#f-limit', (e) => e.value), '10');
    await page.click('#reset');
    await h.waitFor(async () => pageQuery(page) === '', { what: 'reset to clear the URL' });
    await rowsEqualApi(page, d, '', 'after reset');
  });

  await t.test('markup in the data is text: no element made of it, no script run', async () => {
    await typeAndSubmit(page, '#f-target_url', 'xss.test');
    const [row] = (await rowsEqualApi(page, d, 'target_url=xss.test', 'the markup row')).sessions;
    assert.equal(row.target_url, XSS_URL);
    const cells = await page.$$eval('#sessions tbody tr:first-child td', (tds) => tds.map((td) => td.textContent));
    assert.equal(cells[3], XSS_ZONE);
    assert.equal(cells[4], XSS_URL);
    assert.equal(cells[10], '<script>window.__xss=2</script>');
    await page.focus('#sessions tbody button.open');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#detail[open] #detail-fields dd');
    await h.waitFor(async () => (await page.$$eval('#detail-fields dd', (dds) => dds.map((x) => x.textContent))).includes(XSS_URL),
      { what: 'the details of the markup row' });
    const dds = await page.$$eval('#detail-fields dd', (x) => x.map((e) => e.textContent));
    assert.ok(dds.includes('<img src=y onerror="window.__xss=3">'), 'the error reason as text');
    assert.equal(await page.$$eval('#sessions img, #detail img, #sessions b, #detail script, #bold', (x) => x.length), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    // no End button for a session that is not running; Escape closes and the focus comes back
    assert.equal(await page.$eval('#end-box', (e) => e.hidden), true);
    await page.keyboard.press('Escape');
    await h.waitFor(() => page.$eval('#detail', (e) => !e.open), { what: 'the details to close' });
    assert.equal(await page.evaluate(() => document.activeElement.className), 'open');
    await typeAndSubmit(page, '#f-target_url', '');
  });

  await t.test('the charts show what /browser_sessions/stats answers for the same filters and range', async () => {
    await typeAndSubmit(page, '#f-start_date', '2025-12-01');
    await typeAndSubmit(page, '#f-end_date', '2025-12-02');
    await selectByKeyboard(page, '#chart-range', 'filter');
    await h.waitFor(async () => pageQuery(page) === 'start_date=2025-12-01&end_date=2025-12-02&chart=filter', { what: 'chart=filter in the URL' });
    const r = await d.api('GET', '/browser_sessions/stats?start_date=2025-12-01&end_date=2025-12-02&bucket=hour');
    assert.equal(r.status, 200);
    const st = r.json;
    assert.equal(st.buckets.length, 48);
    const rowsOf = (fig) => page.$$eval(`${fig} .data tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    const want = st.buckets.map((b) => [b.start.replace('T', ' ').replace('Z', ''), String(b.finished), String(b.failed), String(b.running)]);
    await h.waitFor(async () => JSON.stringify(await rowsOf('#chart-sessions')) === JSON.stringify(want), { what: 'the sessions chart\'s numbers' });
    assert.deepEqual(await rowsOf('#chart-bandwidth'), st.buckets.map((b) => [b.start.replace('T', ' ').replace('Z', ''), String(b.bandwidth)]));
    const errs = await rowsOf('#chart-errors');
    assert.deepEqual(errs.map((e) => [e[0], e[1]]), st.errors.map((e) => [e.code, String(e.count)]));
    assert.ok(errs.some((e) => e[0] === '<script>window.__xss=2</script>'), 'the markup code as text');
    // one bar group per bucket with sessions, and each bar's height in proportion
    const groups = await page.$$eval('#chart-sessions svg g', (gs) => gs.length);
    assert.equal(groups, 48);
    assert.equal(await page.$$eval('#chart-errors svg g', (gs) => gs.length), st.errors.length);
    // the stats agree with the list: their total is the list's total for the same filters
    assert.equal(st.total, (await apiList(d, 'start_date=2025-12-01&end_date=2025-12-02&limit=1')).total);
    await page.click('#reset');
    await selectByKeyboard(page, '#chart-range', '24h');
    await h.waitFor(async () => pageQuery(page) === '', { what: 'the defaults back' });
  });

  await t.test('a live session appears on its own and is ended from its details (confirmed)', async () => {
    await page.evaluate(() => { window.__sameDocument = true; });
    const client = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), protocolTimeout: 30000 });
    ctx.defer(() => client.disconnect());
    let disconnected = false;
    client.on('disconnected', () => { disconnected = true; });
    const cdp = await client.target().createCDPSession();
    const { sessionId } = await cdp.send('Browser.getSessionId');
    await h.waitFor(async () => (await tableIds(page))[0] === sessionId, { timeout: 10000, what: 'the live session at the top of the table' });
    assert.equal(await page.$eval('#sessions tbody tr:first-child', (tr) => tr.dataset.status), 'running');
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    await rowsEqualApi(page, d, '', 'with the live session');
    // its details, by keyboard; End asks first, Cancel keeps it running
    await page.focus(`#sessions tbody button.open[data-id="${sessionId}"]`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#end-session', { visible: true });
    await page.click('#end-session');
    await page.waitForSelector('#end-yes', { visible: true });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'end-no', 'Cancel has the focus: Enter does no harm');
    await page.keyboard.press('Enter');
    assert.equal(await page.$eval('#end-confirm', (e) => e.hidden), true);
    assert.equal((await d.session(sessionId)).status, 'running');
    await page.click('#end-session');
    await page.click('#end-yes');
    await h.waitFor(() => disconnected, { timeout: 15000, what: 'the client to be disconnected' });
    await h.waitFor(async () => /ended/.test(await page.$eval('#detail-message', (e) => e.textContent)), { what: 'the ended message' });
    const ended = await d.ended(sessionId);
    assert.equal(ended.error.code, 'job_killed');
    await h.waitFor(async () => (await page.$$eval('#detail-fields dd', (x) => x.map((e) => e.textContent))).includes('job_killed'),
      { timeout: 8000, what: 'the details to show job_killed' });
    await page.keyboard.press('Escape');
    await h.waitFor(async () => page.$eval('#sessions tbody tr:first-child', (tr) => tr.dataset.status === 'failed'),
      { timeout: 8000, what: 'the row to show the session failed' });
  });

  await t.test('every control is reached with Tab, in reading order', async () => {
    await page.focus('#sign-out');
    const seen = [];
    for (let i = 0; i < 24; i++) {
      await page.keyboard.press('Tab');
      seen.push(await page.evaluate(() => document.activeElement.id || document.activeElement.className || document.activeElement.tagName));
    }
    const order = ['f-status', 'f-api_name', 'f-target_url', 'f-end_url', 'f-start_date', 'f-end_date', 'f-sort', 'f-order', 'f-limit', 'reset'];
    let at = -1;
    for (const id of order) {
      const k = seen.indexOf(id);
      assert.ok(k > at, `${id} after the previous control (seen: ${seen.join(' ')})`);
      at = k;
    }
    assert.ok(seen.includes('sort'), 'the sortable headers');
    assert.ok(seen.includes('open'), 'the rows\' detail buttons');
  });

  await t.test('screenshots, desktop and 375 px wide; nothing wider than the screen', async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.goto(`${origin}/?chart=filter&start_date=2025-12-01&end_date=2025-12-03&limit=10`);
    await page.waitForSelector('#chart-sessions svg');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-desktop.png'), fullPage: true });
    await page.setViewport({ width: 375, height: 812 });
    await h.sleep(300);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 375, `the page is ${wide} px wide at 375 px`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-narrow.png'), fullPage: true });
    for (const f of ['dashboard-desktop.png', 'dashboard-narrow.png']) assert.ok(fs.statSync(path.join(ARTIFACTS, f)).size > 10000);
    await page.setViewport({ width: 1280, height: 900 });
  });

  await t.test('signing out forgets the key; the key was never in a URL nor in browserd\'s log', async () => {
    await page.click('#sign-out');
    await page.waitForSelector('#api-key', { visible: true });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.ok(urls.length > 20);
    assert.deepEqual(urls.filter((u) => u.includes(key)), []);
    assert.ok(!d.log.includes(key), 'the key in browserd\'s log');
    assert.deepEqual(problems, [], 'errors in the page');
  });
});
