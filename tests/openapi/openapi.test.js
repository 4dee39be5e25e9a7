'use strict';
// GET /openapi.json against the OpenAPI 3.1 specification, and a running browserd against
// GET /openapi.json: every route, every documented status the suite can bring about (401 of
// both kinds on every secured operation, 400 for each parameter, 404, 405, 409, 204, 200 of the
// list, one session and the health routes), every answer checked by checker.js (status, headers,
// media type, body schema, field order). The daemon is the e2e suite's (tests/e2e/harness.js:
// temporary database, imported sessions, its own DNS, nothing left behind).

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const test = require('node:test');

const h = require('../e2e/harness.js');
const { validateDocument, Checker, requiresAuth } = require('./checker.js');

const DOC_FILE = path.join(h.REPO, 'src', 'api', 'openapi.json');
const RAW = fs.readFileSync(DOC_FILE);
const DOC = JSON.parse(RAW.toString('utf8'));

// The routes for load balancers and monitoring: no key (the metrics token is off by default).
const OPS_ROUTES = ['/health', '/ready', '/pressure', '/metrics'];
// Documented statuses the suite cannot bring about against a healthy daemon (tests/unit/api
// covers them): out of memory, the database or a node out of reach, an unhealthy node.
const NOT_PROVOKED = [/ 500$/, / 503$/];

/** One request: {method, path, status, headers, body (Buffer)}. */
function exchange(port, method, p, headers = {}, localAddress = undefined) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ method, path: p, status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function cli(d, ...args) {
  const r = spawnSync(h.BIN, ['--db', d.db, ...args], { encoding: 'utf8', input: args.includes('-') ? d.stdin : undefined });
  assert.equal(r.status, 0, `browserd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

const uid = (n) => `0192f5e8-7b3c-7def-8a12-${String(n).padStart(12, '0')}`;
function rec(n, status, extra = {}) {
  return {
    session_id: uid(n), api_name: 'scraping_browser1', status, target_url: 'https://www.example.com/',
    end_url: 'https://www.example.com/cart', navigations: 3, timestamp: `2025-12-0${n}T10:00:00.250Z`,
    duration: status === 'running' ? null : 12.5, captcha: 'solved', bandwidth: 123456,
    error: status === 'failed' ? { code: 'page_navigated_error', message: 'net::ERR_NAME_NOT_RESOLVED at https://x.invalid/' } : null,
    ...extra,
  };
}

// ---------------------------------------------------------------- the document ----

test('the document is valid OpenAPI 3.1, and every schema in it compiles as JSON Schema 2020-12 (strict)', async () => {
  const { schemas } = await validateDocument(DOC);
  assert.ok(schemas > 20, `only ${schemas} schemas compiled`);
});

test('the document is browserd\'s version and lists every route browserd serves', () => {
  const v = spawnSync(h.BIN, ['--version'], { encoding: 'utf8' });
  assert.equal(v.stdout.trim(), `browserd ${DOC.info.version}`);
  assert.deepEqual(Object.keys(DOC.paths).sort(),
    ['/', '/browser_sessions', '/browser_sessions/stats', '/browser_sessions/{session_id}', '/dashboard', '/dashboard/',
      '/dashboard/app.css', '/dashboard/app.js', '/health', '/healthz', '/metrics', '/openapi.json', '/pressure', '/ready',
      // the live view: POST on the API; the rest on the CDP listener (their own `servers`)
      '/browser_sessions/{session_id}/live', '/live/viewer.css', '/live/viewer.js', '/live/{token}', '/live/{token}/ws'].sort());
  assert.deepEqual(DOC.security, [{ bearerAuth: [] }]);
  assert.equal(DOC.components.securitySchemes.bearerAuth.scheme, 'bearer');
  // the list's parameters: the contract's ten
  assert.deepEqual(DOC.paths['/browser_sessions'].get.parameters.map((p) => p.$ref.split('/').pop()),
    ['api_name', 'limit', 'offset', 'status', 'start_date', 'end_date', 'target_url', 'end_url', 'sort', 'order']);
});

test('every example in the document is valid against its own schema', () => {
  const c = new Checker(DOC);
  const { deref } = require('./checker.js');
  let n = 0;
  const responses = [...Object.values(DOC.components.responses)];
  for (const item of Object.values(DOC.paths)) {
    for (const op of Object.values(item)) if (op && op.responses) responses.push(...Object.values(op.responses));
  }
  for (const r0 of responses) {
    const r = deref(DOC, r0);
    for (const [media, mt] of Object.entries(r.content || {})) {
      for (const [name, ex] of Object.entries(mt.examples || {})) {
        assert.deepEqual(c.schemaErrors(mt.schema, ex.value), [], `example ${name} (${media}) of "${r.description}"`);
        n++;
      }
    }
  }
  for (const p of Object.values(DOC.components.parameters)) {
    assert.deepEqual(c.schemaErrors(p.schema, p.example), [], `the example of parameter ${p.name}`);
    n++;
  }
  assert.ok(n > 15, `only ${n} examples`);
});

test('the validators refuse a broken document', async () => {
  const broken = [
    (d) => { d.paths['/healthz'].get.responses['200'].content['application/json'].schema = { type: 'strin' }; },
    (d) => { d.components.schemas.Session.properties.error.oneOf[0].$ref = '#/components/schemas/Nope'; },
    (d) => { d.paths['/browser_sessions'].head.operationId = 'listBrowserSessions'; },
    (d) => { delete d.paths['/browser_sessions/{session_id}'].parameters; },
    (d) => { d.components.schemas.Session.properties.duration.minimun = 0; },
    (d) => { d.openapi = '3.0.3'; },
  ];
  for (const [i, breakIt] of broken.entries()) {
    const d = JSON.parse(RAW.toString('utf8'));
    breakIt(d);
    await assert.rejects(validateDocument(d), undefined, `broken document ${i} was accepted`);
  }
});

// ---------------------------------------------------------------- the checker ----

test('the checker refuses answers the document does not describe', () => {
  const c = new Checker(DOC);
  const session = rec(1, 'finished');
  session.timestamp = '2025-12-01T10:00:00Z';
  const json = (o) => Buffer.from(JSON.stringify(o));
  const ok = (status, body, headers = {}) => ({ status, headers: { 'content-type': 'application/json', ...headers }, body: json(body) });
  const one = (s) => ({ method: 'GET', path: `/browser_sessions/${uid(1)}`, ...ok(200, { session: s }) });
  // what the server would answer: accepted
  c.check(one(session));
  c.check({ method: 'GET', path: '/nope', ...ok(404, { error: 'Not found' }) });
  const bad = {
    'an extra field': one({ ...session, extra: 1 }),
    'a missing field': one((() => { const s = { ...session }; delete s.captcha; return s; })()),
    'a wrong type': one({ ...session, navigations: '3' }),
    'a wrong value': one({ ...session, status: 'done' }),
    'fields out of order': one(Object.fromEntries(Object.entries(session).reverse())),
    'a running session with a duration': one({ ...session, status: 'running' }),
    'a failed session without an error': one({ ...session, status: 'failed' }),
    'an error object with an extra field': one({ ...session, status: 'failed', error: { code: 'x', message: '', at: 1 } }),
    'an undocumented status': { method: 'GET', path: '/healthz', ...ok(418, { status: 'ok', sessions: 0 }) },
    'a wrong media type': { ...one(session), headers: { 'content-type': 'text/html' } },
    '401 without WWW-Authenticate': { method: 'GET', path: '/browser_sessions', ...ok(401, { error: 'Credentials are missing' }) },
    '401 with another message': { method: 'GET', path: '/browser_sessions', ...ok(401, { error: 'Nope' }, { 'www-authenticate': 'Bearer' }) },
    '400 whose details name no parameter': { method: 'GET', path: '/browser_sessions?x', ...ok(400, { error: 'Invalid request parameters', details: 'bad' }) },
    '404 without the session id': { method: 'GET', path: `/browser_sessions/${uid(9)}`, ...ok(404, { error: 'Session not found' }) },
    '405 with a wrong Allow': { method: 'POST', path: '/healthz', ...ok(405, { error: 'Method not allowed' }, { allow: 'GET' }) },
    '204 with a body': { method: 'DELETE', path: `/browser_sessions/${uid(1)}`, ...ok(204, { error: 'x' }) },
    'a list whose next_offset contradicts has_more': { method: 'GET', path: '/browser_sessions',
      ...ok(200, { sessions: [], count: 0, total: 0, pagination: { offset: 0, limit: 50, has_more: false, next_offset: 50 } }) },
    'a 200 on a path the document does not list': { method: 'GET', path: '/nope', ...ok(200, {}) },
    'a body that is not JSON': { ...one(session), body: Buffer.from('{"session":') },
  };
  for (const [what, ex] of Object.entries(bad)) {
    assert.throws(() => c.check(ex), undefined, `accepted ${what}`);
  }
});

// ---------------------------------------------------------------- live ----

h.e2e('a running browserd answers as the document says, on every route', { timeout: 120000 }, async (ctx) => {
  const t = ctx.t;
  const d = await ctx.daemon({ pool: 0 });
  const c = new Checker(DOC);
  const port = d.apiPort;
  const key = d.creds.apiKey;
  const bearer = { Authorization: `Bearer ${key}` };
  // another customer, a revoked key, imported sessions of both customers
  cli(d, 'customer', 'add', 'oa_other');
  const otherKey = cli(d, 'key', 'add', 'oa_other');
  const revoked = cli(d, 'key', 'add', 'default');
  const keyIds = cli(d, 'key', 'list', 'default').split('\n').map((l) => l.split('\t')[0]);
  cli(d, 'key', 'revoke', keyIds[keyIds.length - 1]);
  // (a running record is imported for the other customer only: the harness requires every
  // session of the daemon's own customer to have ended when the test is over)
  d.stdin = [rec(1, 'finished'), rec(2, 'failed')].map((r) => JSON.stringify(r)).join('\n') + '\n';
  cli(d, 'sessions', 'import', 'default', '-');
  d.stdin = [rec(4, 'finished'), rec(3, 'running', { target_url: null, end_url: null, navigations: 0 })]
    .map((r) => JSON.stringify(r)).join('\n') + '\n';
  cli(d, 'sessions', 'import', 'oa_other', '-');
  const otherBearer = { Authorization: `Bearer ${otherKey}` };

  const go = async (method, p, headers = {}) => c.check(await exchange(port, method, p, headers));

  // ---- no key needed
  await t.test('/openapi.json is the file, byte for byte, without a key', async () => {
    const ex = await exchange(port, 'GET', '/openapi.json');
    assert.equal(ex.status, 200);
    assert.ok(ex.body.equals(RAW), 'the served document differs from src/api/openapi.json');
    c.check(ex);
    await go('HEAD', '/openapi.json');
    for (const m of ['POST', 'DELETE', 'PUT']) assert.equal((await exchange(port, m, '/openapi.json')).status, 405);
    await go('POST', '/openapi.json');
  });

  await t.test('/healthz', async () => {
    assert.equal((await go('GET', '/healthz')).status, 'ok');
    await go('HEAD', '/healthz');
    await go('DELETE', '/healthz');
  });

  for (const route of OPS_ROUTES) {
    await t.test(route, async () => {
      const first = await exchange(port, 'GET', route);
      assert.equal(first.status, 200, `${route} without a key: ${first.status} ${first.body}`);
      c.check(first); // without a key, as documented
      await go('HEAD', route);
      await go('POST', route);
    });
  }

  await t.test('/metrics with a metrics token: 401 without it or with a wrong one, 200 with it', async () => {
    const token = 'openapi-metrics-token';
    const dt = await ctx.daemon({ pool: 0, args: ['--metrics-token', token] });
    for (const m of ['GET', 'HEAD']) {
      for (const hdrs of [{}, { Authorization: 'Bearer nope' }, bearer]) {
        const ex = await exchange(dt.apiPort, m, '/metrics', hdrs);
        assert.equal(ex.status, 401, `${m} /metrics with ${JSON.stringify(hdrs)}`);
        c.check(ex);
      }
      const ok = await exchange(dt.apiPort, m, '/metrics', { Authorization: `Bearer ${token}` });
      assert.equal(ok.status, 200);
      c.check(ok);
    }
  });

  // ---- authentication
  await t.test('401 of both kinds on every secured operation, and none on the others', async () => {
    const secured = [];
    for (const [p, item] of Object.entries(DOC.paths)) {
      if (item.servers) continue; // not the API listener's (the live view's, checked below)
      for (const m of ['get', 'head', 'delete']) {
        if (!item[m]) continue;
        const concrete = p.replace('{session_id}', uid(1));
        if (!requiresAuth(DOC, item[m])) {
          const ex = await exchange(port, m.toUpperCase(), concrete);
          assert.notEqual(ex.status, 401, `${m} ${p} has no security in the document but asked for a key`);
          continue;
        }
        secured.push(p);
        const cases = [[{}, 'Credentials are missing'], [{ Authorization: '' }, 'Credentials are missing'],
          [{ Authorization: 'Basic abc' }, 'Credentials are missing'], [{ Authorization: 'Bearer ' }, 'Credentials are missing'],
          [{ Authorization: 'Bearer 0123' }, 'Invalid credentials'], [{ Authorization: `Bearer ${revoked}` }, 'Invalid credentials']];
        for (const [hdrs, message] of cases) {
          const ex = await exchange(port, m.toUpperCase(), concrete, hdrs);
          assert.equal(ex.status, 401, `${m} ${p} with ${JSON.stringify(hdrs)}`);
          const body = c.check(ex);
          if (m !== 'head') assert.equal(body.error, message);
        }
      }
    }
    assert.ok(secured.length >= 5);
    // 401 comes before 404 and 405
    await go('GET', '/nope');
    await go('POST', '/browser_sessions');
  });

  // ---- the list
  const list = (q, hdrs = bearer) => go('GET', `/browser_sessions${q === undefined ? '' : '?' + q}`, hdrs);
  await t.test('200 list: the whole list, pagination, every parameter with its example value', async () => {
    const all = await list();
    assert.equal(all.total, 2);
    assert.deepEqual(all.sessions.map((s) => s.status), ['failed', 'finished']);
    const other = await list(undefined, otherBearer);
    assert.deepEqual(other.sessions.map((s) => [s.status, s.duration]), [['finished', 12.5], ['running', null]]);
    const page = await list('limit=1');
    assert.equal(page.pagination.has_more, true);
    assert.equal(page.pagination.next_offset, 1);
    assert.equal((await list('offset=10')).count, 0);
    await go('HEAD', '/browser_sessions', bearer);
    for (const ref of DOC.paths['/browser_sessions'].get.parameters) {
      const p = DOC.components.parameters[ref.$ref.split('/').pop()];
      assert.deepEqual(c.schemaErrors(p.schema, p.example), [], `the example of ${p.name} fails its own schema`);
      await list(`${p.name}=${encodeURIComponent(p.example)}`);
    }
    await list('start_date=2025-12-01T02:00:00%2B02:00&end_date=2025-12-03&sort=bandwidth&order=asc&status=all&unknown=1');
  });

  await t.test('400 for each parameter, and what the document says of each value agrees', async () => {
    const params = Object.fromEntries(DOC.paths['/browser_sessions'].get.parameters
      .map((r) => DOC.components.parameters[r.$ref.split('/').pop()]).map((p) => [p.name, p]));
    // [name, raw value, decoded value its schema must refuse (undefined: not a matter of the value alone)]
    const cases = [
      ['api_name', '', ''], ['api_name', 'a%zz', undefined], ['api_name', 'a%00b', undefined],
      ['limit', '0', 0], ['limit', '101', 101], ['limit', 'abc', 'abc'], ['limit', '5.0', '5.0'], ['limit', '', ''],
      ['offset', '-1', '-1'], ['offset', '2147483648', 2147483648],
      ['status', 'Running', 'Running'], ['status', 'all2', 'all2'],
      ['start_date', '2025-02-29', '2025-02-29'], ['start_date', '2025-12-01T24:00:00Z', '2025-12-01T24:00:00Z'],
      ['end_date', 'yesterday', 'yesterday'], ['end_date', '2025-12-01T00:00:00', '2025-12-01T00:00:00'],
      ['target_url', '', ''], ['end_url', '', ''],
      ['sort', 'size', 'size'], ['order', 'ASC', 'ASC'],
    ];
    const coerce = (schema, v) => (schema.type === 'integer' && /^-?\d+$/.test(v) ? Number(v) : v);
    const seen = new Set();
    for (const [name, raw, decoded] of cases) {
      const body = await list(`${name}=${raw}`);
      assert.equal(body.error, 'Invalid request parameters');
      assert.ok(body.details.startsWith(`${name}: `), `${name}=${raw}: details ${body.details}`);
      if (decoded !== undefined) {
        assert.notDeepEqual(c.schemaErrors(params[name].schema, coerce(params[name].schema, decoded)), [],
          `${name}=${raw} is a 400 but the document's schema for ${name} accepts it`);
      }
      seen.add(name);
    }
    assert.deepEqual([...seen].sort(), Object.keys(params).sort(), 'a 400 case for every parameter');
    assert.match((await list('limit=5&li%6Dit=5')).details, /^limit: given more than once/);
    assert.match((await list('start_date=2025-12-02&end_date=2025-12-01')).details, /^start_date: /);
    await go('HEAD', '/browser_sessions?limit=0', bearer);
  });

  // ---- the stats
  await t.test('200 and 400 of the stats, HEAD, 405', async () => {
    const stats = (q, hdrs = bearer) => go('GET', `/browser_sessions/stats${q === undefined ? '' : '?' + q}`, hdrs);
    const all = await stats();
    assert.equal(all.total, 2);
    assert.deepEqual(all.errors, [{ code: 'page_navigated_error', count: 1 }]);
    const days = await stats('bucket=day&start_date=2025-12-01&end_date=2025-12-03');
    assert.equal(days.buckets.length, 3);
    assert.equal((await stats('api_name=nope')).from, null);
    assert.equal((await stats(undefined, otherBearer)).sessions.running, 1);
    for (const ref of DOC.paths['/browser_sessions/stats'].get.parameters) {
      const p = DOC.components.parameters[ref.$ref.split('/').pop()];
      await stats(`${p.name}=${encodeURIComponent(p.example)}`);
    }
    assert.match((await stats('bucket=week')).details, /^bucket: /);
    assert.match((await stats('limit=0')).details, /^limit: /);
    assert.match((await stats('start_date=2000-01-01')).details, /^bucket: the range holds \d+ hours, more than 1000/);
    await go('HEAD', '/browser_sessions/stats', bearer);
    await go('HEAD', '/browser_sessions/stats?bucket=x', bearer);
    await go('DELETE', '/browser_sessions/stats', bearer);
  });

  // ---- the dashboard
  await t.test('the dashboard\'s page, script and style without a key, HEAD, 405', async () => {
    for (const p of ['/', '/dashboard', '/dashboard/', '/dashboard/app.js', '/dashboard/app.css']) {
      const text = await go('GET', p);
      assert.ok(text.length > 1000, `${p}: ${text.length} bytes`);
      await go('HEAD', p);
      await go('POST', p);
    }
  });

  // ---- one session
  await t.test('200, 400, 404 of one session', async () => {
    assert.equal((await go('GET', `/browser_sessions/${uid(1)}`, bearer)).session.status, 'finished');
    assert.equal((await go('GET', `/browser_sessions/${uid(2)}`, bearer)).session.error.code, 'page_navigated_error');
    assert.equal((await go('GET', `/browser_sessions/${uid(3)}`, otherBearer)).session.duration, null);
    assert.equal((await go('GET', `/browser_sessions/${uid(1).toUpperCase()}`, bearer)).session.session_id, uid(1));
    await go('HEAD', `/browser_sessions/${uid(1)}`, bearer);
    const nf = await go('GET', `/browser_sessions/${uid(4)}`, bearer); // the other customer's
    assert.deepEqual(nf, { error: 'Session not found', session_id: uid(4) });
    assert.equal((await go('GET', `/browser_sessions/${uid(4)}`, { Authorization: `Bearer ${otherKey}` })).session.session_id, uid(4));
    assert.equal((await go('GET', '/browser_sessions/not-a-uuid', bearer)).error, 'Invalid session_id format');
    await go('HEAD', '/browser_sessions/not-a-uuid', bearer);
    await go('HEAD', `/browser_sessions/${uid(9)}`, bearer);
    await go('PUT', `/browser_sessions/${uid(1)}`, bearer);
    await go('PATCH', '/browser_sessions', bearer);
    await go('GET', '/nope', bearer);
    await go('GET', '/browser_sessions/a/b', bearer);
  });

  // ---- DELETE
  await t.test('DELETE: 409, 404, 400, and 204 for a session that runs', async () => {
    assert.equal((await go('DELETE', `/browser_sessions/${uid(1)}`, bearer)).error, 'Session is not running');
    assert.equal((await go('DELETE', `/browser_sessions/${uid(9)}`, bearer)).error, 'Session not found');
    assert.equal((await go('DELETE', '/browser_sessions/xyz', bearer)).error, 'Invalid session_id format');
    // a live session: a WebSocket to the CDP endpoint, with the zone's credentials
    const socket = await new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: d.cdpPort, path: '/', agent: false,
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': Buffer.from('openapi-test-key').toString('base64'), Authorization: d.basicAuth() },
      });
      req.on('upgrade', (res, sock) => resolve(sock));
      req.on('response', (res) => reject(new Error(`CDP upgrade answered ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    ctx.cleanups.push(() => socket.destroy());
    const running = await h.waitFor(async () => {
      const r = await list('status=running&sort=timestamp', bearer);
      return r.sessions.find((s) => s.session_id !== uid(3));
    }, { timeout: 20000, what: 'the live session in the list' });
    assert.equal(running.duration, null);
    // the server's close frame (opcode 8), or the connection's end
    const closed = new Promise((resolve) => {
      socket.on('data', (b) => (b[0] & 0x0f) === 8 && resolve());
      socket.on('close', resolve);
    });
    // the live view of the running session: its URL from the API, its routes on the CDP listener
    const livePath = `/browser_sessions/${running.session_id}/live`;
    const granted = await h.waitFor(async () => {
      const r = await exchange(port, 'POST', `${livePath}?input=true`, bearer);
      return r.status === 200 && r;
    }, { timeout: 15000, what: 'a live view URL (the session\'s first page)' });
    const liveUrl = c.check(granted).url;
    const token = new URL(liveUrl).pathname.split('/')[2];
    const cdp = (method, p, hdrs = {}) => exchange(d.cdpPort, method, p, hdrs).then((ex) => c.check(ex));
    await cdp('GET', `/live/${token}`);
    await cdp('GET', '/live/viewer.js');
    await cdp('GET', '/live/viewer.css');
    await cdp('GET', `/live/${'0'.repeat(64)}`);
    const upgradeTo = (p, key = true) => new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: d.cdpPort, path: p, agent: false,
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
          ...(key ? { 'Sec-WebSocket-Key': Buffer.from('openapi-live-key').toString('base64') } : {}) } });
      req.on('upgrade', (res, sock) => {
        sock.destroy();
        resolve({ method: 'GET', path: p, status: res.statusCode, headers: res.headers, body: Buffer.alloc(0) });
      });
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (b) => chunks.push(b));
        res.on('end', () => resolve({ method: 'GET', path: p, status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
    const viewer = await upgradeTo(`/live/${token}/ws`);
    assert.equal(viewer.status, 101);
    c.check(viewer);
    assert.equal((await upgradeTo(`/live/${token}/ws`, false)).status, 400);
    c.check(await upgradeTo(`/live/${token}/ws`, false));
    assert.equal((await upgradeTo(`/live/${'0'.repeat(64)}/ws`)).status, 404);
    c.check(await upgradeTo(`/live/${'0'.repeat(64)}/ws`));
    await go('POST', livePath); // 401
    await go('POST', '/browser_sessions/not-a-uuid/live', bearer); // 400
    await go('POST', `/browser_sessions/${uid(99)}/live`, bearer); // 404
    await go('POST', `/browser_sessions/${uid(3)}/live`, otherBearer); // 409: runs nowhere

    const ex = await exchange(port, 'DELETE', `/browser_sessions/${running.session_id}`, bearer);
    assert.equal(ex.status, 204, `DELETE of a running session: ${ex.status} ${ex.body}`);
    c.check(ex);
    await h.withTimeout(closed, 15000, 'the client connection to close');
    const ended = await h.waitFor(async () => {
      const s = (await go('GET', `/browser_sessions/${running.session_id}`, bearer)).session;
      return s.status !== 'running' && s;
    }, { timeout: 15000, what: 'the killed session to be recorded' });
    assert.equal(ended.status, 'failed');
    assert.equal(ended.error.code, 'job_killed');
    // the imported running session runs nowhere: whatever browserd answers must be documented
    await go('DELETE', `/browser_sessions/${uid(3)}`, otherBearer);
  });

  // ---- too many failed authentications from one address (its own, 127.0.0.80: the limit is
  // per source address, and the harness's checks come from 127.0.0.1)
  await t.test('429 with Retry-After on every secured operation once an address failed too often', async () => {
    const dl = await ctx.daemon({ pool: 0, args: ['--auth-fail-limit', '1', '--auth-fail-refill', '3600'] });
    const from = '127.0.0.80';
    const bad = await exchange(dl.apiPort, 'GET', '/browser_sessions', { Authorization: `Bearer ${'0'.repeat(64)}` }, from);
    assert.equal(bad.status, 401);
    for (const [p, item] of Object.entries(DOC.paths)) {
      for (const m of ['get', 'head', 'delete']) {
        if (!item[m] || !item[m].responses['429']) continue;
        const ex = await exchange(dl.apiPort, m.toUpperCase(), p.replace('{session_id}', uid(1)),
          { Authorization: `Bearer ${dl.creds.apiKey}` }, from);
        assert.equal(ex.status, 429, `${m} ${p}`);
        assert.match(ex.headers['retry-after'], /^[1-9][0-9]*$/);
        c.check(ex);
      }
    }
  });

  // ---- everything the document lists was seen
  await t.test('every documented status of every operation was answered and checked', () => {
    const missing = c.documented().filter((k) => !c.seen.has(k)).filter((k) => !NOT_PROVOKED.some((re) => re.test(k)));
    assert.deepEqual(missing, [], 'documented responses no request of this suite brought about');
  });
});
