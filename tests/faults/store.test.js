'use strict';
// Fault rows of browserd and its SQLite database: browserd SIGKILLed with 4 running sessions,
// the database locked by another process, the worker pool busy. (Disk full: disk.test.js.)
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const {
  fault, connect, assertNoLeaks, fdBaseline, checkRecord, waitFor, sleep, httpRequest, withTimeout,
} = require('./common');

/** Another process holding the SQLite database's write lock (BEGIN EXCLUSIVE) until released. */
async function lockDatabase(ctx, db) {
  const child = spawn('python3', ['-c', [
    'import sqlite3, sys',
    'c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)',
    'c.execute("BEGIN EXCLUSIVE")',
    'c.execute("UPDATE sessions SET navigations = navigations WHERE 0")',
    'print("locked", flush=True)',
    'sys.stdin.read()',
    'c.execute("COMMIT")',
  ].join('\n'), db], { stdio: ['pipe', 'pipe', 'inherit'] });
  ctx.defer(() => child.kill('SIGKILL'));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await withTimeout(new Promise((resolve) => child.stdout.once('data', resolve)), 10000, 'the lock');
  return {
    async release() {
      child.stdin.end();
      assert.equal(await withTimeout(exited, 10000, 'the lock holder to exit'), 0);
    },
  };
}

/** The records as the database file holds them (not the catalog in memory): id -> status. */
function storedStatuses(db) {
  const r = require('node:child_process').spawnSync('python3', ['-c', [
    'import sqlite3, sys, json',
    'c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)',
    'print(json.dumps(dict(c.execute("SELECT lower(session_id), status FROM sessions").fetchall())))',
  ].join('\n'), db], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

fault('browserd SIGKILLed with 4 running sessions, then restarted: the orphans fail with worker_disconnect; no Chromium, profile or socket survives', { timeout: 120000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const from = Date.now();
  const sessions = [];
  for (let i = 0; i < 4; i++) {
    const s = await connect(ctx, d);
    await s.page.goto(site.url(`/p/${1 + (i % 3)}`));
    sessions.push(s);
  }
  for (const s of sessions) assert.equal((await d.session(s.sessionId)).status, 'running');
  assert.equal(d.chromiumMains().length, 4);
  const killAt = Date.now();
  d.signal('SIGKILL');
  assert.equal((await d.waitExit(5000)).signal, 'SIGKILL');
  for (const s of sessions) await waitFor(() => s.state.disconnected, { timeout: 8000, what: 'every client cut off' });
  // the supervisors take Chromium, its profile and its sockets with them
  const left = await d.waitClean(10000);
  assert.deepEqual(left, { processes: [], profiles: [] }, 'nothing of the killed daemon survives');
  const d2 = await ctx.restart(d);
  assert.match(d2.log, /event=orphans_failed sessions=4 reason=worker_disconnect/);
  for (const s of sessions) {
    const rec = await d2.session(s.sessionId);
    checkRecord(rec, { from, to: Date.now(), maxDuration: (killAt - from) / 1000 });
    assert.equal(rec.status, 'failed');
    assert.equal(rec.error.code, 'worker_disconnect');
  }
  assert.deepEqual(await d2.sessions('status=running'), []);
  const stored = storedStatuses(d2.db);
  for (const s of sessions) assert.equal(stored[s.sessionId.toLowerCase()], 2, 'failed in the file too');
  const leaks = await assertNoLeaks(d2);
  return { records: '4 x failed/worker_disconnect at the restart (log: orphans_failed sessions=4)', leaks };
});

fault('the database locked by another process (BEGIN EXCLUSIVE, longer than the busy timeout) while sessions end: spooled, then written', { ci: true, timeout: 120000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const site = await ctx.pages();
  const fds = await fdBaseline(d);
  const sessions = [];
  for (let i = 0; i < 2; i++) {
    const s = await connect(ctx, d);
    await s.page.goto(site.url('/p/1'));
    sessions.push(s);
  }
  const lock = await lockDatabase(ctx, d.db);
  for (const s of sessions) {
    await s.page.goto(site.url('/p/3'));
    await s.browser.close();
  }
  // the ends are kept: the spool takes them once the busy timeout (5 s) gives up
  await waitFor(() => /module=spool event=spooled records=\d+/.test(d.log), { timeout: 20000, what: 'the records spooled' });
  // reads go on (WAL: a writer does not block readers), and list the ends from memory
  for (const s of sessions) {
    await waitFor(async () => (await d.session(s.sessionId)).status === 'finished', { timeout: 20000, what: 'the end listed' });
  }
  const stored = storedStatuses(d.db);
  assert.notEqual(stored[sessions[0].sessionId.toLowerCase()], 1, 'not yet in the file as finished');
  await lock.release();
  await waitFor(() => /module=spool event=spool_flushed/.test(d.log), { timeout: 20000, what: 'the spool flushed' });
  const after = storedStatuses(d.db);
  for (const s of sessions) assert.equal(after[s.sessionId.toLowerCase()], 1, 'finished in the database file');
  for (const s of sessions) assert.equal((await d.session(s.sessionId)).end_url, site.url('/p/3'));
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  return { records: 'both ends spooled while locked (log: spooled), in the file as finished after the release (spool_flushed)', leaks };
});

fault('the worker pool busy (UV_THREADPOOL_SIZE=1, its worker held by a locked database): the loop answers, queued work completes', { timeout: 120000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0, env: { UV_THREADPOOL_SIZE: '1' } });
  const site = await ctx.pages();
  const fds = await fdBaseline(d);
  const s = await connect(ctx, d);
  await s.page.goto(site.url('/p/1'));
  const lock = await lockDatabase(ctx, d.db);
  await s.browser.close(); // its final save takes the one worker and waits on the lock
  await sleep(300);
  const queued = [];
  for (let i = 0; i < 10; i++) queued.push(d.api('GET', '/browser_sessions'));
  const newcomer = connect(ctx, d);
  // the event loop does not wait for the worker: health answers, the queued requests wait
  for (let i = 0; i < 5; i++) assert.equal((await httpRequest({ port: d.apiPort, path: '/healthz' })).status, 200);
  const answers = await Promise.all(queued);
  for (const a of answers) assert.ok(a.status === 200 || a.status === 503, `200 or 503, not ${a.status} ${a.text}`);
  const n = await newcomer;
  await n.page.goto(site.url('/p/2'));
  await n.browser.close();
  await lock.release();
  assert.equal((await d.ended(n.sessionId)).status, 'finished');
  assert.equal((await d.ended(s.sessionId)).status, 'finished');
  await waitFor(() => {
    const st = storedStatuses(d.db);
    return st[s.sessionId.toLowerCase()] === 1 && st[n.sessionId.toLowerCase()] === 1;
  }, { timeout: 20000, what: 'both records in the database file' });
  const codes = answers.map((a) => a.status).sort().join(',');
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  return { records: `both sessions finished, in the file; 10 queued lists answered (${codes}); /healthz 200 throughout`, leaks };
});
