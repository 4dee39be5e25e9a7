#!/usr/bin/env bash
# Installs the Debian 12 packages browserd needs to build, run and test, when missing.
# Usage: scripts/install-deps.sh [run|test]   (test adds the test and fuzz tool chain, the
# PostgreSQL 15 server the tests start privately (tests/pg/pgserver.py), and Chromium and
# Node.js for the end-to-end tests; the e2e npm packages come from tests/e2e/run.sh)
set -euo pipefail
want=(gcc pkg-config meson ninja-build libuv1-dev libhttp-parser-dev libsqlite3-dev libpq-dev libcjson-dev libssl-dev)
if [ "${1:-run}" = test ]; then
  want+=(libcmocka-dev python3 clang libclang-rt-14-dev chromium postgresql)
  # the machine image brings its own Node.js (20); Debian's only where there is none
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi
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
