#!/usr/bin/env bash
# The first five minutes: builds browserd, starts it on an embedded SQLite database, and first
# prints what a new user needs: the API URL, a working API key, the CDP connection string
# for Puppeteer and Playwright and the WebDriver URL for Selenium.
#   Usage: scripts/run.sh [--db PATH] [any `browserd serve` option, e.g. --pool 1 --max-sessions 5]
# Every option after --db goes to `browserd serve` as it is (see browserd --help); --api-listen
# and --cdp-listen are also shown in what is printed. Relative paths are the caller's.
#
# Credentials: the database keeps API keys and zone passwords only as hashes, so they can be
# shown only when they are made. When run.sh creates the database it keeps the key and the
# zone password it made in DB.credentials (mode 0600, beside the database) and shows them
# again on every start. On a database it did not create, it makes a new API key (and keeps
# it), but it cannot know the zone's password: it says how to make a zone with a new one.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "scripts/run.sh: $*" >&2; exit 2; }

db=${BROWSERD_DB:-./browserd.db}
listen=${BROWSERD_API_LISTEN:-127.0.0.1:8080}
cdp=${BROWSERD_CDP_LISTEN:-127.0.0.1:9222}
serve_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --db) [ $# -ge 2 ] || die "--db needs a PATH"; db=$2; shift 2 ;;
    --db=*) db=${1#--db=}; shift ;;
    --api-listen) [ $# -ge 2 ] || die "--api-listen needs HOST:PORT"; listen=$2; shift 2 ;;
    --api-listen=*) listen=${1#--api-listen=}; shift ;;
    --cdp-listen) [ $# -ge 2 ] || die "--cdp-listen needs HOST:PORT or off"; cdp=$2; shift 2 ;;
    --cdp-listen=*) cdp=${1#--cdp-listen=}; shift ;;
    --*=*) serve_args+=("$1"); shift ;;
    --*) [ $# -ge 2 ] || die "$1 needs a value (see browserd --help)"; serve_args+=("$1" "$2"); shift 2 ;;
    *) die "unexpected '$1' (usage: scripts/run.sh [--db PATH] [serve options...])" ;;
  esac
done
case "$db" in *://*) die "run.sh runs on an SQLite file; for a database server use browserd serve (docs/install.md)" ;; esac

"$repo/scripts/build.sh"
bin=$repo/build-release/browserd
b() { "$bin" --db "$db" "$@"; }

# "HOST:PORT" as a client on this machine reaches it (a wildcard address means loopback)
reach() {
  case "$1" in
    0.0.0.0:*) echo "127.0.0.1:${1#0.0.0.0:}" ;;
    "[::]:"*) echo "[::1]:${1#\[::\]:}" ;;
    *) echo "$1" ;;
  esac
}

creds=$db.credentials
key="" key_id="" password=""
if [ ! -e "$db" ]; then
  (umask 077 && : >"$creds")
  b customer add default >/dev/null
  password=$(b zone add default scraping_browser1)
  key=$(b key add default)
  key_id=$(b key list default | cut -f1)
  printf '# scripts/run.sh made these when it created %s (the database keeps only hashes)\napi_key=%s\nkey_id=%s\nzone=scraping_browser1\nzone_password=%s\n' \
    "$db" "$key" "$key_id" "$password" >"$creds"
elif [ -f "$creds" ]; then
  key=$(sed -n 's/^api_key=//p' "$creds")
  key_id=$(sed -n 's/^key_id=//p' "$creds")
  password=$(sed -n 's/^zone_password=//p' "$creds")
fi
# a kept key that was revoked (or none kept): a new one, kept in its place
keys=$(b key list default)
if [ -z "$key" ] || ! grep -q "^$key_id	.*	active\$" <<<"$keys"; then
  before=$(cut -f1 <<<"$keys")
  key=$(b key add default)
  key_id=$(b key list default | cut -f1 | grep -vxF -e "$before" | head -1 || true)
  [ -f "$creds" ] || (umask 077 && printf '# scripts/run.sh: kept for its next start (the database keeps only hashes)\n' >"$creds")
  sed -i -e '/^api_key=/d' -e '/^key_id=/d' "$creds"
  printf 'api_key=%s\nkey_id=%s\n' "$key" "$key_id" >>"$creds"
fi

api=$(reach "$listen")
echo "browserd API:  http://$api/browser_sessions"
echo "dashboard:     http://$api/ (sign in with the API key)"
echo "API key:       $key"
if [ "$cdp" = off ]; then
  echo "CDP endpoint:  off (--cdp-listen off)"
elif [ -n "$password" ]; then
  echo "CDP endpoint:  ws://brd-customer-default-zone-scraping_browser1:$password@$(reach "$cdp")"
  echo "               (Playwright's connectOverCDP: the same with http://)"
else
  echo "CDP endpoint:  ws://brd-customer-default-zone-ZONE:PASSWORD@$(reach "$cdp")"
  echo "               this database was not made by run.sh, so its zone passwords are unknown here (they are"
  echo "               shown once, when a zone is made): make a zone with a new one, and use it as ZONE above:"
  echo "               $bin --db $db zone add default ZONE"
fi
# the WebDriver endpoint: --webdriver-listen (given among the serve options), else the CDP host, port 9515
wd=${BROWSERD_WEBDRIVER_LISTEN:-}
for ((i = 0; i < ${#serve_args[@]}; i++)); do
  case "${serve_args[$i]}" in
    --webdriver-listen) wd=${serve_args[$((i + 1))]:-} ;;
    --webdriver-listen=*) wd=${serve_args[$i]#--webdriver-listen=} ;;
  esac
done
[ -z "$wd" ] && wd="${cdp%:*}:9515"
if [ "$cdp" = off ] || [ "$wd" = off ]; then
  echo "WebDriver:     off"
elif [ -n "$password" ]; then
  echo "WebDriver:     http://brd-customer-default-zone-scraping_browser1:$password@$(reach "$wd") (Selenium's remote URL)"
else
  echo "WebDriver:     http://brd-customer-default-zone-ZONE:PASSWORD@$(reach "$wd") (Selenium's remote URL)"
fi
echo "credentials:   $creds (mode 0600; keep it private)"
echo "try:           curl -H 'Authorization: Bearer $key' http://$api/browser_sessions"
exec "$bin" --db "$db" serve --api-listen "$listen" --cdp-listen "$cdp" ${serve_args[@]+"${serve_args[@]}"}
