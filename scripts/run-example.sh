#!/usr/bin/env bash
# run-example.sh -- the main job: set up, build, and run two workloads.
#
# 1. tiermem-example, a STREAM-style workload whose arrays live in tiermem
#    arenas on the detected tiers; it prints where the pages are and
#    migrates an arena between tiers.
# 2. A real HPC workload, unmodified: a BoomerAMG solve of a 3D Poisson
#    problem through Debian's hypre (tools/amg_driver.c), on 2 MPI ranks,
#    first plainly and then under libtiermem-preload.so.  The solver's
#    output must be the same both times.  The run under tiermem is also
#    profiled (TIERMEM_PROFILE=1: the profiling thread at its default
#    settings, one profile per rank).  Then a short report of each rank's
#    site table: how many sites, the biggest by peak live bytes with their
#    frames (tiermem-sites), and what site 0 holds; and of each rank's
#    profile (tiermem-profile): the sampler, and the most accessed sites.
# 3. The policy loop: tiermem-guide turns the ranks' profiles into a
#    guidance file (knapsack, the fast tier holding 25% of the footprint),
#    and a third run uses it with the online policy on (TIERMEM_POLICY=
#    online); its result must be the same again, and the policy's log lines
#    are shown.  On a machine with one NUMA node the guidance names tier 0
#    and tier 1 but both are that node, and the online policy says it has
#    nothing to move; with two tiers or more, sites and arenas really move.
#
# usage: scripts/run-example.sh [MiB per array [AMG grid N]]
#   MiB per array   tiermem-example's arrays (its default: 64)
#   AMG grid N      the solve's N x N x N grid (default 100: about 8 s and
#                   450 MB on 2 cores); also TM_AMG_N
# Environment:
#   TM_AMG_N        the grid size, when no second argument is given
#   TM_AMG_NP       MPI ranks (default 2)
#   TM_AMG_ARGS     more amg_driver arguments (e.g. "-stencil 27")
#   TM_AMG_SKIP=1   run only tiermem-example
#   TM_GUIDE_CAPACITY  tiermem-guide's --capacity for step 3 (default 25%)
#   TIERMEM_*       passed to the run under tiermem (doc/configuration.md)
# The AMG run's files (outputs, site tables, resolved tables) are kept in
# build/release/amg-run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/release
if [ $# -gt 2 ]; then
    echo "usage: $0 [MiB per array [AMG grid N]]" >&2
    exit 2
fi
amg_n=${2:-${TM_AMG_N:-100}}
amg_np=${TM_AMG_NP:-2}
"$root/scripts/deps.sh"
"$root/scripts/build.sh" "$build"

# ------------------------------------------------------------ tiermem-example
"$build/tiermem-example" ${1+"$1"}
[ "${TM_AMG_SKIP:-0}" = 1 ] && exit 0

# ------------------------------------------------------------ AMG under tiermem
echo
echo "== BoomerAMG (hypre) on $amg_np MPI ranks, unmodified, under libtiermem-preload.so"
# Debian's libhypre-dev has no pkg-config file; these are its paths.
hypre_cflags=${HYPRE_CFLAGS:--I/usr/include/hypre}
hypre_libs=${HYPRE_LIBS:--lHYPRE}
if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null ||
    { [ -z "${HYPRE_CFLAGS:-}" ] && [ ! -f /usr/include/hypre/HYPRE.h ]; }; then
    echo "run-example: needs mpicc, mpirun and hypre's headers" \
        "(apt-get install libhypre-dev openmpi-bin libopenmpi-dev)" >&2
    exit 1
fi
driver=$build/amg_driver
src=$root/tools/amg_driver.c
if [ ! -x "$driver" ] || [ "$src" -nt "$driver" ]; then
    # -g: the site report resolves the driver's own frames to file:line.
    # shellcheck disable=SC2086 # the flag variables are word lists
    mpicc -std=c11 -O2 -g -Wall -Wextra $hypre_cflags "$src" $hypre_libs \
        -o "$driver"
fi

lib=$build/.libs/libtiermem-preload.so
work=$build/amg-run
rm -rf "$work"
mkdir -p "$work/sites"
# Neither the plain run nor mpirun itself may be preloaded; only the ranks
# of the second run get the library (mpirun -x).
unset LD_PRELOAD TIERMEM_OUTPUT_DIR
# --allow-run-as-root: run-example runs as root (deps.sh); --oversubscribe:
# 2 ranks must start even where Open MPI counts fewer slots.
mpi=(mpirun --allow-run-as-root --oversubscribe -np "$amg_np")
# shellcheck disable=SC2206 # TM_AMG_ARGS is a word list
args=(-n "$amg_n" ${TM_AMG_ARGS:-})

# run NAME [mpirun options...]: one timed solve; stdout/stderr to files.
run() {
    local name=$1 t0 t1 rc=0
    shift
    t0=$(date +%s.%N)
    timeout -k 10 1800 "${mpi[@]}" "$@" "$driver" "${args[@]}" \
        >"$work/$name.out" 2>"$work/$name.err" || rc=$?
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }' >"$work/$name.time"
    if [ $rc -ne 0 ]; then
        echo "run-example: the $name AMG run failed (exit status $rc):" >&2
        sed 's/^/  /' "$work/$name.out" "$work/$name.err" >&2
        exit 1
    fi
}
run plain
run tiermem -x "LD_PRELOAD=$lib" -x "TIERMEM_OUTPUT_DIR=$work/sites" \
    -x "TIERMEM_PROFILE=${TIERMEM_PROFILE:-1}"

cat "$work/plain.out"
if ! cmp -s "$work/plain.out" "$work/tiermem.out"; then
    echo "run-example: the solve differs under tiermem:" >&2
    diff "$work/plain.out" "$work/tiermem.out" | sed 's/^/  /' >&2
    exit 1
fi
echo "same result with and without tiermem"
# The driver's stderr: timings and peak RSS per run.  Anything else there
# (a tiermem warning, say) is shown too.
printf '%-18s %8s   %s\n' "" "wall (s)" "amg_driver's own account"
for name in plain tiermem; do
    printf '%-18s %8s   %s\n' "$name" "$(cat "$work/$name.time")" \
        "$(grep '^amg_driver:' "$work/$name.err" | sed 's/^amg_driver: //')"
    grep -v '^amg_driver:' "$work/$name.err" | sed "s/^/  $name stderr: /" || true
done
echo "(wall times of one run each, mpirun start-up included: informational)"

# ------------------------------------------------------------ site report
shopt -s nullglob
tables=("$work"/sites/tiermem-sites.amg_driver.*.txt)
if [ ${#tables[@]} -ne "$amg_np" ]; then
    echo "run-example: expected $amg_np site tables in $work/sites, found ${#tables[@]}" >&2
    exit 1
fi
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
for table in "${tables[@]}"; do
    resolved=${table%.txt}.resolved.txt
    "$build/tiermem-sites" "$table" >"$resolved"
    rank=${table%.txt}
    rank=${rank##*.}
    # One line per site: peak, index, allocations, bytes allocated, then its
    # frames as "function [object] file:line", tab-separated.  Fields are
    # found by name: readers must ignore fields they do not know.
    awk 'BEGIN { OFS = "\t" }
        function flush() { if (s != "") print peak, s, allocs, bytes fr }
        $1 == "site" {
            flush()
            s = $2; fr = ""
            for (i = 3; i < NF; i += 2) v[$i] = $(i + 1)
            peak = v["peak"]; allocs = v["allocs"]; bytes = v["bytes"]
            next
        }
        $1 == "frame" && s != "" {
            n = split($3, p, "/"); obj = p[n]
            fn = $5; loc = ""
            for (i = 6; i < NF; i++) if ($i == "at") loc = $(i + 1)
            m = split(loc, q, "/"); loc = q[m]
            fr = fr "\t" fn " [" obj "] " loc
            next
        }
        $1 != "frame" { flush(); s = "" }
        END { flush() }' "$resolved" >"$work/sites.$rank.tsv"
    awk -F'\t' '$2 != 0 { n++; peak += $1; bytes += $4 }
        $2 == 0 { p0 = $1; b0 = $4; a0 = $3 }
        END {
            tot = peak + p0
            printf "%s: %d sites besides site 0; sum of their peaks %.1f MiB" \
                " (%.1f%% of all peak bytes), %.1f MiB allocated in all\n",
                rank, n, peak / 1048576, tot ? 100 * peak / tot : 0, bytes / 1048576
            printf "  site 0 (requests below TIERMEM_SMALL_SIZE): peak %.1f MiB," \
                " %.1f MiB allocated in %d allocations\n",
                p0 / 1048576, b0 / 1048576, a0
        }' rank="$rank" "$work/sites.$rank.tsv"
    echo "  top sites by peak live bytes (frames innermost first):"
    awk -F'\t' '$2 != 0' "$work/sites.$rank.tsv" | sort -t$'\t' -k1,1nr -k2,2n | head -8 |
        while IFS=$'\t' read -r peak site allocs _bytes frames; do
            printf '  %8s MiB  site %-4s %5d allocs\n' "$(mib "$peak")" "$site" "$allocs"
            tr '\t' '\n' <<<"$frames" | sed 's/^/        /'
        done
done
echo "site tables: $work/sites ($build/tiermem-sites TABLE resolves frames)"

# ---- each rank's profile
if [ "${TIERMEM_PROFILE:-1}" != 0 ]; then
    profiles=("$work"/sites/tiermem-profile.amg_driver.*.txt)
    if [ ${#profiles[@]} -ne "$amg_np" ]; then
        echo "run-example: expected $amg_np profiles in $work/sites, found ${#profiles[@]}" >&2
        exit 1
    fi
    echo
    for p in "${profiles[@]}"; do
        "$build/tiermem-profile" --top 5 "$p" | sed -n '1,3p;/^  samples/,/^  arenas/p' | sed '$d'
    done
    echo "profiles: $work/sites (tiermem-profile FILE; format in doc/profile-format.md)"
fi

# ------------------------------------------------------------ the policy loop
if [ "${TIERMEM_PROFILE:-1}" != 0 ]; then
    echo
    echo "== profiles -> tiermem-guide -> a guided run with the online policy"
    guide=$work/amg.guide
    "$build/tiermem-guide" --policy knapsack \
        --capacity "${TM_GUIDE_CAPACITY:-25%}" -o "$guide" "${profiles[@]}" \
        2>"$work/guide.err" || {
        echo "run-example: tiermem-guide failed:" >&2
        sed 's/^/  /' "$work/guide.err" >&2
        exit 1
    }
    sed 's/^/  /' "$work/guide.err"
    echo "  guidance: $guide ($(grep -c '^key\|^id' "$guide" || true) site rules)"
    rm -f "$work/policy.log"
    run guided -x "LD_PRELOAD=$lib" -x "TIERMEM_GUIDANCE=$guide" \
        -x "TIERMEM_POLICY=online" -x "TIERMEM_LOG=info" \
        -x "TIERMEM_LOG_FILE=$work/policy.log"
    if ! cmp -s "$work/plain.out" "$work/guided.out"; then
        echo "run-example: the solve differs in the guided run:" >&2
        diff "$work/plain.out" "$work/guided.out" | sed 's/^/  /' >&2
        exit 1
    fi
    echo "  same result again; wall $(cat "$work/guided.time") s"
    # one line per rank for the guidance and the policy; the sites placed
    # are counted, not listed (the full log has one line per site)
    grep -E ': guidance .*rules$|policy:|online:' "$work/policy.log" |
        sed 's/^/  /' | head -20 || true
    echo "  sites placed by the guidance, over the ranks:" \
        "$(grep -c 'guidance places it' "$work/policy.log" || true)"
    echo "  (full log: $work/policy.log)"
fi
