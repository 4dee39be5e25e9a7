'use strict';
// The soak: session churn against one browserd for --minutes (default 30), then the books.
//
//   node tests/soak/soak.js --browserd PATH [--minutes M] [--workers W]
//   (tests/soak/soak.sh builds the release binary and runs this; outside CI)
//
// Each worker loops: connect with real Puppeteer, open a page, navigate a local page one to
// three times, then end the session one of four ways, chosen in turn:
//   close    browser.close()                              -> finished
//   drop     a raw WebSocket client navigates, then its socket is destroyed without a close
//            frame (the client vanished)                 -> finished
//   delete   DELETE /browser_sessions/ID through the API   -> failed, job_killed
//   idle     the client stays connected and silent         -> failed, inactivity_timeout
//            (browserd runs with --idle-timeout 8: shorter ends sessions of clients that the
//            machine's own load stalls for a few seconds)
// Every 30 s: browserd's RSS, open fds, Chromium processes and temporary directories.
// At the end (pool settled): every session created is recorded exactly once, with the ending
// its way predicts and its navigations counted; fds, processes and temporary directories are
// back to what the warm pool alone holds; RSS grew by at most 5 % from minute 5 (or from the
// first fifth of a shorter run) to the end. Prints a table and "N passed, N failed".
// Loopback only. See docs/reliability.md, "Soak".

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const h = require('../e2e/harness.js');
const cb = require('../../bench/client_bench.js');

const { sleep, waitFor } = h;

function parseArgs(argv) {
  const o = { chromium: '/usr/bin/chromium', minutes: 30, workers: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--browserd') o.browserd = v();
    else if (a === '--minutes') o.minutes = Number(v());
    else if (a === '--workers') o.workers = Number(v());
    else if (a === '--chromium') o.chromium = v();
    else if (a === '-h' || a === '--help') {
      console.log('usage: node tests/soak/soak.js --browserd PATH [--minutes M (30)] [--workers W (2)] [--chromium PATH]');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (!o.browserd) throw new Error('--browserd is required');
  if (!(o.minutes > 0) || !(o.workers >= 1)) throw new Error('--minutes and --workers must be positive');
  return o;
}

const WAYS = ['close', 'drop', 'delete', 'idle'];
const EXPECT = {
  close: { status: 'finished', code: null },
  drop: { status: 'finished', code: null },
  delete: { status: 'failed', code: 'job_killed' },
  idle: { status: 'failed', code: 'inactivity_timeout' },
};

function sample(bd, tmpdir) {
  const status = fs.readFileSync(`/proc/${bd.pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  const fds = fs.readdirSync(`/proc/${bd.pid}/fd`).length;
  const chromiums = h.processesOf(null, tmpdir).filter((p) => /chrom/.test(p.cmd) && !/--type=/.test(p.cmd)).length;
  const dirs = fs.existsSync(tmpdir) ? fs.readdirSync(tmpdir).length : 0;
  const fdTargets = fs.readdirSync(`/proc/${bd.pid}/fd`).map((f) => {
    try {
      return fs.readlinkSync(`/proc/${bd.pid}/fd/${f}`).replace(/\[\d+\]$/, '');
    } catch {
      return '?';
    }
  });
  return { at: Date.now(), rss, fds, chromiums, dirs, fdTargets };
}

/** 'drop': Puppeteer keeps its socket private, so this client is a raw WebSocket. */
async function droppedSession(bd, site, n, sessions) {
  const { ws } = await h.wsConnect(bd.endpoint);
  if (!ws) throw new Error('the WebSocket upgrade was refused');
  const closed = h.wsClosed(ws);
  const { result } = await h.cdpCall(ws, 1, 'Browser.getSessionId');
  const rec = { sessionId: result.sessionId, way: 'drop', navs: 0 };
  sessions.push(rec);
  const targets = await h.cdpCall(ws, 2, 'Target.getTargets');
  const page = targets.result.targetInfos.find((t) => t.type === 'page');
  const { result: att } = await h.cdpCall(ws, 3, 'Target.attachToTarget', { targetId: page.targetId, flatten: true });
  await h.cdpCall(ws, 4, 'Page.enable', {}, att.sessionId);
  const loaded = new Promise((resolve) => {
    const on = (d) => {
      const m = JSON.parse(d.toString());
      if (m.method === 'Page.loadEventFired' && m.sessionId === att.sessionId) {
        ws.off('message', on);
        resolve();
      }
    };
    ws.on('message', on);
  });
  const nav = await h.cdpCall(ws, 5, 'Page.navigate', { url: site.url(`${n}-drop`) }, att.sessionId);
  if (nav.error || nav.result.errorText) throw new Error(`Page.navigate: ${JSON.stringify(nav.error || nav.result)}`);
  await Promise.race([loaded, sleep(20000).then(() => { throw new Error('no load event in 20 s'); })]);
  rec.navs++;
  ws._socket.destroy(); // gone without a close frame
  await closed;
}

async function oneSession(puppeteer, bd, site, way, n, sessions) {
  if (way === 'drop') return droppedSession(bd, site, n, sessions);
  const browser = await puppeteer.connect({ browserWSEndpoint: bd.endpoint, defaultViewport: null, protocolTimeout: 30000 });
  const page = await browser.newPage();
  const cdp = await browser.target().createCDPSession();
  const { sessionId } = await cdp.send('Browser.getSessionId');
  const rec = { sessionId, way, navs: 0 };
  sessions.push(rec);
  const navs = 1 + (n % 3);
  for (let i = 0; i < navs; i++) {
    const r = await page.goto(site.url(`${n}-${i}`), { waitUntil: 'load', timeout: 20000 });
    if (!r || r.status() !== 200) throw new Error(`goto answered ${r && r.status()}`);
    rec.navs++;
  }
  const ended = new Promise((resolve) => browser.once('disconnected', resolve));
  if (way === 'close') {
    await browser.close();
  } else if (way === 'delete') {
    const r = await h.httpRequest({ port: bd.apiPort, method: 'DELETE', path: `/browser_sessions/${sessionId}`, headers: { Authorization: `Bearer ${bd.apiKey}` } });
    if (r.status !== 200 && r.status !== 204) throw new Error(`DELETE answered ${r.status} ${r.text}`);
  } // idle: nothing; browserd ends it after --idle-timeout
  await Promise.race([ended, sleep(30000).then(() => { throw new Error(`session ${sessionId} (${way}) did not end within 30 s`); })]);
  if (browser.connected) browser.disconnect();
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const puppeteer = require(path.join(cb.MODULES, 'puppeteer-core'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'soak.'));
  const ctx = { tmp, procs: [], browsers: [], playwright: [] };
  const checks = [];
  const check = (name, ok, detail) => {
    checks.push({ name, ok, detail });
    console.log(`${ok ? 'ok    ' : 'FAILED'} ${name}: ${detail}`);
  };
  const started = Date.now();
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cb.cleanup(ctx).finally(() => process.exit(130)));
  let failure = null;
  try {
    ctx.dns = await cb.startFakeDns();
    ctx.site = await cb.startSite();
    const pool = 2;
    const bd = await cb.startBrowserd({ ...o, pool, serveArgs: ['--idle-timeout', '8', '--pool-max', String(pool)] }, tmp, ctx.dns, '127.0.0.0/8', (p) => ctx.procs.push(p));
    ctx.bd = bd;
    const bdTmp = path.join(tmp, 'browserd-tmp');
    await waitFor(async () => (await bd.pressure()).pool_warm >= pool, { timeout: 60000, what: 'a warm pool' });
    const base = sample(bd, bdTmp);
    console.log(`soak ${new Date().toISOString()}: ${o.minutes} min, ${o.workers} workers, browserd pid ${bd.pid}; at rest: RSS ${base.rss} KiB, ${base.fds} fds, ${base.chromiums} Chromiums, ${base.dirs} temporary directories`);

    const sessions = [];
    const errors = [];
    const samples = [base];
    const endAt = started + o.minutes * 60000;
    let n = 0;
    const sampler = setInterval(() => {
      const s = sample(bd, bdTmp);
      samples.push(s);
      console.log(`  ${((s.at - started) / 60000).toFixed(1)} min: ${sessions.length} sessions, RSS ${s.rss} KiB, ${s.fds} fds, ${s.chromiums} Chromiums, ${s.dirs} temp dirs, ${errors.length} errors`);
    }, 30000);
    const worker = async () => {
      while (Date.now() < endAt) {
        const i = n++;
        try {
          // a bound on the whole session: a CDP call on a socket that browserd closed (its
          // session ended by a stall longer than the idle limit) would wait for ever
          await h.withTimeout(oneSession(puppeteer, bd, ctx.site, WAYS[i % WAYS.length], i, sessions), 90000, `session ${i}`);
        } catch (e) {
          errors.push(String(e.message || e));
          if (errors.length <= 5) console.log(`  error: ${errors[errors.length - 1]}`);
          if (process.env.SOAK_DEBUG && errors.length <= 2) console.log(bd.proc.stderr.slice(-3000));
          await sleep(500);
        }
      }
    };
    await Promise.all(Array.from({ length: o.workers }, worker));
    clearInterval(sampler);

    // the books: every session recorded once, ended as its way predicts
    let wrong = 0;
    for (const s of sessions) {
      const r = await waitFor(async () => {
        const a = await h.httpRequest({ port: bd.apiPort, path: `/browser_sessions/${s.sessionId}`, headers: { Authorization: `Bearer ${bd.apiKey}` } });
        return a.json && a.json.session && a.json.session.status !== 'running' ? a.json.session : null;
      }, { timeout: 20000, what: `session ${s.sessionId} to end` });
      const want = EXPECT[s.way];
      const code = r.error ? r.error.code : null;
      if (r.status !== want.status || code !== want.code || r.navigations !== s.navs) {
        wrong++;
        if (wrong <= 5) console.log(`  ${s.sessionId} (${s.way}): ${r.status}/${code}, ${r.navigations} navigations; expected ${want.status}/${want.code}, ${s.navs}`);
      }
    }
    const list = await h.httpRequest({ port: bd.apiPort, path: '/browser_sessions?status=all&limit=1', headers: { Authorization: `Bearer ${bd.apiKey}` } });
    const byWay = WAYS.map((w) => `${w} ${sessions.filter((s) => s.way === w).length}`).join(', ');
    check('sessions', errors.length === 0, `${sessions.length} sessions (${byWay}), ${errors.length} client errors${errors.length ? `: ${errors[0]}` : ''}`);
    // A client that failed after its upgrade (a stall past the idle limit under load) made a
    // session whose id it never learnt: each failed attempt may add one record, no more.
    const ids = [];
    for (let offset = 0; offset < list.json.total; offset += 100) {
      const page = await h.httpRequest({ port: bd.apiPort, path: `/browser_sessions?status=all&limit=100&offset=${offset}`, headers: { Authorization: `Bearer ${bd.apiKey}` } });
      ids.push(...page.json.sessions.map((r) => r.session_id));
    }
    const listed = new Set(ids);
    const missing = sessions.filter((x) => !listed.has(x.sessionId)).length;
    const extra = ids.length - (sessions.length - missing);
    check('every session recorded exactly once',
      ids.length === list.json.total && listed.size === ids.length && missing === 0 && extra <= errors.length,
      `the API lists ${list.json.total} (${ids.length - listed.size} twice), the clients made ${sessions.length} (${missing} not listed) and had ${errors.length} failed attempts (${extra} records of those)`);
    check('every record as its ending predicts', wrong === 0, `${sessions.length - wrong} of ${sessions.length} right (status, error code, navigations)`);

    // at rest again: what the warm pool alone holds
    await waitFor(async () => (await bd.pressure()).pool_warm >= pool, { timeout: 60000, what: 'the pool to refill' });
    let end = sample(bd, bdTmp);
    for (let i = 0; i < 30 && (end.fdTargets.filter((t) => !t.startsWith(bd.db)).length > base.fdTargets.filter((t) => !t.startsWith(bd.db)).length + 4 || end.chromiums > base.chromiums || end.dirs > base.dirs); i++) {
      await sleep(1000); // sessions ending, replacements starting: give it a moment to settle
      end = sample(bd, bdTmp);
    }
    const kinds = (l) => l.reduce((m, t) => m.set(t, (m.get(t) || 0) + 1), new Map());
    const before = kinds(base.fdTargets);
    const grown = [...kinds(end.fdTargets)].filter(([t, c]) => c > (before.get(t) || 0)).map(([t, c]) => `${t} ${before.get(t) || 0} -> ${c}`);
    // the store opens one SQLite connection per worker thread when that thread first works
    // (libuv's pool: 4 threads, plus the loop's own): those are bounded, not leaked
    const isDb = (t) => t.startsWith(bd.db);
    const dbFiles = end.fdTargets.filter(isDb).length;
    const other = (smp) => smp.fdTargets.filter((t) => !isDb(t)).length;
    check('fds', other(end) <= other(base) + 4 && dbFiles <= 3 * 6, // db, -wal, -shm per connection; 4 pool threads, the loop, one spare
      `${base.fds} at rest before, ${end.fds} after; without the database's: ${other(base)} -> ${other(end)}; database files open ${dbFiles} (at most one connection per worker thread and the loop)${grown.length ? ` (grown: ${grown.join(', ')})` : ''}`);
    check('Chromium processes', end.chromiums <= base.chromiums, `${base.chromiums} before (the pool), ${end.chromiums} after`);
    check('temporary directories', end.dirs <= base.dirs, `${base.dirs} before (the pool's profiles), ${end.dirs} after`);
    const from = samples.find((s) => s.at - started >= Math.min(5 * 60000, (o.minutes * 60000) / 5)) || samples[1] || base;
    const growth = (end.rss - from.rss) / from.rss;
    check('RSS growth', growth <= 0.05, `${from.rss} KiB at ${((from.at - started) / 60000).toFixed(1)} min, ${end.rss} KiB at the end: ${(growth * 100).toFixed(1)} % (limit 5 %); peak ${Math.max(...samples.map((s) => s.rss))} KiB`);
  } catch (e) {
    failure = e;
    console.error(`soak: ERROR: ${e.stack || e}`);
    if (ctx.bd) console.error(`browserd's last log lines:\n${ctx.bd.proc.stderr.slice(-1500)}`);
  }
  const left = await cb.cleanup(ctx);
  check('processes after the stop', left === 0, `${left} of the run left`);
  if (failure) checks.push({ ok: false });
  const failed = checks.filter((c) => !c.ok).length;
  console.log(`soak took ${((Date.now() - started) / 60000).toFixed(1)} min`);
  console.log(`${checks.length - failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.error(`soak: ${e.stack || e}`);
  process.exitCode = 1;
});
