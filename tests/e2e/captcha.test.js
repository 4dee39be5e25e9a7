'use strict';
// Captchas (docs/captcha.md) with real Chromium and real Puppeteer: detection of each kind from
// browserd's own isolated world, the record's captcha field, solving through a real local
// solver service (captcha_site.js: its stand-ins for the vendors' scripts and what they stand
// in for), and the Captcha CDP domain on the client's own connection.
const assert = require('node:assert/strict');
const { e2e, waitFor, requireClient, checkRecord, wsConnect, cdpCall } = require('./harness');
const { CaptchaSite, Solver, KINDS } = require('./captcha_site');

const puppeteer = requireClient('puppeteer-core');
const KEY = 'solver-key-e2e';

async function site(ctx) {
  const s = await new CaptchaSite().start();
  ctx.finally(() => s.close());
  return s;
}

async function solver(ctx, opts = {}) {
  const s = await new Solver({ key: KEY, ...opts }).start();
  ctx.finally(() => s.close());
  return s;
}

function daemon(ctx, { solverUrl, args = [] } = {}) {
  return ctx.daemon({
    site: true,
    pool: 1,
    args: [...(solverUrl ? ['--captcha-solver', solverUrl] : []), ...args],
    env: solverUrl ? { BROWSERD_CAPTCHA_SOLVER_KEY: KEY } : {},
  });
}

/** A session: a page and its CDP session (the client's page session), every Captcha.* event kept. */
async function open(ctx, d) {
  const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), protocolTimeout: 60000 });
  ctx.defer(() => browser.disconnect());
  const page = await browser.newPage();
  const cdp = await page.createCDPSession();
  const events = [];
  for (const name of ['Captcha.detected', 'Captcha.solveFinished', 'Captcha.solveFailed'])
    cdp.on(name, (params) => events.push({ name, ...params }));
  const { sessionId } = await cdp.send('Browser.getSessionId');
  return { browser, page, cdp, events, sessionId };
}

/** Closes the session and answers its final record. */
async function finish(d, s) {
  await s.browser.close();
  return d.ended(s.sessionId);
}

e2e('captcha: each kind without a solver is detected (record and Captcha.detected); a page without one, or one spoofing the markers from its own scripts, stays none', { timeout: 240000 }, async (ctx) => {
  const web = await site(ctx);
  const d = await daemon(ctx);
  for (const [kind, k] of Object.entries(KINDS)) {
    const from = Date.now();
    const s = await open(ctx, d);
    await s.page.goto(web.url(k.path));
    await waitFor(() => s.events.find((e) => e.name === 'Captcha.detected'), { timeout: 15000, what: `Captcha.detected for ${kind}` });
    const ev = s.events.find((e) => e.name === 'Captcha.detected');
    assert.equal(ev.type, kind);
    assert.equal(ev.sitekey, k.sitekey);
    assert.equal(ev.url, web.url(k.path));
    // no solver: waitForSolve says the captcha will not be solved
    assert.deepEqual(await s.cdp.send('Captcha.waitForSolve', { detectTimeout: 1000 }), { status: 'invalid' });
    const rec = await finish(d, s);
    assert.equal(rec.captcha, 'detected', `${kind}: ${JSON.stringify(rec)}`);
    assert.equal(rec.status, 'finished');
    assert.equal(rec.error, null, 'the error is independent of the captcha');
    assert.ok(!s.events.some((e) => e.name !== 'Captcha.detected'), JSON.stringify(s.events));
    ctx.log(`${kind}: detected (${Date.now() - from} ms)`);
  }
  for (const p of ['/p/none', '/p/spoof']) {
    const from = Date.now();
    const s = await open(ctx, d);
    // no look happens: not even the isolated world of one appears (docs/captcha.md)
    const worlds = [];
    s.cdp.on('Runtime.executionContextCreated', (e) => worlds.push(e.context.name));
    await s.cdp.send('Runtime.enable');
    await s.page.goto(web.url(p));
    // the spoofing page's markers are all in place before it is asked
    if (p === '/p/spoof') await s.page.waitForFunction(() => document.querySelector('.g-recaptcha') && window.grecaptcha);
    assert.deepEqual(await s.cdp.send('Captcha.solve', { detectTimeout: 2000 }), { status: 'not_detected' });
    const rec = await finish(d, s);
    checkRecord(rec, { from, to: Date.now() }); // captcha none, with every other check
    assert.deepEqual(s.events, []);
    assert.ok(worlds.length > 0 && !worlds.includes('browserd-captcha'), JSON.stringify(worlds));
  }
});

e2e('captcha: with the solver the token reaches the page, the site accepts it, the record says solved', { timeout: 200000 }, async (ctx) => {
  const web = await site(ctx);
  const sol = await solver(ctx);
  web.accept = (t) => sol.issued.has(t);
  const d = await daemon(ctx, { solverUrl: sol.url });
  const types = {
    recaptcha: 'RecaptchaV2TaskProxyless',
    recaptcha_invisible: 'RecaptchaV2TaskProxyless',
    recaptcha_enterprise: 'RecaptchaV2EnterpriseTaskProxyless',
    hcaptcha: 'HCaptchaTaskProxyless',
    turnstile: 'TurnstileTaskProxyless',
  };
  for (const [kind, type] of Object.entries(types)) {
    const k = KINDS[kind];
    const s = await open(ctx, d);
    await s.page.goto(web.url(k.path));
    assert.deepEqual(await s.cdp.send('Captcha.waitForSolve', { detectTimeout: 15000 }), { status: 'solve_finished' });
    const task = sol.created.at(-1);
    assert.equal(task.type, type);
    assert.equal(task.websiteKey, k.sitekey);
    assert.equal(task.websiteURL, web.url(k.path));
    assert.equal(!!task.isInvisible, kind === 'recaptcha_invisible');
    // the widget's callback got the token, and the form posts it in the widget's field
    const token = await s.page.evaluate(() => window.solvedToken);
    assert.ok(sol.issued.has(token), `${kind}: the page's callback got ${token}`);
    const field = await s.page.$eval(`[name="${k.field}"]`, (e) => e.value);
    assert.equal(field, token);
    await Promise.all([s.page.waitForNavigation(), s.page.click('#send')]);
    assert.equal(await s.page.title(), 'accepted');
    assert.equal(web.submissions.at(-1).token, token);
    assert.deepEqual(s.events.map((e) => e.name), ['Captcha.detected', 'Captcha.solveFinished']);
    const rec = await finish(d, s);
    assert.equal(rec.captcha, 'solved', `${kind}: ${JSON.stringify(rec)}`);
    assert.equal(rec.status, 'finished');
  }
});

e2e('captcha: solver down, or slower than --captcha-timeout: failed (record, event, Captcha.solve)', { timeout: 120000 }, async (ctx) => {
  const web = await site(ctx);
  const slow = await solver(ctx, { mode: 'slow' });
  const down = await solver(ctx);
  const downUrl = down.url;
  await down.close(); // its port refuses connections now
  for (const [url, why] of [[downUrl, /cannot connect/], [slow.url, /in time/]]) {
    const d = await daemon(ctx, { solverUrl: url, args: ['--captcha-timeout', '3'] });
    const s = await open(ctx, d);
    const t0 = Date.now();
    await s.page.goto(web.url(KINDS.recaptcha.path));
    assert.deepEqual(await s.cdp.send('Captcha.solve', { detectTimeout: 15000 }), { status: 'solve_failed' });
    const failed = s.events.find((e) => e.name === 'Captcha.solveFailed');
    assert.ok(failed, JSON.stringify(s.events));
    assert.match(failed.error, why);
    ctx.log(`${why}: failed after ${Date.now() - t0} ms`);
    const rec = await finish(d, s);
    assert.equal(rec.captcha, 'failed');
    assert.equal(rec.status, 'finished');
    assert.equal(rec.error, null);
    assert.equal(await s.page.evaluate(() => window.solvedToken).catch(() => undefined), undefined);
  }
  assert.ok(slow.created.length >= 1, 'the slow solver got the task');
});

e2e('captcha: setAutoSolve(false) leaves it detected; Captcha.solve then solves it on demand', { timeout: 90000 }, async (ctx) => {
  const web = await site(ctx);
  const sol = await solver(ctx);
  web.accept = (t) => sol.issued.has(t);
  const d = await daemon(ctx, { solverUrl: sol.url });
  const s = await open(ctx, d);
  assert.deepEqual(await s.cdp.send('Captcha.setAutoSolve', { autoSolve: false }), {});
  await s.page.goto(web.url(KINDS.hcaptcha.path));
  await waitFor(() => s.events.find((e) => e.name === 'Captcha.detected'), { timeout: 15000, what: 'Captcha.detected' });
  // not solved by itself: waitForSolve does not start it
  assert.deepEqual(await s.cdp.send('Captcha.waitForSolve', { detectTimeout: 1000 }), { status: 'invalid' });
  assert.equal(sol.created.length, 0);
  assert.equal((await d.session(s.sessionId)).captcha, 'detected');
  assert.deepEqual(await s.cdp.send('Captcha.solve', { detectTimeout: 1000 }), { status: 'solve_finished' });
  assert.equal(sol.created.length, 1);
  const token = await s.page.evaluate(() => window.solvedToken);
  assert.ok(sol.issued.has(token));
  // asked again: already solved
  assert.deepEqual(await s.cdp.send('Captcha.solve'), { status: 'solve_finished' });
  // a kind turned off: on a second page of the session, Turnstile stays unsolved
  assert.deepEqual(await s.cdp.send('Captcha.setAutoSolve', { autoSolve: true, options: [{ type: 'turnstile', disabled: true }] }), {});
  const page2 = await s.browser.newPage();
  const cdp2 = await page2.createCDPSession();
  await page2.goto(web.url(KINDS.turnstile.path));
  assert.deepEqual(await cdp2.send('Captcha.solve', { detectTimeout: 15000 }), { status: 'invalid' });
  assert.equal(sol.created.length, 1);
  const rec = await finish(d, s);
  assert.equal(rec.captcha, 'detected', 'one solved, one not');
});

e2e('captcha: the Captcha domain answers errors with CDP codes, with the sessionId it was sent with; --captcha-detect off sees nothing', { timeout: 90000 }, async (ctx) => {
  const web = await site(ctx);
  const d = await daemon(ctx, { args: ['--captcha-detect', 'off'] });
  const s = await open(ctx, d);
  await assert.rejects(s.cdp.send('Captcha.nope'), (e) => /Captcha\.nope.*wasn't found/.test(e.message) && /-32601|wasn't found/.test(e.message));
  await assert.rejects(s.cdp.send('Captcha.setAutoSolve', {}), /autoSolve: a boolean is required/);
  await assert.rejects(s.cdp.send('Captcha.setAutoSolve', { autoSolve: true, options: [{ type: 'nope' }] }), /options\[\]\.type/);
  await assert.rejects(s.cdp.send('Captcha.solve', { detectTimeout: 'soon' }), /detectTimeout/);
  await assert.rejects(s.cdp.send('Captcha.solve', { detectTimeout: -1 }), /detectTimeout/);
  // the codes and the sessionId, as a raw client sees them
  const { ws } = await wsConnect(d.wsEndpoint());
  ctx.defer(() => ws.close());
  const targets = await cdpCall(ws, 1, 'Target.getTargets');
  const pageTarget = targets.result.targetInfos.find((t) => t.type === 'page');
  const attached = await cdpCall(ws, 2, 'Target.attachToTarget', { targetId: pageTarget.targetId, flatten: true });
  const sid = attached.result.sessionId;
  const unknown = await cdpCall(ws, 3, 'Captcha.nope', {}, sid);
  assert.equal(unknown.error.code, -32601);
  assert.equal(unknown.sessionId, sid);
  const bad = await cdpCall(ws, 4, 'Captcha.waitForSolve', { detectTimeout: 1e9 }, sid);
  assert.equal(bad.error.code, -32602);
  assert.equal(bad.sessionId, sid);
  const ok = await cdpCall(ws, 5, 'Captcha.waitForSolve', { detectTimeout: 0 }, sid);
  assert.deepEqual(ok, { id: 5, result: { status: 'not_detected' }, sessionId: sid });
  ws.close();
  // the browser-level session (no sessionId) is answered too
  const bcdp = await s.browser.target().createCDPSession();
  assert.deepEqual(await bcdp.send('Captcha.solve', { detectTimeout: 0 }), { status: 'not_detected' });
  await s.page.goto(web.url(KINDS.recaptcha.path));
  assert.deepEqual(await s.cdp.send('Captcha.solve', { detectTimeout: 2000 }), { status: 'not_detected' });
  const rec = await finish(d, s);
  assert.equal(rec.captcha, 'none');
  assert.deepEqual(s.events, []);
});

e2e('captcha: Playwright (connectOverCDP, newCDPSession): Captcha.solve gets the token to the page, the form accepts it, solved', { timeout: 90000 }, async (ctx) => {
  const { chromium } = requireClient('playwright-core');
  const web = await site(ctx);
  const sol = await solver(ctx);
  web.accept = (t) => sol.issued.has(t);
  const d = await daemon(ctx, { solverUrl: sol.url });
  const browser = await chromium.connectOverCDP(d.httpEndpoint(), { timeout: 20000 });
  ctx.defer(() => browser.close());
  const context = browser.contexts()[0];
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  const events = [];
  cdp.on('Captcha.solveFinished', (e) => events.push(e));
  const { sessionId } = await cdp.send('Browser.getSessionId');
  await page.goto(web.url(KINDS.turnstile.path));
  assert.deepEqual(await cdp.send('Captcha.solve', { detectTimeout: 15000 }), { status: 'solve_finished' });
  assert.equal(events.length, 1);
  assert.equal(events[0].type, 'turnstile');
  const token = await page.evaluate(() => window.solvedToken);
  assert.ok(sol.issued.has(token));
  await Promise.all([page.waitForNavigation(), page.click('#send')]);
  assert.equal(await page.title(), 'accepted');
  await browser.close();
  const rec = await d.ended(sessionId);
  assert.equal(rec.captcha, 'solved');
});

e2e('captcha: bad --captcha-* options stop browserd at start with exit 2 and the reason', async (ctx) => {
  const { spawnSync } = require('node:child_process');
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const { BIN } = require('./harness');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-e2e-captcha-'));
  ctx.finally(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = (args, env = {}) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BROWSERD_')));
    return spawnSync(BIN, ['--db', path.join(dir, 'x.db'), 'serve', '--cdp-listen', 'off', '--api-listen', '127.0.0.1:0', ...args],
      { env: { ...clean, ...env }, encoding: 'utf8', timeout: 10000 });
  };
  for (const [args, env, why] of [
    [['--captcha-solver', 'https://api.capsolver.com'], {}, /--captcha-solver: https solvers are not supported yet/],
    [['--captcha-solver', 'solver:80'], {}, /--captcha-solver: expected http:/],
    [['--captcha-timeout', '0'], {}, /--captcha-timeout: expected a number of seconds/],
    [[], { BROWSERD_CAPTCHA_DETECT: 'maybe' }, /--captcha-detect: expected on or off/],
  ]) {
    const r = run(args, env);
    assert.equal(r.status, 2, `${args} ${JSON.stringify(env)}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
});
