/*
 * bench_unwind.c -- what a site costs per allocation: the stack walk at
 * depths 1 to 4, and a whole tiermem malloc+free through a site at each
 * depth, next to glibc's backtrace() and to plain jemalloc.
 *
 * What, in ns per call (median over the rounds [min-max]):
 *   stack_key      stack_key(caller, depth, NULL) from an entry point, as
 *                  tiermem's preload library computes it for every
 *                  allocation of at least TIERMEM_SMALL_SIZE bytes.  Depth 1
 *                  takes the entry point's return address and does not
 *                  unwind; deeper keys walk the stack with libgcc's
 *                  _Unwind_Backtrace.
 *   backtrace      glibc's backtrace(buf, depth) from the same place: the
 *                  same `depth` frames and the same number of unwind steps
 *                  (backtrace's own frame, then the application's), the
 *                  obvious alternative to a hand-written walk.
 *   site malloc    site_malloc(caller, -1, 64 KiB) + site_free with
 *                  runtime_options.stack_depth = depth and small_size = 0: what
 *                  malloc+free of a block of that size costs under the
 *                  preload library (stack walk from inside site_malloc, site
 *                  lookup, per-site arena, accounting).
 *   site 0         the same with small_size above 64 KiB, so the block goes
 *                  to site 0 without a stack walk: the floor under the rows
 *                  above, and what TIERMEM_SMALL_SIZE buys.
 *   jemalloc       mallocx(64 KiB, 0) / dallocx(p, 0): jemalloc's default
 *                  arena and thread cache, no tiermem.
 *   glibc          __libc_malloc / __libc_free of 64 KiB (for reference).
 * Each malloc writes one byte of its block, so no allocation is elided.
 *
 * Frames: the timed loop runs in level1, which is called through level2,
 * level3 and level4 (the four frames a depth-4 key covers).  Each level is
 * noinline/noclone with an asm barrier after its call, so no call is turned
 * into a tail call and no frame disappears.  level1 calls tiermem through
 * small entry functions that do what the preload library's malloc does:
 * pass their own return address and tail-call into tiermem (at -O2 they
 * compile to `mov (%rsp),%rdi; jmp`), so the stack walked is the one a real
 * malloc call has.  Before timing, the program checks that stack_key sees
 * exactly `depth` frames at each depth and that the four keys differ.
 *
 * Every (variant, depth) runs once per round, in an order rotated each
 * round; figures are medians over rounds, and differences and ratios are
 * medians of per-round differences and ratios.
 *
 * Clock: the calling thread's CPU time by default, because this benchmark
 * runs on shared 2-core machines where a wall-clock measurement of a few
 * hundred ms is often cut by preemption (seen: 3x inflated figures at load
 * 10).  Everything timed is user-space work on this thread, so CPU time is
 * the cost asked about.  --clock wall uses CLOCK_MONOTONIC instead.
 *
 * Usage: bench_unwind [--iters N] [--rounds R] [--size BYTES]
 *                     [--clock cpu|wall]
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <jemalloc/jemalloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "sites.h"

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);

#define NOINLINE __attribute__((noinline, noclone))
/* The value is used after the call, so the call is not in tail position. */
#define AFTER_CALL(r) __asm__ __volatile__("" : "+r"(r) : : "memory")

#define MAX_DEPTH 4

enum variant {
    V_KEY,        /* per depth */
    V_BACKTRACE,  /* per depth */
    V_SITE,       /* per depth */
    V_SITE0,      /* depth-independent from here on */
    V_JEMALLOC,
    V_GLIBC,
    NVARIANTS,
    V_CHECK = NVARIANTS /* not timed: one stack_key with a trace */
};

typedef struct job {
    enum variant v;
    unsigned depth;
    uint64_t iters;
    size_t size;
    stack_trace_t *trace; /* V_CHECK */
    uint64_t key;         /* V_CHECK's result */
} job_t;

static bool per_depth(enum variant v) { return v <= V_SITE; }

static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static uint64_t clock_ns(void)
{
    struct timespec ts;
    if (clock_gettime(bench_clock, &ts) != 0)
        die_errno(errno, "clock_gettime");
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Entry points, as the preload library's malloc: the caller's return
 * address handed in, then a tail call (no frame of their own at -O2). */
static NOINLINE uint64_t key_entry(unsigned depth)
{
    return stack_key(__builtin_return_address(0), depth, NULL);
}

static NOINLINE uint64_t key_entry_trace(unsigned depth, stack_trace_t *t)
{
    return stack_key(__builtin_return_address(0), depth, t);
}

static NOINLINE void *site_malloc_entry(size_t size)
{
    return site_malloc(__builtin_return_address(0), -1, size);
}

/* The application function that allocates: the timed loop.  Returns the
 * elapsed ns. */
static NOINLINE uint64_t level1(job_t *j)
{
    void *bt[MAX_DEPTH + 1];
    uint64_t acc = 0, t0, t1;
    const size_t size = j->size;
    const unsigned depth = j->depth;

    t0 = clock_ns();
    switch (j->v) {
    case V_KEY:
        for (uint64_t i = 0; i < j->iters; i++)
            acc += key_entry(depth);
        break;
    case V_BACKTRACE:
        for (uint64_t i = 0; i < j->iters; i++) {
            acc += (uint64_t)backtrace(bt, (int)depth);
            BENCH_KEEP(bt);
        }
        break;
    case V_SITE:
    case V_SITE0:
        for (uint64_t i = 0; i < j->iters; i++) {
            void *p = site_malloc_entry(size);
            if (__builtin_expect(p == NULL, 0))
                die("site_malloc(%zu) failed", size);
            *(volatile char *)p = (char)i;
            site_free(p);
        }
        break;
    case V_JEMALLOC:
        for (uint64_t i = 0; i < j->iters; i++) {
            void *p = mallocx(size, 0);
            if (__builtin_expect(p == NULL, 0))
                die("mallocx(%zu) failed", size);
            *(volatile char *)p = (char)i;
            dallocx(p, 0);
        }
        break;
    case V_GLIBC:
        for (uint64_t i = 0; i < j->iters; i++) {
            void *p = __libc_malloc(size);
            if (__builtin_expect(p == NULL, 0))
                die("__libc_malloc(%zu) failed", size);
            *(volatile char *)p = (char)i;
            __libc_free(p);
        }
        break;
    case V_CHECK:
        j->key = key_entry_trace(depth, j->trace);
        break;
    default:
        die("bad variant %d", (int)j->v);
    }
    t1 = clock_ns();
    BENCH_KEEP(acc);
    return t1 - t0;
}

/* The frames above it that deeper keys cover. */
static NOINLINE uint64_t level2(job_t *j)
{
    uint64_t r = level1(j);
    AFTER_CALL(r);
    return r;
}

static NOINLINE uint64_t level3(job_t *j)
{
    uint64_t r = level2(j);
    AFTER_CALL(r);
    return r;
}

static NOINLINE uint64_t level4(job_t *j)
{
    uint64_t r = level3(j);
    AFTER_CALL(r);
    return r;
}

/* ns per call of one (variant, depth). */
static double run_job(enum variant v, unsigned depth, uint64_t iters,
                      size_t size)
{
    job_t j = {v, depth, iters, size, NULL, 0};
    /* site_malloc reads both on every call; set them as TIERMEM_* would. */
    runtime_options.stack_depth = depth;
    runtime_options.small_size = v == V_SITE0 ? size + 1 : 0;
    return (double)level4(&j) / (double)iters;
}

/* Check the frames are there, through the very frames the timed loop uses:
 * stack_key must take exactly `depth` frames, and the keys must differ. */
static void check_frames(void)
{
    uint64_t keys[MAX_DEPTH + 1];
    for (unsigned d = 1; d <= MAX_DEPTH; d++) {
        stack_trace_t t;
        job_t j = {V_CHECK, d, 1, 0, &t, 0};
        level4(&j);
        keys[d] = j.key;
        if (t.depth != d)
            die("stack_key at depth %u took %u frames: the nested frames "
                "were optimised away or skipped",
                d, t.depth);
        for (unsigned e = 1; e < d; e++)
            if (keys[e] == keys[d])
                die("stack keys at depth %u and %u are equal", e, d);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_unwind [--iters N] [--rounds R] [--size BYTES] "
            "[--clock cpu|wall]\n"
            "  --iters N     calls per measurement (default 100k)\n"
            "  --rounds R    measured rounds (default 11)\n"
            "  --size BYTES  block size of the malloc+free rows (default "
            "65536)\n"
            "  --clock C     cpu: this thread's CPU time (default); wall: "
            "CLOCK_MONOTONIC\n");
}

int main(int argc, char **argv)
{
    uint64_t iters = 100000;
    unsigned rounds = 11;
    size_t size = 65536;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--iters")) != NULL)
            iters = bench_parse_count("--iters", v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")) != NULL)
            rounds = bench_parse_rounds(v);
        else if ((v = bench_opt(argc, argv, &i, "--size")) != NULL)
            size = (size_t)bench_parse_count("--size", v);
        else if ((v = bench_opt(argc, argv, &i, "--clock")) != NULL) {
            if (strcmp(v, "cpu") == 0)
                bench_clock = CLOCK_THREAD_CPUTIME_ID;
            else if (strcmp(v, "wall") == 0)
                bench_clock = CLOCK_MONOTONIC;
            else
                die("--clock: cpu or wall");
        } else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }

    runtime_init();
    if (!sites_ready())
        die("tiermem sites failed to initialise");
    check_frames();

    /* backtrace() loads libgcc_s on first use (and allocates): not timed. */
    {
        void *bt[4];
        BENCH_KEEP(backtrace(bt, 4));
    }

    /* The (variant, depth) combinations, flattened. */
    enum { NCOMBOS = 3 * MAX_DEPTH + (NVARIANTS - 3) };
    struct { enum variant v; unsigned depth; } combo[NCOMBOS];
    unsigned nc = 0;
    for (unsigned v = 0; v < NVARIANTS; v++) {
        if (per_depth((enum variant)v))
            for (unsigned d = 1; d <= MAX_DEPTH; d++)
                combo[nc].v = (enum variant)v, combo[nc++].depth = d;
        else
            combo[nc].v = (enum variant)v, combo[nc++].depth = 1;
    }

    printf("bench_unwind: ns per call (%s), %llu calls per measurement, "
           "%u rounds (+1 warm-up), variants interleaved, rotated each round\n",
           bench_clock == CLOCK_MONOTONIC ? "wall clock" : "thread CPU time",
           (unsigned long long)iters, rounds);
    printf("  malloc+free rows: %zu-byte blocks; layout %s; "
           "TIERMEM_WRAPPERS entries: %u\n",
           size,
           runtime_options.layout == TM_LAYOUT_PER_SITE     ? "per-site"
           : runtime_options.layout == TM_LAYOUT_PER_THREAD ? "per-thread"
                                                       : "big-small",
           runtime_options.nwrappers);
    fflush(stdout);

    /* Warm-up: creates each depth's site and arena, fills the address
     * cache, warms jemalloc's extents. */
    for (unsigned c = 0; c < NCOMBOS; c++)
        run_job(combo[c].v, combo[c].depth, iters / 10 + 1, size);

    /* The warm-up made one site per depth; their traces must have the
     * depth asked for (a walk that missed the caller would fall back to a
     * one-frame key, and all depths would share one site). */
    printf("  sites after warm-up: %u (site 0 included); stack depths:",
           site_count());
    for (uint32_t i = 1; i < site_count(); i++)
        printf(" %u", site_get(i)->trace.depth);
    printf("\n");
    if (site_count() != 1 + MAX_DEPTH)
        die("expected one site per depth");

    double *res = calloc((size_t)rounds * NCOMBOS, sizeof *res);
    double *col = malloc(rounds * sizeof *col);
    if (res == NULL || col == NULL)
        die_errno(errno, "calloc");
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned k = 0; k < NCOMBOS; k++) {
            unsigned c = (k + r * 5) % NCOMBOS;
            res[(size_t)r * NCOMBOS + c] =
                run_job(combo[c].v, combo[c].depth, iters, size);
        }

#define AT(r, c) res[(size_t)(r) * NCOMBOS + (c)]
    /* Index of a combination. */
#define IDX(v, d) ((v) <= V_SITE ? (unsigned)(v) * MAX_DEPTH + (d) - 1      \
                                 : 3 * MAX_DEPTH + (unsigned)(v) - V_SITE0)
    char cell[NCOMBOS][48];
    for (unsigned c = 0; c < NCOMBOS; c++) {
        for (unsigned r = 0; r < rounds; r++)
            col[r] = AT(r, c);
        snprintf(cell[c], sizeof cell[c], "%.1f [%.1f-%.1f]",
                 bench_median(col, rounds), bench_min(col, rounds),
                 bench_max(col, rounds));
    }

    printf("\nns per call, median of %u rounds [min-max]\n", rounds);
    printf("  %-5s %22s %22s %22s %14s %14s\n", "depth", "stack_key",
           "backtrace(depth)", "site malloc+free", "minus site 0",
           "/ jemalloc");
    for (unsigned d = 1; d <= MAX_DEPTH; d++) {
        double diff, ratio;
        for (unsigned r = 0; r < rounds; r++)
            col[r] = AT(r, IDX(V_SITE, d)) - AT(r, IDX(V_SITE0, 1));
        diff = bench_median(col, rounds);
        for (unsigned r = 0; r < rounds; r++)
            col[r] = AT(r, IDX(V_SITE, d)) / AT(r, IDX(V_JEMALLOC, 1));
        ratio = bench_median(col, rounds);
        printf("  %-5u %22s %22s %22s %14.1f %14.2f\n", d,
               cell[IDX(V_KEY, d)], cell[IDX(V_BACKTRACE, d)],
               cell[IDX(V_SITE, d)], diff, ratio);
    }
    printf("\n  %-44s %22s\n", "site 0 malloc+free (no stack walk)",
           cell[IDX(V_SITE0, 1)]);
    printf("  %-44s %22s\n", "jemalloc mallocx(s,0)/dallocx",
           cell[IDX(V_JEMALLOC, 1)]);
    printf("  %-44s %22s\n", "glibc __libc_malloc/__libc_free",
           cell[IDX(V_GLIBC, 1)]);
    for (unsigned r = 0; r < rounds; r++)
        col[r] = AT(r, IDX(V_SITE0, 1)) / AT(r, IDX(V_JEMALLOC, 1));
    printf("  %-44s %22.2f\n", "site 0 / jemalloc (median of per-round)",
           bench_median(col, rounds));
#undef AT
#undef IDX
    free(col);
    free(res);
    return 0;
}
