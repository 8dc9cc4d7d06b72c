#!/usr/bin/env bash
# test_tiermem_profile.sh -- the tiermem-profile tool on checked-in files.
#
# tests/tools/profile/sample.txt is a small finished profile (two
# intervals, three sites, one arena left out of interval 2 by the omission
# rule).  The tool must name its top site with the right sample counts and
# percentages, say it is complete, show the last residency per node; a
# .partial torn inside interval 2 must read as one interval, incomplete;
# a file that is not a profile must exit 1 with its path:line; bad usage
# exits 2.  Hostile counts: wrap.txt's samples add up past 2^64 - 1 (the
# tool once printed the sum as 18446744073709551613) and must be refused
# at path:line; max.txt's add up to exactly 2^64 - 1, in rows near it, and
# must print that, never a wrapped sum.
set -uo pipefail
builddir=${TM_BUILDDIR:-$(pwd)}
srcdir=${srcdir:-$(dirname "$0")/../..}
tool=$builddir/tiermem-profile
sample=$srcdir/tests/tools/profile/sample.txt
[ -x "$tool" ] || { echo "no $tool"; exit 1; }
[ -f "$sample" ] || { echo "no $sample"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() { # description command...
    if "${@:2}"; then echo "PASS: $1"; else echo "FAIL: $1"; fail=1; fi
}
has() { # text regex: a line of text matches
    grep -qE -- "$2" <<<"$1"
}

out=$("$tool" --intervals "$sample"); rc=$?
echo "$out"
check "finished file exits 0" test "$rc" = 0
check "header names the program and rank" has "$out" '^  exe amg_driver  rank 0 pid 4242$'
check "complete with 2 intervals" has "$out" '^  intervals 2  complete$'
check "420 samples in all" has "$out" '^  samples 420$'
top=$(grep -A2 '^  top sites' <<<"$out" | tail -1)
check "top site is 0xdeadbeef, id 12, 240 samples, 57.14%, arena 3" \
    has "$top" '^ +0x00000000deadbeef +12 +240 +57\.14% +33554432 +3$'
check "second site sums both intervals: 160" \
    has "$out" '^ +0x9f3c0e1d2a4b5c6d +-1 +160 +38\.10% +8388608 +1$'
check "arena 3 resident per node" \
    has "$out" '^ +3 site +240 +57\.14% +33554432 +16777216 +node 0:8388608 1:8388608$'
check "arena 2 never measured, carried through interval 2" \
    has "$out" '^ +2 shared +15 +3\.57% +2097152 +-$'
check "interval 2 line: 300 samples, top arena 3" \
    has "$out" '^ +2 +200\.000 +300 +3 +240$'
top1=$("$tool" --top 1 "$sample")
check "--top 1 shows one site" test "$(grep -c '^    0x' <<<"$top1")" = 1

# torn inside interval 2, mid-line, as a crash leaves it
torn=$work/tiermem-profile.amg_driver.4242.txt.partial
head -c "$(grep -b '^resident 3 0' "$sample" | cut -d: -f1)" "$sample" >"$torn"
printf 'resident 3 1 83' >>"$torn"
out=$("$tool" "$torn"); rc=$?
echo "$out" | head -4
check "torn partial exits 0" test "$rc" = 0
check "torn partial is incomplete with 1 interval" has "$out" '^  intervals 1  incomplete'
check "torn partial: 120 samples" has "$out" '^  samples 120$'

printf 'tiermem-profile 1\nexe x\nbogus line\n' >"$work/bad.txt"
err=$("$tool" "$work/bad.txt" 2>&1 >/dev/null); rc=$?
echo "$err"
check "bad file exits 1" test "$rc" = 1
check "bad file: path:line in the message" has "$err" "bad\.txt:3: "
wrap=$srcdir/tests/tools/profile/wrap.txt
out=$("$tool" "$wrap" 2>"$work/err"); rc=$?
err=$(cat "$work/err")
echo "$err"
check "wrapping totals: exit 1" test "$rc" = 1
check "wrapping totals: path:line of the end line where they wrap" \
    has "$err" 'wrap\.txt:19: .*2\^64'
check "wrapping totals: no sum printed" test -z "$out"
max=$srcdir/tests/tools/profile/max.txt
out=$("$tool" --intervals "$max"); rc=$?
echo "$out"
check "totals of exactly 2^64 - 1: exit 0" test "$rc" = 0
check "totals of exactly 2^64 - 1: samples in all" \
    has "$out" '^  samples 18446744073709551615$'
check "totals of exactly 2^64 - 1: arena 1 over two intervals" \
    has "$out" '^ +1 site +18446744073709551615 +100\.00% '
# a wrapped sum of two numbers near 2^64 is near it too, and in no row
grep -oE '[0-9]{19,}' "$max" | sort -u >"$work/max.numbers"
check "totals of exactly 2^64 - 1: no big number the file does not hold" \
    test -z "$(grep -oE '[0-9]{19,}' <<<"$out" | grep -vxF -f "$work/max.numbers")"

"$tool" "$sample" "$work/missing.txt" >/dev/null 2>&1; rc=$?
check "one unreadable file of two exits 1" test "$rc" = 1
"$tool" >/dev/null 2>&1; rc=$?
check "no file: usage, exit 2" test "$rc" = 2
"$tool" --top x "$sample" >/dev/null 2>&1; rc=$?
check "bad --top: exit 2" test "$rc" = 2
"$tool" --frobnicate "$sample" >/dev/null 2>&1; rc=$?
check "unknown option: exit 2" test "$rc" = 2
exit $fail
