#!/usr/bin/env bash
# run-rig.sh -- tiermem's multi-node QEMU test rig.
#
# usage: tests/guest/run-rig.sh BUILD_DIR [TOPOLOGY...]
#
# BUILD_DIR is an out-of-tree build of tiermem in which `make` has built
# libtiermem.la (the static archive BUILD_DIR/.libs/libtiermem.a is linked
# into the guest tests) and libtiermem-preload.la (the LD_PRELOAD library
# the dyn_* tests run under).  On a fresh Debian 12 machine, as root, this:
#   1. installs qemu-system-x86, busybox-static, cpio (and the compilers and
#      static libraries the guest tests need) with apt-get, when missing;
#   2. downloads Debian's 6.1 kernel package (the one linux-image-amd64
#      depends on) with `apt-get download`, unpacks it with `dpkg-deb -x`
#      (it is never installed) and extracts the uncompressed vmlinux from the
#      bzImage for a PVH boot; both are cached;
#   3. links every tests/guest/guest_*.c statically against libtiermem.a,
#      every tests/guest/dyn_*.c dynamically without tiermem (they run under
#      the LD_PRELOAD library), every dyn_cc_*.c with the build's tiermem-cc
#      (a skip when the build has no compiler path), and packs them with busybox, init.sh,
#      libtiermem-preload.so, the tiermem-guide tool (/usr/bin, for
#      dyn_guide) and the shared libraries those need into an initramfs;
#   4. boots one TCG guest per topology and collects the TMTEST lines the
#      tests print on the guest's second serial port;
#   5. prints "N passed, N failed, N skipped" last and exits non-zero on any
#      failure; a guest that did not boot or did not finish is a failure.
#
# Environment (all optional):
#   TM_GUEST_TOPOLOGY  topologies to boot, e.g. "2" or "1 3" (default
#                      "1 2 3"; arguments after BUILD_DIR override it)
#   TM_GUEST_TESTS     test programs to build and run, e.g.
#                      "guest_migrate dyn_guidance" (default: every guest_*.c
#                      and dyn_*.c)
#   TM_GUEST_CACHE     kernel cache (default BUILD_DIR/guest-cache)
#   TM_GUEST_KERNEL    auto (default: vmlinux/PVH, bzImage if that fails),
#                      vmlinux or bzimage
#   TM_GUEST_TIMEOUT   seconds one guest may run in all (default 300)
#   TM_GUEST_TEST_TIMEOUT  seconds one test program may run (default 240)
#   TM_GUEST_BOOT_TIMEOUT  seconds until /init must have started (default 90)
#   TM_GUEST_APPEND    extra kernel command-line words (e.g. "loglevel=7")
#   TM_GUEST_ENV       environment for the guest tests, space-separated
#                      NAME=VALUE words without spaces in them, e.g.
#                      "TIERMEM_LOG=debug TM_STORM_ITERS=48"
#   TM_GUEST_VERBOSE=1 print every guest's full results log, not only the
#                      failing ones
#   TM_GUEST_NO_INSTALL=1  never call apt-get (fail if something is missing)
#   TM_GUEST_CFLAGS    extra compiler flags for the guest tests
#   TM_GUEST_EXTRA_SRC programs from outside tests/guest, space-separated
#                      paths (e.g. bench/guest/bench_x.c): built and run like
#                      dyn_*.c, named dyn_<file name> (for TM_GUEST_TESTS)
#
# Logs of the last run stay in BUILD_DIR/guest-logs/:
#   topoN-results.log  test output (ttyS1), topoN-console.log  kernel console
#   (ttyS0), topoN-qemu.log  QEMU's own output, build.log  compiler output,
#   topoN-qemu.sh  the same guest, to boot by hand on the terminal.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
}

[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_ROOT=$(cd "$GUEST_DIR/../.." && pwd)
[ -d "$1" ] || { echo "run-rig: $1: no such build directory" >&2; exit 2; }
BUILD_DIR=$(cd "$1" && pwd)
shift
if [ $# -gt 0 ]; then
    TOPOLOGIES="$*"
else
    TOPOLOGIES=${TM_GUEST_TOPOLOGY:-1 2 3}
fi
CACHE=${TM_GUEST_CACHE:-$BUILD_DIR/guest-cache}
LOGDIR=$BUILD_DIR/guest-logs
WORK=$BUILD_DIR/guest-work
KERNEL_MODE=${TM_GUEST_KERNEL:-auto}
GUEST_TIMEOUT=${TM_GUEST_TIMEOUT:-300}
TEST_TIMEOUT=${TM_GUEST_TEST_TIMEOUT:-240}
BOOT_TIMEOUT=${TM_GUEST_BOOT_TIMEOUT:-90}
LIBTIERMEM=$BUILD_DIR/.libs/libtiermem.a
PRELOAD_LIB=$BUILD_DIR/.libs/libtiermem-preload.so
# Where the dyn_* tests find it in the guest (TM_PRELOAD_LIB, through init).
GUEST_PRELOAD=/usr/lib/tiermem/libtiermem-preload.so
# The tool dyn_guide runs in the guest (profile -> guidance), and its path there.
GUIDE_TOOL=$BUILD_DIR/tiermem-guide
GUEST_GUIDE=/usr/bin/tiermem-guide
# The compiler path (doc/compiler.md), for the dyn_cc_* tests; a build
# without it has neither.
CC_WRAPPER=$BUILD_DIR/cc/tiermem-cc
CC_PLUGIN=$BUILD_DIR/cc/tiermem-pass.so
# "test/check: reason" lines of selected tests this build cannot make,
# reported as skips in every topology.
HOST_SKIPS=""

T_START=$(date +%s%N)
log() {
    local ms=$((($(date +%s%N) - T_START) / 1000000))
    printf 'run-rig: [%4d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}
die() { echo "run-rig: error: $*" >&2; exit 2; }

for t in $TOPOLOGIES; do
    case "$t" in 1 | 2 | 3) ;; *) die "unknown topology '$t' (1, 2 or 3)" ;; esac
done
case "$KERNEL_MODE" in auto | vmlinux | bzimage) ;; *) die "TM_GUEST_KERNEL must be auto, vmlinux or bzimage" ;; esac

# ---------------------------------------------------------------- packages
# qemu-system-x86, busybox-static and cpio are the rig's own; the rest build
# the guest tests (present wherever tiermem was built, listed for safety).
PACKAGES="qemu-system-x86 busybox-static cpio xz-utils binutils gcc libc6-dev libjemalloc-dev libnuma-dev libpfm4-dev"
APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
}
install_packages() {
    local missing="" p
    for p in $PACKAGES; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            missing="$missing $p"
        fi
    done
    [ -z "$missing" ] && return 0
    [ "${TM_GUEST_NO_INSTALL:-0}" = 1 ] && die "missing packages:$missing (TM_GUEST_NO_INSTALL=1)"
    [ "$(id -u)" = 0 ] || die "missing packages:$missing; run as root or install them"
    log "installing$missing"
    apt_update_once
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# ---------------------------------------------------------------- kernel
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" { print $2; exit }'
}

# Offsets in the bzImage boot header (Documentation/x86/boot.rst).
header_u() { # FILE OFFSET BYTES -> unsigned little-endian number
    od -An -t "u$3" -j "$2" -N "$3" "$1" | tr -d ' \n'
}

# Extract the uncompressed ELF vmlinux from a bzImage: the payload sits at
# payload_offset past the protected-mode code, which starts after the
# (setup_sects + 1) 512-byte sectors of real-mode setup.
extract_vmlinux() { # BZIMAGE OUT
    local bz=$1 out=$2 magic ver ss po pl off kind
    magic=$(od -An -c -j $((0x202)) -N 4 "$bz" | tr -d ' \n')
    [ "$magic" = HdrS ] || { echo "not a bzImage (no HdrS)"; return 1; }
    ver=$(header_u "$bz" $((0x206)) 2)
    [ "$ver" -ge $((0x208)) ] || { echo "boot protocol $ver too old for payload fields"; return 1; }
    ss=$(header_u "$bz" $((0x1f1)) 1)
    [ "$ss" -ne 0 ] || ss=4
    po=$(header_u "$bz" $((0x248)) 4)
    pl=$(header_u "$bz" $((0x24c)) 4)
    off=$(((ss + 1) * 512 + po))
    magic=$(od -An -t x1 -j "$off" -N 6 "$bz" | tr -d ' \n')
    case "$magic" in
    fd377a585a00) kind="xz -dc --single-stream" ;;
    1f8b*) kind="gzip -dc" ;;
    28b52ffd*) kind="zstd -dcq" ;;
    *) echo "unknown payload compression (magic $magic)"; return 1 ;;
    esac
    # The payload ends with the 4-byte uncompressed size; the decompressors
    # stop at the end of their stream (gzip and zstd warn about the rest).
    dd if="$bz" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$pl" status=none |
        $kind >"$out.tmp" 2>/dev/null || true
    [ "$(od -An -c -N 4 "$out.tmp" | tr -d ' \n')" = '177ELF' ] || {
        rm -f "$out.tmp"
        echo "payload did not decompress to an ELF file"
        return 1
    }
    # QEMU boots an ELF kernel only through its PVH entry point, which the
    # kernel announces in the XEN_ELFNOTE_PHYS32_ENTRY (type 18) note.
    if ! readelf -n "$out.tmp" 2>/dev/null | grep -Eq '\(0x00000012\)|PHYS32_ENTRY'; then
        rm -f "$out.tmp"
        echo "vmlinux has no PVH entry note (CONFIG_PVH off?)"
        return 1
    fi
    mv "$out.tmp" "$out"
}

fetch_kernel() {
    mkdir -p "$CACHE"
    local pkg dir tmp n
    pkg=$(kernel_package)
    if [ -z "$pkg" ]; then
        # No package lists yet: use the cache if it holds exactly one kernel.
        n=$(find "$CACHE" -mindepth 2 -maxdepth 2 -name vmlinuz 2>/dev/null | wc -l)
        if [ "$n" = 1 ]; then
            pkg=$(basename "$(dirname "$(find "$CACHE" -mindepth 2 -maxdepth 2 -name vmlinuz)")")
        else
            apt_update_once
            pkg=$(kernel_package)
        fi
    fi
    [ -n "$pkg" ] || die "apt-cache does not know which kernel linux-image-amd64 depends on"
    dir=$CACHE/$pkg
    if [ ! -s "$dir/vmlinuz" ]; then
        log "downloading $pkg"
        tmp=$(mktemp -d "$CACHE/download.XXXXXX")
        if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg"); then
            # Stale package lists name a version the mirror no longer has.
            [ "$APT_UPDATED" = 0 ] || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
            apt_update_once
            pkg=$(kernel_package)
            dir=$CACHE/$pkg
            (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") ||
                { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
        fi
        dpkg-deb -x "$tmp"/*.deb "$tmp/x"
        mkdir -p "$dir"
        cp "$tmp"/x/boot/vmlinuz-* "$dir/vmlinuz.tmp"
        cp "$tmp"/x/boot/config-* "$dir/config" 2>/dev/null || true
        mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
        rm -rf "$tmp"
    fi
    BZIMAGE=$dir/vmlinuz
    VMLINUX=""
    if [ "$KERNEL_MODE" != bzimage ]; then
        local why=""
        if [ ! -s "$dir/vmlinux" ]; then
            why=$(extract_vmlinux "$BZIMAGE" "$dir/vmlinux") || true
        fi
        if [ -s "$dir/vmlinux" ]; then
            VMLINUX=$dir/vmlinux
        else
            [ "$KERNEL_MODE" = vmlinux ] && die "cannot extract vmlinux: $why"
            log "no PVH vmlinux ($why): booting the bzImage"
        fi
    fi
    log "kernel $pkg (${VMLINUX:+vmlinux via PVH, }bzImage $BZIMAGE)"
}

# ---------------------------------------------------------------- initramfs
# Is test NAME selected by TM_GUEST_TESTS (all of them when it is empty)?
test_selected() {
    local w
    [ -n "${TM_GUEST_TESTS:-}" ] || return 0
    for w in $TM_GUEST_TESTS; do [ "$w" = "$1" ] && return 0; done
    return 1
}

# copy_shared_closure ROOT FILE...: every shared object the FILEs load (as
# ldd resolves them on this host, the interpreter included) into ROOT at the
# same path, symlinks resolved.  The guest has no ld.so.cache: the loader
# finds them in its built-in directories, the ones ldd names here.
copy_shared_closure() {
    local root=$1 libs lib
    shift
    libs=$(for f in "$@"; do
        ldd "$f" || echo "ldd-failed $f"
    done | awk '
        /=> not found/   { print "missing " $1; next }
        /^ldd-failed /   { print "missing " $2; next }
        $2 == "=>" && $3 ~ /^\// { print $3; next }
        $1 ~ /^\//       { print $1 }' | LC_ALL=C sort -u)
    if grep -q '^missing ' <<<"$libs"; then
        die "shared libraries of the dynamic guest tests not found:$(sed -n 's/^missing / /p' <<<"$libs" | tr -d '\n')"
    fi
    while IFS= read -r lib; do
        [ -n "$lib" ] || continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done <<<"$libs"
}

build_initramfs() {
    [ -f "$LIBTIERMEM" ] || die "$LIBTIERMEM not found: build tiermem in $BUILD_DIR first (make libtiermem.la)"
    local root=$WORK/root src name ok=1
    rm -rf "$WORK"
    mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/proc" \
        "$root/sys" "$root/dev" "$root/tmp" "$root/tests" "$WORK/bin" "$LOGDIR"
    : >"$LOGDIR/build.log"
    local busybox
    busybox=$(command -v busybox || echo /bin/busybox)
    # busybox-static's binary; a dynamic one would not run in the guest.
    if readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter'; then
        die "$busybox is dynamically linked: install busybox-static"
    fi
    cp "$busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh" # for rdinit=/bin/sh by hand
    install -m 0755 "$GUEST_DIR/init.sh" "$root/init"

    TEST_NAMES=""
    for src in "$GUEST_DIR"/guest_*.c; do
        name=$(basename "$src" .c)
        test_selected "$name" || continue
        TEST_NAMES="$TEST_NAMES $name"
        # shellcheck disable=SC2086
        # Unstripped copies stay in guest-work/bin for addr2line (crashes).
        if gcc -std=c11 -static -O2 -g -Wall -Wextra -Werror ${TM_GUEST_CFLAGS:-} \
            -I "$SRC_ROOT/include" -I "$SRC_ROOT/base" -I "$SRC_ROOT/extent" \
            -I "$SRC_ROOT/settings" -I "$SRC_ROOT/arena" -I "$SRC_ROOT/sites" \
            -I "$SRC_ROOT/profiler" -I "$GUEST_DIR" \
            -o "$WORK/bin/$name" "$src" "$LIBTIERMEM" \
            -ljemalloc -lnuma -lpfm -lpthread -lm -ldl >>"$LOGDIR/build.log" 2>&1; then
            strip -o "$root/tests/$name" "$WORK/bin/$name"
        else
            ok=0
            echo "run-rig: building $name failed:" >&2
        fi
    done
    # Dynamic tests run unmodified programs under the LD_PRELOAD library, as
    # users do: linked against libc and libnuma only, never tiermem.
    # -rdynamic exports their functions, so the site table names them.
    local dyn=() compiler
    for src in "$GUEST_DIR"/dyn_*.c ${TM_GUEST_EXTRA_SRC:-}; do
        if [ ! -e "$src" ]; then
            case "$src" in "$GUEST_DIR"/*) continue ;; esac
            die "TM_GUEST_EXTRA_SRC: $src not found"
        fi
        name=$(basename "$src" .c)
        name=dyn_${name#dyn_}
        test_selected "$name" || continue
        # dyn_cc_*.c are built with the build's tiermem-cc (the compiler
        # path): their allocation calls get compile-time ids, and the
        # runtime is linked in (NEEDED, rpath BUILD_DIR/.libs), not
        # preloaded.  A build without the compiler path cannot make them:
        # a skip, shown in every topology's results, not a failure.
        compiler=(gcc)
        case "$name" in
        dyn_cc_*)
            if [ ! -x "$CC_WRAPPER" ] || [ ! -f "$CC_PLUGIN" ]; then
                HOST_SKIPS="$HOST_SKIPS$name/all: the build has no compiler path (no $CC_WRAPPER or $CC_PLUGIN)
"
                continue
            fi
            # TIERMEM_CC_ROOT: the notes name the source tests/guest/...
            # The second rpath is where the guest has the runtime
            # ($GUEST_PRELOAD): the build's own path may be under /tmp,
            # which the guest's init mounts a tmpfs over.
            compiler=(env TIERMEM_CC_ROOT="$SRC_ROOT" TIERMEM_CC_PLUGIN="$CC_PLUGIN"
                TIERMEM_CC_LIBDIR="$BUILD_DIR/.libs" "$CC_WRAPPER"
                -Wl,-rpath,"$(dirname "$GUEST_PRELOAD")")
            ;;
        esac
        TEST_NAMES="$TEST_NAMES $name"
        # shellcheck disable=SC2086
        if "${compiler[@]}" -std=c11 -O2 -g -rdynamic -Wall -Wextra -Werror ${TM_GUEST_CFLAGS:-} \
            -I "$GUEST_DIR" -o "$WORK/bin/$name" "$src" \
            -lnuma -ldl >>"$LOGDIR/build.log" 2>&1; then
            strip -o "$root/tests/$name" "$WORK/bin/$name"
            dyn+=("$root/tests/$name")
        else
            ok=0
            echo "run-rig: building $name failed:" >&2
        fi
    done
    if [ "${#dyn[@]}" -gt 0 ] && [ "$ok" = 1 ]; then
        [ -f "$PRELOAD_LIB" ] ||
            die "$PRELOAD_LIB not found: build it in $BUILD_DIR (make libtiermem-preload.la) or leave the dyn_* tests out (TM_GUEST_TESTS)"
        mkdir -p "$root$(dirname "$GUEST_PRELOAD")"
        cp "$PRELOAD_LIB" "$root$GUEST_PRELOAD"
        # tiermem-guide, for dyn_guide (and anyone by hand): a real ELF
        # program (it links tiermem's convenience library, so libtool makes
        # no wrapper script), stripped, at $GUEST_GUIDE.
        local tools=()
        if [ -f "$GUIDE_TOOL" ] && [ "$(head -c 4 "$GUIDE_TOOL" | od -An -c | tr -d ' \n')" = '177ELF' ]; then
            strip -o "$root$GUEST_GUIDE" "$GUIDE_TOOL"
            tools+=("$root$GUEST_GUIDE")
        elif [ -e "$GUEST_DIR/dyn_guide.c" ] && test_selected dyn_guide; then
            die "$GUIDE_TOOL not found or not an ELF program: build it in $BUILD_DIR (make tiermem-guide) or leave dyn_guide out (TM_GUEST_TESTS)"
        fi
        copy_shared_closure "$root" "$PRELOAD_LIB" "${dyn[@]}" ${tools[@]+"${tools[@]}"}
    fi
    if [ "$ok" = 0 ]; then
        # Static glibc's getaddrinfo note (libnuma references it) is noise.
        grep -v -e 'requires at runtime the shared libraries' -e 'in function .affinity_ip' \
            "$LOGDIR/build.log" >&2 || true
        die "guest tests did not build (see $LOGDIR/build.log)"
    fi
    if [ -z "$TEST_NAMES" ]; then
        [ -n "$HOST_SKIPS" ] || die "no guest test selected (TM_GUEST_TESTS='${TM_GUEST_TESTS:-}')"
        log "every selected test is skipped: no guest to boot"
        return 0
    fi
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$WORK/initramfs.cpio"
    log "initramfs $(du -h "$WORK/initramfs.cpio" | cut -f1):$TEST_NAMES"
}

# ---------------------------------------------------------------- topologies
# Memory: -m 1G split over memory-backend-ram objects m0, m1, (m2).
# Node 0 is DRAM with both CPUs; the others are CPU-less.  HMAT numbers are
# ns for latency and bytes/s for bandwidth (sysfs shows ns and MB/s).
#   1: node0 640M DRAM + node1 384M CPU-less, no HMAT (order by distance)
#   2: the same two nodes with HMAT: DRAM 80 ns 20 GB/s, slow 250 ns 8 GB/s
#   3: node0 512M DRAM, node1 384M HBM-like (60 ns, 100 GB/s), node2 128M
#      CXL-like (300 ns, 5 GB/s); node2 is the deliberately small node.
#      SLIT: 0-1 15, 0-2 25, 1-2 30, so node 2's fallback is node 0.
topology_desc() {
    case "$1" in
    1) echo "DRAM node0 + CPU-less node1, no HMAT" ;;
    2) echo "DRAM node0 + CPU-less node1, HMAT" ;;
    3) echo "DRAM node0 + HBM node1 + small CXL node2, HMAT" ;;
    esac
}
topology_qemu_args() {
    local hmat_lb="-numa hmat-lb,initiator=0,hierarchy=memory"
    case "$1" in
    1) echo "-machine pc -m 1G
        -object memory-backend-ram,id=m0,size=640M
        -object memory-backend-ram,id=m1,size=384M
        -numa node,nodeid=0,cpus=0-1,memdev=m0
        -numa node,nodeid=1,memdev=m1" ;;
    2) echo "-machine pc,hmat=on -m 1G
        -object memory-backend-ram,id=m0,size=640M
        -object memory-backend-ram,id=m1,size=384M
        -numa node,nodeid=0,cpus=0-1,memdev=m0,initiator=0
        -numa node,nodeid=1,memdev=m1,initiator=0
        $hmat_lb,target=0,data-type=access-latency,latency=80
        $hmat_lb,target=0,data-type=access-bandwidth,bandwidth=20G
        $hmat_lb,target=1,data-type=access-latency,latency=250
        $hmat_lb,target=1,data-type=access-bandwidth,bandwidth=8G" ;;
    3) echo "-machine pc,hmat=on -m 1G
        -object memory-backend-ram,id=m0,size=512M
        -object memory-backend-ram,id=m1,size=384M
        -object memory-backend-ram,id=m2,size=128M
        -numa node,nodeid=0,cpus=0-1,memdev=m0,initiator=0
        -numa node,nodeid=1,memdev=m1,initiator=0
        -numa node,nodeid=2,memdev=m2,initiator=0
        -numa dist,src=0,dst=1,val=15
        -numa dist,src=0,dst=2,val=25
        -numa dist,src=1,dst=2,val=30
        $hmat_lb,target=0,data-type=access-latency,latency=80
        $hmat_lb,target=0,data-type=access-bandwidth,bandwidth=20G
        $hmat_lb,target=1,data-type=access-latency,latency=60
        $hmat_lb,target=1,data-type=access-bandwidth,bandwidth=100G
        $hmat_lb,target=2,data-type=access-latency,latency=300
        $hmat_lb,target=2,data-type=access-bandwidth,bandwidth=5G" ;;
    esac
}
# What the tests expect, as tmg_KEY=VALUE words (init exports TM_KEY).
topology_guest_env() {
    case "$1" in
    1) echo "tmg_topo=1 tmg_nodes=2 tmg_cpu_node=0 tmg_hmat=0 tmg_expect_tiers=0;1" ;;
    2) echo "tmg_topo=2 tmg_nodes=2 tmg_cpu_node=0 tmg_hmat=1 tmg_expect_tiers=0;1" ;;
    3) echo "tmg_topo=3 tmg_nodes=3 tmg_cpu_node=0 tmg_hmat=1 tmg_expect_tiers=1;0;2 tmg_small_node=2" ;;
    esac
}

# ---------------------------------------------------------------- boot
CMDLINE_BASE="console=ttyS0 panic=-1 numa_balancing=disable lpj=10000000 tsc=reliable no_timer_check mitigations=off quiet"

guest_env_words() {
    local w
    for w in ${TM_GUEST_ENV:-}; do
        case "$w" in
        [A-Za-z_]*=*) printf 'tmenv_%s ' "$w" ;;
        *) die "TM_GUEST_ENV: '$w' is not NAME=VALUE" ;;
        esac
    done
}

# boot_guest TOPOLOGY KERNEL -> sets BOOT_RC, BOOT_WALL, BOOT_BOOTED
boot_guest() {
    local topo=$1 kernel=$2 results=$LOGDIR/topo$1-results.log
    local console=$LOGDIR/topo$1-console.log qlog=$LOGDIR/topo$1-qemu.log
    local t0 qpid elapsed
    rm -f "$results" "$console" "$qlog"
    # shellcheck disable=SC2207,SC2054
    local append
    append="$CMDLINE_BASE $(topology_guest_env "$topo") tmg_preload_lib=$GUEST_PRELOAD tmg_timeout=$TEST_TIMEOUT $(guest_env_words)${TM_GUEST_APPEND:-}"
    # shellcheck disable=SC2207,SC2054
    local qemu=(qemu-system-x86_64
        -nodefaults -no-user-config -display none -no-reboot
        -accel tcg,thread=multi -cpu max -smp 2
        $(topology_qemu_args "$topo")
        -kernel "$kernel" -initrd "$WORK/initramfs.cpio")
    # The same guest by hand: the console (ttyS0, with QEMU's monitor) on
    # stdin/stdout, the tests' port (ttyS1) on stderr (see README).
    {
        echo "#!/bin/sh"
        echo "# topology $topo by hand: $(topology_desc "$topo")"
        echo "# APPEND='rdinit=/bin/sh' $(basename "$LOGDIR")/topo$topo-qemu.sh [qemu options]"
        printf 'exec '
        printf '%q ' "${qemu[@]}"
        # shellcheck disable=SC2016
        printf -- '-append %q"${APPEND:+ $APPEND}" ' "$append"
        echo '-serial mon:stdio -serial file:/dev/stderr "$@"'
    } >"$LOGDIR/topo$topo-qemu.sh"
    chmod +x "$LOGDIR/topo$topo-qemu.sh"
    t0=$(date +%s)
    timeout -k 10 "$GUEST_TIMEOUT" "${qemu[@]}" -append "$append" \
        -serial "file:$console" -serial "file:$results" \
        </dev/null >"$qlog" 2>&1 &
    qpid=$!
    QEMU_PID=$qpid
    BOOT_BOOTED=0
    # Watch for /init: a kernel that does not get there is stopped early.
    while kill -0 "$qpid" 2>/dev/null; do
        if [ "$BOOT_BOOTED" = 0 ] && grep -q '^TMGUEST BOOTED' "$results" 2>/dev/null; then
            BOOT_BOOTED=1
        fi
        elapsed=$(($(date +%s) - t0))
        if [ "$BOOT_BOOTED" = 0 ] && [ "$elapsed" -ge "$BOOT_TIMEOUT" ]; then
            echo "run-rig: no /init after ${BOOT_TIMEOUT}s: stopping the guest" >>"$qlog"
            kill "$qpid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    BOOT_RC=0
    wait "$qpid" || BOOT_RC=$?
    QEMU_PID=""
    grep -q '^TMGUEST BOOTED' "$results" 2>/dev/null && BOOT_BOOTED=1
    BOOT_WALL=$(($(date +%s) - t0))
}

TOTAL_PASS=0 TOTAL_FAIL=0 TOTAL_SKIP=0
SUMMARY=""

show_log() { # FILE TITLE
    echo "----- $2 ($1) -----"
    if [ -s "$1" ]; then tr -d '\r' <"$1" | tail -n 200; else echo "(empty)"; fi
    echo "----- end of $2 -----"
}

# Turn the TMCRASH lines of a crashed test into function names and lines.
symbolize_crashes() { # RESULTS
    grep -q '^TMCRASH ' "$1" || return 0
    awk '/^TMGUEST RUN / { cur = $3 } /^TMCRASH / { print cur, $0 }' "$1" |
        while read -r test _ kind a _ c _ e; do
            local bin=$WORK/bin/$test addr
            if [ "$kind" = signal ]; then
                echo "  crash in $test: signal $a, fault address $c, pc $e"
                addr=$e
            else
                addr=$a
            fi
            [ -f "$bin" ] || continue
            echo "    $addr $(addr2line -f -i -p -C -e "$bin" "$addr" 2>/dev/null | tr '\n' ' ')"
        done
}

# The skips of tests this build cannot make (HOST_SKIPS), as the guest's
# SKIP lines are shown; sets HOST_SKIP_COUNT.
report_host_skips() { # TOPOLOGY
    local line
    HOST_SKIP_COUNT=0
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        echo "  [topo$1] SKIP $line"
        HOST_SKIP_COUNT=$((HOST_SKIP_COUNT + 1))
    done <<<"$HOST_SKIPS"
}

run_topology() {
    local topo=$1 kernel results console kind pass fail skip problems=""
    if [ -z "$TEST_NAMES" ]; then
        report_host_skips "$topo"
        TOTAL_SKIP=$((TOTAL_SKIP + HOST_SKIP_COUNT))
        SUMMARY="$SUMMARY
  topology $topo ($(topology_desc "$topo")): $HOST_SKIP_COUNT skipped, not booted"
        return 0
    fi
    results=$LOGDIR/topo$topo-results.log
    console=$LOGDIR/topo$topo-console.log
    kernel=${VMLINUX:-$BZIMAGE}
    kind=$([ -n "$VMLINUX" ] && echo vmlinux || echo bzImage)
    log "topology $topo: $(topology_desc "$topo"): booting $kind"
    boot_guest "$topo" "$kernel"
    # No /init and not a word from the kernel: the PVH entry did not work
    # here.  (A kernel that panicked did boot: retrying would not help.)
    if [ "$BOOT_BOOTED" = 0 ] && [ -n "$VMLINUX" ] && [ "$KERNEL_MODE" = auto ] &&
        ! grep -q -e 'Kernel panic' -e '^\[ *[0-9]' "$console" 2>/dev/null; then
        log "topology $topo: the PVH vmlinux did not reach /init; falling back to the bzImage for the rest of the run"
        VMLINUX=""
        kernel=$BZIMAGE
        kind=bzImage
        boot_guest "$topo" "$kernel"
    fi

    local clean=$LOGDIR/topo$topo-results.txt
    tr -d '\r' <"$results" 2>/dev/null >"$clean" || : >"$clean"
    pass=$(grep -c '^TMTEST PASS ' "$clean" || true)
    fail=$(grep -c '^TMTEST FAIL ' "$clean" || true)
    skip=$(grep -c '^TMTEST SKIP ' "$clean" || true)
    grep '^TMTEST ' "$clean" | sed "s/^TMTEST /  [topo$topo] /" || true
    report_host_skips "$topo"
    skip=$((skip + HOST_SKIP_COUNT))

    # Every test program must have reported something and ended; the guest
    # must have booted and finished.
    local noreport
    noreport=$(awk '
        /^TMGUEST RUN / { cur = $3; n = 0; next }
        /^TMTEST /      { n++; next }
        /^TMGUEST END / { if (n == 0) print $3; cur = ""; next }
        END             { if (cur != "") print cur " (never ended: it hung or took the guest down)" }
    ' "$clean")
    if [ "$BOOT_BOOTED" = 0 ]; then
        problems="guest did not boot to /init (qemu exit status $BOOT_RC after ${BOOT_WALL}s)"
    elif ! grep -q '^TMGUEST DONE' "$clean"; then
        if [ "$BOOT_RC" = 124 ] || [ "$BOOT_RC" = 137 ]; then
            problems="guest timed out after ${GUEST_TIMEOUT}s before finishing its tests"
        else
            problems="guest stopped before finishing its tests (qemu exit status $BOOT_RC)"
        fi
    fi
    if [ -n "$noreport" ]; then
        while IFS= read -r line; do
            problems="${problems:+$problems; }test $line reported no result"
        done <<<"$noreport"
    fi
    if [ -n "$problems" ]; then
        echo "  [topo$topo] FAIL rig: $problems"
        fail=$((fail + 1))
    fi

    symbolize_crashes "$clean"

    local up_boot up_done
    up_boot=$(sed -n 's/^TMGUEST BOOTED uptime=\([0-9.]*\).*/\1/p' "$clean" | head -n1)
    up_done=$(sed -n 's/^TMGUEST DONE uptime=\([0-9.]*\).*/\1/p' "$clean" | head -n1)
    local durations
    durations=$(awk '
        /^TMGUEST RUN /  { sub(/^uptime=/, "", $4); start[$3] = $4 }
        /^TMGUEST END /  { sub(/^uptime=/, "", $5)
                           n = $3; sub(/^guest_/, "", n)
                           if ($3 in start) printf " %s %.1fs", n, $5 - start[$3] }
    ' "$clean")
    log "topology $topo: $pass passed, $fail failed, $skip skipped; $kind; kernel-to-init ${up_boot:-?}s, tests done at ${up_done:-?}s guest uptime, ${BOOT_WALL}s wall"
    [ -z "$durations" ] || log "topology $topo: test times:$durations"
    SUMMARY="$SUMMARY
  topology $topo ($(topology_desc "$topo")): $pass passed, $fail failed, $skip skipped, init at ${up_boot:-?}s, ${BOOT_WALL}s wall ($kind)"

    if [ "$fail" -gt 0 ] || [ "${TM_GUEST_VERBOSE:-0}" = 1 ]; then
        show_log "$clean" "topology $topo results (ttyS1)"
        if [ "$fail" -gt 0 ]; then
            show_log "$console" "topology $topo kernel console (ttyS0)"
            show_log "$LOGDIR/topo$topo-qemu.log" "topology $topo qemu output"
        fi
    fi
    TOTAL_PASS=$((TOTAL_PASS + pass))
    TOTAL_FAIL=$((TOTAL_FAIL + fail))
    TOTAL_SKIP=$((TOTAL_SKIP + skip))
}

# ---------------------------------------------------------------- main
# A guest still running when this script ends (Ctrl-C, error) is stopped:
# background jobs of a script do not get the terminal's SIGINT.
QEMU_PID=""
stop_guest() {
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
    fi
}
trap stop_guest EXIT
trap 'stop_guest; trap - INT; kill -INT $$' INT
trap 'stop_guest; exit 143' TERM
install_packages
log "packages ready"
fetch_kernel
mkdir -p "$LOGDIR"
build_initramfs
for topo in $TOPOLOGIES; do
    run_topology "$topo"
done
log "done; logs in $LOGDIR$SUMMARY"
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed, $TOTAL_SKIP skipped"
[ "$TOTAL_FAIL" = 0 ]
