'use strict';
// browserd under mixed load: the list API driven hard while real browser sessions work, each
// half measured alone first, in the same run, as its own baseline.
//
//   node bench/load_mixed.js --browserd build-release/browserd [--quick] [options]
//   (bench/load_mixed.sh builds the release binary and the load driver and runs this)
//
// Phases (the same browserd throughout; its database holds --count generated sessions):
//   1. API alone: bench/load, the 16-shape mix of bench/shapes.tsv over --connections
//      keep-alive connections for --api-seconds: req/s, p99, errors.
//   2. browsers alone: --sessions real Puppeteer sessions through browserd, each navigating a
//      local ~20 KB page once a second and, in between, sending Browser.getVersion round trips
//      (one at a time, 20 ms apart) on a CDPSession: p50 / p99 of those round trips.
//   3. both at once for --seconds: the same two loads side by side.
// Goals (issue 15): 0 errors anywhere (HTTP errors, CDP errors, failed navigations); the CDP
// round trip p50 under load within 1.1x of phase 2's; the API's p99 under load within 2x of
// phase 1's. Then every session's record is checked: finished, its navigations counted.
// Loopback only (as root, browserd resolves through a local NXDOMAIN-everything resolver).
// Prints "=measure" lines for bench/all.sh. See docs/benchmarks.md, "Mixed load".

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const h = require('../tests/e2e/harness.js');
const cb = require('./client_bench.js');

const { sleep, waitFor } = h;
const { quantile, fmt } = cb;

const USAGE = `usage: node bench/load_mixed.js --browserd PATH --load PATH --gen PATH [options]
  --browserd PATH     browserd binary
  --load PATH         bench/load (the API load driver)
  --gen PATH          bench/gen_sessions (the data)
  --chromium PATH     default /usr/bin/chromium
  --quick             a ~1-minute run (--seconds 20 --api-seconds 10 --count 50000)
  --seconds S         phase 3, both loads at once (default 60)
  --api-seconds S     phases 1 and 2 each (default 20)
  --sessions K        real browser sessions (default 4)
  --connections N     API connections (default 32)
  --count N           sessions in the database (default 200000)
  --limit S           abort the whole run after S seconds (default 420)`;

function parseArgs(argv) {
  const o = { chromium: '/usr/bin/chromium', seconds: 60, apiSeconds: 20, sessions: 4, connections: 32, count: 200000, limit: 420 };
  const num = (v, name) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive whole number, not ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--browserd': o.browserd = next(); break;
      case '--load': o.load = next(); break;
      case '--gen': o.gen = next(); break;
      case '--chromium': o.chromium = next(); break;
      case '--quick': Object.assign(o, { seconds: 20, apiSeconds: 10, count: 50000, quick: true }); break;
      case '--seconds': o.seconds = num(next(), a); break;
      case '--api-seconds': o.apiSeconds = num(next(), a); break;
      case '--sessions': o.sessions = num(next(), a); break;
      case '--connections': o.connections = num(next(), a); break;
      case '--count': o.count = num(next(), a); break;
      case '--limit': o.limit = num(next(), a); break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  for (const k of ['browserd', 'load', 'gen']) if (!o[k]) throw new Error(`--${k} is required\n${USAGE}`);
  return o;
}

/** bench/load for `seconds`: resolves {rps, p99ms, p50ms, errors, ok} from its TSV. */
function apiLoad(o, bd, seconds, tsv) {
  return new Promise((resolve, reject) => {
    const args = ['--target', `127.0.0.1:${bd.apiPort}`, '--key', bd.apiKey, '--paths', path.join(cb.REPO, 'bench', 'shapes.tsv'),
      '--connections', String(o.connections), '--duration', String(seconds), '--tsv', tsv, '--quiet'];
    const p = spawn(o.load, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('exit', (code) => {
      if (!fs.existsSync(tsv)) return reject(new Error(`bench/load exited ${code} without results: ${err}`));
      const rows = fs.readFileSync(tsv, 'utf8').trim().split('\n').map((l) => l.split('\t'));
      const all = rows.find((r) => r[0] === 'ALL');
      const rate = rows.find((r) => r[0] === 'RATE');
      if (!all || !rate) return reject(new Error(`bench/load wrote no ALL/RATE rows: ${err}`));
      const errors = rows.filter((r) => !['shape', 'ALL', 'RATE'].includes(r[0])).reduce((s, r) => s + Number(r[2]), 0);
      resolve({ rps: Number(rate[1]), p50ms: Number(all[4]) / 1000, p99ms: Number(all[5]) / 1000, errors, exit: code });
    });
  });
}

/** One session's work until `stop()`: a goto a second and Browser.getVersion round trips between. */
async function sessionWork(page, cdp, site, state) {
  const rtts = [];
  let navs = 0;
  let errors = 0;
  const nav = (async () => {
    while (!state.stop) {
      const t0 = Date.now();
      try {
        const r = await page.goto(site.url(`${state.id}-${navs}`), { waitUntil: 'load', timeout: 15000 });
        if (!r || r.status() !== 200) errors++;
        navs++;
      } catch (e) {
        errors++;
        state.lastError = String(e.message || e);
      }
      await sleep(Math.max(0, 1000 - (Date.now() - t0)));
    }
  })();
  const rt = (async () => {
    while (!state.stop) {
      const t0 = process.hrtime.bigint();
      try {
        await cdp.send('Browser.getVersion');
        rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
      } catch (e) {
        errors++;
        state.lastError = String(e.message || e);
      }
      await sleep(20);
    }
  })();
  await Promise.all([nav, rt]);
  return { rtts, navs, errors };
}

async function browsersFor(seconds, sessions, site) {
  const state = sessions.map((s, i) => ({ id: `${s.tag}${i}`, stop: false }));
  const work = sessions.map((s, i) => sessionWork(s.page, s.cdp, site, state[i]));
  await sleep(seconds * 1000);
  state.forEach((st) => { st.stop = true; });
  const results = await Promise.all(work);
  const rtts = results.flatMap((r) => r.rtts);
  const lastError = state.map((st) => st.lastError).filter(Boolean)[0];
  return {
    p50us: quantile(rtts, 0.5), p99us: quantile(rtts, 0.99), count: rtts.length,
    navs: results.reduce((s, r) => s + r.navs, 0), errors: results.reduce((s, r) => s + r.errors, 0), lastError,
    perSession: results.map((r) => r.navs),
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const puppeteer = require(path.join(cb.MODULES, 'puppeteer-core'));
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'load_mixed.'));
  const ctx = { tmp, procs: [], browsers: [], playwright: [] };
  const abort = setTimeout(() => {
    console.error(`load_mixed: the run took longer than --limit ${o.limit} s; stopping`);
    cb.cleanup(ctx).finally(() => process.exit(2));
  }, o.limit * 1000);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cb.cleanup(ctx).finally(() => process.exit(130)));

  const git = spawnSync('git', ['-C', cb.REPO, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout.trim();
  console.log(`load_mixed ${new Date().toISOString()} | ${os.cpus().length} cores | load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} | sources ${git}`);
  console.log(`options: ${o.sessions} sessions, ${o.connections} API connections, ${o.count} sessions in the database, phases ${o.apiSeconds} s alone and ${o.seconds} s together${o.quick ? ' (--quick)' : ''}`);
  let failure = null;
  const goals = [];
  try {
    ctx.dns = await cb.startFakeDns();
    ctx.site = await cb.startSite();
    const bd = await cb.startBrowserd({ ...o, pool: o.sessions, serveArgs: ['--max-sessions', String(o.sessions + 2)] }, tmp, ctx.dns, '127.0.0.0/8', (p) => ctx.procs.push(p));
    ctx.bd = bd;

    // the data: generated, then imported while serve runs (the catalog picks it up)
    const file = path.join(tmp, 'sessions.jsonl');
    const gen = spawnSync(o.gen, ['--seed', '7', '--count', String(o.count)], { maxBuffer: 1 << 30 });
    if (gen.status !== 0) throw new Error(`gen_sessions failed: ${gen.stderr}`);
    fs.writeFileSync(file, gen.stdout);
    const imp = spawnSync(o.browserd, ['--db', bd.db, 'sessions', 'import', bd.customer, file], { encoding: 'utf8' });
    if (imp.status !== 0) throw new Error(`sessions import failed: ${imp.stderr}`);
    await waitFor(async () => ((await bd.api('/browser_sessions?limit=1')).json || {}).total >= o.count, { timeout: 60000, what: `the catalog to hold ${o.count} sessions` });
    await waitFor(async () => (await bd.pressure()).pool_warm >= o.sessions, { timeout: 60000, what: `a warm pool of ${o.sessions}` });

    const sessions = [];
    for (let i = 0; i < o.sessions; i++) {
      const browser = await puppeteer.connect({ browserWSEndpoint: bd.endpoint, defaultViewport: null, protocolTimeout: 60000 });
      ctx.browsers.push(browser);
      const page = await browser.newPage();
      const cdp = await browser.target().createCDPSession();
      const { sessionId } = await cdp.send('Browser.getSessionId');
      sessions.push({ browser, page, cdp, sessionId, tag: 's' });
    }

    console.log(`\n1. the list API alone: ${o.connections} connections, ${o.apiSeconds} s`);
    const apiAlone = await apiLoad(o, bd, o.apiSeconds, path.join(tmp, 'api-alone.tsv'));
    console.log(`   ${apiAlone.rps} req/s, p50 ${fmt(apiAlone.p50ms, 3)} ms, p99 ${fmt(apiAlone.p99ms, 3)} ms, ${apiAlone.errors} errors`);

    console.log(`\n2. ${o.sessions} browser sessions alone (a goto a second, Browser.getVersion every 20 ms between), ${o.apiSeconds} s`);
    sessions.forEach((s) => { s.tag = 'a'; });
    const brAlone = await browsersFor(o.apiSeconds, sessions, ctx.site);
    console.log(`   round trip p50 ${fmt(brAlone.p50us, 0)} us, p99 ${fmt(brAlone.p99us, 0)} us (${brAlone.count}); ${brAlone.navs} navigations, ${brAlone.errors} errors${brAlone.lastError ? ` (${brAlone.lastError})` : ''}`);

    console.log(`\n3. both at once, ${o.seconds} s`);
    sessions.forEach((s) => { s.tag = 'b'; });
    const [apiLoaded, brLoaded] = await Promise.all([
      apiLoad(o, bd, o.seconds, path.join(tmp, 'api-loaded.tsv')),
      browsersFor(o.seconds, sessions, ctx.site),
    ]);
    console.log(`   API: ${apiLoaded.rps} req/s, p50 ${fmt(apiLoaded.p50ms, 3)} ms, p99 ${fmt(apiLoaded.p99ms, 3)} ms, ${apiLoaded.errors} errors`);
    console.log(`   browsers: round trip p50 ${fmt(brLoaded.p50us, 0)} us, p99 ${fmt(brLoaded.p99us, 0)} us (${brLoaded.count}); ${brLoaded.navs} navigations, ${brLoaded.errors} errors${brLoaded.lastError ? ` (${brLoaded.lastError})` : ''}`);

    // the records: every session finished with its navigations counted
    const expected = sessions.map(() => 0);
    const navsAlone = brAlone.perSession;
    const navsLoaded = brLoaded.perSession;
    for (const s of sessions) await s.browser.close();
    let recordProblems = 0;
    for (let i = 0; i < sessions.length; i++) {
      expected[i] = navsAlone[i] + navsLoaded[i];
      const rec = await waitFor(async () => {
        const r = await bd.api(`/browser_sessions/${sessions[i].sessionId}`);
        return r.json && r.json.session && r.json.session.status !== 'running' ? r.json.session : null;
      }, { timeout: 15000, what: `session ${sessions[i].sessionId} to end` });
      if (rec.status !== 'finished' || rec.navigations !== expected[i]) {
        recordProblems++;
        console.log(`   record of ${rec.session_id}: ${rec.status}, ${rec.navigations} navigations (expected finished, ${expected[i]})`);
      }
    }
    console.log(`\nrecords: ${sessions.length - recordProblems} of ${sessions.length} sessions finished with every navigation counted`);

    const errors = apiAlone.errors + apiLoaded.errors + brAlone.errors + brLoaded.errors + recordProblems;
    const cdpRatio = brLoaded.p50us / brAlone.p50us;
    const apiRatio = apiLoaded.p99ms / apiAlone.p99ms;
    goals.push(['errors (HTTP, CDP, navigations, records)', `${errors}`, '= 0', errors === 0]);
    goals.push(['CDP round trip p50 under load / alone', `${fmt(cdpRatio, 3)}x (${fmt(brLoaded.p50us, 0)} vs ${fmt(brAlone.p50us, 0)} us)`, '<= 1.1x', cdpRatio <= 1.1]);
    goals.push(['list API p99 under load / alone', `${fmt(apiRatio, 3)}x (${fmt(apiLoaded.p99ms, 2)} vs ${fmt(apiAlone.p99ms, 2)} ms)`, '<= 2x', apiRatio <= 2]);
    console.log(`=measure\tload_mixed errors\t${errors}\tlower`);
    console.log(`=measure\tload_mixed CDP p50 loaded/alone\t${cdpRatio.toFixed(4)}\tlower`);
    console.log(`=measure\tload_mixed API p99 loaded/alone\t${apiRatio.toFixed(4)}\tlower`);
  } catch (e) {
    failure = e;
    console.error(`\nload_mixed: ERROR: ${e.stack || e}`);
    if (ctx.bd && ctx.bd.proc.stderr) console.error(`browserd's last log lines:\n${ctx.bd.proc.stderr.slice(-1500)}`);
  }
  const left = await cb.cleanup(ctx);
  clearTimeout(abort);
  console.log(`\nrun took ${fmt((Date.now() - started) / 1000, 0)} s; processes of this run left: ${left}\n`);
  if (goals.length) {
    const w = Math.max(...goals.map((g) => g[0].length));
    console.log(`${'measure'.padEnd(w)} | result | goal | verdict`);
    for (const [m, r, g, ok] of goals) console.log(`${m.padEnd(w)} | ${r} | ${g} | ${ok ? 'met' : 'NOT MET'}`);
  }
  if (failure || left) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`load_mixed: ${e.stack || e}`);
  process.exitCode = 1;
});
