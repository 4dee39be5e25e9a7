"""An independent model of the Browser Sessions API list/get contract.

Written directly from shared/spec/browser-sessions-api.md, deliberately naive (filter a list,
sort it, slice it), and never from the daemon's code. Run this file to self-test the model.

Choices where the spec is silent (kept consistent with tests/api/test_contract.py):
- session_id tie-breaks compare the ids case-insensitively (as lowercase hex, i.e. by UUID
  value), because ids match case-insensitively.
- sessions whose sort value is null are ordered among themselves by timestamp, then
  session_id, in the direction of `order` (they tie on the sort value).
- a fraction of a second longer than 3 digits is truncated to milliseconds (the crosscheck
  only generates up to 3 digits, so this choice is never exercised against the daemon).
"""

import datetime
import json
import re

INVALID = 'Invalid request parameters'

STATUSES = ('running', 'finished', 'failed')
CAPTCHAS = ('none', 'detected', 'solved', 'failed')
KNOWN_PARAMS = ('api_name', 'limit', 'offset', 'status', 'start_date', 'end_date',
                'target_url', 'end_url', 'sort', 'order')
MAX_OFFSET = 2 ** 31 - 1

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Session:
    __slots__ = ('session_id', 'api_name', 'status', 'target_url', 'end_url', 'navigations',
                 'ts_ms', 'duration_ms', 'captcha', 'bandwidth', 'error', 'id_lower', '_url_cache')

    def __init__(self, session_id, api_name, status, target_url, end_url, navigations,
                 ts_ms, duration_ms, captcha, bandwidth, error):
        self.session_id = session_id
        self.api_name = api_name
        self.status = status
        self.target_url = target_url
        self.end_url = end_url
        self.navigations = navigations
        self.ts_ms = ts_ms
        self.duration_ms = duration_ms      # int milliseconds or None
        self.captcha = captcha
        self.bandwidth = bandwidth
        self.error = error                  # None or (code, message)
        self.id_lower = session_id.lower()
        self._url_cache = {}

    # the JSONL import line (timestamp with milliseconds, duration in seconds)
    def import_dict(self):
        return {
            'session_id': self.session_id,
            'api_name': self.api_name,
            'status': self.status,
            'target_url': self.target_url,
            'end_url': self.end_url,
            'navigations': self.navigations,
            'timestamp': format_ms(self.ts_ms),
            'duration': None if self.duration_ms is None else self.duration_ms / 1000,
            'captcha': self.captcha,
            'bandwidth': self.bandwidth,
            'error': None if self.error is None else {'code': self.error[0], 'message': self.error[1]},
        }

    # what the API returns for it
    def api_dict(self):
        d = self.import_dict()
        d['timestamp'] = format_seconds(self.ts_ms)
        return d


# ---------------------------------------------------------------------------------------------
# time

def ms_to_datetime(ms):
    return EPOCH + datetime.timedelta(milliseconds=ms)


def format_seconds(ms):
    """Whole seconds, truncated toward the past: YYYY-MM-DDTHH:MM:SSZ."""
    dt = ms_to_datetime((ms // 1000) * 1000)
    return '%04d-%02d-%02dT%02d:%02d:%02dZ' % (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)


def format_ms(ms):
    dt = ms_to_datetime(ms)
    return '%04d-%02d-%02dT%02d:%02d:%02d.%03dZ' % (dt.year, dt.month, dt.day, dt.hour, dt.minute,
                                                   dt.second, ms % 1000)


def parse_ms(s):
    """Parses the import format's timestamp (RFC 3339 with Z) to epoch ms (helper for tests)."""
    v = parse_date(s, end_of_day=False)
    if v is None:
        raise ValueError(s)
    return v


_RFC3339 = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})'
                      r'(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z')
_BARE = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2})\Z')


def _day_ms(y, m, d):
    try:
        day = datetime.date(y, m, d)
    except ValueError:
        return None
    return (day - datetime.date(1970, 1, 1)).days * 86400000


def parse_date(s, end_of_day):
    """RFC 3339 date-time or bare date -> epoch ms; None when malformed."""
    m = _BARE.match(s)
    if m:
        base = _day_ms(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if base is None:
            return None
        return base + 86400000 - 1 if end_of_day else base
    m = _RFC3339.match(s)
    if not m:
        return None
    base = _day_ms(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    hh, mi, ss = int(m.group(4)), int(m.group(5)), int(m.group(6))
    if base is None or hh > 23 or mi > 59 or ss > 59:
        return None
    frac = m.group(7)
    ms = int((frac + '00')[:3]) if frac is not None else 0
    off = m.group(8)
    off_ms = 0
    if off not in ('Z', 'z'):
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        off_ms = (oh * 60 + om) * 60000
        if off[0] == '-':
            off_ms = -off_ms
    return base + ((hh * 60 + mi) * 60 + ss) * 1000 + ms - off_ms


# ---------------------------------------------------------------------------------------------
# URLs

def ascii_lower(s):
    return ''.join(chr(ord(c) + 32) if 'A' <= c <= 'Z' else c for c in s)


def url_host(url):
    """Host of scheme://[userinfo@]host[:port][/?#...], lowercased; None when there is none."""
    i = url.find('://')
    if i < 0:
        return None
    rest = url[i + 3:]
    end = len(rest)
    for ch in '/?#':
        j = rest.find(ch)
        if 0 <= j < end:
            end = j
    authority = rest[:end]
    at = authority.rfind('@')
    if at >= 0:
        authority = authority[at + 1:]
    if authority.startswith('['):
        j = authority.find(']')
        host = authority[:j + 1] if j >= 0 else authority
    else:
        host = authority.split(':', 1)[0]
    return ascii_lower(host) if host else None


def url_matches(url, filt):
    """filt = ('domain'|'prefix', lowercased value)."""
    if url is None:
        return False
    kind, value = filt
    if kind == 'prefix':
        return ascii_lower(url).startswith(value)
    host = url_host(url)
    if host is None:
        return False
    return host == value or host.endswith('.' + value)


# ---------------------------------------------------------------------------------------------
# query string

class Invalid(Exception):
    def __init__(self, param, why):
        Exception.__init__(self, '%s: %s' % (param, why))
        self.param = param


def _pct_decode(s):
    s = s.replace('+', ' ')
    out = bytearray()
    i = 0
    b = s.encode('utf-8')
    while i < len(b):
        c = b[i]
        if c == 0x25 and i + 2 < len(b) and _ishex(b[i + 1]) and _ishex(b[i + 2]):
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return out.decode('utf-8', 'replace')


def _ishex(c):
    return chr(c) in '0123456789abcdefABCDEF'


def parse_query(qs):
    """Raw query string (after '?') -> validated query dict; raises Invalid."""
    raw = {}
    if qs:
        for piece in qs.split('&'):
            if piece == '':
                continue
            name, _, value = piece.partition('=')
            name = _pct_decode(name)
            value = _pct_decode(value)
            if name not in KNOWN_PARAMS:
                continue
            if name in raw:
                raise Invalid(name, 'given twice')
            raw[name] = value
    for name, value in raw.items():
        if value == '':
            raise Invalid(name, 'empty')
    q = {'api_name': None, 'limit': 50, 'offset': 0, 'status': 'all', 'start': None, 'end': None,
         'target_url': None, 'end_url': None, 'sort': 'timestamp', 'order': 'desc'}
    if 'api_name' in raw:
        q['api_name'] = raw['api_name']
    for name, lo, hi in (('limit', 1, 100), ('offset', 0, MAX_OFFSET)):
        if name in raw:
            v = raw[name]
            if not re.fullmatch(r'[0-9]+', v) or not lo <= int(v) <= hi:
                raise Invalid(name, 'must be an integer from %d to %d' % (lo, hi))
            q[name] = int(v)
    for name, allowed in (('status', STATUSES + ('all',)), ('sort', ('timestamp', 'duration', 'bandwidth')),
                          ('order', ('asc', 'desc'))):
        if name in raw:
            if raw[name] not in allowed:
                raise Invalid(name, 'must be one of ' + ', '.join(allowed))
            q[name] = raw[name]
    for name, key, eod in (('start_date', 'start', False), ('end_date', 'end', True)):
        if name in raw:
            v = parse_date(raw[name], eod)
            if v is None:
                raise Invalid(name, 'malformed date')
            q[key] = v
    if q['start'] is not None and q['end'] is not None and q['start'] > q['end']:
        raise Invalid('start_date', 'later than end_date')
    for name in ('target_url', 'end_url'):
        if name in raw:
            v = ascii_lower(raw[name])
            q[name] = ('prefix', v) if '://' in v else ('domain', v)
    return q


# ---------------------------------------------------------------------------------------------
# list / get

def matches(s, q):
    if q['api_name'] is not None and s.api_name != q['api_name']:
        return False
    if q['status'] != 'all' and s.status != q['status']:
        return False
    if q['start'] is not None and s.ts_ms < q['start']:
        return False
    if q['end'] is not None and s.ts_ms > q['end']:
        return False
    for name in ('target_url', 'end_url'):
        if q[name] is not None:
            key = (name, q[name])
            hit = s._url_cache.get(key)  # memo only: url_matches is the rule
            if hit is None:
                hit = s._url_cache[key] = url_matches(getattr(s, name), q[name])
            if not hit:
                return False
    return True


def sort_sessions(sessions, sort, order):
    desc = order == 'desc'
    if sort == 'timestamp':
        value = lambda s: s.ts_ms
    elif sort == 'duration':
        value = lambda s: s.duration_ms
    else:
        value = lambda s: s.bandwidth
    have = [s for s in sessions if value(s) is not None]
    null = [s for s in sessions if value(s) is None]
    have.sort(key=lambda s: (value(s), s.ts_ms, s.id_lower), reverse=desc)
    null.sort(key=lambda s: (s.ts_ms, s.id_lower), reverse=desc)
    return have + null


def list_response(sessions, qs):
    """(status, body) of GET /browser_sessions?qs for one customer's sessions."""
    try:
        q = parse_query(qs)
    except Invalid as e:
        return 400, {'error': INVALID, 'details': str(e)}
    hits = sort_sessions([s for s in sessions if matches(s, q)], q['sort'], q['order'])
    total = len(hits)
    page = hits[q['offset']:q['offset'] + q['limit']]
    has_more = q['offset'] + len(page) < total
    return 200, {
        'sessions': [s.api_dict() for s in page],
        'count': len(page),
        'total': total,
        'pagination': {
            'offset': q['offset'],
            'limit': q['limit'],
            'has_more': has_more,
            'next_offset': q['offset'] + q['limit'] if has_more else None,
        },
    }


UUID_RE = re.compile(r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z')


def get_response(sessions, session_id):
    if not UUID_RE.match(session_id):
        return 400, {'error': 'Invalid session_id format'}
    for s in sessions:
        if s.id_lower == session_id.lower():
            return 200, {'session': s.api_dict()}
    return 404, {'error': 'Session not found', 'session_id': session_id}


# ---------------------------------------------------------------------------------------------
# strict comparison of JSON values (types and key order)

class _Obj(list):
    pass


def parse_strict(text):
    return json.loads(text, object_pairs_hook=_Obj)


def canon(v):
    """A comparable form that keeps key order and distinguishes true/1, null, strings, numbers."""
    if isinstance(v, _Obj):
        return ('o', tuple((k, canon(x)) for k, x in v))
    if isinstance(v, dict):
        return ('o', tuple((k, canon(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ('a', tuple(canon(x) for x in v))
    if v is None:
        return ('null',)
    if isinstance(v, bool):
        return ('b', v)
    if isinstance(v, (int, float)):
        return ('n', v)
    if isinstance(v, str):
        return ('s', v)
    raise TypeError(type(v))



# ---------------------------------------------------------------------------------------------
# self-test: hand-written examples straight from the spec

def _self_test():
    T = parse_ms
    # dates
    assert parse_date('2025-12-01T00:00:00Z', False) == T('2025-12-01T00:00:00.000Z')
    assert parse_date('2025-12-01T02:00:00+02:00', False) == T('2025-12-01T00:00:00.000Z')
    assert parse_date('2025-11-30T22:00:00-02:00', False) == T('2025-12-01T00:00:00.000Z')
    assert parse_date('2025-12-01T00:00:00.5Z', False) == T('2025-12-01T00:00:00.500Z')
    assert parse_date('2025-12-01', False) == T('2025-12-01T00:00:00.000Z')
    assert parse_date('2025-12-01', True) == T('2025-12-01T23:59:59.999Z')
    assert parse_date('2024-02-29', False) is not None
    for bad in ('2025-02-29', '2025-13-01', '2025-12-01T24:00:00Z', '2025-12-01T00:00:00',
                '2025-12-1', '20251201', '2025-12-01T00:00Z', '2025-12-01T00:00:00.Z', 'x', ''):
        assert parse_date(bad, False) is None, bad
    assert format_seconds(T('2025-12-16T18:53:41.999Z')) == '2025-12-16T18:53:41Z'
    # URLs
    d = ('domain', 'example.com')
    assert url_matches('https://www.example.com/x', d)
    assert url_matches('http://example.com', d)
    assert url_matches('HTTPS://WWW.EXAMPLE.COM:8443/x', d)
    assert url_matches('https://user:pw@example.com/', d)
    assert not url_matches('https://notexample.com', d)
    assert not url_matches('https://example.com.evil.net/', d)
    assert not url_matches('https://example.com@evil.net/', d)
    assert url_matches('https://evil.net@example.com/', d)
    assert not url_matches('https://evil.net/?u=https://example.com/', d)
    assert url_matches('https://example.com/a@evil.net', d)
    assert not url_matches(None, d)
    assert url_host('http://[2001:db8::1]:8080/x') == '[2001:db8::1]'
    p = ('prefix', 'https://www.example.com/a')
    assert url_matches('HTTPS://WWW.EXAMPLE.COM/A/b', p)
    assert not url_matches('http://www.example.com/a', p)
    # query parsing
    assert parse_query('')['limit'] == 50
    assert parse_query('api_name=a+b')['api_name'] == 'a b'
    assert parse_query('api_name=a%2Bb')['api_name'] == 'a+b'
    assert parse_query('foo=1&foo=2&status=running')['status'] == 'running'
    assert parse_query('target_url=EXAMPLE.COM')['target_url'] == ('domain', 'example.com')
    assert parse_query('end_url=https%3A%2F%2Fx')['end_url'] == ('prefix', 'https://x')
    for bad in ('limit=0', 'limit=101', 'limit=+5', 'limit=1.0', 'limit=', 'offset=-1',
                'offset=2147483648', 'status=Running', 'status=done', 'sort=name', 'order=DESC',
                'status=all&status=all', 'api_name=', 'start_date=2025-12-02&end_date=2025-12-01',
                'start_date=2025-12-01T00:00:00+02:00'):
        try:
            parse_query(bad)
        except Invalid:
            continue
        raise AssertionError('accepted ' + bad)
    assert parse_query('offset=2147483647')['offset'] == MAX_OFFSET
    assert parse_query('start_date=2025-12-01&end_date=2025-12-01')['end'] == T('2025-12-01T23:59:59.999Z')

    # list: filters, ordering with tie-breaks and nulls last, pagination
    def S(i, ts, dur, bw, status='finished', api='z', url='https://a.example.com/'):
        return Session('0000000%d-0000-7000-8000-000000000000' % i, api, status, url, url, 1,
                       T(ts), dur, 'none', bw, None)
    ss = [S(1, '2025-01-01T00:00:00.000Z', 5000, 10),
          S(2, '2025-01-01T00:00:00.000Z', 5000, 10),
          S(3, '2025-01-01T00:00:00.001Z', None, 20, status='running'),
          S(4, '2025-01-02T00:00:00.000Z', 1000, 10, url=None),
          S(5, '2024-12-31T23:59:59.999Z', None, 5, status='running', api='Z')]
    ids = lambda body: [x['session_id'][7] for x in body['sessions']]
    st, b = list_response(ss, '')
    assert st == 200 and ids(b) == ['4', '3', '2', '1', '5'], ids(b)
    st, b = list_response(ss, 'order=asc')
    assert ids(b) == ['5', '1', '2', '3', '4']
    st, b = list_response(ss, 'sort=duration&order=asc')
    assert ids(b) == ['4', '1', '2', '5', '3'], ids(b)
    st, b = list_response(ss, 'sort=duration&order=desc')
    assert ids(b) == ['2', '1', '4', '3', '5'], ids(b)
    st, b = list_response(ss, 'sort=bandwidth&order=desc')
    assert ids(b) == ['3', '4', '2', '1', '5'], ids(b)
    st, b = list_response(ss, 'target_url=example.com')
    assert b['total'] == 4 and '4' not in ids(b)
    st, b = list_response(ss, 'api_name=Z')
    assert ids(b) == ['5']
    st, b = list_response(ss, 'start_date=2025-01-01T00:00:00.001Z&end_date=2025-01-01')
    assert ids(b) == ['3']
    st, b = list_response(ss, 'end_date=2025-01-01T00:00:00Z&order=asc')
    assert ids(b) == ['5', '1', '2']
    st, b = list_response(ss, 'limit=2&offset=1')
    assert ids(b) == ['3', '2'] and b['count'] == 2 and b['total'] == 5
    assert b['pagination'] == {'offset': 1, 'limit': 2, 'has_more': True, 'next_offset': 3}
    st, b = list_response(ss, 'limit=2&offset=3')
    assert b['pagination'] == {'offset': 3, 'limit': 2, 'has_more': False, 'next_offset': None}
    st, b = list_response(ss, 'offset=99')
    assert b['sessions'] == [] and b['count'] == 0 and b['total'] == 5 and not b['pagination']['has_more']
    st, b = list_response(ss, 'status=running&status=failed')
    assert st == 400 and b['error'] == INVALID
    # get
    assert get_response(ss, '00000001-0000-7000-8000-000000000000'.upper())[0] == 200
    assert get_response(ss, 'nope') == (400, {'error': 'Invalid session_id format'})
    assert get_response(ss, 'ABCDEF01-0000-7000-8000-000000000000')[1]['session_id'] == 'ABCDEF01-0000-7000-8000-000000000000'
    # strict comparison
    assert canon(parse_strict('{"a":true}')) != canon({'a': 1})
    assert canon(parse_strict('{"a":1,"b":2}')) != canon({'b': 2, 'a': 1})
    assert canon(parse_strict('{"d":45.2}')) == canon({'d': 45200 / 1000})
    assert 1005 / 1000 == 1.005
    return True


if __name__ == '__main__':
    _self_test()
    print('model self-test ok')
