#!/usr/bin/env python3
"""The packaging suite: what a person installing or trying browserd meets.

    python3 tests/packaging/run.py [-v] [-k PATTERN]

    test_packaging  the man page against `browserd --help`, the example environment file,
                    `meson install` (as the Dockerfile runs it, and into a prefix that
                    `systemd-analyze verify` checks), the unit's directives, the sysusers entry,
                    the Dockerfile (its sources, its scripts, its runtime packages against the
                    binary's libraries), sd_notify of a running daemon, Chromium's sandbox when
                    browserd runs unprivileged
    test_run_sh     scripts/run.sh as a new user runs it (what it prints works)
    env:            BROWSERD_BIN (default build/browserd)

The last line is exactly `packaging: N passed, N failed`; the exit status is non-zero when
anything failed. Every test that did not pass counts as failed (skipped ones are listed).
"""

import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'api'))

MODULES = ['test_packaging', 'test_run_sh']


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class Result(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('-k', action='append', default=None)
    ap.add_argument('modules', nargs='*', default=MODULES)
    args = ap.parse_args()
    loader = unittest.TestLoader()
    if args.k:
        loader.testNamePatterns = ['*%s*' % k for k in args.k]
    suite = unittest.TestSuite()
    for name in args.modules:
        suite.addTests(loader.loadTestsFromName(name))
    tests = list(iter_tests(suite))
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Result).run(suite)
    skipped = len(result.skipped)
    passed = len(result.passed)
    failed = len(tests) - passed - skipped
    for test, reason in result.skipped:
        print('packaging skipped: %s: %s' % (test.id().split('.')[-1], reason))
    print('packaging: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
