#!/usr/bin/env bash
# probe_closefrom.sh -- issue 12 defect 2: a profiled program closes every
# descriptor it did not open (closefrom(3), as daemons and shells do), then
# opens files of its own.  tiermem must never write into them, and the
# program must still exit; under `ulimit -n 6` tiermem must leave the
# program its descriptors (profiling off, one warning).
#
# usage: bash probe_closefrom.sh BUILD_DIR WORK_DIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"
require_preload closefrom

# The victim: closefrom(3) (argv[4] = 1), open N files, write numbered lines
# to each for SECONDS while allocating and writing memory (the uffd
# sampler's faults), close them, print how many lines each got.
cat >"$work/victim.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    const char *dir = argv[1];
    int nfiles = atoi(argv[2]);
    double secs = atof(argv[3]);
    if (atoi(argv[4]))
        closefrom(3);
    int fds[16];
    unsigned long lines[16] = {0};
    for (int i = 0; i < nfiles && i < 16; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/file%d", dir, i);
        fds[i] = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fds[i] < 0) {
            fprintf(stderr, "victim: open %s: %m\n", path);
            return 3;
        }
    }
    enum { NBLK = 64 };
    char *blk[NBLK] = {0};
    size_t big_len = 16 << 20;
    char *big = malloc(big_len);
    if (big == NULL)
        return 4;
    double t0 = now();
    for (unsigned long round = 0; now() - t0 < secs; round++) {
        for (int i = 0; i < nfiles; i++) {
            char line[64];
            int n = snprintf(line, sizeof line, "file %d line %lu\n", i,
                             lines[i]);
            if (write(fds[i], line, (size_t)n) != n) {
                fprintf(stderr, "victim: write file%d: %m\n", i);
                return 5;
            }
            lines[i]++;
        }
        free(blk[round % NBLK]);
        blk[round % NBLK] = malloc(4096 + (round % 7) * 8192);
        if (blk[round % NBLK] != NULL)
            memset(blk[round % NBLK], (int)round, 4096);
        for (size_t off = (round * 4096) % big_len; off < big_len;
             off += 64 * 4096)
            big[off] = (char)round;
        usleep(200);
    }
    for (int i = 0; i < nfiles; i++)
        if (close(fds[i]) != 0) {
            fprintf(stderr, "victim: close file%d: %m\n", i);
            return 6;
        }
    for (int i = 0; i < nfiles; i++)
        printf("%d %lu\n", i, lines[i]);
    return 0;
}
EOF
compile_c "$work/victim" "$work/victim.c" ||
    fail_probe "closefrom: the victim program does not compile"

# Each file holds exactly the lines the victim says it wrote.
files_exact() { # RUNDIR COUNTS
    local rundir=$1 counts=$2 ok=0 i n
    while read -r i n; do
        awk -v i="$i" -v n="$n" \
            'BEGIN { for (k = 0; k < n; k++) printf "file %d line %d\n", i, k }' \
            >"$rundir/expect$i"
        if ! cmp -s "$rundir/expect$i" "$rundir/file$i"; then
            say "file$i differs from the $n lines the program wrote:"
            cmp "$rundir/expect$i" "$rundir/file$i" 2>&1 | detail_more
            diff <(od -c "$rundir/expect$i") <(od -c "$rundir/file$i") |
                head -4 | detail_more
            ok=1
        fi
    done <"$counts"
    return $ok
}

# run SAMPLER K: the victim under the preload library, profiled, closefrom.
run_closefrom() {
    local sampler=$1 k=$2 rundir=$work/$1.$2 rc
    mkdir -p "$rundir"
    local start=$SECONDS
    timeout -k 2 20 env LD_PRELOAD="$preload" TIERMEM_PROFILE=1 \
        TIERMEM_PROFILE_SAMPLER="$sampler" TIERMEM_PROFILE_INTERVAL=20ms \
        TIERMEM_OUTPUT_DIR="$rundir" TIERMEM_LOG=warn \
        "$work/victim" "$rundir" 6 2 1 >"$rundir/counts" 2>"$rundir/stderr"
    rc=$?
    local what="closefrom: $sampler sampler, run $k"
    if timed_out $rc; then
        tail -5 "$rundir/stderr" | detail
        fail "$what: the program did not exit within 20 s"
        return
    fi
    if [ $rc -ne 0 ] || [ "$(wc -l <"$rundir/counts")" -ne 6 ]; then
        tail -5 "$rundir/stderr" | detail
        fail "$what: the program failed (exit status $rc)"
        return
    fi
    if ! files_exact "$rundir" "$rundir/counts"; then
        fail "$what: tiermem wrote into the program's files"
        return
    fi
    local warned
    warned=$(grep -c 'profiler.*no longer ours' "$rundir/stderr")
    if [ "$warned" -ne 1 ]; then
        tail -5 "$rundir/stderr" | detail
        say "expected one 'no longer ours' warning, saw $warned"
        fail "$what: profiling did not stop with one warning"
        return
    fi
    pass "$what: files intact, exit after $((SECONDS - start)) s, one warning"
}

for k in 1 2 3; do
    run_closefrom uffd "$k"
done
run_closefrom refs 1
run_closefrom faults 1

# ulimit -n 6: stdin, stdout, stderr and three files of the program's own.
rundir=$work/nofile
mkdir -p "$rundir"
(
    ulimit -n 6 || exit 90
    exec timeout -k 2 20 env LD_PRELOAD="$preload" TIERMEM_PROFILE=1 \
        TIERMEM_OUTPUT_DIR="$rundir" TIERMEM_LOG=warn \
        "$work/victim" "$rundir" 3 0.3 0
) >"$rundir/counts" 2>"$rundir/stderr"
rc=$?
if [ $rc -eq 90 ]; then
    skip "closefrom: ulimit -n 6" "the shell refused the limit"
elif [ $rc -ne 0 ] || ! files_exact "$rundir" "$rundir/counts"; then
    tail -5 "$rundir/stderr" | detail
    fail "closefrom: under ulimit -n 6 the program could not open its 3 files (exit status $rc)"
elif ! grep -q 'profiler: not started.*RLIMIT_NOFILE' "$rundir/stderr"; then
    tail -5 "$rundir/stderr" | detail
    fail "closefrom: under ulimit -n 6 tiermem did not warn that profiling is off"
else
    pass "closefrom: under ulimit -n 6 the program opens its 3 files; profiling off with a warning"
fi
exit 0
