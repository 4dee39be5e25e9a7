#!/usr/bin/env bash
# browserd as its users see it: real Puppeteer / Playwright clients against browserd and against
# a Chromium's own WebSocket endpoint, measured in the same run (bench/client_bench.js).
#
#   bench/client_bench.sh                 build build-release, run the defaults (~3-4 min)
#   bench/client_bench.sh --quick         a ~1-minute run
#   bench/client_bench.sh --browserd PATH bench another binary (nothing is built then)
#
# Every other option goes to bench/client_bench.js (--batches, --rtt, --warmup, --sessions,
# --steady, --big-reps, --big-mib, --navs, --pw-rtt, --chromium, --limit; --help lists them).
# Goals are printed as met / NOT MET; the exit status is non-zero only for errors.
# Loopback only. See docs/benchmarks.md, "Clients as users run them".
set -euo pipefail
cd "$(dirname "$0")/.."

BROWSERD=
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --browserd) BROWSERD=$2; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1") ;;
    esac
    shift
done

if [ -z "$BROWSERD" ]; then
    if [ ! -f build-release/build.ninja ]; then
        meson setup build-release --buildtype=release >/dev/null
    fi
    ninja -C build-release -j2 browserd >/dev/null
    BROWSERD=build-release/browserd
fi
if [ ! -d tests/e2e/node_modules/puppeteer-core ]; then
    echo "client_bench: npm ci in tests/e2e" >&2
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

exec node bench/client_bench.js --browserd "$BROWSERD" "${ARGS[@]}"
