#!/usr/bin/env bash
# Runs the whole test suite: unit tests (cmocka) on a normal build and on an ASan+UBSan build,
# the API contract and cross-check tests (real HTTP against a running browserd) on both
# builds and both stores (SQLite, and PostgreSQL: one private server started for the run by
# tests/pg/pgserver.py, stopped and removed at the end whatever happens), the OpenAPI tests (the
# document validated, live answers checked against it) on both builds, the packaging tests (man
# page, unit, meson install, Dockerfile, run.sh) and the end-to-end tests (Puppeteer and
# Playwright through browserd's CDP gateway to a real Chromium; a PostgreSQL cluster behind
# nginx) and the CI rows of the fault matrix (tests/faults/run.sh --ci) on the normal build, and a
# short run of every fuzz target. Ends with "N passed, N failed".
# Usage: scripts/test.sh [--quick]   (--quick: normal build only, no fuzzing)
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
scripts/install-deps.sh test || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
note() { printf '\n=== %s\n' "$*"; }

count() { passed=$((passed + $1)); failed=$((failed + $2)); }

# One PostgreSQL server for the whole run: the store's unit tests (store_pg, pg_store) make a
# database per test on it, the API suite one per daemon. Stopped and removed on any exit.
pg_dir=$(mktemp -d /tmp/browserd-test-pg-XXXXXX)
chmod 755 "$pg_dir" # the server runs as browserd-test when we are root: it must reach its directory
stop_pg() {
  [ -f "$pg_dir/srv/state" ] && python3 tests/pg/pgserver.py stop "$pg_dir/srv" >/dev/null 2>&1
  rm -rf "$pg_dir"
}
trap stop_pg EXIT
trap 'exit 130' INT TERM
note "PostgreSQL test server"
if python3 tests/pg/pgserver.py start "$pg_dir/srv" >"$pg_dir/start.log" 2>&1; then
  BROWSERD_TEST_PG_ADMIN_URI=$(grep '^PG_URI=' "$pg_dir/srv/state" | cut -d= -f2-)
  export BROWSERD_TEST_PG_ADMIN_URI
  echo "started on port $(grep '^PG_PORT=' "$pg_dir/srv/state" | cut -d= -f2-)"
else
  cat "$pg_dir/start.log"
  echo "PostgreSQL: the test server did not start"
  count 0 1
fi
build() { # build DIR [meson options...] [-- fuzz]   (fuzz: only the fuzz targets)
  local dir=$1; shift
  local opts=() targets=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then targets=(fuzz); shift; break; fi
    opts+=("$1"); shift
  done
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${opts[@]}" >"/tmp/browserd-$dir.setup.log" 2>&1 || { cat "/tmp/browserd-$dir.setup.log"; return 1; }
  fi
  if [ ${#targets[@]} -gt 0 ]; then
    targets=($(ninja -C "$dir" -t targets all 2>/dev/null | grep -oE '^tests/fuzz/fuzz_[a-z_]+' | sort -u))
  fi
  ninja -C "$dir" -j2 "${targets[@]}" >"$dir/test-build.log" 2>&1 || { tail -50 "$dir/test-build.log"; return 1; }
}

unit() { # unit DIR
  meson test -C "$1" --suite unit --num-processes 2 --print-errorlogs >"$1/test-unit.log" 2>&1
  grep -E '^ *[0-9]+/[0-9]+ ' "$1/test-unit.log" | sed 's/^/  /'
  read -r p f < <(python3 scripts/count_results.py "$1/meson-logs/testlog.json")
  echo "unit ($1): $p passed, $f failed"
  [ "$f" -gt 0 ] && grep -B2 -A30 -E "FAILED|ERROR|runtime error" "$1/test-unit.log" | head -120
  count "$p" "$f"
}

api() { # api BIN LABEL [STORE]   (STORE: sqlite, the default, or postgres)
  local out
  out=$(mktemp)
  if [ "${3:-sqlite}" = postgres ] && [ -z "${BROWSERD_TEST_PG_ADMIN_URI:-}" ]; then
    echo "api ($2): no PostgreSQL server"
    count 0 1
    return
  fi
  BROWSERD_BIN="$1" BROWSERD_TEST_STORE="${3:-sqlite}" python3 tests/api/run.py 2>&1 | tee "$out" | tail -40
  local line
  line=$(grep -E '^api: [0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  rm -f "$out"
  if [ -z "$line" ]; then
    echo "api ($2): the suite did not finish"
    count 0 1
    return
  fi
  local p f
  p=$(echo "$line" | sed -E 's/api: ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
  echo "api ($2): $p passed, $f failed"
  count "$p" "$f"
}

e2e() { # e2e BIN
  local out
  out=$(mktemp)
  tests/e2e/run.sh "$1" >"$out" 2>&1
  grep -E '^(not )?ok |^e2e: run time' "$out" | sed 's/^/  /'
  local line
  line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  if [ -z "$line" ]; then
    tail -40 "$out"
    rm -f "$out"
    echo "e2e: the suite did not finish"
    count 0 1
    return
  fi
  local p f
  p=$(echo "$line" | sed -E 's/e2e: ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
  # the failures in full (node's TAP report of each failed test)
  [ "$f" -gt 0 ] && awk '/^not ok /{p=1} /^ok /{p=0} p' "$out" | grep -vE '^# event=' | head -150
  rm -f "$out"
  echo "e2e: $p passed, $f failed"
  count "$p" "$f"
}

suite() { # suite NAME COMMAND...: a suite whose last line is "NAME: N passed, N failed"
  local name=$1 out line p f
  shift
  out=$(mktemp)
  "$@" >"$out" 2>&1
  grep -E '^ *(not )?ok |# SKIP|\.\.\. (ok|FAIL|ERROR|skipped)|^ +systemd-analyze|^[a-z]+ skipped: ' "$out" | sed 's/^/  /'
  line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$out" | tail -1)
  if [ -z "$line" ]; then
    tail -40 "$out"
    echo "$name: the suite did not finish"
    count 0 1
  else
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
    [ "$f" -gt 0 ] && awk '/^ *not ok |^(FAIL|ERROR): /{p=1} /^ *ok /{p=0} p' "$out" | grep -vE '^# event=' | head -150
    echo "$line"
    count "$p" "$f"
  fi
  rm -f "$out"
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

note "structure (scripts/check_structure.py: layers, file sizes, header ownership)"
structure_out=$(python3 scripts/check_structure.py 2>&1)
echo "$structure_out" | sed 's/^/  /'
read -r sp sf < <(echo "$structure_out" | tail -1 | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
count "${sp:-0}" "${sf:-1}"

note "bench tools (tests/bench: bench/regressions.py, the regression check of bench/all.sh)"
bench_out=$(python3 tests/bench/test_regressions.py 2>&1)
echo "$bench_out" | tail -1 | sed 's/^/  /'
read -r bp bf < <(echo "$bench_out" | tail -1 | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
count "${bp:-0}" "${bf:-1}"

note "build (debugoptimized)"
if build build; then
  unit build
  note "API tests (normal build)"
  api build/browserd normal
  note "API tests (normal build, PostgreSQL store)"
  api build/browserd "normal, postgres" postgres
  note "OpenAPI tests (normal build: /openapi.json validated, live answers checked against it)"
  suite openapi tests/openapi/run.sh build/browserd
  note "packaging tests (man page, environment file, meson install, systemd unit, Dockerfile, scripts/run.sh)"
  suite packaging env BROWSERD_BIN=build/browserd python3 tests/packaging/run.py
  note "end-to-end tests (normal build: Puppeteer and Playwright, real Chromium)"
  e2e build/browserd
  note "fault matrix, CI rows (tests/faults/run.sh --ci: Chromium killed, hung and crashed, the disk full, the database locked, fds exhausted; the rest: docs/reliability.md)"
  suite faults tests/faults/run.sh --ci build/browserd
else
  count 0 1
fi

if [ $quick -eq 0 ]; then
  note "build with AddressSanitizer + UndefinedBehaviorSanitizer"
  if build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=all; then
    unit build-asan
    note "API tests (sanitizer build)"
    api build-asan/browserd sanitizers
    note "API tests (sanitizer build, PostgreSQL store)"
    api build-asan/browserd "sanitizers, postgres" postgres
    note "OpenAPI tests (sanitizer build)"
    suite openapi tests/openapi/run.sh build-asan/browserd
  else
    count 0 1
  fi

  note "fuzz targets (libFuzzer, ${FUZZ_SECONDS:-20} s each)"
  if CC=clang build build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -- fuzz; then
    for target in build-fuzz/tests/fuzz/fuzz_*; do
      [ -f "$target" ] && [ -x "$target" ] || continue
      name=$(basename "$target" | sed 's/^fuzz_//')
      work=$(mktemp -d)
      cp -r "tests/fuzz/corpus/$name/." "$work/" 2>/dev/null
      if "$target" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=5 -rss_limit_mb=2048 \
           -artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
        echo "fuzz $name: ok ($(grep -oE 'Done [0-9]+ runs' "$work.log" | tail -1))"
        count 1 0
      else
        echo "fuzz $name: FAILED"; tail -40 "$work.log"
        count 0 1
      fi
      rm -rf "$work" "$work.log"
    done
  else
    count 0 1
  fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
