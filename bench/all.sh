#!/usr/bin/env bash
# Every benchmark of bench/, one after the other, and one summary of every goal they print.
#
#   bench/all.sh            api_bench --quick, cdp_bench, proxy_bench, client_bench, webdriver_bench,
#                           metrics_bench, load_mixed: ~13 min
#   bench/all.sh --full     api_bench's full run (1.2 M sessions) instead of --quick: ~15 min
#   --update-baseline       (with either) also write this run's measures to bench/baseline.tsv
#
# Each benchmark measures its own baseline in the same run and prints its goals as "met" or
# "NOT MET" (see docs/benchmarks.md); this script keeps each one's whole output in
# bench/data/all/NAME.txt and prints, per benchmark, every goal line with the measure it belongs
# to, then how many goals are met. A benchmark that fails (an error, not a missed goal) is
# reported as such and the others still run; the exit status is non-zero when one failed.
# Regressions: every benchmark also prints "=measure<TAB>name<TAB>value<TAB>higher|lower" lines;
# they are collected in bench/data/all/measures.tsv and compared with bench/baseline.tsv (the
# figures of the last run that updated it): a measure more than 10 % worse is listed as a
# regression (the machine is shared: one listed once is a reason to rerun, twice to look).
# Run it on a quiet machine: the benchmarks share the cores with everything else.
set -uo pipefail
cd "$(dirname "$0")/.."
FULL=0 UPDATE=0
for arg in "$@"; do
    case "$arg" in
    --full) FULL=1 ;;
    --update-baseline) UPDATE=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "all.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done
OUT=bench/data/all
mkdir -p "$OUT"
BENCHES=(api cdp proxy client webdriver metrics mixed)
declare -A CMD=(
    [api]="bench/api_bench.sh $([ "$FULL" = 1 ] || echo --quick)"
    [cdp]="bench/cdp_bench.sh"
    [proxy]="build-release/bench/proxy_bench"
    [client]="bench/client_bench.sh"
    [webdriver]="/usr/bin/python3 bench/webdriver_bench.py --browserd build-release/browserd"
    [metrics]="python3 bench/metrics_bench.py"
    [mixed]="bench/load_mixed.sh"
)
if [ ! -f build-release/build.ninja ]; then meson setup build-release --buildtype=release >/dev/null; fi
ninja -C build-release -j2 browserd bench/proxy_bench >/dev/null

# Every goal line of a benchmark's output (with the measure line before it when the goal line
# names none; only its final table when it prints one), and FILE.goals: one "met" or "NOT MET"
# per goal.
summarize() {
    local src=$1
    # a benchmark that ends with a summary table (measure | ... | verdict): the table alone
    if grep -q '^measure .*|' "$src"; then
        src=${1%.txt}.table
        sed -n '/^measure .*|/,$p' "$1" >"$src"
    fi
    : >"${1%.txt}.goals"
    awk -v goals="${1%.txt}.goals" '
        { line = $0; gsub(/  +/, " ", line) }
        tolower($0) ~ /not met/ || $0 ~ /(^|[^a-z])met([^a-z]|$)/ {
            if ($0 ~ /^ *goal/ && prev != "") print "   " prev
            print "  " line
            print (tolower($0) ~ /not met/ ? "NOT MET" : "met") > goals
            next
        }
        NF { prev = line }' "$src"
}

FAILED=()
for b in "${BENCHES[@]}"; do
    echo "[$(date +%H:%M:%S)] $b: ${CMD[$b]}" >&2
    if ! ${CMD[$b]} >"$OUT/$b.txt" 2>&1; then FAILED+=("$b"); fi
done

# bench<TAB>name<TAB>value<TAB>better, from every benchmark's "=measure" lines
for b in "${BENCHES[@]}"; do
    awk -F'\t' -v b="$b" '$1 == "=measure" && NF == 4 { print b "\t" $2 "\t" $3 "\t" $4 }' "$OUT/$b.txt"
done >"$OUT/measures.tsv"

{
    echo "bench/all.sh $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD); $(nproc) cores," \
        "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for b in "${BENCHES[@]}"; do
        echo
        echo "== $b (${CMD[$b]}; whole output: $OUT/$b.txt)"
        summarize "$OUT/$b.txt"
    done
    echo
    echo "== regressions against bench/baseline.tsv (more than 10 % worse)"
    python3 bench/regressions.py bench/baseline.tsv "$OUT/measures.tsv"
    echo
    echo "goals: $(cat "$OUT"/*.goals | grep -c '^met') met, $(cat "$OUT"/*.goals | grep -c '^NOT') NOT MET;" \
        "benchmarks that failed: ${FAILED[*]:-none}"
} | tee "$OUT/summary.txt"
if [ "$UPDATE" = 1 ]; then
    { echo "# bench/all.sh $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD): bench, measure, value, which way is better"
      cat "$OUT/measures.tsv"; } >bench/baseline.tsv
    echo "bench/baseline.tsv: $(wc -l <"$OUT/measures.tsv") measures written"
fi
[ ${#FAILED[@]} -eq 0 ]
