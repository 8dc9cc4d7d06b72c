/*
 * bigarrays.c -- a program built on large arrays, for the preload benchmark
 * (bench/bench_preload.sh): the shape of an HPC proxy application.  It is an
 * ordinary program that links nothing of tiermem; every allocation goes
 * through plain malloc/free, so LD_PRELOAD decides who serves it.
 *
 * Why this shape: in real HPC codes a few dozen allocations of 2 MiB and
 * more hold nearly all the bytes (an AMG proxy run: 57 allocations >= 2 MiB
 * held 98% of them), and the many small allocations are a rounding error in
 * bytes.  For a tiering runtime this is the friendly case: few sites, each
 * worth placing, and almost no allocation traffic.  Its overhead here should
 * be close to nothing; anything else would show up as page-fault or
 * first-touch cost in the big arrays.
 *
 * What it does:
 *   - start-up: 2000 small "parameter" strings (16-200 B), kept to the end;
 *   - --fields grid fields of N^3 doubles (N = --n, default 80: 3.9 MiB
 *     each) and three 16 MiB triad vectors, all allocated with malloc and
 *     first touched in parallel (as OpenMP codes do);
 *   - --iters iterations of: a Jacobi 7-point stencil from each even field
 *     into the next odd one (then the two swap roles), a residual computed
 *     into a fresh N^3 array that is freed at the end of the iteration (the
 *     allocate-per-solve pattern of hypre's vectors), a STREAM triad, and 400
 *     small descriptors (32-512 B) allocated and freed;
 *   - everything freed.
 * All loops run on --threads threads (default 2), split by fixed contiguous
 * ranges, and partial sums are combined in thread order, so the output is
 * the same in every run with the same options.
 *
 * Output (stdout): the allocation counts and byte shares, then a checksum of
 * the final data.  The time taken goes to stderr.
 *
 * Usage: bigarrays [--n N] [--fields F] [--iters I] [--threads T]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define MAX_THREADS 64
#define MIB (1024.0 * 1024.0)
#define BIG_MIN ((size_t)2 << 20) /* what counts as a big allocation */
#define TRIAD_LEN ((size_t)1 << 21) /* doubles: 16 MiB per vector */
#define NPARAMS 2000
#define NDESC 400

/* ------------------------------------------------------------ accounting */

static struct {
    unsigned long long big_n, big_bytes, small_n, small_bytes;
} acct;

/* malloc with the byte count kept, so the program can show that it really
 * has the byte profile it claims. */
static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        die("malloc(%zu) failed", n);
    if (n >= BIG_MIN) {
        acct.big_n++;
        acct.big_bytes += n;
    } else {
        acct.small_n++;
        acct.small_bytes += n;
    }
    return p;
}

/* ------------------------------------------------------------ thread pool */

typedef void (*range_fn)(void *arg, size_t lo, size_t hi, unsigned tid);

static unsigned nthreads = 2;
static pthread_t pool[MAX_THREADS];
static pthread_barrier_t start_barrier, done_barrier;
static struct {
    range_fn fn;
    void *arg;
    size_t n;
    int quit;
} job;

/* One slot per thread and per cache line: partial sums. */
static struct {
    _Alignas(64) double v;
} partial[MAX_THREADS];

static void barrier_wait(pthread_barrier_t *b)
{
    int rc = pthread_barrier_wait(b);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        die_errno(rc, "pthread_barrier_wait");
}

static void run_share(unsigned tid)
{
    size_t lo = job.n * tid / nthreads, hi = job.n * (tid + 1) / nthreads;
    job.fn(job.arg, lo, hi, tid);
}

static void *pool_main(void *arg)
{
    unsigned tid = (unsigned)(uintptr_t)arg;
    for (;;) {
        barrier_wait(&start_barrier);
        if (job.quit)
            return NULL;
        run_share(tid);
        barrier_wait(&done_barrier);
    }
}

/* fn over [0, n) split in nthreads contiguous ranges; the main thread takes
 * range 0.  Returns the partial sums added in thread order (deterministic). */
static double parallel_for(range_fn fn, void *arg, size_t n)
{
    for (unsigned t = 0; t < nthreads; t++)
        partial[t].v = 0;
    job.fn = fn;
    job.arg = arg;
    job.n = n;
    if (nthreads > 1)
        barrier_wait(&start_barrier);
    run_share(0);
    if (nthreads > 1)
        barrier_wait(&done_barrier);
    double s = 0;
    for (unsigned t = 0; t < nthreads; t++)
        s += partial[t].v;
    return s;
}

/* ------------------------------------------------------------ kernels */

typedef struct grid_op {
    size_t n;            /* edge */
    double *src, *dst;   /* dst unused by the sum */
    const double *other; /* the residual's second operand */
    unsigned field;
} grid_op_t;

/* First touch: each thread initialises the z-planes it will compute on. */
static void k_init(void *arg, size_t lo, size_t hi, unsigned tid)
{
    const grid_op_t *g = arg;
    size_t n = g->n;
    (void)tid;
    for (size_t z = lo; z < hi; z++)
        for (size_t y = 0; y < n; y++)
            for (size_t x = 0; x < n; x++)
                g->dst[(z * n + y) * n + x] =
                    (double)((x * 7 + y * 13 + z * 29 + g->field * 3) % 101) *
                    0.01;
}

/* Jacobi sweep over z-planes [lo, hi): interior points relax towards the
 * mean of their 6 neighbours, boundary points are copied. */
static void k_stencil(void *arg, size_t lo, size_t hi, unsigned tid)
{
    const grid_op_t *g = arg;
    const size_t n = g->n, plane = n * n;
    const double *restrict s = g->src;
    double *restrict d = g->dst;
    (void)tid;
    for (size_t z = lo; z < hi; z++)
        for (size_t y = 0; y < n; y++) {
            size_t row = (z * n + y) * n;
            if (z == 0 || z == n - 1 || y == 0 || y == n - 1) {
                memcpy(d + row, s + row, n * sizeof *d);
                continue;
            }
            d[row] = s[row];
            for (size_t x = 1; x < n - 1; x++) {
                size_t i = row + x;
                d[i] = 0.5 * s[i] + (s[i - 1] + s[i + 1] + s[i - n] +
                                     s[i + n] + s[i - plane] + s[i + plane]) *
                                        (0.5 / 6.0);
            }
            d[row + n - 1] = s[row + n - 1];
        }
}

/* dst = src - other over whole planes; partial sum of squares. */
static void k_residual(void *arg, size_t lo, size_t hi, unsigned tid)
{
    const grid_op_t *g = arg;
    const size_t plane = g->n * g->n;
    double s = 0;
    for (size_t i = lo * plane; i < hi * plane; i++) {
        double d = g->src[i] - g->other[i];
        g->dst[i] = d;
        s += d * d;
    }
    partial[tid].v = s;
}

static void k_sum(void *arg, size_t lo, size_t hi, unsigned tid)
{
    const grid_op_t *g = arg;
    const size_t plane = g->n * g->n;
    double s = 0;
    for (size_t i = lo * plane; i < hi * plane; i++)
        s += g->src[i];
    partial[tid].v = s;
}

typedef struct triad {
    double *a, *b, *c;
    double scalar;
} triad_t;

static void k_triad_init(void *arg, size_t lo, size_t hi, unsigned tid)
{
    triad_t *t = arg;
    (void)tid;
    for (size_t i = lo; i < hi; i++) {
        t->a[i] = 0;
        t->b[i] = 1.0 + (double)(i % 17) * 0.1;
        t->c[i] = 2.0 - (double)(i % 13) * 0.05;
    }
}

static void k_triad(void *arg, size_t lo, size_t hi, unsigned tid)
{
    triad_t *t = arg;
    double s = 0;
    for (size_t i = lo; i < hi; i++) {
        t->a[i] = t->b[i] + t->scalar * t->c[i];
        s += t->a[i];
    }
    partial[tid].v = s;
}

/* ------------------------------------------------------------ driver */

static void usage(void)
{
    fprintf(stderr, "usage: bigarrays [--n N (80)] [--fields F (24, even)] "
                    "[--iters I (20)] [--threads T (2)]\n");
}

int main(int argc, char **argv)
{
    unsigned long long n = 80, nfields = 24, iters = 20, threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--n")) != NULL)
            n = bench_parse_count("--n", v);
        else if ((v = bench_opt(argc, argv, &i, "--fields")) != NULL)
            nfields = bench_parse_count("--fields", v);
        else if ((v = bench_opt(argc, argv, &i, "--iters")) != NULL)
            iters = bench_parse_count("--iters", v);
        else if ((v = bench_opt(argc, argv, &i, "--threads")) != NULL)
            threads = bench_parse_count("--threads", v);
        else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (threads > MAX_THREADS || nfields % 2 != 0 || nfields > 1024 ||
        n < 3 || n > 2048)
        die("bad options (--threads <= %d, --fields even <= 1024, "
            "3 <= --n <= 2048)",
            MAX_THREADS);
    const size_t edge = (size_t)n, cells = edge * edge * edge;
    if (cells * sizeof(double) < BIG_MIN)
        die("--n %llu: a field of %zu bytes is not a big array (>= 2 MiB)", n,
            cells * sizeof(double));
    nthreads = (unsigned)threads;

    uint64_t t0 = bench_now_ns();
    int rc;
    if ((rc = pthread_barrier_init(&start_barrier, NULL, nthreads)) ||
        (rc = pthread_barrier_init(&done_barrier, NULL, nthreads)))
        die_errno(rc, "pthread_barrier_init");
    for (unsigned t = 1; t < nthreads; t++) {
        rc = pthread_create(&pool[t], NULL, pool_main, (void *)(uintptr_t)t);
        if (rc != 0)
            die_errno(rc, "pthread_create");
    }

    /* Start-up: parsed input, kept for the whole run. */
    bench_rng_t rng = {12345};
    char **params = xmalloc(NPARAMS * sizeof *params);
    for (unsigned i = 0; i < NPARAMS; i++) {
        size_t len = 16 + bench_rng_below(&rng, 185);
        params[i] = xmalloc(len);
        memset(params[i], 'a' + (int)(i % 26), len - 1);
        params[i][len - 1] = '\0';
    }

    double **field = xmalloc(nfields * sizeof *field);
    for (unsigned f = 0; f < nfields; f++) {
        field[f] = xmalloc(cells * sizeof(double));
        grid_op_t g = {edge, NULL, field[f], NULL, f};
        parallel_for(k_init, &g, edge);
    }
    triad_t tr = {xmalloc(TRIAD_LEN * sizeof(double)),
                  xmalloc(TRIAD_LEN * sizeof(double)),
                  xmalloc(TRIAD_LEN * sizeof(double)), 0.5};
    parallel_for(k_triad_init, &tr, TRIAD_LEN);

    double resid = 0, triad_sum = 0;
    uint64_t small_sum = 0;
    for (unsigned it = 0; it < iters; it++) {
        /* Small descriptors, as a halo exchange or a solver setup makes. */
        void *desc[NDESC];
        for (unsigned i = 0; i < NDESC; i++) {
            size_t len = 32 + bench_rng_below(&rng, 481);
            desc[i] = xmalloc(len);
            memset(desc[i], (int)(i & 0xff), len);
            small_sum += ((unsigned char *)desc[i])[len - 1] + len;
        }

        for (unsigned f = 0; f + 1 < nfields; f += 2) {
            grid_op_t g = {edge, field[f], field[f + 1], NULL, f};
            parallel_for(k_stencil, &g, edge);
            double *tmp = field[f]; /* ping-pong */
            field[f] = field[f + 1];
            field[f + 1] = tmp;
        }

        /* A fresh residual vector each iteration, freed at its end. */
        double *r = xmalloc(cells * sizeof(double));
        grid_op_t g = {edge, field[0], r, field[1], 0};
        resid += parallel_for(k_residual, &g, edge);
        free(r);

        triad_sum += parallel_for(k_triad, &tr, TRIAD_LEN);

        for (unsigned i = 0; i < NDESC; i++)
            free(desc[i]);
    }

    double field_sum = 0;
    for (unsigned f = 0; f < nfields; f++) {
        grid_op_t g = {edge, field[f], NULL, NULL, f};
        field_sum += parallel_for(k_sum, &g, edge);
    }

    for (unsigned f = 0; f < nfields; f++)
        free(field[f]);
    free(field);
    free(tr.a);
    free(tr.b);
    free(tr.c);
    for (unsigned i = 0; i < NPARAMS; i++)
        free(params[i]);
    free(params);

    if (nthreads > 1) {
        job.quit = 1;
        barrier_wait(&start_barrier);
        for (unsigned t = 1; t < nthreads; t++)
            if ((rc = pthread_join(pool[t], NULL)) != 0)
                die_errno(rc, "pthread_join");
    }
    uint64_t t1 = bench_now_ns();

    double total = (double)(acct.big_bytes + acct.small_bytes);
    printf("bigarrays n %llu fields %llu iters %llu threads %llu\n", n,
           nfields, iters, threads);
    printf("  allocations >= 2 MiB: %llu, %.1f MiB (%.2f%% of bytes); "
           "smaller: %llu, %.2f MiB\n",
           acct.big_n, (double)acct.big_bytes / MIB,
           100.0 * (double)acct.big_bytes / total, acct.small_n,
           (double)acct.small_bytes / MIB);
    printf("  checksum fields %.12e residual %.12e triad %.12e small %llu\n",
           field_sum, resid, triad_sum, (unsigned long long)small_sum);
    fprintf(stderr, "bigarrays: %.3f s\n", (double)(t1 - t0) / 1e9);
    return 0;
}
