#!/usr/bin/env python3
"""Compares a run's measures with the kept baseline: bench/regressions.py BASELINE CURRENT.

Both files are tab-separated lines "bench, measure, value, higher|lower" (bench/all.sh writes
CURRENT from the benchmarks' "=measure" lines; `bench/all.sh --update-baseline` writes
BASELINE). Prints one line per measure that is more than THRESHOLD worse than its baseline
(worse: lower when higher is better, and the other way round), then the counts, including the
measures that are new or were not measured this time. Exit status 0 always: a regression on a
shared machine is a reason to look, not a failure of the run.
"""
import sys

THRESHOLD = 0.10


def read(path):
    rows = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 4 or parts[3] not in ("higher", "lower"):
                    continue
                try:
                    value = float(parts[2])
                except ValueError:
                    continue  # a measure that could not be taken this time ("NaN", "-")
                if value != value:
                    continue
                rows[(parts[0], parts[1])] = (value, parts[3])
    except FileNotFoundError:
        pass
    return rows


def change(old, new, better):
    """How much worse new is than old, as a fraction (negative: better)."""
    if old == 0:
        return 0.0 if new == 0 else (float("inf") if (new > 0) == (better == "lower") else float("-inf"))
    worse = (old - new) / abs(old) if better == "higher" else (new - old) / abs(old)
    return worse


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    base, cur = read(sys.argv[1]), read(sys.argv[2])
    if not base:
        print(f"  no baseline in {sys.argv[1]}: run bench/all.sh --update-baseline once")
        return 0
    regressed = compared = 0
    for key, (new, better) in cur.items():
        if key not in base:
            continue
        compared += 1
        old = base[key][0]
        worse = change(old, new, better)
        if worse > THRESHOLD:
            regressed += 1
            print(f"  REGRESSED {key[0]}: {key[1]}: {old:g} -> {new:g} ({worse * 100:+.0f} % worse; {better} is better)")
    new_only = sum(1 for k in cur if k not in base)
    missing = sum(1 for k in base if k not in cur)
    print(f"  {compared} measures compared, {regressed} regressed by more than {THRESHOLD * 100:.0f} %;"
          f" {new_only} new, {missing} of the baseline not measured this time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
