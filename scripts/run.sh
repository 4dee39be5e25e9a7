#!/usr/bin/env bash
# Builds browserd and starts it on an embedded SQLite database, printing the API URL and a
# working API key first.   Usage: scripts/run.sh [--db PATH] [--api-listen HOST:PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
db="${BROWSERD_DB:-./browserd.db}"
listen="${BROWSERD_API_LISTEN:-127.0.0.1:8080}"
while [ $# -gt 0 ]; do
  case "$1" in
    --db) db="$2"; shift 2 ;;
    --api-listen) listen="$2"; shift 2 ;;
    *) echo "usage: scripts/run.sh [--db PATH] [--api-listen HOST:PORT]" >&2; exit 2 ;;
  esac
done
scripts/install-deps.sh run
[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release >/dev/null
bin=build-release/browserd
zone_line=""
if [ ! -f "$db" ]; then
  "$bin" --db "$db" customer add default >/dev/null
  zone_line="zone:          scraping_browser1  password: $("$bin" --db "$db" zone add default scraping_browser1)"
fi
# Keys are stored hashed, so the one made when the database was created cannot be shown
# again: every start makes a fresh one (revoke old ones with `browserd key revoke`).
key=$("$bin" --db "$db" key add default)
echo "browserd API:  http://$listen/browser_sessions"
echo "API key:       $key"
[ -n "$zone_line" ] && echo "$zone_line"
echo "try:           curl -H 'Authorization: Bearer $key' http://$listen/browser_sessions"
exec "$bin" --db "$db" serve --api-listen "$listen"
