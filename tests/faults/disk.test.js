'use strict';
// Fault row: the disk full while sessions end. The database and its spool live on a small
// tmpfs this test mounts (root only: skipped otherwise, and said so), filled to the last byte
// by a filler file; the sessions end; then the filler goes and space returns.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { fault, connect, assertNoLeaks, fdBaseline, waitFor, httpRequest } = require('./common');

function canMount() {
  if (process.getuid() !== 0) return false;
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-faults-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  fs.rmdirSync(probe);
  return ok;
}
const MOUNT = canMount();

/** A tmpfs of `size` mounted for this test, unmounted at its end. */
function smallDisk(ctx, size) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-faults-disk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `mount: ${r.stderr}`);
  ctx.finally(() => {
    spawnSync('umount', ['-l', dir]);
    fs.rmdirSync(dir);
  });
  return dir;
}

/** Fills the file system of dir to its last byte (a filler file); returns its path. */
function fill(dir) {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    assert.equal(e.code, 'ENOSPC');
  }
  const small = Buffer.alloc(1, 0x61);
  try {
    for (;;) fs.writeSync(fd, small);
  } catch (e) {
    assert.equal(e.code, 'ENOSPC');
  }
  fs.closeSync(fd);
  return filler;
}

function storedStatuses(db) {
  const r = spawnSync('python3', ['-c', [
    'import sqlite3, sys, json',
    'c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)',
    'print(json.dumps(dict(c.execute("SELECT lower(session_id), status FROM sessions").fetchall())))',
  ].join('\n'), db], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

fault('the disk full while sessions end (a 16 MB tmpfs holding the database and the spool): no 500, the ends kept, written when space returns', { ci: true, timeout: 120000, skip: MOUNT ? false : 'needs root and tmpfs mounts' }, async (ctx) => {
  const disk = smallDisk(ctx, '16m');
  const db = path.join(disk, 'browserd.db');
  const d = await ctx.daemon({ site: true, pool: 0, db });
  const site = await ctx.pages();
  const fds = await fdBaseline(d);
  const sessions = [];
  for (let i = 0; i < 3; i++) {
    const s = await connect(ctx, d);
    await s.page.goto(site.url('/p/1'));
    sessions.push(s);
  }
  const filler = fill(disk);
  for (const s of sessions) {
    await s.page.goto(site.url('/p/3'));
    await s.browser.close();
  }
  // every API answer while the disk is full is a 200 or a 503 (the database cannot take it),
  // never a 500; the ends are listed
  const codes = new Set();
  for (const s of sessions) {
    await waitFor(async () => {
      const r = await d.api('GET', `/browser_sessions/${s.sessionId}`);
      codes.add(r.status);
      assert.ok(r.status === 200 || r.status === 503, `GET one: ${r.status} ${r.text}`);
      return r.status === 200 && r.json.session.status === 'finished';
    }, { timeout: 30000, what: 'the end listed' });
  }
  const list = await d.api('GET', '/browser_sessions');
  codes.add(list.status);
  assert.ok(list.status === 200 || list.status === 503, `GET list: ${list.status} ${list.text}`);
  assert.equal((await httpRequest({ port: d.apiPort, path: '/healthz' })).status, 200);
  await waitFor(() => /module=store event=failed op=sessions_save/.test(d.log), { timeout: 20000, what: 'a save to fail' });
  // space returns: the records reach the file
  fs.unlinkSync(filler);
  await waitFor(() => {
    const st = storedStatuses(db);
    return sessions.every((s) => st[s.sessionId.toLowerCase()] === 1);
  }, { timeout: 30000, what: 'every end in the database file' });
  const leaks = await assertNoLeaks(d, { fdBaseline: fds });
  // and a restart on the same disk starts (no broken spool) and lists them
  await d.stop();
  const d2 = await ctx.restart(d);
  for (const s of sessions) assert.equal((await d2.session(s.sessionId)).status, 'finished');
  return { records: `3 ends listed while full (API answers ${[...codes].sort().join(', ')}), in the file once space returned, listed after a restart`, leaks };
});
