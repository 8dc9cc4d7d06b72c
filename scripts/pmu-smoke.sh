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
#    sample after the fork; nothing was lost or throttled; the sample count
#    is within 20% of `perf stat`'s count / period (skipped, visibly,
#    without perf).  Then at a small period, where loss or throttling must
#    be reported (profile or log), never silent; then 4 probes at once
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
# A header field of the profile file (keyword value, or key=value), or "".
header_field() {
    awk -v k="$2" '$1 == "interval" { exit }
        $1 == k { print $2; exit }
        index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1"
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
# From the log's debug line "profiler: S totals: N samples, N lost, N throttles".
log_total() { # log lost|throttles
    sed -n "s/.*profiler: [a-z]* totals: [0-9]* samples, \([0-9]*\) lost, \([0-9]*\) throttles.*/\1 \2/p" "$1" |
        tail -1 | awk -v w="$2" '{ print w == "lost" ? $1 : $2 }'
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
    local event period
    event=$(sed -n 's/.*profiler: [a-z]* sampling with \(.*\), period \([0-9]*\),.*/\1/p' "$log" | head -1)
    period=$(sed -n 's/.*profiler: [a-z]* sampling with .*, period \([0-9]*\),.*/\1/p' "$log" | head -1)
    if [ -n "$dry" ]; then
        if [ "$sampler" = "$dry" ]; then ok "$what: sampler $sampler ($event, period $period)"
        else bad "$what: sampler ${sampler:-?}, not $dry" "$(grep -m2 -E 'unavailable|failed|no access sampler' "$log" | tr '\n' ' ')"; return 1; fi
    else
        case $sampler in
        pebs | ibs) ok "$what: sampler $sampler ($event, period $period)" ;;
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
    local lost_p lost_l thr_l
    lost_p=$(profile_lost "$prof")
    lost_l=$(log_total "$log" lost)
    thr_l=$(log_total "$log" throttles)
    if [ "$lost_p" = 0 ] && [ "${lost_l:-0}" = 0 ] && [ "${thr_l:-0}" = 0 ] &&
        ! grep -q 'the kernel throttled' "$log"; then
        ok "$what: nothing lost, no throttling (profile lost $lost_p; log: ${lost_l:-unknown} lost, ${thr_l:-unknown} throttles)"
    else
        bad "$what: samples lost or throttled at the default period" \
            "profile lost $lost_p; log: ${lost_l:-unknown} lost, ${thr_l:-unknown} throttles"
    fi
}

# The loss fields the profile header may carry (the header has none yet
# in format version 2; the log has the totals).
header_report() { # NAME I
    local prof=$work/$1/prof.$2.txt k v line=""
    for k in sampler_counter samples_no_addr samples_lost throttles; do
        v=$(header_field "$prof" "$k")
        line+=" $k=${v:-unknown}"
    done
    say "  $1: profile header:$line"
}

# perf_stat_count FILE: perf stat -x, output's counts added up (a hybrid
# CPU counts on each of its PMUs), or "" when nothing was counted.
perf_stat_count() {
    awk -F, '$1 ~ /^[0-9]+$/ { n += $1; f = 1 } END { if (f) print n }' "$1"
}

# ------------------------------------------------------------ 1: one probe
say "== one probe, as $user (the sampler at its defaults)"
run_probes main user 1 "${lossless_env[@]}" || true
check_run main 0 main || true
header_report main 0
sampler=$(awk '$1 == "sampler" { print $2; exit }' "$work/main/prof.0.txt" 2>/dev/null || true)
main_samples=$(summary "$work/main/prof.0.txt" | awk '$1 == "samples" { print $2; exit }')
event=$(sed -n 's/.*profiler: [a-z]* sampling with \(.*\), period \([0-9]*\),.*/\1/p' "$work/main/log.0" 2>/dev/null | head -1)
period=$(sed -n 's/.*profiler: [a-z]* sampling with .*, period \([0-9]*\),.*/\1/p' "$work/main/log.0" 2>/dev/null | head -1)

# ------------------------------------------------------------ 2: perf stat
say "== the sample count against perf stat"
events=()
case $sampler in
pebs)
    case $event in
    raw\ 0x*) ev=${event#raw 0x}; events=("r${ev%% *}:u") ;;
    *) events=("$(tr 'A-Z:' 'a-z.' <<<"$event"):u" r81d0:u) ;;
    esac ;;
ibs)
    if [ -n "$(header_field "$work/main/prof.0.txt" samples_no_addr)" ]; then
        events=(ibs_op//u)
    fi ;;
faults) events=(page-faults:u) ;;
esac
if [ -z "$perf" ]; then
    skip "perf stat check: perf is not installed (Debian: apt-get install linux-perf)"
elif [ -z "$period" ] || [ -z "$sampler" ] || [ -z "$main_samples" ]; then
    skip "perf stat check: the first run named no event or period"
elif [ ${#events[@]} -eq 0 ]; then
    skip "perf stat check: ibs samples without an address are not in the profile, and its header has no samples_no_addr"
else
    count="" used=""
    for ev in "${events[@]}"; do
        rm -rf "$work/perfstat"
        wrap=("$perf" stat -x "," -o "$work/perfstat/stat.txt" -e "$ev" --)
        run_probes perfstat user 1 "${lossless_env[@]}" -- --no-fork || true
        wrap=()
        count=$(perf_stat_count "$work/perfstat/stat.txt" 2>/dev/null || true)
        [ -z "$count" ] || { used=$ev; break; }
        say "  perf stat -e $ev counted nothing: $(grep -v '^#' "$work/perfstat/stat.txt" 2>/dev/null | grep . | head -2 | tr '\n' ' ')"
    done
    if [ -z "$count" ]; then
        skip "perf stat check: perf stat could not count ${events[*]} here"
    else
        s=$(summary "$work/perfstat/prof.0.txt" | awk '$1 == "samples" { print $2; exit }')
        na=$(header_field "$work/perfstat/prof.0.txt" samples_no_addr)
        s=$((${s:-0} + ${na:-0}))
        want=$((count / period))
        if [ "$want" -gt 0 ] && [ $((s * 100)) -ge $((want * 80)) ] && [ $((s * 100)) -le $((want * 120)) ]; then
            ok "perf stat: $s samples${na:+ (with $na without an address)}, perf stat -e $used: $count / $period = $want (within 20%)"
        else
            bad "perf stat: $s samples${na:+ (with $na without an address)}, but perf stat -e $used counted $count / $period = $want" "want within 20%"
        fi
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
    lost_p=$(profile_lost "$work/small/prof.0.txt")
    lost_l=$(log_total "$work/small/log.0" lost)
    thr_l=$(log_total "$work/small/log.0" throttles)
    thr_line=$(grep -c 'the kernel throttled' "$work/small/log.0" || true)
    s=$(summary "$work/small/prof.0.txt" | awk '$1 == "samples" { print $2; exit }')
    if [ "$lost_p" -gt 0 ] || [ "${lost_l:-0}" -gt 0 ] || [ "${thr_l:-0}" -gt 0 ] || [ "$thr_line" -gt 0 ]; then
        ok "$small_what: reported: profile lost $lost_p; log: ${lost_l:-unknown} lost, ${thr_l:-unknown} throttles, $thr_line throttle warning(s)"
    else
        # Nothing reported: fine only if nothing was missed.
        if [ -n "$dry" ]; then
            want=$main_samples
        elif [ "$sampler" = pebs ]; then
            want=$(($(probe_says "$work/small/out.0" sweeps | awk '{ print $NF }') / small))
        else
            want=""
        fi
        if [ -n "$want" ] && [ $((s * 100)) -ge $((want * 80)) ]; then
            ok "$small_what: nothing lost, nothing to report ($s samples, about $want expected)"
        else
            bad "$small_what: nothing lost or throttled reported" "$s samples, ${want:-an unknown number} expected: silent loss?"
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
