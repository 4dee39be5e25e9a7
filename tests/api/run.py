#!/usr/bin/env python3
"""Runs the browserd API suite: the model's self-test, the contract tests, the live-session
tests and the crosscheck.

    python3 tests/api/run.py [-v] [-k PATTERN] [module ...]

    modules: test_contract   every rule of shared/spec/browser-sessions-api.md over HTTP
             test_live       sessions browserd runs itself (CDP endpoint, Chromium)
             test_liveview   the live view's routes: one 404 for every wrong token, the API route's rules
             test_crosscheck random sessions and queries against model.py
             test_stats      GET /browser_sessions/stats against the pages of the list
             test_dbcopy     `browserd db copy` from SQLite into PostgreSQL (with the
                             PostgreSQL suite only)
    env:     BROWSERD_TEST_STORE (sqlite, the default, or postgres: every daemon on a fresh
             PostgreSQL database, harness.py), BROWSERD_TEST_PG_ADMIN_URI,
             BROWSERD_BIN (default build/browserd), BROWSERD_CHROMIUM (default /usr/bin/chromium),
             CROSSCHECK_SEED, CROSSCHECK_QUERIES (3000), CROSSCHECK_SESSIONS (3000), STATS_SEED

The last line of the output is exactly `api: N passed, N failed`; the exit status is non-zero
when anything failed. Every test that did not pass counts as failed, including tests that
never ran because their module's setup (e.g. starting browserd) failed.
"""

import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

MODULES = ['test_contract', 'test_live', 'test_liveview', 'test_crosscheck', 'test_stats']
# `db copy` moves a SQLite store into PostgreSQL: it runs with the PostgreSQL suite
if os.environ.get('BROWSERD_TEST_STORE') == 'postgres':
    MODULES.append('test_dbcopy')


class Result(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = []
        self.setup_errors = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test)

    def addError(self, test, err):
        super().addError(test, err)
        if not isinstance(test, unittest.TestCase) and 'tearDown' in str(test):
            # tearDownModule / tearDownClass (e.g. browserd exiting non-zero after SIGTERM):
            # not attached to a test, so counted on its own. A failed setUp* already makes
            # every test of its module count as failed below.
            self.setup_errors.append(test)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('-k', action='append', default=None, help='only tests matching this substring pattern')
    ap.add_argument('modules', nargs='*', default=MODULES)
    args = ap.parse_args()

    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = ['*%s*' % k for k in args.k]
    suite = unittest.TestSuite()

    class ModelSelfTest(unittest.TestCase):
        def test_model_self_test(self):
            import model
            self.assertTrue(model._self_test())

    suite.addTests(loader.loadTestsFromTestCase(ModelSelfTest))
    for name in args.modules:
        suite.addTests(loader.loadTestsFromName(name))
    tests = list(iter_tests(suite))

    from harness import browserd_bin
    print('api suite: browserd = %s' % browserd_bin())
    t0 = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if args.verbose else 1,
                                     resultclass=Result)
    result = runner.run(suite)
    elapsed = time.monotonic() - t0

    passed = len(result.passed)
    # Every collected test that did not pass is a failure; module/class setup and teardown
    # errors (e.g. browserd exiting non-zero after SIGTERM) count too.
    failed = (len(tests) - passed) + len(result.setup_errors)
    print('api suite took %.1fs' % elapsed)
    print('api: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
