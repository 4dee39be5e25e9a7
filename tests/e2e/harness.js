'use strict';
// Shared harness of the end-to-end suite: a browserd per test (temp DB, free ports, its own
// TMPDIR so that its profile root is unique), local test pages served from this process
// (loopback only), a fake DNS resolver for the daemon's Chromium (see below), API helpers,
// and a teardown that always kills the daemon and then checks that no Chromium, supervisor
// or profile directory of that daemon is left.
//
// DNS: Chromium resolves every host name through the system resolver, `.invalid` included
// (checked: it queries the nameserver of /etc/resolv.conf for it), and headless Chromium also
// looks up a few Google update hosts on its own. So that no DNS query of the suite leaves the
// machine, each daemon runs in a mount namespace of its own (`unshare -m`, root only) where
// /etc/resolv.conf names a loopback address on which this process answers NXDOMAIN to every
// query. Without unshare (not root), the daemon runs as is and tests that need a failed name
// resolution are skipped (`dnsIsolated()` says which case holds).

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const dgram = require('node:dgram');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const test = require('node:test');

const REPO = path.resolve(__dirname, '..', '..');
const BIN = process.env.BROWSERD_BIN ? path.resolve(process.env.BROWSERD_BIN) : path.join(REPO, 'build', 'browserd');
const UID = process.getuid();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ small helpers ----

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls fn() until it returns a truthy value (returned) or the time is up (throws). */
async function waitFor(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(interval);
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function httpRequest({ port, method = 'GET', path: p = '/', headers = {}, body = null, host = '127.0.0.1', localAddress }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: p, headers, agent: false, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

// ------------------------------------------------------------------ processes ----

/** Every live process whose environment carries this tag or whose command line names dir. */
function processesOf(tag, dir) {
  const found = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    const pid = Number(ent);
    if (pid === process.pid) continue;
    let cmdline = '';
    let environ = '';
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      // gone, or a kernel thread
    }
    if (!cmdline) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
      if (/\) Z /.test(stat)) continue; // a zombie owns nothing any more
    } catch {
      continue;
    }
    const env = environ.split('\0');
    if (env.includes(`BROWSERD_E2E_TAG=${tag}`) || (dir && cmdline.includes(dir))) {
      found.push({ pid, cmd: cmdline.split('\0').join(' ').slice(0, 200) });
    }
  }
  return found;
}

// ------------------------------------------------------------------ fake DNS ----

let dnsState = null; // { resolvConf, address, server }

function dnsIsolated() {
  if (process.env.E2E_NO_DNS_ISOLATION) return false;
  if (UID !== 0) return false;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'true']);
  return r.status === 0;
}
let dnsIsolatedCache;
function canIsolateDns() {
  if (dnsIsolatedCache === undefined) dnsIsolatedCache = dnsIsolated();
  return dnsIsolatedCache;
}

/** A resolver on 127.77.0.53:53 that answers NXDOMAIN to everything (and logs the names). */
async function fakeDns() {
  if (dnsState) return dnsState;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-e2e-dns-'));
  const queries = [];
  for (const address of ['127.77.0.53', '127.78.0.53', '127.79.0.53']) {
    const server = dgram.createSocket('udp4');
    const ok = await new Promise((resolve) => {
      server.once('error', () => resolve(false));
      server.bind(53, address, () => resolve(true));
    });
    if (!ok) {
      server.close();
      continue;
    }
    server.on('message', (msg, rinfo) => {
      if (msg.length < 12) return;
      let i = 12;
      const labels = [];
      while (i < msg.length && msg[i] !== 0 && labels.length < 64) {
        labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString('latin1'));
        i += 1 + msg[i];
      }
      queries.push(labels.join('.'));
      const end = Math.min(msg.length, i + 5); // name end + QTYPE + QCLASS
      const reply = Buffer.concat([
        msg.subarray(0, 2),
        Buffer.from([0x81 | (msg[2] & 0x01), 0x83]), // response, RD copied, RA, NXDOMAIN
        Buffer.from([0, 1, 0, 0, 0, 0, 0, 0]), // one question, no answers
        msg.subarray(12, end),
      ]);
      server.send(reply, rinfo.port, rinfo.address);
    });
    server.unref();
    const resolvConf = path.join(dir, 'resolv.conf');
    fs.writeFileSync(resolvConf, `nameserver ${address}\noptions timeout:1 attempts:1\n`);
    dnsState = { resolvConf, address, server, queries, dir };
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true })); // nothing left in TMPDIR
    return dnsState;
  }
  throw new Error('cannot bind a fake DNS resolver on 127.77.0.53, 127.78.0.53 or 127.79.0.53 port 53');
}

// ------------------------------------------------------------------ test pages ----

const PAGE_HEAD = '<!doctype html><meta charset="utf-8">';

/** The local site Chromium visits: http://127.0.0.1:<port>/... (loopback only). */
class PageServer {
  constructor() {
    this.requests = []; // {method, url, body}
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 1000;
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.server.unref();
    this.port = this.server.address().port;
    this.origin = `http://127.0.0.1:${this.port}`;
    return this;
  }

  url(p) {
    return this.origin + p;
  }

  async close() {
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.requests.push({ method: req.method, url: req.url, body });
      this.route(req, res, body);
    });
  }

  route(req, res, body) {
    const u = new URL(req.url, this.origin);
    // no-store: no page goes into the back/forward cache, so a history traversal loads a
    // document (the contract counts those) rather than restoring one
    const html = (status, text, extra = {}) => {
      res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', ...extra });
      res.end(PAGE_HEAD + text);
    };
    const p = u.pathname;
    if (p === '/favicon.ico') return html(404, 'no icon');
    if (p === '/p/1') return html(200, '<title>one</title><h1>one</h1><a id="next" href="/p/2">two</a>');
    if (p === '/p/2')
      return html(
        200,
        '<title>two</title><h1>two</h1>' +
          '<form id="form" method="post" action="/submit"><input id="q" name="q" value="hello">' +
          '<button id="send" type="submit">send</button></form>',
      );
    if (p === '/p/3') return html(200, '<title>three</title><h1>three</h1>');
    if (p === '/submit') {
      if (req.method !== 'POST') return html(405, 'post only', { Allow: 'POST' });
      const q = new URLSearchParams(body).get('q');
      return html(200, `<title>submitted</title><p id="got">${escapeHtml(String(q))}</p>`);
    }
    if (p === '/spa')
      return html(
        200,
        '<title>spa</title><a id="frag" href="#section">fragment</a>' +
          '<button id="push" onclick="history.pushState({n: 1}, \'\', \'/spa/pushed?x=1\')">push</button>' +
          '<div id="section" style="margin-top: 2000px">section</div>',
      );
    if (p === '/redirect/a') {
      res.writeHead(302, { Location: '/redirect/b', 'Cache-Control': 'no-store' });
      return res.end();
    }
    if (p === '/redirect/b') {
      res.writeHead(301, { Location: '/landing?from=redirect', 'Cache-Control': 'no-store' });
      return res.end();
    }
    if (p === '/landing') return html(200, '<title>landing</title><h1>landed</h1>');
    if (p === '/popup')
      return html(
        200,
        '<title>opener</title>' +
          '<button id="open" onclick="window.open(\'/popup/target\', \'pop\', \'popup\')">open</button>',
      );
    if (p === '/popup/target') return html(200, '<title>popup</title><h1>popup</h1>');
    if (p === '/slow') {
      const ms = Math.min(Number(u.searchParams.get('ms') || 1000), 30000);
      const t = setTimeout(() => html(200, `<title>slow</title><p>after ${ms} ms</p>`), ms);
      res.on('close', () => clearTimeout(t));
      return undefined;
    }
    if (p === '/blank') return html(200, '<title>blank</title>');
    return html(404, '<title>not found</title>');
  }
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

let pageServer = null;
async function pages() {
  if (!pageServer) pageServer = await new PageServer().start();
  return pageServer;
}

// ------------------------------------------------------------------ the daemon ----

let daemonSeq = 0;

class Daemon {
  /**
   * opts: args (extra serve options), pool (default 0), site (let the browsers reach the local
   * test pages on 127.0.0.1: browserd's traffic proxy refuses loopback addresses by default),
   * db / root / creds (to restart on the same database and temp root), env (extra environment)
   */
  constructor(opts = {}) {
    this.opts = opts;
    this.root = opts.root || fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-e2e-'));
    this.tmpdir = path.join(this.root, 'tmp');
    fs.mkdirSync(this.tmpdir, { recursive: true });
    this.profileRoot = path.join(this.tmpdir, `browserd-${UID}`);
    this.db = opts.db || path.join(this.root, 'browserd.db');
    // E2E_RUN_ID (set by run.sh) scopes run.sh's final sweep to this run's processes
    this.tag = opts.tag || `${process.env.E2E_RUN_ID || 'adhoc'}-${process.pid}-${Date.now()}-${++daemonSeq}`;
    this.creds = opts.creds || null;
    this.logPath = path.join(this.root, `browserd-${++daemonSeq}.log`);
    this.log = '';
    this.exited = null; // {code, signal}
  }

  async start() {
    this.apiPort = await freePort();
    this.cdpPort = await freePort();
    this.webdriverPort = await freePort();
    const pool = this.opts.pool ?? 0;
    const args = [
      '--db', this.db, 'serve',
      '--api-listen', `127.0.0.1:${this.apiPort}`,
      '--cdp-listen', `127.0.0.1:${this.cdpPort}`,
      '--pool', String(pool),
      ...(this.opts.site ? ['--allow-private', '127.0.0.1/32'] : []),
      // a port of its own (the default 9515 is one per machine; nothing runs there until a
      // WebDriver client comes)
      ...((this.opts.args || []).includes('--webdriver-listen') ? [] : ['--webdriver-listen', `127.0.0.1:${this.webdriverPort}`]),
      ...(this.opts.args || []),
    ];
    // the test's own BROWSERD_* (opts.env) are kept, those of the caller's environment are not
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('BROWSERD_')) delete env[k];
    Object.assign(env, this.opts.env || {}, { TMPDIR: this.tmpdir, BROWSERD_E2E_TAG: this.tag });
    let cmd = BIN;
    let argv = args;
    if (canIsolateDns()) {
      const dns = await fakeDns();
      cmd = 'unshare';
      argv = ['-m', '--propagation', 'private', 'sh', '-c',
        'mount --bind "$0" /etc/resolv.conf && exec "$@"', dns.resolvConf, BIN, ...args];
    }
    this.proc = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.proc.pid;
    // (the supervisors inherit browserd's stderr and may still write after browserd died)
    const toLog = (d) => {
      try {
        fs.appendFileSync(this.logPath, d);
      } catch {
        // the root is gone (teardown): only the in-memory copy is kept
      }
    };
    let stdout = '';
    this.proc.stdout.on('data', (d) => {
      stdout += d.toString();
      toLog(d);
    });
    this.proc.stderr.on('data', (d) => {
      this.log += d.toString();
      if (this.log.length > 1 << 20) this.log = this.log.slice(-(1 << 19));
      toLog(d);
    });
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      });
    });

    await waitFor(
      async () => {
        if (this.exited) throw new Error(`browserd exited (${JSON.stringify(this.exited)}): ${this.log.slice(-2000)}`);
        const r = await httpRequest({ port: this.apiPort, path: '/healthz' });
        return r.status === 200;
      },
      { timeout: 15000, interval: 50, what: 'browserd /healthz' },
    ).catch((e) => {
      if (this.exited) throw new Error(`browserd exited early: ${JSON.stringify(this.exited)}\n${this.log.slice(-3000)}`);
      throw e;
    });
    await waitFor(() => tcpConnects(this.cdpPort), { timeout: 10000, interval: 50, what: 'the CDP port' });
    if (!this.creds) {
      const kv = Object.fromEntries(
        stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      assert.ok(kv.api_key && kv.zone_password, `browserd printed no credentials on a fresh database: ${stdout}`);
      this.creds = { customer: kv.customer_id, apiKey: kv.api_key, zone: kv.zone, password: kv.zone_password };
      assert.equal(this.creds.customer, 'default');
      assert.equal(this.creds.zone, 'scraping_browser1');
    }
    return this;
  }

  get running() {
    return this.proc && !this.exited;
  }

  /** ws://brd-customer-<c>-zone-<z>:<pw>@127.0.0.1:<cdp> with any part overridden. */
  wsEndpoint(o = {}) {
    return `ws://${this.userinfo(o)}@127.0.0.1:${this.cdpPort}`;
  }

  /** http://brd-customer-<c>-zone-<z>:<pw>@127.0.0.1:<webdriver>: Selenium's remote URL. */
  webdriverUrl(o = {}) {
    return `http://${this.userinfo(o)}@127.0.0.1:${this.webdriverPort}`;
  }

  httpEndpoint(o = {}) {
    return `http://${this.userinfo(o)}@127.0.0.1:${this.cdpPort}`;
  }

  userinfo({ customer = this.creds.customer, zone = this.creds.zone, password = this.creds.password } = {}) {
    return `brd-customer-${customer}-zone-${zone}:${encodeURIComponent(password)}`;
  }

  basicAuth(o = {}) {
    const { customer = this.creds.customer, zone = this.creds.zone, password = this.creds.password } = o;
    return 'Basic ' + Buffer.from(`brd-customer-${customer}-zone-${zone}:${password}`).toString('base64');
  }

  async api(method, p, { key = this.creds.apiKey, body, localAddress } = {}) {
    const headers = key ? { Authorization: `Bearer ${key}` } : {};
    return httpRequest({ port: this.apiPort, method, path: p, headers, body, localAddress });
  }

  async session(id) {
    const r = await this.api('GET', `/browser_sessions/${id}`);
    assert.equal(r.status, 200, `GET /browser_sessions/${id}: ${r.status} ${r.text}`);
    return r.json.session;
  }

  async sessions(query = '') {
    const r = await this.api('GET', `/browser_sessions${query ? '?' + query : ''}`);
    assert.equal(r.status, 200, `GET /browser_sessions: ${r.status} ${r.text}`);
    return r.json.sessions;
  }

  /** Waits until the session's record is no longer running; returns it. */
  async ended(id, timeout = 10000) {
    return waitFor(
      async () => {
        const s = await this.session(id);
        return s.status !== 'running' ? s : null;
      },
      { timeout, what: `session ${id} to end` },
    );
  }

  /** The single session of this daemon (waits for it to appear). */
  async onlySession(timeout = 10000) {
    return waitFor(
      async () => {
        const list = await this.sessions();
        return list.length === 1 ? list[0] : null;
      },
      { timeout, what: 'exactly one session record' },
    );
  }

  /** Integer gauges of /metrics by name (each 0 when absent or when metrics are off). */
  async gauges(...names) {
    const r = await this.api('GET', '/metrics', { key: null });
    return names.map((name) => (r.status !== 200 ? 0
      : Number((new RegExp(`^${name} (\\d+)$`, 'm').exec(r.text) || [0, 0])[1])));
  }

  /** The browsers the warm pool holds now, warm or starting (from /metrics; 0 when it is off). */
  async poolBrowsers() {
    const [warm, starting] = await this.gauges('browserd_pool_warm', 'browserd_pool_starting');
    return warm + starting;
  }

  /** The pooled browsers ready to be taken now (from /metrics; 0 when it is off). */
  async poolWarm() {
    return (await this.gauges('browserd_pool_warm'))[0];
  }

  /** Chromium main processes of this daemon: {pid, profile} (by --user-data-dir under the root). */
  chromiumMains() {
    const out = [];
    for (const p of processesOf(this.tag, this.profileRoot)) {
      let argv;
      try {
        argv = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'latin1').split('\0');
      } catch {
        continue;
      }
      const udd = argv.find((a) => a.startsWith('--user-data-dir='));
      if (!udd || argv.some((a) => a.startsWith('--type='))) continue;
      if (!udd.includes(this.profileRoot)) continue;
      if (argv.includes('__browser-supervisor')) continue;
      out.push({ pid: p.pid, profile: udd.slice('--user-data-dir='.length), argv });
    }
    return out;
  }

  profiles() {
    try {
      return fs.readdirSync(this.profileRoot);
    } catch {
      return [];
    }
  }

  signal(sig) {
    if (this.running) this.proc.kill(sig);
  }

  async waitExit(timeout = 15000) {
    return withTimeout(this.exitPromise, timeout, 'browserd to exit');
  }

  /** SIGTERM, then SIGKILL if it has not stopped in time. Returns the exit status. */
  async stop(timeout = 10000) {
    if (!this.proc) return null;
    if (this.running) {
      // the first SIGTERM drains (sessions may go on), the second ends them at once
      this.proc.kill('SIGTERM');
      await sleep(200);
      if (this.running) this.proc.kill('SIGTERM');
      try {
        await this.waitExit(timeout);
      } catch {
        this.proc.kill('SIGKILL');
        await this.waitExit(5000);
        this.stopTimedOut = true;
      }
    }
    return this.exited;
  }

  /** What is left of this daemon: processes (tag or profile root) and profile directories. */
  leftovers() {
    return { processes: processesOf(this.tag, this.profileRoot), profiles: this.profiles() };
  }

  /** Polls until nothing is left; returns the leftovers then (empty when clean). */
  async waitClean(timeout = 8000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const l = this.leftovers();
      if (!l.processes.length && !l.profiles.length) return l;
      if (Date.now() > deadline) return l;
      await sleep(100);
    }
  }

  /** Kills whatever is left (so that a failure does not leak into the next test). */
  forceClean() {
    for (const p of processesOf(this.tag, this.profileRoot)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(this.profileRoot, { recursive: true, force: true });
  }
}

function tcpConnects(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// ------------------------------------------------------------------ test wrapper ----

/** Per-test context: daemons and clients to clean up, checks at the end. */
class Ctx {
  constructor(t) {
    this.t = t;
    this.startedAt = Date.now();
    this.daemons = [];
    this.cleanups = [];
    this.finals = [];
  }

  async daemon(opts = {}) {
    const d = new Daemon(opts);
    this.daemons.push(d);
    await d.start();
    return d;
  }

  /** Restarts on the same database and temp root (the old process must be gone). */
  async restart(old, opts = {}) {
    assert.ok(!old.running, 'restart: the old daemon still runs');
    return this.daemon({ ...old.opts, ...opts, db: old.db, root: old.root, creds: old.creds, tag: old.tag });
  }

  /** Registers a cleanup (client disconnects, sockets): run first at teardown, errors ignored. */
  defer(fn) {
    this.cleanups.push(fn);
  }

  /** Registers what must outlive the daemons (their database server): run last, errors ignored. */
  finally(fn) {
    this.finals.push(fn);
  }

  async pages() {
    return pages();
  }

  log(msg) {
    for (const line of String(msg).split('\n')) this.t.diagnostic(line);
  }

  async teardown(failed) {
    for (const fn of this.cleanups.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), 5000, 'cleanup');
      } catch {
        // best effort
      }
    }
    const problems = [];
    // While the daemons still run and the clients are gone: no session may still be running,
    // and no browser but the warm pool's may be left (the daemon's stop would hide such a leak).
    for (const d of this.daemons) {
      if (!d.running || failed) continue;
      const pool = d.opts.pool ?? 0;
      let state;
      try {
        state = await waitFor(
          async () => {
            const running = (await d.sessions('status=running')).map((x) => x.session_id);
            const mains = d.chromiumMains().length;
            const profiles = d.profiles().length;
            // the pool may have grown with the test's sessions (--pool-max) and shrinks back only
            // after 30 s idle: its own browsers (warm or starting, as /metrics counts them) are no
            // leak; any other browser is
            const wanted = Math.max(pool, pool ? await d.poolBrowsers() : 0);
            const st = { running, mains, profiles, wanted };
            return !running.length && mains <= wanted && profiles <= wanted ? st : (state = st, null);
          },
          { timeout: 8000, interval: 200, what: 'sessions to end and their browsers to go' },
        );
      } catch (e) {
        problems.push(`after the test, with the clients gone (pool ${pool}): ${JSON.stringify(state)}: ${e.message}`);
      }
    }
    for (const d of this.daemons) {
      try {
        await d.stop();
      } catch (e) {
        problems.push(`stopping browserd ${d.pid}: ${e.message}`);
      }
      if (d.stopTimedOut) problems.push(`browserd ${d.pid} did not stop within 10 s of SIGTERM (SIGKILLed)`);
    }
    const seen = new Set();
    for (const d of this.daemons) {
      if (seen.has(d.tag)) continue;
      seen.add(d.tag);
      const left = await d.waitClean();
      if (left.processes.length || left.profiles.length) {
        problems.push(
          `left behind by browserd (root ${d.root}): ` +
            `processes ${JSON.stringify(left.processes)}, profile dirs ${JSON.stringify(left.profiles)}`,
        );
        d.forceClean();
      }
    }
    for (const fn of this.finals.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), 30000, 'final cleanup');
      } catch {
        // best effort
      }
    }
    if (failed || problems.length) {
      for (const d of this.daemons) {
        this.log(`browserd log (${d.logPath}), last lines:\n` + d.log.split('\n').slice(-40).join('\n'));
      }
    } else if (!process.env.E2E_KEEP) {
      for (const d of this.daemons) fs.rmSync(d.root, { recursive: true, force: true });
    }
    return problems;
  }
}

/**
 * e2e(name, [options], async (ctx) => ...): a test with a per-test teardown that always runs:
 * cleanups, every daemon killed, and then a check that none left a Chromium, a supervisor or
 * a profile directory (polled for a few seconds). A leftover fails the test.
 */
function e2e(name, options, fn) {
  if (typeof options === 'function') {
    fn = options;
    options = {};
  }
  const { timeout = 60000, ...rest } = options;
  test(name, { timeout, ...rest }, async (t) => {
    const ctx = new Ctx(t);
    let error = null;
    try {
      await fn(ctx);
    } catch (e) {
      error = e;
    }
    const problems = await ctx.teardown(!!error);
    if (error) {
      if (problems.length) ctx.log(problems.join('\n'));
      throw error;
    }
    if (problems.length) assert.fail(problems.join('\n'));
  });
}

// ------------------------------------------------------------------ record checks ----

const FIELD_ORDER = [
  'session_id', 'api_name', 'status', 'target_url', 'end_url', 'navigations',
  'timestamp', 'duration', 'captcha', 'bandwidth', 'error',
];

/**
 * The checks every ended record must pass: field order and types, UUIDv7, timestamp within
 * [from, to] (ms since the epoch; the record has whole seconds), duration within
 * [minDuration, maxDuration] seconds with millisecond precision.
 */
function checkRecord(rec, { from, to, minDuration = 0, maxDuration, zone = 'scraping_browser1' }) {
  assert.deepEqual(Object.keys(rec), FIELD_ORDER, 'fields and their order');
  assert.match(rec.session_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUIDv7');
  assert.equal(rec.api_name, zone);
  assert.ok(['running', 'finished', 'failed'].includes(rec.status), `status ${rec.status}`);
  assert.match(rec.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const ts = Date.parse(rec.timestamp);
  assert.ok(ts >= Math.floor(from / 1000) * 1000 && ts <= to, `timestamp ${rec.timestamp} within the test's time`);
  assert.ok(Number.isInteger(rec.navigations) && rec.navigations >= 0);
  assert.equal(rec.captcha, 'none');
  assert.ok(Number.isInteger(rec.bandwidth) && rec.bandwidth >= 0, `bandwidth ${rec.bandwidth}`);
  if (rec.status === 'running') {
    assert.equal(rec.duration, null);
    assert.equal(rec.error, null);
    return;
  }
  assert.equal(typeof rec.duration, 'number');
  assert.ok(Math.abs(rec.duration * 1000 - Math.round(rec.duration * 1000)) < 1e-6, 'millisecond precision');
  assert.ok(rec.duration >= minDuration, `duration ${rec.duration} >= ${minDuration}`);
  const max = maxDuration ?? (to - from) / 1000 + 1;
  assert.ok(rec.duration <= max, `duration ${rec.duration} <= ${max}`);
  if (rec.status === 'finished') assert.equal(rec.error, null);
  else {
    assert.equal(typeof rec.error, 'object');
    assert.deepEqual(Object.keys(rec.error), ['code', 'message']);
    assert.equal(typeof rec.error.code, 'string');
    assert.equal(typeof rec.error.message, 'string');
  }
}

// ------------------------------------------------------------------ clients ----

function requireClient(name) {
  return require(path.join(__dirname, 'node_modules', name));
}

/** A raw WebSocket (the `ws` package puppeteer-core uses). */
function WebSocket() {
  return requireClient('ws');
}

/**
 * Opens a WebSocket to the CDP port; resolves {ws} on open or {status, body, headers} when the
 * server answered the upgrade with an HTTP error.
 */
function wsConnect(url, { headers = {}, timeout = 15000, maxPayload = 0 } = {}) {
  const WS = WebSocket();
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WS(url, { headers, maxPayload: maxPayload || 512 * 1024 * 1024, perMessageDeflate: false });
      ws.on('open', () => resolve({ ws }));
      ws.on('unexpected-response', (req, res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, body, json });
          req.destroy();
        });
      });
      ws.on('error', (e) => reject(e));
    }),
    timeout,
    `WebSocket to ${url.replace(/:[^:@/]*@/, ':***@')}`,
  );
}

/** Resolves {code, reason} when the WebSocket closes. */
/** A raw upgrade request with node's http module: {status, headers, json} or {upgraded}.
 * localAddress: the client's own address (another of 127.0.0.0/8: a source address of its own). */
function rawUpgrade(port, headers, { localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      localAddress,
      path: '/devtools/browser/x',
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ upgraded: true, status: res.statusCode });
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, headers: res.headers, text, json: JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function wsClosed(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === 3) return resolve({ code: ws._closeCode, reason: String(ws._closeMessage || '') });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

/** Sends one CDP command over a raw WebSocket and waits for its answer. */
function cdpCall(ws, id, method, params = {}, sessionId) {
  return new Promise((resolve, reject) => {
    const onMessage = (data) => {
      const m = JSON.parse(data.toString());
      if (m.id === id) {
        ws.off('message', onMessage);
        resolve(m);
      }
    };
    ws.on('message', onMessage);
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    ws.send(JSON.stringify(msg), (err) => err && reject(err));
  });
}

module.exports = {
  REPO,
  BIN,
  sleep,
  waitFor,
  withTimeout,
  freePort,
  httpRequest,
  sha256,
  processesOf,
  tcpConnects,
  canIsolateDns,
  fakeDns,
  pages,
  Daemon,
  e2e,
  checkRecord,
  FIELD_ORDER,
  requireClient,
  WebSocket,
  wsConnect,
  wsClosed,
  rawUpgrade,
  cdpCall,
};
