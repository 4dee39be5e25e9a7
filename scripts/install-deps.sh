#!/usr/bin/env bash
# Installs the Debian 12 packages browserd needs, when missing.
# Usage: scripts/install-deps.sh [run|test|runtime]
#   run      what building and running from this tree needs (scripts/build.sh, scripts/run.sh)
#   test     run + runtime + the test and fuzz tool chain, Chromium, ChromeDriver, Selenium for Python and Node.js for the
#            end-to-end and OpenAPI tests (their npm packages come from their run.sh), what
#            the packaging tests use (systemd-analyze, man, groff), the PostgreSQL 15 server the
#            tests start privately (tests/pg/pgserver.py) and nginx for the cluster test
#   runtime  only what the installed binary needs to run (the Dockerfile's final image)
set -euo pipefail
build=(gcc pkg-config meson ninja-build libuv1-dev libhttp-parser-dev libsqlite3-dev libcjson-dev libssl-dev libpq-dev)
# the shared libraries of the binary (tests/packaging checks this list against its NEEDED
# entries), the browser, certificates and fonts for the pages, curl for the container's health check
runtime=(libuv1 libhttp-parser2.9 libsqlite3-0 libpq5 libcjson1 libssl3 chromium chromium-driver ca-certificates fonts-liberation curl)
case "${1:-run}" in
  run) want=("${build[@]}") ;;
  runtime) want=("${runtime[@]}") ;;
  test)
    want=("${build[@]}" "${runtime[@]}" libcmocka-dev openssl python3 python3-prometheus-client python3-selenium clang libclang-rt-14-dev systemd man-db groff-base util-linux postgresql nginx)
    # the machine image brings its own Node.js (20); Debian's only where there is none
    command -v node >/dev/null 2>&1 || want+=(nodejs)
    command -v npm >/dev/null 2>&1 || want+=(npm)
    ;;
  *) echo "usage: scripts/install-deps.sh [run|test|runtime]" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
