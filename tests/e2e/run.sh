#!/usr/bin/env bash
# Runs the end-to-end suite (tests/e2e/*.test.js: real Puppeteer and Playwright clients against
# a real browserd and Debian's Chromium) with node's test runner, one file at a time.
# Usage: tests/e2e/run.sh [BROWSERD_BINARY] [extra node --test options, e.g. --test-name-pattern=queue]
#   BROWSERD_BINARY defaults to $BROWSERD_BIN, else build/browserd.
# The last line of the output is exactly `e2e: N passed, N failed`; the exit status is non-zero
# when anything failed (a test, a file that could not run, a leftover browser process).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

finish() { # finish PASSED FAILED
  echo "e2e: $1 passed, $2 failed"
  [ "$2" -eq 0 ]
  exit
}

bin=${BROWSERD_BIN:-build/browserd}
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  bin=$1
  shift
fi
bin=$(cd "$(dirname "$bin")" 2>/dev/null && pwd)/$(basename "$bin")
if [ ! -x "$bin" ]; then
  echo "e2e: no browserd binary at $bin (build it first)" >&2
  finish 0 1
fi
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "e2e: $tool is missing (scripts/install-deps.sh test)" >&2; finish 0 1; }
done
chromium=${BROWSERD_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "e2e: no Chromium at $chromium (scripts/install-deps.sh test)" >&2; finish 0 1; }

# node_modules from the lock file, again whenever the lock file changed since the last install
stamp="$here/node_modules/.e2e-lock.sha256"
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$here/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "e2e: npm ci" >&2
  if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2); then
    echo "e2e: npm ci failed" >&2
    finish 0 1
  fi
  echo "$want" >"$stamp"
fi

# abuse.test.js holds 10,000 connections open at once: the soft limit of open files up to the
# hard one (the daemons inherit it too)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# every daemon of this run (and so every Chromium of it) carries BROWSERD_E2E_TAG=$E2E_RUN_ID-...
export E2E_RUN_ID="run$$-$(date +%s%N)"
log=$(mktemp /tmp/browserd-e2e-run.XXXXXX)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
# One file at a time (each test starts its own browserd and Chromium: 2 cores), a cap per test
# (tests set shorter ones themselves), and one for the whole run.
BROWSERD_BIN="$bin" timeout --kill-after=10 "${E2E_TOTAL_TIMEOUT:-1800}" \
  node --test --test-concurrency=1 --test-timeout="${E2E_TEST_TIMEOUT:-180000}" --test-reporter=tap "$@" \
  tests/e2e/ 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo "e2e: run time $(($(date +%s) - start)) s (node exit $rc)" >&2

# the summary node prints last: `# pass N`, `# fail N`, `# cancelled N`
pass=$(grep -E '^# pass [0-9]+$' "$log" | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail [0-9]+$' "$log" | tail -1 | awk '{print $3}')
cancelled=$(grep -E '^# cancelled [0-9]+$' "$log" | tail -1 | awk '{print $3}')
if [ -z "$pass" ] || [ -z "$fail" ]; then
  echo "e2e: the test runner did not finish (exit $rc)" >&2
  pass=${pass:-0}
  fail=$((${fail:-0} + 1))
fi
fail=$((fail + ${cancelled:-0}))
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1 # e.g. a file that failed outside any test

# Nothing of this run may survive it: every process its daemons started carries
# BROWSERD_E2E_TAG=$E2E_RUN_ID-... in its environment (Chromium and the supervisors included).
# Only this run's: other runs on the same machine are not ours to judge or kill.
left=$(grep -l -a "BROWSERD_E2E_TAG=$E2E_RUN_ID-" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true)
if [ -n "$left" ]; then
  echo "e2e: processes left behind by the suite:" >&2
  for pid in $left; do
    echo "  $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)" >&2
    kill -9 "$pid" 2>/dev/null
  done
  fail=$((fail + 1))
fi
finish "$pass" "$fail"
