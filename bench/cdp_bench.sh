#!/usr/bin/env bash
# The CDP gateway benchmark: browserd's WebSocket relay against a direct pipe to the same kind
# of browser, measured in the same run.
#
#   bench/cdp_bench.sh            build (build-cdpbench, release) and run both phases, ~45-70 s
#
# Options (passed through to bench/cdp_bench): --phases fake|real|fake,real, --rtt-rounds R,
# --rtt-batch N, --big-reps N, --real-big-reps N, --big-mib M, --connect-reps N, --sessions K,
# --real-sessions K (memory with K real Chromiums; default 4, 0 = skip), --chromium PATH,
# --limit S (alarm for the whole run, default 150), --browserd PATH (bench another binary;
# the build's is used otherwise), --browserd-env NAME=VALUE (browserd's environment only, for
# experiments such as GLIBC_TUNABLES). Script-only: --build DIR.
#
# Phases: "fake" runs browserd with --chromium pointing at the bench binary itself, which then
# acts as an instant-answer browser on fds 3/4 (pure relay overhead: the same fake direct and
# through browserd); "real" runs browserd with /usr/bin/chromium and a warm pool of 2 against a
# second Chromium the bench launches on its own pipe. Figures: round trip (Browser.getVersion,
# Runtime.evaluate 1+1 in a page), 20 MiB answers (and a 20 MiB echo through the fake),
# connect -> first answer with a warm pool, browserd's RSS per idle session. Goals are printed
# as met / NOT MET; the exit status is non-zero only for errors. Loopback only. Everything
# started is stopped, the temp dir removed, and no Chromium of the run is left (checked).
# See docs/benchmarks.md, section "CDP gateway".
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build-cdpbench
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1") ;;
    esac
    shift
done

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" -j2 browserd bench/cdp_bench >/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdp_bench.XXXXXX")
BENCH_PID=
cleanup() {
    local rc=$?
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    # Anything of this run still alive (a bench killed hard): every process naming the temp dir.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(pgrep -f -- "$TMP" || true)
        [ -z "$pids" ] && break
        kill -KILL $pids 2>/dev/null || true
        sleep 0.2
    done
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BUILD/bench/cdp_bench" --browserd "$BUILD/browserd" --tmp "$TMP" "${ARGS[@]}" &
BENCH_PID=$!
wait "$BENCH_PID"
BENCH_PID=

left=$(pgrep -a -f -- "$TMP" || true)
echo "processes of this run left: ${left:-none}"
echo "pgrep -a chromium (whole machine, other users' runs included): $(pgrep -a chromium | wc -l) process(es)"
