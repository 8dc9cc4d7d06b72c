/*
 * bench_placement.c -- how long each placement policy takes, and how many
 * accesses it puts in the fast tier relative to knapsack.
 *
 *   bench_placement            random sites (sizes 4 KiB .. 4 GiB,
 *                              heavy-tailed accesses), fast tier a quarter
 *                              of the footprint; per n: milliseconds per
 *                              policy (median of 5) and hotset/knapsack,
 *                              thermos/knapsack objective ratios.
 *   bench_placement --scale [N]  N sites (default 2^20) of four shapes, CPU
 *                              seconds per policy (one run each), whether
 *                              it stayed exact; then knapsack's approximation
 *                              against the exact table where that fits.
 *
 * Shapes for --scale: "pages" (every site 4 KiB: the former thermos's
 * quadratic case), "random" (as above), "swaps" (thermos displaces, and
 * every later site walks past chosen sites too big to evict), "interleave"
 * (tiny and huge chosen sites alternate; every later mid-sized site would
 * walk 1024 of them to fail), "flat" (the same with densities within
 * 1e-8 of each other: only the walk can tell, up to thermos's work bound).
 */
#include "config.h"

#include <time.h>

#include "policy.h"
#include "bench_util.h"

#define ROUNDS 5
#define PAGE UINT64_C(4096)

static double cpu_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        die_errno(errno, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sizes 4 KiB .. 4 GiB, accesses heat^3 mod 100000; returns the bytes. */
static uint64_t fill_random(place_item_t *it, size_t n, bench_rng_t *rng)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t pages = 1 + bench_rng_below(rng, 1u << 20);
        uint64_t heat = bench_rng_below(rng, 1000);
        it[i] = (place_item_t){i, pages * PAGE,
                               (double)(heat * heat * heat % 100000)};
        sum += it[i].bytes;
    }
    return sum;
}

static void table(void)
{
    static const size_t sizes[] = {16, 256, 4096};
    bench_rng_t rng = {0x5eed};
    printf("%6s %10s %10s %10s %8s %8s %6s\n", "n", "hotset_ms",
           "thermos_ms", "knap_ms", "hot/kn", "therm/kn", "exact");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        place_item_t *it = calloc(n, sizeof(*it));
        unsigned *tier = calloc(n, sizeof(*tier));
        if (!it || !tier)
            die("calloc %zu items", n);
        uint64_t cap[2] = {fill_random(it, n, &rng) / 4, 0};
        double ms[3][ROUNDS], obj[3] = {0};
        bool exact = false;
        for (int r = 0; r < ROUNDS; r++) {
            for (int p = 0; p < 3; p++) {
                int q = (p + r) % 3;   /* rotated order */
                uint64_t t0 = bench_now_ns();
                obj[q] = place_items((place_policy_t)q, it, n, cap, 2, NULL,
                                     tier, q == PLACE_KNAPSACK ? &exact : NULL);
                ms[q][r] = (double)(bench_now_ns() - t0) / 1e6;
                if (obj[q] < 0)
                    die_errno(errno, "place_items %s", place_policy_name((place_policy_t)q));
            }
        }
        printf("%6zu %10.3f %10.3f %10.3f %8.4f %8.4f %6s\n", n,
               bench_median(ms[0], ROUNDS), bench_median(ms[1], ROUNDS),
               bench_median(ms[2], ROUNDS), obj[0] / obj[2], obj[1] / obj[2],
               exact ? "yes" : "no");
        free(it);
        free(tier);
    }
}

/* ------------------------------------------------------------ --scale */

static uint64_t shape_pages(place_item_t *it, size_t n, bench_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        it[i] = (place_item_t){i, PAGE, (double)(1 + bench_rng_below(rng,
                                                                     1000))};
    return n * PAGE;
}

/* Half the sites (3 pages, 3.5) fill the tier but for 1000 sites of the
 * other half (5 pages, 5) and 4 pages; see test_million_thermos_swaps. */
static uint64_t shape_swaps(place_item_t *it, size_t n, bench_rng_t *rng)
{
    (void)rng;
    size_t a = n / 2;
    for (size_t i = 0; i < n; i++)
        it[i] = i < a ? (place_item_t){i, 3 * PAGE, 3.5}
                      : (place_item_t){i, 5 * PAGE, 5};
    return 4 * (3 * a + 5 * 1000 + 4) * PAGE;   /* cap = a quarter */
}

/* The first half, densest, alternates 1 and 1024 pages and fills the tier
 * exactly; the second half (512 pages) each needs 512 of the tiny ones,
 * found one by one between the huge ones, and then has too few accesses. */
static uint64_t interleave(place_item_t *it, size_t n, double top)
{
    uint64_t first = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t pages = i >= n / 2 ? 512 : i % 2 ? 1024 : 1;
        double density = top - (double)i;   /* per page, descending */
        it[i] = (place_item_t){i, pages * PAGE, density * (double)pages};
        if (i < n / 2)
            first += it[i].bytes;
    }
    return 4 * first;   /* cap = a quarter: the first half */
}

/* Densities n .. 1: the coldest tiny one's density settles each late site
 * without a walk. */
static uint64_t shape_interleave(place_item_t *it, size_t n,
                                 bench_rng_t *rng)
{
    (void)rng;
    return interleave(it, n, (double)n);
}

/* Densities 1e15 - i: all within the margin, every late site walks (and
 * sums again: too close to call) until thermos's work bound. */
static uint64_t shape_flat(place_item_t *it, size_t n, bench_rng_t *rng)
{
    (void)rng;
    return interleave(it, n, 1e15);
}

typedef uint64_t (*shape_fn)(place_item_t *, size_t, bench_rng_t *);

static void scale_shape(const char *name, shape_fn fn, place_item_t *it,
                        unsigned *tier, size_t n)
{
    bench_rng_t rng = {0x5ca1e};
    uint64_t cap[2] = {fn(it, n, &rng) / 4, 0};
    printf("%-11s", name);
    for (int p = 0; p < 3; p++) {
        bool exact = true;
        double t0 = cpu_seconds();
        double obj = place_items((place_policy_t)p, it, n, cap, 2, NULL, tier,
                                 &exact);
        double s = cpu_seconds() - t0;
        if (obj < 0)
            die_errno(errno, "place_items %s on %s",
                      place_policy_name((place_policy_t)p), name);
        printf(" %9.3f %-5s %-14.6g", s, exact ? "exact" : "approx", obj);
    }
    printf("\n");
    fflush(stdout);
}

/* knapsack past its bounds against exact: random page-sized instances whose
 * exact table fits in 2^30 cells, approximated within 2^22 cells. */
static void scale_quality(void)
{
    enum { RUNS = 40, M = 2000 };
    place_item_t it[M];
    unsigned tier[M];
    bench_rng_t rng = {0xa99};
    double min[3] = {2, 2, 2}, mean[3] = {0};
    unsigned inexact = 0, approx = 0;
    for (int r = 0; r < RUNS; r++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < M; i++) {
            uint64_t pages = 1 + bench_rng_below(&rng, 256);
            uint64_t heat = bench_rng_below(&rng, 1000);
            it[i] = (place_item_t){i, pages * PAGE,
                                   (double)(heat * heat * heat % 100000)};
            sum += it[i].bytes;
        }
        uint64_t cap[2] = {sum / 4, 0};
        place_limits_t big = {UINT64_C(1) << 30, 600}, small = {1u << 22, 60};
        bool ex_big = false, ex_small = true;
        double best = place_items(PLACE_KNAPSACK, it, M, cap, 2, &big, tier,
                                  &ex_big);
        double got[3];
        got[0] = place_items(PLACE_KNAPSACK, it, M, cap, 2, &small, tier,
                             &ex_small);
        got[1] = place_items(PLACE_HOTSET, it, M, cap, 2, NULL, tier, NULL);
        got[2] = place_items(PLACE_THERMOS, it, M, cap, 2, NULL, tier, NULL);
        inexact += !ex_big;
        approx += !ex_small;
        for (int k = 0; k < 3; k++) {
            double q = got[k] / best;
            min[k] = q < min[k] ? q : min[k];
            mean[k] += q / RUNS;
        }
    }
    printf("\nquality against exact: %d instances of %d sites (1..256 pages),"
           " tier 1/4;\nknapsack approximated within 2^22 cells (%u of %d "
           "approximate), exact within 2^30 (%u not exact)\n",
           RUNS, M, approx, RUNS, inexact);
    printf("%-22s %10s %10s\n", "", "min", "mean");
    static const char *names[3] = {"knapsack approx/exact", "hotset/exact",
                                   "thermos/exact"};
    for (int k = 0; k < 3; k++)
        printf("%-22s %10.6f %10.6f\n", names[k], min[k], mean[k]);
}

static void scale(size_t n)
{
    place_item_t *it = calloc(n, sizeof(*it));
    unsigned *tier = calloc(n, sizeof(*tier));
    if (!it || !tier)
        die("calloc %zu items", n);
    printf("%zu sites, fast tier 1/4 of the footprint, CPU seconds "
           "(one run), default limits\n%-11s", n, "shape");
    for (int p = 0; p < 3; p++)
        printf(" %9s %-5s %-14s", place_policy_name((place_policy_t)p), "",
               "objective");
    printf("\n");
    scale_shape("pages", shape_pages, it, tier, n);
    scale_shape("random", fill_random, it, tier, n);
    scale_shape("swaps", shape_swaps, it, tier, n);
    scale_shape("interleave", shape_interleave, it, tier, n);
    scale_shape("flat", shape_flat, it, tier, n);
    free(it);
    free(tier);
    scale_quality();
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--scale") == 0) {
        unsigned long long n = argc >= 3 ? bench_parse_count("--scale",
                                                             argv[2])
                                         : 1ull << 20;
        if (n < 16 || n > (1ull << 26))
            die("--scale: 16 .. 2^26 sites");
        log_configure(TM_LOG_WARN, 2);
        scale((size_t)n);
        return 0;
    }
    if (argc >= 2) {
        fprintf(stderr, "usage: bench_placement [--scale [N]]\n");
        return 2;
    }
    table();
    return 0;
}
