#!/usr/bin/env bash
# The soak (outside CI): 30 minutes of session churn against one browserd, then the books
# (tests/soak/soak.js: every session recorded once and as its ending predicts; no leaked fds,
# processes or temporary directories; RSS growth <= 5 % after the first 5 minutes).
#
#   tests/soak/soak.sh [--minutes M] [--workers W] [--browserd PATH]
#
# Builds build-release unless --browserd is given. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSERD=
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --browserd) BROWSERD=$2; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1") ;;
    esac
    shift
done
if [ -z "$BROWSERD" ]; then
    [ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >/dev/null
    ninja -C build-release -j2 browserd >/dev/null
    BROWSERD=build-release/browserd
fi
[ -d tests/e2e/node_modules/puppeteer-core ] || (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >&2)
exec node tests/soak/soak.js --browserd "$BROWSERD" "${ARGS[@]}"
