"""scripts/run.sh as a new user runs it: in a directory of their own, with serve options after
it; what it prints is read like a person reads it, and used: the API URL with the API key, the
CDP connection string with a WebSocket client (Browser.getVersion through browserd to
Chromium) and pasted into puppeteer.connect, /json/version. Then it is stopped (SIGTERM: run.sh became browserd) and run again."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pkg_support import (REPO, TAG_VAR, free_port, http_get, http_json, kill_tagged, new_tag, sealed,  # noqa: E402
                         stop, wait_for)

RUN_SH = os.path.join(REPO, 'scripts', 'run.sh')
BANNER = re.compile(r'^(browserd API|dashboard|API key|CDP endpoint|credentials|try):\s+(.*)$')


class RunSh(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='browserd-runsh-')
        cls.tag = new_tag()

    @classmethod
    def tearDownClass(cls):
        kill_tagged(cls.tag)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def start(self, *args, expect_exit=None):
        """Runs scripts/run.sh ARGS in the test's directory; returns (proc, banner dict, stderr path)."""
        err = os.path.join(self.dir, 'stderr-%d' % time.monotonic_ns())
        env = dict(os.environ, TMPDIR=os.path.join(self.dir, 'tmp'))
        env[TAG_VAR] = self.tag
        for k in list(env):
            if k.startswith('BROWSERD_') and k != TAG_VAR:
                del env[k]
        os.makedirs(env['TMPDIR'], exist_ok=True)
        with open(err, 'w') as e:
            proc = subprocess.Popen(sealed([RUN_SH] + list(args), self.dir), cwd=self.dir, env=env,
                                    stdout=subprocess.PIPE, stderr=e, text=True, start_new_session=True)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        if expect_exit is not None:
            out, _ = proc.communicate(timeout=600)
            self.assertEqual(proc.returncode, expect_exit, open(err).read())
            return proc, out, open(err).read()
        banner = {}
        # the first run builds build-release: minutes on a fresh clone
        while 'try' not in banner:
            line = proc.stdout.readline()
            if not line:
                self.fail('run.sh ended before printing its banner (exit %s): %s' % (proc.wait(), open(err).read()))
            m = BANNER.match(line.rstrip('\n'))
            if m:
                banner[m.group(1)] = m.group(2)
            elif line.startswith(' ' * 15):
                banner.setdefault('notes', []).append(line.strip())
        return proc, banner, err

    def api_of(self, banner):
        m = re.match(r'^http://(127\.0\.0\.1):(\d+)/browser_sessions$', banner['browserd API'])
        self.assertTrue(m, banner)
        return int(m.group(2))

    def wait_up(self, proc, api, err):
        def up():
            if proc.poll() is not None:
                self.fail('browserd exited %s: %s' % (proc.returncode, open(err).read()[-2000:]))
            return http_get('http://127.0.0.1:%d/healthz' % api, timeout=1)[0] == 200
        wait_for(up, 30, 'the printed API to answer')

    def use_cdp(self, endpoint):
        """Connects with the printed ws:// string as a client library would; a CDP round trip."""
        from harness import WebSocket  # tests/api/harness.py
        m = re.match(r'^ws://([^:@]+):([^@]+)@127\.0\.0\.1:(\d+)$', endpoint)
        self.assertTrue(m, endpoint)
        user, password, port = m.group(1), m.group(2), int(m.group(3))
        status, headers, body = http_get('http://127.0.0.1:%d/json/version' % port)
        self.assertEqual(status, 200, body)
        self.assertIn(b'webSocketDebuggerUrl', body)
        ws = WebSocket(port, user, password)
        self.assertEqual(ws.status, 101, ws.head)
        self.assertIn('Chrome/', ws.cdp('Browser.getVersion')['result']['product'])
        ws.send_close()
        ws.wait_closed()
        ws.close()

    def use_puppeteer(self, endpoint):
        """The printed string pasted into puppeteer.connect, as the README shows (puppeteer-core of
        tests/e2e, installed from its lock file when missing)."""
        e2e = os.path.join(REPO, 'tests', 'e2e')
        if not os.path.isdir(os.path.join(e2e, 'node_modules', 'puppeteer-core')):
            subprocess.run(['npm', 'ci', '--no-audit', '--no-fund', '--loglevel=error'], cwd=e2e, check=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        script = ("const puppeteer = require(process.argv[1]);"
                  "(async () => {"
                  "  const browser = await puppeteer.connect({ browserWSEndpoint: process.argv[2] });"
                  "  const page = await browser.newPage();"
                  "  const two = await page.evaluate(() => 1 + 1);"
                  "  console.log(JSON.stringify({ version: await browser.version(), two }));"
                  "  await browser.close();"
                  "})().catch((e) => { console.error(e); process.exit(1); });")
        p = subprocess.run(['node', '-e', script, os.path.join(e2e, 'node_modules', 'puppeteer-core'), endpoint],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"two":2', p.stdout)

    def test_1_fresh_database_with_serve_options(self):
        api, cdp = free_port(), free_port()
        proc, banner, err = self.start('--db', 'first.db', '--api-listen', '127.0.0.1:%d' % api,
                                       '--cdp-listen', '127.0.0.1:%d' % cdp, '--pool', '1', '--max-sessions', '5',
                                       '--idle-timeout=120')
        self.assertEqual(self.api_of(banner), api)
        key = banner['API key']
        self.assertRegex(key, r'^[0-9a-f]{64}$')
        self.assertRegex(banner['CDP endpoint'],
                         r'^ws://brd-customer-default-zone-scraping_browser1:[a-z0-9]{24}@127\.0\.0\.1:%d$' % cdp)
        self.assertIn("curl -H 'Authorization: Bearer %s' http://127.0.0.1:%d/browser_sessions" % (key, api),
                      banner['try'])
        self.wait_up(proc, api, err)
        status, body = http_json(banner['browserd API'], key)
        self.assertEqual((status, body['total']), (200, 0))
        # the dashboard where the banner says, a page without a key
        self.assertEqual(banner['dashboard'], 'http://127.0.0.1:%d/ (sign in with the API key)' % api)
        status, headers, page = http_get(banner['dashboard'].split()[0])
        self.assertEqual(status, 200)
        self.assertIn(b'<title>browserd: sessions</title>', page)
        self.use_cdp(banner['CDP endpoint'])
        self.use_puppeteer(banner['CDP endpoint'])
        listed = wait_for(lambda: len(http_json(banner['browserd API'] + '?status=finished', key)[1]['sessions']) == 2,
                          15, 'both sessions to be recorded')
        self.assertTrue(listed)
        # the serve options went through to browserd
        self.assertRegex(open(err).read(), r'event=listening cdp=ws://127\.0\.0\.1:%d pool=1 max_sessions=5' % cdp)
        creds = os.path.join(self.dir, 'first.db.credentials')
        self.assertEqual(banner['credentials'].split()[0], 'first.db.credentials')
        self.assertEqual(stat.S_IMODE(os.stat(creds).st_mode), 0o600)
        self.assertEqual(stop(proc), 0)
        RunSh.first = banner

    def test_2_again_the_same_credentials_and_a_wildcard_address(self):
        first = getattr(RunSh, 'first', None)
        if not first:
            self.skipTest('needs test_1')
        api, cdp = free_port(), free_port()
        proc, banner, err = self.start('--db=first.db', '--api-listen=0.0.0.0:%d' % api, '--cdp-listen',
                                       '0.0.0.0:%d' % cdp, '--pool', '0')
        self.assertEqual(banner['API key'], first['API key'])
        password = first['CDP endpoint'].split(':')[2].split('@')[0]
        # 0.0.0.0 is printed as the address a client on this machine uses
        self.assertEqual(banner['CDP endpoint'],
                         'ws://brd-customer-default-zone-scraping_browser1:%s@127.0.0.1:%d' % (password, cdp))
        self.assertEqual(self.api_of(banner), api)
        self.wait_up(proc, api, err)
        self.use_cdp(banner['CDP endpoint'])
        keys = subprocess.run([os.path.join(REPO, 'build-release', 'browserd'), '--db',
                               os.path.join(self.dir, 'first.db'), 'key', 'list', 'default'],
                              stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()
        self.assertEqual(len(keys), 1, 'a second start made no new key: %s' % keys)
        self.assertEqual(stop(proc), 0)

    def test_3_a_revoked_key_is_replaced(self):
        if not getattr(RunSh, 'first', None):
            self.skipTest('needs test_1')
        b = [os.path.join(REPO, 'build-release', 'browserd'), '--db', os.path.join(self.dir, 'first.db')]
        key_id = subprocess.run(b + ['key', 'list', 'default'], stdout=subprocess.PIPE, text=True,
                                check=True).stdout.split('\t')[0]
        subprocess.run(b + ['key', 'revoke', key_id], stdout=subprocess.PIPE, check=True)
        api = free_port()
        proc, banner, err = self.start('--db', 'first.db', '--api-listen', '127.0.0.1:%d' % api, '--cdp-listen', 'off')
        self.assertNotEqual(banner['API key'], RunSh.first['API key'])
        self.assertEqual(banner['CDP endpoint'], 'off (--cdp-listen off)')
        self.wait_up(proc, api, err)
        self.assertEqual(http_json(banner['browserd API'], banner['API key'])[0], 200)
        self.assertEqual(http_json(banner['browserd API'], RunSh.first['API key'])[0], 401)
        self.assertEqual(stop(proc), 0)
        # and the new one is the one kept
        proc, again, err = self.start('--db', 'first.db', '--api-listen', '127.0.0.1:%d' % api, '--cdp-listen', 'off')
        self.assertEqual(again['API key'], banner['API key'])
        self.wait_up(proc, api, err)
        self.assertEqual(stop(proc), 0)

    def test_4_a_database_it_did_not_create(self):
        b = [os.path.join(REPO, 'build-release', 'browserd'), '--db', os.path.join(self.dir, 'other.db')]
        if not os.path.exists(b[0]):
            self.skipTest('needs the release build that test_1 makes')
        subprocess.run(b + ['customer', 'add', 'default'], stdout=subprocess.PIPE, check=True)
        api, cdp = free_port(), free_port()
        proc, banner, err = self.start('--db', 'other.db', '--api-listen', '127.0.0.1:%d' % api,
                                       '--cdp-listen', '127.0.0.1:%d' % cdp)
        self.assertEqual(banner['CDP endpoint'], 'ws://brd-customer-default-zone-ZONE:PASSWORD@127.0.0.1:%d' % cdp)
        notes = ' '.join(banner.get('notes', []))
        self.assertIn('zone add default ZONE', notes)
        self.wait_up(proc, api, err)
        self.assertEqual(http_json(banner['browserd API'], banner['API key'])[0], 200)
        # what it says to do gives a working connection string
        password = subprocess.run(b + ['zone', 'add', 'default', 'myzone'], stdout=subprocess.PIPE, text=True,
                                  check=True).stdout.strip()
        self.use_cdp('ws://brd-customer-default-zone-myzone:%s@127.0.0.1:%d' % (password, cdp))
        self.assertEqual(stop(proc), 0)

    def test_5_usage_errors(self):
        _, out, err = self.start('--db', 'x.db', '--pool', expect_exit=2)
        self.assertIn('--pool needs a value', err)
        _, out, err = self.start('--db', 'x.db', 'serve', expect_exit=2)
        self.assertIn("unexpected 'serve'", err)
        # an option browserd does not know: browserd's own usage error, after the banner
        _, out, err = self.start('--db', 'x.db', '--no-such-option', '1', expect_exit=2)
        self.assertIn("unknown or incomplete option '--no-such-option'", err)
        _, out, err = self.start('--help', expect_exit=0)
        self.assertIn('Usage: scripts/run.sh', out)


def load_tests(loader, tests, pattern):
    return loader.loadTestsFromTestCase(RunSh)
