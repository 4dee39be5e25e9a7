#!/usr/bin/env bash
# Functional checks of bench/load against bench/fake_server.py (no browserd needed).
#   bench/test_load.sh [BUILD_DIR]     (default build-bench; builds bench/load there)
# Prints one line per check and "N passed, N failed"; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-bench}
[ -d "$BUILD" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" -j2 bench/load >/dev/null || exit 1
LOAD=$BUILD/bench/load
TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    PORT=$(free_port)
    python3 bench/fake_server.py "$PORT" "$@" >"$TMP/server.out" 2>"$TMP/server.err" &
    SERVER_PID=$!
    for _ in $(seq 50); do grep -q ready "$TMP/server.out" 2>/dev/null && return 0; sleep 0.1; done
    echo "fake server did not start"; exit 1
}

pass=0 fail=0
check() { # name, condition (evaluated)
    if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; cat "$TMP/out"; fi
}
run() { "$LOAD" --target "127.0.0.1:$PORT" --key testkey "$@" >"$TMP/out" 2>&1; echo $? >"$TMP/rc"; }
rc() { cat "$TMP/rc"; }
col() { awk -v s="$1" -v c="$2" -F'\t' '$1==s {print $c}' "$TMP/tsv"; }

start_server

printf 'a\t/ok?total=11\nb\t/ok?total=22\n# comment\n\nc\t/chunked\n' >"$TMP/paths"
run --paths "$TMP/paths" --connections 4 --requests 300 --tsv "$TMP/tsv"
check "requests mode: exit 0" '[ "$(rc)" = 0 ]'
check "round robin: 100 per shape" '[ "$(col a 2)" = 100 ] && [ "$(col b 2)" = 100 ] && [ "$(col c 2)" = 100 ]'
check "first total per shape" '[ "$(col a 8)" = 11 ] && [ "$(col b 8)" = 22 ] && [ "$(col c 8)" = 7 ]'
check "chunked body parsed" '[ "$(col c 3)" = 0 ]'
check "RATE row" '[ "$(awk -F"\t" "\$1==\"RATE\" {print \$4}" "$TMP/tsv")" = 300 ]'
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
check "keep-alive: 300 requests over 4 connections" 'grep -q "requests=300 connections=4$" "$TMP/server.err"'
start_server

run --path 'e=/status/500' --path 'ok=/ok' --connections 2 --requests 20 --tsv "$TMP/tsv"
check "non-200 counted as errors, exit 1" '[ "$(rc)" = 1 ] && [ "$(col e 3)" = 10 ] && [ "$(col ok 3)" = 0 ]'

run --path 'nt=/nototal' --connections 1 --requests 5 --tsv "$TMP/tsv"
check "body without total is an error" '[ "$(rc)" = 1 ] && [ "$(col nt 3)" = 5 ]'
run --path 'nt=/nototal' --connections 1 --requests 5 --expect '' --tsv "$TMP/tsv"
check "--expect '' disables the body check" '[ "$(rc)" = 0 ] && [ "$(col nt 3)" = 0 ]'

run --path 'cl=/close' --connections 3 --requests 30 --tsv "$TMP/tsv"
check "Connection: close reconnects" '[ "$(rc)" = 0 ] && [ "$(col cl 2)" = 30 ]'

run --path 'v=/varying' --connections 1 --requests 5 --tsv "$TMP/tsv"
check "changing total is reported" '[ "$(col v 9)" = 4 ]'

run --path 'slow=/slow?ms=50' --connections 2 --requests 10 --tsv "$TMP/tsv"
check "latency measured (p50 >= 50 ms)" 'awk -v x="$(col slow 5)" "BEGIN{exit !(x >= 50000 && x < 200000)}"'
run --path 'slow=/slow?ms=800' --connections 1 --requests 2 --timeout 0.3 --tsv "$TMP/tsv"
check "timeout is an error" '[ "$(rc)" = 1 ] && [ "$(col slow 3)" = 2 ]'

SECONDS_START=$(date +%s%N)
run --path 'ok=/ok' --connections 8 --duration 1 --tsv "$TMP/tsv"
ELAPSED_MS=$(( ($(date +%s%N) - SECONDS_START) / 1000000 ))
check "duration mode stops after ~1 s" '[ "$(rc)" = 0 ] && [ "$ELAPSED_MS" -lt 2500 ] && [ "$(col ok 2)" -gt 50 ]'

start_server --drop-after 3
run --path 'ok=/ok' --connections 4 --requests 200 --tsv "$TMP/tsv"
check "server closing idle keep-alive: reissued, no errors" '[ "$(rc)" = 0 ] && [ "$(col ok 2)" = 200 ]'

kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
run --path 'ok=/ok' --connections 2 --requests 10
check "server down: exits non-zero, does not hang" '[ "$(rc)" != 0 ]'

"$LOAD" --target 10.0.0.1:80 --path 'ok=/ok' --requests 1 >"$TMP/out" 2>&1
check "non-loopback target refused" '[ $? = 2 ] && grep -q refusing "$TMP/out"'

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
