"""Randomized cross-check: browserd against the independent model (model.py).

Thousands of random sessions for two customers, with nasty distributions (equal timestamps,
millisecond and day boundaries, null URLs, uppercase hosts, ports, userinfo, IPv6 literals,
look-alike domains, running sessions with null duration, equal bandwidths and durations,
mixed-case ids), imported before the daemon starts; then thousands of random queries whose
full response bodies (key order and JSON types included) must equal the model's.

Seeded: the seed is printed; CROSSCHECK_SEED=<n> repeats a run. CROSSCHECK_QUERIES and
CROSSCHECK_SESSIONS scale it.
"""

import os
import random
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import model  # noqa: E402
from harness import Browserd, Client  # noqa: E402

SEED = int(os.environ.get('CROSSCHECK_SEED') or random.SystemRandom().randrange(1 << 32))
N_QUERIES = int(os.environ.get('CROSSCHECK_QUERIES') or 3000)
N_SESSIONS = int(os.environ.get('CROSSCHECK_SESSIONS') or 3000)

BASE_MS = model.parse_ms('2025-12-10T00:00:00.000Z')
DAY = 86400000

API_NAMES_A = ['scraping_browser1', 'scraping_browser1', 'scraping_browser1', 'scraping_browser2',
               'Scraping_browser1', 'scraping_browser10', 'zone a', 'zone+b', 'z\u00f6ne']
API_NAMES_B = ['scraping_browser1', 'scraping_browser2', 'other_zone']
API_NAMES_QUERY = sorted(set(API_NAMES_A + API_NAMES_B)) + ['scraping_browser', 'SCRAPING_BROWSER1', 'nope']

HOSTS = ['example.com', 'www.example.com', 'EXAMPLE.COM', 'Www.Example.Com', 'Sub.Example.COM',
         'a.b.example.com', 'notexample.com', 'www.notexample.com', 'example.com.evil.net', 'evil.net',
         'example.org', 'shop.example.org', 'EXAMPLE.ORG', '127.0.0.1', '10.0.0.1', '[::1]',
         '[2001:db8::1]', '[2001:DB8::A]', 'localhost', 'xn--bcher-kva.example', 'com',
         # non-ASCII hosts, lowercase only: ASCII-only vs Unicode case folding is not exercised
         'b\u00fccher.example', 'www.b\u00fccher.example', '\u00ff.example', 'WWW.b\u00fccher.example']
SCHEMES = ['https'] * 6 + ['http'] * 3 + ['HTTPS', 'Http']
USERINFO = ['user@', 'user:pw@', 'example.com@', 'evil.net@', 'User:P%40ss@']
PORTS = [':80', ':443', ':8080', ':8443', ':1']
PATHS = ['', '/', '/', '/a', '/abc', '/a/b', '/A/B', '/x?q=1', '/?next=https://example.com/',
         '/path@evil.net', '/example.com', '#frag', '/search?q=a+b&r=%20', '/%7Euser/', '/\u00e4', '/%C3%A4']
ERROR_CODES = ['session_timeout', 'inactivity_timeout', 'browser_disconnected', 'worker_disconnect',
               'job_killed', 'cdp_error', 'page_navigated_error', 'client_timeout', 'unknown']
DURATIONS_MS = [0, 1, 999, 1000, 1005, 4350, 45200, 209444, 1000, 60000, 290, 3600000]
BANDWIDTHS = [0, 1, 1000, 1000, 123456789, 1 << 40, 45678901]

DOMAIN_FILTERS = ['example.com', 'EXAMPLE.com', 'www.example.com', 'sub.example.com', 'b.example.com',
                  'notexample.com', 'evil.net', 'com', 'org', 'example.org', 'ample.com', '127.0.0.1',
                  'localhost', 'xn--bcher-kva.example', 'example', 'net', 'Example.Org', 'b\u00fccher.example',
                  '\u00ff.example', 'www.b\u00fccher.example']
PREFIX_FILTERS = ['https://', 'http://', 'HTTPS://WWW.', 'https://www.example.com/a', 'http://[::1]',
                  'https://user', 'https://example.com', 'http://127.0.0.1:8080/', 'https://example.com/?next=',
                  'HTTP://', 'https://www.example.com', 'https://example.com/path@', 'http://[2001:db8::a]',
                  'https://b\u00fccher', 'https://www.b\u00fccher.example/\u00e4', 'http://\u00ff', 'HTTPS://WWW.B']


def random_uuid(r):
    """A version 4 or 7 UUID (variant 10xx), lowercase."""
    h = '%032x' % r.getrandbits(128)
    return '%s-%s-%s%s-%s%s-%s' % (h[:8], h[8:12], r.choice('47'), h[13:16], r.choice('89ab'), h[17:20], h[20:])


class Gen:
    def __init__(self, rng):
        self.r = rng
        self.hot = [BASE_MS + k * 1000 + off for k in range(40) for off in (0, 1, 999)]
        self.used_ids = set()

    def ts(self):
        r = self.r
        x = r.random()
        if x < 0.4:
            return r.choice(self.hot)
        if x < 0.55:
            return r.choice(self.hot) + r.choice([-1, 1, -1000, 1000, 500])
        if x < 0.75:
            return BASE_MS + r.randint(-15, 15) * DAY + r.choice([0, 0, -1, 1, DAY // 2])
        if x < 0.78:
            return r.choice([-1, -500, -999, -1000, -1001, 0, 1, 999, -DAY, -DAY - 1]) + r.randint(-2, 2) * 1000
        return BASE_MS + r.randint(-20 * DAY, 20 * DAY)

    def sid(self):
        r = self.r
        while True:
            s = random_uuid(r)
            x = r.random()
            if x < 0.15:
                s = s.upper()
            elif x < 0.3:
                s = ''.join(c.upper() if r.random() < 0.5 else c for c in s)
            if s.lower() not in self.used_ids:
                self.used_ids.add(s.lower())
                return s

    def url(self):
        r = self.r
        u = r.choice(SCHEMES) + '://'
        if r.random() < 0.12:
            u += r.choice(USERINFO)
        u += r.choice(HOSTS)
        if r.random() < 0.15:
            u += r.choice(PORTS)
        return u + r.choice(PATHS)

    def session(self, api_names):
        r = self.r
        status = r.choices(['running', 'finished', 'failed'], [2, 5, 3])[0]
        if r.random() < 0.15:
            target = end = None
            nav = 0
        else:
            target = self.url()
            end = target if r.random() < 0.3 else self.url()
            nav = r.randint(1, 30)
        dur = None
        if status != 'running':
            dur = r.choice(DURATIONS_MS) if r.random() < 0.5 else r.randint(0, 4000000)
        bw = r.choice(BANDWIDTHS) if r.random() < 0.5 else r.randint(0, 10 ** 9)
        err = None
        if status == 'failed':
            err = (r.choice(ERROR_CODES), r.choice(['Error', 'net::ERR_NAME_NOT_RESOLVED at https://x.test/',
                                                    'boom "quoted"\n']))
        return model.Session(self.sid(), r.choice(api_names), status, target, end, nav, self.ts(), dur,
                             r.choice(model.CAPTCHAS), bw, err)

    # ---- queries

    def date(self, sessions, end):
        r = self.r
        if sessions and r.random() < 0.8:
            ms = r.choice(sessions).ts_ms + r.choice([0, 0, 0, -1, 1, -999, 999, -1000, 1000, r.randint(-DAY, DAY)])
        else:
            ms = BASE_MS + r.randint(-25 * DAY, 25 * DAY)
        dt = model.ms_to_datetime(ms)
        x = r.random()
        if x < 0.12:
            return dt.strftime('%Y-%m-%d')
        frac = '.%03d' % (ms % 1000)
        x = r.random()
        if x < 0.2:
            frac = ''
        elif x < 0.35 and ms % 10 == 0:
            frac = frac.rstrip('0') if ms % 1000 else '.0'
        if r.random() < 0.25:
            off_min = r.choice([60, 120, -300, 330, -30, 0, 840, -720])
            local = model.ms_to_datetime(ms + off_min * 60000)
            sign = '+' if off_min >= 0 else '-'
            a = abs(off_min)
            return local.strftime('%Y-%m-%dT%H:%M:%S') + frac + '%s%02d:%02d' % (sign, a // 60, a % 60)
        s = dt.strftime('%Y-%m-%dT%H:%M:%S') + frac + 'Z'
        if r.random() < 0.05:
            s = s.replace('T', 't').replace('Z', 'z')
        return s

    def enc(self, v):
        r = self.r
        if r.random() < 0.3:
            return urllib.parse.quote_plus(v, safe=':/')
        return urllib.parse.quote(v, safe='' if r.random() < 0.5 else ':/')

    def query(self, sessions, total_of):
        """Returns a raw query string. total_of(qs) gives the model's total for offsets."""
        r = self.r
        params = []
        if r.random() < 0.25:
            params.append(('api_name', self.enc(r.choice(API_NAMES_QUERY))))
        if r.random() < 0.4:
            params.append(('status', r.choice(['running', 'finished', 'failed', 'all'])))
        if r.random() < 0.3:
            params.append(('start_date', self.enc(self.date(sessions, False))))
        if r.random() < 0.3:
            params.append(('end_date', self.enc(self.date(sessions, True))))
        for name in ('target_url', 'end_url'):
            if r.random() < 0.25:
                v = r.choice(DOMAIN_FILTERS) if r.random() < 0.6 else r.choice(PREFIX_FILTERS)
                params.append((name, self.enc(v)))
        if r.random() < 0.45:
            params.append(('sort', r.choice(['timestamp', 'duration', 'bandwidth'])))
        if r.random() < 0.45:
            params.append(('order', r.choice(['asc', 'desc'])))
        if r.random() < 0.1:
            params.append((r.choice(['foo', 'page', 'Status', 'x']), r.choice(['1', '', 'bogus'])))
        limit = None
        if r.random() < 0.6:
            limit = r.choice([1, 2, 3, 10, 50, 99, 100, r.randint(1, 100)])
            params.append(('limit', str(limit)))
        r.shuffle(params)
        qs = '&'.join('%s=%s' % p for p in params)
        if r.random() < 0.5:
            total = total_of(qs)
            lim = limit or 50
            off = r.choice([0, 1, total - 1, total, total + 1, total - lim, total - lim + 1, r.randint(0, total + 3),
                            lim, 2 * lim])
            params.append(('offset', str(max(0, off))))
            qs = '&'.join('%s=%s' % p for p in params)
        if r.random() < 0.05:
            qs = self.invalidate(qs)
        return qs

    def invalidate(self, qs):
        r = self.r
        bad = r.choice(['limit=0', 'limit=101', 'offset=-1', 'status=Running', 'sort=name', 'order=DESC',
                        'start_date=2025-02-30', 'end_date=nope', 'api_name=', 'limit=%2B5',
                        'start_date=2025-12-20&end_date=2025-12-19', 'status=all&status=all'])
        return (qs + '&' + bad) if qs else bad


def first_difference(got, want):
    """A human-readable description of where two list bodies differ."""
    lines = []
    for k in ('count', 'total', 'pagination'):
        if got.get(k) != want.get(k):
            lines.append('%s: daemon %r, model %r' % (k, got.get(k), want.get(k)))
    gs, ws = got.get('sessions') or [], want.get('sessions') or []
    for i in range(max(len(gs), len(ws))):
        g = gs[i] if i < len(gs) else None
        w = ws[i] if i < len(ws) else None
        if g is None or w is None or model.canon(g) != model.canon(w):
            lines.append('first differing session at index %d:\n  daemon: %r\n  model:  %r' % (i, g, w))
            break
    if not lines:
        lines.append('bodies differ in key order or JSON types')
    return '\n'.join(lines)


class TestCrosscheck(unittest.TestCase):
    d = None

    @classmethod
    def setUpClass(cls):
        sys.stderr.write('crosscheck seed: %d (CROSSCHECK_SEED=%d repeats it); %d sessions, %d queries\n'
                         % (SEED, SEED, N_SESSIONS, N_QUERIES))
        rng = random.Random(SEED)
        gen = Gen(rng)
        n_a = N_SESSIONS * 3 // 4
        cls.sessions = {
            'a': [gen.session(API_NAMES_A) for _ in range(n_a)],
            'b': [gen.session(API_NAMES_B) for _ in range(N_SESSIONS - n_a)],
        }
        cls.gen = gen
        cls.rng = rng
        d = Browserd()
        cls.d = d
        try:
            cls.keys = {}
            for who, ss in cls.sessions.items():
                cid, key = d.new_customer([s.import_dict() for s in ss], customer_id='xc_' + who)
                cls.keys[who] = key
            d.start()
        except BaseException:
            d.cleanup()
            cls.d = None
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.close()

    def fail_with(self, who, method, target, resp, status, want, extra=''):
        msg = ['crosscheck mismatch (seed %d, customer %s)' % (SEED, who),
               'request: %s %s' % (method, target),
               'status: daemon %d, model %d' % (resp.status, status)]
        if extra:
            msg.append(extra)
        msg.append('daemon body: %s' % resp.text[:600])
        self.fail('\n'.join(msg))

    def test_model_self_test(self):
        self.assertTrue(model._self_test())

    def run_queries(self, n, gen, rng, clients, stats):
        durations = re.compile(r'"duration"\s*:\s*(null|[0-9]+(?:\.[0-9]{1,3})?)\s*[,}]')
        any_duration = re.compile(r'"duration"\s*:')
        for i in range(n):
            who = 'a' if rng.random() < 0.75 else 'b'
            ss = self.sessions[who]
            qs = gen.query(ss, lambda q: model.list_response(ss, q)[1].get('total', 0))
            status, want = model.list_response(ss, qs)
            resp = clients[who].list(qs)
            target = '/browser_sessions?' + qs
            if resp.status != status:
                self.fail_with(who, 'GET', target, resp, status, want, 'model body: %s' % str(want)[:600])
            ct = (resp.header('Content-Type') or '').split(';')[0].strip()
            self.assertEqual(ct, 'application/json', target)
            got = model.parse_strict(resp.text)
            if status == 400:
                stats['400'] += 1
                body = resp.json()
                if [k for k, _ in got] != ['error', 'details'] or body['error'] != model.INVALID \
                        or not isinstance(body['details'], str):
                    self.fail_with(who, 'GET', target, resp, status, want, 'expected an error with details')
                continue
            stats['200'] += 1
            if want['count']:
                stats['nonempty'] += 1
            if model.canon(got) != model.canon(want):
                self.fail_with(who, 'GET', target, resp, status, want, first_difference(resp.json(), want))
            if len(durations.findall(resp.text)) != len(any_duration.findall(resp.text)):
                self.fail_with(who, 'GET', target, resp, status, want,
                               'a duration is not a number with at most 3 decimals')

    def clients(self):
        return {who: Client(self.d.port, key) for who, key in self.keys.items()}

    def test_list_queries(self):
        clients = self.clients()
        t0 = time.monotonic()
        stats = {'200': 0, '400': 0, 'nonempty': 0}
        try:
            self.run_queries(N_QUERIES, self.gen, self.rng, clients, stats)
        finally:
            for c in clients.values():
                c.close()
        sys.stderr.write('crosscheck: %d list queries in %.1fs (%d with 200, %d non-empty, %d with 400)\n'
                         % (N_QUERIES, time.monotonic() - t0, stats['200'], stats['nonempty'], stats['400']))
        self.assertGreater(stats['nonempty'], N_QUERIES // 4, 'the generator produced too few non-empty pages')

    def test_list_queries_with_live_imports(self):
        """Sessions imported in small batches while the daemon runs (the catalog's incremental
        path rather than its bulk load) must be visible, in order, at the next request."""
        rng = random.Random(SEED + 2)
        gen = Gen(rng)
        gen.used_ids = self.gen.used_ids
        clients = self.clients()
        stats = {'200': 0, '400': 0, 'nonempty': 0}
        t0 = time.monotonic()
        n_imported = 0
        try:
            for batch in range(20):
                who = rng.choice(['a', 'b'])
                new = [gen.session(API_NAMES_A if who == 'a' else API_NAMES_B)
                       for _ in range(rng.choice([1, 1, 2, 5, 17, 60]))]
                p = self.d.import_sessions('xc_' + who, [x.import_dict() for x in new])
                self.assertEqual(p.stdout_text.strip(), str(len(new)))
                self.sessions[who].extend(new)
                n_imported += len(new)
                self.run_queries(40, gen, rng, clients, stats)
        finally:
            for c in clients.values():
                c.close()
        sys.stderr.write('crosscheck: %d sessions imported live in 20 batches, %d queries in %.1fs\n'
                         % (n_imported, stats['200'] + stats['400'], time.monotonic() - t0))

    def test_get_by_id(self):
        rng = random.Random(SEED + 1)
        clients = {who: Client(self.d.port, key) for who, key in self.keys.items()}
        all_ids = [s.session_id for ss in self.sessions.values() for s in ss]
        try:
            for i in range(600):
                who = rng.choice(['a', 'b'])
                x = rng.random()
                if x < 0.8:
                    sid = rng.choice(all_ids)  # own or the other customer's
                elif x < 0.95:
                    sid = random_uuid(rng)
                else:
                    sid = rng.choice(all_ids)[:-1]
                sid = rng.choice([sid, sid.lower(), sid.upper()])
                status, want = model.get_response(self.sessions[who], sid)
                resp = clients[who].get('/browser_sessions/' + sid)
                if resp.status != status or model.canon(model.parse_strict(resp.text)) != model.canon(want):
                    self.fail_with(who, 'GET', '/browser_sessions/' + sid, resp, status, want,
                                   'model body: %r' % (want,))
        finally:
            for c in clients.values():
                c.close()


if __name__ == '__main__':
    unittest.main()
