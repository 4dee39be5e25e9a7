'use strict';
// Slow and abusive clients on the listeners: a request head trickled byte by byte (slowloris),
// 10,000 idle connections, and a CDP client that stops reading while its browser keeps
// answering. Each must cost browserd bounded memory, leave it serving everyone else, and end
// the way docs/http.md and docs/gateway.md say.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { e2e, waitFor, sleep, wsConnect, wsClosed, cdpCall } = require('./harness');

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Sends a request head one byte every `everyMs` and never finishes it; resolves with what the
 * server answered and when it closed, or with closed: false after `giveUpMs`.
 */
function trickle(port, { everyMs = 400, giveUpMs = 20000 } = {}) {
  const head = 'GET /browser_sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(200);
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t0 = Date.now();
    let answer = '';
    let i = 0;
    const drip = setInterval(() => {
      if (i < head.length && !s.destroyed) s.write(head[i++]);
    }, everyMs);
    const done = (closed) => {
      clearInterval(drip);
      clearTimeout(limit);
      s.destroy();
      resolve({ closed, afterMs: Date.now() - t0, answer, sent: i });
    };
    const limit = setTimeout(() => done(false), giveUpMs);
    s.on('data', (d) => (answer += d.toString('latin1')));
    s.on('close', () => done(true));
    s.on('error', () => {});
  });
}

e2e('slowloris: a request head trickled one byte at a time gets 408 and is closed at the request timeout (10 s) on the API and the CDP port, however long it keeps dripping', { timeout: 60000 }, async (ctx) => {
  const d = await ctx.daemon({ pool: 0 });
  const [api, cdp] = await Promise.all([trickle(d.apiPort), trickle(d.cdpPort)]);
  for (const [name, r] of [['API', api], ['CDP', cdp]]) {
    assert.ok(r.closed, `${name} port: still open after ${r.afterMs} ms of dripping (${r.sent} bytes)`);
    assert.match(r.answer, /^HTTP\/1\.1 408 /, `${name} port answered ${JSON.stringify(r.answer.slice(0, 80))}`);
    // the deadline runs from the request's first byte: a byte every 400 ms does not extend it
    assert.ok(r.afterMs >= 9000 && r.afterMs < 15000, `${name} port closed after ${r.afterMs} ms`);
  }
  const ok = await d.api('GET', '/browser_sessions');
  assert.equal(ok.status, 200, 'the API serves others meanwhile and after');
});

e2e('10,000 idle connections to the API port: bounded memory, the API still answers a new client (the longest idle gives way at max_connections), every fd is given back', { timeout: 120000 }, async (ctx) => {
  const N = 10000;
  const { execSync } = require('node:child_process');
  const limit = Number(execSync('ulimit -n', { shell: '/bin/bash' }).toString().trim());
  assert.ok(limit > N + 100, `this test needs ${N + 100} open files, the limit is ${limit} (tests/e2e/run.sh raises it to the hard limit)`);
  const d = await ctx.daemon({ pool: 0 });
  const fds0 = fdCount(d.pid);
  const rss0 = rssKiB(d.pid);
  const sockets = [];
  ctx.defer(() => sockets.forEach((s) => s.destroy()));
  let closedByServer = 0;
  for (let i = 0; i < N; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 500); j++) {
      batch.push(
        new Promise((resolve, reject) => {
          const s = net.connect({ host: '127.0.0.1', port: d.apiPort }, () => resolve(s));
          s.on('error', reject);
          s.on('close', () => closedByServer++);
        }),
      );
    }
    sockets.push(...(await Promise.all(batch)));
  }
  // every one accepted by browserd (not only by the kernel's backlog)
  await waitFor(() => fdCount(d.pid) >= fds0 + N, { timeout: 30000, what: `browserd to hold ${N} more fds` });
  const rssIdle = rssKiB(d.pid);
  const perConn = ((rssIdle - rss0) * 1024) / N;
  ctx.log(`browserd: ${fds0} -> ${fdCount(d.pid)} fds, RSS ${rss0} -> ${rssIdle} KiB: ${perConn.toFixed(0)} bytes per idle connection`);
  assert.ok(perConn < 4096, `${perConn.toFixed(0)} bytes of RSS per idle connection (limit 4 KiB: no read buffer is held while idle)`);
  assert.equal(closedByServer, 0, 'no idle connection was closed before the limit was reached');

  // the 10,001st: served, and exactly one idle connection made room for it
  const r = await d.api('GET', '/browser_sessions?limit=1');
  assert.equal(r.status, 200);
  await waitFor(() => closedByServer >= 1, { timeout: 5000, what: 'the longest idle connection to be closed' });
  await sleep(200);
  assert.equal(closedByServer, 1, 'one idle connection gave its place, no more');

  sockets.forEach((s) => s.destroy());
  // (browserd's own fds move by a few on their own: database files, worker threads' pipes)
  let now = 0;
  await waitFor(() => (now = fdCount(d.pid)) <= fds0 + 16, { timeout: 30000, what: `browserd to give its fds back (${fds0} before)` }).catch((e) => {
    throw new Error(`${e.message}: ${now} still open`);
  });
});

e2e('a CDP client that stops reading while its browser keeps answering: browserd stops reading the browser (memory bounded by the buffers, not by what was asked), and the quiet session ends as inactivity_timeout', { timeout: 120000 }, async (ctx) => {
  const d = await ctx.daemon({ pool: 0, args: ['--idle-timeout', '4'] });
  const { ws } = await wsConnect(d.wsEndpoint());
  assert.ok(ws, 'connected');
  const closed = wsClosed(ws);
  const { result } = await cdpCall(ws, 1, 'Browser.getSessionId');
  const sessionId = result.sessionId;
  const targets = await cdpCall(ws, 2, 'Target.getTargets');
  const page = targets.result.targetInfos.find((t) => t.type === 'page');
  assert.ok(page, 'the browser has its page');
  const attached = await cdpCall(ws, 3, 'Target.attachToTarget', { targetId: page.targetId, flatten: true });
  const cdpSession = attached.result.sessionId;
  const rss0 = rssKiB(d.pid);

  // stop reading, then ask for 200 answers of 1 MiB each: 200 MiB that browserd must not hold
  ws._socket.pause();
  const asks = 200;
  for (let i = 0; i < asks; i++) {
    ws.send(JSON.stringify({ id: 100 + i, method: 'Runtime.evaluate', sessionId: cdpSession, params: { expression: "'x'.repeat(1 << 20)", returnByValue: true } }));
  }
  let peak = rss0;
  for (let i = 0; i < 20; i++) {
    await sleep(150);
    peak = Math.max(peak, rssKiB(d.pid));
  }
  ctx.log(`browserd RSS ${rss0} KiB -> peak ${peak} KiB while ${asks} MiB of answers were asked for`);
  assert.ok(peak - rss0 < 48 * 1024, `browserd grew by ${peak - rss0} KiB for a client that does not read (limit 48 MiB)`);

  // nothing moves any more: after the idle limit the session ends, recorded with the reason
  const rec = await d.ended(sessionId, 30000);
  assert.equal(rec.status, 'failed');
  assert.equal(rec.error.code, 'inactivity_timeout');
  ws._socket.resume();
  ws._socket.destroy();
  await closed;
});
