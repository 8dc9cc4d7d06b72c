/*
 * bench_placement.c -- how long each placement policy takes, and how many
 * accesses it puts in the fast tier relative to knapsack.
 *
 * Random sites (sizes 4 KiB .. 4 GiB, heavy-tailed accesses), fast tier a
 * quarter of the footprint.  Prints per n: milliseconds per policy
 * (median of 5) and hotset/knapsack, thermos/knapsack objective ratios.
 */
#include "config.h"

#include "policy.h"
#include "bench_util.h"

#define ROUNDS 5

int main(void)
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
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t pages = 1 + bench_rng_below(&rng, 1u << 20);
            uint64_t heat = bench_rng_below(&rng, 1000);
            it[i] = (place_item_t){i, pages * 4096,
                                   (double)(heat * heat * heat % 100000)};
            sum += it[i].bytes;
        }
        uint64_t cap[2] = {sum / 4, 0};
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
    return 0;
}
