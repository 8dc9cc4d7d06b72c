#!/usr/bin/env bash
# test_tiermem_guide.sh -- the tiermem-guide tool on checked-in profiles.
#
# tests/tools/guide/rank0.txt and rank1.txt are two ranks of one run (the
# same profiles as tests/unit/test_guide.c): site 0xaa hot and small,
# 0xbb cold and big, explicit id 12, 0xcc only on rank 1, and site 0.
# Merged: aa 1500 samples / 2 MiB, bb 150 / 8 MiB, id 12 50 / 2 MiB,
# cc 10 / 512 KiB.  At 3 MiB, tier 0 must hold aa and cc; with the
# header's 5 MiB (auto) also id 12.  Unreadable profiles exit 1 and write
# nothing; bad usage exits 2.
set -uo pipefail
builddir=${TM_BUILDDIR:-$(pwd)}
srcdir=${srcdir:-$(dirname "$0")/../..}
tool=$builddir/tiermem-guide
r0=$srcdir/tests/tools/guide/rank0.txt
r1=$srcdir/tests/tools/guide/rank1.txt
[ -x "$tool" ] || { echo "no $tool"; exit 1; }
[ -f "$r0" ] && [ -f "$r1" ] || { echo "no profiles under $srcdir"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() { # description command...
    if "${@:2}"; then echo "PASS: $1"; else echo "FAIL: $1"; fail=1; fi
}
has() { # text regex: a line of text matches
    grep -qE -- "$2" <<<"$1"
}
rules() { # guidance text: its rules, comments stripped, sorted
    grep -vE '^#|^tiermem-guidance' <<<"$1" | sed 's/ *#.*//' | sort
}

out=$("$tool" --capacity 3M "$r0" "$r1" 2>"$work/err"); rc=$?
err=$(cat "$work/err")
echo "$out"; echo "$err"
check "3M: exit 0" test "$rc" = 0
check "3M: header line" has "$out" '^tiermem-guidance 1$'
want=$'id 12 tier 1\nkey 0x00000000000000aa tier 0\nkey 0x00000000000000bb tier 1\nkey 0x00000000000000cc tier 0'
check "3M: aa, cc in tier 0; bb, id 12 in tier 1" test "$(rules "$out")" = "$want"
check "3M: no line for site 0" test "$(grep -c '0x0000000000000000' <<<"$out")" = 0
check "3M: merged samples and bytes of aa" has "$out" '^key 0x00000000000000aa tier 0 # 1500 samples, 2097152 bytes$'
check "3M: summary names 2 profiles, 4 sites, 30 unsited" \
    has "$err" '^tiermem-guide: 2 profiles, 4 sites, footprint 11534336 bytes live at peak \(13107200 bytes summed over the sites. own peaks\), 1710 samples \(\+30 unsited\), policy knapsack$'
check "3M: tier 0 summary" has "$err" '^  tier 0: capacity 3145728, 2 sites, 2621440 bytes, 88\.30% of accesses$'
check "3M: tier 1 summary" has "$err" '^  tier 1: capacity the rest, 2 sites, 10485760 bytes, 11\.70% of accesses$'

# N% is a share of the most live at once (11 MiB: rank 0's interval 2),
# not of the sum of the sites' peaks (12.5 MiB): 25% is 2.75 MiB
for p in hotset thermos knapsack; do
    o=$("$tool" --policy $p --capacity 25% "$r0" "$r1" 2>/dev/null); rc=$?
    check "$p at 25%: exit 0, same placement as 3M" \
        test "$rc:$(rules "$o")" = "0:$want"
done

out=$("$tool" "$r0" "$r1" 2>"$work/err"); rc=$?
check "auto (5 MiB from the header): exit 0" test "$rc" = 0
check "auto: id 12 joins tier 0" has "$out" '^id 12 tier 0 '
check "auto: bb in tier 1" has "$out" '^key 0x00000000000000bb tier 1 '
check "auto: capacity from nodes 0 and 2" has "$(cat "$work/err")" '^  tier 0: capacity 5242880, 3 sites'

out=$("$tool" --capacity 2M,2M -o "$work/g.txt" "$r0" "$r1" 2>/dev/null); rc=$?
check "-o: exit 0, nothing on stdout" test "$rc:$out" = "0:"
check "-o: three tiers in the file" \
    test "$(rules "$(cat "$work/g.txt")")" = $'id 12 tier 1\nkey 0x00000000000000aa tier 0\nkey 0x00000000000000bb tier 2\nkey 0x00000000000000cc tier 2'

out=$("$tool" --intervals 2-2 --capacity 3M "$r0" 2>/dev/null); rc=$?
check "--intervals 2-2: only interval 2's samples" \
    test "$rc:$(grep -c '^key 0x00000000000000aa tier 0 # 400 samples' <<<"$out")" = "0:1"

# phases.txt: A (hot) then B (warm) live 4 MiB each, one after the other,
# C (cold) 4 MiB throughout, on a one-tier machine.  Live at once: 8 MiB;
# the sites' peaks sum to 12 MiB.  70% of 8 MiB holds A only (of 12 MiB it
# would hold A and B).
ph=$srcdir/tests/tools/guide/phases.txt
out=$("$tool" --capacity 70% "$ph" 2>"$work/err"); rc=$?
err=$(cat "$work/err")
check "phases: exit 0" test "$rc" = 0
check "phases: footprint is the peak of the sum, both reported" \
    has "$err" 'footprint 8388608 bytes live at peak \(12582912 bytes summed over the sites. own peaks\)'
check "phases: 70% of the peak holds A only" \
    test "$(rules "$out")" = $'key 0x00000000000000a1 tier 0\nkey 0x00000000000000b2 tier 1\nkey 0x00000000000000c3 tier 1'
check "phases: one message for --capacity on a one-tier profile" \
    test "$(grep -c 'came from a machine with one tier' <<<"$err")" = 1
check "phases: the guidance says what its tiers mean on one tier" \
    has "$out" '^# the profiles had one tier: on a machine with one tier every rule means that tier'

out=$("$tool" "$r0" "$work/missing.txt" 2>"$work/err"); rc=$?
check "missing profile: exit 1, no guidance" test "$rc:$out" = "1:"
check "missing profile: named on stderr" has "$(cat "$work/err")" 'missing\.txt'
printf 'tiermem-profile 2\nexe x\nbogus line\n' >"$work/bad.txt"
"$tool" "$work/bad.txt" >/dev/null 2>&1; rc=$?
check "bad profile: exit 1" test "$rc" = 1
"$tool" -o "$work/no/such/dir/g.txt" "$r0" >/dev/null 2>&1; rc=$?
check "unwritable output: exit 1" test "$rc" = 1

for args in "" "--policy fastest $r0" "--capacity 1x $r0" "--capacity 3M,,1M $r0" \
        "--intervals 3-1 $r0" "--intervals x $r0" "--frobnicate $r0"; do
    # shellcheck disable=SC2086
    "$tool" $args >/dev/null 2>&1; rc=$?
    check "usage '$args': exit 2" test "$rc" = 2
done
exit $fail
