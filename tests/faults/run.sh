#!/usr/bin/env bash
# Runs the fault matrix (tests/faults/*.test.js: real browserd, real Chromium, real Puppeteer,
# real SQLite files and a real PostgreSQL server; the e2e harness of tests/e2e/) and prints
# one row per fault:
#   fault | what the records say | leaks | verdict
# The last line is exactly `faults: N passed, N failed`; the exit status is non-zero when
# anything failed (a row, a file that could not run, a process left behind).
# Usage: tests/faults/run.sh [--ci] [BROWSERD_BINARY] [extra node --test options]
#   --ci: only the rows marked for CI (ci: true; about 2 minutes; scripts/test.sh runs these),
#   the others are listed as skipped. Without it, every row (about 6 minutes).
#   BROWSERD_BINARY defaults to $BROWSERD_BIN, else build/browserd. Rows that need root (the
#   disk-full row mounts a tmpfs), prlimit or PostgreSQL 15 are skipped, and say so, without them.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

finish() { # finish PASSED FAILED
  echo "faults: $1 passed, $2 failed"
  [ "$2" -eq 0 ]
  exit
}

if [ "${1:-}" = --ci ]; then
  export FAULTS_SUBSET=ci
  shift
fi
bin=${BROWSERD_BIN:-build/browserd}
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  bin=$1
  shift
fi
bin=$(cd "$(dirname "$bin")" 2>/dev/null && pwd)/$(basename "$bin")
if [ ! -x "$bin" ]; then
  echo "faults: no browserd binary at $bin (build it first)" >&2
  finish 0 1
fi
if [ ! -d tests/e2e/node_modules ]; then
  echo "faults: npm ci (tests/e2e)" >&2
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >&2) || finish 0 1
fi

export E2E_RUN_ID="faults$$-$(date +%s%N)"
work=$(mktemp -d /tmp/browserd-faults-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
export FAULTS_ROWS="$work/rows.jsonl"
: >"$FAULTS_ROWS"
start=$(date +%s)
BROWSERD_BIN="$bin" timeout --kill-after=10 "${FAULTS_TOTAL_TIMEOUT:-900}" \
  node --test --test-concurrency=1 --test-timeout=180000 --test-reporter=tap "$@" tests/faults/ >"$work/tap" 2>&1
rc=$?
echo "faults: run time $(($(date +%s) - start)) s (node exit $rc)" >&2

# The table: each top-level test's verdict from the TAP report, its row from FAULTS_ROWS.
/usr/bin/env python3 - "$work/tap" "$FAULTS_ROWS" >"$work/table" <<'EOF'
import json, re, sys
tap = open(sys.argv[1], encoding='utf-8', errors='replace').read().split('\n')
rows = {}
for line in open(sys.argv[2], encoding='utf-8'):
    if line.strip():
        r = json.loads(line)
        rows[r['name']] = r
passed = failed = 0
print('fault | what the records say | leaks | verdict')
print('---|---|---|---')
for i, line in enumerate(tap):
    m = re.match(r'^(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)(.*))?$', line)
    if not m:
        continue
    ok, name, directive, why = m.group(1) == 'ok', m.group(2), m.group(3), (m.group(4) or '').strip()
    row = rows.get(name, {})
    if directive == 'SKIP':
        print('%s | - | - | skipped (%s)' % (name, why or 'skip'))
        continue
    if ok and row:
        passed += 1
        print('%s | %s | %s | held' % (name, row['records'], row['leaks']))
        continue
    failed += 1
    # the first error line of the failed test's YAML block
    err = ''
    for l in tap[i + 1:i + 40]:
        e = re.match(r"^\s+error: [|>-]*\s*'?(.*?)'?$", l)
        if e:
            err = e.group(1) or ''
            if not err:
                j = tap.index(l, i + 1)
                err = tap[j + 1].strip() if j + 1 < len(tap) else ''
            break
    print('%s | %s | %s | FAILED: %s' % (name, row.get('records', '-'), row.get('leaks', '-'), err[:200]))
print('#counts %d %d' % (passed, failed))
EOF
grep -v '^#counts' "$work/table"
read -r pass fail < <(grep '^#counts' "$work/table" | cut -d' ' -f2-)
pass=${pass:-0}
fail=${fail:-1}
if ! grep -qE '^# pass [0-9]+$' "$work/tap"; then
  echo "faults: the test runner did not finish (exit $rc)" >&2
  tail -30 "$work/tap" >&2
  fail=$((fail + 1))
fi
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && { tail -30 "$work/tap" >&2; fail=1; }
if [ "$fail" -gt 0 ]; then
  echo "--- the failures in full (TAP) ---"
  awk '/^not ok /{p=1} /^ok /{p=0} p' "$work/tap" | grep -vE '^# ts=' | head -120
fi

# Nothing of this run may survive it (every process its daemons started carries the tag).
left=$(grep -l -a "BROWSERD_E2E_TAG=$E2E_RUN_ID-" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true)
if [ -n "$left" ]; then
  echo "faults: processes left behind by the matrix:" >&2
  for pid in $left; do
    echo "  $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)" >&2
    kill -9 "$pid" 2>/dev/null
  done
  fail=$((fail + 1))
fi
finish "$pass" "$fail"
