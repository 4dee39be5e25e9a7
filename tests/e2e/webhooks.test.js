'use strict';
// Webhooks end to end: a real Chromium session through Puppeteer ends, and browserd POSTs its
// record to a real local receiver (a node http server in this process). The signature is
// checked here as docs/webhooks.md tells receivers to; a receiver that is down and comes back
// gets the delivery once; a browserd SIGKILLed with a delivery pending (or in flight) delivers
// it after a restart on the same database; private receivers are refused when added and again
// at delivery. Retries are made fast with --webhook-retry-base-ms.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');
const { BIN, e2e, waitFor, sleep, freePort, requireClient } = require('./harness');

const puppeteer = requireClient('puppeteer-core');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A local webhook receiver: records every request; answers `status`, or holds the answer. */
class Receiver {
  constructor() {
    this.requests = [];
    this.status = 200;
    this.hold = false;
    this.held = [];
  }

  async listen(port, tls) {
    this.port = port;
    const handler = (req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
        if (this.hold) return this.held.push(res);
        res.writeHead(this.status, { 'Content-Type': 'text/plain' });
        res.end('thanks');
      });
    };
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    return this;
  }

  get url() {
    return `http://127.0.0.1:${this.port}/hooks/browserd`;
  }

  async close() {
    if (!this.server) return;
    for (const res of this.held) res.destroy();
    this.held = [];
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.server = null;
  }
}

async function receiver(ctx, port) {
  const r = await new Receiver().listen(port ?? (await freePort()));
  ctx.defer(() => r.close());
  return r;
}

/** The command line against the daemon's database (the environment without BROWSERD_*). */
function cli(d, ...args) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('BROWSERD_')) delete env[k];
  const r = spawnSync(BIN, ['--db', d.db, ...args], { env, encoding: 'utf8', timeout: 20000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function addWebhook(d, url, ...extra) {
  const r = cli(d, 'webhook', 'add', d.creds.customer, url, ...extra);
  assert.equal(r.code, 0, `webhook add: ${r.stderr}`);
  const secret = r.stdout.trim();
  assert.match(secret, /^whsec_[0-9a-f]{64}$/);
  return secret;
}

/** `webhook deliveries` as objects. */
function deliveries(d) {
  const r = cli(d, 'webhook', 'deliveries', d.creds.customer);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => {
    const [delivery, webhook, session, state, attempts, status, created, when, error] = l.split('\t');
    return { delivery, webhook, session, state, attempts: Number(attempts), status, created, when, error };
  });
}

/** A Puppeteer session that opens a page and disconnects: its record ends finished. */
async function oneSession(ctx, d) {
  const browser = await puppeteer.connect({ browserWSEndpoint: d.wsEndpoint(), protocolTimeout: 20000 });
  ctx.defer(() => browser.disconnect());
  const page = await browser.newPage();
  const { sessionId } = await (await page.createCDPSession()).send('Browser.getSessionId');
  await browser.disconnect();
  await d.ended(sessionId);
  return sessionId;
}

/** What a receiver does (docs/webhooks.md): HMAC-SHA256 over "<t>.<raw body>", constant time. */
function verify(secret, header, body) {
  const parts = Object.fromEntries(header.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  const expected = crypto.createHmac('sha256', secret).update(`${parts.t}.`).update(body).digest();
  const given = Buffer.from(parts.v1 || '', 'hex');
  return { t: Number(parts.t), ok: given.length === expected.length && crypto.timingSafeEqual(given, expected) };
}

async function metric(d, name) {
  const r = await d.api('GET', '/metrics', { key: null });
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => '\\' + c)} (\\d+)$`, 'm').exec(r.text);
  return m ? Number(m[1]) : null;
}

e2e('webhooks: the end of a session is POSTed signed; the signature verifies and the body is the API record', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0 });
  const rx = await receiver(ctx);
  const secret = addWebhook(d, rx.url, '--allow-private', '127.0.0.1/32');
  const list = cli(d, 'webhook', 'list', d.creds.customer);
  assert.equal(list.code, 0);
  const [webhookId, , listedUrl] = list.stdout.trim().split('\t');
  assert.match(webhookId, /^wh_[0-9a-f]{12}$/);
  assert.equal(listedUrl, rx.url);

  const before = Math.floor(Date.now() / 1000);
  const sessionId = await oneSession(ctx, d);
  await waitFor(() => rx.requests.length === 1, { timeout: 15000, what: 'the webhook POST' });
  const req = rx.requests[0];
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/hooks/browserd');
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.headers['browserd-event'], 'session.ended');
  assert.equal(req.headers['browserd-webhook'], webhookId);
  assert.match(req.headers['browserd-delivery'], UUID);
  const v = verify(secret, req.headers['browserd-signature'], req.body);
  assert.ok(v.ok, `the signature verifies: ${req.headers['browserd-signature']}`);
  assert.ok(v.t >= before && v.t <= Math.ceil(Date.now() / 1000), `t=${v.t} is the time of sending`);
  assert.equal(verify('whsec_' + '0'.repeat(64), req.headers['browserd-signature'], req.body).ok, false,
    'another secret does not verify');
  // the body is the API's own record of the session, byte for byte
  const api = await d.api('GET', `/browser_sessions/${sessionId}`);
  assert.equal(req.body.toString('utf8'), api.text);
  assert.equal(JSON.parse(req.body).session.status, 'finished');

  await waitFor(() => deliveries(d)[0]?.state === 'delivered', { timeout: 5000, what: 'the delivery recorded' });
  const [dl] = deliveries(d);
  assert.equal(dl.delivery, req.headers['browserd-delivery']);
  assert.equal(dl.session, sessionId);
  assert.equal(dl.status, '200');
  assert.equal(dl.attempts, 1);
  assert.equal(await metric(d, 'browserd_webhook_attempts_total{outcome="delivered"}'), 1);
  await waitFor(async () => (await metric(d, 'browserd_webhook_deliveries_pending')) === 0, { what: 'pending 0' });

  const removed = cli(d, 'webhook', 'remove', webhookId);
  assert.equal(removed.code, 0);
  assert.equal(removed.stdout.trim(), webhookId);
  assert.equal(cli(d, 'webhook', 'list', d.creds.customer).stdout, '');
});

e2e('webhooks: a receiver that is down and then up gets the delivery exactly once', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ site: true, pool: 0, args: ['--webhook-retry-base-ms', '200'] });
  const port = await freePort(); // nothing listens there yet
  const secret = addWebhook(d, `http://127.0.0.1:${port}/in`, '--allow-private', '127.0.0.1/32');
  const sessionId = await oneSession(ctx, d);
  const failing = await waitFor(() => deliveries(d).find((x) => x.attempts >= 2), {
    timeout: 15000, what: 'two failed attempts',
  });
  assert.equal(failing.state, 'pending');
  assert.match(failing.error, /cannot connect/);
  assert.ok((await metric(d, 'browserd_webhook_attempts_total{outcome="failed"}')) >= 2);

  const rx = await receiver(ctx, port);
  await waitFor(() => rx.requests.length >= 1, { timeout: 15000, what: 'the delivery once the receiver is up' });
  await waitFor(() => deliveries(d)[0].state === 'delivered', { timeout: 5000, what: 'delivered recorded' });
  // well past several retry steps: nothing more comes
  await sleep(2000);
  assert.equal(rx.requests.length, 1, 'delivered once');
  assert.ok(verify(secret, rx.requests[0].headers['browserd-signature'], rx.requests[0].body).ok);
  assert.equal(JSON.parse(rx.requests[0].body).session.session_id, sessionId);
  assert.ok(Number(rx.requests[0].headers['browserd-attempt']) >= 3);
  assert.equal(deliveries(d).length, 1);
});

e2e('webhooks: browserd SIGKILLed with one delivery pending and one in flight delivers both after a restart', { timeout: 90000 }, async (ctx) => {
  // a long response timeout: the held POST is still in flight when browserd dies
  const opts = { site: true, pool: 0, args: ['--webhook-retry-base-ms', '200', '--webhook-timeout', '60'] };
  const d = await ctx.daemon(opts);
  const down = await freePort();
  addWebhook(d, `http://127.0.0.1:${down}/in`, '--allow-private', '127.0.0.1/32'); // down: pending
  await sleep(20); // the webhooks' deliveries go in the order they were added: this one first
  const rx = await receiver(ctx);
  rx.hold = true; // its POST gets no answer
  addWebhook(d, rx.url, '--allow-private', '127.0.0.1/32');
  const sessionId = await oneSession(ctx, d);
  await waitFor(() => rx.requests.length === 1, { timeout: 15000, what: 'the first POST, held' });
  await waitFor(() => deliveries(d).some((x) => x.attempts >= 1), { timeout: 15000, what: 'a failed attempt' });
  const firstId = rx.requests[0].headers['browserd-delivery'];
  d.signal('SIGKILL');
  await d.waitExit();

  rx.hold = false;
  await rx.close();
  await rx.listen(rx.port);
  const back = await receiver(ctx, down);
  const d2 = await ctx.restart(d);
  await waitFor(() => rx.requests.length === 2 && back.requests.length === 1, {
    timeout: 30000, what: 'both deliveries after the restart',
  });
  // the one in flight is sent again with its delivery id: the receiver can drop the duplicate
  assert.equal(rx.requests[1].headers['browserd-delivery'], firstId);
  assert.notEqual(back.requests[0].headers['browserd-delivery'], firstId);
  for (const r of [rx.requests[1], back.requests[0]]) assert.equal(JSON.parse(r.body).session.session_id, sessionId);
  await waitFor(() => deliveries(d2).every((x) => x.state === 'delivered'), { timeout: 5000, what: 'both recorded' });
  assert.equal(deliveries(d2).length, 2);
});

e2e('webhooks: private receivers are refused when added, and at delivery when the daemon does not allow them', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ pool: 0 }); // no --allow-private: nothing private for browsers or webhooks
  const metadata = cli(d, 'webhook', 'add', d.creds.customer, 'http://169.254.169.254/latest/meta-data/');
  assert.equal(metadata.code, 1);
  assert.match(metadata.stderr, /169\.254\.169\.254.*link-local.*--allow-private/);
  const loopback = cli(d, 'webhook', 'add', d.creds.customer, 'http://localhost:9/');
  assert.equal(loopback.code, 1);
  assert.match(loopback.stderr, /loopback/);
  const ftp = cli(d, 'webhook', 'add', d.creds.customer, 'ftp://example.com/hook');
  assert.equal(ftp.code, 2);
  assert.match(ftp.stderr, /expected an http:\/\/ or https:\/\/ URL/);
  assert.equal(cli(d, 'webhook', 'list', d.creds.customer).stdout, '', 'nothing was added');

  // allowed when added (another node's view), refused by this daemon's guard at delivery
  const rx = await receiver(ctx);
  addWebhook(d, `http://localhost:${rx.port}/in`, '--allow-private', '127.0.0.0/8', '--allow-private', '::1');
  await oneSession(ctx, d);
  const refused = await waitFor(() => deliveries(d).find((x) => x.attempts >= 1), { timeout: 15000, what: 'an attempt' });
  assert.equal(refused.state, 'pending');
  assert.match(refused.error, /loopback/);
  assert.equal(rx.requests.length, 0, 'nothing reached the private receiver');
});

e2e('webhooks: an https:// receiver whose certificate browserd trusts (--webhook-ca-file) gets the delivery; others are refused', { timeout: 60000 }, async (ctx) => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'webhook-tls-'));
  ctx.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', key, '-out', cert]);
  assert.equal(made.status, 0, `openssl: ${made.stderr}`);
  const tls = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
  const d = await ctx.daemon({ site: true, pool: 0, args: ['--webhook-ca-file', cert, '--webhook-retry-base-ms', '60000',
    '--allow-private', '::1'] });
  const trusted = await new Receiver().listen(await freePort(), tls);
  ctx.defer(() => trusted.close());
  const secret = addWebhook(d, `https://localhost:${trusted.port}/in`, '--allow-private', '127.0.0.1/32',
    '--allow-private', '::1');
  // the same certificate for an address it does not name: refused by browserd, never sent
  const wrongHost = await new Receiver().listen(await freePort(), tls);
  ctx.defer(() => wrongHost.close());
  addWebhook(d, `https://127.0.0.1:${wrongHost.port}/in`, '--allow-private', '127.0.0.1/32');
  const sessionId = await oneSession(ctx, d);
  await waitFor(() => trusted.requests.length === 1, { timeout: 15000, what: 'the POST over TLS' });
  const req = trusted.requests[0];
  assert.ok(verify(secret, req.headers['browserd-signature'], req.body).ok);
  assert.equal(JSON.parse(req.body).session.session_id, sessionId);
  const refused = await waitFor(() => deliveries(d).find((x) => x.attempts >= 1 && x.state === 'pending'), {
    timeout: 15000, what: 'the refused attempt',
  });
  assert.match(refused.error, /certificate not accepted/);
  assert.equal(wrongHost.requests.length, 0);
});
