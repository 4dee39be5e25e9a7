'use strict';
// Fault row: file descriptors exhausted. browserd's RLIMIT_NOFILE is lowered while it runs
// (prlimit --pid) to a few above what it holds, then many clients connect and stay. browserd
// must refuse what it cannot take (the connection closed), not spin (libuv's accept loop
// on EMFILE is a known hazard: it must not busy-loop on a listener it cannot accept from), not
// crash, and serve again once the fds are free.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { spawnSync } = require('node:child_process');
const { fault, connect, assertNoLeaks, fdBaseline, fdCount, waitFor, sleep, httpRequest, wsConnect } = require('./common');

const HAVE_PRLIMIT = spawnSync('prlimit', ['--version']).status === 0;

function nofile(pid) {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'latin1').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = line.trim().split(/\s+/).slice(3, 5);
  return { soft, hard };
}

function setNofile(pid, soft, hard) {
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, `prlimit: ${r.stderr}`);
}

/** CPU time browserd used (user + system, clock ticks). */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** Opens n TCP connections to port; each resolves to the socket and whether it was closed on us. */
function openMany(ctx, port, n) {
  const socks = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    const st = { sock: s, closed: false };
    s.on('error', () => {});
    s.on('close', () => {
      st.closed = true;
    });
    socks.push(st);
  }
  ctx.defer(() => socks.forEach((s) => s.sock.destroy()));
  return socks;
}

fault('fds exhausted (RLIMIT_NOFILE lowered to 8 above what browserd holds, 200 clients held open): refused (closed), no spin, serving again after', { ci: true, timeout: 90000, skip: HAVE_PRLIMIT ? false : 'prlimit is missing' }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  // a first session and request: every worker's database connection and the like are open
  const warm = await connect(ctx, d);
  await warm.browser.close();
  await d.ended(warm.sessionId);
  const fds = await fdBaseline(d);
  const before = nofile(d.pid);
  const held = fs.readdirSync(`/proc/${d.pid}/fd`).length;
  setNofile(d.pid, held + 8, before.hard);
  ctx.defer(() => setNofile(d.pid, before.soft, before.hard));

  const logAt = d.log.length;
  const cpu0 = cpuTicks(d.pid);
  const api = openMany(ctx, d.apiPort, 100);
  const cdp = openMany(ctx, d.cdpPort, 100);
  await waitFor(() => api.some((s) => s.closed) && cdp.some((s) => s.closed), { timeout: 10000, what: 'connections refused' });
  await sleep(2000); // the held connections and the refused ones: browserd must be idle meanwhile
  const spent = cpuTicks(d.pid) - cpu0;
  const refused = api.filter((s) => s.closed).length + cdp.filter((s) => s.closed).length;
  assert.ok(spent < 100, `browserd used ${spent} ticks of CPU in ~2.5 s with its fds exhausted (a spinning accept loop?)`);
  assert.ok(d.running, 'browserd is alive');
  // (libuv's EMFILE trick accepts and closes the connections it cannot take inside its accept
  // loop, without calling browserd: what browserd logs is counted for the row, not required)
  const log = d.log.slice(logAt);
  // a request now: refused cleanly or answered, never a crash
  const during = await httpRequest({ port: d.apiPort, path: '/healthz' }).then((r) => r.status, (e) => e.code);
  assert.ok([200, 503, 'ECONNRESET', 'EPIPE'].includes(during), `during: ${during}`);

  // the fds come free: everything works again
  for (const s of [...api, ...cdp]) s.sock.destroy();
  await waitFor(async () => (await httpRequest({ port: d.apiPort, path: '/healthz' }).catch(() => ({}))).status === 200, { timeout: 10000, what: 'the API back' });
  setNofile(d.pid, before.soft, before.hard);
  assert.equal((await d.api('GET', '/browser_sessions')).status, 200);
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  await s.browser.close();
  assert.equal((await d.ended(s.sessionId)).status, 'finished');
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  const lines = (log.match(/event=accept_failed/g) || []).length;
  return { records: `${refused} of 200 connections refused (closed; ${lines} accept_failed lines), ${spent} CPU ticks meanwhile; then 200 and a finished session`, leaks };
});

fault('fds exhausted at a browser launch (RLIMIT_NOFILE 2 above what browserd holds, a CDP client comes): refused cleanly, nothing half-started', { ci: true, timeout: 90000, skip: HAVE_PRLIMIT ? false : 'prlimit is missing' }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const warm = await connect(ctx, d);
  await warm.browser.close();
  await d.ended(warm.sessionId);
  const fds = await fdBaseline(d);
  const before = nofile(d.pid);
  const held = fs.readdirSync(`/proc/${d.pid}/fd`).length;
  setNofile(d.pid, held + 2, before.hard);
  ctx.defer(() => setNofile(d.pid, before.soft, before.hard));
  const r = await wsConnect(d.wsEndpoint(), { timeout: 20000 }).catch((e) => ({ error: e }));
  if (r.ws) r.ws.close();
  assert.ok(d.running, 'browserd is alive');
  setNofile(d.pid, before.soft, before.hard);
  const failed = (await d.sessions()).filter((x) => x.session_id !== warm.sessionId);
  for (const x of failed) assert.notEqual((await d.ended(x.session_id)).status, 'running');
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  await s.browser.close();
  assert.equal((await d.ended(s.sessionId)).status, 'finished');
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  const recs = failed.map((x) => `${x.status}/${x.error && x.error.code} ("${x.error && x.error.message}")`).join(', ') || 'none';
  const answer = r.ws ? 'a session' : r.status ? `HTTP ${r.status}` : String(r.error && r.error.code);
  return { records: `the client got ${answer}; record: ${recs}; then a finished session`, leaks };
});
