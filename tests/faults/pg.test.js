'use strict';
// Fault rows of PostgreSQL (one browserd on a real server, tests/pg/pgserver.py): the server
// stopped while sessions end and restarted; the server slow (the sessions table locked by
// another client for 6 s: every statement that touches it waits). (Two nodes behind nginx with
// the server away: tests/e2e/cluster.test.js.)
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fault, connect, assertNoLeaks, waitFor, sleep, httpRequest, REPO, withTimeout } = require('./common');

const HAVE_PG = fs.existsSync('/usr/lib/postgresql/15/bin/postgres') && spawnSync('psql', ['--version']).status === 0;

function pg(cmd, dir) {
  const r = spawnSync('python3', [path.join(REPO, 'tests/pg/pgserver.py'), cmd, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgserver ${cmd}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

async function server(ctx) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-faults-pg-'));
  fs.chmodSync(dir, 0o755); // the server runs as an unprivileged user when we are root
  pg('start', path.join(dir, 'pg'));
  ctx.finally(() => {
    pg('stop', path.join(dir, 'pg'));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const uri = pg('createdb', path.join(dir, 'pg'));
  return { dir, uri, pg: (cmd) => pg(cmd, path.join(dir, 'pg')) };
}

function psql(uri, sql) {
  const r = spawnSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', uri, '-c', sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function storedStatuses(uri) {
  const out = psql(uri, 'SELECT lower(session_id) || \' \' || status FROM sessions');
  return Object.fromEntries(out.split('\n').filter(Boolean).map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
}

async function daemonOn(ctx, srv) {
  return ctx.daemon({ db: srv.uri, site: true, pool: 0, args: ['--node-id', 'faults', '--spool', path.join(srv.dir, 'faults.spool')] });
}

fault('PostgreSQL stopped while sessions end, then restarted: 503 meanwhile, sessions go on, every end written once', { timeout: 120000, skip: HAVE_PG ? false : 'no PostgreSQL 15' }, async (ctx) => {
  const srv = await server(ctx);
  const d = await daemonOn(ctx, srv);
  const site = await ctx.pages();
  const sessions = [];
  for (let i = 0; i < 3; i++) {
    const s = await connect(ctx, d);
    await s.page.goto(site.url('/p/1'));
    sessions.push(s);
  }
  srv.pg('pause');
  const down = await d.api('GET', '/browser_sessions');
  assert.equal(down.status, 503, down.text);
  assert.equal(down.headers['retry-after'], '1');
  for (const s of sessions) {
    await s.page.goto(site.url('/p/3'));
    await s.browser.close();
  }
  await waitFor(() => /module=spool event=spooled/.test(d.log), { timeout: 20000, what: 'the ends spooled' });
  const one = await d.api('GET', `/browser_sessions/${sessions[0].sessionId}`);
  assert.equal(one.status, 503, one.text);
  assert.equal((await httpRequest({ port: d.apiPort, path: '/healthz' })).status, 200);
  srv.pg('resume');
  await waitFor(() => {
    try {
      const st = storedStatuses(srv.uri);
      return sessions.every((s) => st[s.sessionId.toLowerCase()] === 1);
    } catch {
      return false;
    }
  }, { timeout: 30000, interval: 300, what: 'every end in PostgreSQL' });
  const list = await waitFor(async () => {
    const r = await d.api('GET', '/browser_sessions');
    return r.status === 200 ? r.json : null;
  }, { timeout: 20000, what: 'the API back' });
  assert.equal(list.total, 3, 'each session once');
  for (const x of list.sessions) {
    assert.equal(x.status, 'finished');
    assert.equal(x.end_url, site.url('/p/3'));
  }
  const leaks = await assertNoLeaks(d);
  return { records: '503 (Retry-After: 1) while stopped; the 3 ends spooled, in PostgreSQL once after the restart, listed finished', leaks };
});

fault('PostgreSQL slow (the sessions table locked by another client for 6 s) while sessions end: the loop answers, the ends are written after', { timeout: 120000, skip: HAVE_PG ? false : 'no PostgreSQL 15' }, async (ctx) => {
  const srv = await server(ctx);
  const d = await daemonOn(ctx, srv);
  const site = await ctx.pages();
  const sessions = [];
  for (let i = 0; i < 2; i++) {
    const s = await connect(ctx, d);
    await s.page.goto(site.url('/p/1'));
    sessions.push(s);
  }
  const holder = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', srv.uri, '-c',
    'BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT;'], { stdio: 'ignore' });
  ctx.defer(() => holder.kill('SIGKILL'));
  const released = new Promise((resolve) => holder.on('exit', resolve));
  await waitFor(() => psql(srv.uri, "SELECT count(*) FROM pg_locks WHERE relation = 'sessions'::regclass AND mode = 'AccessExclusiveLock' AND granted") === '1', { timeout: 10000, what: 'the lock' });
  let lockHeld = true;
  released.then(() => {
    lockHeld = false;
  });
  for (const s of sessions) {
    await s.page.goto(site.url('/p/2'));
    await s.browser.close();
  }
  // while the table is locked: the event loop answers at once; API requests wait or say 503
  const pending = d.api('GET', '/browser_sessions');
  let healthWhileLocked = 0;
  while (lockHeld) {
    assert.equal((await httpRequest({ port: d.apiPort, path: '/healthz' })).status, 200);
    healthWhileLocked++;
    await sleep(200);
  }
  assert.ok(healthWhileLocked > 0, 'health was asked while the lock was held');
  assert.equal(await withTimeout(released, 15000, 'the lock holder'), 0);
  const answer = await pending;
  assert.ok(answer.status === 200 || answer.status === 503, `a list during the lock: ${answer.status} ${answer.text}`);
  await waitFor(() => {
    const st = storedStatuses(srv.uri);
    return sessions.every((s) => st[s.sessionId.toLowerCase()] === 1);
  }, { timeout: 30000, interval: 300, what: 'every end in PostgreSQL' });
  for (const s of sessions) assert.equal((await d.session(s.sessionId)).end_url, site.url('/p/2'));
  const leaks = await assertNoLeaks(d);
  return { records: `/healthz 200 ${healthWhileLocked} times during the lock; a list asked then answered ${answer.status}; both ends in PostgreSQL after`, leaks };
});
