#!/usr/bin/env python3
"""Counts test cases from a meson testlog.json: cmocka's own case counts per executable; an
executable that failed without reporting cases (a crash, a sanitizer abort) counts as one
failure. Prints 'passed failed'."""
import json, re, sys

passed = failed = 0
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        p = sum(int(m) for m in re.findall(r"\[  PASSED  \] (\d+) test", out))
        fl = sum(int(m) for m in re.findall(r"\[  FAILED  \] (\d+) test", out))
        ok = t.get("result") == "OK"
        if not ok and fl == 0:
            fl = 1
        if p == 0 and fl == 0:
            p = 1 if ok else 0
        passed += p
        failed += fl
print(passed, failed)
