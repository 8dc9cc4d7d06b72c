#!/usr/bin/env bash
# probe_addrspace.sh -- issue 12 defect 5: a program whose phases allocate
# from new call sites and free everything in between must run under an
# address-space limit (`ulimit -v`, as HPC batch systems set) as it does
# under glibc.  Each site has its own arena and an arena keeps its address
# space while it lives, so before the fix the second phase got NULL.
#
# The victim allocates PHASE_MIB in 1 MiB blocks from one of six functions
# per phase (six call sites), touches them, frees them, and prints one line
# per phase.  The limit is what the victim maps under tiermem after one
# phase, plus half a phase: enough for one phase at a time, never for two.
#
# usage: bash probe_addrspace.sh BUILD_DIR WORK_DIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"
phase_mib=250

require_preload addrspace
require_cc addrspace

cat >"$work/phases.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)
static size_t nblocks;
static void **blk;

static size_t vm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* Six call sites: each phase's blocks come from a different function. */
#define PHASE_FN(n)                                                          \
    __attribute__((noinline)) static size_t phase##n(void)                   \
    {                                                                        \
        for (size_t i = 0; i < nblocks; i++) {                               \
            blk[i] = malloc(MIB);                                            \
            if (blk[i] == NULL)                                              \
                return i;                                                    \
            memset(blk[i], (int)i, 64);                                      \
        }                                                                    \
        return nblocks;                                                      \
    }
PHASE_FN(1) PHASE_FN(2) PHASE_FN(3) PHASE_FN(4) PHASE_FN(5) PHASE_FN(6)
static size_t (*const phases[6])(void) = {phase1, phase2, phase3,
                                          phase4, phase5, phase6};

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    nblocks = strtoul(argv[1], NULL, 10);
    int nphases = atoi(argv[2]);
    static void *slots[4096];
    if (nblocks > 4096 || nphases < 1 || nphases > 6)
        return 2;
    blk = slots;
    size_t peak = 0;
    for (int p = 0; p < nphases; p++) {
        size_t got = phases[p]();
        size_t kb = vm_kb();
        peak = kb > peak ? kb : peak;
        for (size_t i = 0; i < got; i++)
            free(blk[i]);
        if (got == nblocks)
            printf("phase %d: %zu MiB allocated and freed\n", p + 1, got);
        else
            printf("phase %d: NULL after %zu of %zu MiB\n", p + 1, got,
                   nblocks);
    }
    fprintf(stderr, "peak VmSize %zu kB\n", peak);
    return 0;
}
EOF
compile_c "$work/phases" "$work/phases.c" -g ||
    fail_probe "addrspace: the victim does not compile"

# The victim's peak VmSize under tiermem with one phase, no limit.
LD_PRELOAD=$preload "$work/phases" $phase_mib 1 >/dev/null 2>"$work/one.err"
one_kb=$(sed -n 's/^peak VmSize \([0-9]*\) kB$/\1/p' "$work/one.err")
if [ -z "$one_kb" ]; then
    detail <"$work/one.err"
    fail_probe "addrspace: one phase under tiermem did not report its VmSize"
fi
limit_kb=$((one_kb + phase_mib * 1024 / 2))

run() { # run NAME [env...]: the six phases under the limit
    local name=$1
    shift
    (ulimit -v "$limit_kb" && env "$@" "$work/phases" $phase_mib 6) \
        >"$work/$name.out" 2>"$work/$name.err"
    echo $? >"$work/$name.rc"
}
run plain
run tiermem LD_PRELOAD="$preload"

expect=$(for p in 1 2 3 4 5 6; do
    echo "phase $p: $phase_mib MiB allocated and freed"; done)
if [ "$(cat "$work/plain.rc")" = 0 ] &&
    [ "$(cat "$work/plain.out")" = "$expect" ]; then
    pass "addrspace: glibc runs 6 phases of $phase_mib MiB under ulimit -v $limit_kb"
else
    cat "$work/plain.out" "$work/plain.err" | detail
    skip_probe "addrspace: glibc itself fails under ulimit -v $limit_kb" "limit too tight here"
fi
if [ "$(cat "$work/tiermem.rc")" = 0 ] &&
    cmp -s "$work/plain.out" "$work/tiermem.out"; then
    pass "addrspace: tiermem runs all 6 phases from new sites under ulimit -v $limit_kb, output as glibc's"
else
    say "exit status $(cat "$work/tiermem.rc"); output:"
    { cat "$work/tiermem.out"; head -20 "$work/tiermem.err"; } | detail
    fail "addrspace: tiermem under ulimit -v $limit_kb (one phase peaks at $one_kb kB)"
fi
