"""`browserd db copy --from PATH --to URI`: a node's SQLite history moved into PostgreSQL.

A SQLite source with two customers (keys, one revoked; zones, one with an upstream proxy)
and thousands of random sessions (test_crosscheck's generator) serves a set of list queries;
after the copy, a daemon on the PostgreSQL database must answer the very same bodies with
the same API keys. Also: a copy killed midway and started again goes on from its staging; a
copy that meets a session of the same id with other content is refused with nothing written.
"""

import os
import random
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Browserd, Client  # noqa: E402
from test_crosscheck import API_NAMES_A, API_NAMES_B, Gen  # noqa: E402

N_SESSIONS = int(os.environ.get('DBCOPY_SESSIONS') or 4000)
QUERIES = ['limit=1000', 'limit=1000&order=asc', 'limit=1000&status=failed', 'limit=1000&sort=duration',
           'limit=1000&sort=bandwidth&order=asc', 'limit=50&offset=100', 'limit=1000&domain=example.com',
           'limit=1000&api_name=scraping_browser1', 'limit=1000&status=running']


def answers(port, keys):
    """Every query's status and body, for every key."""
    out = {}
    for who, key in keys.items():
        c = Client(port, key)
        for q in QUERIES:
            r = c.list(q)
            out[(who, q)] = (r.status, r.text)
        c.close()
    return out


def copy(src, dst, check=True, env=None, **kw):
    p = subprocess.run([harness.browserd_bin(), 'db', 'copy', '--from', src.db, '--to', dst.db],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300,
                       env=dict(os.environ, **(env or {})), **kw)
    if check and p.returncode != 0:
        raise harness.HarnessError('db copy -> %d\nstdout: %s\nstderr: %s' % (p.returncode, p.stdout, p.stderr))
    return p


def summary(p):
    """The summary lines as {table: (read, new)}."""
    out = {}
    for line in p.stdout.splitlines():
        name, total, new = line.split('\t')
        out[name] = (int(total), int(new.split()[0]))
    return out


class TestDbCopy(unittest.TestCase):
    src = None

    @classmethod
    def setUpClass(cls):
        gen = Gen(random.Random(7))
        n_a = N_SESSIONS * 3 // 4
        cls.records = {'a': [gen.session(API_NAMES_A) for _ in range(n_a)],
                       'b': [gen.session(API_NAMES_B) for _ in range(N_SESSIONS - n_a)]}
        d = Browserd(store='sqlite')
        cls.src = d
        try:
            cls.keys = {}
            for who, ss in cls.records.items():
                cid, key = d.new_customer([s.import_dict() for s in ss], customer_id='dc_' + who)
                cls.keys[who] = key
            # a revoked key and an upstream proxy travel too
            d.add_key('dc_a')
            d.revoke_key(d.list_keys('dc_a')[-1][0])
            d.add_zone('dc_a', 'zone1')
            d.add_zone('dc_b', 'zone1')
            d.cli('zone', 'set-proxy', 'dc_a', 'zone1', 'http://u:p@127.0.0.1:3128')
            d.start()
            cls.want = answers(d.port, cls.keys)
            d.stop()
        except BaseException:
            d.cleanup()
            cls.src = None
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.src is not None:
            cls.src.cleanup()

    def assert_same_answers(self, dst):
        dst.start()
        try:
            got = answers(dst.port, self.keys)
        finally:
            dst.stop()
        for k, (status, body) in self.want.items():
            self.assertEqual(got[k][0], status, 'status of %s %s' % k)
            self.assertEqual(got[k][1], body, 'body of %s %s' % k)

    def test_copy_answers_the_same_lists(self):
        with Browserd(store='postgres') as dst:
            p = copy(self.src, dst)
            s = summary(p)
            self.assertEqual(s['customers'], (2, 2))
            self.assertEqual(s['keys'], (3, 3))
            self.assertEqual(s['zones'], (2, 2))
            self.assertEqual(s['sessions'], (N_SESSIONS, N_SESSIONS))
            password = urllib.parse.urlsplit(dst.db).password
            self.assertNotIn(password, p.stderr + p.stdout, 'the password printed')
            self.assertEqual(dst.list_keys('dc_a'), self.src.list_keys('dc_a'))
            self.assertEqual(harness.pg_sql("SELECT upstream_proxy FROM zones WHERE customer_id = 'dc_a'",
                                            dst.pg_db).strip(), 'http://u:p@127.0.0.1:3128')
            self.assert_same_answers(dst)
            # again: everything is there with the same content, nothing new
            s = summary(copy(self.src, dst))
            self.assertEqual(s['sessions'], (N_SESSIONS, 0))
            self.assertEqual(s['keys'], (3, 0))

    def test_interrupted_copy_goes_on_where_it_stopped(self):
        for attempt in range(3):
            with Browserd(store='postgres') as dst:
                p = subprocess.Popen([harness.browserd_bin(), 'db', 'copy', '--from', self.src.db, '--to', dst.db],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=dict(os.environ, BROWSERD_COPY_CHUNK='20'))
                staged = 0
                deadline = time.monotonic() + 60
                while p.poll() is None and time.monotonic() < deadline:
                    try:
                        staged = int(harness.pg_sql('SELECT coalesce(sum(staged), 0) FROM browserd_copy_runs',
                                                    dst.pg_db))
                    except harness.HarnessError:
                        staged = 0  # the copy has not made its staging tables yet
                    if staged >= 200:
                        p.send_signal(signal.SIGKILL)
                        break
                    time.sleep(0.01)
                p.wait()
                p.stdout.close()
                p.stderr.close()
                if p.returncode != -signal.SIGKILL:
                    continue  # it finished before it could be killed: again, on a new database
                # nothing is visible yet: the sessions are only staged
                self.assertEqual(harness.pg_sql('SELECT count(*) FROM sessions', dst.pg_db).strip(), '0')
                self.assertEqual(harness.pg_sql('SELECT count(*) FROM customers', dst.pg_db).strip(), '0')
                left = int(harness.pg_sql('SELECT staged FROM browserd_copy_runs', dst.pg_db))
                self.assertGreater(left, 0)
                q = copy(self.src, dst)
                self.assertIn('%d sessions were staged by the earlier run' % left, q.stderr)
                self.assertEqual(summary(q)['sessions'], (N_SESSIONS, N_SESSIONS))
                self.assertEqual(harness.pg_sql("SELECT to_regclass('browserd_copy_runs') IS NULL",
                                                dst.pg_db).strip(), 't')
                self.assert_same_answers(dst)
                return
        self.fail('the copy always finished before it could be interrupted')

    def test_conflicting_copy_is_refused_with_nothing_written(self):
        with Browserd(store='postgres') as dst:
            # the destination has customer dc_a already, and one of its sessions with another api_name
            dst.add_customer('dc_a')
            other = self.records['a'][5]
            changed = other.import_dict()
            changed['api_name'] = 'another_zone'
            dst.import_sessions('dc_a', [changed])
            before = harness.pg_sql('SELECT count(*), max(seq) FROM sessions', dst.pg_db)
            p = copy(self.src, dst, check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn('refused, nothing was written', p.stderr)
            self.assertIn(other.session_id, p.stderr)
            self.assertEqual(p.stdout, '')
            self.assertEqual(harness.pg_sql('SELECT count(*), max(seq) FROM sessions', dst.pg_db), before)
            self.assertEqual(harness.pg_sql('SELECT count(*) FROM customers', dst.pg_db).strip(), '1')
            self.assertEqual(harness.pg_sql('SELECT count(*) FROM api_keys', dst.pg_db).strip(), '0')
            self.assertEqual(harness.pg_sql("SELECT to_regclass('browserd_copy_runs') IS NULL",
                                            dst.pg_db).strip(), 't')

    def test_copy_needs_an_existing_sqlite_source_and_a_postgres_destination(self):
        with Browserd(store='postgres') as dst:
            p = subprocess.run([harness.browserd_bin(), 'db', 'copy', '--from', '/nonexistent/x.db', '--to', dst.db],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(p.returncode, 1)
            self.assertIn('No such file', p.stderr)
            self.assertFalse(os.path.exists('/nonexistent/x.db'))
            p = subprocess.run([harness.browserd_bin(), 'db', 'copy', '--from', self.src.db, '--to', '/tmp/x.db'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(p.returncode, 2)
            self.assertIn('--to is a PostgreSQL URI', p.stderr)


if __name__ == '__main__':
    unittest.main()
