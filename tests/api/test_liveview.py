"""The live view's routes seen from outside without a session to watch (docs/liveview.md):
every wrong token is one and the same 404 on the CDP listener (page and WebSocket), the
viewer's assets are served without a token, `--live-view off` makes every /live path a 404,
and POST /browser_sessions/{id}/live keeps the API's rules (401 first, 400, 404, 405).
The views themselves (frames, input, the end) are tests/e2e/liveview.test.js's."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Browserd, Client  # noqa: E402

TOKEN = 'ab' * 32
UNKNOWN = '0192f5e8-7b3c-7def-8a12-000000000001'
UPGRADE = [('Connection', 'Upgrade'), ('Upgrade', 'websocket'), ('Sec-WebSocket-Version', '13'),
           ('Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==')]


class LiveViewRoutes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Browserd()
        cls.d.add_customer('lv')
        cls.key = cls.d.add_key('lv')
        cls.d.start(cdp=True, extra=['--pool', '0'])
        cls.cdp = Client(cls.d.cdp_port)
        cls.api = Client(cls.d.port, cls.key)

    @classmethod
    def tearDownClass(cls):
        cls.cdp.close()
        cls.api.close()
        cls.d.close()

    def test_wrong_tokens_are_one_and_the_same_404(self):
        answers = set()
        for path in ['/live/' + TOKEN, '/live/' + TOKEN.upper(), '/live/short', '/live/' + TOKEN + '/x', '/live/',
                     '/live']:
            r = self.cdp.request('GET', path, auth=Client.NO_AUTH)
            self.assertEqual(r.status, 404, path)
            answers.add(r.body)
        r = self.cdp.request('GET', '/live/%s/ws' % TOKEN, auth=Client.NO_AUTH, headers=UPGRADE)
        self.assertEqual(r.status, 404)
        answers.add(r.body)
        self.assertEqual(len(answers), 1, answers)

    def test_assets_need_no_token(self):
        for path, media in [('/live/viewer.js', 'text/javascript'), ('/live/viewer.css', 'text/css')]:
            r = self.cdp.request('GET', path, auth=Client.NO_AUTH)
            self.assertEqual(r.status, 200, path)
            self.assertTrue(r.header('content-type').startswith(media), r.header('content-type'))
            self.assertEqual(r.header('referrer-policy'), 'no-referrer')

    def test_the_api_route_keeps_the_api_rules(self):
        path = '/browser_sessions/%s/live' % UNKNOWN
        self.assertEqual(self.api.request('POST', path, auth=Client.NO_AUTH).status, 401)
        self.assertEqual(self.api.request('POST', path).status, 404)
        self.assertEqual(self.api.request('POST', '/browser_sessions/nope/live').status, 400)
        r = self.api.request('GET', path)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header('allow'), 'POST')

    def test_off_means_404_everywhere(self):
        with Browserd() as d:
            d.start(cdp=True, extra=['--pool', '0', '--live-view', 'off'])
            c = Client(d.cdp_port)
            try:
                for path in ['/live/viewer.js', '/live/viewer.css', '/live/' + TOKEN]:
                    self.assertEqual(c.request('GET', path, auth=Client.NO_AUTH).status, 404, path)
            finally:
                c.close()


if __name__ == '__main__':
    unittest.main()
