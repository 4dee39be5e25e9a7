'use strict';
// dashboard_bench: how long the dashboard takes to show its first table of 50 rows on a large
// database (docs/dashboard.md). A temporary database gets N generated sessions of one customer
// (bench/gen_sessions, imported with `browserd sessions import`); browserd serves it; a headless
// Chromium signs in, then loads the page R times. Each load is timed from navigation start to
// the moment the page has put the rows in the table (the page's own performance mark
// "browserd:first-rows"), over loopback, the catalog warm. Also the API alone: the default list
// and the charts' stats (last 30 days by day, and the whole data by day), median of R requests.
//
//   node bench/dashboard_bench.js [--count N] [--runs R] [--build DIR]   (default 1200000, 7, build)
//
// Needs the build (browserd, bench/gen_sessions) and tests/e2e's node_modules (npm ci there).
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const COUNT = Number(arg('--count', 1200000));
const RUNS = Number(arg('--runs', 7));
const BUILD = path.resolve(REPO, arg('--build', 'build'));
const BIN = path.join(BUILD, 'browserd');
const puppeteer = require(path.join(REPO, 'tests', 'e2e', 'node_modules', 'puppeteer-core'));
const { freePort, httpRequest, waitFor } = require(path.join(REPO, 'tests', 'e2e', 'harness.js'));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-dashbench-'));
  const db = path.join(root, 'bench.db');
  let daemon = null;
  let browser = null;
  try {
    const data = path.join(root, 'sessions.jsonl');
    const t0 = Date.now();
    execFileSync('sh', ['-c', `"${path.join(BUILD, 'bench', 'gen_sessions')}" --seed 1 --count ${COUNT} > "${data}"`]);
    execFileSync(BIN, ['--db', db, 'customer', 'add', 'bench']);
    const key = execFileSync(BIN, ['--db', db, 'key', 'add', 'bench'], { encoding: 'utf8' }).trim().split(/\s+/).pop();
    execFileSync(BIN, ['--db', db, 'sessions', 'import', 'bench', data]);
    fs.rmSync(data);
    console.log(`dashboard_bench: ${COUNT} sessions generated and imported in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const port = await freePort();
    daemon = spawn(BIN, ['--db', db, 'serve', '--api-listen', `127.0.0.1:${port}`, '--cdp-listen', 'off', '--pool', '0'],
      { stdio: 'ignore' });
    // however this process ends (an error, ^C, its output closed), the daemon and its files go too
    const d = daemon;
    process.on('exit', () => {
      d.kill('SIGKILL');
      fs.rmSync(root, { recursive: true, force: true });
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGPIPE']) process.on(sig, () => process.exit(1));
    process.stdout.on('error', () => process.exit(1));
    await waitFor(async () => (await httpRequest({ port, path: '/healthz' })).status === 200, { timeout: 120000, what: 'browserd' });
    const auth = { Authorization: `Bearer ${key}` };
    const t1 = Date.now();
    const first = await httpRequest({ port, path: "/browser_sessions?limit=1", headers: auth });
    console.log(`dashboard_bench: browserd up, the first list answered in ${Date.now() - t1} ms (total ${first.json.total})`);
    for (const p of ['/browser_sessions', '/browser_sessions/stats?bucket=day', `/browser_sessions/stats?bucket=day&start_date=2025-11-01`]) {
      const ms = [];
      for (let i = 0; i < RUNS; i++) {
        const s = process.hrtime.bigint();
        const r = await httpRequest({ port, path: p, headers: auth });
        ms.push(Number(process.hrtime.bigint() - s) / 1e6);
        if (r.status !== 200) throw new Error(`${p}: ${r.status} ${r.text}`);
      }
      console.log(`dashboard_bench: GET ${p}: median ${median(ms).toFixed(1)} ms of ${RUNS}`);
    }
    const args = ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];
    if (process.getuid() === 0) args.push('--no-sandbox');
    browser = await puppeteer.launch({ executablePath: process.env.BROWSERD_CHROMIUM || '/usr/bin/chromium', headless: true, args,
      userDataDir: path.join(root, 'viewer') });
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.type('#api-key', key);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#sessions tbody tr[data-id]');
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      await page.reload();
      await page.waitForFunction(() => performance.getEntriesByName('browserd:first-rows').length > 0, { timeout: 30000 });
      const rows = await page.$$eval('#sessions tbody tr[data-id]', (x) => x.length);
      if (rows !== 50) throw new Error(`${rows} rows`);
      times.push(await page.evaluate(() => performance.getEntriesByName('browserd:first-rows')[0].startTime));
    }
    console.log(`dashboard_bench: first table of 50 rows, navigation start to rows shown: median ${median(times).toFixed(0)} ms, ` +
      `max ${Math.max(...times).toFixed(0)} ms of ${RUNS} loads (${COUNT} sessions)`);
  } finally {
    if (browser) await browser.close();
    if (daemon) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`dashboard_bench: ${e.stack || e}`);
  process.exit(1);
});
