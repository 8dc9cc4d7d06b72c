#!/usr/bin/env bash
# probe_profiles.sh -- issue 12 defects 7 and 9: hostile profiles and a
# hostile replay trace.
#
# Every tool that reads profiles (tiermem-profile, tiermem-guide) is given
# counts whose sums pass 2^64 - 1 (once printed as 18446744073709551613),
# numbers past 64 bits, binary junk, a 100k-character line, a directory
# and a FIFO with no writer.  Each must exit 0, or non-zero with a message
# on stderr; never die of a signal, never hang (timeout = FAIL), never
# print a number near 2^64 that neither the input holds nor is 2^64 - 1
# (a wrapped sum of numbers near 2^64 is near 2^64 too), nor a percentage
# over 100.  Then a replay trace with one sample at t = 1.7e12 ms under the
# trace clock (it once wrote one record per 100 ms interval of the gap):
# `sleep 1` must finish, and the profile must stay small.
#
# usage: bash probe_profiles.sh BUILD_DIR WORK_DIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"
U64_MAX=18446744073709551615
TOOL_TIMEOUT=10

# ------------------------------------------------------------ the inputs

head_lines() { # rank
    printf 'tiermem-profile 2\nexe hostile\npid 7\nrank %s\nsampler replay\n' "$1"
    printf 'interval_ns 100000000\nhalflife 4\nstart_unix_ms 1700000000000\n'
    printf 'node 0 0 %s\nnode 1 0 %s\nnode 2 1 %s\n' $U64_MAX $U64_MAX $U64_MAX
}

# the intervals', an arena's and a site's samples pass 2^64 - 1
{
    head_lines -1
    printf 'interval 1 0 100000000 18446744073709551613 0 0\n'
    printf 'arena 1 site 3 bind 0x1 18446744073709551613 8388608 1 0 4096 4096 4096 - 1\n'
    printf 'sitedef 3 0x0000000000000010 -1\n'
    printf 'site 3 1 18446744073709551613 0 1 0 4096 4096 4096\nend 1\n'
    printf 'interval 2 100000000 200000000 5 0 0\n'
    printf 'arena 1 site 3 bind 0x1 5 8388608 1 0 4096 4096 4096 - 1\n'
    printf 'site 3 1 5 0 1 0 4096 4096 4096\nend 2\ncomplete 2\n'
} >"$work/wrap.txt"

# two ranks, each valid, whose sums over sites and ranks pass 2^64 - 1:
# site 0 (unsited), one key in both, one key at two indices, peak bytes
# near 2^63, node capacities of 2^64 - 1 in one tier
for r in 0 1; do
    {
        head_lines $r
        printf 'interval 1 0 100000000 0 0 0\n'
        printf 'sitedef 0 0x0000000000000000 -1\n'
        printf 'site 0 0 18446744073709551605 0 1 0 4096 4096 4096\n'
        printf 'sitedef 3 0x0000000000000010 -1\n'
        printf 'site 3 0 18446744073709551600 0 1 0 9223372036854775813 9223372036854775813 9223372036854775813\n'
        printf 'sitedef 4 0x0000000000000030 -1\n'
        printf 'site 4 0 18446744073709551590 0 1 0 9223372036854775817 9223372036854775817 9223372036854775817\n'
        printf 'sitedef 5 0x0000000000000030 -1\n'
        printf 'site 5 0 18446744073709551580 0 1 0 9223372036854775819 9223372036854775819 9223372036854775819\n'
        printf 'end 1\ncomplete 1\n'
    } >"$work/rank$r.txt"
done

# numbers past 64 bits
{
    head_lines -1
    printf 'interval 1 0 100000000 18446744073709551616 0 0\nend 1\n'
} >"$work/huge.txt"
{
    head_lines -1
    printf 'interval 1 0 1 0 0 0\n'
    printf 'arena 1 site 3 bind 0x1 1%030d 0 0 0 0 0 0 - 1\nend 1\n' 0
} >"$work/huge2.txt"

# binary junk: after a good first line, and alone
{
    printf 'tiermem-profile 2\n'
    for i in $(seq 0 255); do printf "\\x$(printf %02x "$i")"; done
    for i in $(seq 255 -1 0); do printf "\\x$(printf %02x "$i")"; done
    printf '\n'
} >"$work/junk.txt"
for i in $(seq 1 64); do printf '\x7fELF\x02\x01\x01\x00\xff\xfe\n\r\t '; done \
    >"$work/junk2.txt"

# a 100k-character line: a long exe, and a line of 50k fields
{
    printf 'tiermem-profile 2\nexe '
    head -c 100000 /dev/zero | tr '\0' a
    printf '\n'
} >"$work/long.txt"
{
    head_lines -1
    printf 'interval'
    for i in $(seq 1 5000); do printf ' 1 1 1 1 1 1 1 1 1 1'; done
    printf '\n'
} >"$work/long2.txt"

mkdir -p "$work/a-directory"
rm -f "$work/fifo"
mkfifo "$work/fifo"

# ------------------------------------------------------------ the checks

# Numbers of 17 digits or more in the output that are neither 2^64 - 1 nor
# in the inputs, and percentages over 100; empty if none.
suspicious() { # output inputs...
    local out=$1
    shift
    grep -ahoE '[0-9]{17,}' "$@" 2>/dev/null | sort -u >"$work/known"
    echo $U64_MAX >>"$work/known"
    grep -aoE '[0-9]{17,}' "$out" | grep -vxF -f "$work/known" |
        sed 's/^/number not in the input: /'
    grep -aoE '[0-9]+(\.[0-9]+)?%' "$out" |
        awk -F% '$1 + 0 > 100 { print "percentage over 100: " $0 }'
}

# Run a tool on hostile inputs; one verdict.  The inputs after "--" are
# what the output may quote.
run_tool() { # what expect(any|fail|ok) tool args... -- inputs...
    local what=$1 expect=$2 tool=$3
    shift 3
    local args=() inputs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    inputs=("$@")
    local name
    name=$(basename "$tool")
    timeout -k 5 $TOOL_TIMEOUT "$tool" "${args[@]}" \
        >"$work/out" 2>"$work/err" </dev/null
    local rc=$?
    cat "$work/out" "$work/err" >"$work/all"
    local why=""
    if timed_out $rc; then
        why="hung: killed after $TOOL_TIMEOUT s"
    elif [ $rc -gt 128 ]; then
        why="died of signal $((rc - 128))"
    elif [ $rc -ne 0 ] && [ ! -s "$work/err" ]; then
        why="exit $rc with nothing on stderr"
    elif [ "$expect" = fail ] && [ $rc -eq 0 ]; then
        why="accepted (exit 0)"
    elif [ "$expect" = ok ] && [ $rc -ne 0 ]; then
        why="refused (exit $rc)"
    fi
    local bad
    bad=$(suspicious "$work/all" "${inputs[@]}")
    [ -n "$bad" ] && why="${why:+$why; }printed a wrapped number"
    if [ -z "$why" ]; then
        pass "$name: $what (exit $rc)"
    else
        { echo "$why"; echo "$bad"; cat "$work/all"; } | detail
        fail "$name: $what"
    fi
}

profile_tool=$build/tiermem-profile
guide_tool=$guide
for tool in "$profile_tool" "$guide_tool"; do
    if [ ! -x "$tool" ]; then
        skip "$(basename "$tool")" "not built in $build"
        continue
    fi
    run_tool "sums past 2^64 - 1 are refused" fail "$tool" \
        "$work/wrap.txt" -- "$work/wrap.txt"
    run_tool "two ranks whose sums pass 2^64 - 1" ok "$tool" \
        "$work/rank0.txt" "$work/rank1.txt" -- "$work/rank0.txt" "$work/rank1.txt"
    run_tool "a number of 2^64" fail "$tool" "$work/huge.txt" -- "$work/huge.txt"
    run_tool "a number of 10^30" fail "$tool" "$work/huge2.txt" -- "$work/huge2.txt"
    run_tool "binary junk after the first line" fail "$tool" \
        "$work/junk.txt" -- "$work/junk.txt"
    run_tool "binary junk" fail "$tool" "$work/junk2.txt" -- "$work/junk2.txt"
    run_tool "a 100k-character exe line" fail "$tool" "$work/long.txt" -- "$work/long.txt"
    run_tool "a line of 50k fields" fail "$tool" "$work/long2.txt" -- "$work/long2.txt"
    run_tool "a directory" fail "$tool" "$work/a-directory" --
    run_tool "a FIFO with no writer" fail "$tool" "$work/fifo" --
    run_tool "an empty file" fail "$tool" /dev/null --
done

# The merged sums, saturated: exactly what the two ranks add up to.
if [ -x "$guide_tool" ]; then
    timeout -k 5 $TOOL_TIMEOUT "$guide_tool" "$work/rank0.txt" \
        "$work/rank1.txt" >"$work/out" 2>"$work/err"
    if grep -q "^key 0x0000000000000010 tier . # $U64_MAX samples, 9223372036854775813 bytes$" "$work/out" &&
        grep -q "^key 0x0000000000000030 tier . # $U64_MAX samples, $U64_MAX bytes$" "$work/out" &&
        grep -q "footprint $U64_MAX bytes live at peak ($U64_MAX bytes summed over the sites' own peaks), $U64_MAX samples (+$U64_MAX unsited)" "$work/err"; then
        pass "tiermem-guide: sums over sites and ranks stop at 2^64 - 1"
    else
        cat "$work/out" "$work/err" | detail
        fail "tiermem-guide: sums over sites and ranks stop at 2^64 - 1"
    fi
    # the sites placed in tier 0 fit its capacity (each alone does; the
    # sum is exact in bc, where the tool's own would saturate or wrap)
    cap=$(sed -n 's/^  tier 0: capacity \([0-9]*\),.*/\1/p' "$work/err")
    sum=$(awk '$1 == "key" && $3 == "tier" && $4 == "0" { print $8 }' \
              "$work/out" | paste -sd+ -)
    if ! command -v bc >/dev/null; then
        skip "tiermem-guide: tier 0 within its capacity" "no bc"
    elif [ -n "$cap" ] && [ "$(echo "${sum:-0} <= $cap" | bc)" = 1 ]; then
        pass "tiermem-guide: tier 0 within its capacity"
    else
        { echo "tier 0 holds ${sum:-0} = $(echo "${sum:-0}" | bc) bytes, capacity ${cap:-?}"
          cat "$work/out" "$work/err"; } | detail
        fail "tiermem-guide: tier 0 within its capacity"
    fi
fi

# ------------------------------------------------------------ replay

require_preload "replay of a far timestamp"
printf 'tiermem-trace 1\n1700000000000 arena 1 0\n' >"$work/far.trace"
rm -f "$work/far.profile" "$work/far.log"
start=$(date +%s)
timeout -k 5 30 env TIERMEM_PROFILE=1 TIERMEM_PROFILE_SAMPLER=replay \
    TIERMEM_PROFILE_REPLAY="$work/far.trace" TIERMEM_PROFILE_CLOCK=trace \
    TIERMEM_PROFILE_FILE="$work/far.profile" TIERMEM_LOG_FILE="$work/far.log" \
    LD_PRELOAD="$preload" sleep 1
rc=$?
secs=$(($(date +%s) - start))
if [ $rc -eq 0 ]; then
    pass "replay of a far timestamp: sleep 1 exits 0 (${secs} s)"
else
    cat "$work/far.log" 2>/dev/null | detail
    fail "replay of a far timestamp: sleep 1 exits 0 (exit $rc after ${secs} s)"
fi
size=$(stat -c %s "$work/far.profile" 2>/dev/null || echo missing)
intervals=$(sed -n 's/^complete \([0-9]*\)$/\1/p' "$work/far.profile" 2>/dev/null)
# the gap is cut to 1024 intervals: the sample is in interval 1025, the last
if [ "$size" != missing ] && [ "$size" -lt 1048576 ] &&
    [ -n "$intervals" ] && [ "$intervals" -le 1026 ] &&
    awk '$1 == "arena" && $7 > 0 { n++ } END { exit n == 0 }' "$work/far.profile"; then
    pass "replay of a far timestamp: $size bytes, $intervals intervals, the sample in"
else
    { echo "profile: $size bytes, ${intervals:-no} complete line"
      tail -5 "$work/far.profile" 2>/dev/null; cat "$work/far.log" 2>/dev/null; } | detail
    fail "replay of a far timestamp: profile under 1 MiB, at most 1026 intervals, with the sample"
fi
if grep -q 'far.trace:2: .*shortened' "$work/far.log" 2>/dev/null; then
    pass "replay of a far timestamp: one warning names far.trace:2"
else
    cat "$work/far.log" 2>/dev/null | detail
    fail "replay of a far timestamp: one warning names far.trace:2"
fi
exit 0
