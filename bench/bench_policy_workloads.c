/*
 * bench_policy_workloads.c -- bench_policy's replay workloads: item sizes,
 * per-phase access distributions, and the sampled accesses of one run.
 *
 * Sizes are whole MiB so the oracle's knapsack table works at a 1 MiB
 * granularity and stays exact.  A run stands for what a PEBS-like sampler
 * sees: a fixed number of sampled accesses per interval, each drawn from
 * the current phase's distribution (a multinomial), so two runs of the same
 * workload with different seeds differ only by sampling noise.
 */
#include "config.h"

#include <math.h>

#include "bench_util.h"
#include "bench_policy_workloads.h"

#define WL_ITEMS 64
#define PH_HOT 16        /* items in a phase's hot set */
#define PH_SHIFT 8       /* consecutive phases share PH_HOT - PH_SHIFT items */
#define SVB_SMALL 40     /* small-vs-big: the small hot items */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        die_errno(errno, "calloc %zu x %zu", n, size);
    return p;
}

/* Uniform in [0, 1), 53 bits. */
static double rng_unit(bench_rng_t *r)
{
    return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Whole MiB, log-uniform in [lo, hi] MiB: many small items, a few large. */
static uint64_t log_uniform_mib(bench_rng_t *r, double lo, double hi)
{
    double m = exp(log(lo) + rng_unit(r) * (log(hi) - log(lo)));
    long long mib = llround(m);
    return (uint64_t)(mib < 1 ? 1 : mib) * WL_MIB;
}

static void shuffle(bench_rng_t *r, size_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bench_rng_below(r, i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Scale p[0..n) so it sums to mass (p must not sum to 0). */
static void normalize(double *p, size_t n, double mass)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    for (size_t i = 0; i < n; i++)
        p[i] *= mass / sum;
}

static void alloc_items(workload_t *w, size_t n, unsigned nphases)
{
    w->n = n;
    w->nphases = nphases;
    w->bytes = xcalloc(n, sizeof(*w->bytes));
    w->prob = xcalloc((size_t)nphases * n, sizeof(*w->prob));
}

/* WL_ITEMS items of 1..256 MiB (log-uniform) and a random order of them. */
static void spread_items(bench_rng_t *r, workload_t *w, unsigned nphases,
                         size_t perm[WL_ITEMS])
{
    alloc_items(w, WL_ITEMS, nphases);
    for (size_t i = 0; i < w->n; i++)
        w->bytes[i] = log_uniform_mib(r, 1, 256);
    shuffle(r, perm, w->n);
}

/* static: 64 items of 1..256 MiB; Zipf (s = 1) over a random order, so
 * hotness does not follow size. */
static void make_static(bench_rng_t *r, workload_t *w)
{
    size_t perm[WL_ITEMS];
    spread_items(r, w, 1, perm);
    for (size_t k = 0; k < w->n; k++)
        w->prob[perm[k]] = 1.0 / (double)(k + 1);
    normalize(w->prob, w->n, 1.0);
}

/* phases: 64 items of 1..256 MiB, 4 phases.  Phase k's hot set is 16
 * items of a random order starting at 8k, with 85% of the accesses (Zipf
 * s = 0.8 inside); so half of a phase's hot set stays hot in the next,
 * with its rank changed.  The other 15% are spread evenly over all items. */
static void make_phases(bench_rng_t *r, workload_t *w)
{
    size_t perm[WL_ITEMS];
    spread_items(r, w, 4, perm);
    for (unsigned ph = 0; ph < w->nphases; ph++) {
        double *p = w->prob + (size_t)ph * w->n;
        for (size_t j = 0; j < PH_HOT; j++)
            p[perm[(ph * PH_SHIFT + j) % w->n]] = pow((double)(j + 1), -0.8);
        normalize(p, w->n, 0.85);
        for (size_t i = 0; i < w->n; i++)
            p[i] += 0.15 / (double)w->n;
    }
}

/* small-vs-big: item 0 is 20% of the footprint with 45% of the accesses;
 * 40 items of 1..4 MiB share 40% at a density 0.5..1.5 x their mean (the
 * densest data); 23 fillers of 8..128 MiB share the last 15% evenly per
 * byte.  Greedy by density takes the small items first and then cannot fit
 * the big one at a quarter of the footprint; knapsack takes it. */
static void make_small_vs_big(bench_rng_t *r, workload_t *w)
{
    alloc_items(w, WL_ITEMS, 1);
    uint64_t rest = 0;
    for (size_t i = 1; i < w->n; i++) {
        if (i <= SVB_SMALL) {
            w->bytes[i] = (1 + bench_rng_below(r, 4)) * WL_MIB;
            w->prob[i] = (double)w->bytes[i] * (0.5 + rng_unit(r));
        } else {
            w->bytes[i] = log_uniform_mib(r, 8, 128);
        }
        rest += w->bytes[i];
    }
    normalize(w->prob + 1, SVB_SMALL, 0.40);
    double filler = 0;
    for (size_t i = SVB_SMALL + 1; i < w->n; i++)
        filler += (double)w->bytes[i];
    for (size_t i = SVB_SMALL + 1; i < w->n; i++)
        w->prob[i] = 0.15 * (double)w->bytes[i] / filler;
    w->bytes[0] = (rest / 4 / WL_MIB) * WL_MIB;   /* 0.2 of the total */
    w->prob[0] = 0.45;
}

void workload_make(workload_kind_t kind, uint64_t seed, workload_t *w)
{
    /* Each workload its own stream, so adding one changes no other. */
    bench_rng_t r = {seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(kind + 1))};
    memset(w, 0, sizeof(*w));
    switch (kind) {
    case WL_STATIC:
        w->name = "static";
        w->what = "64 items of 1..256 MiB, one Zipf(1) distribution";
        make_static(&r, w);
        break;
    case WL_PHASES:
        w->name = "phases";
        w->what = "64 items of 1..256 MiB, 4 phases, hot sets of 16 "
                  "sharing 8 with the next, 85% of accesses";
        make_phases(&r, w);
        break;
    default:
        w->name = "small-vs-big";
        w->what = "40 small items (1..4 MiB, 40% of accesses) vs one of "
                  "20% of the footprint (45%), 23 cold fillers";
        make_small_vs_big(&r, w);
        break;
    }
    for (size_t i = 0; i < w->n; i++)
        w->footprint += w->bytes[i];
}

void workload_free(workload_t *w)
{
    free(w->bytes);
    free(w->prob);
    memset(w, 0, sizeof(*w));
}

unsigned replay_phase_start(const replay_t *r, unsigned phase)
{
    if (phase >= r->nphases)
        return r->nintervals;
    return (unsigned)((uint64_t)phase * r->nintervals / r->nphases);
}

unsigned replay_phase_of(const replay_t *r, unsigned interval)
{
    unsigned p = 0;
    while (p + 1 < r->nphases && interval >= replay_phase_start(r, p + 1))
        p++;
    return p;
}

/* The first item whose cumulative probability passes u. */
static size_t draw(const double *cdf, size_t n, double u)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void replay_make(const workload_t *w, unsigned nintervals, unsigned samples,
                 uint64_t seed, replay_t *r)
{
    bench_rng_t rng = {seed};
    double *cdf = xcalloc(w->n, sizeof(*cdf));
    memset(r, 0, sizeof(*r));
    r->nintervals = nintervals;
    r->n = w->n;
    r->nphases = w->nphases;
    r->count = xcalloc((size_t)nintervals * w->n, sizeof(*r->count));
    for (unsigned ph = 0; ph < w->nphases; ph++) {
        const double *p = w->prob + (size_t)ph * w->n;
        double sum = 0;
        for (size_t i = 0; i < w->n; i++)
            cdf[i] = (sum += p[i]);
        for (size_t i = 0; i < w->n; i++)
            cdf[i] /= sum;
        for (unsigned k = replay_phase_start(r, ph);
             k < replay_phase_start(r, ph + 1); k++) {
            uint32_t *row = r->count + (size_t)k * w->n;
            for (unsigned s = 0; s < samples; s++)
                row[draw(cdf, w->n, rng_unit(&rng))]++;
            r->total += samples;
        }
    }
    free(cdf);
}

void replay_free(replay_t *r)
{
    free(r->count);
    memset(r, 0, sizeof(*r));
}
