"""GET /browser_sessions/stats against the list API of the same daemon: for random filter
queries, the counts per bucket by status, the bandwidth per bucket and the counts per error code
must equal what summing every page of GET /browser_sessions with the same filters gives; a
query the list refuses, the stats refuse with the same details. Then the stats' own rules:
`bucket`, the range and its limit, tenancy, authentication, methods, HEAD, and sessions
imported while the daemon runs.

The sessions are the crosscheck's (test_crosscheck.Gen: nasty URLs, equal timestamps, mixed
case), their start times within a few days so that the whole range fits in 1000 hours.
Seeded like the crosscheck: STATS_SEED=<n> repeats a run.
"""

import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import model  # noqa: E402
from harness import Browserd  # noqa: E402
from test_crosscheck import API_NAMES_A, API_NAMES_B, BASE_MS, Gen  # noqa: E402

SEED = int(os.environ.get('STATS_SEED') or random.SystemRandom().randrange(1 << 32))
N_SESSIONS = 1500
N_QUERIES = 150
HOUR = 3600000
DAY = 24 * HOUR
MAX_BUCKETS = 1000
MAX_ERRORS = 100


class NearGen(Gen):
    """Start times within BASE_MS +- 3 days: on the hour, a millisecond either side, anywhere."""

    def ts(self):
        r = self.r
        x = r.random()
        hour = BASE_MS + r.randint(-72, 72) * HOUR
        if x < 0.3:
            return hour + r.choice([0, -1, 1, 999, -1000])
        return hour + r.randint(0, HOUR - 1)


def floor_to(ms, width):
    return ms // width * width  # Python floors toward -infinity, like the daemon


def iso(ms):
    return model.format_seconds(ms)


def stats_from_list(client, qs):
    """What the stats must be, from every page of the list with the same filters."""
    sessions = []
    offset = 0
    base = '&'.join(p for p in qs.split('&') if p.split('=')[0] not in ('limit', 'offset', 'bucket', 'sort', 'order'))
    while True:
        r = client.list(((base + '&') if base else '') + 'limit=100&offset=%d' % offset)
        assert r.status == 200, (qs, r.status, r.text)
        body = r.json()
        sessions += body['sessions']
        if not body['pagination']['has_more']:
            assert len(sessions) == body['total'], (qs, len(sessions), body['total'])
            return sessions
        offset = body['pagination']['next_offset']


def expected(sessions, q, width):
    """The stats body the daemon must answer for these sessions (the list's, whole seconds)."""
    by = {s: 0 for s in model.STATUSES}
    bandwidth = 0
    errors = {}
    ts = [model.parse_ms(s['timestamp']) for s in sessions]
    for s in sessions:
        by[s['status']] += 1
        bandwidth += s['bandwidth']
        if s['error'] is not None:
            errors[s['error']['code']] = errors.get(s['error']['code'], 0) + 1
    lo, hi = q['start'], q['end']
    if not sessions:
        if lo is None and hi is None:
            return None, {'from': None, 'to': None, 'buckets': []}, by, bandwidth, errors
        lo = hi if lo is None else lo
        hi = lo if hi is None else hi
    lo = min(ts) if lo is None else lo
    hi = max(ts) if hi is None else hi
    start, end = floor_to(lo, width), floor_to(hi, width) + width
    n = (end - start) // width
    if n > MAX_BUCKETS:
        return n, None, by, bandwidth, errors
    buckets = [{'start': iso(start + i * width), 'running': 0, 'finished': 0, 'failed': 0, 'bandwidth': 0}
               for i in range(n)]
    for s, t in zip(sessions, ts):
        b = buckets[(t - start) // width]
        b[s['status']] += 1
        b['bandwidth'] += s['bandwidth']
    return n, {'from': iso(start), 'to': iso(end), 'buckets': buckets}, by, bandwidth, errors


class TestStats(unittest.TestCase):
    d = None

    @classmethod
    def setUpClass(cls):
        sys.stderr.write('stats seed: %d (STATS_SEED=%d repeats it)\n' % (SEED, SEED))
        cls.rng = random.Random(SEED)
        cls.gen = NearGen(cls.rng)
        cls.sessions = {
            'a': [cls.gen.session(API_NAMES_A) for _ in range(N_SESSIONS)],
            'b': [cls.gen.session(API_NAMES_B) for _ in range(N_SESSIONS // 5)],
        }
        d = Browserd()
        cls.d = d
        try:
            cls.keys = {}
            for who, ss in cls.sessions.items():
                cid, key = d.new_customer([s.import_dict() for s in ss], customer_id='st_' + who)
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

    def client(self, who='a'):
        return self.d.client(self.keys[who])

    def stats(self, qs, who='a', method='GET'):
        return self.client(who).request(method, '/browser_sessions/stats' + ('?' + qs if qs else ''))

    def check_query(self, who, qs):
        c = self.client(who)
        resp = self.stats(qs, who)
        where = 'seed %d, customer %s, stats?%s' % (SEED, who, qs)
        listed = c.list(qs)
        if listed.status == 400:
            self.assertEqual(resp.status, 400, where)
            self.assertEqual(resp.json(), listed.json(), where)
            return 'invalid'
        bucket = 'day' if 'bucket=day' in qs else 'hour'
        width = DAY if bucket == 'day' else HOUR
        q = model.parse_query(qs.replace('bucket=day', '').replace('bucket=hour', ''))
        n, shape, by, bandwidth, errors = expected(stats_from_list(c, qs), q, width)
        if shape is None:
            self.assertEqual(resp.status, 400, where)
            self.assertEqual(resp.json()['details'],
                             'bucket: the range holds %d %ss, more than %d: narrow start_date and end_date%s'
                             % (n, bucket, MAX_BUCKETS, ', or use bucket=day' if bucket == 'hour' else ''), where)
            return 'too many'
        self.assertEqual(resp.status, 200, '%s: %s' % (where, resp.text[:300]))
        got = model.parse_strict(resp.text)
        self.assertEqual([k for k, _ in got],
                         ['bucket', 'from', 'to', 'total', 'sessions', 'bandwidth', 'buckets', 'errors', 'other_errors'],
                         where)
        body = resp.json()
        self.assertEqual(body['bucket'], bucket, where)
        self.assertEqual(body['total'], sum(by.values()), where)
        self.assertEqual(body['sessions'], by, where)
        self.assertEqual(body['bandwidth'], bandwidth, where)
        self.assertEqual(body['from'], shape['from'], where)
        self.assertEqual(body['to'], shape['to'], where)
        self.assertEqual(body['buckets'], shape['buckets'], where)
        want_errors = sorted(errors.items(), key=lambda kv: (-kv[1], kv[0].encode('utf-8')))
        self.assertEqual([(e['code'], e['count']) for e in body['errors']], want_errors[:MAX_ERRORS], where)
        self.assertEqual(body['other_errors'], sum(n for _, n in want_errors[MAX_ERRORS:]), where)
        return 'empty' if not body['total'] else 'ok'

    def test_random_filters_agree_with_the_pages_of_the_list(self):
        seen = {'ok': 0, 'empty': 0, 'invalid': 0, 'too many': 0}
        for i in range(N_QUERIES):
            who = 'a' if self.rng.random() < 0.8 else 'b'
            ss = self.sessions[who]
            qs = self.gen.query(ss, lambda q: model.list_response(ss, q)[1].get('total', 0))
            x = self.rng.random()
            if x < 0.35:
                qs = (qs + '&' if qs else '') + 'bucket=day'
            elif x < 0.5:
                qs = (qs + '&' if qs else '') + 'bucket=hour'
            seen[self.check_query(who, qs)] += 1
        # the edges were met, not only the common case
        self.assertGreater(seen['ok'], N_QUERIES // 3, seen)
        self.assertGreater(seen['empty'] + seen['invalid'], 0, seen)

    def test_the_whole_data_by_hour_and_by_day_and_a_range_past_the_limit(self):
        self.assertEqual(self.check_query('a', ''), 'ok')
        self.assertEqual(self.check_query('a', 'bucket=day&status=failed'), 'ok')
        self.assertEqual(self.check_query('b', 'bucket=day'), 'ok')
        # exactly 1000 hours, then one more
        self.assertEqual(self.check_query('a', 'start_date=2025-11-01T00:00:00Z&end_date=2025-12-12T15:59:59.999Z'), 'ok')
        self.assertEqual(self.check_query('a', 'start_date=2025-11-01T00:00:00Z&end_date=2025-12-12T16:00:00Z'), 'too many')
        self.assertEqual(self.check_query('a', 'start_date=2025-11-01&bucket=day'), 'ok')
        self.assertEqual(self.check_query('a', 'start_date=2020-01-01&bucket=day'), 'too many')
        # nothing matches: no bounds, no buckets; one bound, its bucket
        self.assertEqual(self.check_query('a', 'api_name=nope'), 'empty')
        self.assertEqual(self.stats('api_name=nope').json()['buckets'], [])
        self.assertEqual(len(self.stats('api_name=nope&start_date=2025-01-01T10:30:00Z').json()['buckets']), 1)

    def test_bucket_and_the_lists_rules_give_400s_with_details(self):
        cases = {
            'bucket=week': 'bucket: must be one of hour, day',
            'bucket=HOUR': 'bucket: must be one of hour, day',
            'bucket=day&bucket=day': 'bucket: given more than once',
            'bucket=': 'bucket: must not be empty',
            'bucket=%zz': 'bucket: invalid percent-encoding',
            'limit=0&bucket=week': 'limit: must be an integer from 1 to 100',
            'status=done': 'status: must be one of running, finished, failed, all',
            'start_date=2025-12-02&end_date=2025-12-01': 'start_date: is later than end_date',
        }
        for qs, details in cases.items():
            r = self.stats(qs)
            self.assertEqual(r.status, 400, qs)
            self.assertEqual(r.json(), {'error': model.INVALID, 'details': details}, qs)
        # names it does not know are ignored, as by the list; so are limit, offset, sort and order
        base = self.stats('bucket=day').json()
        for qs in ('bucket=day&Bucket=x&foo=1', 'bucket=day&limit=1&offset=7&sort=bandwidth&order=asc'):
            self.assertEqual(self.stats(qs).json(), base, qs)

    def test_authentication_methods_and_head(self):
        c = self.d.client()
        r = c.request('GET', '/browser_sessions/stats')
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json(), {'error': 'Credentials are missing'})
        self.assertEqual(r.header('WWW-Authenticate'), 'Bearer')
        r = c.request('GET', '/browser_sessions/stats?bucket=week', key='0' * 64)
        self.assertEqual(r.status, 401)  # before the 400
        self.assertEqual(r.json(), {'error': 'Invalid credentials'})
        for m in ('POST', 'DELETE', 'PUT'):
            r = self.stats('', method=m)
            self.assertEqual(r.status, 405, m)
            self.assertEqual(r.header('Allow'), 'GET, HEAD', m)
        r = self.stats('bucket=day', method='HEAD')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'')
        self.assertEqual(int(r.header('Content-Length')), len(self.stats('bucket=day').body))
        # a path under it is no route
        self.assertEqual(self.client().get('/browser_sessions/stats/').status, 404)

    def test_each_customer_sees_only_its_own_sessions(self):
        a = self.stats('bucket=day', 'a').json()
        b = self.stats('bucket=day', 'b').json()
        self.assertEqual(a['total'], len(self.sessions['a']))
        self.assertEqual(b['total'], len(self.sessions['b']))

    def test_the_100_most_frequent_error_codes_and_the_rest_as_one_count(self):
        ss = []
        for k in range(130):
            for j in range(1 + k % 7):
                s = self.gen.session(['codes_zone'])
                s.status, s.duration_ms = 'failed', 1000
                s.error = ('code %03d \u00e9' % k, 'm')
                ss.append(s)
        cid, key = self.d.new_customer([s.import_dict() for s in ss], customer_id='st_codes')
        self.keys['codes'] = key
        self.assertEqual(self.check_query('codes', 'bucket=day'), 'ok')
        body = self.stats('bucket=day', 'codes').json()
        self.assertEqual(len(body['errors']), MAX_ERRORS)
        self.assertGreater(body['other_errors'], 0)
        self.assertEqual(sum(e['count'] for e in body['errors']) + body['other_errors'], len(ss))

    def total_soon(self, who, expected, timeout=5.0):
        # Another process's import reaches the catalog at once on SQLite (each request reads
        # the database's change counter) and through NOTIFY on PostgreSQL, where docs/cluster.md
        # promises within 1 s: the request right after the import may come first.
        deadline = time.monotonic() + timeout
        while True:
            total = self.stats('', who).json()['total']
            if total == expected or time.monotonic() > deadline:
                return total
            time.sleep(0.05)

    def test_sessions_imported_while_running_are_counted(self):
        who = 'st_late'
        first = [self.gen.session(['late_zone']) for _ in range(20)]
        cid, key = self.d.new_customer([s.import_dict() for s in first], customer_id=who)
        self.keys['late'] = key
        self.assertEqual(self.total_soon('late', 20), 20)
        more = [self.gen.session(['late_zone']) for _ in range(7)]
        self.d.import_sessions(cid, [s.import_dict() for s in more])
        self.assertEqual(self.total_soon('late', 27), 27)
        self.assertEqual(self.check_query('late', 'bucket=day'), 'ok')
