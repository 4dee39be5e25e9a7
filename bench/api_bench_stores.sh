#!/usr/bin/env bash
# The API benchmark on both stores in one run: the same data, the same 13-shape mix and the same
# binary, first on an SQLite file, then on a private PostgreSQL server (bench/api_bench.sh and
# bench/api_bench.sh --postgres), and the ratios PostgreSQL / SQLite.
#
#   bench/api_bench_stores.sh [api_bench.sh options, e.g. --quick]
#
# Goals (docs/cluster.md): mix throughput on PostgreSQL >= 0.8x SQLite's; catalog start from
# PostgreSQL with 1.2 M sessions <= 10 s. Loopback only; each run stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d "${TMPDIR:-/tmp}/api-bench-stores.XXXXXX")
trap 'rm -rf "$out"' EXIT
bench/api_bench.sh "$@" >"$out/sqlite.txt"
bench/api_bench.sh --postgres "$@" >"$out/pg.txt"
mix() { sed -n 's/^  mix: *\([0-9]*\) req\/s.*/\1/p' "$1"; }
catalog_ms() { sed -n 's/.*event=catalog_loaded sessions=[0-9]* ms=\([0-9]*\).*/\1/p' "$1"; }
import_rps() { sed -n 's/^import:  bench_a [0-9]* rows in [0-9.]* s = \([0-9]*\) rows\/s.*/\1/p' "$1"; }
p50_all() { awk '$1 == "ALL" { print $3 }' "$1"; }
cat "$out/sqlite.txt"
echo
cat "$out/pg.txt"
echo
printf '%-34s %12s %12s %8s  %s\n' measure SQLite PostgreSQL ratio goal
line() { # name sqlite pg goal-expr verdict
  printf '%-34s %12s %12s %8s  %s\n' "$1" "$2" "$3" "$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a ? b / a : 0 }')" "$4"
}
S_MIX=$(mix "$out/sqlite.txt") P_MIX=$(mix "$out/pg.txt")
R=$(awk -v a="$S_MIX" -v b="$P_MIX" 'BEGIN { print (a && b / a >= 0.8) ? "met" : "NOT MET" }')
line "mix req/s, 32 connections" "$S_MIX" "$P_MIX" ">= 0.8x: $R"
P_CAT=$(catalog_ms "$out/pg.txt")
line "catalog start, ms" "$(catalog_ms "$out/sqlite.txt")" "$P_CAT" \
  "<= 10000 ms on PostgreSQL: $([ "${P_CAT:-999999}" -le 10000 ] && echo met || echo NOT MET)"
line "unloaded p50 of the mix, ms" "$(p50_all "$out/sqlite.txt")" "$(p50_all "$out/pg.txt")" ""
line "import rows/s (bench_a)" "$(import_rps "$out/sqlite.txt")" "$(import_rps "$out/pg.txt")" ""
