'use strict';
// What every row of the fault matrix shares: the e2e harness (a browserd per test, real
// Chromium, real Puppeteer), a Puppeteer session, the leak check every row ends with, and the
// row itself (what the records say, what leaked) for tests/faults/run.sh's table.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const harness = require('../e2e/harness');

const { e2e, waitFor, requireClient } = harness;
const puppeteer = requireClient('puppeteer-core');

/** A Puppeteer client with one page; state.disconnected flips when the connection goes. */
async function connect(ctx, d, { protocolTimeout = 20000 } = {}) {
  const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), protocolTimeout });
  ctx.defer(() => browser.disconnect());
  const state = { disconnected: false };
  browser.on('disconnected', () => {
    state.disconnected = true;
  });
  const page = await browser.newPage();
  const { sessionId } = await (await page.createCDPSession()).send('Browser.getSessionId');
  return { browser, page, sessionId, state };
}

/** browserd's open file descriptors now, but for its SQLite files: each worker thread opens
 * its own connection on its first job and keeps it (by design), the rest must come back. */
function fdCount(pid, db = null) {
  let n = 0;
  for (const f of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${f}`);
    } catch {
      continue; // closed meanwhile
    }
    if (db && target.startsWith(db)) continue;
    n++;
  }
  return n;
}

/** What is in the daemon's TMPDIR besides its (empty) profile root: sockets, Chromium's
 * temporary directories, profiles. */
function tmpLeftovers(d) {
  const out = [];
  for (const name of fs.readdirSync(d.tmpdir)) {
    const p = path.join(d.tmpdir, name);
    if (p === d.profileRoot && fs.readdirSync(p).length === 0) continue;
    out.push(name);
  }
  return out;
}

/**
 * The leak check of a row, with the daemon still running and its clients gone: no Chromium
 * (nor supervisor: every process of the daemon's tag but browserd itself), no profile, nothing
 * in its TMPDIR, and (given a baseline) browserd's fd count back to it. Polls a while (a
 * teardown takes a moment); returns the text for the row ("none") or fails with what is left.
 */
async function assertNoLeaks(d, { fdBaseline = null, timeout = 10000 } = {}) {
  let last = null;
  try {
    await waitFor(
      () => {
        const procs = harness.processesOf(d.tag, d.profileRoot).filter((p) => p.pid !== d.pid && !isLauncher(p, d));
        const left = {
          processes: procs.map((p) => `${p.pid} ${p.cmd.slice(0, 60)}`),
          profiles: d.profiles(),
          tmp: tmpLeftovers(d),
          fds: fdBaseline === null ? null : fdCount(d.pid, d.db) - fdBaseline,
        };
        last = left;
        return !left.processes.length && !left.profiles.length && !left.tmp.length && !(left.fds > 0);
      },
      { timeout, interval: 200, what: 'nothing left' },
    );
  } catch {
    assert.fail(`leaked: ${JSON.stringify(last)}`);
  }
  return fdBaseline === null
    ? 'none (no Chromium, profile or TMPDIR entry)'
    : `none (no Chromium, profile or TMPDIR entry; fds back to ${fdBaseline})`;
}

/** The `unshare` wrapper the harness starts browserd through is no leak of browserd's. */
function isLauncher(p, d) {
  return d.proc && p.pid === d.proc.pid;
}

/** Waits until browserd's fd count is steady (the pool, the store, the listeners) and returns it. */
async function fdBaseline(d) {
  let prev = -1;
  let now = fdCount(d.pid, d.db);
  await waitFor(
    async () => {
      await harness.sleep(300);
      prev = now;
      now = fdCount(d.pid, d.db);
      return now === prev;
    },
    { timeout: 10000, interval: 0, what: 'a steady fd count' },
  );
  return now;
}

/**
 * fault(name, options, fn): a row of the matrix. fn(ctx) does the fault and its checks and
 * returns { records, leaks } (short texts); the row goes to $FAULTS_ROWS (JSON lines) for
 * run.sh, the verdict is the test's own (the harness's teardown checks leaks once more).
 * options.ci: the row is in CI's subset (FAULTS_SUBSET=ci, run.sh --ci); the others are
 * skipped there, saying so (the whole matrix takes about 6 minutes).
 */
function fault(name, options, fn) {
  const { ci = false, ...rest } = options;
  if (process.env.FAULTS_SUBSET === 'ci' && !ci && !rest.skip) rest.skip = 'outside CI (tests/faults/run.sh runs it)';
  e2e(name, rest, async (ctx) => {
    const row = await fn(ctx);
    assert.ok(row && row.records && row.leaks, 'a row says what the records say and what leaked');
    if (process.env.FAULTS_ROWS) fs.appendFileSync(process.env.FAULTS_ROWS, JSON.stringify({ name, ...row }) + '\n');
  });
}

module.exports = { ...harness, puppeteer, connect, fdCount, fdBaseline, assertNoLeaks, tmpLeftovers, fault };
