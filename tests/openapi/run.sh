#!/usr/bin/env bash
# The OpenAPI suite (tests/openapi/*.test.js, node's test runner): src/api/openapi.json
# validated as OpenAPI 3.1 (@readme/openapi-parser, then every schema compiled by Ajv's 2020-12
# dialect in strict mode), and a running browserd's answers on every route checked against it.
# Usage: tests/openapi/run.sh [BROWSERD_BINARY]   (default $BROWSERD_BIN, else build/browserd)
# The last line is exactly `openapi: N passed, N failed`; the exit status is non-zero when
# anything failed (a test, a file that could not run, a process left behind).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

finish() { # finish PASSED FAILED
  echo "openapi: $1 passed, $2 failed"
  [ "$2" -eq 0 ]
  exit
}

bin=${1:-${BROWSERD_BIN:-build/browserd}}
bin=$(cd "$(dirname "$bin")" 2>/dev/null && pwd)/$(basename "$bin")
[ -x "$bin" ] || { echo "openapi: no browserd binary at $bin (build it first)" >&2; finish 0 1; }
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "openapi: $tool is missing (scripts/install-deps.sh test)" >&2; finish 0 1; }
done

# node_modules from the lock file, again whenever the lock file changed since the last install
stamp="$here/node_modules/.openapi-lock.sha256"
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$here/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "openapi: npm ci" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2) || { echo "openapi: npm ci failed" >&2; finish 0 1; }
  echo "$want" >"$stamp"
fi

# the daemons' processes carry BROWSERD_E2E_TAG=$E2E_RUN_ID-... (tests/e2e/harness.js)
export E2E_RUN_ID="openapi$$-$(date +%s%N)"
log=$(mktemp /tmp/browserd-openapi-run.XXXXXX)
trap 'rm -f "$log"' EXIT
BROWSERD_BIN="$bin" timeout --kill-after=10 "${OPENAPI_TOTAL_TIMEOUT:-300}" \
  node --test --test-concurrency=1 --test-reporter=tap tests/openapi/ 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

pass=$(grep -E '^# pass [0-9]+$' "$log" | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail [0-9]+$' "$log" | tail -1 | awk '{print $3}')
cancelled=$(grep -E '^# cancelled [0-9]+$' "$log" | tail -1 | awk '{print $3}')
if [ -z "$pass" ] || [ -z "$fail" ]; then
  echo "openapi: the test runner did not finish (exit $rc)" >&2
  pass=${pass:-0}
  fail=$((${fail:-0} + 1))
fi
fail=$((fail + ${cancelled:-0}))
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
left=$(grep -l -a "BROWSERD_E2E_TAG=$E2E_RUN_ID-" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true)
if [ -n "$left" ]; then
  echo "openapi: processes left behind by the suite:" >&2
  for pid in $left; do
    echo "  $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)" >&2
    kill -9 "$pid" 2>/dev/null
  done
  fail=$((fail + 1))
fi
finish "$pass" "$fail"
