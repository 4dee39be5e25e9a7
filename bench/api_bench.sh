#!/usr/bin/env bash
# The API benchmark of browserd: GET /browser_sessions under a mix of query shapes.
#
#   bench/api_bench.sh            full run: 1,000,000 sessions (bench_a) + 200,000 (bench_b)
#   bench/api_bench.sh --quick    smoke run: 100,000 + 20,000, shorter load phases
#
# Options: --mix-seconds S (default 30; quick 5), --connections N (default 32),
#          --build DIR (default build-release), --browserd PATH (bench another binary
#          instead of DIR/browserd), --keep-db (leave the temp DB and serve log),
#          --per-shape (also run each shape alone: its own req/s and latency; +3 s a shape),
#          --postgres (the node on PostgreSQL: a private server started here, tests/pg/pgserver.py,
#          instead of an SQLite file; bench/api_bench_stores.sh compares the two in one run).
#
# Steps: release build (meson setup build-release --buildtype=release if absent; ninja),
# generate data into bench/data/ (cached by seed and count), temp DB, import and time it,
# serve on a free loopback port, correctness pass (every shape's total and first session_id
# against bench/expected_totals.py), warm-up, unloaded latency (1 connection), the HTTP
# server's ceiling (GET /healthz, N connections), the mix (N connections), nginx serving the
# default list's body as a static file (the HTTP limit of this machine: the goal is the mix at
# >= 0.5x of it; NGINX_WORKERS=1 by default), RSS, verdicts.
# Targets are reported as met / not met; the exit status is non-zero only for errors
# (non-200 responses, wrong totals, a daemon that does not start), never for timing.
# See docs/benchmarks.md. Loopback only; everything started here is stopped on exit.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0 MIX_SECONDS= CONNS=32 BUILD=build-release KEEP_DB=0 BROWSERD= PER_SHAPE=0 POSTGRES=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --mix-seconds) MIX_SECONDS=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --browserd) BROWSERD=$(realpath "$2"); shift ;;
    --keep-db) KEEP_DB=1 ;;
    --per-shape) PER_SHAPE=1 ;;
    --postgres) POSTGRES=1 ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "api_bench: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

SEED_A=1 SEED_B=2
if [ "$QUICK" = 1 ]; then
    COUNT_A=100000 COUNT_B=20000
    MIX_SECONDS=${MIX_SECONDS:-5} HEALTHZ_SECONDS=3 UNLOADED_SECONDS=3 WARMUP_SECONDS=2 PER_SHAPE_SECONDS=1
else
    COUNT_A=1000000 COUNT_B=200000
    MIX_SECONDS=${MIX_SECONDS:-30} HEALTHZ_SECONDS=10 UNLOADED_SECONDS=10 WARMUP_SECONDS=5 PER_SHAPE_SECONDS=3
fi
TARGET_P99_MS=10
TARGET_RPS=5000
READY_TIMEOUT=300

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# ---------------------------------------------------------------- build
T_RUN=$(now)
if [ ! -f "$BUILD/build.ninja" ]; then
    log "meson setup $BUILD --buildtype=release"
    meson setup "$BUILD" --buildtype=release >/dev/null
fi
if [ -z "$BROWSERD" ]; then
    log "ninja -C $BUILD (browserd, bench tools)"
    ninja -C "$BUILD" -j2 browserd bench/gen_sessions bench/load >/dev/null
    BROWSERD=$ROOT/$BUILD/browserd
else
    log "ninja -C $BUILD (bench tools; benchmarking $BROWSERD)"
    ninja -C "$BUILD" -j2 bench/gen_sessions bench/load >/dev/null
fi
GEN=$ROOT/$BUILD/bench/gen_sessions
LOAD=$ROOT/$BUILD/bench/load

# ---------------------------------------------------------------- data (cached)
DATA=$ROOT/bench/data
mkdir -p "$DATA"
gen() { # seed count -> path
    local f=$DATA/sessions-s$1-n$2.jsonl
    if [ ! -s "$f" ]; then
        local t0; t0=$(now)
        "$GEN" --seed "$1" --count "$2" >"$f.tmp.$$"
        mv "$f.tmp.$$" "$f"
        log "generated $f ($2 rows) in $(secs_since "$t0") s"
    fi
    echo "$f"
}
FILE_A=$(gen $SEED_A $COUNT_A)
FILE_B=$(gen $SEED_B $COUNT_B)
SHAPES=$ROOT/bench/shapes.tsv
SHAPES_SUM=$(cat "$SHAPES" "$ROOT/bench/expected_totals.py" | md5sum | cut -c1-12)
EXPECTED=$DATA/expected-s$SEED_A-n$COUNT_A-$SHAPES_SUM.tsv
if [ ! -s "$EXPECTED" ]; then
    log "computing expected totals (bench/expected_totals.py, once per data set)"
    python3 "$ROOT/bench/expected_totals.py" "$FILE_A" "$SHAPES" >"$EXPECTED.tmp.$$"
    mv "$EXPECTED.tmp.$$" "$EXPECTED"
fi

# ---------------------------------------------------------------- temp DB and daemon lifecycle
TMP=$(mktemp -d "${TMPDIR:-/tmp}/browserd-bench.XXXXXX")
DB=$TMP/bench.db
SERVE_PID=
cleanup() {
    local rc=$?
    if [ -n "${NGINX_PID:-}" ]; then kill -TERM "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
    if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
        kill -TERM "$SERVE_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SERVE_PID" 2>/dev/null; then
            log "browserd did not stop within 10 s of SIGTERM; sending SIGKILL"
            kill -KILL "$SERVE_PID" 2>/dev/null || true
        fi
        wait "$SERVE_PID" 2>/dev/null || true
    fi
    if [ "$POSTGRES" = 1 ]; then python3 "$ROOT/tests/pg/pgserver.py" stop "$TMP/pg" >/dev/null 2>&1 || true; fi
    if [ "$KEEP_DB" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
STORE=SQLite
if [ "$POSTGRES" = 1 ]; then
    log "starting a private PostgreSQL server"
    python3 "$ROOT/tests/pg/pgserver.py" start "$TMP/pg" >/dev/null
    DB=$(python3 "$ROOT/tests/pg/pgserver.py" createdb "$TMP/pg")
    STORE=PostgreSQL
fi

bd() { "$BROWSERD" --db "$DB" "$@"; }
bd customer add bench_a >/dev/null
bd customer add bench_b >/dev/null
KEY_A=$(bd key add bench_a | grep -oE '\b[0-9a-f]{64}\b' | head -1)
KEY_B=$(bd key add bench_b | grep -oE '\b[0-9a-f]{64}\b' | head -1)
[ ${#KEY_A} = 64 ] && [ ${#KEY_B} = 64 ] || { echo "api_bench: key add printed no 64-hex key" >&2; exit 1; }

import() { # customer file count -> "seconds"
    local t0 out; t0=$(now)
    out=$(bd sessions import "$1" "$2")
    local s; s=$(secs_since "$t0")
    if ! grep -qw "$3" <<<"$out"; then
        echo "api_bench: import of $2 for $1 printed '$out', expected $3" >&2
        exit 1
    fi
    echo "$s"
}
log "importing $COUNT_A sessions for bench_a"
IMPORT_A_S=$(import bench_a "$FILE_A" $COUNT_A)
log "importing $COUNT_B sessions for bench_b"
IMPORT_B_S=$(import bench_b "$FILE_B" $COUNT_B)
DB_BYTES=$( (stat -c %s "$DB" "$DB-wal" "$DB-shm" 2>/dev/null || true) | awk '{ s += $1 } END { print s + 0 }')
if [ "$POSTGRES" = 1 ]; then
    DB_BYTES=$(psql -X -At "$DB" -c 'SELECT pg_database_size(current_database())')
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TARGET=127.0.0.1:$PORT
log "starting browserd serve on $TARGET"
T_SERVE=$(now)
"$BROWSERD" --db "$DB" serve --api-listen "$TARGET" --cdp-listen off >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
ready=0
for _ in $(seq $((READY_TIMEOUT * 10))); do
    if ! kill -0 "$SERVE_PID" 2>/dev/null; then break; fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$TARGET/healthz" || true)" = 200 ]; then
        ready=1; break
    fi
    sleep 0.1
done
if [ "$ready" != 1 ]; then
    echo "api_bench: browserd serve did not answer /healthz with 200 within ${READY_TIMEOUT}s; log:" >&2
    tail -20 "$TMP/serve.log" >&2
    exit 1
fi
READY_S=$(secs_since "$T_SERVE")
rss_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVE_PID/status"; }
RSS_READY_KB=$(rss_kb VmRSS)
# A first list request: the catalog may be built lazily on first use.
T_FIRST=$(now)
curl -s -o /dev/null --max-time 300 -H "Authorization: Bearer $KEY_A" "http://$TARGET/browser_sessions" || true
FIRST_S=$(secs_since "$T_FIRST")

# ---------------------------------------------------------------- correctness pass
NSHAPES=$(grep -cv -e '^#' -e '^$' "$SHAPES")
FAILURES=0
log "correctness pass: one request per shape"
"$LOAD" --target "$TARGET" --key "$KEY_A" --paths "$SHAPES" --connections 1 --requests "$NSHAPES" \
    --tsv "$TMP/check.tsv" --quiet || FAILURES=$((FAILURES + 1))
"$LOAD" --target "$TARGET" --key "$KEY_B" --path "default_bench_b=/browser_sessions" --connections 1 --requests 1 \
    --tsv "$TMP/check_b.tsv" --quiet || FAILURES=$((FAILURES + 1))
CHECK_REPORT=$(awk -F'\t' -v OFS='\t' '
    FNR == NR { exp_total[$1] = $2; exp_first[$1] = $3; next }
    $1 == "shape" || $1 == "ALL" || $1 == "RATE" { next }
    {
        verdict = "ok"
        if ($8 != exp_total[$1]) verdict = "TOTAL MISMATCH"
        else if ($10 != exp_first[$1]) verdict = "FIRST ID MISMATCH (expected " exp_first[$1] ")"
        if ($3 != 0) verdict = "ERROR RESPONSE"
        printf "%-22s %10s %10s  %-36s  %s\n", $1, $8, exp_total[$1], $10, verdict
    }' "$EXPECTED" "$TMP/check.tsv")
B_TOTAL=$(awk -F'\t' '$1 == "default_bench_b" { print $8 }' "$TMP/check_b.tsv")
MISMATCHES=$(grep -c 'MISMATCH\|ERROR' <<<"$CHECK_REPORT" || true)
[ "$B_TOTAL" = "$COUNT_B" ] || MISMATCHES=$((MISMATCHES + 1))

# ---------------------------------------------------------------- load phases
HZ=$(getconf CLK_TCK)
cpu_snap() { # machine busy jiffies (all cores), browserd jiffies
    echo "$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat)" \
        "$(awk '{ print $14 + $15 }' "/proc/$SERVE_PID/stat")"
}
# run_phase TSV LOAD-ARGS...: runs bench/load (TSV may be -), and sets PH_CPU to where the
# CPU went meanwhile: browserd, the load driver, and everything else on the machine.
run_phase() {
    local tsv=$1; shift
    local m0 d0 m1 d1 t0 el tsvarg=()
    [ "$tsv" != - ] && tsvarg=(--tsv "$tsv")
    read -r m0 d0 < <(cpu_snap)
    t0=$(now)
    "$LOAD" --target "$TARGET" --quiet "${tsvarg[@]}" "$@" || FAILURES=$((FAILURES + 1))
    el=$(secs_since "$t0")
    read -r m1 d1 < <(cpu_snap)
    local lcpu=0
    [ "$tsv" != - ] && lcpu=$(awk -F'\t' '$1 == "RATE" { print $7 }' "$tsv")
    PH_CPU=$(awk -v m=$((m1 - m0)) -v d=$((d1 - d0)) -v hz="$HZ" -v el="$el" -v l="$lcpu" -v n="$(nproc)" 'BEGIN {
        b = d / hz / el; t = m / hz / el; lc = l / el; o = t - b - lc; if (o < 0) o = 0
        printf "CPU used (of %d cores): browserd %.2f, load driver %.2f, other processes %.2f", n, b, lc, o }')
    PH_OTHER=$(awk -v x="$PH_CPU" 'BEGIN { n = split(x, a, " "); print a[n] }')
}
log "warm-up: ${WARMUP_SECONDS}s mix"
run_phase - --key "$KEY_A" --paths "$SHAPES" --connections "$CONNS" --duration "$WARMUP_SECONDS"
log "unloaded latency: ${UNLOADED_SECONDS}s, 1 connection"
run_phase "$TMP/unloaded.tsv" --key "$KEY_A" --paths "$SHAPES" --connections 1 --duration "$UNLOADED_SECONDS"
log "baseline: GET /healthz, ${HEALTHZ_SECONDS}s, $CONNS connections"
run_phase "$TMP/healthz.tsv" --key "$KEY_A" --path "healthz=/healthz" --expect '' --connections "$CONNS" \
    --duration "$HEALTHZ_SECONDS"
CPU_HEALTHZ=$PH_CPU
log "mix: ${MIX_SECONDS}s, $CONNS connections"
run_phase "$TMP/mix.tsv" --key "$KEY_A" --paths "$SHAPES" --connections "$CONNS" --duration "$MIX_SECONDS"
CPU_MIX=$PH_CPU OTHER_MIX=$PH_OTHER

# ---------------------------------------------------------------- nginx: the HTTP limit here
# The user's alternative to a list API is a static file: nginx serving browserd's own answer to
# the default list (50 sessions, ~17 KB) as a file, same load driver, same connections, same
# duration. NGINX_WORKERS (default 1: browserd answers from one loop thread).
NGINX_RPS= NGINX_BYTES=
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
if [ -x "$NGINX_BIN" ]; then
    mkdir -p "$TMP/nginx/root" "$TMP/nginx/logs"
    curl -s --max-time 30 -H "Authorization: Bearer $KEY_A" "http://$TARGET/browser_sessions" >"$TMP/nginx/root/sessions.json"
    NGINX_BYTES=$(stat -c %s "$TMP/nginx/root/sessions.json")
    NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$TMP/nginx/nginx.conf" <<NGINX
worker_processes ${NGINX_WORKERS:-1};
user $(id -un) $(id -gn);
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    types { application/json json; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/nginx/root;
    }
}
NGINX
    "$NGINX_BIN" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' 2>"$TMP/nginx/logs/stderr" &
    NGINX_PID=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/sessions.json" && break; sleep 0.1; done
    log "baseline: nginx (${NGINX_WORKERS:-1} worker) serving the default list as a file ($NGINX_BYTES bytes), ${MIX_SECONDS}s, $CONNS connections"
    SAVED_TARGET=$TARGET
    TARGET=127.0.0.1:$NGINX_PORT
    run_phase "$TMP/nginx.tsv" --path "nginx_static=/sessions.json" --connections "$CONNS" --duration "$MIX_SECONDS"
    TARGET=$SAVED_TARGET
    CPU_NGINX=$(sed 's/browserd/nginx (not counted: not browserd)/' <<<"$PH_CPU")
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
    NGINX_RPS=$(awk -F'\t' '$1 == "RATE" { printf "%.0f", $2 }' "$TMP/nginx.tsv")
else
    log "no nginx ($NGINX_BIN): the nginx baseline is skipped (scripts/install-deps.sh test installs it)"
fi
PER_SHAPE_REPORT=
if [ "$PER_SHAPE" = 1 ]; then
    log "per shape: each shape alone, ${PER_SHAPE_SECONDS}s, $CONNS connections"
    while IFS=$'\t' read -r name path; do
        case "$name" in '' | '#'*) continue ;; esac
        run_phase "$TMP/one.tsv" --key "$KEY_A" --path "$name=$path" --connections "$CONNS" \
            --duration "$PER_SHAPE_SECONDS"
        PER_SHAPE_REPORT+=$(awk -F'\t' -v n="$name" -v c="$PH_CPU" '
            $1 == n { p50 = $5 / 1000; p99 = $6 / 1000 } $1 == "RATE" { r = $2 }
            END { sub(/^CPU used \(of [0-9]+ cores\): /, "", c); printf "%-22s %9.0f %9.3f %9.3f   %s\n", n, r, p50, p99, c }' "$TMP/one.tsv")$'\n'
    done <"$SHAPES"
fi
RSS_KB=$(rss_kb VmRSS)
HWM_KB=$(rss_kb VmHWM)
THREADS=$(rss_kb Threads)

# ---------------------------------------------------------------- report
rate() { awk -F'\t' '$1 == "RATE" { printf "%.0f", $2 }' "$1"; }
errors_of() { awk -F'\t' '$1 == "RATE" { print $5 }' "$1"; }
MIX_RPS=$(rate "$TMP/mix.tsv")
HEALTHZ_RPS=$(rate "$TMP/healthz.tsv")
ROWS=$((COUNT_A + COUNT_B))
REPORT=$DATA/last_report.txt
{
    echo "browserd API benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)'); $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "data: bench_a $COUNT_A sessions (seed $SEED_A), bench_b $COUNT_B (seed $SEED_B); store $STORE, DB $((DB_BYTES / 1048576)) MiB"
    echo
    echo "import:  bench_a $COUNT_A rows in ${IMPORT_A_S} s = $(awk -v n=$COUNT_A -v s="$IMPORT_A_S" 'BEGIN { printf "%.0f", n / s }') rows/s;" \
        "bench_b $COUNT_B rows in ${IMPORT_B_S} s = $(awk -v n=$COUNT_B -v s="$IMPORT_B_S" 'BEGIN { printf "%.0f", n / s }') rows/s"
    CATALOG_LINE=$(grep -m1 -E 'catalog_loaded|catalog.*(ms|load)' "$TMP/serve.log" || true)
    echo "startup: serve answered /healthz after ${READY_S} s; first list request took ${FIRST_S} s; RSS then $((RSS_READY_KB / 1024)) MiB"
    [ -n "$CATALOG_LINE" ] && echo "         serve log: $CATALOG_LINE"
    echo
    echo "correctness (first response of each shape vs bench/expected_totals.py):"
    printf "%-22s %10s %10s  %-36s  %s\n" shape total expected "first session_id" verdict
    echo "$CHECK_REPORT"
    echo "bench_b default total: $B_TOTAL (expected $COUNT_B: $([ "$B_TOTAL" = "$COUNT_B" ] && echo ok || echo MISMATCH))"
    echo
    echo "latency per shape, ms (unloaded = 1 connection, ${UNLOADED_SECONDS}s; mix = $CONNS connections, ${MIX_SECONDS}s):"
    printf "%-22s %8s %9s %9s %9s | %8s %9s %9s %9s\n" shape n1 "p50" "p99" "max" "n$CONNS" "p50" "p99" "max"
    awk -F'\t' '
        FNR == NR { if ($1 != "shape" && $1 != "RATE") { u[$1] = sprintf("%8d %9.3f %9.3f %9.3f", $2, $5 / 1000, $6 / 1000, $7 / 1000) } next }
        $1 == "shape" || $1 == "RATE" { next }
        { printf "%-22s %s | %8d %9.3f %9.3f %9.3f\n", $1, u[$1], $2, $5 / 1000, $6 / 1000, $7 / 1000 }
    ' "$TMP/unloaded.tsv" "$TMP/mix.tsv"
    echo
    echo "throughput with $CONNS connections:"
    echo "  mix:     $MIX_RPS req/s ($(errors_of "$TMP/mix.tsv") errors)"
    echo "  healthz: $HEALTHZ_RPS req/s ($(errors_of "$TMP/healthz.tsv") errors) — the HTTP server's own ceiling;" \
        "$(awk -F'\t' '$1 == "healthz" { printf "p50 %.3f ms, p99 %.3f ms, max %.3f ms", $5 / 1000, $6 / 1000, $7 / 1000 }' "$TMP/healthz.tsv")"
    echo "  mix / healthz = $(awk -v a="$MIX_RPS" -v b="$HEALTHZ_RPS" 'BEGIN { printf "%.2f", b ? a / b : 0 }')"
    if [ -n "$NGINX_RPS" ]; then
        echo "  nginx:   $NGINX_RPS req/s serving the default list ($NGINX_BYTES bytes) as a static file, ${NGINX_WORKERS:-1} worker;" \
            "$(awk -F'\t' '$1 == "nginx_static" { printf "p50 %.3f ms, p99 %.3f ms", $5 / 1000, $6 / 1000 }' "$TMP/nginx.tsv")"
        NGINX_RATIO=$(awk -v a="$MIX_RPS" -v b="$NGINX_RPS" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
        echo "  mix / nginx = $NGINX_RATIO (goal >= 0.5: $(awk -v r="$NGINX_RATIO" 'BEGIN { print (r >= 0.5) ? "met" : "NOT MET" }'))"
        printf '=measure\tapi mix / nginx\t%s\thigher\n' "$NGINX_RATIO"
    fi
    echo "  during the mix:     $CPU_MIX"
    echo "  during the healthz: $CPU_HEALTHZ"
    if awk -v o="$OTHER_MIX" 'BEGIN { exit !(o > 0.2) }'; then
        echo "  NOTE: other processes took $OTHER_MIX cores during the mix: the machine was shared; the figures are pessimistic"
    fi
    if [ -n "$PER_SHAPE_REPORT" ]; then
        echo
        echo "each shape alone, $CONNS connections, ${PER_SHAPE_SECONDS}s:"
        printf "%-22s %9s %9s %9s   %s\n" shape "req/s" "p50 ms" "p99 ms" "CPU (cores)"
        printf "%s" "$PER_SHAPE_REPORT"
    fi
    echo "memory after load: VmRSS $((RSS_KB / 1024)) MiB = $((RSS_KB * 1024 / ROWS)) bytes per session ($ROWS sessions);" \
        "peak VmHWM $((HWM_KB / 1024)) MiB; $THREADS threads"
    echo
    printf '=measure\tapi mix req/s\t%s\thigher\n' "$MIX_RPS"
    awk -F'\t' '$1 != "shape" && $1 != "ALL" && $1 != "RATE" && $6 > max { max = $6 } END { printf "=measure\tapi worst shape p99 under the mix (ms)\t%.3f\tlower\n", max / 1000 }' "$TMP/mix.tsv"
    SLOW=$(awk -F'\t' -v t=$TARGET_P99_MS '$1 != "shape" && $1 != "ALL" && $1 != "RATE" && $6 / 1000 >= t { printf "%s%s (%.2f ms)", sep, $1, $6 / 1000; sep = ", " }' "$TMP/mix.tsv")
    if [ -z "$SLOW" ]; then
        echo "target: every shape p99 < ${TARGET_P99_MS} ms under the $CONNS-connection mix: met"
    else
        echo "target: every shape p99 < ${TARGET_P99_MS} ms under the $CONNS-connection mix: NOT MET — $SLOW"
    fi
    if [ "$MIX_RPS" -ge "$TARGET_RPS" ]; then
        echo "target: mix >= $TARGET_RPS req/s with $CONNS connections: met ($MIX_RPS req/s)"
    else
        echo "target: mix >= $TARGET_RPS req/s with $CONNS connections: NOT MET ($MIX_RPS req/s)"
    fi
    [ "$QUICK" = 1 ] && echo "(--quick: $ROWS rows, short phases; the targets are defined for the full run)"
    echo "correctness: $([ "$MISMATCHES" = 0 ] && echo ok || echo "$MISMATCHES MISMATCHES"); load errors: $([ "$FAILURES" = 0 ] && echo none || echo "$FAILURES phases with errors")"
    echo "whole run: $(secs_since "$T_RUN") s"
} | tee "$REPORT"
log "report saved to $REPORT"
[ "$MISMATCHES" = 0 ] && [ "$FAILURES" = 0 ]
