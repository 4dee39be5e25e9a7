"""Live sessions: records that browserd creates itself, seen through the API.

A session is a WebSocket connection to browserd's CDP endpoint (zone credentials as Basic
auth, like Puppeteer's `ws://brd-customer-<ID>-zone-<ZONE>:<PASSWORD>@host`), each one a fresh
headless Chromium. Pages come from a local HTTP server of the test. Covers: the record while
running, the navigation rules, how sessions end (client close, Browser.close, a failed last
navigation, DELETE, SIGTERM), DELETE's 204 and its tenancy.

Needs Chromium (browserd's default /usr/bin/chromium, or BROWSERD_CHROMIUM).
"""

import calendar
import http.server
import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Browserd, Client, WebSocket  # noqa: E402
from model import canon, parse_strict  # noqa: E402

UUID7 = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
TS = re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$')
FIELDS = ['session_id', 'api_name', 'status', 'target_url', 'end_url', 'navigations',
          'timestamp', 'duration', 'captcha', 'bandwidth', 'error']


class Pages(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.startswith('/redirect'):
            self.send_response(302)
            self.send_header('Location', '/after-redirect')
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        body = b'<!doctype html><html><body>page %s</body></html>' % self.path.encode()
        if self.path.startswith('/big'):
            body += b'<!--' + b'x' * 200000 + b'-->'
        self.send_response(200)
        self.send_header('Content-Type', 'text/html')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class F:
    d = None
    web = None
    base = None
    keys = {}
    zone = 'live_zone'
    password = None


def setUpModule():
    chromium = os.environ.get('BROWSERD_CHROMIUM', '/usr/bin/chromium')
    if not os.access(chromium, os.X_OK):
        raise AssertionError('live tests need Chromium at %s (set BROWSERD_CHROMIUM)' % chromium)
    F.web = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Pages)
    F.web.daemon_threads = True
    threading.Thread(target=F.web.serve_forever, daemon=True).start()
    F.base = 'http://127.0.0.1:%d' % F.web.server_address[1]
    d = Browserd()
    F.d = d
    try:
        d.add_customer('live')
        F.keys['live'] = d.add_key('live')
        F.password = d.add_zone('live', F.zone)
        d.add_customer('live_other')
        F.keys['other'] = d.add_key('live_other')
        d.add_zone('live_other', F.zone)  # same zone name, other customer
        # the pages come from 127.0.0.1: let the traffic proxy reach it
        d.start(cdp=True, extra=['--pool', '0', '--max-sessions', '4', '--allow-private', '127.0.0.1/32'])
    except BaseException:
        d.cleanup()
        F.web.shutdown()
        raise


def tearDownModule():
    try:
        if F.d is not None:
            F.d.close()
    finally:
        if F.web is not None:
            F.web.shutdown()
            F.web.server_close()


class Live(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.c = Client(F.d.port, F.keys['live'])
        self.sockets = []

    def tearDown(self):
        for ws in self.sockets:
            ws.send_close()
            ws.close()
        self.c.close()

    def open_session(self, d=None):
        d = d or F.d
        ws = WebSocket(d.cdp_port, 'brd-customer-live-zone-%s' % F.zone, F.password)
        self.sockets.append(ws)
        self.assertEqual(ws.status, 101, 'WebSocket upgrade refused: %s' % ws.head)
        sid = ws.cdp('Browser.getSessionId')['result']['sessionId']
        return ws, sid

    def page(self, ws, url='about:blank'):
        tid = ws.cdp('Target.createTarget', {'url': url})['result']['targetId']
        return ws.cdp('Target.attachToTarget', {'targetId': tid, 'flatten': True})['result']['sessionId']

    def settled_page(self, ws):
        """A new blank page, then a pause before it is used: whether a navigation right after
        a page opens is counted is test_navigation_right_after_opening_a_page's subject alone."""
        p = self.page(ws)
        time.sleep(1.5)
        return p

    def visible(self, sid):
        """Waits until the API knows the session (whether it does at once is
        test_record_visible_once_the_client_has_its_id's subject alone)."""
        deadline = time.monotonic() + 5
        while self.c.get('/browser_sessions/' + sid).status == 404 and time.monotonic() < deadline:
            time.sleep(0.02)
        return sid

    def record(self, sid, key=None):
        r = self.c.get('/browser_sessions/' + sid, key=key)
        self.assertEqual(r.status, 200, repr(r))
        pairs = parse_strict(r.text)
        self.assertEqual([k for k, _ in pairs[0][1]], FIELDS)
        return r.json()['session']

    def wait_for(self, sid, pred, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            s = self.record(sid)
            if pred(s):
                return s
            if time.monotonic() > deadline:
                self.fail('timed out waiting for %s; record: %r' % (what, s))
            time.sleep(0.1)

    def assertEnded(self, s, status, code):
        self.assertEqual(s['status'], status, s)
        self.assertIsNotNone(s['duration'], s)
        self.assertGreaterEqual(s['duration'], 0)
        self.assertLess(abs(s['duration'] * 1000 - round(s['duration'] * 1000)), 1e-6, 'duration not in ms: %r' % s)
        if code is None:
            self.assertIsNone(s['error'], s)
        else:
            self.assertEqual(s['error']['code'], code, s)
            self.assertIsInstance(s['error']['message'], str)

    # ---------------------------------------------------------------------------------------

    def test_running_record(self):
        t0 = int(time.time()) - 1
        ws, sid = self.open_session()
        t1 = int(time.time()) + 1
        self.assertRegex(sid, UUID7, 'sessions browserd creates have lowercase version 7 ids')
        s = self.record(sid)
        self.assertEqual(s['session_id'], sid)
        self.assertEqual(s['api_name'], F.zone)
        self.assertEqual(s['status'], 'running')
        self.assertIsNone(s['target_url'])
        self.assertIsNone(s['end_url'])
        self.assertEqual(s['navigations'], 0)
        self.assertIsNone(s['duration'])
        self.assertIsNone(s['error'])
        self.assertIn(s['captcha'], ['none', 'detected', 'solved', 'failed'])
        self.assertIs(type(s['bandwidth']), int)
        self.assertRegex(s['timestamp'], TS)
        ts = calendar.timegm(time.strptime(s['timestamp'], '%Y-%m-%dT%H:%M:%SZ'))
        self.assertTrue(t0 <= ts <= t1, 'timestamp %s not within the connection time' % s['timestamp'])
        # the same record in the list, by status, and by the uppercase id
        body = self.c.list('status=running').json()
        self.assertIn(canon(s), [canon(x) for x in body['sessions']])
        self.assertNotIn(sid, [x['session_id'] for x in self.c.list('status=finished').json()['sessions']])
        self.assertEqual(self.record(sid.upper()), s)
        # sorted by duration, running sessions (null) come after all others, in both orders
        for order in ['asc', 'desc']:
            durs = [x['duration'] for x in self.c.list('sort=duration&order=%s&limit=100' % order).json()['sessions']]
            self.assertIn(None, durs)
            self.assertTrue(all(x is None for x in durs[durs.index(None):]), '%s: %r' % (order, durs))

    def test_other_customer_cannot_see_or_delete(self):
        ws, sid = self.open_session()
        self.visible(sid)
        other = Client(F.d.port, F.keys['other'])
        try:
            r = other.get('/browser_sessions/' + sid)
            self.assertEqual((r.status, r.json()), (404, {'error': 'Session not found', 'session_id': sid}))
            r = other.delete('/browser_sessions/' + sid)
            self.assertEqual((r.status, r.json()), (404, {'error': 'Session not found', 'session_id': sid}))
            self.assertNotIn(sid, [x['session_id'] for x in other.list('limit=100').json()['sessions']])
        finally:
            other.close()
        self.assertEqual(self.record(sid)['status'], 'running')
        self.assertEqual(ws.cdp('Browser.getVersion').get('result', {}).get('product', '')[:6], 'Chrome')

    def test_delete_running_session(self):
        ws, sid = self.open_session()
        self.visible(sid)
        r = self.c.delete('/browser_sessions/' + sid)
        self.assertEqual(r.status, 204, repr(r))
        self.assertEqual(r.body, b'')
        self.assertTrue(ws.wait_closed(15), "the client's WebSocket was not closed")
        s = self.wait_for(sid, lambda s: s['status'] != 'running', 'the end of the session')
        self.assertEnded(s, 'failed', 'job_killed')
        r = self.c.delete('/browser_sessions/' + sid)
        self.assertEqual((r.status, r.json()), (409, {'error': 'Session is not running', 'session_id': sid}))
        self.assertIn(sid, [x['session_id'] for x in self.c.list('status=failed&limit=100').json()['sessions']])

    def test_delete_by_uppercase_id(self):
        ws, sid = self.open_session()
        self.visible(sid)
        r = self.c.delete('/browser_sessions/' + sid.upper())
        self.assertEqual(r.status, 204, repr(r))
        self.assertTrue(ws.wait_closed(15))
        self.assertEnded(self.wait_for(sid, lambda s: s['status'] != 'running', 'the end'), 'failed', 'job_killed')

    def test_navigation_rules(self):
        ws, sid = self.open_session()
        p = self.settled_page(ws)
        nav = lambda url: ws.cdp('Page.navigate', {'url': url}, session_id=p)  # noqa: E731

        def settle(n, target, end):
            return self.wait_for(sid, lambda s: (s['navigations'], s['target_url'], s['end_url']) == (n, target, end),
                                 'navigations=%d target=%s end=%s' % (n, target, end))

        # internal pages are not navigations
        nav('data:text/html,<p>hi</p>')
        nav('about:blank')
        time.sleep(0.5)
        settle(0, None, None)
        # the first real one sets target_url and end_url
        nav(F.base + '/first')
        settle(1, F.base + '/first', F.base + '/first')
        # same-document: not a navigation
        nav(F.base + '/first#section')
        time.sleep(0.5)
        settle(1, F.base + '/first', F.base + '/first')
        # a redirect chain is one navigation, with the final URL
        nav(F.base + '/redirect')
        settle(2, F.base + '/first', F.base + '/after-redirect')
        # a reload counts
        ws.cdp('Page.reload', session_id=p)
        settle(3, F.base + '/first', F.base + '/after-redirect')
        # another page (tab) counts too, and end_url follows the last navigation anywhere
        p2 = self.settled_page(ws)
        ws.cdp('Page.navigate', {'url': F.base + '/second-tab'}, session_id=p2)
        settle(4, F.base + '/first', F.base + '/second-tab')
        # a failed navigation counts, with the attempted URL
        failing = 'http://127.0.0.1:1/unreachable'
        nav(failing)
        s = settle(5, F.base + '/first', failing)
        self.assertEqual(s['status'], 'running')
        # the client ends the session after a failed last navigation: page_navigated_error
        ws.send_close()
        self.assertTrue(ws.wait_closed(15))
        s = self.wait_for(sid, lambda s: s['status'] != 'running', 'the end of the session')
        self.assertEnded(s, 'failed', 'page_navigated_error')
        self.assertIn('net::ERR_', s['error']['message'])
        self.assertIn(failing, s['error']['message'])
        self.assertEqual((s['navigations'], s['end_url']), (5, failing))

    def test_client_close_after_success_is_finished(self):
        ws, sid = self.open_session()
        p = self.settled_page(ws)
        ws.cdp('Page.navigate', {'url': F.base + '/ok'}, session_id=p)
        self.wait_for(sid, lambda s: s['navigations'] == 1, 'one navigation')
        bw = self.record(sid)['bandwidth']
        ws.send_close()
        self.assertTrue(ws.wait_closed(15))
        s = self.wait_for(sid, lambda s: s['status'] != 'running', 'the end of the session')
        self.assertEnded(s, 'finished', None)
        self.assertEqual((s['target_url'], s['end_url']), (F.base + '/ok', F.base + '/ok'))
        self.assertGreaterEqual(s['bandwidth'], bw)

    def test_bandwidth_counts_the_traffic(self):
        ws, sid = self.open_session()
        p = self.settled_page(ws)
        before = self.record(sid)['bandwidth']
        ws.cdp('Page.navigate', {'url': F.base + '/big'}, session_id=p)
        s = self.wait_for(sid, lambda s: s['bandwidth'] >= before + 200000,
                          'bandwidth to grow by the 200 kB page', timeout=10)
        self.assertIs(type(s['bandwidth']), int)
        ws.send_close()
        self.assertTrue(ws.wait_closed(15))
        end = self.wait_for(sid, lambda s: s['status'] != 'running', 'the end')
        self.assertGreaterEqual(end['bandwidth'], s['bandwidth'])
        # sort=bandwidth puts it before the sessions that loaded less
        ids = [x['session_id'] for x in self.c.list('sort=bandwidth&order=desc&limit=100').json()['sessions']]
        bws = [x['bandwidth'] for x in self.c.list('sort=bandwidth&order=desc&limit=100').json()['sessions']]
        self.assertEqual(bws, sorted(bws, reverse=True))
        self.assertIn(sid, ids)

    def test_browser_close_after_success_is_finished(self):
        ws, sid = self.open_session()
        p = self.settled_page(ws)
        ws.cdp('Page.navigate', {'url': F.base + '/closing'}, session_id=p)
        self.wait_for(sid, lambda s: s['navigations'] == 1, 'one navigation')
        ws.send_text('{"id":99,"method":"Browser.close","params":{}}')
        self.assertTrue(ws.wait_closed(15))
        s = self.wait_for(sid, lambda s: s['status'] != 'running', 'the end of the session')
        self.assertEnded(s, 'finished', None)

    def test_record_visible_once_the_client_has_its_id(self):
        # the client has its session id (Browser.getSessionId): the API must know it too,
        # or e.g. an immediate DELETE answers 404 for a running session
        misses = []
        for i in range(6):
            ws, sid = self.open_session()
            r = self.c.get('/browser_sessions/' + sid)
            if r.status != 200:
                misses.append('trial %d: GET right after Browser.getSessionId -> %d %s' % (i, r.status, r.text))
            ws.send_close()
            ws.wait_closed(10)
        self.assertEqual(misses, [])

    def test_navigation_right_after_opening_a_page(self):
        # Puppeteer's `page = await browser.newPage(); await page.goto(url)`, and a tab opened
        # directly with a URL: both first navigations commit right after the page appears and
        # must be counted like any other. Repeated, because a race shows only sometimes.
        misses = []
        for i in range(3):
            ws, sid = self.open_session()
            p = self.page(ws)  # no pause
            ws.cdp('Page.navigate', {'url': F.base + '/right-away-%d' % i}, session_id=p)
            ws.cdp('Target.createTarget', {'url': F.base + '/new-tab-%d' % i})
            deadline = time.monotonic() + 4
            while True:
                s = self.record(sid)
                if s['navigations'] == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if s['navigations'] != 2:
                misses.append('trial %d: navigations=%d target_url=%s end_url=%s'
                              % (i, s['navigations'], s['target_url'], s['end_url']))
            ws.send_close()
            ws.wait_closed(10)
        self.assertEqual(misses, [], 'navigations right after a page opened were not counted '
                                     '(expected 2 per trial: /right-away-N and /new-tab-N)')

    def test_invalid_json_is_cdp_error(self):
        ws, sid = self.open_session()
        ws.send_text('{not json')
        self.assertTrue(ws.wait_closed(10))
        self.assertEnded(self.wait_for(sid, lambda s: s['status'] != 'running', 'the end'), 'failed', 'cdp_error')

    def test_message_over_the_limit_is_1009_and_cdp_error(self):
        # a frame that announces 256 MiB + 1: refused from its header, before a byte of it is
        # buffered (docs/reliability.md, "Huge input")
        ws, sid = self.open_session()
        n = (256 << 20) + 1
        ws.sock.sendall(bytes([0x81, 0x80 | 127]) + n.to_bytes(8, 'big') + os.urandom(4) + b'{"id":1')
        self.assertTrue(ws.wait_closed(10))
        self.assertIsInstance(ws.closed, tuple, 'no close frame: %r' % (ws.closed,))
        self.assertEqual(ws.closed[0], 1009, repr(ws.closed))
        self.assertEnded(self.wait_for(sid, lambda s: s['status'] != 'running', 'the end'), 'failed', 'cdp_error')

    def test_credentials_over_the_limit_are_403(self):
        # 512 bytes decoded at most: the real password with more after it is refused as a whole,
        # never cut to what fits
        before = self.c.list('limit=1').json()['total']
        ws = WebSocket(F.d.cdp_port, 'brd-customer-live-zone-%s' % F.zone, F.password + 'p' * 600)
        self.sockets.append(ws)
        self.assertEqual(ws.status, 403, ws.head)
        ws = WebSocket(F.d.cdp_port, 'brd-customer-live-zone-%s' % F.zone + '-x' * 300, F.password)
        self.sockets.append(ws)
        self.assertEqual(ws.status, 403, ws.head)
        self.assertEqual(self.c.list('limit=1').json()['total'], before, 'a refused connection was recorded')

    def test_browser_crash_is_browser_disconnected(self):
        ws, sid = self.open_session()
        ws.send_text('{"id":7,"method":"Browser.crash","params":{}}')
        self.assertTrue(ws.wait_closed(15))
        self.assertEnded(self.wait_for(sid, lambda s: s['status'] != 'running', 'the end'), 'failed',
                         'browser_disconnected')

    def test_sigterm_ends_running_sessions_as_worker_disconnect(self):
        with Browserd() as d:
            d.add_customer('live')
            key = d.add_key('live')
            pw = d.add_zone('live', F.zone)
            d.start(cdp=True, extra=['--pool', '0'])
            ws = WebSocket(d.cdp_port, 'brd-customer-live-zone-%s' % F.zone, pw)
            self.sockets.append(ws)
            self.assertEqual(ws.status, 101)
            sid = ws.cdp('Browser.getSessionId')['result']['sessionId']
            self.assertEqual(d.stop(), 0)  # SIGTERM (a drain), then SIGTERM (at once)
            self.assertTrue(ws.wait_closed(5), 'WebSocket still open after browserd exited')
            # no Chromium of this daemon survives it
            for pid in re.findall(r'chromium_pid=(\d+)', d.stderr_text()):
                self.assertFalse(os.path.exists('/proc/%s' % pid) and 'chrom' in open('/proc/%s/comm' % pid).read(),
                                 'chromium %s still running after browserd stopped' % pid)
            d.start()  # CDP endpoint off: only the record is looked at
            r = Client(d.port, key).get('/browser_sessions/' + sid)
            self.assertEqual(r.status, 200, repr(r))
            self.assertEnded(r.json()['session'], 'failed', 'worker_disconnect')



class LiveLimits(Live):
    """A daemon of its own with short limits: --idle-timeout 2 --session-timeout 4
    --max-sessions 2 --queue-timeout 1."""
    tests_from_live = False
    d2 = None

    @classmethod
    def setUpClass(cls):
        d = Browserd()
        try:
            d.add_customer('live')
            cls.key = d.add_key('live')
            cls.pw = d.add_zone('live', F.zone)
            d.start(cdp=True, extra=['--pool', '0', '--max-sessions', '2', '--idle-timeout', '2',
                                     '--session-timeout', '4', '--queue-timeout', '1'])
        except BaseException:
            d.cleanup()
            raise
        cls.d2 = d

    @classmethod
    def tearDownClass(cls):
        if cls.d2 is not None:
            cls.d2.close()

    def setUp(self):
        self.c = Client(self.d2.port, self.key)
        self.sockets = []

    def connect(self):
        ws = WebSocket(self.d2.cdp_port, 'brd-customer-live-zone-%s' % F.zone, self.pw)
        self.sockets.append(ws)
        return ws

    def open_session(self, d=None):
        ws = self.connect()
        self.assertEqual(ws.status, 101, ws.head)
        return ws, ws.cdp('Browser.getSessionId')['result']['sessionId']

    def test_inactivity_timeout(self):
        ws, sid = self.open_session()
        t0 = time.monotonic()
        self.assertTrue(ws.wait_closed(10), 'an idle session was not closed')
        self.assertLess(time.monotonic() - t0, 10)
        s = self.wait_for(sid, lambda s: s['status'] != 'running', 'the end')
        self.assertEnded(s, 'failed', 'inactivity_timeout')
        self.assertGreaterEqual(s['duration'], 2, s)

    def test_session_timeout(self):
        ws, sid = self.open_session()
        # client -> browser traffic every 0.25 s without waiting for answers (a slow answer on a
        # loaded machine must not turn this into an inactivity timeout)
        deadline = time.monotonic() + 15
        i = 0
        while time.monotonic() < deadline:
            try:
                ws.send_text('{"id":%d,"method":"Browser.getVersion","params":{}}' % (1000 + i))
            except OSError:
                break
            i += 1
            time.sleep(0.25)
            if self.record(sid)['status'] != 'running':
                break
        s = self.wait_for(sid, lambda s: s['status'] != 'running', 'the end (--session-timeout 4)')
        self.assertEnded(s, 'failed', 'session_timeout')
        self.assertGreaterEqual(s['duration'], 4, s)
        self.assertLess(s['duration'], 10, s)
        self.assertTrue(ws.wait_closed(10))

    def test_client_timeout(self):
        def n_client_timeouts():
            body = self.c.list('status=failed&limit=100').json()
            return sum(1 for x in body['sessions'] if x['error']['code'] == 'client_timeout')
        before = n_client_timeouts()
        a, _ = self.open_session()
        b, _ = self.open_session()
        waiting = self.connect()  # both browsers busy: waits in the queue, then gives up
        a.cdp('Browser.getVersion')
        b.cdp('Browser.getVersion')
        self.assertEqual(waiting.status, 503, waiting.head)
        deadline = time.monotonic() + 5
        while n_client_timeouts() != before + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(n_client_timeouts(), before + 1, 'no failed session with client_timeout was recorded')
        failed = [x for x in self.c.list('status=failed&limit=100').json()['sessions']
                  if x['error']['code'] == 'client_timeout']
        self.assertEnded(failed[0], 'failed', 'client_timeout')
        self.assertEqual(failed[0]['api_name'], F.zone)


# the Live tests run on the module daemon only
for _name in [n for n in dir(Live) if n.startswith('test_')]:
    if not hasattr(LiveLimits, _name) or getattr(LiveLimits, _name) is getattr(Live, _name):
        setattr(LiveLimits, _name, None)


if __name__ == '__main__':
    unittest.main()
