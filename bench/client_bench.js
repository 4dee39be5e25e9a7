'use strict';
// browserd as its users see it: real Puppeteer (and Playwright) clients against browserd's CDP
// endpoint, against the same clients on a Chromium's own WebSocket endpoint (the baseline: a
// user's own browser, --remote-debugging-port on 127.0.0.1), measured in the same run, in
// alternating batches (the machine is shared and noisy; medians over the batches).
//
//   node bench/client_bench.js --browserd build-release/browserd [--quick] [options]
//   (bench/client_bench.sh builds the release binary and runs this)
//
// Measures (each with its baseline in the same run):
//   1. small command round trip on one connected browser: Browser.getVersion on a CDPSession
//      of the browser target, page.evaluate('1+1'); p50/p90 µs, messages/s; browserd's
//      event-loop CPU per round trip (/proc/PID/schedstat of its main thread)
//   2. back-to-back sessions (connect, browser.version(), close) and a steady 1 session/s
//      (connect, newPage, goto a local page, close); the baseline connects to the already
//      running Chromium and disconnects
//   3. a 20 MiB string from page.evaluate; browserd's loop CPU per MiB
//   4. page.goto of a ~20 KB local page (browserd's browsers go through its traffic proxy)
//   5. the round trips of 1 with Playwright's chromium.connectOverCDP
// The run does them in the order 1, 3, 4, 5, 2 (the sessions of 2 launch a Chromium each and
// grow browserd's pool for a while: the rest would be measured in their wake).
// Every goal is printed as met / NOT MET; the exit status is non-zero only for errors.
// Loopback only: as root, browserd and the baseline Chromium run in a mount namespace of their
// own whose /etc/resolv.conf names a resolver of this process that answers NXDOMAIN to
// everything (Chromium's own background lookups never leave the machine). Everything started
// is stopped, the temp dir removed, and the processes of the run still alive are counted.
// See docs/benchmarks.md, "Clients as users run them".

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

// the e2e suite's general helpers (waiting, ports, HTTP, processes, the loopback resolver)
const h = require('../tests/e2e/harness.js');
const { sleep, withTimeout, waitFor, freePort } = h;
const httpGet = (port, p, headers = {}) => h.httpRequest({ port, path: p, headers });
const processesNaming = (dir) => h.processesOf(null, dir);

const REPO = path.resolve(__dirname, '..');
const MODULES = path.join(REPO, 'tests', 'e2e', 'node_modules');

// ------------------------------------------------------------------ options ----

const USAGE = `usage: node bench/client_bench.js --browserd PATH [options]
  --browserd PATH     browserd binary (required; client_bench.sh passes build-release/browserd)
  --chromium PATH     browser for both sides (default /usr/bin/chromium)
  --quick             smaller counts: a ~1-minute run
  --batches B         alternating batches per side for the round trips (default 5)
  --rtt N             Browser.getVersion round trips per batch (default 2000; evaluate: N/4)
  --warmup N          round trips before the batches, per side (default 200)
  --sessions K        back-to-back sessions (default 30)
  --steady S          sessions at 1 per second (default 15; 0 = skip)
  --big-reps R        20 MiB evaluations per side (default 5)
  --big-mib M         size of the large string in MiB (default 20)
  --navs N            page.goto per side (default 30)
  --pw-rtt N          Playwright Browser.getVersion round trips per batch (default 1000; 0 = skip)
  --limit S           abort the whole run after S seconds (default 480)`;

function parseArgs(argv) {
  const o = {
    browserd: null, chromium: '/usr/bin/chromium', batches: 5, rtt: 2000, warmup: 200,
    sessions: 30, steady: 15, bigReps: 5, bigMib: 20, navs: 30, pwRtt: 1000, limit: 480,
  };
  const quick = { batches: 3, rtt: 500, warmup: 100, sessions: 10, steady: 5, bigReps: 3, navs: 12, pwRtt: 300 };
  const given = {};
  const num = (name, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: not a non-negative integer: ${v}`);
    return n;
  };
  const names = {
    '--batches': 'batches', '--rtt': 'rtt', '--warmup': 'warmup', '--sessions': 'sessions',
    '--steady': 'steady', '--big-reps': 'bigReps', '--big-mib': 'bigMib', '--navs': 'navs',
    '--pw-rtt': 'pwRtt', '--limit': 'limit',
  };
  let isQuick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--quick') {
      isQuick = true;
    } else if (a === '--browserd' || a === '--chromium') {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      o[a.slice(2)] = argv[++i];
    } else if (names[a]) {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      given[names[a]] = num(a, argv[++i]);
    } else {
      throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (isQuick) Object.assign(o, quick);
  Object.assign(o, given);
  if (!o.browserd) throw new Error(`--browserd PATH is required\n${USAGE}`);
  o.browserd = path.resolve(o.browserd);
  if (o.batches < 1) o.batches = 1;
  if (o.rtt < 4) o.rtt = 4;
  if (o.bigReps < 1) o.bigReps = 1;
  if (o.bigMib < 1) o.bigMib = 1;
  if (o.navs < 1) o.navs = 1;
  o.quick = isQuick;
  return o;
}

// ------------------------------------------------------------------ small helpers ----

const nowNs = () => process.hrtime.bigint();
const msSince = (t0) => Number(nowNs() - t0) / 1e6;

function quantile(values, q) {
  if (!values.length) return NaN;
  const s = Float64Array.from(values).sort();
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
const median = (v) => quantile(v, 0.5);

function fmt(x, digits = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** CPU time of a process's main thread (for browserd: its event loop), in ns. */
function loopCpuNs(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'latin1').split(' ')[0]);
}

// ------------------------------------------------------------------ loopback DNS ----

/** The e2e suite's resolver (NXDOMAIN to everything, on a loopback address), when this process
 * can give browserd and the direct Chromium mount namespaces of their own; null otherwise. */
async function startFakeDns() {
  return h.canIsolateDns() ? h.fakeDns() : null;
}

/** The command and argv that run cmd in a mount namespace whose resolv.conf is ours. */
function isolated(dns, cmd, args) {
  if (!dns) return [cmd, args];
  return ['unshare', ['-m', '--propagation', 'private', 'sh', '-c',
    'mount --bind "$0" /etc/resolv.conf && exec "$@"', dns.resolvConf, cmd, ...args]];
}

// ------------------------------------------------------------------ the local site ----

/** http://127.0.0.1:PORT/page?n=I: a ~20 KB HTML page, never cached. */
async function startSite() {
  const filler = [];
  for (let i = 0; filler.join('').length < 20 * 1024; i++) {
    filler.push(`<p id="p${i}">Paragraph ${i}: lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p>\n`);
  }
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>bench page</title></head><body>\n${filler.join('')}</body></html>\n`;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (!req.url.startsWith('/page')) {
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
      res.end('not found');
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  server.keepAliveTimeout = 5000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    bytes: Buffer.byteLength(body),
    url: (n) => `http://127.0.0.1:${port}/page?n=${n}`,
    requests: () => requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}

// ------------------------------------------------------------------ processes of the run ----

class Proc {
  constructor(name, cmd, args, env) {
    this.name = name;
    this.child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.pid = this.child.pid;
    this.stdout = '';
    this.stderr = '';
    this.child.stdout.on('data', (d) => { this.stdout += d; });
    this.child.stderr.on('data', (d) => {
      this.stderr += d;
      if (this.stderr.length > 1 << 20) this.stderr = this.stderr.slice(-(1 << 19));
    });
    this.exited = null;
    this.exit = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      });
    });
  }

  /** SIGTERM (to the process, or to its whole process group), then SIGKILL after graceMs. */
  async stop({ group = false, graceMs = 15000 } = {}) {
    const kill = (sig) => {
      try {
        process.kill(group ? -this.pid : this.pid, sig);
      } catch {
        // already gone
      }
    };
    if (!this.exited) {
      kill('SIGTERM');
      const done = await Promise.race([this.exit, sleep(graceMs).then(() => null)]);
      if (!done) {
        console.log(`  ${this.name} did not stop within ${graceMs / 1000} s of SIGTERM: SIGKILL`);
        kill('SIGKILL');
        await Promise.race([this.exit, sleep(5000)]);
      }
    }
    if (group) kill('SIGKILL'); // helpers of the group still alive
  }
}

async function startBrowserd(o, tmp, dns, siteCidr, register) {
  const apiPort = await freePort();
  const cdpPort = await freePort();
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('BROWSERD_')) delete env[k];
  Object.assign(env, { TMPDIR: path.join(tmp, 'browserd-tmp'), BROWSERD_DRAIN_TIMEOUT: '0' });
  fs.mkdirSync(env.TMPDIR, { recursive: true });
  const args = ['--db', path.join(tmp, 'b.db'), 'serve', '--api-listen', `127.0.0.1:${apiPort}`,
    '--cdp-listen', `127.0.0.1:${cdpPort}`, '--pool', String(o.pool || 2), '--allow-private', siteCidr,
    '--chromium', o.chromium, ...(o.serveArgs || [])];
  const [cmd, argv] = isolated(dns, o.browserd, args);
  const p = new Proc('browserd', cmd, argv, env);
  register(p);
  await waitFor(async () => {
    if (p.exited) throw new Error(`browserd exited ${JSON.stringify(p.exited)}: ${p.stderr.slice(-2000)}`);
    return (await httpGet(apiPort, '/healthz')).status === 200;
  }, { timeout: 20000, what: 'browserd /healthz' });
  const kv = {};
  for (const line of p.stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  if (!kv.api_key || !kv.zone_password) throw new Error(`browserd printed no credentials: ${p.stdout}`);
  const comm = fs.readFileSync(`/proc/${p.pid}/comm`, 'latin1').trim();
  if (comm !== 'browserd') throw new Error(`process ${p.pid} is ${comm}, not browserd`);
  const user = `brd-customer-${kv.customer_id}-zone-${kv.zone}`;
  return {
    proc: p, pid: p.pid, apiPort, cdpPort, apiKey: kv.api_key, customer: kv.customer_id, db: path.join(tmp, 'b.db'),
    endpoint: `ws://${user}:${encodeURIComponent(kv.zone_password)}@127.0.0.1:${cdpPort}`,
    api: (p2) => httpGet(apiPort, p2, { Authorization: `Bearer ${kv.api_key}` }),
    pressure: async () => (await httpGet(apiPort, '/pressure')).json?.pressure || {},
  };
}

/** The baseline: a Chromium with browserd's flags, on its own WebSocket endpoint. */
async function startChromium(o, tmp, dns, register) {
  const udd = path.join(tmp, 'direct-profile');
  const home = path.join(tmp, 'direct-home');
  fs.mkdirSync(home, { recursive: true });
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache'), TMPDIR: home };
  const args = ['--headless', ...(process.getuid() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-quic',
    '--no-first-run', '--no-default-browser-check', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', `--user-data-dir=${udd}`, 'about:blank'];
  const [cmd, argv] = isolated(dns, o.chromium, args);
  const p = new Proc('direct Chromium', cmd, argv, env);
  register(p);
  const endpoint = await waitFor(() => {
    if (p.exited) throw new Error(`Chromium exited ${JSON.stringify(p.exited)}: ${p.stderr.slice(-2000)}`);
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(p.stderr);
    return m && m[1];
  }, { timeout: 30000, what: 'the direct Chromium\'s DevTools endpoint' });
  return { proc: p, endpoint };
}

// ------------------------------------------------------------------ results ----

const rows = []; // the summary table

/**
 * One line of a measure and of the summary. kind: 'lower' (ratio = browserd/baseline, met when
 * ratio <= goal), 'higher' (ratio = browserd/baseline throughput, met when >= goal), 'abs' (the
 * browserd value against an absolute goal: value <= goal), 'info' (no goal).
 */
function report({ measure, baseline, browserd, unit, digits = 1, ratio, kind, goal, value }) {
  let verdict = '';
  let goalText = '';
  if (kind === 'lower') {
    goalText = `<= ${goal}x`;
    verdict = ratio <= goal ? 'met' : 'NOT MET';
  } else if (kind === 'higher') {
    goalText = `>= ${goal}x`;
    verdict = ratio >= goal ? 'met' : 'NOT MET';
  } else if (kind === 'abs') {
    goalText = `<= ${goal} ${unit}`;
    verdict = (value ?? browserd) <= goal ? 'met' : 'NOT MET';
  }
  if (Number.isNaN(ratio) || (kind === 'abs' && Number.isNaN(value ?? browserd))) verdict = 'NOT MET';
  const b = baseline === null || baseline === undefined ? '-' : `${fmt(baseline, digits)} ${unit}`;
  const d = `${fmt(browserd, digits)} ${unit}`;
  const r = ratio === null || ratio === undefined ? '-' : `${fmt(ratio, 3)}x`;
  rows.push({ measure, baseline: b, browserd: d, ratio: r, goal: goalText || '-', verdict: verdict || '-' });
  // for bench/all.sh's regression check (bench/baseline.tsv): the ratio where there is one
  if (kind === 'lower' || kind === 'higher') console.log(`=measure\tclient ${measure} (ratio)\t${Number(ratio).toFixed(4)}\t${kind}`);
  else if (kind === 'abs') console.log(`=measure\tclient ${measure} (${unit})\t${Number(value ?? browserd).toFixed(4)}\tlower`);
  console.log(`  ${measure}: baseline ${b}, browserd ${d}, ratio ${r}${goalText ? `, goal ${goalText}: ${verdict}` : ''}`);
}

function printTable() {
  const head = { measure: 'measure', baseline: 'baseline', browserd: 'browserd', ratio: 'ratio', goal: 'goal', verdict: 'verdict' };
  const cols = Object.keys(head);
  const w = Object.fromEntries(cols.map((c) => [c, Math.max(head[c].length, ...rows.map((r) => r[c].length))]));
  const line = (r) => cols.map((c) => (c === 'measure' ? r[c].padEnd(w[c]) : r[c].padStart(w[c]))).join(' | ');
  console.log(line(head));
  console.log(cols.map((c) => '-'.repeat(w[c])).join('-|-'));
  // in the order of the measures (the run does 2 after 3 and 4)
  const order = rows.map((r, i) => ({ r, i, n: parseFloat(r.measure) })).sort((a, b) => a.n - b.n || a.i - b.i);
  for (const { r } of order) console.log(line(r));
}

// ------------------------------------------------------------------ measures ----

/**
 * n sequential calls of fn: p50/p90 in µs, calls/s, and browserd's loop CPU per call (µs) and
 * per ms of the batch (cpuPid: browserd's pid; on the direct side that is its idle rate).
 */
async function batch(fn, n, cpuPid) {
  const lat = new Float64Array(n);
  const cpu0 = loopCpuNs(cpuPid);
  const t0 = nowNs();
  for (let i = 0; i < n; i++) {
    const a = nowNs();
    await fn();
    lat[i] = Number(nowNs() - a) / 1000;
  }
  const elapsedMs = msSince(t0);
  const cpuNs = loopCpuNs(cpuPid) - cpu0;
  return {
    p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), rate: n / (elapsedMs / 1000),
    cpuUs: cpuNs / n / 1000, cpuUsPerMs: cpuNs / 1000 / elapsedMs, elapsedMs, n, cpuNs,
  };
}

/**
 * The same command on both sides in alternating batches (D B, B D, D B, ...); medians over the
 * batches of each batch's p50, p90, rate and (browserd) loop CPU per call.
 */
async function roundTrips(label, direct, viaBd, n, o, bdPid) {
  for (let i = 0; i < o.warmup; i++) {
    await direct();
    await viaBd();
  }
  const res = { direct: [], browserd: [] };
  for (let b = 0; b < o.batches; b++) {
    const order = b % 2 === 0 ? ['direct', 'browserd'] : ['browserd', 'direct'];
    for (const side of order) {
      res[side].push(await batch(side === 'direct' ? direct : viaBd, n, bdPid));
    }
  }
  const m = (side, k) => median(res[side].map((r) => r[k]));
  const out = {};
  for (const side of ['direct', 'browserd']) {
    out[side] = { p50: m(side, 'p50'), p90: m(side, 'p90'), rate: m(side, 'rate'), cpuUs: m(side, 'cpuUs') };
  }
  // browserd's loop does some work of its own (timers, the observer's events, the pool): its
  // rate during the direct batches, where browserd relays nothing of the bench, is taken off
  const idle = m('direct', 'cpuUsPerMs');
  out.browserd.idleUsPerMs = idle;
  out.browserd.netCpuUs = median(res.browserd.map((r) => (r.cpuNs / 1000 - idle * r.elapsedMs) / r.n));
  const spread = (side) => res[side].map((r) => fmt(r.p50, 0)).join(' ');
  console.log(`  ${label}: ${o.batches} x ${n} per side; p50 per batch, direct [${spread('direct')}] µs, browserd [${spread('browserd')}] µs`);
  console.log(`    direct   p50 ${fmt(out.direct.p50)} µs, p90 ${fmt(out.direct.p90)} µs, ${fmt(out.direct.rate, 0)} msg/s`);
  console.log(`    browserd p50 ${fmt(out.browserd.p50)} µs, p90 ${fmt(out.browserd.p90)} µs, ${fmt(out.browserd.rate, 0)} msg/s, loop CPU ${fmt(out.browserd.cpuUs, 2)} µs per round trip (${fmt(out.browserd.netCpuUs, 2)} µs net of its idle ${fmt(idle, 2)} µs per ms)`);
  return out;
}

function reportRoundTrips(name, r, cpuGoal = true) {
  report({ measure: `${name} p50`, baseline: r.direct.p50, browserd: r.browserd.p50, unit: 'µs', ratio: r.browserd.p50 / r.direct.p50, kind: 'lower', goal: 1.05 });
  report({ measure: `${name} p90`, baseline: r.direct.p90, browserd: r.browserd.p90, unit: 'µs', ratio: r.browserd.p90 / r.direct.p90, kind: 'lower', goal: 1.05 });
  report({ measure: `${name} msg/s`, baseline: r.direct.rate, browserd: r.browserd.rate, unit: '/s', digits: 0, ratio: r.browserd.rate / r.direct.rate, kind: 'higher', goal: 0.95 });
  if (!cpuGoal) return;
  report({ measure: `${name} browserd loop CPU/rt`, browserd: r.browserd.cpuUs, unit: 'µs', digits: 2, kind: 'abs', goal: 10 });
  report({ measure: `${name} the same, net of idle`, browserd: r.browserd.netCpuUs, unit: 'µs', digits: 2, kind: 'info' });
}

async function measureRoundTrips(puppeteer, ctx, o) {
  console.log('\n1. small command round trip (Puppeteer, one connected browser per side)');
  const n = o.rtt;
  const gv = await roundTrips('Browser.getVersion on a browser-target CDPSession',
    () => ctx.direct.cdp.send('Browser.getVersion'), () => ctx.bd.cdp.send('Browser.getVersion'), n, o, ctx.bd.pid);
  const ev = await roundTrips("page.evaluate('1+1')",
    () => ctx.direct.page.evaluate('1+1'), () => ctx.bd.page.evaluate('1+1'), Math.max(1, Math.floor(n / 4)),
    { ...o, warmup: Math.floor(o.warmup / 4) }, ctx.bd.pid);
  reportRoundTrips('1. Browser.getVersion', gv);
  reportRoundTrips("1. page.evaluate('1+1')", ev);
}

async function measureLarge(ctx, o) {
  console.log(`\n3. large message: page.evaluate returning a ${o.bigMib} MiB string`);
  const bytes = o.bigMib * 1024 * 1024;
  const fn = (b) => 'x'.repeat(b);
  const once = async (side, cpuPid) => {
    const cpu0 = cpuPid ? loopCpuNs(cpuPid) : 0;
    const t0 = nowNs();
    const s = await ctx[side].page.evaluate(fn, bytes);
    const ms = msSince(t0);
    if (typeof s !== 'string' || s.length !== bytes) throw new Error(`${side}: evaluate returned ${typeof s} of ${s?.length}`);
    return { ms, cpuMs: cpuPid ? (loopCpuNs(cpuPid) - cpu0) / 1e6 : 0 };
  };
  await once('direct');
  await once('bd');
  const res = { direct: [], bd: [] };
  for (let r = 0; r < o.bigReps; r++) {
    const order = r % 2 === 0 ? ['direct', 'bd'] : ['bd', 'direct'];
    for (const side of order) res[side].push(await once(side, side === 'bd' ? ctx.bd.pid : 0));
  }
  const d = median(res.direct.map((x) => x.ms));
  const b = median(res.bd.map((x) => x.ms));
  const cpuPerMib = median(res.bd.map((x) => x.cpuMs)) / o.bigMib;
  console.log(`  ms per rep: direct [${res.direct.map((x) => fmt(x.ms, 0)).join(' ')}], browserd [${res.bd.map((x) => fmt(x.ms, 0)).join(' ')}]; browserd loop CPU per rep [${res.bd.map((x) => fmt(x.cpuMs, 1)).join(' ')}] ms`);
  report({ measure: `3. ${o.bigMib} MiB evaluate result, median`, baseline: d, browserd: b, unit: 'ms', ratio: b / d, kind: 'info' });
  report({ measure: `3. ${o.bigMib} MiB throughput`, baseline: o.bigMib / (d / 1000), browserd: o.bigMib / (b / 1000), unit: 'MiB/s', ratio: d / b, kind: 'higher', goal: 0.97 });
  report({ measure: '3. browserd loop CPU per MiB', browserd: cpuPerMib, unit: 'ms', digits: 3, kind: 'abs', goal: 0.3 });
}

async function measureNavigation(ctx, site, o) {
  console.log(`\n4. local page navigation: page.goto of a ${fmt(site.bytes / 1024, 1)} KB page on 127.0.0.1 (browserd: through its traffic proxy)`);
  let seq = 0;
  const goto = async (side, cpuPid) => {
    const cpu0 = cpuPid ? loopCpuNs(cpuPid) : 0;
    const t0 = nowNs();
    const resp = await ctx[side].page.goto(site.url(++seq), { waitUntil: 'load', timeout: 30000 });
    const ms = msSince(t0);
    if (!resp || resp.status() !== 200) throw new Error(`${side}: goto answered ${resp && resp.status()}`);
    return { ms, cpuMs: cpuPid ? (loopCpuNs(cpuPid) - cpu0) / 1e6 : 0 };
  };
  for (let i = 0; i < 3; i++) {
    await goto('direct');
    await goto('bd');
  }
  const batches = Math.min(o.batches, o.navs);
  const per = Math.ceil(o.navs / batches);
  const res = { direct: [], bd: [] };
  for (let b = 0; b < batches; b++) {
    const order = b % 2 === 0 ? ['direct', 'bd'] : ['bd', 'direct'];
    for (const side of order) {
      for (let i = 0; i < per && res[side].length < o.navs; i++) res[side].push(await goto(side, side === 'bd' ? ctx.bd.pid : 0));
    }
  }
  const d = median(res.direct.map((x) => x.ms));
  const b = median(res.bd.map((x) => x.ms));
  console.log(`  direct p50 ${fmt(d, 2)} ms p90 ${fmt(quantile(res.direct.map((x) => x.ms), 0.9), 2)} ms; browserd p50 ${fmt(b, 2)} ms p90 ${fmt(quantile(res.bd.map((x) => x.ms), 0.9), 2)} ms, loop CPU ${fmt(median(res.bd.map((x) => x.cpuMs)), 3)} ms per navigation`);
  report({ measure: '4. page.goto local 20 KB page, median', baseline: d, browserd: b, unit: 'ms', digits: 2, ratio: b / d, kind: 'lower', goal: 1.1 });
}

/**
 * puppeteer.connect split in two: the WebSocket (TCP connect, upgrade, 101: for browserd, also
 * its zone check and the browser taken from the pool) and Puppeteer's own start on it (target
 * discovery, auto-attach, the pages' sessions). The transport is Puppeteer's own, made as
 * puppeteer.connect({browserWSEndpoint}) makes it; without its module, a plain connect.
 */
async function connectTimed(puppeteer, endpoint) {
  const t0 = nowNs();
  let Transport = null;
  try {
    ({ NodeWebSocketTransport: Transport } = require(path.join(MODULES, 'puppeteer-core', 'lib', 'puppeteer', 'node', 'NodeWebSocketTransport.js')));
  } catch {
    // an other layout of puppeteer-core: no split
  }
  if (!Transport) {
    const browser = await puppeteer.connect({ browserWSEndpoint: endpoint, defaultViewport: null });
    return { browser, wsMs: NaN, connectMs: msSince(t0) };
  }
  const transport = await Transport.create(endpoint, {});
  const wsMs = msSince(t0);
  const browser = await puppeteer.connect({ transport, defaultViewport: null });
  return { browser, wsMs, connectMs: msSince(t0) };
}

async function measureSessions(puppeteer, ctx, site, o) {
  const bd = ctx.bd;
  console.log(`\n2. back-to-back sessions: ${o.sessions} x (connect, browser.version(), close); baseline: connect to the running Chromium, version, disconnect`);
  await waitFor(async () => (await bd.pressure()).pool_warm >= 2, { timeout: 30000, what: 'a warm pool of 2' });
  const misses0 = (await bd.pressure()).pool_misses;
  const res = { direct: { connect: [], ws: [], cycle: [] }, bd: { connect: [], ws: [], cycle: [] } };
  const cycle = async (side) => {
    const t0 = nowNs();
    const { browser, wsMs, connectMs } = await connectTimed(puppeteer, side === 'bd' ? bd.endpoint : ctx.direct.endpoint);
    await browser.version();
    if (side === 'bd') await browser.close();
    else await browser.disconnect();
    res[side].connect.push(connectMs);
    res[side].ws.push(wsMs);
    res[side].cycle.push(msSince(t0));
  };
  for (let i = 0; i < o.sessions; i++) {
    const order = i % 2 === 0 ? ['direct', 'bd'] : ['bd', 'direct'];
    for (const side of order) await withTimeout(cycle(side), 60000, `session ${i} (${side})`);
  }
  ctx.expectedSessions += o.sessions;
  const misses = (await bd.pressure()).pool_misses - misses0;
  const list = (v) => v.map((x) => fmt(x, 0)).join(' ');
  console.log(`  browserd connect ms: ${list(res.bd.connect)}`);
  console.log(`  direct   connect ms: ${list(res.direct.connect)}`);
  console.log(`  browserd sessions that found no warm browser (pool_misses): ${misses} of ${o.sessions}`);
  const split = (r) => `WebSocket open median ${fmt(median(r.ws), 1)} ms (p90 ${fmt(quantile(r.ws, 0.9), 1)}), Puppeteer's start on it median ${fmt(median(r.connect.map((c, i) => c - r.ws[i])), 1)} ms`;
  console.log(`  connect split: browserd ${split(res.bd)}; direct ${split(res.direct)}`);
  const q = (side, k, p) => quantile(res[side][k], p);
  report({ measure: '2. back-to-back connect, median', baseline: q('direct', 'connect', 0.5), browserd: q('bd', 'connect', 0.5), unit: 'ms', ratio: q('bd', 'connect', 0.5) / q('direct', 'connect', 0.5), kind: 'abs', goal: 20 });
  report({ measure: '2. back-to-back connect, p90', baseline: q('direct', 'connect', 0.9), browserd: q('bd', 'connect', 0.9), unit: 'ms', ratio: q('bd', 'connect', 0.9) / q('direct', 'connect', 0.9), kind: 'abs', goal: 50 });
  report({ measure: '2. back-to-back whole cycle, median', baseline: q('direct', 'cycle', 0.5), browserd: q('bd', 'cycle', 0.5), unit: 'ms', ratio: q('bd', 'cycle', 0.5) / q('direct', 'cycle', 0.5), kind: 'info' });

  if (!o.steady) return;
  console.log(`\n2b. steady 1 session/s: ${o.steady} x (connect, newPage, goto local page, close), the baseline's half a second after each`);
  await waitFor(async () => (await bd.pressure()).pool_warm >= 2, { timeout: 30000, what: 'a warm pool of 2' });
  const misses1 = (await bd.pressure()).pool_misses;
  const st = { direct: { connect: [], ws: [], cycle: [] }, bd: { connect: [], ws: [], cycle: [] } };
  let seq = 0;
  const steadyOne = async (side) => {
    const t0 = nowNs();
    const { browser, wsMs, connectMs } = await connectTimed(puppeteer, side === 'bd' ? bd.endpoint : ctx.direct.endpoint);
    st[side].ws.push(wsMs);
    st[side].connect.push(connectMs);
    try {
      const page = await browser.newPage();
      await page.goto(site.url(`steady-${++seq}`), { waitUntil: 'load', timeout: 30000 });
      if (side === 'bd') {
        await browser.close();
      } else {
        await page.close();
        await browser.disconnect();
      }
    } catch (e) {
      if (side === 'bd') await browser.close().catch(() => {});
      else await browser.disconnect().catch(() => {});
      throw e;
    }
    st[side].cycle.push(msSince(t0));
  };
  const start = Date.now() + 100;
  const tasks = [];
  for (let i = 0; i < o.steady; i++) {
    for (const [side, offset] of [['bd', 0], ['direct', 500]]) {
      tasks.push((async () => {
        await sleep(Math.max(0, start + i * 1000 + offset - Date.now()));
        await withTimeout(steadyOne(side), 60000, `steady session ${i} (${side})`);
      })());
    }
  }
  await Promise.all(tasks);
  ctx.expectedSessions += o.steady;
  const misses2 = (await bd.pressure()).pool_misses - misses1;
  console.log(`  browserd connect ms: ${list(st.bd.connect)}`);
  console.log(`  direct   connect ms: ${list(st.direct.connect)}`);
  console.log(`  connect split: browserd ${split(st.bd)}; direct ${split(st.direct)}`);
  console.log(`  whole session median: direct ${fmt(median(st.direct.cycle), 1)} ms, browserd ${fmt(median(st.bd.cycle), 1)} ms; pool_misses ${misses2} of ${o.steady}`);
  const s = (side, k, p) => quantile(st[side][k], p);
  report({ measure: '2b. steady 1/s connect, median', baseline: s('direct', 'connect', 0.5), browserd: s('bd', 'connect', 0.5), unit: 'ms', ratio: s('bd', 'connect', 0.5) / s('direct', 'connect', 0.5), kind: 'abs', goal: 20 });
  report({ measure: '2b. steady 1/s connect, p90', baseline: s('direct', 'connect', 0.9), browserd: s('bd', 'connect', 0.9), unit: 'ms', ratio: s('bd', 'connect', 0.9) / s('direct', 'connect', 0.9), kind: 'abs', goal: 50 });
}

async function measurePlaywright(ctx, o) {
  if (!o.pwRtt) return;
  let chromium;
  try {
    ({ chromium } = require(path.join(MODULES, 'playwright-core')));
  } catch (e) {
    console.log(`\n5. Playwright: skipped (playwright-core not loadable: ${e.message})`);
    return;
  }
  console.log('\n5. small command round trip with Playwright (chromium.connectOverCDP)');
  const side = async (endpoint) => {
    const browser = await chromium.connectOverCDP(endpoint);
    const context = browser.contexts()[0];
    const page = await context.newPage();
    const cdp = await browser.newBrowserCDPSession();
    return { browser, page, cdp };
  };
  const direct = await side(ctx.direct.endpoint);
  ctx.playwright.push(direct.browser);
  const bd = await side(ctx.bd.endpoint);
  ctx.playwright.push(bd.browser);
  ctx.expectedSessions += 1;
  const gv = await roundTrips('Browser.getVersion on a browser CDPSession',
    () => direct.cdp.send('Browser.getVersion'), () => bd.cdp.send('Browser.getVersion'), o.pwRtt, o, ctx.bd.pid);
  const ev = await roundTrips("page.evaluate('1+1')",
    () => direct.page.evaluate('1+1'), () => bd.page.evaluate('1+1'), Math.max(1, Math.floor(o.pwRtt / 4)),
    { ...o, warmup: Math.floor(o.warmup / 4) }, ctx.bd.pid);
  report({ measure: '5. Playwright Browser.getVersion p50', baseline: gv.direct.p50, browserd: gv.browserd.p50, unit: 'µs', ratio: gv.browserd.p50 / gv.direct.p50, kind: 'lower', goal: 1.05 });
  report({ measure: "5. Playwright page.evaluate('1+1') p50", baseline: ev.direct.p50, browserd: ev.browserd.p50, unit: 'µs', ratio: ev.browserd.p50 / ev.direct.p50, kind: 'lower', goal: 1.05 });
  // connectOverCDP's close() closes the WebSocket (checked in playwright-core 1.65: its
  // "browser process" is the transport): browserd ends that session, the direct Chromium stays
  await bd.browser.close();
  await direct.cdp.detach().catch(() => {});
  await direct.page.close().catch(() => {});
  await direct.browser.close();
  if (direct.browser.isConnected()) throw new Error('Playwright still connected to the direct Chromium');
}

/** Waits until no session runs, then checks that the expected number was recorded. */
async function checkSessions(ctx) {
  const bd = ctx.bd;
  const running = async () => (await bd.api('/browser_sessions?status=running&limit=1')).json?.total;
  try {
    await waitFor(async () => (await running()) === 0, { timeout: 20000, what: 'no running session' });
  } catch (e) {
    console.log(`  (sessions still running: ${await running()})`);
  }
  const r = await bd.api('/browser_sessions?limit=1');
  if (r.status !== 200) throw new Error(`GET /browser_sessions: ${r.status} ${r.text}`);
  const total = r.json.total;
  console.log(`\nsessions recorded by browserd: ${total} (expected ${ctx.expectedSessions})`);
  if (total !== ctx.expectedSessions) throw new Error(`browserd recorded ${total} sessions, expected ${ctx.expectedSessions}`);
}

// ------------------------------------------------------------------ the run ----

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.browserd)) throw new Error(`no browserd binary at ${o.browserd}`);
  if (!fs.existsSync(path.join(MODULES, 'puppeteer-core'))) throw new Error(`no ${MODULES}/puppeteer-core (cd tests/e2e && npm ci)`);
  const puppeteer = require(path.join(MODULES, 'puppeteer-core'));

  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'client_bench.'));
  const ctx = { tmp, procs: [], browsers: [], playwright: [], expectedSessions: 0 };
  let failure = null;
  const abort = setTimeout(() => {
    console.error(`client_bench: the run took longer than --limit ${o.limit} s; stopping`);
    cleanup(ctx).finally(() => process.exit(2));
  }, o.limit * 1000);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      console.error(`client_bench: ${sig}; stopping`);
      cleanup(ctx).finally(() => process.exit(130));
    });
  }

  const la = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const ver = spawnSync(o.browserd, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const git = spawnSync('git', ['-C', REPO, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout.trim();
  console.log(`client_bench ${new Date().toISOString()} | ${os.cpus().length} cores | load average ${la} | node ${process.version} | ${ver || o.browserd} (${o.browserd}; sources ${git || 'unknown'})`);
  console.log(`options: batches ${o.batches}, rtt ${o.rtt}/batch (evaluate ${Math.floor(o.rtt / 4)}), warm-up ${o.warmup}, sessions ${o.sessions}, steady ${o.steady}, big ${o.bigReps} x ${o.bigMib} MiB, navs ${o.navs}, playwright rtt ${o.pwRtt}/batch${o.quick ? ' (--quick)' : ''}`);
  try {
    ctx.dns = await startFakeDns();
    console.log(ctx.dns
      ? `DNS: browserd and the direct Chromium resolve through ${ctx.dns.address} (NXDOMAIN for everything), in mount namespaces of their own`
      : 'DNS: not isolated (needs root and unshare): Chromium\'s own lookups use the system resolver');
    ctx.site = await startSite();
    const register = (p) => ctx.procs.push(p);
    const bd = await startBrowserd(o, tmp, ctx.dns, '127.0.0.0/8', register);
    const direct = await startChromium(o, tmp, ctx.dns, register);
    ctx.bd = bd;
    ctx.direct = direct;
    await waitFor(async () => (await bd.pressure()).pool_warm >= 2, { timeout: 30000, what: 'a warm pool of 2' });

    // one long-lived browser per side for measures 1, 3 and 4
    const open = async (endpoint) => {
      const browser = await puppeteer.connect({ browserWSEndpoint: endpoint, defaultViewport: null, protocolTimeout: 120000 });
      ctx.browsers.push(browser);
      const cdp = await browser.target().createCDPSession();
      const page = await browser.newPage();
      return { browser, cdp, page };
    };
    Object.assign(direct, await open(direct.endpoint));
    Object.assign(bd, await open(bd.endpoint));
    ctx.expectedSessions += 1;
    console.log(`browserd pid ${bd.pid} (CDP 127.0.0.1:${bd.cdpPort}); direct Chromium pid ${direct.proc.pid} (${direct.endpoint.replace(/\/devtools.*/, '')}); ${await direct.browser.version()}`);

    await measureRoundTrips(puppeteer, ctx, o);
    await measureLarge(ctx, o);
    await measureNavigation(ctx, ctx.site, o);
    await bd.browser.close();
    await direct.page.close();
    await direct.cdp.detach().catch(() => {});
    await direct.browser.disconnect();
    // Playwright before the session storms of measure 2 (which launch a Chromium per session
    // and leave the pool grown for 30 s), on a direct Chromium that has had one client only
    await waitFor(async () => (await bd.pressure()).pool_warm >= 2, { timeout: 30000, what: 'a warm pool of 2' });
    await measurePlaywright(ctx, o);
    await measureSessions(puppeteer, ctx, ctx.site, o);
    await checkSessions(ctx);
  } catch (e) {
    failure = e;
    console.error(`\nclient_bench: ERROR: ${e.stack || e}`);
    if (ctx.bd && ctx.bd.proc.stderr) console.error(`browserd's last log lines:\n${ctx.bd.proc.stderr.slice(-1500)}`);
  }
  const left = await cleanup(ctx);
  clearTimeout(abort);
  console.log(`run took ${fmt((Date.now() - started) / 1000, 0)} s; DNS queries answered NXDOMAIN: ${ctx.dns ? ctx.dns.queries.length : '-'}; pages served: ${ctx.site ? ctx.site.requests() : '-'}`);
  console.log(`processes of this run left (naming ${tmp}): ${left}`);
  console.log('');
  printTable();
  if (failure) process.exitCode = 1;
  if (left) process.exitCode = 1;
}

let cleaning = null;
/** Stops everything of the run; returns the number of its processes still alive. */
function cleanup(ctx) {
  if (!cleaning) cleaning = (async () => {
    for (const b of ctx.playwright) await withTimeout(b.close(), 5000, 'playwright close').catch(() => {});
    for (const b of ctx.browsers) if (b.connected) await withTimeout(b.disconnect(), 5000, 'disconnect').catch(() => {});
    for (const p of ctx.procs.slice().reverse()) await p.stop({ group: p.name !== 'browserd', graceMs: 15000 });
    // what still names the temp dir 2 s after the stops (a supervisor, a Chromium helper) is
    // left over: counted, then killed (it is ours: everything of the run names the temp dir)
    const naming = () => {
      const r = spawnSync('pgrep', ['-f', '--', ctx.tmp], { encoding: 'utf8' });
      return r.stdout.split('\n').filter((l) => l && Number(l) !== process.pid).map(Number);
    };
    let left = [];
    for (let i = 0; i < 10; i++) {
      left = naming();
      if (!left.length) break;
      await sleep(200);
    }
    for (const p of processesNaming(ctx.tmp)) console.log(`  left: ${p.pid} ${p.cmd}`);
    for (let i = 0; i < 25 && naming().length; i++) {
      for (const pid of naming()) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await sleep(200);
    }
    const still = naming().length;
    if (still) console.log(`  ${still} process(es) of the run survived SIGKILL`);
    if (ctx.site) await ctx.site.close();
    if (ctx.dns) ctx.dns.server.close(); // its directory goes with the process (the harness's exit hook)
    fs.rmSync(ctx.tmp, { recursive: true, force: true });
    return left.length;
  })();
  return cleaning;
}

// bench/load_mixed.js runs browserd, the site and its clients the same way
module.exports = { startFakeDns, startSite, startBrowserd, Proc, cleanup, quantile, fmt, loopCpuNs, MODULES, REPO };

if (require.main === module) {
  main().catch((e) => {
    console.error(`client_bench: ${e.stack || e}`);
    process.exitCode = 1;
  });
}
