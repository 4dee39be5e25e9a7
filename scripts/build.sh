#!/usr/bin/env bash
# Builds browserd for use (release build in build-release/), installing the Debian packages it
# needs first; optionally installs it (`meson install`: the binary, the man page, the systemd
# unit, the sysusers.d entry, the example environment file) under a staging directory.
# Used by scripts/run.sh and the Dockerfile.
#   Usage: scripts/build.sh [--prefix DIR] [--destdir DIR]
#     --prefix DIR    installation prefix (default /usr/local; /usr puts the configuration in /etc)
#     --destdir DIR   run `meson install` into DIR (a staging copy of the prefix)
#   BROWSERD_BUILD_DIR overrides the build directory (default build-release).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${BROWSERD_BUILD_DIR:-$repo/build-release}
prefix="" destdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    *) echo "usage: scripts/build.sh [--prefix DIR] [--destdir DIR]" >&2; exit 2 ;;
  esac
done
"$repo/scripts/install-deps.sh" run
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$repo" --buildtype=release ${prefix:+--prefix="$prefix"} >/dev/null
elif [ -n "$prefix" ]; then
  meson configure "$dir" --prefix="$prefix" >/dev/null
fi
ninja -C "$dir" browserd >/dev/null
if [ -n "$destdir" ]; then
  meson install -C "$dir" --no-rebuild --quiet --destdir "$destdir"
fi
