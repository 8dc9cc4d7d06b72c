/*
 * bench_attribution.c -- the cost of attributing samples and of closing an
 * interval.
 *
 * What: attrib_sample throughput (samples/s, ns per sample) with 100k
 * extents over 256 arena ids in the extent map, random addresses inside
 * them, on 1 and 2 threads; and the time of one attrib_close with 256 live
 * arenas and ~1000 sites (big-small layout, so the sites share an arena
 * and the close apportions its samples).
 * Why: samplers call attrib_sample for every sample, possibly from two
 * threads at once; attrib_close runs on the profiling thread every
 * interval (default 100 ms), so it must stay well under a millisecond.
 *
 * The fake extents live in one PROT_NONE reservation (the map never
 * dereferences them).  Figures are medians over rounds.
 *
 * Usage: bench_attribution [--extents N] [--samples N] [--rounds R]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench_util.h"
#include "profiler.h"

#define NIDS 256
#define NSITES 1000
#define NTHREADS 2
#define NADDRS (1u << 20)

static attrib_t *attr;
static uintptr_t *addrs[NTHREADS];

typedef struct job {
    pthread_t thread;
    pthread_barrier_t *barrier;
    const uintptr_t *q;
    uint64_t n, elapsed_ns, sum;
} job_t;

static void *sample_job(void *arg)
{
    job_t *j = arg;
    int rc = pthread_barrier_wait(j->barrier);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        die_errno(rc, "pthread_barrier_wait");
    uint64_t t0 = bench_now_ns(), sum = 0;
    for (uint64_t i = 0; i < j->n; i++)
        sum += attrib_sample(attr, j->q[i & (NADDRS - 1)], 1);
    j->elapsed_ns = bench_now_ns() - t0;
    j->sum = sum;
    return NULL;
}

/* Samples per second over all threads. */
static double run_samplers(unsigned nthreads, uint64_t per_thread)
{
    pthread_barrier_t barrier;
    job_t jobs[NTHREADS];
    int rc = pthread_barrier_init(&barrier, NULL, nthreads);
    if (rc != 0)
        die_errno(rc, "pthread_barrier_init");
    for (unsigned t = 0; t < nthreads; t++) {
        jobs[t] = (job_t){.barrier = &barrier, .q = addrs[t], .n = per_thread};
        if ((rc = pthread_create(&jobs[t].thread, NULL, sample_job, &jobs[t])))
            die_errno(rc, "pthread_create");
    }
    uint64_t longest = 1;
    for (unsigned t = 0; t < nthreads; t++) {
        pthread_join(jobs[t].thread, NULL);
        BENCH_KEEP(jobs[t].sum);
        if (jobs[t].elapsed_ns > longest)
            longest = jobs[t].elapsed_ns;
    }
    pthread_barrier_destroy(&barrier);
    return (double)per_thread * nthreads * 1e9 / (double)longest;
}

/* 100k fake extents of 1..16 pages, ids 1..NIDS, with addresses to sample. */
static void fake_extents(size_t nextents, bench_rng_t *rng)
{
    size_t page = os_page_size(), span = nextents * 17 * page;
    char *region = mmap(NULL, span, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED)
        die_errno(errno, "mmap(%zu bytes, PROT_NONE)", span);
    uintptr_t *starts = calloc(nextents, sizeof *starts);
    size_t *sizes = calloc(nextents, sizeof *sizes);
    if (starts == NULL || sizes == NULL)
        die("out of memory");
    uintptr_t at = (uintptr_t)region;
    for (size_t i = 0; i < nextents; i++) {
        sizes[i] = (1 + bench_rng_below(rng, 16)) * page;
        starts[i] = at;
        if (extent_map_insert((void *)at, sizes[i],
                              (unsigned)(1 + i % NIDS)) != 0)
            die_errno(errno, "extent_map_insert");
        at += sizes[i] + page;
    }
    for (unsigned t = 0; t < NTHREADS; t++) {
        addrs[t] = malloc(NADDRS * sizeof *addrs[t]);
        if (addrs[t] == NULL)
            die("out of memory");
        for (size_t k = 0; k < NADDRS; k++) {
            size_t e = bench_rng_below(rng, nextents);
            addrs[t][k] = starts[e] + bench_rng_below(rng, sizes[e]);
        }
    }
    free(starts);
    free(sizes);
}

/* 256 live arenas and ~1000 sites, for the close. */
static void real_arenas_and_sites(void)
{
    tm_placement_t p = tm_placement_node(TM_MODE_PREFERRED, 0);
    for (int i = 0; i < NIDS; i++) {
        tm_arena_t *a = tm_arena_create(&p);
        if (a == NULL || tm_arena_malloc(a, 4096) == NULL)
            die_errno(errno, "arena %d", i);
    }
    for (int i = 1; i <= NSITES; i++)
        if (tm_site_malloc(i, 64 + (size_t)i) == NULL)
            die_errno(errno, "site %d", i);
}

int main(int argc, char **argv)
{
    unsigned long long nextents = 100000, nsamples = 20000000;
    unsigned rounds = 5;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--extents")))
            nextents = bench_parse_count("--extents", v);
        else if ((v = bench_opt(argc, argv, &i, "--samples")))
            nsamples = bench_parse_count("--samples", v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")))
            rounds = bench_parse_rounds(v);
        else
            die("usage: %s [--extents N] [--samples N] [--rounds R]", argv[0]);
    }
    setenv("TIERMEM_LAYOUT", "big-small", 0);
    if (!sites_ready())
        die("tiermem sites did not start");
    real_arenas_and_sites();
    bench_rng_t rng = {42};
    fake_extents((size_t)nextents, &rng);
    attr = attrib_new(4);
    if (attr == NULL)
        die("attrib_new failed");

    double one[1000], two[1000], close_us[1000];
    for (unsigned r = 0; r < rounds; r++) {
        one[r] = run_samplers(1, nsamples);
        two[r] = run_samplers(2, nsamples / 2);
        uint64_t t0 = bench_now_ns();
        const prof_interval_t *iv = attrib_close(attr, r, r + 1);
        close_us[r] = (double)(bench_now_ns() - t0) / 1e3;
        if (iv == NULL)
            die("attrib_close failed");
        if (r == 0)
            printf("close: %zu arena rows, %zu site rows, %llu samples\n",
                   iv->narenas, iv->nsites, (unsigned long long)iv->samples);
    }
    double m1 = bench_median(one, rounds), m2 = bench_median(two, rounds);
    printf("extents %llu over %d ids, %u rounds (medians)\n", nextents, NIDS,
           rounds);
    printf("attrib_sample 1 thread : %8.1f M samples/s  %6.2f ns/sample\n",
           m1 / 1e6, 1e9 / m1);
    printf("attrib_sample 2 threads: %8.1f M samples/s  %6.2f ns/sample "
           "(x%.2f of 1 thread)\n", m2 / 1e6, 2e9 / m2, m2 / m1);
    printf("attrib_close (%d arenas, %d sites): %.1f us\n", NIDS, NSITES,
           bench_median(close_us, rounds));
    attrib_delete(attr);
    return 0;
}
