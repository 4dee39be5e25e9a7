'use strict';
// Fault rows of the browser: Chromium SIGKILLed mid-navigation and mid-large-message, Chromium
// hung (SIGSTOP), a renderer crash. (Chromium SIGKILLed between navigations is
// tests/e2e/endings.test.js's "browser crash" test; this file adds the moments in between.)
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { fault, connect, assertNoLeaks, fdBaseline, checkRecord, waitFor, sleep, httpRequest } = require('./common');

fault('chromium SIGKILLed mid-navigation (a page still loading)', { ci: true, timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const fds = await fdBaseline(d);
  const from = Date.now();
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  const slow = s.page.goto(site.url('/slow?ms=20000')).then(() => 'loaded', (e) => e);
  await waitFor(() => site.requests.some((r) => r.url === '/slow?ms=20000'), { what: 'the slow request to arrive' });
  const mains = d.chromiumMains();
  assert.equal(mains.length, 1);
  process.kill(mains[0].pid, 'SIGKILL');
  await waitFor(() => s.state.disconnected, { timeout: 8000, what: 'the client to be disconnected' });
  const outcome = await slow;
  assert.notEqual(outcome, 'loaded', 'the navigation cannot have completed');
  const rec = await d.ended(s.sessionId);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'browser_disconnected');
  assert.equal(rec.navigations, 1, 'the navigation in flight never committed');
  assert.equal(rec.end_url, site.url('/p/1'));
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  return { records: `failed/browser_disconnected, navigations 1, end_url the last committed page`, leaks };
});

fault('chromium SIGKILLed mid-large-message (a 64 MB evaluate argument on its way to the pipe)', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const fds = await fdBaseline(d);
  const from = Date.now();
  const s = await connect(ctx, d, { protocolTimeout: 60000 });
  await s.page.goto(site.url('/p/1'));
  const big = crypto.randomBytes(48 << 20).toString('base64'); // 64 MiB of text
  let settled = false;
  const sent = s.page.evaluate((x) => x.length, big).then(
    (n) => ((settled = true), n),
    (e) => ((settled = true), e),
  );
  // the message is on its way: browserd has read part of it from the client (its CDP
  // connection's received bytes grow), Chromium has not answered
  const mains = d.chromiumMains();
  assert.equal(mains.length, 1);
  const readBytes = () => {
    try {
      return Number(/^rchar: (\d+)$/m.exec(require('node:fs').readFileSync(`/proc/${d.pid}/io`, 'latin1'))[1]);
    } catch {
      return 0;
    }
  };
  const before = readBytes();
  await waitFor(() => readBytes() - before > 8 << 20, { timeout: 20000, interval: 5, what: 'browserd to be reading the big message' });
  assert.equal(settled, false, 'the evaluate is still in flight at the kill');
  process.kill(mains[0].pid, 'SIGKILL');
  const outcome = await sent;
  assert.ok(outcome instanceof Error, `the evaluate failed (got ${outcome})`);
  await waitFor(() => s.state.disconnected, { timeout: 10000, what: 'the client to be disconnected' });
  const rec = await d.ended(s.sessionId);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'browser_disconnected');
  assert.equal(rec.navigations, 1);
  // browserd goes on serving
  const again = await connect(ctx, d);
  assert.equal(await again.page.evaluate(() => 6 * 7), 42);
  await again.browser.close();
  assert.equal((await d.ended(again.sessionId)).status, 'finished');
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  return { records: 'failed/browser_disconnected; the next session finished', leaks };
});

fault('chromium hung (SIGSTOP): browserd stays responsive; the client gives up and leaves; the stopped browser is killed', { ci: true, timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const fds = await fdBaseline(d);
  const from = Date.now();
  const s = await connect(ctx, d, { protocolTimeout: 3000 });
  await s.page.goto(site.url('/p/1'));
  const mains = d.chromiumMains();
  assert.equal(mains.length, 1);
  process.kill(mains[0].pid, 'SIGSTOP');
  ctx.defer(() => {
    try {
      process.kill(mains[0].pid, 'SIGCONT');
    } catch {
      // gone, as it should be
    }
  });
  const hung = await s.page.evaluate(() => 1).then(() => 'answered', (e) => e);
  assert.ok(hung instanceof Error && /timed out/i.test(hung.message), `the call times out (got ${hung})`);
  // browserd itself does not wait for the browser: the API and a second session work meanwhile
  assert.equal((await httpRequest({ port: d.apiPort, path: '/healthz' })).status, 200);
  assert.equal((await d.session(s.sessionId)).status, 'running');
  const other = await connect(ctx, d);
  await other.page.goto(site.url('/p/2'));
  await other.browser.close();
  assert.equal((await d.ended(other.sessionId)).status, 'finished');
  // the client leaves; the session ends and the stopped Chromium goes (SIGKILL needs no SIGCONT)
  await s.browser.disconnect();
  const rec = await d.ended(s.sessionId);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'finished', 'the client ended it');
  assert.equal(rec.navigations, 1);
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  return { records: 'finished (the client left), navigations 1; a second session meanwhile finished', leaks };
});

fault('renderer crash (chrome://crash): the page dies, the browser and the session go on', { ci: true, timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const fds = await fdBaseline(d);
  const from = Date.now();
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  let crashed = false;
  s.page.on('error', () => {
    crashed = true;
  });
  const nav = await s.page.goto('chrome://crash').then(() => 'navigated', (e) => e);
  await waitFor(() => crashed, { timeout: 10000, what: 'the page to report its crash' });
  assert.ok(nav instanceof Error || nav === 'navigated', String(nav));
  assert.equal(s.state.disconnected, false, 'the browser connection survives a renderer crash');
  assert.equal((await d.session(s.sessionId)).status, 'running');
  const page2 = await s.browser.newPage();
  await page2.goto(site.url('/p/3'));
  assert.equal(await page2.title(), 'three');
  await s.browser.close();
  const rec = await d.ended(s.sessionId);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'finished');
  assert.equal(rec.end_url, site.url('/p/3'));
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  return { records: `finished, navigations ${rec.navigations}, end_url the page after the crash`, leaks };
});
