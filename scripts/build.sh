#!/usr/bin/env bash
# build.sh -- configure and build tiermem out of tree.
#
# usage: scripts/build.sh BUILD_DIR [configure arguments...]
# Regenerates the autotools files when configure is missing or older than
# configure.ac / Makefile.am.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [configure args]" >&2; exit 2; }
build=$1
shift
if [ ! -x "$root/configure" ] || [ "$root/configure.ac" -nt "$root/configure" ] ||
    [ "$root/Makefile.am" -nt "$root/Makefile.in" ]; then
    (cd "$root" && autoreconf -fi >/dev/null 2>&1) ||
        { (cd "$root" && autoreconf -fi); exit 1; }
fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "${TM_RECONFIGURE:-0}" = 1 ]; then
    "$root/configure" -q "$@"
fi
make -j"$(nproc)" >/dev/null
