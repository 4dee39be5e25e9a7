#!/usr/bin/env bash
# browserd under mixed load: the list API at 32 connections while 4 real browser sessions
# navigate, each half measured alone first in the same run (bench/load_mixed.js).
#
#   bench/load_mixed.sh            build build-release, run the defaults (~2.5 min)
#   bench/load_mixed.sh --quick    a ~1-minute run
#   bench/load_mixed.sh --browserd PATH   bench another binary (nothing is built then)
#
# Every other option goes to bench/load_mixed.js (--seconds, --api-seconds, --sessions,
# --connections, --count, --chromium, --limit; --help lists them). Goals are printed as met /
# NOT MET; the exit status is non-zero only for errors. Loopback only. See docs/benchmarks.md,
# "Mixed load".
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
if [ ! -f build-release/build.ninja ]; then
    meson setup build-release --buildtype=release >/dev/null
fi
if [ -z "$BROWSERD" ]; then
    ninja -C build-release -j2 browserd bench/load bench/gen_sessions >/dev/null
    BROWSERD=build-release/browserd
else
    ninja -C build-release -j2 bench/load bench/gen_sessions >/dev/null
fi
if [ ! -d tests/e2e/node_modules/puppeteer-core ]; then
    echo "load_mixed: npm ci in tests/e2e" >&2
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
exec node bench/load_mixed.js --browserd "$BROWSERD" --load build-release/bench/load --gen build-release/bench/gen_sessions "${ARGS[@]}"
