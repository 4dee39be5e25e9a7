'use strict';
// A cluster, as docs/cluster.md describes it and deploy/ runs it: a PostgreSQL server (started
// here, tests/pg/pgserver.py), two browserd nodes sharing its database, and nginx in front with
// deploy/nginx/browserd.conf (ports rewritten to this test's). Real Puppeteer and Playwright
// sessions go through nginx; every check is made through nginx and through each node.
const assert = require('node:assert/strict');
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { e2e, REPO, waitFor, freePort, httpRequest, requireClient, sleep } = require('./harness');

const puppeteer = requireClient('puppeteer-core');
const { chromium } = requireClient('playwright-core');
const LEASE_S = 3;

function pg(cmd, dir, ...rest) {
  const r = spawnSync('python3', [path.join(REPO, 'tests/pg/pgserver.py'), cmd, dir, ...rest], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgserver ${cmd}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

function havePostgres() {
  return fs.existsSync('/usr/lib/postgresql/15/bin/postgres') && spawnSync('nginx', ['-v']).status === 0;
}

/** PostgreSQL, two nodes and nginx; everything registered with ctx for the teardown. */
async function cluster(ctx, { site = true } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-cluster-'));
  fs.chmodSync(dir, 0o755); /* PostgreSQL runs as an unprivileged user when we are root: it must reach its directory */
  pg('start', path.join(dir, 'pg'));
  ctx.finally(() => {
    pg('stop', path.join(dir, 'pg'));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const db = pg('createdb', path.join(dir, 'pg'));
  const args = (name) => ['--node-id', name, '--lease-timeout', String(LEASE_S), '--spool', path.join(dir, `${name}.spool`)];
  const a = await ctx.daemon({ db, site, args: args('node-a') });
  const b = await ctx.daemon({ db, site, args: args('node-b'), creds: a.creds });
  const ng = await nginx(ctx, dir, a, b);
  return { dir, db, a, b, ng, args };
}

async function nginx(ctx, dir, a, b) {
  const api = await freePort();
  const cdp = await freePort();
  const conf = fs
    .readFileSync(path.join(REPO, 'deploy/nginx/browserd.conf'), 'utf8')
    .replace('127.0.0.1:8081', `127.0.0.1:${a.apiPort}`)
    .replace('127.0.0.1:8082', `127.0.0.1:${b.apiPort}`)
    .replace('127.0.0.1:9223', `127.0.0.1:${a.cdpPort}`)
    .replace('127.0.0.1:9224', `127.0.0.1:${b.cdpPort}`)
    .replace('listen 127.0.0.1:8080', `listen 127.0.0.1:${api}`)
    .replace('listen 127.0.0.1:9222', `listen 127.0.0.1:${cdp}`);
  fs.writeFileSync(path.join(dir, 'browserd.conf'), conf);
  fs.mkdirSync(path.join(dir, 'nginx-tmp'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log warn; daemon off;
     events { worker_connections 1024; }
     http { access_log off; client_body_temp_path ${dir}/nginx-tmp/body; proxy_temp_path ${dir}/nginx-tmp/proxy;
            fastcgi_temp_path ${dir}/nginx-tmp/f; uwsgi_temp_path ${dir}/nginx-tmp/u; scgi_temp_path ${dir}/nginx-tmp/s;
            include ${dir}/browserd.conf; }`,
  );
  const proc = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  ctx.defer(() => proc.kill('SIGQUIT'));
  await waitFor(async () => (await httpRequest({ port: api, path: '/healthz' }).catch(() => ({}))).status === 200, {
    timeout: 10000,
    what: 'nginx',
  });
  const userinfo = a.userinfo();
  return {
    api,
    cdp,
    ws: () => `ws://${userinfo}@127.0.0.1:${cdp}`,
    http: () => `http://${userinfo}@127.0.0.1:${cdp}`,
    list: async (key, q = '') => {
      const r = await httpRequest({ port: api, path: `/browser_sessions${q ? '?' + q : ''}`, headers: { Authorization: `Bearer ${key}` } });
      assert.equal(r.status, 200, r.text);
      return r.json;
    },
  };
}

/** The node whose log says it started this session. */
function ownerOf(nodes, id) {
  const found = nodes.filter((d) => d.log.includes(`event=session_start session=${id}`));
  assert.equal(found.length, 1, `session ${id} started on exactly one node`);
  return found[0];
}

async function puppeteerSession(ng, site) {
  const browser = await puppeteer.connect({ browserWSEndpoint: ng.ws(), protocolTimeout: 30000 });
  const page = await browser.newPage();
  const { sessionId } = await (await page.createCDPSession()).send('Browser.getSessionId');
  await page.goto(site.url('/p/1'));
  return { browser, page, id: sessionId };
}

const opts = { timeout: 180000, skip: havePostgres() ? false : 'PostgreSQL 15 or nginx is not installed' };

e2e('cluster: sessions through nginx land on both nodes; every node and nginx list them all with true records; a finished session is on the other node within a second', opts, async (ctx) => {
  const { a, b, ng } = await cluster(ctx);
  const site = await ctx.pages();
  // least_conn: two sessions at once go to the two nodes
  const p1 = await puppeteerSession(ng, site);
  const p2 = await puppeteerSession(ng, site);
  ctx.defer(() => p1.browser.disconnect());
  ctx.defer(() => p2.browser.disconnect());
  const owners = new Set([ownerOf([a, b], p1.id), ownerOf([a, b], p2.id)]);
  assert.equal(owners.size, 2, 'the two sessions run on different nodes');
  // and Playwright, over http:// discovery through nginx
  const pw = await chromium.connectOverCDP(ng.http());
  ctx.defer(() => pw.close());
  const pwPage = await pw.contexts()[0].newPage();
  await pwPage.goto(site.url('/p/2'));
  const pwId = (await (await pwPage.context().newCDPSession(pwPage)).send('Browser.getSessionId')).sessionId;
  ownerOf([a, b], pwId);
  // ending them: each finished record appears on the node that did not run it, fast
  const lags = [];
  for (const [close, id] of [[() => p1.browser.close(), p1.id], [() => p2.browser.close(), p2.id], [() => pw.close(), pwId]]) {
    const owner = ownerOf([a, b], id);
    const other = owner === a ? b : a;
    await close();
    await owner.ended(id);
    const t0 = Date.now();
    const rec = await waitFor(async () => {
      const s = await other.session(id);
      return s.status !== 'running' ? s : null;
    }, { timeout: 5000, interval: 20, what: `${id} ended on the other node` });
    lags.push(Date.now() - t0);
    assert.equal(rec.status, 'finished');
    assert.ok(rec.navigations >= 1 && rec.end_url.startsWith(site.url('/p/')), JSON.stringify(rec));
  }
  ctx.log(`lag of the other node's catalog after the owner recorded the end: ${lags.join(', ')} ms`);
  assert.ok(Math.max(...lags) <= 1000, `a finished session appears on every node within 1 s (${lags})`);
  // one list, the same through nginx and through each node: order, totals, pagination
  const viaNginx = await ng.list(a.creds.apiKey, 'limit=2');
  const viaA = await (await a.api('GET', '/browser_sessions?limit=2')).json;
  const viaB = await (await b.api('GET', '/browser_sessions?limit=2')).json;
  assert.equal(viaNginx.total, 3);
  assert.deepEqual(viaA, viaNginx);
  assert.deepEqual(viaB, viaNginx);
  assert.deepEqual(viaNginx.pagination, { offset: 0, limit: 2, has_more: true, next_offset: 2 });
});

e2e('cluster: DELETE through the node that does not run a session ends it there (204, the client is cut off, job_killed), then 409', opts, async (ctx) => {
  const { a, b, ng } = await cluster(ctx);
  const site = await ctx.pages();
  const s = await puppeteerSession(ng, site);
  ctx.defer(() => s.browser.disconnect());
  let disconnected = false;
  s.browser.on('disconnected', () => (disconnected = true));
  const owner = ownerOf([a, b], s.id);
  const other = owner === a ? b : a;
  await waitFor(async () => (await other.session(s.id)).status === 'running', { what: 'the session on the other node' });
  const del = await other.api('DELETE', `/browser_sessions/${s.id}`);
  assert.equal(del.status, 204, del.text);
  await waitFor(() => disconnected, { timeout: 5000, what: 'the client to be disconnected' });
  const rec = await other.ended(s.id);
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'job_killed');
  const again = await other.api('DELETE', `/browser_sessions/${s.id}`);
  assert.equal(again.status, 409);
});

e2e('cluster: a node SIGKILLed with sessions running: they fail within the lease on the other node, which keeps serving; restarted, nothing is duplicated', opts, async (ctx) => {
  const c = await cluster(ctx);
  const { a, b, ng } = c;
  const site = await ctx.pages();
  const s1 = await puppeteerSession(ng, site);
  const s2 = await puppeteerSession(ng, site);
  ctx.defer(() => s1.browser.disconnect());
  ctx.defer(() => s2.browser.disconnect());
  const onA = [s1, s2].filter((s) => ownerOf([a, b], s.id) === a);
  assert.equal(onA.length, 1);
  const victim = onA[0].id;
  a.signal('SIGKILL');
  await a.waitExit();
  const t0 = Date.now();
  const rec = await waitFor(async () => {
    const r = await b.session(victim);
    return r.status !== 'running' ? r : null;
  }, { timeout: (LEASE_S + 5) * 1000, interval: 100, what: 'the dead node\'s session to fail' });
  ctx.log(`failed ${Date.now() - t0} ms after the SIGKILL (lease ${LEASE_S} s)`);
  assert.equal(rec.error.code, 'worker_disconnect');
  // the other node serves new sessions through nginx (the dead one is skipped)
  const s3 = await puppeteerSession(ng, site);
  ctx.defer(() => s3.browser.disconnect());
  assert.equal(ownerOf([a, b], s3.id), b);
  await s3.browser.close();
  await b.ended(s3.id);
  // restarted on the same node id: every session once, none running that should not
  const a2 = await ctx.restart(a, { args: c.args('node-a') });
  const all = await a2.sessions('limit=100');
  const ids = all.map((x) => x.session_id);
  assert.equal(new Set(ids).size, ids.length, 'no session is listed twice');
  assert.equal(ids.length, 3);
  assert.deepEqual(await a2.sessions('limit=100'), await b.sessions('limit=100'));
});

e2e('cluster: PostgreSQL away for 10 s while sessions end: the API says 503, the sessions go on, every record arrives once when it is back', opts, async (ctx) => {
  const c = await cluster(ctx);
  const { a, b, ng } = c;
  const site = await ctx.pages();
  const sessions = [];
  for (let i = 0; i < 4; i++) {
    const s = await puppeteerSession(ng, site);
    ctx.defer(() => s.browser.disconnect());
    sessions.push(s);
  }
  pg('pause', path.join(c.dir, 'pg'));
  const t0 = Date.now();
  const down = await a.api('GET', '/browser_sessions');
  assert.equal(down.status, 503, down.text);
  assert.deepEqual(Object.keys(down.json), ['error']);
  // the sessions still work, and end while the database is away
  for (const s of sessions) {
    await s.page.goto(site.url('/p/3'));
    await s.browser.close();
  }
  await sleep(Math.max(0, 10000 - (Date.now() - t0)));
  pg('resume', path.join(c.dir, 'pg'));
  for (const d of [a, b]) {
    const list = await waitFor(async () => {
      const r = await d.api('GET', '/browser_sessions?limit=100');
      if (r.status !== 200) return null;
      const l = r.json.sessions;
      return l.length === 4 && l.every((x) => x.status === 'finished') ? l : null;
    }, { timeout: 20000, interval: 200, what: 'every record, ended, after PostgreSQL came back' });
    assert.deepEqual(new Set(list.map((x) => x.session_id)), new Set(sessions.map((s) => s.id)));
    for (const x of list) assert.equal(x.end_url, site.url('/p/3'), 'the last navigation, made while the database was away');
  }
});
