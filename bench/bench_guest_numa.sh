#!/usr/bin/env bash
# bench_guest_numa.sh BUILD_DIR [TOPOLOGY...] -- placement benchmark in the
# QEMU guests: tiermem's online policy against the kernel's NUMA balancing
# (bench/guest/bench_numa_vs_kernel.c, see doc/benchmarks.md, "Placement
# against the kernel's NUMA balancing (guest)").
#
# BUILD_DIR must have the preload library built (make libtiermem-preload.la;
# run-rig.sh also wants libtiermem.la).  Topologies: 2 and 3 by default
# (tests/guest/README.md).  One guest boot per topology, through
# tests/guest/run-rig.sh with TM_GUEST_EXTRA_SRC, running only this program.
# It prints; it asserts nothing.  The tables go to stdout and to
# BUILD_DIR/bench-guest-numa.txt, the full guest output to
# BUILD_DIR/bench-guest-numa-topoN.log.  Exit status: 0 when every topology
# gave a table, 1 otherwise (the guest could not run it), 2 on usage.
#
# Environment: TM_BENCH_SECONDS (guest seconds per run, 15),
# TM_BENCH_WORKLOADS ("write-hot read-hot phase bigger-hot"),
# TM_BENCH_SAMPLERS (tiermem samplers, "refs uffd"), TM_BENCH_CONTENDERS
# (a subset of "first-touch kernel-nb1 kernel-nb2 tiermem-<sampler>..."),
# TM_BENCH_TIERMEM_LOG (TIERMEM_LOG of the tiermem runs, "warn"; "info"
# shows their moves in the guest log), TM_BENCH_SITE0 ("cpu-node": a
# guidance file starts tiermem's site 0 on the CPU's node, where the other
# contenders' small blocks are; "slowest": with the arrays),
# and run-rig.sh's own (TM_GUEST_CACHE, TM_GUEST_TIMEOUT, ...).
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -d "$1" ] || { echo "bench_guest_numa: $1: no such build directory" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
shift
TOPOS=${*:-2 3}
SECS=${TM_BENCH_SECONDS:-15}
case "$SECS" in '' | *[!0-9]*) echo "TM_BENCH_SECONDS must be a number" >&2; exit 2 ;; esac
NAME=dyn_bench_numa_vs_kernel
OUT=$BUILD/bench-guest-numa.txt

# The program's own knobs go into the guest through TM_GUEST_ENV.
env_words="TM_BENCH_SECONDS=$SECS"
for v in TM_BENCH_WORKLOADS TM_BENCH_SAMPLERS TM_BENCH_CONTENDERS TM_BENCH_TIERMEM_LOG TM_BENCH_SITE0 TM_BENCH_DUMP_NUMA; do
    # run-rig passes words without spaces: a list goes comma-separated
    [ -z "${!v:-}" ] || env_words="$env_words $v=$(echo ${!v} | tr ' ' ,)"
done

# About 20 runs of SECS seconds plus their start-up per guest; TCG is slow.
test_timeout=$((SECS * 24 + 240))
: >"$OUT"
status=0
for topo in $TOPOS; do
    log=$BUILD/bench-guest-numa-topo$topo.log
    echo "bench_guest_numa: topology $topo (guest log: $log)"
    rc=0
    TM_GUEST_EXTRA_SRC="$ROOT/bench/guest/bench_numa_vs_kernel.c" \
        TM_GUEST_TESTS=$NAME \
        TM_GUEST_ENV="${TM_GUEST_ENV:+$TM_GUEST_ENV }$env_words" \
        TM_GUEST_TEST_TIMEOUT=${TM_GUEST_TEST_TIMEOUT:-$test_timeout} \
        TM_GUEST_TIMEOUT=${TM_GUEST_TIMEOUT:-$((test_timeout + 120))} \
        "$ROOT/tests/guest/run-rig.sh" "$BUILD" "$topo" >"$log.rig" 2>&1 || rc=$?
    results=$BUILD/guest-logs/topo$topo-results.txt
    if [ -s "$results" ]; then cp "$results" "$log"; else : >"$log"; fi
    if grep -q '^BENCHTABLE ' "$log"; then
        {
            echo "== topology $topo =="
            sed -n 's/^BENCHTABLE //p' "$log"
            grep -E '^  \[bench_numa_vs_kernel\] (topology|balloon|sampler)' "$log" |
                sed 's/^  \[bench_numa_vs_kernel\] /  # /'
            echo
        } | tee -a "$OUT"
    else
        echo "bench_guest_numa: topology $topo gave no table (run-rig exit $rc); last lines:" >&2
        tail -n 30 "$log.rig" >&2
        status=1
    fi
done
echo "bench_guest_numa: tables in $OUT"
exit "$status"
