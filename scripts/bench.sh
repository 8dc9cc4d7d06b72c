#!/bin/sh
# bench.sh BUILD_DIR [--quick] -- build tiermem's benchmarks in a configured
# build tree and run them one after the other, printing what they print.
#
# Benchmarks are not tests: nothing here passes or fails on a figure.  Each
# benchmark measures its variants side by side in one run and prints medians
# and ratios; doc/benchmarks.md says how to read them.  --quick runs a short
# version of each (a smoke run: figures are noisier).
#
# Extra options for one benchmark go through the environment:
#   BENCH_ALLOC_ARGS, BENCH_EXTENT_MAP_ARGS, BENCH_MIGRATE_ARGS,
#   BENCH_ATTRIBUTION_ARGS, BENCH_POLICY_ARGS, BENCH_CC_ARGS
# e.g. BENCH_MIGRATE_ARGS="--mib 1024" scripts/bench.sh build
set -eu

usage() {
    echo "usage: $0 BUILD_DIR [--quick]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
build=$1
shift
quick=no
for arg in "$@"; do
    case $arg in
    --quick) quick=yes ;;
    *) usage ;;
    esac
done

if [ ! -f "$build/Makefile" ]; then
    echo "$0: $build/Makefile not found: configure a build tree first" >&2
    echo "  (autoreconf -fi && mkdir -p $build && cd $build && <srcdir>/configure)" >&2
    exit 2
fi

make -C "$build" bench

if [ "$quick" = yes ]; then
    alloc_q="--ops 200k --rounds 3"
    map_q="--lookups 2M --rounds 3"
    migrate_q="--mib 64 --rounds 3"
    attribution_q="--samples 2M --rounds 3"
    policy_q="--quick"
    cc_q="--ops 200k --rounds 3"
else
    alloc_q=""
    map_q=""
    migrate_q=""
    attribution_q=""
    policy_q=""
    cc_q=""
fi

echo "== $(uname -srm), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes figures noisy)"
echo

status=0
run() {
    name=$1
    shift
    echo "== bench/$name $*"
    if ! "$build/bench/$name" "$@"; then
        echo "== bench/$name failed" >&2
        status=1
    fi
    echo
}

# shellcheck disable=SC2086
run bench_alloc $alloc_q ${BENCH_ALLOC_ARGS:-}
# shellcheck disable=SC2086
run bench_cc $cc_q ${BENCH_CC_ARGS:-}
# shellcheck disable=SC2086
run bench_extent_map $map_q ${BENCH_EXTENT_MAP_ARGS:-}
# shellcheck disable=SC2086
run bench_migrate $migrate_q ${BENCH_MIGRATE_ARGS:-}
# shellcheck disable=SC2086
run bench_attribution $attribution_q ${BENCH_ATTRIBUTION_ARGS:-}
# shellcheck disable=SC2086
run bench_policy $policy_q ${BENCH_POLICY_ARGS:-}

exit $status
