#!/usr/bin/env python3
"""bench/regressions.py: which measures it calls regressed, against files written like all.sh's.

Run: python3 tests/bench/test_regressions.py (ends with "N passed, N failed")."""
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "bench", "regressions.py")


def run(baseline, current):
    with tempfile.TemporaryDirectory() as d:
        b, c = os.path.join(d, "baseline.tsv"), os.path.join(d, "measures.tsv")
        for path, rows in ((b, baseline), (c, current)):
            if rows is not None:
                with open(path, "w") as f:
                    f.write("# a comment line\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
        p = subprocess.run([sys.executable, TOOL, b, c], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


class Regressions(unittest.TestCase):
    def test_higher_is_better_drop_over_ten_percent(self):
        out = run([("proxy", "download ratio", 0.50, "higher")], [("proxy", "download ratio", 0.44, "higher")])
        self.assertIn("REGRESSED proxy: download ratio: 0.5 -> 0.44 (+12 % worse", out)
        self.assertIn("1 measures compared, 1 regressed", out)

    def test_lower_is_better_rise_over_ten_percent(self):
        out = run([("cdp", "rtt (us)", 100, "lower")], [("cdp", "rtt (us)", 111, "lower")])
        self.assertIn("REGRESSED cdp: rtt (us)", out)

    def test_within_ten_percent_or_better_is_not_listed(self):
        out = run([("cdp", "a", 100, "lower"), ("cdp", "b", 1.0, "higher"), ("cdp", "c", 100, "lower")],
                  [("cdp", "a", 109, "lower"), ("cdp", "b", 2.0, "higher"), ("cdp", "c", 50, "lower")])
        self.assertNotIn("REGRESSED", out)
        self.assertIn("3 measures compared, 0 regressed", out)

    def test_new_missing_and_unmeasured(self):
        out = run([("api", "old", 1, "higher"), ("api", "nan", 1, "higher")],
                  [("api", "fresh", 1, "higher"), ("api", "nan", "NaN", "higher"), ("api", "bad", 1, "sideways")])
        self.assertIn("0 measures compared, 0 regressed by more than 10 %; 1 new, 2 of the baseline not measured", out)

    def test_same_name_in_another_bench_is_another_measure(self):
        out = run([("a", "x", 1, "higher")], [("b", "x", 0.1, "higher")])
        self.assertNotIn("REGRESSED", out)

    def test_no_baseline_says_how_to_make_one(self):
        out = run(None, [("a", "x", 1, "higher")])
        self.assertIn("--update-baseline", out)


if __name__ == "__main__":
    r = unittest.main(exit=False, verbosity=1).result
    failed = len(r.failures) + len(r.errors)
    print(f"{r.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
