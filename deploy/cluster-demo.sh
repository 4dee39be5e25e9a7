#!/usr/bin/env bash
# A browserd cluster on one machine, as a worked example of docs/cluster.md: PostgreSQL, two
# browserd nodes sharing it, and nginx in front with deploy/nginx/browserd.conf.
#
#   deploy/cluster-demo.sh [DIR]     (DIR: where everything lives; default ./cluster-demo)
#
# Ports (loopback only): nginx 8080 (API) and 9222 (CDP); node-a 8081/9223, node-b 8082/9224;
# PostgreSQL on a free port. Prints the API URL, an API key and the CDP endpoint, then runs
# until Ctrl-C, which stops the nodes (their running sessions end as worker_disconnect),
# nginx and PostgreSQL. PostgreSQL is started by tests/pg/pgserver.py (initdb in DIR, password
# authentication; as root it runs as an unprivileged user it creates); in production use your
# own server and give its URI to every node with --db.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=$(mkdir -p "${1:-cluster-demo}" && cd "${1:-cluster-demo}" && pwd)
BIN=${BROWSERD_BIN:-$ROOT/build-release/browserd}

scripts/install-deps.sh run
for tool in nginx /usr/lib/postgresql/15/bin/postgres; do
  command -v "$tool" >/dev/null 2>&1 || { echo "cluster-demo: $tool is missing (apt-get install nginx postgresql)" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then
  [ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >/dev/null
  ninja -C build-release >/dev/null
fi

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -f "$DIR/nginx.pid" ] && kill -QUIT "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
  python3 "$ROOT/tests/pg/pgserver.py" stop "$DIR/pg" >/dev/null 2>&1 || true
  echo "cluster-demo: stopped" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$DIR/pg"
python3 tests/pg/pgserver.py start "$DIR/pg" >"$DIR/pg.env"
DB=$(python3 tests/pg/pgserver.py createdb "$DIR/pg")

start_node() { # NAME API_PORT CDP_PORT
  "$BIN" --db "$DB" serve --node-id "$1" --api-listen "127.0.0.1:$2" --cdp-listen "127.0.0.1:$3" \
    --spool "$DIR/$1.spool" >"$DIR/$1.out" 2>"$DIR/$1.log" &
  pids+=($!)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cluster-demo: $1 did not start; its log:" >&2
  tail -20 "$DIR/$1.log" >&2
  exit 1
}
start_node node-a 8081 9223 # the first node on the new database creates the default customer
start_node node-b 8082 9224

mkdir -p "$DIR/nginx-tmp"
cat >"$DIR/nginx.conf" <<CONF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log $DIR/nginx-access.log;
    client_body_temp_path $DIR/nginx-tmp/body;
    proxy_temp_path $DIR/nginx-tmp/proxy;
    fastcgi_temp_path $DIR/nginx-tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx-tmp/uwsgi;
    scgi_temp_path $DIR/nginx-tmp/scgi;
    include $ROOT/deploy/nginx/browserd.conf;
}
CONF
nginx -p "$DIR" -c "$DIR/nginx.conf"

KEY=$(grep '^api_key=' "$DIR/node-a.out" | cut -d= -f2)
PW=$(grep '^zone_password=' "$DIR/node-a.out" | cut -d= -f2)
cat <<INFO
browserd cluster: node-a and node-b on PostgreSQL, behind nginx
  API:  http://127.0.0.1:8080/browser_sessions      key: $KEY
  CDP:  ws://brd-customer-default-zone-scraping_browser1:$PW@127.0.0.1:9222
  try:  curl -H 'Authorization: Bearer $KEY' http://127.0.0.1:8080/browser_sessions
  logs: $DIR/node-a.log $DIR/node-b.log $DIR/nginx-error.log
Ctrl-C stops everything.
INFO
wait "${pids[0]}"
