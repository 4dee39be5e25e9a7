#!/usr/bin/env bash
# The long fuzzing campaign (outside CI; CI runs every target for ~20 s): every libFuzzer target
# for RUNS executions (default 10,000,000) from its kept corpus, then the corpus is merged back
# (new inputs that reach new code are kept in tests/fuzz/corpus/NAME, minimized by libFuzzer's
# -merge), and any crash, leak or timeout is copied to tests/fuzz/crashes/NAME/ to become a
# regression test.
#
#   tests/fuzz/campaign.sh [--runs N] [--only NAME[,NAME...]] [--jobs J]
#
# Builds build-fuzz (clang, -Dfuzz=true, ASan + UBSan) when absent. Prints one line per target
# (executions, seconds, executions per second, corpus size before -> after, verdict) and writes
# the same table to tests/fuzz/campaign-last.txt for docs/reliability.md. Exit status non-zero
# when a target found something. --jobs: targets run side by side (default 1; the machine has
# 2 cores). Run it with `nice` on a shared machine.
set -uo pipefail
cd "$(dirname "$0")/../.."
RUNS=10000000 ONLY= JOBS=1
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "campaign.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$RUNS" in '' | *[!0-9]*) echo "campaign.sh: --runs needs a number" >&2; exit 2 ;; esac

if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
fi
targets=$(ninja -C build-fuzz -t targets all 2>/dev/null | grep -oE '^tests/fuzz/fuzz_[a-z_]+' | sort -u)
ninja -C build-fuzz -j2 $targets >/dev/null || { echo "campaign.sh: the fuzz build failed" >&2; exit 1; }

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
WORK=$(mktemp -d /tmp/browserd-fuzz-campaign-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

one() { # one NAME: prints the target's table line
    local name=$1 bin=build-fuzz/tests/fuzz/fuzz_$1 kept=tests/fuzz/corpus/$1
    local work=$WORK/$name
    mkdir -p "$work/corpus" "$work/artifacts" "$kept"
    cp -r "$kept/." "$work/corpus/" 2>/dev/null
    local before start end rc
    before=$(find "$kept" -type f | wc -l)
    start=$(date +%s)
    "$bin" -runs="$RUNS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
    rc=$?
    end=$(date +%s)
    local ran
    ran=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$work/log" | grep -oE '[0-9]+$' | tail -1)
    # keep only what adds coverage: merge the grown corpus into the kept one
    "$bin" -merge=1 "$kept" "$work/corpus" >"$work/merge.log" 2>&1
    local after verdict secs=$((end - start))
    after=$(find "$kept" -type f | wc -l)
    if [ "$rc" -eq 0 ] && [ -z "$(ls -A "$work/artifacts")" ]; then
        verdict=clean
    else
        mkdir -p "tests/fuzz/crashes/$name"
        cp "$work/artifacts/"* "tests/fuzz/crashes/$name/" 2>/dev/null
        cp "$work/log" "tests/fuzz/crashes/$name/campaign-$(date -u +%Y%m%dT%H%M%SZ).log"
        verdict="FOUND SOMETHING (exit $rc; inputs and log in tests/fuzz/crashes/$name/)"
    fi
    printf '%-14s %12s %6s s %9s/s   corpus %5s -> %5s   %s\n' "$name" "${ran:-0}" "$secs" \
        "$(( ${ran:-0} / (secs > 0 ? secs : 1) ))" "$before" "$after" "$verdict"
}

names=()
for t in $targets; do
    n=${t#tests/fuzz/fuzz_}
    if [ -n "$ONLY" ] && ! echo ",$ONLY," | grep -q ",$n,"; then continue; fi
    names+=("$n")
done
[ ${#names[@]} -gt 0 ] || { echo "campaign.sh: no target matches --only $ONLY" >&2; exit 2; }

{
    echo "tests/fuzz/campaign.sh $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $RUNS runs per target, clang $(clang -dumpversion), ASan + UBSan"
    printf '%-14s %12s %8s %11s   %s\n' target executions time rate corpus
    if [ "$JOBS" -gt 1 ]; then
        export -f one; export RUNS WORK
        printf '%s\n' "${names[@]}" | xargs -P "$JOBS" -I{} bash -c 'one {}'
    else
        for n in "${names[@]}"; do one "$n"; done
    fi
} | tee tests/fuzz/campaign-last.txt
! grep -q 'FOUND SOMETHING' tests/fuzz/campaign-last.txt
