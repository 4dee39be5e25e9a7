'use strict';
// Selenium against browserd's WebDriver endpoint, with real clients: Node's selenium-webdriver
// (npm) and Python's selenium (Debian's python3-selenium, tests/e2e/selenium_client.py). Each
// session is checked through the API as the CDP tests check theirs: the WebDriver session id
// is the record's id, navigations, first and last URL, true bandwidth, how it ended. Also: the
// driver runs in a network namespace of its own, and nothing of it is left after a session.
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { e2e, checkRecord, waitFor, requireClient, httpRequest, processesOf, sleep, tcpConnects } = require('./harness');

const { Builder, By, until } = requireClient('selenium-webdriver');
const chrome = requireClient('selenium-webdriver/chrome');

function connect(url) {
  return new Builder().usingServer(url).forBrowser('chrome').setChromeOptions(new chrome.Options()).build();
}

/** This daemon's chromedriver processes (they carry its environment tag). */
function drivers(d) {
  return processesOf(d.tag).filter((p) => /chromedriver|__webdriver-netns/.test(p.cmd));
}

async function noDriverLeft(d) {
  await waitFor(() => drivers(d).length === 0, { timeout: 10000, what: 'no chromedriver or broker left' });
}

/** The record's navigations, first and last URL as the page loads of the session predict. */
function checkNavigations(rec, site) {
  // /p/1, the link to /p/2, the form's POST to /submit, then /p/3 in a second tab
  assert.equal(rec.navigations, 4, `navigations of ${JSON.stringify(rec)}`);
  assert.equal(rec.target_url, site.url('/p/1'));
  assert.equal(rec.end_url, site.url('/p/3'));
  // every byte went through the session's proxy: at least the four pages' bodies
  assert.ok(rec.bandwidth > 4 * 200, `bandwidth ${rec.bandwidth}`);
}

e2e('selenium-webdriver (Node): navigate, find and type, a form, execute script, screenshot, cookies, two windows, quit; the record', { timeout: 120000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1 });
  const site = await ctx.pages();
  const from = Date.now();
  const driver = await connect(d.webdriverUrl());
  ctx.defer(() => driver.quit());
  const id = (await driver.getSession()).getId();
  // the WebDriver session is the browser session: listed at once, running
  const live = await waitFor(() => d.session(id).catch(() => null), { timeout: 5000, what: 'the running record' });
  checkRecord(live, { from, to: Date.now() });
  assert.equal(live.status, 'running');

  // the driver sits in a network namespace of its own: its port is nobody else's
  const [drv] = drivers(d).filter((p) => p.cmd.startsWith('/usr/bin/chromedriver'));
  assert.ok(drv, `a chromedriver runs: ${JSON.stringify(drivers(d))}`);
  assert.notEqual(fs.readlinkSync(`/proc/${drv.pid}/ns/net`), fs.readlinkSync(`/proc/${d.pid}/ns/net`));
  if (!otherListener9515()) assert.equal(await tcpConnects(9515), false, "the driver's port is not reachable from the machine");

  await driver.get(site.url('/p/1'));
  assert.equal(await driver.getTitle(), 'one');
  await driver.findElement(By.id('next')).click();
  await driver.wait(until.titleIs('two'), 10000);
  const q = await driver.findElement(By.id('q'));
  await q.clear();
  await q.sendKeys('from node');
  await driver.findElement(By.id('send')).click();
  await driver.wait(until.titleIs('submitted'), 10000);
  assert.equal(await driver.findElement(By.id('got')).getText(), 'from node');
  assert.equal(await driver.executeScript('return document.title + ":" + (arguments[0] + 1)', 41), 'submitted:42');
  const png = Buffer.from(await driver.takeScreenshot(), 'base64');
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
  assert.ok(png.length > 1000);
  await driver.manage().addCookie({ name: 'flavour', value: 'oat' });
  assert.equal((await driver.manage().getCookie('flavour')).value, 'oat');
  await driver.manage().deleteCookie('flavour');
  assert.ok(!(await driver.manage().getCookies()).some((c) => c.name === 'flavour'), 'the cookie is gone');
  const first = await driver.getWindowHandle();
  await driver.switchTo().newWindow('tab');
  await driver.get(site.url('/p/3'));
  assert.equal((await driver.getAllWindowHandles()).length, 2);
  await driver.switchTo().window(first);
  assert.equal(await driver.getTitle(), 'submitted');
  await driver.quit();

  const rec = await d.ended(id);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'finished');
  assert.equal(rec.error, null);
  checkNavigations(rec, site);
  await noDriverLeft(d);
});

/** Something of the machine's own listening on 9515 (then the reachability check proves nothing). */
function otherListener9515() {
  const tcp = fs.readFileSync('/proc/net/tcp', 'latin1');
  return tcp.split('\n').some((l) => / 0100007F:2533 00000000:0000 0A /.test(l) || / 00000000:2533 00000000:0000 0A /.test(l));
}

e2e('selenium (Python, python3-selenium): the same session, recorded the same', { timeout: 120000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1 });
  const site = await ctx.pages();
  const from = Date.now();
  // (not spawnSync: the test pages are served by this process)
  const r = await new Promise((resolve) => {
    execFile('/usr/bin/python3', [path.join(__dirname, 'selenium_client.py'), d.webdriverUrl(), site.origin],
      { encoding: 'utf8', timeout: 90000 }, (err, stdout, stderr) => resolve({ status: err ? err.code ?? err.signal : 0, stdout, stderr }));
  });
  assert.equal(r.status, 0, `selenium_client.py: ${r.stderr}\n${r.stdout}`);
  const seen = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(seen.title1, 'one');
  assert.equal(seen.submitted, 'from python');
  assert.equal(seen.script, 'submitted:42');
  assert.equal(seen.png_signature, '89504e470d0a1a0a');
  assert.equal(seen.cookie, 'oat');
  assert.equal(seen.cookie_after_delete, null);
  assert.equal(seen.windows, 2);
  assert.equal(seen.title3, 'three');
  assert.equal(seen.back_in_first, 'submitted');
  // browserd's own commands reach it through chromedriver's CDP passthrough: the session id,
  // and a live view on the CDP listener at the host the client used
  assert.equal(seen.cdp_session_id, seen.session_id);
  assert.match(seen.live_url, new RegExp(`^http://127\\.0\\.0\\.1:${d.cdpPort}/live/[0-9a-f]{64}$`));
  const rec = await d.ended(seen.session_id);
  checkRecord(rec, { from, to: Date.now() });
  assert.equal(rec.status, 'finished');
  checkNavigations(rec, site);
  await noDriverLeft(d);
});

e2e('selenium: a session that goes quiet ends as inactivity_timeout, and its next command is told so', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1, args: ['--idle-timeout', '2'] });
  const site = await ctx.pages();
  const from = Date.now();
  const driver = await connect(d.webdriverUrl());
  const id = (await driver.getSession()).getId();
  await driver.get(site.url('/p/1'));
  const rec = await d.ended(id, 15000);
  checkRecord(rec, { from, to: Date.now(), minDuration: 2 });
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'inactivity_timeout');
  assert.equal(rec.navigations, 1);
  assert.equal(rec.target_url, site.url('/p/1'));
  await assert.rejects(driver.getTitle(), (e) => e.name === 'NoSuchSessionError' && /inactivity_timeout/.test(e.message));
  await noDriverLeft(d);
});

e2e('selenium: DELETE /browser_sessions/{id} ends a WebDriver session (job_killed); its next command is told so (no pool: a launched browser, the version from chromium --version)', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const driver = await connect(d.webdriverUrl());
  const id = (await driver.getSession()).getId();
  await driver.get(site.url('/p/1'));
  const del = await d.api('DELETE', `/browser_sessions/${id}`);
  assert.equal(del.status, 204, JSON.stringify(del));
  const rec = await d.ended(id);
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'job_killed');
  await assert.rejects(driver.getTitle(), (e) => e.name === 'NoSuchSessionError' && /job_killed/.test(e.message));
  await noDriverLeft(d);
});

e2e('selenium: credentials (missing, wrong, another zone\'s session), capabilities browserd cannot give, /status, a missing chromedriver, off', { timeout: 90000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 1 });
  const notCreated = (re) => (e) => e.name === 'SessionNotCreatedError' && re.test(e.message);
  // (a driver is a thenable of its New Session: awaiting it is what handles its failure)
  const refused = (driver, check) => assert.rejects(async () => { await driver; }, check);
  await refused(connect(d.webdriverUrl({ password: 'wrong' })), notCreated(/Invalid credentials/));
  await refused(connect(`http://127.0.0.1:${d.webdriverPort}`), notCreated(/Credentials are missing/));
  const caps = (c) => new Builder().usingServer(d.webdriverUrl()).withCapabilities(c).build();
  await refused(caps({ browserName: 'firefox' }), (e) => e.name === 'InvalidArgumentError' && /browserName must be chrome/.test(e.message));
  await refused(caps({ browserName: 'chrome', webSocketUrl: true }), (e) => /BiDi/.test(e.message));

  const status = await httpRequest({ port: d.webdriverPort, path: '/status' });
  assert.equal(status.status, 200);
  assert.equal(status.json.value.ready, true);

  // a running session answers only to the credentials it was made with
  const driver = await connect(d.webdriverUrl());
  ctx.defer(() => driver.quit());
  const id = (await driver.getSession()).getId();
  const title = (headers) => httpRequest({ port: d.webdriverPort, path: `/session/${id}/title`, headers });
  assert.equal((await title({ Authorization: d.basicAuth() })).status, 200);
  for (const headers of [{}, { Authorization: d.basicAuth({ password: 'wrong' }) }, { Authorization: d.basicAuth({ zone: 'other' }) }]) {
    const r = await title(headers);
    assert.equal(r.status, 404, JSON.stringify(headers));
    assert.equal(r.json.value.error, 'invalid session id');
  }
  await driver.quit();
  await d.ended(id);
  await noDriverLeft(d);

  const nodriver = await ctx.daemon({ pool: 0, args: ['--webdriver-driver', '/nonexistent/chromedriver'] });
  await refused(connect(nodriver.webdriverUrl()), notCreated(/chromedriver is not installed at \/nonexistent/));
  const st = (await httpRequest({ port: nodriver.webdriverPort, path: "/status" })).json;
  assert.equal(st.value.ready, false);
  const off = await ctx.daemon({ pool: 0, args: ['--webdriver-listen', 'off'] });
  await sleep(200);
  assert.equal(await tcpConnects(off.webdriverPort), false, 'no WebDriver listener with --webdriver-listen off');
});
