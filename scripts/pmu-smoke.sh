#!/usr/bin/env bash
# pmu-smoke.sh -- the first thing to run on a new cluster: does the PMU
# sampler (pebs on Intel, ibs on AMD) really work here, end to end?
#
# usage: scripts/pmu-smoke.sh BUILD_DIR
#
# BUILD_DIR is a built tree (scripts/build.sh BUILD_DIR): the script uses
# BUILD_DIR/.libs/libtiermem-preload.so and BUILD_DIR/tiermem-profile, and
# compiles tests/pmu/pmu_probe.c itself with cc (it is a plain program that
# does not link tiermem, like the preload tests' programs).
#
# 1. Records the environment (kernel, CPU, perf sysctls, ulimit -l, online
#    CPUs, the PMUs' format files, whether perf is installed) on stdout and
#    in BUILD_DIR/pmu-smoke.txt.
# 2. Asks the kernel for a hardware event (pmu_probe --pmu-check).  No PMU:
#    prints "pmu-smoke: skipped: no PMU (...)" and exits 0.
# 3. Runs the probe under the preload library with TIERMEM_PROFILE_SAMPLER=
#    auto, as an unprivileged user (nobody when run as root, else the
#    caller), and checks its profile (with tiermem-profile, and the file's
#    interval lines for what the tool does not show): the sampler is pebs
#    or ibs; >= 95% of the samples are in the probe's two arrays; hot:cold
#    is 5:1 to 20:1 (the probe loads 10:1); the fork child's array got no
#    sample after the fork; nothing was lost or throttled (sampler_totals,
#    the intervals' lost column, the log's warnings); the sample count
#    (with the samples without an address) is within 20% of `perf stat`'s
#    count / period summed over the sampled events (skipped, visibly,
#    without perf).  The events, periods and totals come from the profile
#    (format 3: sampler_detail, sampler_totals), else from the log (an
#    older library), else are shown "unknown".  Then at a small period,
#    where loss or throttling must be reported (profile or log), never
#    silent (if nothing is, the samples must match the probe's loads, or
#    perf stat's counts of a rerun); then 4 probes at once
#    (OMPI_COMM_WORLD_LOCAL_SIZE=4: the locked memory of their rings adds
#    up); then as root (when run as root).
# 4. Prints one verdict line last:
#      pmu-smoke: PASS (...)                 exit 0
#      pmu-smoke: FAIL (reasons)             exit 1
#      pmu-smoke: skipped: no PMU (why)      exit 0
#
# A dry run exercises the same pipeline and checks without a PMU, with the
# software page-fault sampler: TM_SMOKE_SAMPLER=faults.  It applies the
# checks that make sense for first touches (not hot:cold, which is 1:1 for
# first touches), labels every line "dry run", writes
# BUILD_DIR/pmu-smoke.dry-run.txt, and its verdict is never PASS:
#      pmu-smoke: dry run (faults sampler, not a PMU verdict): all N checks passed
#      pmu-smoke: dry run (faults sampler, not a PMU verdict): FAIL (reasons)
#
# Environment:
#   TM_SMOKE_SAMPLER=faults   the dry run described above
#   TM_SMOKE_SECONDS=N        seconds each probe runs (default 4)
#   TM_SMOKE_KEEP=1           keep the work directory (profiles, logs)
# LD_PRELOAD and every TIERMEM_* variable of the caller are ignored: the
# script sets what each run uses.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
lib=$build/.libs/libtiermem-preload.so
tool=$build/tiermem-profile
dry=${TM_SMOKE_SAMPLER:-}
secs=${TM_SMOKE_SECONDS:-4}
case $dry in
'' | faults) ;;
*) echo "pmu-smoke: TM_SMOKE_SAMPLER must be faults or unset, not '$dry'" >&2; exit 2 ;;
esac
case $secs in
'' | *[!0-9]*) echo "pmu-smoke: TM_SMOKE_SECONDS must be a whole number" >&2; exit 2 ;;
esac
[ "$secs" -ge 3 ] || { echo "pmu-smoke: TM_SMOKE_SECONDS must be >= 3 (the fork comes at 1.5 s)" >&2; exit 2; }
for f in "$lib" "$tool"; do
    [ -f "$f" ] || { echo "pmu-smoke: $f not found: build first (scripts/build.sh $1)" >&2; exit 2; }
done
unset LD_PRELOAD
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^TIERMEM_' || true)
export LC_ALL=C

if [ -n "$dry" ]; then
    report=$build/pmu-smoke.dry-run.txt
    tag="dry run, $dry sampler: "
else
    report=$build/pmu-smoke.txt
    tag=""
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/pmu-smoke.XXXXXX")
# The report is written beside its final name, created exclusively, and
# renamed over it at the end: a link planted at that name is replaced,
# never written through.
rtmp=$(mktemp "$build/.pmu-smoke.XXXXXX")
cleanup() {
    rm -f "$rtmp"
    if [ "${TM_SMOKE_KEEP:-0}" = 1 ]; then
        echo "pmu-smoke: work files kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
set -C # no > onto an existing file from here on

say() { printf '%s\n' "$*"; printf '%s\n' "$*" >>"$rtmp"; }
fails=()
nchecks=0
ok() { nchecks=$((nchecks + 1)); say "  ok: $tag$*"; }
bad() { nchecks=$((nchecks + 1)); fails+=("$1"); say "  FAIL: $tag$1${2:+: $2}"; }
skip() { say "  skipped: $tag$*"; }

finish() { # verdict line, exit status
    say "$1"
    mv -fT "$rtmp" "$report"
    echo "(report: $report)"
    exit "$2"
}

# ------------------------------------------------------------ environment
say "pmu-smoke: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname)${dry:+ (dry run with the $dry sampler)}"
say "== environment"
cpuinfo() { awk -F': *' -v k="$1" '$1 ~ "^" k "[ \t]*$" { print $2; exit }' /proc/cpuinfo; }
readsys() { if [ -r "$1" ]; then tr '\n' ' ' <"$1" | sed 's/ *$//'; else echo "(absent)"; fi; }
say "kernel: $(uname -r)"
say "cpu vendor: $(cpuinfo vendor_id)"
say "cpu model: $(cpuinfo 'model name')"
say "online cpus: $(readsys /sys/devices/system/cpu/online)"
say "perf_event_paranoid: $(readsys /proc/sys/kernel/perf_event_paranoid)"
say "perf_event_mlock_kb: $(readsys /proc/sys/kernel/perf_event_mlock_kb)"
say "perf_event_max_sample_rate: $(readsys /proc/sys/kernel/perf_event_max_sample_rate)"
say "ulimit -l: $(ulimit -l)"
for pmu in cpu cpu_core cpu_atom ibs_op; do
    d=/sys/bus/event_source/devices/$pmu
    if [ ! -d "$d" ]; then
        say "pmu $pmu: absent"
        continue
    fi
    say "pmu $pmu: type $(readsys "$d/type")"
    for f in "$d"/format/*; do
        [ -e "$f" ] || continue
        say "  $pmu/format/$(basename "$f")=$(readsys "$f")"
    done
done
perf=$(command -v perf || true)
if [ -n "$perf" ] && perfv=$("$perf" --version 2>&1); then
    say "perf: $perf ($perfv)"
else
    say "perf: not installed or not working (Debian: linux-perf)${perfv:+: $perfv}"
    perf=""
fi
say "user: $(id -un) (uid $(id -u))"

# ------------------------------------------------------------ the probe
mkdir "$work/bin"
chmod 0755 "$work" "$work/bin"
cc=${CC:-cc}
if ! "$cc" -std=c11 -O2 -g -Wall -Wextra -Werror -pthread -o "$work/bin/pmu_probe" \
    "$root/tests/pmu/pmu_probe.c" -ldl >"$work/cc.out" 2>&1; then
    sed 's/^/    /' "$work/cc.out"
    bad "cannot compile tests/pmu/pmu_probe.c with $cc"
    finish "pmu-smoke: FAIL (cannot compile the probe)" 1
fi

if [ "$(id -u)" = 0 ]; then
    user=nobody
    group=$(id -gn nobody)
else
    user=$(id -un)
    group=""
fi
# The command prefix that runs a command as $user (nobody when we are root).
as_user=()
if [ -n "$group" ]; then
    if command -v runuser >/dev/null; then
        as_user=(runuser -u "$user" --)
    else
        as_user=(setpriv --reuid="$user" --regid="$group" --clear-groups --)
    fi
fi
if [ -n "$group" ] && ! "${as_user[@]}" test -r "$lib" -a -r "$tool"; then
    # the build tree is not readable by nobody: use copies
    mkdir "$work/lib"
    cp "$lib" "$work/lib/"
    lib=$work/lib/$(basename "$lib")
    chmod 0755 "$work/lib"
    say "(the build tree is not readable by $user: using a copy of the preload library)"
fi

say "== PMU"
set +e
pmucheck=$("$work/bin/pmu_probe" --pmu-check 2>&1)
pmurc=$?
set -e
say "$pmucheck"
pmu_why=${pmucheck#pmu-probe: pmu * }
if [ -z "$dry" ]; then
    case $pmurc in
    0) ;;
    3) finish "pmu-smoke: skipped: no PMU (${pmucheck#pmu-probe: pmu no: })" 0 ;;
    4) bad "the kernel refuses hardware events to $(id -un)" \
        "${pmucheck#pmu-probe: pmu refused: }; perf_event_paranoid is $(readsys /proc/sys/kernel/perf_event_paranoid) (2 or less lets users sample their own programs)"
        finish "pmu-smoke: FAIL (hardware events refused: ${pmucheck#pmu-probe: pmu refused: })" 1 ;;
    *) bad "pmu_probe --pmu-check failed (status $pmurc)"
        finish "pmu-smoke: FAIL (the PMU check failed)" 1 ;;
    esac
fi
: "$pmu_why"

# ------------------------------------------------------------ runs
# Settings every run uses.  The dry run's faults sampler sees every first
# touch: the fill of a 64 MiB array is 16384 faults in one interval, so its
# lossless runs get rings of 512 pages (the real runs keep the default).
base_env=(TIERMEM_PROFILE=1 TIERMEM_LOG=debug)
if [ -n "$dry" ]; then
    base_env+=(TIERMEM_PROFILE_SAMPLER="$dry")
    lossless_env=(TIERMEM_PROFILE_RING_PAGES=512)
else
    base_env+=(TIERMEM_PROFILE_SAMPLER=auto)
    lossless_env=()
fi

# wrap: a command the probe runs under (perf stat), empty for the others.
wrap=()
# run_probes NAME AS N [VAR=value...] [-- PROBE_ARGS...]: N probes at once
# in $work/NAME (prof.I.txt, log.I, out.I), as user AS (user or root).
run_probes() {
    local name=$1 as=$2 n=$3 i d rc=0 pids=()
    shift 3
    local envs=() args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    [ $# -eq 0 ] || { shift; args=("$@"); }
    d=$work/$name
    mkdir "$d"
    [ "$as" = root ] || [ -z "$group" ] || chown "$user" "$d"
    for ((i = 0; i < n; i++)); do
        local e=("${base_env[@]}" "${envs[@]}" LD_PRELOAD="$lib"
            TIERMEM_PROFILE_FILE="$d/prof.$i.txt" TIERMEM_LOG_FILE="$d/log.$i")
        [ "$n" -eq 1 ] || e+=(OMPI_COMM_WORLD_LOCAL_SIZE="$n" OMPI_COMM_WORLD_SIZE="$n"
            OMPI_COMM_WORLD_RANK="$i" OMPI_COMM_WORLD_LOCAL_RANK="$i")
        local prefix=("${as_user[@]}")
        [ "$as" != root ] || prefix=()
        timeout -k 10 $((secs + 60)) "${prefix[@]}" "${wrap[@]}" env "${e[@]}" "$work/bin/pmu_probe" \
            --seconds "$secs" "${args[@]}" >"$d/out.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            rc=1
            say "  $name: probe $i failed; its output:"
            sed 's/^/    /' "$d/out.$i" | tail -5 | tee -a "$rtmp"
            [ ! -s "$d/log.$i" ] || tail -5 "$d/log.$i" | sed 's/^/    log: /' | tee -a "$rtmp"
        fi
    done
    return $rc
}

# ------------------------------------------------------------ reading
# The tool's summary of a profile (every site and arena), or nothing.
summary() { "$tool" --top 1000000 "$1" 2>&1; }
# The probe's line "pmu-probe: WHAT ...": its fields after WHAT.
probe_says() { sed -n "s/^pmu-probe: $2 //p" "$1" | head -1; }
# The samples of arena ID in the tool's arena table.
arena_samples() {
    awk -v id="$2" '/^  arenas \(/ { t = 1; next } t && $1 == id { print $3; f = 1; exit }
        END { if (!f) print 0 }' <<<"$1"
}
# The lost column of the profile's intervals, added up.
profile_lost() { awk '$1 == "interval" { n += $7 } END { print n + 0 }' "$1"; }
# The samples of arena ID in intervals that start at or after MS ms.
arena_samples_after() {
    awk -v id="$2" -v ns="$(($3 * 1000000))" '
        $1 == "interval" { late = $3 >= ns }
        $1 == "arena" && $2 == id && late { n += $7 }
        END { print n + 0 }' "$1"
}
# u VALUE: the value, or "unknown" (a figure neither the profile nor the
# log has is shown as such, never as 0).
u() { printf '%s' "${1:-unknown}"; }
# The profile's sampler_detail (the rest of the header line), or "".
prof_detail() {
    awk '$1 == "interval" { exit }
        $1 == "sampler_detail" { sub(/^sampler_detail[ \t]+/, ""); print; exit }' "$1"
}
# run_facts PROF LOG: what the sampler of one run sampled and saw, from
# the profile (format 3: sampler_detail, sampler_totals), else from the
# log (an older library: the info line "S sampling with E, period P ..."
# and the debug line "S totals: ..."), else empty (shown "unknown").  Sets
#   r_detail    the sampler_detail line ("" if none)
#   r_event     the event(s): "A" or "A + B"
#   r_periods   their periods: "P" or "P+P2" (the log names the first only)
#   r_counter   what the (first) period counts
#   r_dfrom     profile, log or nothing: where r_event etc. came from
#   r_samples r_no_addr r_foreign r_kernel r_lost r_throttles
#   r_tfrom     profile, log or nothing: where those came from
run_facts() {
    local prof=$1 log=$2 f
    r_detail="" r_event="" r_periods="" r_counter="" r_dfrom=nothing
    r_samples="" r_no_addr="" r_foreign="" r_kernel="" r_lost="" r_throttles="" r_tfrom=nothing
    [ ! -f "$prof" ] || r_detail=$(prof_detail "$prof")
    f=$(sed -n 's/^event \(.*\) period \([0-9][0-9+]*\) counts \(.*\)$/\1\t\2\t\3/p' <<<"$r_detail")
    if [ -n "$f" ]; then
        IFS=$'\t' read -r r_event r_periods r_counter <<<"$f"
        r_dfrom=profile
    elif [ -f "$log" ]; then
        # this library's line, then the older one without the counter
        f=$(sed -n 's/.*profiler: [a-z]* sampling with \(.*\), period \([0-9]*\) (\([^)]*\)), precise .*/\1\t\2\t\3/p' "$log" | head -1)
        [ -n "$f" ] || f=$(sed -n 's/.*profiler: [a-z]* sampling with \(.*\), period \([0-9]*\),.*/\1\t\2\t/p' "$log" | head -1)
        if [ -n "$f" ]; then
            IFS=$'\t' read -r r_event r_periods r_counter <<<"$f"
            r_dfrom=log
        fi
    fi
    f=""
    [ ! -f "$prof" ] || f=$(awk '$1 == "sampler_totals" && NF == 7 { print $2, $3, $4, $5, $6, $7; exit }' "$prof")
    if [ -n "$f" ]; then
        read -r r_samples r_no_addr r_foreign r_kernel r_lost r_throttles <<<"$f"
        r_tfrom=profile
    elif [ -f "$log" ]; then
        # "S totals: N samples, N without an address, N of other processes,
        # N lost, N throttles, N malformed" (older: "N samples, N lost, N
        # throttles"): each figure by its label, "-" where the line has none
        f=$(awk '/profiler: [a-z]+ totals: / { line = $0 }
            END {
                if (line == "") exit
                sub(/.*profiler: [a-z]+ totals: /, "", line)
                n = split(line, part, /, /)
                for (i = 1; i <= n; i++) {
                    num = part[i]; sub(/ .*/, "", num)
                    lab = part[i]; sub(/^[0-9]+ /, "", lab)
                    if (num ~ /^[0-9]+$/) m[lab] = num
                }
                split("samples|without an address|of other processes|kernel|lost|throttles", k, "|")
                for (i = 1; i <= 6; i++) printf "%s%s", (i > 1 ? " " : ""), (k[i] in m) ? m[k[i]] : "-"
                print ""
            }' "$log")
        if [ -n "$f" ]; then
            read -r r_samples r_no_addr r_foreign r_kernel r_lost r_throttles <<<"$f"
            r_tfrom=log
            [ "$r_samples" != - ] || r_samples=""
            [ "$r_no_addr" != - ] || r_no_addr=""
            [ "$r_foreign" != - ] || r_foreign=""
            [ "$r_kernel" != - ] || r_kernel=""
            [ "$r_lost" != - ] || r_lost=""
            [ "$r_throttles" != - ] || r_throttles=""
        fi
    fi
}
# The facts run_facts found, in words.
src() { if [ "$1" = nothing ]; then echo "neither the profile nor the log says"; else echo "from the $1"; fi; }
facts_detail() {
    printf 'event %s, period %s, counts %s; %s' "$(u "$r_event")" "$(u "$r_periods")" \
        "$(u "$r_counter")" "$(src "$r_dfrom")"
}
facts_totals() {
    printf '%s delivered, %s without an address, %s of other processes, %s kernel, %s lost, %s throttles; %s' \
        "$(u "$r_samples")" "$(u "$r_no_addr")" "$(u "$r_foreign")" "$(u "$r_kernel")" \
        "$(u "$r_lost")" "$(u "$r_throttles")" "$(src "$r_tfrom")"
}
# The loss and throttle warnings in a log ("the kernel lost ...", "the
# kernel throttled ...").
log_warnings() { grep -c -E 'profiler: the kernel (lost|throttled) ' "$1" 2>/dev/null || true; }
# reported NAME [I]: true when the run's loss or throttling was reported:
# sampler_totals' lost or throttles (else the log's totals line), the
# intervals' lost column, or a warning in the log.  Sets rep_how (in words)
# and the r_* of run_facts.
reported() {
    local d=$work/$1 i=${2:-0} lost_p warns
    run_facts "$d/prof.$i.txt" "$d/log.$i"
    lost_p=$(profile_lost "$d/prof.$i.txt")
    warns=$(log_warnings "$d/log.$i")
    rep_how="intervals' lost column $lost_p; totals: $(u "$r_lost") lost, $(u "$r_throttles") throttles ($(src "$r_tfrom")); $warns loss/throttle warning(s) in the log"
    [ "$lost_p" -gt 0 ] || [ "${r_lost:-0}" -gt 0 ] || [ "${r_throttles:-0}" -gt 0 ] || [ "$warns" -gt 0 ]
}

# check_run NAME I MODE: the checks of one probe's profile.  MODE is main
# (lossless: nothing may be lost), or lossy (only the sampler and the
# probe's own output are checked here; the loss checks are the caller's).
check_run() {
    local name=$1 i=$2 mode=$3 d=$work/$1 what
    local prof=$d/prof.$i.txt log=$d/log.$i out=$d/out.$i sum sampler
    what="$name${4:+ $4}"
    if [ ! -f "$prof" ]; then
        bad "$what: no profile" "$(ls "$d" 2>&1 | tr '\n' ' ')"
        return 1
    fi
    if ! sum=$(summary "$prof") || ! grep -q '^  intervals [1-9][0-9]*  complete$' <<<"$sum"; then
        bad "$what: tiermem-profile cannot read a complete profile" "$(head -3 <<<"$sum" | tr '\n' ' ')"
        return 1
    fi
    sampler=$(awk '$1 == "sampler" { print $2; exit }' <<<"$sum")
    local period
    run_facts "$prof" "$log"
    period=${r_periods%%+*} # the first event's
    if [ -n "$dry" ]; then
        if [ "$sampler" = "$dry" ]; then ok "$what: sampler $sampler ($(facts_detail))"
        else bad "$what: sampler ${sampler:-?}, not $dry" "$(grep -m2 -E 'unavailable|failed|no access sampler' "$log" | tr '\n' ' ')"; return 1; fi
    else
        case $sampler in
        pebs | ibs) ok "$what: sampler $sampler ($(facts_detail))" ;;
        *) bad "$what: sampler ${sampler:-?}: a fall-back, not pebs or ibs" \
            "$(grep -m2 -E 'unavailable|failed|refused|no access sampler' "$log" | tr '\n' ' ')"
            return 1 ;;
        esac
    fi
    local total hot cold child a_hot a_cold a_child
    total=$(awk '$1 == "samples" { print $2; exit }' <<<"$sum")
    read -r _ a_hot _ a_cold _ a_child <<<"$(probe_says "$out" arenas)"
    if [ -z "${a_child:-}" ] || [ "$a_hot" = 0 ] || [ "$a_cold" = 0 ] || [ "$a_child" = 0 ] ||
        [ "$a_hot" = "$a_cold" ] || [ "$a_hot" = "$a_child" ] || [ "$a_cold" = "$a_child" ]; then
        bad "$what: the probe's three arrays do not have three arenas" "$(probe_says "$out" arenas)"
        return 1
    fi
    hot=$(arena_samples "$sum" "$a_hot")
    cold=$(arena_samples "$sum" "$a_cold")
    child=$(arena_samples "$sum" "$a_child")
    say "  $what: $total samples: hot array (arena $a_hot) $hot, cold (arena $a_cold) $cold, the child's (arena $a_child) $child; probe: $(probe_says "$out" sweeps)"
    [ "$mode" = main ] || return 0
    if [ "$total" -gt 0 ] && [ $(((hot + cold) * 100)) -ge $((total * 95)) ]; then
        ok "$what: $(((hot + cold) * 100 / total))% of the samples in the two arrays (>= 95%)"
    else
        bad "$what: only $(((hot + cold) * 100 / (total > 0 ? total : 1)))% of $total samples in the two arrays" "want >= 95%"
    fi
    if [ -n "$dry" ]; then
        skip "$what: hot:cold $hot:$cold not checked (first touches: each page once, 1:1)"
    elif [ "$cold" -gt 0 ] && [ $((hot * 10)) -ge $((cold * 50)) ] && [ $((hot * 10)) -le $((cold * 200)) ]; then
        ok "$what: hot:cold $(awk -v h="$hot" -v c="$cold" 'BEGIN { printf "%.1f", h / c }'):1 (want 5:1 to 20:1; the probe loads 10:1)"
    else
        bad "$what: hot:cold $hot:$cold" "want 5:1 to 20:1 (the probe loads 10:1)"
    fi
    # The parent allocates the child's array, and touches the first pages
    # of its arena (jemalloc's metadata there) when it allocates, when it
    # forks (its fork handlers) and when it frees: a few samples.  Only the
    # child sweeps the array, from the fork at 1.5 s on: had its accesses
    # reached the parent's rings, the arena would have about as many
    # samples as its sweeps make (loads / period; for the faults sampler,
    # its first touches: a page each).  Samples after 1 s must stay under
    # 1% of that.
    local late sw leak
    late=$(arena_samples_after "$prof" "$a_child" 1000)
    sw=$(probe_says "$out" sweeps)
    if [ -n "$dry" ]; then
        leak=$(awk '{ print int($8 * 8 / 4096) }' <<<"$sw")
    else
        leak=$(awk -v p="${period:-1}" '{ print int($6 * $8 / p) }' <<<"$sw")
    fi
    if [ "$(awk '{ print $6 + 0 }' <<<"$sw")" = 0 ]; then
        bad "$what: the fork child did not sweep its array" "$sw"
    elif [ $((late * 100)) -le "$leak" ]; then
        ok "$what: the fork child's accesses are not in the parent's profile (its array's arena: $late samples after the fork, the parent's own; $((child - late)) at allocation; leaked, the child's would be about $leak)"
    else
        bad "$what: the fork child's accesses reached the parent's profile" \
            "$late samples in its array's arena after 1 s, of about $leak the child made"
    fi
    # sampler_totals' lost and throttles (the log's totals line for an
    # older library), the intervals' lost column, the log's warnings
    if reported "$name" "$i"; then
        bad "$what: samples lost or throttled at the default period" "$rep_how"
    else
        ok "$what: nothing lost, no throttling ($rep_how)"
    fi
}

# The profile's sampler_detail and sampler_totals (format 3), or what the
# log says instead (an older library), or "unknown".
header_report() { # NAME I
    local d=$work/$1
    run_facts "$d/prof.$2.txt" "$d/log.$2"
    if [ -n "$r_detail" ]; then
        say "  $1: sampler_detail: $r_detail"
    else
        say "  $1: sampler_detail: none in the profile; $(facts_detail)"
    fi
    say "  $1: sampler_totals: $(facts_totals)"
}

# perf_stat_events NAME: perf stat's names for one event of sampler_detail
# ("A" of "A + B"): "SYMBOLIC RAW", either "-" when there is none.
# libpfm4's MEM_LOAD_RETIRED:L3_MISS is perf's mem_load_retired.l3_miss;
# "raw 0x20d1 (...)" is r20d1.
perf_stat_events() {
    local sym raw
    case $1 in
    raw\ 0x*) raw=${1#raw 0x}; raw=r${raw%% *}:u; sym=$raw ;;
    ibs_op) sym=ibs_op//u raw=- ;;
    page-faults) sym=page-faults:u raw=- ;;
    *:*)
        sym=$(tr 'A-Z:' 'a-z.' <<<"$1"):u
        case $1 in
        *:L3_MISS) raw=r20d1:u ;;
        *:ALL_STORES) raw=r82d0:u ;;
        *:ALL_LOADS) raw=r81d0:u ;;
        *) raw=- ;;
        esac ;;
    *) sym=- raw=- ;;
    esac
    echo "$sym $raw"
}
# perf_stat_counts FILE E1,E2,...: the count of each event of the list in
# perf stat -x, output (one line per event; a hybrid CPU counts on each of
# its PMUs, added up), blank-separated; fails unless every event counted.
perf_stat_counts() {
    awk -F, -v list="$2" '
        BEGIN { n = split(list, e, ","); for (i = 1; i <= n; i++) { b[i] = tolower(e[i]); sub(/(:u|\/\/u)$/, "", b[i]) } }
        $1 ~ /^[0-9]+$/ { ev = tolower($3); for (i = 1; i <= n; i++) if (index(ev, b[i])) { c[i] += $1; f[i] = 1; break } }
        END { for (i = 1; i <= n; i++) if (!f[i]) exit 1
              for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? " " : ""), c[i]; print "" }' "$1"
}
# perf_stat_expect NAME PERIODS [VAR=value...] [-- PROBE_ARGS...]: one
# probe in $work/NAME under perf stat -e E1,E2 (each candidate list of
# $stat_sets in turn, until one counts every event); sets stat_want to the
# sum of count_k / period_k (PERIODS "P1+P2", in the events' order) and
# stat_how to the sum in words; fails (both "") if no list counted.
perf_stat_expect() {
    local name=$1 per=$2 evs counts
    shift 2
    stat_want="" stat_how=""
    for evs in "${stat_sets[@]}"; do
        rm -rf "${work:?}/$name"
        wrap=("$perf" stat -x "," -o "$work/$name/stat.txt" -e "$evs" --)
        run_probes "$name" user 1 "$@" || true
        wrap=()
        if counts=$(perf_stat_counts "$work/$name/stat.txt" "$evs" 2>/dev/null); then
            stat_want=$(awk -v c="$counts" -v p="$per" 'BEGIN { n = split(c, cc, " "); split(p, pp, "+")
                for (i = 1; i <= n; i++) s += cc[i] / pp[i]; printf "%d", s }')
            stat_how=$(awk -v c="$counts" -v p="$per" -v w="$stat_want" 'BEGIN { n = split(c, cc, " "); split(p, pp, "+")
                for (i = 1; i <= n; i++) printf "%s%s / %s", (i > 1 ? " + " : ""), cc[i], pp[i]; printf " = %s", w }')
            stat_how="perf stat -e $evs: $stat_how"
            return 0
        fi
        say "  perf stat -e $evs did not count every event: $(grep -v '^#' "$work/$name/stat.txt" 2>/dev/null | grep . | head -2 | tr '\n' ' ')"
    done
    return 1
}

# ------------------------------------------------------------ 1: one probe
say "== one probe, as $user (the sampler at its defaults)"
run_probes main user 1 "${lossless_env[@]}" || true
check_run main 0 main || true
header_report main 0
sampler=$(awk '$1 == "sampler" { print $2; exit }' "$work/main/prof.0.txt" 2>/dev/null || true)
main_samples=$(summary "$work/main/prof.0.txt" | awk '$1 == "samples" { print $2; exit }')
# the event set, its periods and counter: sampler_detail, else the log
run_facts "$work/main/prof.0.txt" "$work/main/log.0"
event=$r_event periods=$r_periods counter=$r_counter main_no_addr=$r_no_addr
events=() plist=()
[ -z "$event" ] || mapfile -t events < <(awk '{ gsub(/ \+ /, "\n"); print }' <<<"$event")
[ -z "$periods" ] || mapfile -t plist < <(tr '+' '\n' <<<"$periods")

# ------------------------------------------------------------ 2: perf stat
say "== the sample count against perf stat"
# The candidate perf stat event lists: perf's names, then raw codes.
stat_sets=() stat_why=""
if [ ${#events[@]} -gt 0 ]; then
    sym_set="" raw_set=""
    for ev in "${events[@]}"; do
        read -r s_ev r_ev <<<"$(perf_stat_events "$ev")"
        if [ "$s_ev" = - ] || [ "$sym_set" = - ]; then sym_set=-; else sym_set+=${sym_set:+,}$s_ev; fi
        if [ "$r_ev" = - ] || [ "$raw_set" = - ]; then raw_set=-; else raw_set+=${raw_set:+,}$r_ev; fi
    done
    [ "$sym_set" = - ] || stat_sets+=("$sym_set")
    [ "$raw_set" = - ] || [ "$raw_set" = "$sym_set" ] || stat_sets+=("$raw_set")
    [ ${#stat_sets[@]} -gt 0 ] || stat_why="perf stat has no name for $event"
fi
case $sampler in
pebs | faults) ;;
ibs) [ -n "$main_no_addr" ] || stat_why="ibs samples without an address are not in the profile, and neither sampler_totals nor the log counts them" ;;
*) stat_why="sampler ${sampler:-unknown}: not a perf sampler" ;;
esac
if [ -z "$perf" ]; then
    skip "perf stat check: perf is not installed (Debian: apt-get install linux-perf)"
elif [ -z "$sampler" ] || [ -z "$main_samples" ] || [ ${#events[@]} -eq 0 ] || [ ${#plist[@]} -eq 0 ]; then
    skip "perf stat check: the first run named no event or period (event $(u "$event"), period $(u "$periods"))"
elif [ ${#plist[@]} -ne ${#events[@]} ]; then
    skip "perf stat check: ${#events[@]} events ($event) but ${#plist[@]} period(s) known ($periods; the log names the first only, and the profile has no sampler_detail)"
elif [ -n "$stat_why" ]; then
    skip "perf stat check: $stat_why"
elif ! perf_stat_expect perfstat "$periods" "${lossless_env[@]}" -- --no-fork; then
    skip "perf stat check: perf stat could not count ${stat_sets[*]} here"
else
    run_facts "$work/perfstat/prof.0.txt" "$work/perfstat/log.0"
    # The samples delivered (sampler_totals, else the profile's intervals)
    # and those without an address: perf stat counts both.
    s=$r_samples
    [ -n "$s" ] || s=$(summary "$work/perfstat/prof.0.txt" | awk '$1 == "samples" { print $2; exit }')
    na=$r_no_addr
    s=$((${s:-0} + ${na:-0}))
    want=$stat_want
    with="${na:+ (with $na without an address)}"
    if [ "$want" -gt 0 ] && [ $((s * 100)) -ge $((want * 80)) ] && [ $((s * 100)) -le $((want * 120)) ]; then
        ok "perf stat: $s samples$with, $stat_how (within 20%)"
    else
        bad "perf stat: $s samples$with, but $stat_how" "want within 20%"
    fi
fi

# ------------------------------------------------------------ 3: loss
if [ -n "$dry" ]; then
    say "== a ring too small for the first touches (8 pages): loss must be reported"
    small_env=(TIERMEM_PROFILE_RING_PAGES=8)
    small_what="ring of 8 pages"
else
    small=1009
    [ "$sampler" != ibs ] || small=4096 # IBS periods are multiples of 16
    say "== a small period ($small): loss or throttling must be reported"
    small_env=(TIERMEM_PROFILE_PERIOD="$small")
    small_what="period $small"
fi
run_probes small user 1 "${small_env[@]}" || true
if check_run small 0 lossy; then
    header_report small 0
    if reported small; then
        ok "$small_what: reported: $rep_how"
    else
        # Nothing reported: fine only if nothing was missed.
        s=$(summary "$work/small/prof.0.txt" | awk '$1 == "samples" { print $2; exit }')
        s=$((${s:-0} + ${r_no_addr:-0}))
        want="" how="" again=""
        if [ -n "$dry" ]; then
            want=$main_samples how="the first run's samples"
        elif [ "$sampler" = pebs ] && [ ${#events[@]} -eq 1 ] && { [ "$counter" = loads ] || [ -z "$counter" ]; }; then
            # all loads: the probe counts its own
            want=$(($(probe_says "$work/small/out.0" sweeps | awk '{ print $NF }') / small))
            how="the probe's loads / $small"
        elif [ -n "$perf" ] && [ ${#stat_sets[@]} -gt 0 ] && [ ${#plist[@]} -eq ${#events[@]} ]; then
            # the events' counts are not the probe's loads: count them
            small_periods=$small
            [ "$periods" = "${periods#*+}" ] || small_periods+=+${periods#*+}
            say "  $small_what: nothing reported; again under perf stat (no fork) to tell the samples expected"
            if perf_stat_expect smallstat "$small_periods" "${small_env[@]}" -- --no-fork; then
                if reported smallstat; then
                    again=$rep_how
                else
                    s=$(summary "$work/smallstat/prof.0.txt" | awk '$1 == "samples" { print $2; exit }')
                    s=$((${s:-0} + ${r_no_addr:-0}))
                    want=$stat_want how=$stat_how
                fi
            fi
        fi
        if [ -n "$again" ]; then
            ok "$small_what: reported by the run under perf stat: $again"
        elif [ -n "$want" ] && [ $((s * 100)) -ge $((want * 80)) ]; then
            ok "$small_what: nothing lost, nothing to report ($s samples, about $want expected: $how)"
        else
            bad "$small_what: nothing lost or throttled reported" "$s samples, ${want:-an unknown number} expected${how:+ ($how)}: silent loss?"
        fi
    fi
fi

# ------------------------------------------------------------ 4: ranks, root
say "== 4 probes at once, as $user (OMPI_COMM_WORLD_LOCAL_SIZE=4: their rings' locked memory adds up)"
run_probes ranks user 4 "${lossless_env[@]}" || true
for i in 0 1 2 3; do
    check_run ranks "$i" main "rank $i" || true
done

if [ "$(id -u)" = 0 ]; then
    say "== one probe, as root"
    run_probes root root 1 "${lossless_env[@]}" || true
    check_run root 0 main || true
else
    skip "the run as root: not root"
fi

# ------------------------------------------------------------ verdict
summary_of() { local IFS=';'; echo "${fails[*]}" | sed 's/;/; /g'; }
if [ -n "$dry" ]; then
    v="pmu-smoke: dry run ($dry sampler, not a PMU verdict):"
    if [ ${#fails[@]} -eq 0 ]; then
        finish "$v all $nchecks checks passed" 0
    fi
    finish "$v FAIL (${#fails[@]} of $nchecks checks: $(summary_of))" 1
fi
if [ ${#fails[@]} -eq 0 ]; then
    finish "pmu-smoke: PASS ($sampler, $event, $nchecks checks)" 0
fi
finish "pmu-smoke: FAIL (${#fails[@]} of $nchecks checks: $(summary_of))" 1
