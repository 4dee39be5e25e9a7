'use strict';
// Helpers of tests/e2e/traffic.test.js (the session traffic proxy end to end): local sites whose
// bytes are counted on the TCP connections that browserd's proxy opened to them, a TLS test
// certificate made by the openssl CLI, a WebSocket echo, a test upstream proxy that wants Basic
// credentials, a DNS answer for one test name, and Browser.getBandwidth. Everything listens on
// 127.0.0.1 and connects only to 127.0.0.1.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { fakeDns, sleep, waitFor } = require('./harness');

const LOOPBACK = '127.0.0.1';

// ------------------------------------------------------------------ counting ----

/**
 * A TCP front on 127.0.0.1 that relays every connection to a back end (127.0.0.1:backPort) and
 * counts the bytes it read from and wrote to the accepted connections: exactly what the peer
 * (browserd's proxy) exchanged with "the site". Backpressure both ways (pause/resume), half
 * closes passed on.
 */
class CountingFront {
  constructor(backPort) {
    this.backPort = backPort;
    this.received = 0; // bytes read from accepted connections (requests, client TLS records)
    this.sent = 0; // bytes written to accepted connections (responses, server TLS records)
    this.accepted = 0;
    this.open = 0;
    this.sockets = new Set();
    this.server = net.createServer({ allowHalfOpen: true }, (c) => this.relay(c));
  }

  get total() {
    return this.received + this.sent;
  }

  snapshot() {
    return { received: this.received, sent: this.sent, total: this.total, accepted: this.accepted, open: this.open };
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, LOOPBACK, resolve));
    this.port = this.server.address().port;
    return this;
  }

  relay(c) {
    this.accepted++;
    this.open++;
    const b = net.connect({ host: LOOPBACK, port: this.backPort, allowHalfOpen: true });
    this.sockets.add(c);
    this.sockets.add(b);
    let closed = 0;
    const done = () => {
      if (++closed === 2) this.open--;
    };
    c.on('data', (d) => {
      this.received += d.length;
      if (!b.write(d)) {
        c.pause();
        b.once('drain', () => c.resume());
      }
    });
    b.on('data', (d) => {
      this.sent += d.length;
      if (!c.write(d)) {
        b.pause();
        c.once('drain', () => b.resume());
      }
    });
    c.on('end', () => b.end());
    b.on('end', () => c.end());
    c.on('error', () => b.destroy());
    b.on('error', () => c.destroy());
    c.on('close', () => {
      this.sockets.delete(c);
      b.destroy();
      done();
    });
    b.on('close', () => {
      this.sockets.delete(b);
      c.destroy();
      done();
    });
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------ sites ----

/** n bytes of printable, incompressible-looking text (deterministic per seed). */
function filler(n, seed = 1) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = 97 + ((x >>> 16) % 26);
  }
  return out;
}

/** An HTML document of exactly `size` bytes (at least 64). */
function htmlOfSize(size, title, extra = '') {
  const head = `<!doctype html><meta charset="utf-8"><title>${title}</title>${extra}<p>`;
  const tail = '</p>';
  const n = size - Buffer.byteLength(head) - Buffer.byteLength(tail);
  assert.ok(n >= 0, `a page of ${size} bytes cannot hold its markup`);
  return Buffer.concat([Buffer.from(head), filler(n, size), Buffer.from(tail)]);
}

/** A valid 1x1 PNG padded with a private ancillary chunk to exactly `size` bytes. */
function pngOfSize(size) {
  const crcTable = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crcTable[n] = c >>> 0;
  }
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]); // 1x1, 8-bit grey
  const idat = require('node:zlib').deflateSync(Buffer.from([0, 0x80]));
  const sig = Buffer.from('89504e470d0a1a0a', 'hex');
  const fixed = Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
  const padLen = size - fixed.length - 12;
  assert.ok(padLen >= 0, `a PNG of ${size} bytes is too small`);
  const pad = chunk('teSt', filler(padLen, 7)); // ancillary, private: decoders skip it
  return Buffer.concat([fixed.subarray(0, fixed.length - 12), pad, fixed.subarray(fixed.length - 12)]);
}

/**
 * A local site: a node http (or https) server on 127.0.0.1 behind a CountingFront; the URL to
 * give the browser uses the front's port. `routes` maps a pathname to
 * (req, res, url) => number of response body bytes; unknown paths get a 9-byte 404. Every
 * request is logged, and the body bytes of requests and responses are summed (`bodyBytes`).
 */
class Site {
  constructor(routes = {}, { tls = null } = {}) {
    this.routes = routes;
    this.requests = []; // {method, url, rawHeaders, body, responseBytes}
    this.bodyBytes = 0; // request and response bodies (what the proxy counts as payload)
    this.tls = tls;
    const handler = (req, res) => this.handle(req, res);
    this.server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);
    // longer than any test: a kept connection never closes under a measurement
    this.server.keepAliveTimeout = 120000;
    this.upgrades = [];
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, LOOPBACK, resolve));
    this.front = await new CountingFront(this.server.address().port).start();
    this.port = this.front.port;
    this.origin = `${this.tls ? 'https' : 'http'}://${LOOPBACK}:${this.port}`;
    return this;
  }

  url(p) {
    return this.origin + p;
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const entry = { method: req.method, url: req.url, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
      this.requests.push(entry);
      const u = new URL(req.url, 'http://x');
      const route = this.routes[u.pathname];
      if (route) entry.responseBytes = route(req, res, u);
      else {
        res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 9, 'Cache-Control': 'no-store' });
        res.end('not found');
        entry.responseBytes = 9;
      }
      this.bodyBytes += entry.body.length + entry.responseBytes;
    });
  }

  async close() {
    this.server.closeAllConnections?.();
    await Promise.all([this.front.close(), new Promise((resolve) => this.server.close(() => resolve()))]);
  }
}

/** A route answering `body` (Buffer) with a Content-Length, no caching. */
function fixed(body, type = 'text/html; charset=utf-8') {
  return (req, res) => {
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-store' });
    res.end(body);
    return body.length;
  };
}

/** A route answering ?n=N bytes (from one shared buffer, written in 1 MiB slices). */
function bytesRoute(max = 64 * 1024 * 1024) {
  let pool = null;
  return (req, res, u) => {
    const n = Number(u.searchParams.get('n'));
    assert.ok(Number.isInteger(n) && n >= 0 && n <= max, `bad n=${u.searchParams.get('n')}`);
    if (!pool || pool.length < n) pool = filler(Math.max(n, 1 << 20), 3);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n, 'Cache-Control': 'no-store' });
    let off = 0;
    const more = () => {
      while (off < n) {
        const end = Math.min(n, off + (1 << 20));
        const ok = res.write(pool.subarray(off, end));
        off = end;
        if (!ok) return res.once('drain', more);
      }
      return res.end();
    };
    more();
    return n;
  };
}

// ------------------------------------------------------------------ WebSocket echo ----

/** The echo's 101 answer to a handshake with this Sec-WebSocket-Key. */
function wsHandshakeResponse(key) {
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  return Buffer.from(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' + `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
}

/**
 * Makes `site` answer WebSocket upgrades on any path with an echo of every text or binary
 * message (hand-written RFC 6455, unfragmented frames, no extensions). Returns a stats object
 * {messages, bytes} of what was echoed.
 */
function addWebSocketEcho(site) {
  const stats = { connections: 0, messages: 0, payloadBytes: 0 };
  site.server.on('upgrade', (req, socket, head) => {
    const key = req.headers['sec-websocket-key'];
    if (!key || (req.headers.upgrade || '').toLowerCase() !== 'websocket') return socket.destroy();
    stats.connections++;
    stats.lastKey = key;
    site.upgrades.push(req.url);
    socket.write(wsHandshakeResponse(key));
    let buf = head && head.length ? Buffer.from(head) : Buffer.alloc(0);
    const frame = (op, payload) => {
      const n = payload.length;
      const hdr = n < 126 ? Buffer.from([0x80 | op, n]) : n < 65536 ? Buffer.from([0x80 | op, 126, n >> 8, n & 255]) : null;
      assert.ok(hdr, 'echo frames under 64 KiB only');
      return Buffer.concat([hdr, payload]);
    };
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 2) return;
        const op = buf[0] & 0x0f;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        const masked = buf[1] & 0x80;
        const maskOff = off;
        if (masked) off += 4;
        if (buf.length < off + len) return;
        const payload = Buffer.from(buf.subarray(off, off + len));
        if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i & 3)];
        buf = buf.subarray(off + len);
        if (op === 0x8) {
          socket.end(frame(0x8, payload.subarray(0, 2)));
          return;
        }
        if (op === 0x9) {
          socket.write(frame(0xa, payload));
          continue;
        }
        if (op === 0x1 || op === 0x2) {
          stats.messages++;
          stats.payloadBytes += len;
          socket.write(frame(op, payload));
        }
      }
    });
    socket.on('error', () => {});
  });
  return stats;
}

// ------------------------------------------------------------------ TLS ----

let certCache = null;

/** A self-signed certificate for 127.0.0.1 made at test time by the openssl CLI. */
function testCertificate() {
  if (certCache) return certCache;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-e2e-cert-'));
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { encoding: 'utf8' },
  );
  if (r.error) throw new Error(`openssl not runnable (apt-get install -y openssl): ${r.error.message}`);
  assert.equal(r.status, 0, `openssl req failed: ${r.stderr}`);
  certCache = { key: fs.readFileSync(keyPath), cert: fs.readFileSync(certPath) };
  fs.rmSync(dir, { recursive: true, force: true });
  return certCache;
}

// ------------------------------------------------------------------ upstream proxy ----

/**
 * A small forward proxy for the upstream tests, on 127.0.0.1. It wants
 * `Proxy-Authorization: Basic base64(user:pass)` on every request head and answers 407 (and
 * closes) otherwise. CONNECT host:port: "200 Connection established" and a tunnel. A plain
 * request in absolute form: sent to the target in origin form on a fresh connection with
 * `Connection: close` (Proxy-Authorization removed), the answer relayed until the target closes,
 * then the connection ends. It connects to 127.0.0.1 only: any other target gets 403 without a
 * connection. Every head is logged: {method, target, authorization, head (text)}.
 */
class TestUpstreamProxy {
  /** others: what plain requests to hosts other than 127.0.0.1 get: 'refuse' (403, close) or
   * 'noContent' (204, the connection kept for the next request). */
  constructor({ user, pass, others = 'refuse' }) {
    this.expected = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
    this.others = others;
    this.heads = [];
    this.refused = 0; // 407s
    this.received = 0; // bytes read from browserd's connections
    this.sent = 0; // bytes written to them
    this.accepted = 0;
    this.sockets = new Set();
    this.server = net.createServer((c) => this.serve(c));
  }

  // the Meter's view: this proxy counts like a site's front; its "requests" are the heads
  get front() {
    return this;
  }

  get requests() {
    return this.heads;
  }

  get bodyBytes() {
    return 0;
  }

  snapshot() {
    return { received: this.received, sent: this.sent, total: this.received + this.sent, accepted: this.accepted };
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, LOOPBACK, resolve));
    this.port = this.server.address().port;
    return this;
  }

  url(user, pass) {
    return `http://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@${LOOPBACK}:${this.port}`;
  }

  track(s) {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
  }

  answer(c, text, end = false) {
    this.sent += Buffer.byteLength(text);
    if (end) c.end(text);
    else c.write(text);
  }

  serve(c) {
    this.accepted++;
    this.track(c);
    c.on('data', (d) => {
      this.received += d.length;
    });
    this.readHead(c, Buffer.alloc(0));
  }

  readHead(c, initial) {
    let buf = initial;
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 65536) c.destroy();
        return;
      }
      c.off('data', onData);
      c.pause();
      const headText = buf.subarray(0, end + 4).toString('latin1');
      const rest = buf.subarray(end + 4);
      this.handle(c, headText, rest);
    };
    c.on('data', onData);
    if (buf.length) onData(Buffer.alloc(0));
  }

  handle(c, headText, rest) {
    const lines = headText.split('\r\n');
    const [method, target] = lines[0].split(' ');
    const headers = lines.slice(1).filter(Boolean).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
    const auth = headers.find(([k]) => k.toLowerCase() === 'proxy-authorization');
    this.heads.push({ method, target, authorization: auth ? auth[1] : null, head: headText });
    if (!auth || auth[1] !== this.expected) {
      this.refused++;
      const body = 'proxy credentials wanted';
      this.answer(
        c,
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test upstream"\r\n' +
          `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        true,
      );
      return;
    }
    let host;
    let port;
    let originForm = null;
    if (method === 'CONNECT') {
      const i = target.lastIndexOf(':');
      host = target.slice(0, i);
      port = Number(target.slice(i + 1));
    } else {
      const u = new URL(target);
      host = u.hostname;
      port = Number(u.port || 80);
      originForm = u.pathname + u.search;
    }
    if (host !== LOOPBACK) {
      // never connect anywhere but loopback (Chromium's own requests to Google land here)
      if (method !== 'CONNECT' && this.others === 'noContent') {
        // drop the request body (Content-Length only), answer, and wait for the next head
        const cl = headers.find(([k]) => k.toLowerCase() === 'content-length');
        let skip = cl ? Number(cl[1]) : 0;
        const next = (buf) => {
          const drop = Math.min(skip, buf.length);
          skip -= drop;
          if (skip > 0) return false;
          c.off('data', onBody);
          this.answer(c, 'HTTP/1.1 204 No Content\r\n\r\n');
          this.readHead(c, buf.subarray(drop));
          return true;
        };
        const onBody = (d) => next(d);
        c.on('data', onBody);
        next(rest);
        c.resume();
        return;
      }
      this.answer(c, 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', true);
      return;
    }
    const t = net.connect({ host: LOOPBACK, port });
    this.track(t);
    t.on('error', () => c.destroy());
    t.on('connect', () => {
      if (method === 'CONNECT') {
        this.answer(c, 'HTTP/1.1 200 Connection established\r\n\r\n');
      } else {
        const keep = headers.filter(([k]) => !/^(proxy-authorization|proxy-connection|connection|keep-alive)$/i.test(k));
        t.write(`${method} ${originForm} HTTP/1.1\r\n` + keep.map(([k, v]) => `${k}: ${v}\r\n`).join('') + 'Connection: close\r\n\r\n');
      }
      if (rest.length) t.write(rest);
      t.on('data', (d) => {
        this.sent += d.length;
      });
      c.pipe(t);
      t.pipe(c);
      c.resume();
    });
    c.on('close', () => t.destroy());
    t.on('close', () => c.destroy());
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------ DNS ----

/**
 * Makes the harness's fake resolver (the daemon's only nameserver when DNS is isolated) answer
 * each name of `names` ({name: 'a.b.c.d'}) with that A record, and with an empty NOERROR for
 * its other record types; every other name still gets NXDOMAIN. Returns a function that
 * restores the original answers. The harness's socket is reused (its message listeners are
 * swapped for the duration; nothing in harness.js changes).
 */
async function answerNames(names) {
  const dns = await fakeDns();
  const saved = dns.server.listeners('message');
  dns.server.removeAllListeners('message');
  const table = new Map(Object.entries(names).map(([k, v]) => [k.toLowerCase(), v]));
  dns.server.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    let i = 12;
    const labels = [];
    while (i < msg.length && msg[i] !== 0 && labels.length < 64) {
      labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString('latin1'));
      i += 1 + msg[i];
    }
    const qname = labels.join('.').toLowerCase();
    dns.queries.push(qname);
    const question = msg.subarray(12, Math.min(msg.length, i + 5));
    const qtype = i + 2 < msg.length ? msg.readUInt16BE(i + 1) : 0;
    const ipv4 = table.get(qname);
    const answerA = ipv4 !== undefined && qtype === 1;
    const parts = [
      msg.subarray(0, 2),
      Buffer.from([0x81 | (msg[2] & 0x01), ipv4 !== undefined ? 0x80 : 0x83]), // NOERROR for ours, else NXDOMAIN
      Buffer.from([0, 1, 0, answerA ? 1 : 0, 0, 0, 0, 0]),
      question,
    ];
    if (answerA) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      rr.writeUInt16BE(1, 2); // A
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(5, 6); // TTL
      rr.writeUInt16BE(4, 10);
      ipv4.split('.').forEach((b, k) => rr.writeUInt8(Number(b), 12 + k));
      parts.push(rr);
    }
    dns.server.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  return () => {
    dns.server.removeAllListeners('message');
    for (const l of saved) dns.server.on('message', l);
  };
}

// ------------------------------------------------------------------ bandwidth ----

/** Browser.getBandwidth over a CDP session (page-level or browser-level). */
async function getBandwidth(cdp) {
  const r = await cdp.send('Browser.getBandwidth');
  return r.bandwidth;
}

/**
 * Polls until fn() returns the same value (compared as JSON) `stableFor` ms in a row; returns
 * it. Used to wait for the last favicon request or keep-alive bytes to settle before comparing
 * counters.
 */
async function settled(fn, { stableFor = 400, timeout = 10000, interval = 100, what = 'counters to settle' } = {}) {
  const deadline = Date.now() + timeout;
  let last = JSON.stringify(await fn());
  let since = Date.now();
  for (;;) {
    await sleep(interval);
    const v = await fn();
    const s = JSON.stringify(v);
    if (s !== last) {
      last = s;
      since = Date.now();
    } else if (Date.now() - since >= stableFor) {
      return v;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last ${s})`);
  }
}

/** The proxy hop's own bytes of one plain-HTTP request to `origin` (docs/proxy.md, "Browser side
 * vs. site side"): the `scheme://authority` of the absolute-form target, plus the
 * `Proxy-Connection: keep-alive` line Chromium sends and the proxy removes (it adds nothing to
 * an HTTP/1.1 keep-alive request). */
function plainHop(origin) {
  return Buffer.byteLength(origin) + Buffer.byteLength('Proxy-Connection: keep-alive\r\n');
}

/** The CONNECT head Chromium sends to its proxy (request line, Host, Proxy-Connection,
 * User-Agent), whose whole length is part of the hop in direct mode. */
function connectHead(authority, userAgent) {
  return `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Connection: keep-alive\r\nUser-Agent: ${userAgent}\r\n\r\n`;
}

/** The proxy's answer to a CONNECT (docs/proxy.md: 39 bytes per tunnel). */
const CONNECT_ANSWER = 'HTTP/1.1 200 Connection established\r\n\r\n';

/**
 * browserd's proxy log lines (`module=proxy event=... port=... target="..." detail="..."`), parsed,
 * as they are written: those already in d.log, then every new one. Each: {event, port, target,
 * detail, line}.
 */
function watchProxyLog(d) {
  const lines = [];
  const take = (l) => {
    if (!l.includes(' module=proxy ') && !l.startsWith('module=proxy ')) return;
    const kv = {};
    for (const m of l.matchAll(/(\w+)=("([^"]*)"|\S+)/g)) kv[m[1]] = m[3] !== undefined ? m[3] : m[2];
    lines.push({ event: kv.event, port: Number(kv.port), target: kv.target, detail: kv.detail, line: l });
  };
  const parts = d.log.split('\n');
  let partial = parts.pop();
  parts.forEach(take);
  d.proc.stderr.on('data', (chunk) => {
    partial += chunk.toString();
    const ps = partial.split('\n');
    partial = ps.pop();
    ps.forEach(take);
  });
  return lines;
}

/** The port of the traffic proxy a Chromium main process was started with (--proxy-server). */
function proxyPortOf(chromiumMain) {
  const arg = chromiumMain.argv.find((a) => a.startsWith('--proxy-server='));
  assert.ok(arg, `no --proxy-server in ${chromiumMain.argv.join(' ')}`);
  return Number(new URL(arg.slice('--proxy-server='.length)).port);
}

/**
 * Measures one session: its Browser.getBandwidth (through `cdp`) against what `sites` counted,
 * over windows of test actions. Background requests of Chromium itself (update checks, account
 * and search-engine preconnects: they go through the session's proxy like everything else) are
 * recognised by the log line the proxy writes for each of them (with the fake DNS every one of
 * them fails), and a window with one is measured again.
 */
class Meter {
  constructor({ cdp, sites, log, ctx }) {
    this.cdp = cdp;
    this.sites = sites;
    this.log = log;
    this.ctx = ctx;
  }

  async snap() {
    const bw = await getBandwidth(this.cdp);
    const sites = this.sites.map((s) => {
      const f = s.front.snapshot();
      return { received: f.received, sent: f.sent, total: f.total, accepted: f.accepted, requests: s.requests.length, bodyBytes: s.bodyBytes };
    });
    return { bw, sites, lines: this.log.length };
  }

  /** A snapshot once nothing has moved for `stableFor` ms (last favicon, late preconnects). */
  settle(stableFor = 600) {
    return settled(() => this.snap(), { stableFor, timeout: 15000, what: 'bandwidth and site counters to settle' });
  }

  /**
   * Runs `actions` between two settled snapshots until a window passes without a background
   * request of Chromium's own (at most `attempts` times): no proxy log line (unless `ignore(line)`)
   * and nothing from `otherNoise(before, after)` (a list of {target, detail}). Returns {before, after, delta, result,
   * attempt}; delta: {total, payload, overhead, sites: [{received, sent, total, accepted, requests,
   * bodyBytes, newRequests}]}.
   */
  async window(what, actions, { attempts = 5, ignore = () => false, otherNoise = () => [] } = {}) {
    for (let attempt = 1; ; attempt++) {
      const before = await this.settle();
      const result = await actions(attempt);
      const after = await this.settle();
      const noise = this.log.slice(before.lines, after.lines).filter((l) => !ignore(l));
      noise.push(...otherNoise(before, after));
      if (!noise.length) {
        const delta = {
          total: after.bw.total - before.bw.total,
          payload: after.bw.payload_bytes - before.bw.payload_bytes,
          overhead: after.bw.overhead_bytes - before.bw.overhead_bytes,
          sites: after.sites.map((a, i) => {
            const b = before.sites[i];
            const out = {};
            for (const k of Object.keys(a)) out[k] = a[k] - b[k];
            out.newRequests = this.sites[i].requests.slice(b.requests, a.requests);
            return out;
          }),
        };
        if (attempt > 1) this.ctx?.log(`${what}: clean window on attempt ${attempt}`);
        return { before, after, delta, result, attempt };
      }
      const targets = noise.map((l) => `${l.target} (${l.detail})`).join(', ');
      if (attempt >= attempts)
        throw new Error(`${what}: Chromium's own requests crossed every one of ${attempts} windows; last: ${targets}`);
      this.ctx?.log(`${what}: attempt ${attempt} overlapped Chromium's own request(s) ${targets}; measuring again`);
    }
  }
}

/** Runs a browserd CLI command on a database; returns stdout (asserts exit status 0). */
function cli(bin, db, ...args) {
  const r = spawnSync(bin, ['--db', db, ...args], { encoding: 'utf8', timeout: 15000 });
  assert.equal(r.status, 0, `browserd ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

module.exports = {
  LOOPBACK,
  CountingFront,
  Site,
  fixed,
  bytesRoute,
  filler,
  htmlOfSize,
  pngOfSize,
  addWebSocketEcho,
  wsHandshakeResponse,
  testCertificate,
  TestUpstreamProxy,
  answerNames,
  getBandwidth,
  plainHop,
  connectHead,
  CONNECT_ANSWER,
  watchProxyLog,
  proxyPortOf,
  Meter,
  settled,
  cli,
  waitFor,
};
