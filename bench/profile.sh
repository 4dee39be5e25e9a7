#!/usr/bin/env bash
# A flame graph of browserd (or of the proxy bench) while one benchmark runs.
#
#   bench/profile.sh NAME [-- BENCH OPTIONS]   NAME: api, cdp, proxy, client or metrics
#
# Builds build-profile (release, with frame pointers, so that perf's call graphs are whole),
# runs the benchmark NAME on that build under `perf record -a -g` (the whole machine, 499 Hz:
# the benchmarks start browserd themselves), and keeps browserd's samples (proxy: proxy_bench's,
# where the proxy runs in-process). Writes bench/data/profile/NAME.svg (open it in a browser;
# hover a frame for its share), NAME.folded (folded stacks, for other flame graph tools) and
# NAME.txt (the benchmark's output), and prints the functions with the most samples of their
# own. Default benchmark options are the short ones (api --quick, client --quick, proxy one
# round); anything after "--" replaces them. Needs perf (Debian linux-perf) and root or
# kernel.perf_event_paranoid <= 0. See docs/benchmarks.md, "Profiles".
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=${1:-}
case "$NAME" in
api | cdp | proxy | client | metrics) shift ;;
-h | --help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "profile.sh: NAME is one of api, cdp, proxy, client, metrics (see --help)" >&2; exit 2 ;;
esac
EXTRA=()
if [ "${1:-}" = "--" ]; then shift; EXTRA=("$@"); fi
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (Debian: linux-perf)" >&2; exit 1; }

BUILD=build-profile
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=release -Dc_args=-fno-omit-frame-pointer >/dev/null
fi
ninja -C "$BUILD" -j2 browserd bench/proxy_bench bench/cdp_bench bench/gen_sessions bench/load >/dev/null

COMM=browserd
case "$NAME" in
api) CMD=(bench/api_bench.sh --build "$BUILD") DEFAULT=(--quick) ;;
cdp) CMD=(bench/cdp_bench.sh --build "$BUILD") DEFAULT=() ;;
proxy) CMD=("$BUILD/bench/proxy_bench") DEFAULT=(--rounds 1 --requests 2000) COMM=proxy_bench ;;
client) CMD=(bench/client_bench.sh --browserd "$BUILD/browserd") DEFAULT=(--quick) ;;
metrics) CMD=(python3 bench/metrics_bench.py --build "$BUILD") DEFAULT=(--rounds 1) ;;
esac
[ ${#EXTRA[@]} -gt 0 ] && DEFAULT=("${EXTRA[@]}")

OUT=bench/data/profile
mkdir -p "$OUT"
DATA=$(mktemp /tmp/browserd-profile-XXXXXX.data)
trap 'rm -f "$DATA"' EXIT
echo "profile.sh: perf record -a -g -F 499 -- ${CMD[*]} ${DEFAULT[*]}" >&2
perf record -q -a -g -F 499 -o "$DATA" -- "${CMD[@]}" "${DEFAULT[@]}" >"$OUT/$NAME.txt" 2>&1 ||
    { echo "profile.sh: the benchmark failed; its output:" >&2; tail -20 "$OUT/$NAME.txt" >&2; exit 1; }
perf script -i "$DATA" --comms "$COMM" 2>/dev/null |
    python3 bench/flamegraph.py --comm "$COMM" --folded "$OUT/$NAME.folded" \
        --title "$COMM during bench $NAME ($(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ))" >"$OUT/$NAME.svg"
echo "profile.sh: $OUT/$NAME.svg, $OUT/$NAME.folded, $OUT/$NAME.txt" >&2
