"""The Browser Sessions API contract (shared/spec/browser-sessions-api.md), rule by rule,
over real HTTP against a real browserd.

Expected values here are written out by hand from the spec (not computed by model.py), so
the contract tests and the crosscheck stay independent of each other.

One daemon serves the whole module; its data is imported before it starts (so that only the
tests about live changes depend on the daemon following the store while it runs). Tests that
change state use their own customers.
"""

import os
import re
import signal
import socket
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Browserd, Client, ConnectionClosed, HTTPConn, HEX64  # noqa: E402
from model import canon, parse_strict  # noqa: E402  (strict JSON comparison helpers only)

FIELDS = ['session_id', 'api_name', 'status', 'target_url', 'end_url', 'navigations',
          'timestamp', 'duration', 'captcha', 'bandwidth', 'error']
LIST_KEYS = ['sessions', 'count', 'total', 'pagination']
PAGINATION_KEYS = ['offset', 'limit', 'has_more', 'next_offset']
INVALID = 'Invalid request parameters'
MISSING = {'error': 'Credentials are missing'}
BADKEY = {'error': 'Invalid credentials'}
BAD_ID = {'error': 'Invalid session_id format'}
NOT_FOUND_PATH = {'error': 'Not found'}


def uid(group, n):
    return '%08x-0000-7000-8000-%012x' % (group, n)


_SAME = object()


def rec(sid, ts, status='finished', api='scraping_browser1', target='https://www.example.com/',
        end=_SAME, nav=None, dur=12.5, captcha='none', bw=1000, error=None):
    """An import record (all 11 fields, in the contract's order)."""
    if end is _SAME:
        end = target
    if nav is None:
        nav = 0 if target is None and end is None else 2
    if status == 'running':
        dur = None
    if status == 'failed' and error is None:
        error = {'code': 'unknown', 'message': 'Error'}
    return {'session_id': sid, 'api_name': api, 'status': status, 'target_url': target,
            'end_url': end, 'navigations': nav, 'timestamp': ts, 'duration': dur,
            'captcha': captcha, 'bandwidth': bw, 'error': error}


def api_view(r):
    """What the API returns for an imported record: timestamp truncated to whole seconds."""
    out = dict(r)
    out['timestamp'] = re.sub(r'\.[0-9]+Z$', 'Z', r['timestamp'])
    return out


# ---------------------------------------------------------------------------------------------
# fixture data

T = '2025-12-10T10:00:%02d.%03dZ'

AUTH = [rec(uid(0xa0, 1), '2025-12-01T00:00:00.000Z')]

ISO_A = [rec(uid(0xa1, i), '2025-12-0%dT08:00:00.000Z' % i, api='shared_zone') for i in range(1, 4)]
ISO_B = [rec(uid(0xb1, 1), '2025-12-01T09:00:00.000Z', api='shared_zone', status='running'),
         rec(uid(0xb1, 2), '2025-12-02T09:00:00.000Z', api='shared_zone'),
         rec(uid(0xb1, 3), '2025-12-03T09:00:00.000Z', api='shared_zone', status='failed'),
         rec(uid(0xb1, 4), '2025-12-04T09:00:00.000Z', api='shared_zone'),
         rec(uid(0xb1, 5), '2025-12-05T09:00:00.000Z', api='other_zone')]

API_NAMES = ['scraping_browser1', 'scraping_browser1', 'scraping_browser10', 'Scraping_browser1',
             'scraping_browser', 'a b', 'a+b', 'z\u00f6ne']
APIS = [rec(uid(0xa2, i), T % (i, 0), api=name) for i, name in enumerate(API_NAMES)]

STATUS_LIST = ['running', 'finished', 'failed', 'finished', 'running', 'finished']
STATUS = [rec(uid(0xa3, i), T % (i, 0), status=s) for i, s in enumerate(STATUS_LIST)]

DATE_TS = ['2025-11-30T23:59:59.999Z',  # d1
           '2025-12-01T00:00:00.000Z',  # d2
           '2025-12-01T00:00:00.001Z',  # d3
           '2025-12-01T12:30:15.500Z',  # d4
           '2025-12-01T23:59:59.999Z',  # d5
           '2025-12-02T00:00:00.000Z',  # d6
           '2025-12-02T00:00:01.000Z']  # d7
DATES = [rec(uid(0xa4, i + 1), ts) for i, ts in enumerate(DATE_TS)]

URL_PAIRS = [
    ('https://www.example.com/x', 'https://www.example.com/x/done'),          # u1
    ('http://example.com', 'http://other.org/'),                               # u2
    ('https://notexample.com/', 'https://notexample.com/'),                    # u3
    ('HTTPS://SUB.EXAMPLE.COM:8443/Path', 'https://example.com.evil.net/'),    # u4
    ('https://user:pw@example.com/login', 'https://example.com@evil.net/'),    # u5
    ('https://evil.net/?next=https://example.com/', 'https://evil.net/example.com'),  # u6
    (None, None),                                                              # u7
    ('https://example.com/a@evil.net', 'http://[2001:db8::1]:8080/x'),         # u8
    ('http://127.0.0.1:9000/example.com', 'https://www.example.com/a?b=1&c=2'),  # u9
    ('https://www.example.com/abc', 'https://WWW.EXAMPLE.COM/A'),              # u10
    ('https://example.org/', 'https://evil.net@www.example.com:443/'),         # u11
]
URLS = [rec(uid(0xa5, i + 1), T % (i, 0), target=t, end=e) for i, (t, e) in enumerate(URL_PAIRS)]

T0 = '2025-12-10T10:00:10'
SORT = {
    's1': rec(uid(0xa6, 0x01), T0 + '.000Z', dur=10.0, bw=100),
    's2': rec(uid(0xa6, 0x02), T0 + '.000Z', dur=10.0, bw=100),
    's3': rec(uid(0xa6, 0x00), T0 + '.001Z', dur=10.0, bw=100),
    's4': rec(uid(0xa6, 0x04), '2025-12-10T10:00:12.000Z', dur=5.5, bw=300),
    's5': rec(uid(0xa6, 0x05), '2025-12-10T10:00:09.000Z', dur=20.0, bw=50),
    's6': rec(uid(0xa6, 0x06), '2025-12-10T10:00:15.000Z', status='running', bw=100),
    's7': rec(uid(0xa6, 0x07), '2025-12-10T10:00:05.000Z', status='running', bw=0),
}

# Same timestamp, duration and bandwidth: only session_id orders them. Compared as UUIDs
# (case-insensitively): 0aaa... < aaaa... < BBBB... < cccc... (byte order would put BBBB first).
CASE_IDS = ['0aaaaaaa-0000-7000-8000-000000000000', 'aaaaaaaa-0000-7000-8000-000000000000',
            'BBBBBBBB-0000-7000-8000-000000000000', 'cccccccc-0000-7000-8000-000000000000']
CASE = [rec(sid, '2025-12-10T10:00:00.000Z', dur=1.0, bw=1) for sid in CASE_IDS]

PAGE = [rec(uid(0xa7, i), '2025-12-11T%02d:%02d:00.000Z' % (i // 60, i % 60),
            status=('running' if i % 3 == 0 else 'finished')) for i in range(120)]

SHAPE = {
    'finished': rec('1d3b0e9c-6f0a-4a55-9a57-6a1b3c2d4e5f', '2025-12-16T18:53:41.999Z',
                    target='https://www.example.com', end='https://www.example.com/example/sub',
                    nav=4, dur=209.444, captcha='solved', bw=123456789),
    'failed': rec('2e4c1f0d-7a1b-4b66-8b68-7b2c4d3e5f60', '2025-12-16T17:20:15.000Z', status='failed',
                  target='https://www.another-site.com', end='https://www.another-site.com/examplesubdomain',
                  nav=3, dur=45.2, captcha='none', bw=45678901,
                  error={'code': 'unknown', 'message': 'Error'}),
    'running': rec('3f5d2a1e-8b2c-4c77-9c79-8c3d5e4f6071', '2025-12-16T19:05:30.000Z', status='running',
                   target=None, end=None, nav=0, captcha='none', bw=0),
    'd1005': rec(uid(0xa8, 1), '2025-12-15T00:00:01.000Z', dur=1.005, bw=1099511627776),
    'd0001': rec(uid(0xa8, 2), '2025-12-15T00:00:02.000Z', dur=0.001, bw=1),
    'd0': rec(uid(0xa8, 3), '2025-12-15T00:00:03.000Z', dur=0, bw=0, captcha='detected'),
    'd3600': rec(uid(0xa8, 4), '2025-12-15T00:00:04.000Z', dur=3600, captcha='failed'),
    'escapes': rec(uid(0xa8, 5), '2025-12-15T00:00:05.000Z', status='failed',
                   api='zone "quoted" \\ back/slash \u00e9 \u4e2d \U0001F600',
                   target='https://example.com/?q="x"&y=\\', end='https://example.com/\u00e9',
                   error={'code': 'page_navigated_error',
                          'message': 'net::ERR_NAME_NOT_RESOLVED at "https://x.test/"\n\ttab \x01 \x1f \u2028 end'}),
    'old': rec(uid(0xa8, 6), '1999-12-31T23:59:59.999Z', dur=0.5),
}

IDCASE = [rec('a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d', '2025-12-01T00:00:01.000Z'),
          rec('AbCdEf01-2345-4ABC-8dEf-0123456789aB', '2025-12-01T00:00:02.000Z')]

DEL = {'running': rec(uid(0xa9, 1), '2025-12-01T00:00:01.000Z', status='running'),
       'finished': rec(uid(0xa9, 2), '2025-12-01T00:00:02.000Z'),
       'failed': rec(uid(0xa9, 3), '2025-12-01T00:00:03.000Z', status='failed')}
DEL_B = {'running': rec(uid(0xb9, 1), '2025-12-01T00:00:01.000Z', status='running'),
         'finished': rec(uid(0xb9, 2), '2025-12-01T00:00:02.000Z')}

EDGE_TS = {
    'pre1970': rec(uid(0xad, 1), '1969-12-31T23:59:59.500Z'),
    'epoch': rec(uid(0xad, 2), '1970-01-01T00:00:00.000Z'),
    'far': rec(uid(0xad, 3), '9999-12-31T23:59:59.999Z'),
    'leap': rec(uid(0xad, 4), '2024-02-29T12:00:00.250Z'),
}

BIG = [rec(uid(0xae, i), '2025-12-12T00:%02d:%02d.000Z' % (i // 60, i % 60),
           target='https://www.example.com/' + ('p%03d' % i) * 500, end='https://example.org/?q=' + 'x' * 2000)
       for i in range(100)]

IMPORT_BASE = [rec(uid(0xaa, 1), '2025-12-01T00:00:01.000Z'), rec(uid(0xaa, 2), '2025-12-01T00:00:02.000Z')]


class F:
    """The module fixture."""
    d = None
    keys = {}
    cids = {}
    revoked_live_key_id = None


def setUpModule():
    d = Browserd()
    F.d = d
    try:
        for name, records in [('auth', AUTH), ('iso_a', ISO_A), ('iso_b', ISO_B), ('apis', APIS),
                              ('status', STATUS), ('dates', DATES), ('urls', URLS),
                              ('sort', list(SORT.values())), ('case', CASE), ('page', PAGE),
                              ('shape', list(SHAPE.values())), ('idcase', IDCASE), ('del', DEL.values()),
                              ('del_b', DEL_B.values()), ('imp', IMPORT_BASE), ('empty', []),
                              ('edge_ts', EDGE_TS.values()), ('big', BIG)]:
            cid, key = d.new_customer(list(records), customer_id='ct_' + name)
            F.cids[name] = cid
            F.keys[name] = key
        # auth: a second active key, a key revoked before the daemon starts, one revoked live
        F.keys['auth_second'] = d.add_key('ct_auth')
        F.keys['auth_revoked'] = d.add_key('ct_auth')
        F.keys['auth_revoked_live'] = d.add_key('ct_auth')
        rows = d.list_keys('ct_auth')
        if len(rows) != 4:
            raise AssertionError('key list ct_auth: expected 4 lines, got %r' % rows)
        d.revoke_key(rows[2][0])
        F.revoked_live_key_id = rows[3][0]
        rows = d.list_keys('ct_auth')
        if [r[2] for r in rows] != ['active', 'active', 'revoked', 'active']:
            raise AssertionError('key list after revoke: %r' % rows)
        d.start()
    except BaseException:
        d.cleanup()
        raise


def tearDownModule():
    if F.d is not None:
        F.d.close()  # SIGTERM, requires exit code 0


class Base(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.c = Client(F.d.port)

    def tearDown(self):
        self.c.close()

    # ---- helpers

    def assertJsonType(self, resp):
        ct = resp.header('Content-Type')
        self.assertIsNotNone(ct, 'no Content-Type: %r' % resp)
        self.assertEqual(ct.split(';')[0].strip().lower(), 'application/json', 'Content-Type of %r' % resp)

    def check(self, resp, status, body=None, what=''):
        self.assertEqual(resp.status, status, '%s: expected %d, got %r' % (what, status, resp))
        self.assertJsonType(resp)
        try:
            got = parse_strict(resp.text)
        except ValueError as e:
            self.fail('%s: body is not JSON (%s): %r' % (what, e, resp.body[:300]))
        if body is not None:
            self.assertEqual(canon(got), canon(body), '%s: body %s' % (what, resp.text[:1500]))
        return resp.json()

    def list(self, who, query=None, status=200):
        r = self.c.list(query, key=F.keys[who])
        return self.check(r, status, what='GET /browser_sessions?%s' % (query or ''))

    def ids(self, who, query=None):
        return [s['session_id'] for s in self.list(who, query)['sessions']]

    def assertIds(self, who, query, expected_records):
        body = self.list(who, query)
        got = [s['session_id'] for s in body['sessions']]
        want = [r['session_id'] for r in expected_records]
        self.assertEqual(got, want, 'GET /browser_sessions?%s' % query)
        self.assertEqual(body['total'], len(want), 'total of ?%s' % query)

    def invalid(self, who, query, param=None):
        r = self.c.list(query, key=F.keys[who])
        body = self.check(r, 400, what='GET /browser_sessions?%s' % query)
        pairs = parse_strict(r.text)
        self.assertEqual([k for k, _ in pairs], ['error', 'details'], 'error body keys for ?%s: %s' % (query, r.text))
        self.assertEqual(body['error'], INVALID)
        self.assertIsInstance(body['details'], str)
        self.assertTrue(body['details'].strip(), 'empty details for ?%s' % query)
        if param:
            self.assertIn(param, body['details'], 'details should name the parameter for ?%s' % query)
        return body


def by(records, *names):
    return [records[n] for n in names]


def pick(records, *idx):
    return [records[i] for i in idx]


# =============================================================================================
# authentication

class TestAuthentication(Base):
    ENDPOINTS = [('GET', '/browser_sessions'), ('GET', '/browser_sessions/' + uid(0xa0, 1)),
                 ('DELETE', '/browser_sessions/' + uid(0xa0, 1))]

    def assert401(self, resp, body, what):
        self.check(resp, 401, body, what)
        www = resp.header('WWW-Authenticate')
        self.assertIsNotNone(www, '%s: no WWW-Authenticate header' % what)
        self.assertEqual(www.split()[0].lower(), 'bearer', '%s: WWW-Authenticate %r' % (what, www))

    def test_no_header(self):
        for m, p in self.ENDPOINTS:
            self.assert401(self.c.request(m, p, auth=Client.NO_AUTH), MISSING, '%s %s no header' % (m, p))

    def test_empty_header(self):
        for value in ['', '   ']:
            self.assert401(self.c.list(auth=value), MISSING, 'Authorization: %r' % value)
        with F.d.connect() as c:
            c.send_raw(b'GET /browser_sessions HTTP/1.1\r\nHost: x\r\nAuthorization:\r\n\r\n')
            self.assert401(c.read_response(), MISSING, 'Authorization: (no value)')

    def test_other_scheme(self):
        k = F.keys['auth']
        for value in ['Basic dXNlcjpwYXNz', 'Token ' + k, 'Digest username="x"', k, 'Bearer-' + k]:
            self.assert401(self.c.list(auth=value), MISSING, 'Authorization: %r' % value)

    def test_scheme_without_key(self):
        # "Bearer" and nothing else: no credentials are presented. The spec does not say which
        # of its two messages applies; require a 401 with one of them.
        r = self.c.list(auth='Bearer')
        self.assertEqual(r.status, 401, repr(r))
        self.assertIn(r.json(), [MISSING, BADKEY])
        self.assertIsNotNone(r.header('WWW-Authenticate'))

    def test_scheme_case_and_spaces(self):
        k = F.keys['auth']
        for value in ['Bearer ' + k, 'bearer ' + k, 'BEARER ' + k, 'bEaReR ' + k, '   Bearer ' + k + '   ',
                      'Bearer    ' + k]:
            r = self.c.list(auth=value)
            body = self.check(r, 200, what='Authorization: %r' % value)
            self.assertEqual([s['session_id'] for s in body['sessions']], [uid(0xa0, 1)])

    def test_unknown_key(self):
        for value in ['0' * 64, 'f' * 64, F.keys['auth'][:-1] + ('0' if F.keys['auth'][-1] != '0' else '1'),
                      F.keys['auth'][:32], 'not-a-key', F.keys['auth'] + '00']:
            self.assert401(self.c.list(auth='Bearer ' + value), BADKEY, 'key %r' % value)
        # on the other endpoints too
        for m, p in self.ENDPOINTS:
            self.assert401(self.c.request(m, p, key='1' * 64), BADKEY, '%s %s unknown key' % (m, p))

    def test_revoked_key(self):
        self.assert401(self.c.list(key=F.keys['auth_revoked']), BADKEY, 'revoked key')
        self.check(self.c.list(key=F.keys['auth_second']), 200, what='other active key of the same customer')

    def test_key_revoked_while_running(self):
        k = F.keys['auth_revoked_live']
        self.check(self.c.list(key=k), 200, what='before revoke')
        F.d.revoke_key(F.revoked_live_key_id)
        self.assert401(self.c.list(key=k), BADKEY, 'key revoked while the daemon runs')
        self.check(self.c.list(key=F.keys['auth']), 200, what='other key still works')

    def test_keys_stored_only_as_hashes(self):
        # "Keys are stored only as hashes": no key appears in the database files, in hex
        # (either case) or as raw bytes
        blobs = b''
        if F.d.pg_db:
            # PostgreSQL's files are the server's: every row of every table, as text, instead
            print('\n  (PostgreSQL: the rows of every table are searched instead of the files)', end=' ')
            for table in ['customers', 'api_keys', 'zones', 'sessions', 'meta']:
                blobs += harness.pg_sql('SELECT t::text FROM %s t' % table, F.d.pg_db).encode()
            blobs += harness.pg_sql("SELECT encode(key_hash, 'escape') FROM api_keys", F.d.pg_db).encode()
        for suffix in ([] if F.d.pg_db else ['', '-wal', '-journal']):
            path = F.d.db + suffix
            if os.path.exists(path):
                with open(path, 'rb') as f:
                    blobs += f.read()
        self.assertGreater(len(blobs), 0)
        for name in ['auth', 'auth_second', 'auth_revoked', 'page']:
            k = F.keys[name]
            for needle in [k.encode(), k.upper().encode(), bytes.fromhex(k)]:
                self.assertNotIn(needle, blobs, 'API key of %s found in the database' % name)

    def test_healthz_needs_no_auth(self):
        r = self.c.get('/healthz', auth=Client.NO_AUTH)
        self.check(r, 200, what='GET /healthz')

    def test_401_before_400(self):
        for q in ['limit=0', 'status=bogus', 'start_date=x', 'limit=1&limit=2']:
            self.assert401(self.c.list(q, auth=Client.NO_AUTH), MISSING, '?%s no auth' % q)
            self.assert401(self.c.list(q, key='2' * 64), BADKEY, '?%s unknown key' % q)
        self.assert401(self.c.get('/browser_sessions/not-a-uuid', auth=Client.NO_AUTH), MISSING, 'bad id')
        self.assert401(self.c.delete('/browser_sessions/not-a-uuid', key='2' * 64), BADKEY, 'bad id delete')

    def test_401_before_404(self):
        self.assert401(self.c.get('/browser_sessions/' + uid(0xee, 1), auth=Client.NO_AUTH), MISSING, 'unknown id')
        self.assert401(self.c.delete('/browser_sessions/' + uid(0xee, 1), auth=Client.NO_AUTH), MISSING,
                       'unknown id delete')
        self.assert401(self.c.get('/no/such/path', auth=Client.NO_AUTH), MISSING, 'unknown path')
        self.assert401(self.c.get('/no/such/path', key='3' * 64), BADKEY, 'unknown path, unknown key')

    def test_401_before_405(self):
        self.assert401(self.c.request('POST', '/browser_sessions', auth=Client.NO_AUTH, body=b''), MISSING,
                       'POST /browser_sessions')
        self.assert401(self.c.request('PUT', '/browser_sessions/' + uid(0xa0, 1), key='3' * 64, body=b''),
                       BADKEY, 'PUT /browser_sessions/{id}')


# =============================================================================================
# tenancy

class TestTenantIsolation(Base):
    def test_list_only_own_sessions(self):
        body = self.list('iso_a', 'api_name=shared_zone')
        self.assertEqual(sorted(s['session_id'] for s in body['sessions']), sorted(r['session_id'] for r in ISO_A))
        self.assertEqual(body['total'], 3)
        body = self.list('iso_b', 'api_name=shared_zone')
        self.assertEqual(body['total'], 4)

    def test_total_never_counts_other_customer(self):
        for q in ['', 'status=running', 'status=failed', 'limit=1', 'offset=100', 'target_url=example.com',
                  'start_date=2025-12-01&end_date=2025-12-31', 'sort=duration']:
            body = self.list('iso_a', q)
            want = {'': 3, 'status=running': 0, 'status=failed': 0, 'limit=1': 3, 'offset=100': 3,
                    'target_url=example.com': 3, 'start_date=2025-12-01&end_date=2025-12-31': 3,
                    'sort=duration': 3}[q]
            self.assertEqual(body['total'], want, '?%s' % q)
            for s in body['sessions']:
                self.assertTrue(s['session_id'].startswith('000000a1'), s)

    def test_empty_customer(self):
        body = self.list('empty')
        self.assertEqual(body, {'sessions': [], 'count': 0, 'total': 0,
                                'pagination': {'offset': 0, 'limit': 50, 'has_more': False, 'next_offset': None}})

    def test_get_other_customers_session_404(self):
        for r in ISO_B:
            sid = r['session_id']
            self.check(self.c.get('/browser_sessions/' + sid, key=F.keys['iso_a']), 404,
                       {'error': 'Session not found', 'session_id': sid}, 'GET B\'s session with A\'s key')
        # and the owner sees it
        self.check(self.c.get('/browser_sessions/' + ISO_B[0]['session_id'], key=F.keys['iso_b']), 200)

    def test_delete_other_customers_session_404(self):
        for r in DEL_B.values():
            sid = r['session_id']
            self.check(self.c.delete('/browser_sessions/' + sid, key=F.keys['del']), 404,
                       {'error': 'Session not found', 'session_id': sid}, 'DELETE B\'s %s session with A\'s key'
                       % r['status'])
        # untouched
        body = self.check(self.c.get('/browser_sessions/' + DEL_B['running']['session_id'], key=F.keys['del_b']), 200)
        self.assertEqual(body['session']['status'], 'running')


# =============================================================================================
# filters

class TestFilterApiName(Base):
    def test_exact_match(self):
        self.assertIds('apis', 'api_name=scraping_browser1', pick(APIS, 1, 0))

    def test_case_sensitive(self):
        self.assertIds('apis', 'api_name=Scraping_browser1', pick(APIS, 3))
        self.assertIds('apis', 'api_name=SCRAPING_BROWSER1', [])

    def test_no_prefix_or_substring_match(self):
        self.assertIds('apis', 'api_name=scraping_browser', pick(APIS, 4))
        self.assertIds('apis', 'api_name=scraping', [])
        self.assertIds('apis', 'api_name=browser1', [])

    def test_decoding(self):
        self.assertIds('apis', 'api_name=a+b', pick(APIS, 5))
        self.assertIds('apis', 'api_name=a%20b', pick(APIS, 5))
        self.assertIds('apis', 'api_name=a%2Bb', pick(APIS, 6))
        self.assertIds('apis', 'api_name=a%2bb', pick(APIS, 6))
        self.assertIds('apis', 'api_name=z%C3%B6ne', pick(APIS, 7))


class TestFilterStatus(Base):
    def test_each_status(self):
        for st in ['running', 'finished', 'failed']:
            want = [r for r in reversed(STATUS) if r['status'] == st]
            self.assertIds('status', 'status=' + st, want)
            body = self.list('status', 'status=' + st)
            self.assertTrue(all(s['status'] == st for s in body['sessions']))

    def test_all_and_default(self):
        self.assertIds('status', 'status=all', list(reversed(STATUS)))
        self.assertIds('status', None, list(reversed(STATUS)))


class TestFilterDates(Base):
    def d(self, *nums):
        """Expected sessions d<n>, in the default order (timestamp desc)."""
        return [DATES[n - 1] for n in sorted(nums, reverse=True)]

    def test_z_form(self):
        self.assertIds('dates', 'start_date=2025-12-01T00:00:00Z', self.d(2, 3, 4, 5, 6, 7))
        self.assertIds('dates', 'end_date=2025-12-01T00:00:00Z', self.d(1, 2))

    def test_offsets(self):
        # +02:00 (the '+' must be percent-encoded: a raw '+' decodes to a space)
        self.assertIds('dates', 'start_date=2025-12-01T02:00:00%2B02:00', self.d(2, 3, 4, 5, 6, 7))
        self.assertIds('dates', 'end_date=2025-11-30T19:00:00.001-05:00', self.d(1, 2, 3))
        self.assertIds('dates', 'start_date=2025-12-01T00:00:00%2B00:00&end_date=2025-12-01T00:00:00-00:00',
                       self.d(2))

    def test_offset_compared_in_utc(self):
        # lexically later, but 2025-11-30T23:00:00Z in UTC: valid, not "start > end"
        self.assertIds('dates', 'start_date=2025-12-01T01:00:00%2B02:00&end_date=2025-12-01T00:00:00Z',
                       self.d(1, 2))

    def test_fractions(self):
        self.assertIds('dates', 'start_date=2025-12-01T00:00:00.001Z', self.d(3, 4, 5, 6, 7))
        self.assertIds('dates', 'start_date=2025-12-01T12:30:15.5Z&end_date=2025-12-01T12:30:15.500Z', self.d(4))
        self.assertIds('dates', 'start_date=2025-12-01T12:30:15.50Z&end_date=2025-12-01T12:30:15.5Z', self.d(4))

    def test_millisecond_boundaries(self):
        # d4 is at 12:30:15.500: a window ending at .499 misses it even though the output
        # timestamps are whole seconds
        self.assertIds('dates', 'start_date=2025-12-01T12:30:15Z&end_date=2025-12-01T12:30:15.499Z', [])
        self.assertIds('dates', 'start_date=2025-12-01T12:30:15.501Z&end_date=2025-12-01T12:30:16Z', [])
        # an explicit end at :59Z excludes :59.999 (d5); the bare date includes it
        self.assertIds('dates', 'end_date=2025-12-01T23:59:59Z', self.d(1, 2, 3, 4))
        self.assertIds('dates', 'end_date=2025-12-01T23:59:59.999Z', self.d(1, 2, 3, 4, 5))
        self.assertIds('dates', 'start_date=2025-11-30T23:59:59.999Z&end_date=2025-11-30T23:59:59.999Z', self.d(1))
        self.assertIds('dates', 'start_date=2025-11-30T23:59:59Z&end_date=2025-11-30T23:59:59.998Z', [])

    def test_bare_dates_inclusive(self):
        self.assertIds('dates', 'start_date=2025-12-01', self.d(2, 3, 4, 5, 6, 7))
        self.assertIds('dates', 'end_date=2025-12-01', self.d(1, 2, 3, 4, 5))
        self.assertIds('dates', 'start_date=2025-12-01&end_date=2025-12-01', self.d(2, 3, 4, 5))
        self.assertIds('dates', 'start_date=2025-12-02&end_date=2025-12-02', self.d(6, 7))
        self.assertIds('dates', 'start_date=2025-11-30&end_date=2025-11-30', self.d(1))

    def test_mixed_bare_and_full(self):
        self.assertIds('dates', 'start_date=2025-12-01T00:00:00.001Z&end_date=2025-12-01', self.d(3, 4, 5))
        self.assertIds('dates', 'start_date=2025-11-30&end_date=2025-12-01T00:00:00Z', self.d(1, 2))

    def test_lowercase_t_and_z(self):
        # RFC 3339 section 5.6 allows "t" and "z"
        self.assertIds('dates', 'start_date=2025-12-01t00:00:00.001z', self.d(3, 4, 5, 6, 7))

    def test_equal_start_and_end_valid(self):
        self.assertIds('dates', 'start_date=2025-12-01T00:00:00.001Z&end_date=2025-12-01T00:00:00.001Z', self.d(3))

    def test_timestamp_output_truncated(self):
        body = self.list('dates', 'order=asc')
        self.assertEqual([s['timestamp'] for s in body['sessions']],
                         ['2025-11-30T23:59:59Z', '2025-12-01T00:00:00Z', '2025-12-01T00:00:00Z',
                          '2025-12-01T12:30:15Z', '2025-12-01T23:59:59Z', '2025-12-02T00:00:00Z',
                          '2025-12-02T00:00:01Z'])

    def test_start_after_end_invalid(self):
        self.invalid('dates', 'start_date=2025-12-01T00:00:00.001Z&end_date=2025-12-01T00:00:00Z')
        self.invalid('dates', 'start_date=2025-12-02&end_date=2025-12-01')
        self.invalid('dates', 'start_date=2025-12-01T00:00:00Z&end_date=2025-12-01T01:59:59%2B02:00')


class TestFilterUrls(Base):
    def u(self, *nums):
        return [URLS[n - 1] for n in sorted(nums, reverse=True)]

    def test_domain_host_and_subdomains(self):
        self.assertIds('urls', 'target_url=example.com', self.u(1, 2, 4, 5, 8, 10))
        self.assertIds('urls', 'target_url=www.example.com', self.u(1, 10))
        self.assertIds('urls', 'target_url=sub.example.com', self.u(4))

    def test_domain_not_lookalike(self):
        self.assertIds('urls', 'target_url=notexample.com', self.u(3))
        self.assertIds('urls', 'target_url=ample.com', [])
        self.assertIds('urls', 'end_url=example.com', self.u(1, 9, 10, 11))  # not example.com.evil.net

    def test_domain_case_insensitive(self):
        self.assertIds('urls', 'target_url=EXAMPLE.COM', self.u(1, 2, 4, 5, 8, 10))
        self.assertIds('urls', 'target_url=Example.Com', self.u(1, 2, 4, 5, 8, 10))
        self.assertIds('urls', 'end_url=WWW.example.COM', self.u(1, 9, 10, 11))

    def test_domain_ports_userinfo_paths(self):
        # host only: ports, userinfo, and "example.com" in path/query/userinfo do not count
        self.assertIds('urls', 'end_url=evil.net', self.u(4, 5, 6))
        self.assertIds('urls', 'target_url=evil.net', self.u(6))
        self.assertIds('urls', 'target_url=127.0.0.1', self.u(9))
        self.assertIds('urls', 'target_url=other.org', [])
        self.assertIds('urls', 'end_url=other.org', self.u(2))

    def test_domain_tld(self):
        self.assertIds('urls', 'target_url=com', self.u(1, 2, 3, 4, 5, 8, 10))

    def test_prefix(self):
        self.assertIds('urls', 'target_url=https%3A%2F%2Fwww.example.com%2Fa', self.u(10))
        self.assertIds('urls', 'target_url=https://www.example.com/a', self.u(10))
        self.assertIds('urls', 'target_url=http://', self.u(2, 9))
        self.assertIds('urls', 'end_url=https%3A%2F%2Fwww.example.com%2Fa%3Fb%3D1%26c%3D2', self.u(9))
        self.assertIds('urls', 'end_url=https%3A%2F%2Fwww.example.com%2Fa', self.u(9, 10))

    def test_prefix_case_insensitive(self):
        self.assertIds('urls', 'target_url=HTTPS://WWW.EXAMPLE.COM/', self.u(1, 10))
        self.assertIds('urls', 'target_url=https://sub.example.com:8443/path', self.u(4))

    def test_prefix_is_not_domain(self):
        self.assertIds('urls', 'target_url=https://example.com', self.u(8))
        self.assertIds('urls', 'target_url=https://user:pw@example.com', self.u(5))

    def test_null_never_matches(self):
        self.assertIds('urls', 'target_url=https://', self.u(1, 3, 4, 5, 6, 8, 10, 11))
        self.assertIds('urls', 'end_url=https://', self.u(1, 3, 4, 5, 6, 9, 10, 11))
        for q in ['target_url=com', 'end_url=com', 'target_url=h', 'end_url=http']:
            self.assertNotIn(URLS[6]['session_id'], self.ids('urls', q), q)

    def test_target_and_end_combined(self):
        self.assertIds('urls', 'target_url=example.com&end_url=evil.net', self.u(4, 5))


class TestFilterCombined(Base):
    def test_all_filters_and(self):
        q = ('api_name=shared_zone&status=finished&start_date=2025-12-02&end_date=2025-12-04'
             '&target_url=example.com&end_url=https://www.example.com/')
        self.assertIds('iso_b', q, [ISO_B[3], ISO_B[1]])
        self.assertIds('iso_b', q + '&order=asc', [ISO_B[1], ISO_B[3]])


# =============================================================================================
# ordering

class TestSort(Base):
    def test_default_is_timestamp_desc(self):
        self.assertIds('sort', None, by(SORT, 's6', 's4', 's3', 's2', 's1', 's5', 's7'))

    def test_timestamp(self):
        self.assertIds('sort', 'sort=timestamp&order=desc', by(SORT, 's6', 's4', 's3', 's2', 's1', 's5', 's7'))
        self.assertIds('sort', 'sort=timestamp&order=asc', by(SORT, 's7', 's5', 's1', 's2', 's3', 's4', 's6'))
        self.assertIds('sort', 'order=asc', by(SORT, 's7', 's5', 's1', 's2', 's3', 's4', 's6'))

    def test_duration_ties_and_nulls_last(self):
        self.assertIds('sort', 'sort=duration&order=asc', by(SORT, 's4', 's1', 's2', 's3', 's5', 's7', 's6'))
        self.assertIds('sort', 'sort=duration&order=desc', by(SORT, 's5', 's3', 's2', 's1', 's4', 's6', 's7'))
        self.assertIds('sort', 'sort=duration', by(SORT, 's5', 's3', 's2', 's1', 's4', 's6', 's7'))

    def test_bandwidth_ties(self):
        self.assertIds('sort', 'sort=bandwidth&order=asc', by(SORT, 's7', 's5', 's1', 's2', 's3', 's6', 's4'))
        self.assertIds('sort', 'sort=bandwidth&order=desc', by(SORT, 's4', 's6', 's3', 's2', 's1', 's5', 's7'))

    def test_nulls_last_across_pages(self):
        got = []
        for off in range(0, 7, 2):
            got += self.ids('sort', 'sort=duration&order=desc&limit=2&offset=%d' % off)
        self.assertEqual(got, [r['session_id'] for r in by(SORT, 's5', 's3', 's2', 's1', 's4', 's6', 's7')])

    def test_sort_with_filter(self):
        self.assertIds('sort', 'sort=duration&order=asc&status=running', by(SORT, 's7', 's6'))
        self.assertIds('sort', 'sort=duration&order=desc&status=running', by(SORT, 's6', 's7'))

    def test_tiebreak_session_id_case_insensitive(self):
        for s in ['timestamp', 'duration', 'bandwidth']:
            self.assertIds('case', 'sort=%s&order=asc' % s, CASE)
            self.assertIds('case', 'sort=%s&order=desc' % s, list(reversed(CASE)))


# =============================================================================================
# pagination

class TestPagination(Base):
    ALL = [r['session_id'] for r in reversed(PAGE)]

    def pag(self, body):
        return body['pagination']

    def test_default_limit_50(self):
        body = self.list('page')
        self.assertEqual(body['count'], 50)
        self.assertEqual(len(body['sessions']), 50)
        self.assertEqual(body['total'], 120)
        self.assertEqual(self.pag(body), {'offset': 0, 'limit': 50, 'has_more': True, 'next_offset': 50})
        self.assertEqual([s['session_id'] for s in body['sessions']], self.ALL[:50])

    def test_max_limit_100(self):
        body = self.list('page', 'limit=100')
        self.assertEqual((body['count'], body['total']), (100, 120))
        self.assertEqual(self.pag(body), {'offset': 0, 'limit': 100, 'has_more': True, 'next_offset': 100})
        self.invalid('page', 'limit=101', 'limit')

    def test_last_page(self):
        body = self.list('page', 'limit=100&offset=100')
        self.assertEqual((body['count'], body['total']), (20, 120))
        self.assertEqual(self.pag(body), {'offset': 100, 'limit': 100, 'has_more': False, 'next_offset': None})
        self.assertEqual([s['session_id'] for s in body['sessions']], self.ALL[100:])

    def test_exact_end(self):
        body = self.list('page', 'limit=7&offset=113')
        self.assertEqual(body['count'], 7)
        self.assertEqual(self.pag(body), {'offset': 113, 'limit': 7, 'has_more': False, 'next_offset': None})
        body = self.list('page', 'limit=7&offset=112')
        self.assertEqual(self.pag(body), {'offset': 112, 'limit': 7, 'has_more': True, 'next_offset': 119})

    def test_offset_past_end(self):
        for off in [120, 121, 5000, 2147483647]:
            body = self.list('page', 'offset=%d' % off)
            self.assertEqual(body, {'sessions': [], 'count': 0, 'total': 120,
                                    'pagination': {'offset': off, 'limit': 50, 'has_more': False,
                                                   'next_offset': None}}, 'offset=%d' % off)

    def test_walk_pages(self):
        got, off, pages = [], 0, 0
        while off is not None:
            body = self.list('page', 'limit=33&offset=%d' % off)
            self.assertEqual(body['total'], 120)
            self.assertEqual(body['count'], len(body['sessions']))
            got += [s['session_id'] for s in body['sessions']]
            off = body['pagination']['next_offset']
            pages += 1
            self.assertLess(pages, 10)
        self.assertEqual(got, self.ALL)
        self.assertEqual(pages, 4)

    def test_limit_1(self):
        body = self.list('page', 'limit=1&offset=5')
        self.assertEqual([s['session_id'] for s in body['sessions']], self.ALL[5:6])
        self.assertEqual(self.pag(body), {'offset': 5, 'limit': 1, 'has_more': True, 'next_offset': 6})

    def test_total_with_filters(self):
        body = self.list('page', 'status=running&limit=10')
        self.assertEqual((body['count'], body['total']), (10, 40))
        self.assertEqual(self.pag(body), {'offset': 0, 'limit': 10, 'has_more': True, 'next_offset': 10})
        body = self.list('page', 'status=failed')
        self.assertEqual((body['count'], body['total']), (0, 0))
        self.assertEqual(self.pag(body), {'offset': 0, 'limit': 50, 'has_more': False, 'next_offset': None})

    def test_leading_zeros_are_plain_decimal_digits(self):
        body = self.list('page', 'limit=007&offset=0003')
        self.assertEqual(self.pag(body), {'offset': 3, 'limit': 7, 'has_more': True, 'next_offset': 10})


# =============================================================================================
# validation

class TestValidation(Base):
    def test_bad_enum(self):
        for q, p in [('status=done', 'status'), ('status=runnin', 'status'), ('sort=name', 'sort'),
                     ('sort=timestamps', 'sort'), ('order=up', 'order'), ('order=ascending', 'order'),
                     ('status=running,failed', 'status')]:
            self.invalid('page', q, p)

    def test_uppercase_enum(self):
        for q, p in [('status=Running', 'status'), ('status=ALL', 'status'), ('sort=TIMESTAMP', 'sort'),
                     ('sort=Duration', 'sort'), ('order=DESC', 'order'), ('order=Asc', 'order')]:
            self.invalid('page', q, p)

    def test_limit_invalid(self):
        for v in ['abc', '1.5', '10.0', '1e2', '-1', '0', '101', '+5', '%2B5', '%205', '5%20', '0x10',
                  '99999999999999999999', '18446744073709551617', '%D9%A3']:
            self.invalid('page', 'limit=' + v, 'limit')

    def test_offset_invalid(self):
        for v in ['abc', '-1', '1.0', '+5', '%2B5', '2147483648', '4294967296', '99999999999999999999', ' 1']:
            self.invalid('page', 'offset=' + v.replace(' ', '%20'), 'offset')

    def test_offset_max_valid(self):
        body = self.list('page', 'offset=2147483647')
        self.assertEqual(body['pagination']['offset'], 2147483647)

    def test_empty_values(self):
        for p in ['api_name', 'limit', 'offset', 'status', 'start_date', 'end_date', 'target_url', 'end_url',
                  'sort', 'order']:
            self.invalid('page', p + '=', p)

    def test_name_without_value_is_empty(self):
        for p in ['status', 'limit', 'api_name']:
            self.invalid('page', p, p)

    def test_malformed_dates(self):
        for v in ['yesterday', '2025-13-01', '2025-02-30', '2025-02-29', '2025-00-10', '2025-12-32',
                  '2025-12-1', '20251201', '2025/12/01', '2025-12-01T00:00:00', '2025-12-01T00:00Z',
                  '2025-12-01T24:00:00Z', '2025-12-01T23:60:00Z', '2025-12-01T00:00:00.Z',
                  '2025-12-01T00:00:00ZZ', '2025-12-01T00:00:00%2B2:00', '2025-12-01T00:00:00%2B0200',
                  '2025-12-01Z', '2025-12-01T', '1764547200', '2025-12-01T00:00:00Zjunk', ' 2025-12-01'.replace(' ', '%20')]:
            self.invalid('dates', 'start_date=' + v, 'start_date')
            self.invalid('dates', 'end_date=' + v, 'end_date')

    def test_raw_plus_in_offset_is_a_400(self):
        # '+' decodes to a space (the contract), so an offset's '+' must be sent as %2B: an
        # unencoded one leaves a space in the date, which is malformed like any other space
        self.invalid('dates', 'start_date=2025-12-01T00:00:00+00:00', 'start_date')
        self.invalid('dates', 'end_date=2025-12-01T02:00:00+02:00', 'end_date')
        self.invalid('dates', 'start_date=2025-12-01%2000:00:00Z', 'start_date')
        self.assertGreater(self.list('dates', 'start_date=2025-12-01T02:00:00%2B02:00')['total'], 0)

    def test_leap_day_valid(self):
        self.list('dates', 'start_date=2024-02-29&end_date=2024-02-29T23:59:59Z')

    def test_parameter_twice(self):
        for q, p in [('status=running&status=running', 'status'), ('limit=5&limit=6', 'limit'),
                     ('api_name=a&api_name=a', 'api_name'), ('offset=0&offset=0', 'offset'),
                     ('sort=duration&order=asc&sort=duration', 'sort'), ('order=asc&order=desc', 'order'),
                     ('start_date=2025-12-01&start_date=2025-12-01', 'start_date'),
                     ('end_date=2025-12-01&end_date=2025-12-02', 'end_date'),
                     ('target_url=a.com&target_url=b.com', 'target_url'), ('end_url=x&end_url=x', 'end_url')]:
            self.invalid('page', q, p)

    def test_error_body_exact(self):
        r = self.c.list('limit=0', key=F.keys['page'])
        body = self.check(r, 400)
        self.assertEqual(list(body), ['error', 'details'])
        self.assertEqual(body['error'], 'Invalid request parameters')

    def test_unknown_parameters_ignored(self):
        base = self.ids('page', 'limit=5')
        for q in ['foo=bar&limit=5', 'limit=5&foo=1&foo=2', 'limit=5&x=', 'limit=5&x', 'page=2&limit=5',
                  'limit=5&status_=x', 'limit=5&%C3%A9=%C3%A9', 'limit=5&sort_by=name']:
            self.assertEqual(self.ids('page', q), base, q)

    def test_percent_decoding(self):
        self.assertIds('status', 'status=%72unning', [STATUS[4], STATUS[0]])
        self.assertIds('status', 'status=%66ailed', [STATUS[2]])
        self.assertEqual(self.list('page', 'limit=%31%30')['count'], 10)
        self.assertEqual(self.list('page', 'limit=1%30')['pagination']['limit'], 10)

    def test_bad_percent_encoding_in_value(self):
        # not valid percent-encoding: the request cannot be understood (400; the spec does not
        # say whether it is reported as a parameter error or as a malformed request)
        for q in ['api_name=%zz', 'api_name=%', 'limit=%4', 'target_url=example.com%']:
            r = self.c.list(q, key=F.keys['page'])
            self.assertEqual(r.status, 400, '?%s -> %r' % (q, r))
            self.assertJsonType(r)

    def test_percent_decoded_names(self):
        self.assertIds('status', 'st%61tus=failed', [STATUS[2]])
        self.invalid('status', 'status=running&st%61tus=failed', 'status')

    def test_parameter_names_case_sensitive(self):
        # only the listed (lowercase) names are parameters; others are unknown and ignored
        base = self.ids('page', 'limit=5')
        for q in ['limit=5&Status=bogus', 'limit=5&LIMIT=0', 'limit=5&Limit=7']:
            self.assertEqual(self.ids('page', q), base, q)

    def test_empty_query_string(self):
        self.assertEqual(self.list('page', '')['count'], 50)
        r = self.c.get('/browser_sessions?', key=F.keys['page'])
        self.assertEqual(self.check(r, 200)['count'], 50)


# =============================================================================================
# shapes and formats

INT_FIELDS = ['navigations', 'bandwidth', 'count', 'total', 'offset', 'limit']


class TestShape(Base):
    def get(self, who, sid):
        return self.c.get('/browser_sessions/' + sid, key=F.keys[who])

    def test_session_exact(self):
        for name, r in SHAPE.items():
            resp = self.get('shape', r['session_id'])
            self.check(resp, 200, {'session': api_view(r)}, 'GET %s session' % name)

    def test_list_exact(self):
        resp = self.c.list('sort=duration&order=asc&limit=3', key=F.keys['shape'])
        want = [SHAPE[n] for n in ['d0', 'd0001', 'old']]
        self.check(resp, 200, {'sessions': [api_view(r) for r in want], 'count': 3, 'total': 9,
                               'pagination': {'offset': 0, 'limit': 3, 'has_more': True, 'next_offset': 3}})

    def test_key_order(self):
        resp = self.c.list(key=F.keys['shape'])
        pairs = resp.json_pairs()
        self.assertEqual([k for k, _ in pairs], LIST_KEYS, resp.text[:300])
        self.assertEqual([k for k, _ in dict(pairs)['pagination']], PAGINATION_KEYS)
        sessions = dict(pairs)['sessions']
        self.assertEqual(len(sessions), 9)
        for s in sessions:
            self.assertEqual([k for k, _ in s], FIELDS)
            err = dict(s)['error']
            if err is not None:
                self.assertEqual([k for k, _ in err], ['code', 'message'])
        pairs = self.get('shape', SHAPE['failed']['session_id']).json_pairs()
        self.assertEqual([k for k, _ in pairs], ['session'])
        self.assertEqual([k for k, _ in pairs[0][1]], FIELDS)

    def test_numbers_are_numbers(self):
        text = self.c.list(key=F.keys['shape']).text
        for f in INT_FIELDS:
            vals = re.findall(r'"%s"\s*:\s*([^,}\]]*)' % f, text)
            self.assertTrue(vals, f)
            for v in vals:
                self.assertRegex(v.strip(), r'^(0|[1-9][0-9]*)$', '%s = %s' % (f, v))
        for v in re.findall(r'"duration"\s*:\s*([^,}\]]*)', text):
            self.assertRegex(v.strip(), r'^(null|(0|[1-9][0-9]*)(\.[0-9]{1,3})?)$', 'duration = %s' % v)
        body = self.c.list(key=F.keys['shape']).json()
        for s in body['sessions']:
            self.assertIs(type(s['navigations']), int)
            self.assertIs(type(s['bandwidth']), int)
            self.assertIn(type(s['duration']), (int, float, type(None)))
        self.assertIs(type(body['pagination']['has_more']), bool)

    def test_duration_millisecond_precision(self):
        want = {'finished': '209.444', 'failed': '45.2', 'd1005': '1.005', 'd0001': '0.001'}
        for name, literal in want.items():
            text = self.get('shape', SHAPE[name]['session_id']).text
            m = re.search(r'"duration"\s*:\s*([^,}]*)', text)
            self.assertIsNotNone(m, text)
            self.assertEqual(m.group(1).strip(), literal, name)
        for name, value in [('d0', 0), ('d3600', 3600)]:
            text = self.get('shape', SHAPE[name]['session_id']).text
            m = re.search(r'"duration"\s*:\s*([^,}]*)', text)
            self.assertRegex(m.group(1).strip(), r'^%d(\.0{1,3})?$' % value, name)

    def test_timestamp_format(self):
        body = self.list('shape')
        for s in body['sessions']:
            self.assertRegex(s['timestamp'], r'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$')
        by_id = {s['session_id']: s for s in body['sessions']}
        self.assertEqual(by_id[SHAPE['finished']['session_id']]['timestamp'], '2025-12-16T18:53:41Z')
        self.assertEqual(by_id[SHAPE['old']['session_id']]['timestamp'], '1999-12-31T23:59:59Z')

    def test_string_escapes_round_trip(self):
        r = SHAPE['escapes']
        resp = self.get('shape', r['session_id'])
        self.check(resp, 200, {'session': api_view(r)})
        self.assertNotIn('\x01', resp.text)  # control characters must be escaped
        self.assertNotIn('\n\ttab', resp.text)
        body = self.list('shape', 'api_name=' + urllib.parse.quote(r['api_name'], safe=''))
        self.assertEqual([s['session_id'] for s in body['sessions']], [r['session_id']])

    def test_error_bodies_key_order(self):
        k = F.keys['shape']
        cases = [(self.c.list('limit=0', key=k), ['error', 'details']),
                 (self.c.get('/browser_sessions/' + uid(0xee, 2), key=k), ['error', 'session_id']),
                 (self.c.delete('/browser_sessions/' + SHAPE['finished']['session_id'], key=k), ['error', 'session_id']),
                 (self.c.get('/browser_sessions/nope', key=k), ['error']),
                 (self.c.get('/nope', key=k), ['error']),
                 (self.c.list(auth=Client.NO_AUTH), ['error'])]
        for resp, keys in cases:
            self.assertJsonType(resp)
            self.assertEqual([kk for kk, _ in resp.json_pairs()], keys, repr(resp))


class TestTimestampEdges(Base):
    def test_truncation_is_toward_the_past(self):
        # 1969-12-31T23:59:59.500Z is in the second 23:59:59 (truncating toward zero would
        # wrongly give 1970-01-01T00:00:00Z)
        body = self.check(self.c.get('/browser_sessions/' + EDGE_TS['pre1970']['session_id'],
                                     key=F.keys['edge_ts']), 200)
        self.assertEqual(body['session']['timestamp'], '1969-12-31T23:59:59Z')

    def test_extreme_years(self):
        body = self.list('edge_ts', 'order=asc')
        self.assertEqual([s['timestamp'] for s in body['sessions']],
                         ['1969-12-31T23:59:59Z', '1970-01-01T00:00:00Z', '2024-02-29T12:00:00Z',
                          '9999-12-31T23:59:59Z'])

    def test_filters_around_epoch_and_far_future(self):
        e = EDGE_TS
        self.assertIds('edge_ts', 'end_date=1969-12-31T23:59:59.500Z', [e['pre1970']])
        self.assertIds('edge_ts', 'end_date=1969-12-31T23:59:59.499Z', [])
        self.assertIds('edge_ts', 'start_date=1969-12-31T23:59:59.501Z&end_date=1970-01-01', [e['epoch']])
        self.assertIds('edge_ts', 'start_date=1969-12-31&end_date=1970-01-01', [e['epoch'], e['pre1970']])
        self.assertIds('edge_ts', 'start_date=9999-12-31', [e['far']])
        self.assertIds('edge_ts', 'end_date=9999-12-31T23:59:59.998Z&start_date=2024-02-29', [e['leap']])
        self.assertIds('edge_ts', 'start_date=2024-02-29T13:00:00%2B01:00&end_date=2024-02-29T12:00:00.250Z',
                       [e['leap']])


# =============================================================================================
# GET /browser_sessions/{id}

class TestGetById(Base):
    def get(self, sid, who='idcase'):
        return self.c.get('/browser_sessions/' + sid, key=F.keys[who])

    def test_found(self):
        r = IDCASE[0]
        self.check(self.get(r['session_id']), 200, {'session': api_view(r)})

    def test_uppercase_matches(self):
        r = IDCASE[0]
        self.check(self.get(r['session_id'].upper()), 200, {'session': api_view(r)})

    def test_imported_case_kept(self):
        r = IDCASE[1]
        for variant in [r['session_id'], r['session_id'].lower(), r['session_id'].upper()]:
            body = self.check(self.get(variant), 200, {'session': api_view(r)}, 'GET %s' % variant)
            self.assertEqual(body['session']['session_id'], 'AbCdEf01-2345-4ABC-8dEf-0123456789aB')
        self.assertIn('AbCdEf01-2345-4ABC-8dEf-0123456789aB', self.ids('idcase'))

    def test_not_a_uuid(self):
        good = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'
        for bad in ['abc', good[:-1], good + 'a', good.replace('-', ''), 'urn:uuid:' + good, good.replace('a', 'g'),
                    'a1b2c3d4e-5f6-4a7b-8c9d-0e1f2a3b4c5d', 'a1b2c3d4-e5f6-4a7b-8c9d0-e1f2a3b4c5d',
                    good.replace('-', '_'), 'x' * 36, '-' * 36, '123', '%20%20' + good[2:]]:
            self.check(self.get(bad), 400, BAD_ID, 'GET /browser_sessions/%s' % bad)

    def test_query_string_ignored(self):
        r = IDCASE[0]
        self.check(self.get(r['session_id'] + '?x=1&limit=0'), 200, {'session': api_view(r)})
        self.check(self.c.get('/healthz?probe=1'), 200)

    def test_unknown_404(self):
        for sid in [uid(0xee, 3), uid(0xee, 3).upper(), 'DEADBEEF-dead-4eef-8eef-deadbeefdead',
                    IDCASE[0]['session_id'][:-1] + 'e']:
            self.check(self.get(sid), 404, {'error': 'Session not found', 'session_id': sid}, 'GET %s' % sid)


# =============================================================================================
# DELETE /browser_sessions/{id}

class TestDelete(Base):
    def delete(self, sid, who='del'):
        return self.c.delete('/browser_sessions/' + sid, key=F.keys[who])

    def test_finished_409(self):
        sid = DEL['finished']['session_id']
        self.check(self.delete(sid), 409, {'error': 'Session is not running', 'session_id': sid})

    def test_failed_409(self):
        sid = DEL['failed']['session_id']
        self.check(self.delete(sid), 409, {'error': 'Session is not running', 'session_id': sid})

    def test_409_other_case(self):
        sid = DEL['finished']['session_id'].upper()
        body = self.check(self.delete(sid), 409)
        self.assertEqual(body['error'], 'Session is not running')
        self.assertEqual(body['session_id'].lower(), sid.lower())

    def test_running_imported_not_run_here_409(self):
        # An imported "running" session has no live browser in this process: there is nothing
        # to end, so browserd answers 409 and leaves the record alone.
        r = DEL['running']
        self.check(self.delete(r['session_id']), 409, {'error': 'Session is not running', 'session_id': r['session_id']})
        self.check(self.c.get('/browser_sessions/' + r['session_id'], key=F.keys['del']), 200,
                   {'session': api_view(r)})

    def test_unknown_404(self):
        for sid in [uid(0xee, 4), uid(0xee, 4).upper()]:
            self.check(self.delete(sid), 404, {'error': 'Session not found', 'session_id': sid})

    def test_malformed_400(self):
        for bad in ['abc', uid(0xee, 5)[:-1], uid(0xee, 5).replace('-', '')]:
            self.check(self.delete(bad), 400, BAD_ID, 'DELETE %s' % bad)

    def test_delete_changes_nothing_when_refused(self):
        before = self.list('del', 'order=asc')
        for r in DEL.values():
            self.delete(r['session_id'])
        self.assertEqual(self.list('del', 'order=asc'), before)


# =============================================================================================
# paths and methods

class TestRouting(Base):
    def test_unknown_path_404(self):
        # ('/' and '/dashboard' are the dashboard's page, docs/dashboard.md: not unknown, but
        # nothing under them beyond its two files)
        for p in ['/nope', '/browser_session', '/browser_sessionsx', '/browser_sessions/%s/extra' % uid(0xa0, 1),
                  '/healthz/x', '/api/browser_sessions', '/BROWSER_SESSIONS', '/dashboard/x', '/dashboard/app.jsx',
                  '/index.html', '/browser_sessions/stats/x']:
            self.check(self.c.get(p, key=F.keys['auth']), 404, NOT_FOUND_PATH, 'GET %s' % p)

    def test_unknown_path_with_query_404(self):
        self.check(self.c.get('/nope?limit=0', key=F.keys['auth']), 404, NOT_FOUND_PATH)

    def assert405(self, method, path, must_allow):
        r = self.c.request(method, path, key=F.keys['auth'], body=b'')
        self.check(r, 405, what='%s %s' % (method, path))
        allow = r.header('Allow')
        self.assertIsNotNone(allow, '%s %s: no Allow header' % (method, path))
        methods = {m.strip().upper() for m in allow.split(',')}
        for m in must_allow:
            self.assertIn(m, methods, '%s %s: Allow: %s' % (method, path, allow))
        self.assertNotIn(method, methods)

    def test_405_list(self):
        for m in ['POST', 'PUT', 'DELETE', 'PATCH']:
            self.assert405(m, '/browser_sessions', ['GET'])

    def test_405_session(self):
        for m in ['POST', 'PUT', 'PATCH']:
            self.assert405(m, '/browser_sessions/' + uid(0xa0, 1), ['GET', 'DELETE'])

    def test_405_healthz(self):
        for m in ['POST', 'DELETE']:
            self.assert405(m, '/healthz', ['GET'])


# =============================================================================================
# HTTP protocol

def req(path, key=None, extra=''):
    h = 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n' % path
    if key:
        h += 'Authorization: Bearer %s\r\n' % key
    return (h + extra + '\r\n').encode()


class TestProtocol(Base):
    def test_content_type_everywhere(self):
        k = F.keys['shape']
        resps = [self.c.get('/healthz', auth=Client.NO_AUTH), self.c.list(key=k),
                 self.c.get('/browser_sessions/' + SHAPE['finished']['session_id'], key=k),
                 self.c.list('limit=0', key=k), self.c.list(auth=Client.NO_AUTH),
                 self.c.list(key='9' * 64), self.c.get('/browser_sessions/x', key=k),
                 self.c.get('/browser_sessions/' + uid(0xee, 6), key=k), self.c.get('/x', key=k),
                 self.c.request('POST', '/browser_sessions', key=k, body=b''),
                 self.c.delete('/browser_sessions/' + SHAPE['finished']['session_id'], key=k)]
        self.assertEqual([r.status for r in resps], [200, 200, 200, 400, 401, 401, 400, 404, 404, 405, 409])
        for r in resps:
            self.assertJsonType(r)
            r.json()

    def test_healthz(self):
        r = self.c.get('/healthz')
        self.check(r, 200)

    def test_keep_alive(self):
        k = F.keys['page']
        with F.d.connect() as c:
            for i in range(1, 8):
                r = c.request('GET', '/browser_sessions?limit=%d' % i, [('Authorization', 'Bearer ' + k)])
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()['count'], i)
                self.assertNotEqual((r.header('Connection') or '').lower(), 'close')
            self.assertFalse(c.eof)

    def test_keep_alive_after_error_responses(self):
        k = F.keys['page']
        with F.d.connect() as c:
            for path, key, status in [('/browser_sessions?limit=0', k, 400), ('/browser_sessions', None, 401),
                                      ('/browser_sessions/' + uid(0xee, 7), k, 404), ('/nope', k, 404),
                                      ('/browser_sessions?limit=2', k, 200)]:
                c.send_raw(req(path, key))
                r = c.read_response()
                self.assertEqual(r.status, status, path)
            self.assertEqual(r.json()['count'], 2)

    def test_connection_close_honoured(self):
        with F.d.connect() as c:
            c.send_raw(req('/healthz', extra='Connection: close\r\n'))
            self.assertEqual(c.read_response().status, 200)
            self.assertTrue(c.closed_by_peer(), 'server kept the connection after Connection: close')

    def test_pipelining(self):
        k = F.keys['page']
        unknown = uid(0xee, 8)
        with F.d.connect() as c:
            c.send_raw(req('/browser_sessions?limit=3', k) + req('/browser_sessions/' + unknown, k) + req('/healthz'))
            r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
            self.assertEqual(r1.status, 200)
            self.assertEqual(r1.json()['count'], 3)
            self.assertEqual(r2.status, 404)
            self.assertEqual(r2.json(), {'error': 'Session not found', 'session_id': unknown})
            self.assertEqual(r3.status, 200)

    def test_pipelining_many(self):
        k = F.keys['page']
        with F.d.connect() as c:
            c.send_raw(b''.join(req('/browser_sessions?limit=%d' % (i + 1), k) for i in range(25)))
            for i in range(25):
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()['count'], i + 1, 'response %d out of order' % i)

    def test_request_in_pieces(self):
        data = req('/browser_sessions?limit=4', F.keys['page'])
        with F.d.connect() as c:
            for i in range(0, len(data), 7):
                c.send_raw(data[i:i + 7])
                time.sleep(0.005)
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()['count'], 4)

    def assert_malformed(self, data, before=None):
        with F.d.connect() as c:
            c.send_raw(data)
            if before is not None:
                r0 = c.read_response()
                self.assertEqual(r0.status, before)
            try:
                r = c.read_response()
            except ConnectionClosed:
                self.fail('connection closed without a 400 for %r' % data[:80])
            self.assertEqual(r.status, 400, '%r -> %r' % (data[:80], r))
            if r.body:
                self.assertJsonType(r)
            self.assertTrue(c.closed_by_peer(), 'connection left open after a malformed request %r' % data[:80])

    def test_malformed_requests(self):
        for data in [b'GARBAGE\r\n\r\n',
                     b'GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n',
                     b'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
                     b'GET /healthz HTTQ/1.1\r\nHost: x\r\n\r\n',
                     b'GET  HTTP/1.1\r\n\r\n',
                     b'\x00\x01\x02\x03\r\n\r\n',
                     b'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
                     b'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
                     b'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n']:
            with self.subTest(request=data[:60]):
                self.assert_malformed(data)

    def test_malformed_after_pipelined_good(self):
        self.assert_malformed(req('/healthz') + b'BLAH BLAH\r\n\r\n', before=200)

    def test_daemon_alive_after_malformed(self):
        self.assert_malformed(b'\xff\xfe garbage \r\n\r\n')
        self.check(self.c.get('/healthz'), 200)

    def oversized(self, data):
        with F.d.connect(timeout=15) as c:
            try:
                c.send_raw(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may stop reading once it has answered
            try:
                r = c.read_response()
            except ConnectionClosed:
                self.fail('no response to oversized headers (connection closed)')
            self.assertEqual(r.status, 431, repr(r))
            if r.body:
                self.assertJsonType(r)

    def test_oversized_header_431(self):
        self.oversized(req('/healthz', extra='X-Big: %s\r\n' % ('a' * 65536)))

    def test_oversized_many_headers_431(self):
        self.oversized(req('/healthz', extra=''.join('X-H%d: %s\r\n' % (i, 'b' * 100) for i in range(1000))))

    def test_body_over_1_mib_413(self):
        with F.d.connect(timeout=15) as c:
            c.send_raw(('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % ((1 << 20) + 1)).encode())
            r = c.read_response()
            self.assertEqual(r.status, 413, repr(r))
            self.assertJsonType(r)

    def test_overlong_url_414(self):
        with F.d.connect(timeout=15) as c:
            try:
                c.send_raw(req('/browser_sessions?api_name=' + 'u' * 70000, F.keys['page']))
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = c.read_response()
            self.assertEqual(r.status, 414, repr(r))
            self.assertJsonType(r)
        self.check(self.c.get('/healthz'), 200)

    def test_oversized_authorized_431(self):
        self.oversized(req('/browser_sessions', F.keys['page'], extra='Cookie: %s\r\n' % ('c' * 70000)))
        self.check(self.c.get('/healthz'), 200)

    def test_moderate_header_ok(self):
        with F.d.connect() as c:
            c.send_raw(req('/browser_sessions?limit=1', F.keys['page'], extra='Cookie: %s\r\n' % ('c' * 4000)))
            self.assertEqual(c.read_response().status, 200)


class TestLargeResponses(Base):
    def test_big_page(self):
        r = self.c.list('limit=100&order=asc', key=F.keys['big'])
        self.assertGreater(len(r.body), 400000)
        self.check(r, 200, {'sessions': [api_view(x) for x in BIG], 'count': 100, 'total': 100,
                            'pagination': {'offset': 0, 'limit': 100, 'has_more': False, 'next_offset': None}})

    def test_pipelined_big_pages_read_late(self):
        # the client writes 20 requests and reads nothing until all are sent: the server must
        # buffer or apply backpressure, and still answer every request in order
        k = F.keys['big']
        with F.d.connect(timeout=30) as c:
            c.send_raw(b''.join(req('/browser_sessions?limit=%d&order=asc' % (81 + i), k) for i in range(20)))
            time.sleep(0.5)
            for i in range(20):
                r = c.read_response()
                self.assertEqual(r.status, 200)
                body = r.json()
                self.assertEqual(body['count'], 81 + i)
                self.assertEqual([x['session_id'] for x in body['sessions']],
                                 [x['session_id'] for x in BIG[:81 + i]])


class TestConcurrency(Base):
    def test_parallel_clients_isolated(self):
        import threading
        expect = {
            'iso_a': sorted(r['session_id'] for r in ISO_A),
            'iso_b': sorted(r['session_id'] for r in ISO_B),
            'status': sorted(r['session_id'] for r in STATUS),
            'dates': sorted(r['session_id'] for r in DATES),
        }
        errors = []

        def worker(who, n):
            c = Client(F.d.port, F.keys[who])
            try:
                for i in range(n):
                    r = c.list('limit=100')
                    got = sorted(s['session_id'] for s in r.json()['sessions']) if r.status == 200 else r.status
                    if got != expect[who]:
                        errors.append('%s request %d: %r' % (who, i, got))
                        return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append('%s: %r' % (who, e))
            finally:
                c.close()

        threads = [threading.Thread(target=worker, args=(who, 60)) for who in expect for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])


# =============================================================================================
# import (command line) rules, checked through the API while the daemon runs

class TestImport(Base):
    def total(self):
        return self.list('imp')['total']

    def assert_rejected(self, lines, line_no):
        before = self.total()
        p = F.d.import_sessions('ct_imp', lines, check=False)
        self.assertEqual(p.returncode, 1, 'import should fail: stdout %r stderr %r' % (p.stdout_text, p.stderr_text))
        self.assertRegex(p.stderr_text, r'(?m)^browserd: line %d: \S' % line_no)
        self.assertEqual(self.total(), before, 'a failed import changed the total')
        for ln in lines:
            if isinstance(ln, dict) and re.match(r'^[0-9a-fA-F-]{36}$', ln['session_id']) \
                    and ln['session_id'] not in [r['session_id'] for r in IMPORT_BASE]:
                r = self.c.get('/browser_sessions/' + ln['session_id'], key=F.keys['imp'])
                self.assertEqual(r.status, 404, 'record of a failed import is visible: %s' % ln['session_id'])

    def test_bad_json_line(self):
        self.assert_rejected([rec(uid(0xab, 1), '2025-12-01T00:00:03.000Z'),
                              rec(uid(0xab, 2), '2025-12-01T00:00:04.000Z'),
                              '{"session_id": "oops"'], 3)

    def test_bad_status(self):
        bad = rec(uid(0xab, 4), '2025-12-01T00:00:05.000Z')
        bad['status'] = 'done'
        self.assert_rejected([rec(uid(0xab, 3), '2025-12-01T00:00:06.000Z'), bad], 2)

    def test_missing_field(self):
        bad = rec(uid(0xab, 6), '2025-12-01T00:00:07.000Z')
        del bad['captcha']
        self.assert_rejected([rec(uid(0xab, 5), '2025-12-01T00:00:08.000Z'), rec(uid(0xab, 7), '2025-12-01T00:00:08.000Z'),
                              rec(uid(0xab, 8), '2025-12-01T00:00:08.000Z'), bad], 4)

    def test_bad_session_id(self):
        self.assert_rejected([rec('not-a-uuid', '2025-12-01T00:00:09.000Z')], 1)

    def test_bad_timestamp(self):
        self.assert_rejected([rec(uid(0xab, 9), '2025-12-01T00:00:09.000Z'), rec(uid(0xab, 10), 'yesterday')], 2)

    def test_duplicate_in_file_other_case(self):
        sid = uid(0xab, 11)
        self.assert_rejected([rec(sid, '2025-12-01T00:00:10.000Z'), rec(uid(0xab, 12), '2025-12-01T00:00:11.000Z'),
                              rec(sid.upper(), '2025-12-01T00:00:12.000Z')], 3)

    def test_duplicate_of_existing_other_case(self):
        before = self.total()
        dup = rec(IMPORT_BASE[0]['session_id'].upper(), '2025-12-01T00:00:13.000Z')
        p = F.d.import_sessions('ct_imp', [rec(uid(0xab, 13), '2025-12-01T00:00:13.000Z'), dup], check=False)
        self.assertNotEqual(p.returncode, 0, 'duplicate id (other case) was accepted')
        self.assertEqual(self.total(), before)
        self.assertEqual(self.c.get('/browser_sessions/' + uid(0xab, 13), key=F.keys['imp']).status, 404)
        body = self.check(self.c.get('/browser_sessions/' + IMPORT_BASE[0]['session_id'], key=F.keys['imp']), 200)
        self.assertEqual(body['session'], api_view(IMPORT_BASE[0]))

    def test_import_from_file(self):
        cid, key = F.d.new_customer()
        recs = [rec(uid(0xac, 10 + i), '2025-12-01T00:00:%02d.000Z' % i) for i in range(3)]
        path = os.path.join(F.d.tmpdir, 'import.jsonl')
        with open(path, 'wb') as f:
            f.write(F.d.jsonl(recs))
        p = F.d.cli('sessions', 'import', cid, path)
        self.assertEqual(p.stdout_text.strip(), '3')
        body = self.check(self.c.list('order=asc', key=key), 200)
        self.assertEqual(body['sessions'], [api_view(r) for r in recs])

    def test_import_visible_while_running(self):
        cid, key = F.d.new_customer()
        new = [rec(uid(0xac, 1), '2025-12-01T00:00:01.000Z'), rec(uid(0xac, 2), '2025-12-01T00:00:02.000Z')]
        p = F.d.import_sessions(cid, new)
        self.assertEqual(p.stdout_text.strip(), '2')
        body = self.check(self.c.list('order=asc', key=key), 200)
        self.assertEqual(body['sessions'], [api_view(r) for r in new])


# =============================================================================================
# daemon lifecycle (own daemons)

class TestLifecycle(unittest.TestCase):
    def test_sigterm_with_idle_connection_exits_0(self):
        with Browserd() as d:
            d.start()
            c = d.connect()
            try:
                self.assertEqual(c.request('GET', '/healthz').status, 200)
                self.assertEqual(d.stop(), 0)
            finally:
                c.close()
            with self.assertRaises(OSError):
                socket.create_connection(('127.0.0.1', d.port), timeout=2).close()

    def test_signals_all_through_the_shutdown_still_exit_0(self):
        """SIGTERM over and over until browserd is gone: the first drains, the second stops,
        and those that land while it lets its store and threads go must not kill it (a clean
        exit is 0, never death by signal)."""
        for round_ in range(3):
            with Browserd() as d:
                d.start()
                proc = d.proc
                stop = threading.Event()

                def storm():
                    while not stop.is_set() and proc.poll() is None:
                        try:
                            os.kill(proc.pid, signal.SIGTERM)
                        except ProcessLookupError:
                            return
                        time.sleep(0.0002)

                t = threading.Thread(target=storm)
                t.start()
                try:
                    rc = proc.wait(30)
                finally:
                    stop.set()
                    t.join()
                d.proc = None
                d.exit_code = rc
                self.assertEqual(rc, 0, 'round %d: exit %s; stderr:\n%s' % (round_, rc, d.stderr_text()[-2000:]))
                self.assertIn('event=stopped', d.stderr_text())

    def test_fresh_database_bootstraps_default_customer(self):
        with Browserd() as d:
            d.start()
            m = HEX64.search(d.stdout_text())
            self.assertIsNotNone(m, 'no credentials printed on a fresh database: %r' % d.stdout_text())
            r = Client(d.port, m.group(0)).list()
            self.assertEqual(r.status, 200, repr(r))
            self.assertEqual(r.json()['total'], 0)
            d.stop()
            n = len(d.stdout_text())
            d.start()
            self.assertIsNone(HEX64.search(d.stdout_text()[n:]), 'credentials printed again on restart')


if __name__ == '__main__':
    unittest.main()
