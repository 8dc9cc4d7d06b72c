#!/usr/bin/env bash
# probe_guide_scale.sh -- tiermem-guide on a profile of 1,048,576 sites of
# 4 KiB each, with every policy (issue 12, defect 8: thermos and knapsack
# were quadratic and ran for minutes).  Each run must finish under a
# generous `timeout 60` with a valid guidance file: every site once, the fast
# tier within its capacity.  knapsack's exact table cannot hold a million
# rows: it must say its placement is approximate, in the file's header.
#
# usage: probe_guide_scale.sh BUILD_DIR WORK_DIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"
nsites=1048576
fast=$((nsites / 4 * 4096))   # node 0's capacity: a quarter of the sites

[ -x "$guide" ] || skip_probe "guide scale" "$guide not built"

# One interval, every site once (doc/profile-format.md); samples 1..1000.
profile=$work/profile.txt
awk -v n=$nsites -v fast=$fast 'BEGIN {
    print "tiermem-profile 2"; print "exe scale"; print "pid 1"
    print "rank -1"; print "sampler none"; print "interval_ns 100000000"
    print "halflife 4"; print "start_unix_ms 1700000000000"
    print "node 0 0 " fast; print "node 1 1 68719476736"
    print "interval 1 0 100000000 0 0 0"
    s = 12345
    for (i = 1; i <= n; i++) {
        s = (s * 1103515245 + 12345) % 2147483648
        printf "sitedef %d 0x%016x -1\n", i, i
        printf "site %d 0 %d 0 1 0 4096 4096 4096\n", i, 1 + s % 1000
    }
    print "end 1"; print "complete 1"
}' > "$profile" || fail_probe "guide scale: cannot write $profile"

# What is wrong with a guidance file, or nothing.
check_guidance() {
    awk -v n=$nsites -v fast=$fast '
        /^#/ { next }
        !seen_header { if ($0 != "tiermem-guidance 1") { print "bad header: " $0; bad = 1; exit }
                       seen_header = 1; next }
        $1 != "key" || $3 != "tier" || ($4 != 0 && $4 != 1) || $9 != "bytes" {
            print "bad line " NR ": " $0; bad = 1; exit }
        { lines++; if ($4 == 0) bytes0 += $8 }
        END {
            if (bad) exit
            if (!seen_header) print "no header"
            else if (lines != n) print lines " rules for " n " sites"
            else if (bytes0 > fast) print "tier 0 holds " bytes0 " > " fast " bytes"
        }' "$1"
}

for policy in hotset thermos knapsack; do
    out=$work/guidance.$policy.txt   # fresh: the tool creates it
    rm -f "$out"
    start=$(date +%s)
    timeout 60 "$guide" --policy "$policy" -o "$out" "$profile" \
        > "$work/stdout.$policy" 2> "$work/stderr.$policy"
    rc=$? took=$(( $(date +%s) - start ))
    if [ "$rc" -eq 124 ]; then
        say "tiermem-guide --policy $policy ran past 60 s"
        fail "guide scale: $policy on $nsites sites finishes"
        continue
    fi
    if [ "$rc" -ne 0 ] || [ ! -s "$out" ]; then
        say "exit status $rc; stderr:"
        head -5 "$work/stderr.$policy" | detail_more
        fail "guide scale: $policy on $nsites sites finishes"
        continue
    fi
    why=$(check_guidance "$out")
    if [ -n "$why" ]; then
        say "$why"
        fail "guide scale: $policy on $nsites sites gives valid guidance"
        continue
    fi
    pass "guide scale: $policy on $nsites sites, valid guidance in ${took} s"
    if [ "$policy" = knapsack ]; then
        if grep -q '^# placement approximate' "$out"; then
            pass "guide scale: knapsack says its placement is approximate"
        else
            say "header: $(grep '^#' "$out" | head -3 | tr '\n' '|')"
            fail "guide scale: knapsack says its placement is approximate"
        fi
    fi
done
exit 0
