/*
 * bench_extent_map.c -- the cost of tiermem's address -> arena map.
 *
 * What: lookups per second and ns per lookup of extent_map_lookup with
 * 100k extents in the map (random page-multiple sizes 4-64 KiB, arena ids
 * 1..64, laid out in address order with 1-4 page gaps between them), for
 * addresses inside extents, in the gaps between them, far from any extent
 * (random user addresses), and a 50/50 mix of inside and gap; at 1 and 2
 * threads, and with one reader racing one writer that keeps removing and
 * re-inserting extents.  Also insert and remove throughput.
 * Why: tm_free and tm_arena_of look every pointer up here, so a lookup is on
 * the fast path of every free; it must cost a few ns and scale with threads
 * (reads are lock-free).  Inserts and removes run in extent hooks, under
 * jemalloc's locks, so they must be cheap too.
 *
 * The extents live in one reserved PROT_NONE mapping: the map never
 * dereferences the addresses it holds, so nothing is committed.  Every
 * lookup figure is a median over rounds, the variants run in a rotated order
 * in each round.
 *
 * Usage: bench_extent_map [--extents N] [--lookups N] [--rounds R]
 *                         [--seed S]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"
#include "extent.h"

#define MAX_PAGES 16 /* extents of 1..16 pages */
#define MAX_GAP 4    /* gaps of 1..4 pages */
#define NIDS 64      /* arena ids 1..64 */
#define NQUERIES (1u << 20) /* addresses per query array (a power of two) */
#define NTHREADS 2

typedef struct extent {
    uintptr_t start;
    size_t size;
    unsigned id;
} extent_t;

enum kind { K_INSIDE, K_GAP, K_FAR, K_MIXED, NKINDS };
static const char *const kind_name[NKINDS] = {
    [K_INSIDE] = "inside an extent",
    [K_GAP] = "in a gap (same region)",
    [K_FAR] = "far (random user addr)",
    [K_MIXED] = "mixed 50% inside/gap",
};

static extent_t *extents;
static size_t nextents;
static size_t page;
/* queries[kind][thread]: NQUERIES addresses each */
static uintptr_t *queries[NKINDS][NTHREADS];

typedef struct lookup_job {
    pthread_t thread;
    pthread_barrier_t *barrier;
    const uintptr_t *q;
    uint64_t n;
    uint64_t elapsed_ns;
    uint64_t sum; /* of the ids found, so the lookups cannot be elided */
} lookup_job_t;

static void barrier_wait(pthread_barrier_t *b)
{
    int rc = pthread_barrier_wait(b);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        die_errno(rc, "pthread_barrier_wait");
}

static void *lookup_main(void *arg)
{
    lookup_job_t *j = arg;
    uint64_t sum = 0, t0;
    barrier_wait(j->barrier);
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < j->n; i++)
        sum += extent_map_lookup((const void *)j->q[i & (NQUERIES - 1)]);
    j->elapsed_ns = bench_now_ns() - t0;
    j->sum = sum;
    return NULL;
}

/* Churn: remove and re-insert the upper half of the extents until told to
 * stop; counts operations. */
typedef struct churn_job {
    pthread_t thread;
    pthread_barrier_t *barrier;
    atomic_int stop;
    uint64_t ops;
    uint64_t elapsed_ns;
} churn_job_t;

static void insert_extent(const extent_t *e)
{
    if (extent_map_insert((const void *)e->start, e->size, e->id) != 0)
        die_errno(errno, "extent_map_insert(%#lx, %zu, %u)",
                  (unsigned long)e->start, e->size, e->id);
}

static void *churn_main(void *arg)
{
    churn_job_t *c = arg;
    uint64_t ops = 0, t0;
    size_t i = nextents / 2;
    barrier_wait(c->barrier);
    t0 = bench_now_ns();
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        const extent_t *e = &extents[i];
        extent_map_remove((const void *)e->start, e->size);
        insert_extent(e);
        ops += 2;
        if (++i == nextents)
            i = nextents / 2;
    }
    c->elapsed_ns = bench_now_ns() - t0;
    c->ops = ops;
    return NULL;
}

/* Lookups on nthreads threads at once.  Returns the total rate (lookups/s)
 * and, through ns_per, the mean ns per lookup of one thread. */
static double run_lookups(enum kind k, unsigned nthreads, uint64_t n,
                          double *ns_per)
{
    lookup_job_t jobs[NTHREADS];
    pthread_barrier_t barrier;
    uint64_t max_ns = 0;
    double ns_sum = 0;
    int rc;

    if ((rc = pthread_barrier_init(&barrier, NULL, nthreads)) != 0)
        die_errno(rc, "pthread_barrier_init");
    for (unsigned t = 0; t < nthreads; t++) {
        jobs[t] = (lookup_job_t){.barrier = &barrier, .q = queries[k][t], .n = n};
        if ((rc = pthread_create(&jobs[t].thread, NULL, lookup_main, &jobs[t])))
            die_errno(rc, "pthread_create");
    }
    for (unsigned t = 0; t < nthreads; t++) {
        if ((rc = pthread_join(jobs[t].thread, NULL)) != 0)
            die_errno(rc, "pthread_join");
        BENCH_KEEP(jobs[t].sum);
        if (jobs[t].elapsed_ns > max_ns)
            max_ns = jobs[t].elapsed_ns;
        ns_sum += (double)jobs[t].elapsed_ns / (double)n;
    }
    if ((rc = pthread_barrier_destroy(&barrier)) != 0)
        die_errno(rc, "pthread_barrier_destroy");
    *ns_per = ns_sum / nthreads;
    return (double)n * nthreads / ((double)max_ns / 1e9);
}

/* One reader (mixed queries) while one writer churns the upper half. */
static void run_contended(uint64_t n, double *reader_ns, double *writer_ops)
{
    lookup_job_t r = {.q = queries[K_MIXED][0], .n = n};
    churn_job_t w = {.ops = 0};
    pthread_barrier_t barrier;
    int rc;

    atomic_init(&w.stop, 0);
    if ((rc = pthread_barrier_init(&barrier, NULL, 2)) != 0)
        die_errno(rc, "pthread_barrier_init");
    r.barrier = w.barrier = &barrier;
    if ((rc = pthread_create(&w.thread, NULL, churn_main, &w)) != 0 ||
        (rc = pthread_create(&r.thread, NULL, lookup_main, &r)) != 0)
        die_errno(rc, "pthread_create");
    if ((rc = pthread_join(r.thread, NULL)) != 0)
        die_errno(rc, "pthread_join");
    atomic_store(&w.stop, 1);
    if ((rc = pthread_join(w.thread, NULL)) != 0)
        die_errno(rc, "pthread_join");
    if ((rc = pthread_barrier_destroy(&barrier)) != 0)
        die_errno(rc, "pthread_barrier_destroy");
    BENCH_KEEP(r.sum);
    *reader_ns = (double)r.elapsed_ns / (double)n;
    *writer_ops = (double)w.ops / ((double)w.elapsed_ns / 1e9);
}

static uintptr_t random_inside(bench_rng_t *rng)
{
    const extent_t *e = &extents[bench_rng_below(rng, nextents)];
    return e->start + bench_rng_below(rng, e->size);
}

/* A gap is the 1..MAX_GAP pages after each extent. */
static uintptr_t random_gap(bench_rng_t *rng)
{
    size_t i = bench_rng_below(rng, nextents);
    uintptr_t gap_start = extents[i].start + extents[i].size;
    uintptr_t gap_end = i + 1 < nextents ? extents[i + 1].start
                                         : gap_start + page;
    return gap_start + bench_rng_below(rng, gap_end - gap_start);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_extent_map [--extents N] [--lookups N] "
            "[--rounds R] [--seed S]\n"
            "  --extents N  extents in the map (default 100k)\n"
            "  --lookups N  lookups per thread per run (default 20M)\n"
            "  --rounds R   measured rounds (default 7)\n"
            "  --seed S     random seed (default 42)\n");
}

int main(int argc, char **argv)
{
    uint64_t nlookups = 20000000, seed = 42;
    unsigned rounds = 7;
    size_t npages = 0, region_size, extent_bytes = 0;
    void *region;
    uintptr_t base;
    bench_rng_t rng;
    uint64_t t0, cold_insert_ns;
    double *lk_rate, *lk_ns, *ins_ns, *rem_ns, *ct_reader, *ct_writer;
    enum { NCOMBOS = NKINDS * 2 };

    nextents = 100000;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--extents")) != NULL)
            nextents = bench_parse_count("--extents", v);
        else if ((v = bench_opt(argc, argv, &i, "--lookups")) != NULL)
            nlookups = bench_parse_count("--lookups", v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")) != NULL)
            rounds = bench_parse_rounds(v);
        else if ((v = bench_opt(argc, argv, &i, "--seed")) != NULL)
            seed = bench_parse_count("--seed", v);
        else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (nextents < 2)
        die("--extents: at least 2");

    {
        long ps = sysconf(_SC_PAGESIZE);
        if (ps <= 0)
            die_errno(errno, "sysconf(_SC_PAGESIZE)");
        page = (size_t)ps;
    }

    /* Lay the extents out: sizes and gaps first, then one reservation. */
    extents = malloc(nextents * sizeof *extents);
    if (extents == NULL)
        die_errno(errno, "malloc");
    rng.s = seed;
    {
        size_t off = 0;
        for (size_t i = 0; i < nextents; i++) {
            size_t pages = 1 + bench_rng_below(&rng, MAX_PAGES);
            size_t gap = 1 + bench_rng_below(&rng, MAX_GAP);
            extents[i].start = off; /* offset in pages for now */
            extents[i].size = pages * page;
            extent_bytes += pages * page;
            extents[i].id = 1 + (unsigned)bench_rng_below(&rng, NIDS);
            off += pages + gap;
        }
        npages = off;
    }
    region_size = npages * page;
    region = mmap(NULL, region_size, PROT_NONE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED)
        die_errno(errno, "mmap(%zu bytes, PROT_NONE)", region_size);
    base = (uintptr_t)region;
    for (size_t i = 0; i < nextents; i++)
        extents[i].start = base + extents[i].start * page;

    /* Query arrays, one per kind and thread. */
    for (unsigned k = 0; k < NKINDS; k++) {
        for (unsigned t = 0; t < NTHREADS; t++) {
            uintptr_t *q = malloc(NQUERIES * sizeof *q);
            bench_rng_t r = {seed * 1000003u + k * NTHREADS + t + 1};
            if (q == NULL)
                die_errno(errno, "malloc");
            for (size_t i = 0; i < NQUERIES; i++) {
                switch ((enum kind)k) {
                case K_INSIDE:
                    q[i] = random_inside(&r);
                    break;
                case K_GAP:
                    q[i] = random_gap(&r);
                    break;
                case K_FAR:
                    /* user space above 64 KiB and below 2^47, not in the
                     * region holding the extents */
                    do
                        q[i] = 0x10000 +
                               bench_rng_below(&r, (1ull << 47) - 0x10000);
                    while (q[i] >= base && q[i] < base + region_size);
                    break;
                case K_MIXED:
                    q[i] = bench_rng_below(&r, 2) ? random_inside(&r)
                                                  : random_gap(&r);
                    break;
                default:
                    break;
                }
            }
            queries[k][t] = q;
        }
    }

    printf("bench_extent_map: %zu extents of 4-64 KiB (arena ids 1..%d), "
           "1-%d page gaps, in %.2f GiB of reserved PROT_NONE address space\n",
           nextents, NIDS, MAX_GAP, (double)region_size / (1u << 30));
    printf("  %llu lookups per thread per run, %u rounds (+1 warm-up), "
           "variants interleaved\n",
           (unsigned long long)nlookups, rounds);

    /* Cold insert: the first fills the radix's interior and leaves too. */
    t0 = bench_now_ns();
    for (size_t i = 0; i < nextents; i++)
        insert_extent(&extents[i]);
    cold_insert_ns = bench_now_ns() - t0;

    /* Sanity, not timed: the map answers what we inserted. */
    {
        size_t wrong = 0, far_hits = 0;
        for (size_t i = 0; i < nextents; i++) {
            const extent_t *e = &extents[i];
            if (extent_map_lookup((const void *)e->start) != e->id ||
                extent_map_lookup((const void *)(e->start + e->size - 1)) !=
                    e->id ||
                extent_map_lookup((const void *)(e->start + e->size)) != 0)
                wrong++;
        }
        for (size_t i = 0; i < NQUERIES; i++) {
            if (extent_map_lookup((const void *)queries[K_GAP][0][i]) != 0)
                wrong++;
            if (extent_map_lookup((const void *)queries[K_FAR][0][i]) != 0)
                far_hits++;
        }
        if (wrong != 0)
            die("extent map gave %zu wrong answers: its figures would mean "
                "nothing",
                wrong);
        printf("  checked: every extent's first/last byte gives its id, "
               "the byte after and %u gap addresses give 0",
               NQUERIES);
        if (far_hits)
            printf(" (%zu far addresses hit live extents of this process)", far_hits);
        printf("\n");
    }

    lk_rate = calloc((size_t)rounds * NCOMBOS, sizeof *lk_rate);
    lk_ns = calloc((size_t)rounds * NCOMBOS, sizeof *lk_ns);
    ins_ns = calloc(rounds, sizeof *ins_ns);
    rem_ns = calloc(rounds, sizeof *rem_ns);
    ct_reader = calloc(rounds, sizeof *ct_reader);
    ct_writer = calloc(rounds, sizeof *ct_writer);
    if (!lk_rate || !lk_ns || !ins_ns || !rem_ns || !ct_reader || !ct_writer)
        die_errno(errno, "calloc");

    /* Warm-up, not counted. */
    for (unsigned c = 0; c < NCOMBOS; c++) {
        double ns;
        run_lookups((enum kind)(c / 2), 1 + c % 2, nlookups / 10 + 1, &ns);
    }

    for (unsigned r = 0; r < rounds; r++) {
        /* +2 slots: the churn (remove all, insert all) and the contended
         * reader, rotated with the lookups. */
        for (unsigned c = 0; c < NCOMBOS + 2; c++) {
            unsigned combo = (c + r * 3) % (NCOMBOS + 2);
            if (combo < NCOMBOS) {
                size_t i = (size_t)r * NCOMBOS + combo;
                lk_rate[i] = run_lookups((enum kind)(combo / 2), 1 + combo % 2,
                                         nlookups, &lk_ns[i]);
            } else if (combo == NCOMBOS) {
                t0 = bench_now_ns();
                for (size_t i = 0; i < nextents; i++)
                    extent_map_remove((const void *)extents[i].start,
                                      extents[i].size);
                rem_ns[r] = (double)(bench_now_ns() - t0) / (double)nextents;
                t0 = bench_now_ns();
                for (size_t i = 0; i < nextents; i++)
                    insert_extent(&extents[i]);
                ins_ns[r] = (double)(bench_now_ns() - t0) / (double)nextents;
            } else {
                run_contended(nlookups, &ct_reader[r], &ct_writer[r]);
            }
        }
    }

    {
        double *col = malloc(rounds * sizeof *col), *col2;
        col2 = malloc(rounds * sizeof *col2);
        if (col == NULL || col2 == NULL)
            die_errno(errno, "malloc");
        printf("\nlookups (median of %u rounds; Mlookups/s is all threads "
               "together, ns is per lookup on one thread)\n",
               rounds);
        printf("  %-26s %8s %14s %12s %18s\n", "address", "threads",
               "Mlookups/s", "ns/lookup", "ns [min-max]");
        for (unsigned combo = 0; combo < NCOMBOS; combo++) {
            char mm[48];
            for (unsigned r = 0; r < rounds; r++) {
                col[r] = lk_rate[(size_t)r * NCOMBOS + combo];
                col2[r] = lk_ns[(size_t)r * NCOMBOS + combo];
            }
            snprintf(mm, sizeof mm, "[%.2f-%.2f]", bench_min(col2, rounds),
                     bench_max(col2, rounds));
            printf("  %-26s %8u %14.1f %12.2f %18s\n", kind_name[combo / 2],
                   1 + combo % 2, bench_median(col, rounds) / 1e6,
                   bench_median(col2, rounds), mm);
        }
        printf("  %-26s %8s %14.1f %12.2f %18s\n",
               "mixed, 1 writer racing", "1+1",
               1e3 / bench_median(ct_reader, rounds),
               bench_median(ct_reader, rounds), "(reader)");
        printf("    the racing writer removed+inserted extents at %.2f "
               "Mops/s\n",
               bench_median(ct_writer, rounds) / 1e6);

        printf("\ninserts and removes of %zu extents, one thread "
               "(median of %u rounds)\n",
               nextents, rounds);
        printf("  cold insert (first fill)  %8.1f ns/extent  %8.2f "
               "Mextents/s\n",
               (double)cold_insert_ns / (double)nextents,
               (double)nextents / ((double)cold_insert_ns / 1e9) / 1e6);
        printf("  insert (leaves present)   %8.1f ns/extent  %8.2f "
               "Mextents/s\n",
               bench_median(ins_ns, rounds),
               1e3 / bench_median(ins_ns, rounds));
        printf("  remove                    %8.1f ns/extent  %8.2f "
               "Mextents/s\n",
               bench_median(rem_ns, rounds),
               1e3 / bench_median(rem_ns, rounds));
        printf("  insert+remove pair        %8.1f ns         %8.2f Mpairs/s\n",
               bench_median(ins_ns, rounds) + bench_median(rem_ns, rounds),
               1e3 / (bench_median(ins_ns, rounds) +
                      bench_median(rem_ns, rounds)));
        printf("  (mean extent %.1f KiB: an insert or remove writes every "
               "page's entry)\n",
               (double)extent_bytes / (double)nextents / 1024.0);
        free(col);
        free(col2);
    }

    for (size_t i = 0; i < nextents; i++)
        extent_map_remove((const void *)extents[i].start, extents[i].size);
    if (munmap(region, region_size) != 0)
        die_errno(errno, "munmap");
    for (unsigned k = 0; k < NKINDS; k++)
        for (unsigned t = 0; t < NTHREADS; t++)
            free(queries[k][t]);
    free(extents);
    free(lk_rate);
    free(lk_ns);
    free(ins_ns);
    free(rem_ns);
    free(ct_reader);
    free(ct_writer);
    return 0;
}
