#!/usr/bin/env bash
# deps.sh -- install what building and testing tiermem needs, from Debian 12
# packages.  Runs apt-get only as root and only for packages that are missing,
# so a second run costs nothing.
set -euo pipefail

packages=(
    # build
    build-essential autoconf automake libtool pkg-config
    libjemalloc-dev libnuma-dev libpfm4-dev uthash-dev
    # tests: clang for the ThreadSanitizer build and libFuzzer, numactl for
    # inspection
    clang libclang-rt-14-dev numactl
    # real programs under the preload library (tests/preload/run.sh), and
    # the main job's BoomerAMG solve (scripts/run-example.sh)
    python3 openmpi-bin libopenmpi-dev libhypre-dev gfortran g++
    # the compiler path: the pass plugin is built for, and loaded by, LLVM
    # 16's clang (doc/compiler.md)
    llvm-16-dev clang-16
    # tiermem-fortran: flang-new-16 takes the same plugin; linking a Fortran
    # program needs its runtime archives (libFortranRuntime.a ...)
    flang-16 libflang-16-dev
    # the multi-node guest rig (tests/guest/run-rig.sh)
    qemu-system-x86 busybox-static cpio xz-utils binutils
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
