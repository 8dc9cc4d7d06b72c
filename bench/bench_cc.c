/*
 * bench_cc.c -- the cost of an allocation through a compiler-instrumented
 * call (tm_cc_malloc, then free) next to jemalloc's own paths.
 *
 * What: ns per malloc+free pair of one size, in a loop on one thread (the
 * block's first byte is written), for each size of --sizes, on
 *   - jemalloc:  mallocx(s, 0) / dallocx(p, 0), jemalloc's default path
 *                (automatic arena, thread cache);
 *   - je-site:   mallocx(s, F) / dallocx(p, F & tcache bits), with F the
 *                flags the runtime itself uses for the cc site's arena on
 *                this thread (MALLOCX_ARENA of the site's jemalloc arena |
 *                MALLOCX_TCACHE of this thread's explicit tcache for it):
 *                jemalloc doing exactly the site's allocation, nothing else;
 *   - tm_cc:     tm_cc_malloc(ID, s) / site_free(p), what an instrumented
 *                malloc and the preload library's free run (one compiler
 *                id per size, so each size is a site of its own);
 *   - preload:   site_malloc(caller, -1, s) / site_free(p), the preload
 *                library's malloc of an uninstrumented program (site 0
 *                below TIERMEM_SMALL_SIZE, else a stack walk): a reference.
 * Why: doc/compiler.md promises that an instrumented call's site costs no
 * unwinding and no hashing.  The targets (issue 16, item 8): a 64 KiB block
 * through tm_cc costs <= 1.1x je-site, a small block <= 1.2x jemalloc's
 * default path.
 *
 * All variants run in this one process, once per round each, in an order
 * rotated every round; figures are medians over the rounds, and ratios are
 * medians of the per-round ratios (each compares runs a few ms apart).
 *
 * Usage: bench_cc [--ops N] [--rounds R] [--sizes LIST]
 */
#include "config.h"

#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "sites.h"
#include "tiermem.h"

enum variant { V_JE_DEFAULT, V_JE_SITE, V_CC, V_PRELOAD, NVARIANTS };

static const char *const variant_name[NVARIANTS] = {
    [V_JE_DEFAULT] = "jemalloc  mallocx(s,0)/dallocx",
    [V_JE_SITE] = "je-site   mallocx/dallocx, the site's flags",
    [V_CC] = "tm_cc     tm_cc_malloc/free",
    [V_PRELOAD] = "preload   malloc/free (stack site)",
};

#define MAX_SIZES 8
#define CC_ID_BASE UINT64_C(0x8000000000bcc000)

typedef struct size_case {
    size_t size;
    uint64_t id;        /* the compiler id of this size's site */
    int je_alloc_flags; /* the runtime's flags for the site's arena */
    int je_free_flags;
} size_case_t;

/* The loop of one variant: `ops` pairs, timed.  A macro so each variant
 * gets its own loop with its calls inlined. */
#define RUN_LOOP(ops, ALLOC, FREE)                                            \
    do {                                                                      \
        uint64_t t0_ = bench_now_ns();                                        \
        for (uint64_t i_ = 0; i_ < (ops); i_++) {                             \
            char *p_ = (ALLOC);                                               \
            if (__builtin_expect(p_ == NULL, 0))                              \
                die("allocation failed");                                     \
            *(volatile char *)p_ = (char)i_;                                  \
            FREE;                                                             \
        }                                                                     \
        elapsed = bench_now_ns() - t0_;                                       \
    } while (0)

__attribute__((noinline)) static double run(const size_case_t *c,
                                            enum variant v, uint64_t ops)
{
    const size_t size = c->size;
    const uint64_t id = c->id;
    const int fa = c->je_alloc_flags, ff = c->je_free_flags;
    const void *caller = __builtin_return_address(0);
    uint64_t elapsed = 0;
    switch (v) {
    case V_JE_DEFAULT:
        RUN_LOOP(ops, mallocx(size, 0), dallocx(p_, 0));
        break;
    case V_JE_SITE:
        RUN_LOOP(ops, mallocx(size, fa), dallocx(p_, ff));
        break;
    case V_CC:
        RUN_LOOP(ops, tm_cc_malloc(id, size), site_free(p_));
        break;
    case V_PRELOAD:
        RUN_LOOP(ops, site_malloc(caller, -1, size), site_free(p_));
        break;
    default:
        die("bad variant %d", (int)v);
    }
    return (double)elapsed / (double)ops;
}

/* The flags the runtime uses for the cc site's arena on this thread, once
 * its tcache for that arena exists (after enough allocations there). */
static void site_flags(size_case_t *c)
{
    for (int i = 0; i < 2 * TCACHE_AFTER_USES; i++)
        site_free(tm_cc_malloc(c->id, c->size));
    site_t *s = cc_site(c->id);
    tm_arena_t *a = s ? atomic_load(&s->arena) : NULL;
    if (a == NULL)
        die("the cc site of %zu bytes has no arena", c->size);
    c->je_alloc_flags = tcache_alloc_flags(a);
    c->je_free_flags = c->je_alloc_flags & TCACHE_FLAGS_MASK;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_cc [--ops N] [--rounds R] [--sizes LIST]\n"
            "  --ops N       malloc+free pairs per run (default 1M)\n"
            "  --rounds R    measured rounds (default 11)\n"
            "  --sizes LIST  comma-separated block sizes in bytes (default "
            "16,64,256,65536)\n");
}

static unsigned parse_sizes(const char *list, size_case_t *cases)
{
    unsigned n = 0;
    const char *p = list;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno != 0 || end == p || v == 0 || v > (1ull << 30) ||
            (*end != ',' && *end != '\0'))
            die("--sizes: bad list: %s", list);
        if (n == MAX_SIZES)
            die("--sizes: at most %d sizes", MAX_SIZES);
        cases[n].size = (size_t)v;
        n++;
        p = *end == ',' ? end + 1 : end;
    }
    if (n == 0)
        die("--sizes: empty list");
    return n;
}

int main(int argc, char **argv)
{
    uint64_t ops = 1000000;
    unsigned rounds = 11, nsizes;
    size_case_t cases[MAX_SIZES];

    nsizes = parse_sizes("16,64,256,65536", cases);
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--ops")) != NULL)
            ops = bench_parse_count("--ops", v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")) != NULL)
            rounds = bench_parse_rounds(v);
        else if ((v = bench_opt(argc, argv, &i, "--sizes")) != NULL)
            nsizes = parse_sizes(v, cases);
        else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }

    /* One CPU: less noise from migrations. */
    {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        (void)sched_setaffinity(0, sizeof set, &set);
    }
    if (!sites_ready())
        die("the runtime did not start");
    for (unsigned k = 0; k < nsizes; k++) {
        cases[k].id = CC_ID_BASE + k;
        site_flags(&cases[k]);
    }

    printf("bench_cc: one-size malloc+free loop, 1 thread\n");
    printf("  %llu pairs per run, %u rounds (+1 warm-up), variants "
           "interleaved, rotated each round\n",
           (unsigned long long)ops, rounds);
    printf("  layout %d, TIERMEM_SMALL_SIZE %zu\n",
           (int)runtime_options.layout, (size_t)runtime_options.small_size);
    fflush(stdout);

    enum { NV = NVARIANTS };
    const unsigned ncombos = nsizes * NV;
    for (unsigned c = 0; c < ncombos; c++) /* warm-up */
        (void)run(&cases[c / NV], (enum variant)(c % NV), ops / 10 + 1);
    double *res = calloc((size_t)rounds * ncombos, sizeof *res);
    double *col = malloc(rounds * sizeof *col);
    if (res == NULL || col == NULL)
        die_errno(errno, "calloc");
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned c = 0; c < ncombos; c++) {
            unsigned combo = (c + r * 3) % ncombos; /* rotate the order */
            res[(size_t)r * ncombos + combo] =
                run(&cases[combo / NV], (enum variant)(combo % NV), ops);
        }

    for (unsigned k = 0; k < nsizes; k++) {
        printf("\n%zu B: ns per malloc+free, median of %u rounds [min-max]\n",
               cases[k].size, rounds);
        for (unsigned v = 0; v < NV; v++) {
            for (unsigned r = 0; r < rounds; r++)
                col[r] = res[(size_t)r * ncombos + k * NV + v];
            printf("  %-44s %8.1f [%.1f-%.1f]\n", variant_name[v],
                   bench_median(col, rounds), bench_min(col, rounds),
                   bench_max(col, rounds));
        }
        /* the targets: 64 KiB and up against the site's own
         * mallocx, small blocks against the default path */
        bool big = cases[k].size > 1024;
        struct {
            const char *label;
            enum variant num, den;
            double target;
        } ratios[] = {
            {"tm_cc / jemalloc-default", V_CC, V_JE_DEFAULT, big ? 0 : 1.2},
            {"tm_cc / je-site         ", V_CC, V_JE_SITE, big ? 1.1 : 0},
            {"preload / jemalloc-default", V_PRELOAD, V_JE_DEFAULT, 0},
            {"tm_cc / preload         ", V_CC, V_PRELOAD, 0},
        };
        for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
            for (unsigned r = 0; r < rounds; r++)
                col[r] = res[(size_t)r * ncombos + k * NV + ratios[i].num] /
                         res[(size_t)r * ncombos + k * NV + ratios[i].den];
            double m = bench_median(col, rounds);
            printf("  ratio %-28s %5.2f [%.2f-%.2f]", ratios[i].label, m,
                   bench_min(col, rounds), bench_max(col, rounds));
            if (ratios[i].target > 0)
                printf("  target <= %.1f: %s", ratios[i].target,
                       m <= ratios[i].target ? "met" : "MISSED");
            printf("\n");
        }
    }
    free(col);
    free(res);
    return 0;
}
