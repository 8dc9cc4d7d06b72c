/*
 * bench_alloc.c -- small-object allocate+free cost of a tiermem arena next
 * to the allocation paths it is meant to replace or beat.
 *
 * What: ns per operation, where one operation frees a random slot of a
 * 64-slot window and allocates a new block of a random size (16-271 B, a
 * fixed seed) into it, at 1 and 2 threads, for
 *   - tiermem:      tm_arena_malloc / tm_free on one arena bound to node 0;
 *   - unchecked:    the same, freed the way tm_free did before it checked
 *                   that a pointer is where a block starts (extent map,
 *                   then straight to the front cache or dallocx): what
 *                   that check costs;
 *   - jemalloc:     mallocx(s, 0) / dallocx(p, 0), jemalloc's default path;
 *   - glibc:        __libc_malloc / __libc_free, glibc's own allocator,
 *                   whatever plain malloc resolves to in this binary;
 *   - tcache (ref): mallocx on a plain jemalloc arena through an explicit
 *                   per-thread tcache (MALLOCX_TCACHE(tc)): the floor a
 *                   per-arena allocator built on jemalloc can reach;
 *   - SICM:         mallocx(s, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE) /
 *                   dallocx(p, MALLOCX_TCACHE_NONE) on a plain arena.
 * Why: an application (hypre's coarsening makes about a million 32-byte
 * allocations) must not pay much for putting its small objects in a tiered
 * arena.  The targets: tiermem / jemalloc-default <= 1.3, and SICM's
 * TCACHE_NONE path / tiermem >= 3 at 2 threads (SICM's cost is the one a
 * per-arena allocator has without a thread cache).
 *
 * Every variant runs once per round on the same two worker threads (so
 * thread caches stay warm), in an order rotated each round; the figures are
 * medians over the rounds and the ratios are medians of per-round ratios.
 *
 * Usage: bench_alloc [--ops N] [--rounds R] [--seed S] [--only LIST]
 * (--only tiermem,jemalloc,glibc,tcache,sicm,unchecked: run only these
 * paths, e.g. to profile one of them.)
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "sites.h"
#include "tiermem.h"

/* glibc exports its allocator under these names whatever `malloc` binds to. */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);

#define WINDOW 64        /* slots per thread; a power of two */
#define SEQ_LEN (1u << 16) /* precomputed (slot, size) ops per thread */
#define MIN_SIZE 16
#define NSIZES 256       /* sizes MIN_SIZE .. MIN_SIZE + NSIZES - 1 = 271 */
#define NTHREADS_MAX 2

enum variant {
    V_TIERMEM,
    V_JE_DEFAULT,
    V_GLIBC,
    V_JE_TCACHE,
    V_JE_TCNONE,
    V_UNCHECKED,
    NVARIANTS
};

static const char *const variant_key[NVARIANTS] = {
    [V_TIERMEM] = "tiermem", [V_JE_DEFAULT] = "jemalloc", [V_GLIBC] = "glibc",
    [V_JE_TCACHE] = "tcache",  [V_JE_TCNONE] = "sicm",
    [V_UNCHECKED] = "unchecked",
};

static const char *const variant_name[NVARIANTS] = {
    [V_TIERMEM] = "tiermem   tm_arena_malloc/tm_free",
    [V_JE_DEFAULT] = "jemalloc  mallocx(s,0)/dallocx",
    [V_GLIBC] = "glibc     __libc_malloc/__libc_free",
    [V_JE_TCACHE] = "ref       arena + explicit tcache",
    [V_JE_TCNONE] = "SICM      arena + TCACHE_NONE",
    [V_UNCHECKED] = "tiermem   free without the start check",
};

typedef struct worker {
    pthread_t thread;
    unsigned id;
    uint32_t *seq;    /* SEQ_LEN entries: slot in the low 6 bits, size above */
    void *slot[WINDOW];
    int tc_alloc_flags; /* MALLOCX_ARENA(tcache_arena) | MALLOCX_TCACHE(tc) */
    int tc_free_flags;  /* MALLOCX_TCACHE(tc): this thread's own tcache */
    uint64_t elapsed_ns;
} worker_t;

/* The current job, written by main between the two barriers. */
static struct {
    enum variant variant;
    unsigned nthreads;
    uint64_t ops;
    int quit;
} job;

static pthread_barrier_t start_barrier, done_barrier;
static worker_t workers[NTHREADS_MAX];
static tm_arena_t *tm_arena;
static unsigned sicm_arena, tcache_arena;

static void barrier_wait(pthread_barrier_t *b)
{
    int rc = pthread_barrier_wait(b);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        die_errno(rc, "pthread_barrier_wait");
}

/* tm_free as it was before it checked block starts. */
static inline void free_unchecked(void *ptr)
{
    unsigned id = extent_map_lookup(ptr);
    if (id == 0)
        die("unchecked free: %p is not tiermem's", ptr);
    tm_arena_t *a = arena_by_id(id);
    if (a == NULL)
        die("unchecked free: %p is in no live arena", ptr);
    if (a->client.on_free != NULL) {
        size_t usable = sallocx(ptr, 0);
        a->client.on_free(a, ptr, usable);
        arena_free_known(ptr, a, usable);
        return;
    }
    arena_free_known(ptr, a, 0);
}

static inline size_t op_size(uint32_t e) { return MIN_SIZE + (e >> 6); }
static inline unsigned op_slot(uint32_t e) { return e & (WINDOW - 1); }

/* One timed run of a path: fill the window (untimed), do `ops` operations
 * (timed), empty the window (untimed).  A macro so every path gets its own
 * loop with the calls inlined, not a call through a pointer. */
#define RUN_LOOP(w, ops, ALLOC, FREE)                                         \
    do {                                                                      \
        uint64_t t0_, t1_;                                                    \
        for (unsigned s_ = 0; s_ < WINDOW; s_++) {                            \
            size_t size = op_size((w)->seq[s_]);                              \
            void *p_ = (ALLOC);                                               \
            if (p_ == NULL)                                                   \
                die("allocation of %zu bytes failed", size);                  \
            (w)->slot[s_] = p_;                                               \
        }                                                                     \
        t0_ = bench_now_ns();                                                 \
        for (uint64_t i_ = 0; i_ < (ops); i_++) {                             \
            uint32_t e_ = (w)->seq[i_ & (SEQ_LEN - 1)];                       \
            unsigned s_ = op_slot(e_);                                        \
            size_t size = op_size(e_);                                        \
            void *ptr = (w)->slot[s_];                                        \
            void *p_;                                                         \
            FREE;                                                             \
            p_ = (ALLOC);                                                     \
            if (__builtin_expect(p_ == NULL, 0))                              \
                die("allocation of %zu bytes failed", size);                  \
            *(volatile char *)p_ = (char)i_;                                  \
            (w)->slot[s_] = p_;                                               \
        }                                                                     \
        t1_ = bench_now_ns();                                                 \
        for (unsigned s_ = 0; s_ < WINDOW; s_++) {                            \
            void *ptr = (w)->slot[s_];                                        \
            FREE;                                                             \
            (w)->slot[s_] = NULL;                                             \
        }                                                                     \
        (w)->elapsed_ns = t1_ - t0_;                                          \
    } while (0)

static void run_variant(worker_t *w, enum variant v, uint64_t ops)
{
    const int sicm_flags = MALLOCX_ARENA(sicm_arena) | MALLOCX_TCACHE_NONE;
    const int tc_alloc = w->tc_alloc_flags, tc_free = w->tc_free_flags;

    switch (v) {
    case V_TIERMEM:
        RUN_LOOP(w, ops, tm_arena_malloc(tm_arena, size), tm_free(ptr));
        break;
    case V_UNCHECKED:
        RUN_LOOP(w, ops, tm_arena_malloc(tm_arena, size),
                 free_unchecked(ptr));
        break;
    case V_JE_DEFAULT:
        RUN_LOOP(w, ops, mallocx(size, 0), dallocx(ptr, 0));
        break;
    case V_GLIBC:
        RUN_LOOP(w, ops, __libc_malloc(size), __libc_free(ptr));
        break;
    case V_JE_TCACHE:
        RUN_LOOP(w, ops, mallocx(size, tc_alloc), dallocx(ptr, tc_free));
        break;
    case V_JE_TCNONE:
        RUN_LOOP(w, ops, mallocx(size, sicm_flags),
                 dallocx(ptr, MALLOCX_TCACHE_NONE));
        break;
    default:
        die("bad variant %d", (int)v);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    unsigned tc;
    size_t sz = sizeof tc;
    int rc;

    /* Pin worker i to CPU i when there are enough CPUs: less noise. */
    if (sysconf(_SC_NPROCESSORS_ONLN) >= NTHREADS_MAX) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->id, &set);
        rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        if (rc != 0)
            fprintf(stderr, "bench_alloc: worker %u not pinned: %s\n", w->id,
                    strerror(rc));
    }
    /* This thread's own explicit tcache for the reference path. */
    rc = mallctl("tcache.create", &tc, &sz, NULL, 0);
    if (rc != 0)
        die_errno(rc, "mallctl(tcache.create)");
    w->tc_alloc_flags = MALLOCX_ARENA(tcache_arena) | MALLOCX_TCACHE(tc);
    w->tc_free_flags = MALLOCX_TCACHE(tc);

    for (;;) {
        barrier_wait(&start_barrier);
        if (job.quit)
            break;
        if (w->id < job.nthreads)
            run_variant(w, job.variant, job.ops);
        barrier_wait(&done_barrier);
    }
    rc = mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc);
    if (rc != 0)
        die_errno(rc, "mallctl(tcache.destroy)");
    return NULL;
}

/* Run one variant on nthreads workers; ns per op per thread, averaged over
 * the threads that ran. */
static double run_job(enum variant v, unsigned nthreads, uint64_t ops)
{
    double sum = 0;
    job.variant = v;
    job.nthreads = nthreads;
    job.ops = ops;
    barrier_wait(&start_barrier);
    barrier_wait(&done_barrier);
    for (unsigned t = 0; t < nthreads; t++)
        sum += (double)workers[t].elapsed_ns / (double)ops;
    return sum / nthreads;
}

static unsigned create_plain_arena(void)
{
    unsigned ind;
    size_t sz = sizeof ind;
    int rc = mallctl("arenas.create", &ind, &sz, NULL, 0);
    if (rc != 0)
        die_errno(rc, "mallctl(arenas.create)");
    return ind;
}

/* Which shared object a function comes from. */
static const char *object_of(void *fn)
{
    Dl_info info;
    if (fn == NULL || dladdr(fn, &info) == 0 || info.dli_fname == NULL)
        return "(unknown)";
    return info.dli_fname;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_alloc [--ops N] [--rounds R] [--seed S] "
            "[--only LIST]\n"
            "  --ops N      operations per thread per run (default 1M)\n"
            "  --rounds R   measured rounds (default 11)\n"
            "  --seed S     random seed (default 42)\n"
            "  --only LIST  comma-separated paths to run (default all): "
            "tiermem,jemalloc,glibc,tcache,sicm,unchecked\n");
}

/* Bit v set = run variant v. */
static unsigned parse_only(const char *list)
{
    unsigned mask = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        unsigned v;
        for (v = 0; v < NVARIANTS; v++)
            if (strlen(variant_key[v]) == n &&
                strncmp(p, variant_key[v], n) == 0)
                break;
        if (v == NVARIANTS)
            die("--only: unknown path '%.*s' (tiermem, jemalloc, glibc, "
                "tcache, sicm, unchecked)",
                (int)n, p);
        mask |= 1u << v;
        p += n;
        if (*p == ',')
            p++;
    }
    if (mask == 0)
        die("--only: empty list");
    return mask;
}

int main(int argc, char **argv)
{
    uint64_t ops = 1000000, seed = 42;
    unsigned rounds = 11, only = (1u << NVARIANTS) - 1;
    static const unsigned thread_counts[] = {1, 2};
    enum { NTC = 2, NCOMBOS = NVARIANTS * NTC };
    double *res; /* [round][variant][tc] */
    tm_placement_t pl;
    const char *libc_obj, *malloc_obj;
    int rc;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--ops")) != NULL)
            ops = bench_parse_count("--ops", v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")) != NULL)
            rounds = bench_parse_rounds(v);
        else if ((v = bench_opt(argc, argv, &i, "--seed")) != NULL)
            seed = bench_parse_count("--seed", v);
        else if ((v = bench_opt(argc, argv, &i, "--only")) != NULL)
            only = parse_only(v);
        else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }

    /* glibc's allocator, checked by where the symbol really lives. */
    libc_obj = object_of((void *)__libc_malloc);
    malloc_obj = object_of(dlsym(RTLD_DEFAULT, "malloc"));
    if (strstr(libc_obj, "libc.so") == NULL)
        die("__libc_malloc resolves to %s, not glibc's libc.so", libc_obj);
    if (strstr(object_of((void *)__libc_free), "libc.so") == NULL)
        die("__libc_free does not resolve to glibc's libc.so");

    pl = tm_placement_node(TM_MODE_BIND, 0);
    tm_arena = tm_arena_create(&pl);
    if (tm_arena == NULL)
        die_errno(errno, "tm_arena_create(BIND, node 0)");
    sicm_arena = create_plain_arena();
    tcache_arena = create_plain_arena();

    /* The same op sequences for every path: thread t has its own seed. */
    for (unsigned t = 0; t < NTHREADS_MAX; t++) {
        bench_rng_t rng = {seed * 0x100000001b3ull + t};
        workers[t].id = t;
        workers[t].seq = malloc(SEQ_LEN * sizeof(uint32_t));
        if (workers[t].seq == NULL)
            die_errno(errno, "malloc");
        for (unsigned i = 0; i < SEQ_LEN; i++) {
            uint32_t slot = (uint32_t)bench_rng_below(&rng, WINDOW);
            uint32_t size = (uint32_t)bench_rng_below(&rng, NSIZES);
            workers[t].seq[i] = slot | size << 6;
        }
    }

    if ((rc = pthread_barrier_init(&start_barrier, NULL, NTHREADS_MAX + 1)) ||
        (rc = pthread_barrier_init(&done_barrier, NULL, NTHREADS_MAX + 1)))
        die_errno(rc, "pthread_barrier_init");
    for (unsigned t = 0; t < NTHREADS_MAX; t++) {
        rc = pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]);
        if (rc != 0)
            die_errno(rc, "pthread_create");
    }

    printf("bench_alloc: small-object malloc+free, sizes %d-%d B (seed %llu),"
           " %d-slot window\n",
           MIN_SIZE, MIN_SIZE + NSIZES - 1, (unsigned long long)seed, WINDOW);
    printf("  %llu ops per thread per run, %u rounds (+1 warm-up), variants "
           "interleaved, rotated each round\n",
           (unsigned long long)ops, rounds);
    printf("  glibc path: __libc_malloc from %s\n", libc_obj);
    printf("  (plain malloc in this binary resolves to %s)\n", malloc_obj);
    printf("  tiermem arena id %u = jemalloc arena %u; SICM arena %u; "
           "tcache ref arena %u\n",
           tm_arena_id(tm_arena), tm_arena_jemalloc_index(tm_arena),
           sicm_arena, tcache_arena);
    fflush(stdout);

    /* Warm-up: every path once, short, not counted. */
    for (unsigned v = 0; v < NVARIANTS; v++)
        for (unsigned k = 0; k < NTC; k++)
            if (only & 1u << v)
                run_job((enum variant)v, thread_counts[k], ops / 10 + 1);

    res = calloc((size_t)rounds * NCOMBOS, sizeof *res);
    if (res == NULL)
        die_errno(errno, "calloc");
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned c = 0; c < NCOMBOS; c++) {
            unsigned combo = (c + r * 3) % NCOMBOS; /* rotate the order */
            unsigned v = combo / NTC, k = combo % NTC;
            if (!(only & 1u << v))
                continue;
            res[(size_t)r * NCOMBOS + v * NTC + k] =
                run_job((enum variant)v, thread_counts[k], ops);
        }
    }

    job.quit = 1;
    barrier_wait(&start_barrier);
    for (unsigned t = 0; t < NTHREADS_MAX; t++) {
        rc = pthread_join(workers[t].thread, NULL);
        if (rc != 0)
            die_errno(rc, "pthread_join");
    }

    /* The table. */
    {
        double *col = malloc(rounds * sizeof *col);
        if (col == NULL)
            die_errno(errno, "malloc");
        printf("\nns per op (free + malloc), median of %u rounds "
               "[min-max]\n",
               rounds);
        printf("  %-38s %20s %20s\n", "path", "1 thread", "2 threads");
        for (unsigned v = 0; v < NVARIANTS; v++) {
            if (!(only & 1u << v))
                continue;
            printf("  %-38s", variant_name[v]);
            for (unsigned k = 0; k < NTC; k++) {
                char cell[64];
                for (unsigned r = 0; r < rounds; r++)
                    col[r] = res[(size_t)r * NCOMBOS + v * NTC + k];
                snprintf(cell, sizeof cell, "%.1f [%.1f-%.1f]",
                         bench_median(col, rounds), bench_min(col, rounds),
                         bench_max(col, rounds));
                printf(" %20s", cell);
            }
            printf("\n");
        }

        /* Ratios: per round (same round = side by side), then the median. */
        struct {
            const char *label;
            enum variant num, den;
            unsigned k;
            double target;
            int upper; /* 1: target is an upper bound, 0: lower bound */
        } ratios[] = {
            {"tiermem / jemalloc-default, 1 thread ", V_TIERMEM, V_JE_DEFAULT,
             0, 1.3, 1},
            {"tiermem / jemalloc-default, 2 threads", V_TIERMEM, V_JE_DEFAULT,
             1, 1.3, 1},
            {"TCACHE_NONE / tiermem,      2 threads", V_JE_TCNONE, V_TIERMEM,
             1, 3.0, 0},
            {"TCACHE_NONE / tiermem,      1 thread ", V_JE_TCNONE, V_TIERMEM,
             0, 0, 0},
            {"tiermem / glibc,            1 thread ", V_TIERMEM, V_GLIBC, 0, 0,
             0},
            {"tiermem / glibc,            2 threads", V_TIERMEM, V_GLIBC, 1, 0,
             0},
            {"tiermem / explicit tcache,  1 thread ", V_TIERMEM, V_JE_TCACHE,
             0, 0, 0},
            {"tiermem / explicit tcache,  2 threads", V_TIERMEM, V_JE_TCACHE,
             1, 0, 0},
            {"tiermem / unchecked free,   1 thread ", V_TIERMEM, V_UNCHECKED,
             0, 0, 0},
            {"tiermem / unchecked free,   2 threads", V_TIERMEM, V_UNCHECKED,
             1, 0, 0},
        };
        printf("\nratios (median of per-round ratios [min-max])\n");
        for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
            double m;
            if (!(only & 1u << ratios[i].num) || !(only & 1u << ratios[i].den))
                continue;
            for (unsigned r = 0; r < rounds; r++)
                col[r] =
                    res[(size_t)r * NCOMBOS + ratios[i].num * NTC +
                        ratios[i].k] /
                    res[(size_t)r * NCOMBOS + ratios[i].den * NTC +
                        ratios[i].k];
            m = bench_median(col, rounds);
            printf("  %s  %5.2f [%.2f-%.2f]", ratios[i].label, m,
                   bench_min(col, rounds), bench_max(col, rounds));
            if (ratios[i].target > 0) {
                int met = ratios[i].upper ? m <= ratios[i].target
                                          : m >= ratios[i].target;
                printf("  target %s %.1f: %s", ratios[i].upper ? "<=" : ">=",
                       ratios[i].target, met ? "met" : "MISSED");
            }
            printf("\n");
        }
        free(col);
    }

    free(res);
    for (unsigned t = 0; t < NTHREADS_MAX; t++)
        free(workers[t].seq);
    if (tm_arena_destroy(tm_arena) != 0)
        die_errno(errno, "tm_arena_destroy");
    return 0;
}
