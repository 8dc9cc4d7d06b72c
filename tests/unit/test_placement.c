/*
 * test_placement.c -- hotset, thermos and knapsack placement, by property.
 *
 * knapsack must equal a brute force over all subsets on small random
 * instances; no policy may ever overfill a tier (thousands of random
 * instances, multi-tier, zero sizes, items larger than any tier, ties);
 * every tier's pick is maximal (nothing left over would still fit);
 * knapsack >= thermos >= hotset; thermos displaces on constructed cases;
 * knapsack past its bounds falls back (exact = false) and stays feasible;
 * tiers fill fastest first.  thermos equals the former O(n^2) scan (kept
 * here as the reference) on random instances; a million sites per policy
 * give known results (never timed here: bench/bench_placement --scale).
 */
#include "config.h"

#include <limits.h>
#include <math.h>

#include "policy.h"
#include "../tm_test.h"
#include "placement_ref.h"

#define PAGE UINT64_C(4096)
#define GIB (UINT64_C(1) << 30)
#define MAXN 48
#define MAXT 4

static const place_policy_t all_policies[] = {PLACE_HOTSET, PLACE_THERMOS,
                                              PLACE_KNAPSACK};

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* a >= b, up to rounding (sums taken in different orders). */
static bool at_least(double a, double b) { return a >= b || near(a, b); }

/* What is wrong with a placement, or NULL: a tier overfilled, a tier out of
 * range, a wrong objective, a free item off tier 0, a cold item on a fast
 * tier, or a fast tier with room left for an item placed further down. */
static const char *placement_fault(const place_item_t *it, size_t n,
                                   const uint64_t *cap, unsigned nt,
                                   const unsigned *tier, double obj)
{
    uint64_t used[MAXT] = {0};
    double t0 = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (tier[i] >= nt)
            return "tier out of range";
        if (it[i].bytes > UINT64_MAX - used[tier[i]])   /* last tier only */
            used[tier[i]] = UINT64_MAX;
        else
            used[tier[i]] += it[i].bytes;
        total += it[i].accesses;
        if (tier[i] == 0)
            t0 += it[i].accesses;
        if (it[i].bytes == 0 && tier[i] != 0)
            return "0-byte item not on tier 0";
        if (it[i].bytes && it[i].accesses == 0 && tier[i] != nt - 1)
            return "cold item on a fast tier";
    }
    for (unsigned t = 0; t + 1 < nt; t++)
        if (used[t] > cap[t])
            return "tier over capacity";
    if (!near(obj, nt == 1 ? total : t0))
        return "objective is not tier 0's accesses";
    for (size_t i = 0; i < n; i++)
        for (unsigned t = 0; t < tier[i] && t + 1 < nt; t++)
            if (it[i].accesses > 0 && it[i].bytes <= cap[t] - used[t])
                return "an item placed lower would still fit a faster tier";
    return NULL;
}

/* Best accesses within cap over all subsets (free items always in). */
static double brute_force(const place_item_t *it, size_t n, uint64_t cap)
{
    static uint64_t bytes[1u << 16];
    static double acc[1u << 16];
    double best = 0;
    bytes[0] = 0;
    acc[0] = 0;
    for (uint32_t s = 1; s < (1u << n); s++) {
        uint32_t low = (uint32_t)__builtin_ctz(s), rest = s & (s - 1);
        bytes[s] = bytes[rest] + it[low].bytes;
        acc[s] = acc[rest] + it[low].accesses;
        if (bytes[s] <= cap && acc[s] > best)
            best = acc[s];
    }
    return best;
}

static void test_knapsack_equals_brute_force(void)
{
    uint64_t rng = 0x9e3779b97f4a7c15u;
    unsigned runs = (unsigned)(1000 * tm_test_scale()), mismatches = 0;
    unsigned inexact = 0, faults = 0;
    if (runs < 50)
        runs = 50;
    place_item_t it[16];
    unsigned tier[16];
    for (unsigned r = 0; r < runs; r++) {
        size_t n = 1 + tm_test_rand(&rng) % 16;
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            it[i].key = i;
            it[i].bytes = PAGE * (1 + tm_test_rand(&rng) % 64);
            it[i].accesses = (double)(tm_test_rand(&rng) % 1000);
            sum += it[i].bytes;
        }
        uint64_t cap[2] = {tm_test_rand(&rng) % (sum + PAGE), 0};
        bool exact = false;
        double got = place_items(PLACE_KNAPSACK, it, n, cap, 2, NULL, tier,
                                 &exact);
        double want = brute_force(it, n, cap[0]);
        mismatches += got != want;
        inexact += !exact;
        faults += placement_fault(it, n, cap, 2, tier, got) != NULL;
        if (got != want)
            fprintf(stderr, "run %u: n %zu cap %llu knapsack %g brute %g\n",
                    r, n, (unsigned long long)cap[0], got, want);
    }
    CHECK_MSG(mismatches == 0, "%u of %u differ", mismatches, runs);
    CHECK_MSG(inexact == 0, "%u of %u not exact", inexact, runs);
    CHECK_MSG(faults == 0, "%u of %u faulty", faults, runs);
}

/* A random item: some free, some cold, some larger than any tier, some
 * copies of the one before (ties). */
static place_item_t random_item(uint64_t *rng, const place_item_t *prev,
                                bool pages)
{
    place_item_t x = {tm_test_rand(rng), 0, 0};
    unsigned kind = (unsigned)(tm_test_rand(rng) % 20);
    if (prev && kind == 0)
        return *prev;
    if (kind == 1)
        x.bytes = 0;
    else if (kind == 2)
        x.bytes = UINT64_C(1) << 62;
    else if (pages)
        x.bytes = PAGE * (1 + tm_test_rand(rng) % 256);
    else
        x.bytes = 1 + tm_test_rand(rng) % (64 * GIB);
    if (kind == 3)
        x.accesses = 0;
    else if (kind < 10)
        x.accesses = (double)(tm_test_rand(rng) % 100);
    else
        x.accesses = (double)(tm_test_rand(rng) % 1000000) / 7.0;
    return x;
}

static void test_random_instances(void)
{
    uint64_t rng = 12345;
    unsigned runs = (unsigned)(3000 * tm_test_scale());
    unsigned faults = 0, order = 0, first = 0, calls = 0;
    if (runs < 300)
        runs = 300;
    place_item_t it[MAXN];
    unsigned tier[MAXN], tier2[MAXN];
    for (unsigned r = 0; r < runs; r++) {
        size_t n = tm_test_rand(&rng) % MAXN;
        bool pages = r % 2;
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            it[i] = random_item(&rng, i ? &it[i - 1] : NULL, pages);
            if (it[i].bytes < (UINT64_C(1) << 62))
                sum += it[i].bytes;
        }
        unsigned nt = 1 + (unsigned)(tm_test_rand(&rng) % MAXT);
        uint64_t cap[MAXT];
        for (unsigned t = 0; t < nt; t++)
            cap[t] = r % 17 == 0 ? 0 : tm_test_rand(&rng) % (sum / 2 + 2);
        place_limits_t lim = {UINT64_C(1) << (10 + r % 8), 0};
        double obj[3];
        for (unsigned p = 0; p < 3; p++) {
            bool exact;
            obj[p] = place_items(all_policies[p], it, n, cap, nt, &lim, tier,
                                 &exact);
            calls++;
            const char *why = placement_fault(it, n, cap, nt, tier, obj[p]);
            if (why) {
                faults++;
                fprintf(stderr, "run %u %s: %s\n", r,
                        place_policy_name(all_policies[p]), why);
            }
            /* Tier 0's pick must not depend on the tiers after it. */
            if (nt > 2) {
                double o2 = place_items(all_policies[p], it, n, cap, 2, &lim,
                                        tier2, &exact);
                bool same = near(o2, obj[p]);
                for (size_t i = 0; i < n; i++)
                    same = same && ((tier[i] == 0) == (tier2[i] == 0));
                first += !same;
            }
        }
        if (nt > 1 && !(at_least(obj[2], obj[1]) && at_least(obj[1], obj[0])))
            order++;
    }
    CHECK_MSG(faults == 0, "%u of %u placements faulty", faults, calls);
    CHECK_MSG(order == 0, "%u runs without knapsack >= thermos >= hotset",
              order);
    CHECK_MSG(first == 0, "%u tier-0 picks changed with more tiers", first);
}

static double run(place_policy_t p, const place_item_t *it, size_t n,
                  const uint64_t *cap, unsigned nt, unsigned *tier)
{
    return place_items(p, it, n, cap, nt, NULL, tier, NULL);
}

static void test_thermos_displaces(void)
{
    unsigned tier[4];
    uint64_t cap[2] = {10 * PAGE, 0};
    /* A fits first (denser); B is bigger and hotter: thermos swaps. */
    place_item_t ab[] = {{1, 6 * PAGE, 7}, {2, 10 * PAGE, 10}};
    CHECK(run(PLACE_HOTSET, ab, 2, cap, 2, tier) == 7);
    CHECK(run(PLACE_THERMOS, ab, 2, cap, 2, tier) == 10);
    CHECK(tier[0] == 1 && tier[1] == 0);
    CHECK(run(PLACE_KNAPSACK, ab, 2, cap, 2, tier) == 10);

    /* Three small ones together hotter than the big one: no swap. */
    place_item_t sm[] = {{1, 3 * PAGE, 4}, {2, 3 * PAGE, 4}, {3, 3 * PAGE, 4},
                         {4, 10 * PAGE, 10}};
    CHECK(run(PLACE_HOTSET, sm, 4, cap, 2, tier) == 12);
    CHECK(run(PLACE_THERMOS, sm, 4, cap, 2, tier) == 12);
    CHECK(tier[3] == 1);
    /* ... but colder together than it: all three go. */
    sm[3].accesses = 13;
    CHECK(run(PLACE_HOTSET, sm, 4, cap, 2, tier) == 12);
    CHECK(run(PLACE_THERMOS, sm, 4, cap, 2, tier) == 13);
    CHECK(tier[0] == 1 && tier[1] == 1 && tier[2] == 1 && tier[3] == 0);

    /* Only strictly smaller items may be displaced. */
    place_item_t eq[] = {{1, 6 * PAGE, 7}, {2, 6 * PAGE, 6.5}};
    CHECK(run(PLACE_THERMOS, eq, 2, cap, 2, tier) == 7);
    CHECK(tier[0] == 0 && tier[1] == 1);
}

static void test_multi_tier(void)
{
    /* Eight 2-page items, hottest first, plus a free one and a cold one. */
    place_item_t it[10];
    for (unsigned i = 0; i < 8; i++)
        it[i] = (place_item_t){i, 2 * PAGE, 10.0 - i};
    it[8] = (place_item_t){8, 0, 0.5};
    it[9] = (place_item_t){9, PAGE, 0};
    uint64_t cap[3] = {4 * PAGE, 8 * PAGE, 0};
    static const unsigned want[10] = {0, 0, 1, 1, 1, 1, 2, 2, 0, 2};
    for (unsigned p = 0; p < 3; p++) {
        unsigned tier[10];
        double obj = run(all_policies[p], it, 10, cap, 3, tier);
        CHECK_MSG(obj == 19.5, "%s: %g", place_policy_name(all_policies[p]),
                  obj);
        CHECK(memcmp(tier, want, sizeof(want)) == 0);
    }
    /* One tier takes everything. */
    unsigned tier[10];
    CHECK(run(PLACE_HOTSET, it, 10, cap, 1, tier) == 52.5);
    for (unsigned i = 0; i < 10; i++)
        CHECK(tier[i] == 0);
}

static void test_knapsack_fallback(void)
{
    uint64_t rng = 777;
    place_item_t it[20];
    unsigned tier[20], th[20];
    uint64_t sum = 0;
    for (size_t i = 0; i < 20; i++) {
        it[i] = (place_item_t){i, PAGE * (1 + tm_test_rand(&rng) % 100000),
                               (double)(tm_test_rand(&rng) % 5000)};
        sum += it[i].bytes;
    }
    uint64_t cap[2] = {sum / 3, 0};
    double h = run(PLACE_HOTSET, it, 20, cap, 2, th);
    double t = run(PLACE_THERMOS, it, 20, cap, 2, th);

    /* Memory bound: not even a 2-column table. */
    place_limits_t tiny = {1, 0};
    bool exact = true;
    double k = place_items(PLACE_KNAPSACK, it, 20, cap, 2, &tiny, tier,
                           &exact);
    CHECK(!exact);
    CHECK(k == fmax(h, t));
    CHECK(placement_fault(it, 20, cap, 2, tier, k) == NULL);

    /* Time bound: a table of ~650k columns, a nanosecond to fill it. */
    place_limits_t quick = {UINT64_C(1) << 30, 1e-9};
    exact = true;
    k = place_items(PLACE_KNAPSACK, it, 20, cap, 2, &quick, tier, &exact);
    CHECK(!exact);
    CHECK(k == fmax(h, t));
    CHECK(placement_fault(it, 20, cap, 2, tier, k) == NULL);

    /* Within bounds the same instance is exact, and at least as good. */
    place_limits_t roomy = {UINT64_C(1) << 30, 60};
    exact = false;
    double best = place_items(PLACE_KNAPSACK, it, 20, cap, 2, &roomy, tier,
                              &exact);
    CHECK(exact);
    CHECK(best >= k);
    CHECK(placement_fault(it, 20, cap, 2, tier, best) == NULL);

    /* Odd byte counts in the GiB: a coarse table, not exact, feasible. */
    for (size_t i = 0; i < 20; i++)
        it[i].bytes = GIB + tm_test_rand(&rng) % (8 * GIB);
    cap[0] = 40 * GIB + 12345;
    h = run(PLACE_HOTSET, it, 20, cap, 2, th);
    t = run(PLACE_THERMOS, it, 20, cap, 2, th);
    exact = true;
    k = place_items(PLACE_KNAPSACK, it, 20, cap, 2, NULL, tier, &exact);
    CHECK(!exact);
    CHECK(k >= fmax(h, t));
    CHECK(placement_fault(it, 20, cap, 2, tier, k) == NULL);

    /* Whole GiB sizes: the gcd makes it exact, equal to brute force. */
    for (size_t i = 0; i < 16; i++)
        it[i].bytes = GIB * (1 + tm_test_rand(&rng) % 16);
    cap[0] = 50 * GIB + 12345;
    exact = false;
    k = place_items(PLACE_KNAPSACK, it, 16, cap, 2, NULL, tier, &exact);
    CHECK(exact);
    CHECK(k == brute_force(it, 16, cap[0]));
}

/* Sizes drawn to make the scan's cases common: few distinct sizes (ties,
 * equal sizes skipped), small and large sizes interleaved in density
 * order, accesses with and without fractions (sums that tie exactly). */
static place_item_t thermos_item(uint64_t *rng, unsigned shape)
{
    place_item_t x = {tm_test_rand(rng), 0, 0};
    uint64_t r = tm_test_rand(rng);
    switch (shape % 4) {
    case 0:   /* a handful of sizes */
        x.bytes = PAGE << (r % 5);
        break;
    case 1:   /* tiny and huge, interleaved */
        x.bytes = r % 2 ? PAGE * (1 + r % 3) : PAGE * (512 + r % 64);
        break;
    case 2:
        x.bytes = PAGE * (1 + r % 300);
        break;
    default:
        x.bytes = 1 + r % (64 * PAGE);
        break;
    }
    uint64_t a = tm_test_rand(rng);
    if (shape % 5 == 0)   /* accesses proportional to size: equal density */
        x.accesses = (double)(x.bytes / PAGE * (1 + a % 3));
    else if (shape % 5 == 3)   /* the same, densities equal but for rounding:
                                  sums that tie but for their order */
        x.accesses = (double)x.bytes / PAGE * 0.1;
    else if (shape % 5 == 4)
        x.accesses = (double)(x.bytes / PAGE) * 0.3 + 0.1;
    else if (shape % 5 == 1)
        x.accesses = (double)(1 + a % 100);
    else
        x.accesses = (double)(1 + a % 1000000) / 7.0;
    return x;
}

static void test_thermos_equals_reference(void)
{
    uint64_t rng = 4242;
    unsigned runs = (unsigned)(400 * tm_test_scale()), differ = 0;
    if (runs < 40)
        runs = 40;
    enum { N = 3000 };
    static place_item_t it[N];
    static unsigned got[N], want[N];
    for (unsigned r = 0; r < runs; r++) {
        size_t n = 1 + tm_test_rand(&rng) % (r % 4 == 0 ? N : 200);
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            it[i] = thermos_item(&rng, r);
            sum += it[i].bytes;
        }
        uint64_t cap[2] = {tm_test_rand(&rng) % (sum + 1), 0};
        if (r % 2)   /* whole pages: tiers fill exactly, room 0 is common */
            cap[0] -= cap[0] % PAGE;
        double o = place_items(PLACE_THERMOS, it, n, cap, 2, NULL, got, NULL);
        double w = ref_thermos(it, n, cap[0], want);
        bool same = o == w && memcmp(got, want, n * sizeof(*got)) == 0;
        if (!same)
            fprintf(stderr, "run %u: n %zu cap %llu thermos %.17g, the "
                    "reference %.17g\n", r, n, (unsigned long long)cap[0], o,
                    w);
        differ += !same;
    }
    CHECK_MSG(differ == 0, "%u of %u thermos placements differ from the "
              "reference scan", differ, runs);
}

/* Accesses that tie but for the order of summation.  Eight 1-page items
 * of a each, then X (16 pages) in a 16-page tier: X's walk frees exactly
 * the eight.  The scan sums a eight times in a row; the tree would sum
 * ((a+a)+(a+a))+(a+a)+a+a, and a plain bound would take 8a.  With a = 1/3
 * the scan's sum is below the tree's; with a = 1/7 it is below 8a.  X's
 * accesses sit exactly on the larger value, so the scan (strictly fewer:
 * displace) and the other orders (not fewer: keep) disagree. */
static void test_thermos_rounding(void)
{
    static const double as[2] = {1.0 / 3, 1.0 / 7};
    for (unsigned c = 0; c < 2; c++) {
        double a = as[c], seq = 0;
        for (int i = 0; i < 8; i++)
            seq += a;
        double other = c == 0 ? ((((a + a) + (a + a)) + (a + a)) + a) + a
                              : 8 * a;
        REQUIRE_VOID(seq < other);   /* the premise, on this machine */
        place_item_t it[9];
        for (size_t i = 0; i < 8; i++)
            it[i] = (place_item_t){i, PAGE, a};
        it[8] = (place_item_t){8, 16 * PAGE, other};
        uint64_t cap[2] = {16 * PAGE, 0};
        unsigned got[9], want[9];
        double o = place_items(PLACE_THERMOS, it, 9, cap, 2, NULL, got, NULL);
        double w = ref_thermos(it, 9, cap[0], want);
        CHECK_MSG(want[8] == 0, "case %u: the reference kept the eight", c);
        CHECK_MSG(o == w && memcmp(got, want, sizeof(got)) == 0,
                  "case %u: thermos %.17g, the reference %.17g", c, o, w);
    }
}

/* ------------------------------------------------ a million sites */

#define MILLION (UINT64_C(1) << 20)

/* Items on tier 0. */
static size_t count_tier0(const unsigned *tier, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += tier[i] == 0;
    return c;
}

/* 2^20 sites of one page: the accesses are a permutation of 1..n, so the
 * optimum is the n/4 hottest, sum of (3n/4, n].  Every policy must find it;
 * knapsack's full table does not fit and it must say so. */
static void test_million_equal_pages(place_item_t *it, unsigned *tier)
{
    size_t n = MILLION;
    for (size_t i = 0; i < n; i++)   /* 1..n, shuffled by an odd multiplier */
        it[i] = (place_item_t){i, PAGE,
                               (double)((i * 0x9e3779b1u) % n + 1)};
    uint64_t cap[2] = {n / 4 * PAGE, 0};
    double want = 0;
    for (size_t a = n - n / 4 + 1; a <= n; a++)
        want += (double)a;
    for (unsigned p = 0; p < 3; p++) {
        bool exact = true;
        double got = place_items(all_policies[p], it, n, cap, 2, NULL, tier,
                                 &exact);
        const char *why = placement_fault(it, n, cap, 2, tier, got);
        CHECK_MSG(why == NULL, "%s: %s", place_policy_name(all_policies[p]),
                  why ? why : "");
        CHECK_MSG(got == want, "%s: %.17g, optimum %.17g",
                  place_policy_name(all_policies[p]), got, want);
        CHECK(count_tier0(tier, n) == n / 4);
        CHECK_MSG(exact == (all_policies[p] != PLACE_KNAPSACK),
                  "%s: exact %d", place_policy_name(all_policies[p]), exact);
    }
}

/* 2^19 items A (3 pages, 3.5 accesses) then 2^19 items B (5 pages, 5), by
 * density; the tier holds every A, q = 1000 B and 4 pages more.  thermos
 * swaps the last A for a B twice (room 4 -> 2 -> 0); every other B then
 * needs two A, 7 accesses for its 5, and stays out.  Hotset stops at 4
 * pages free.  Every B but those walks past the chosen Bs (too big to
 * evict) to the As: the former scan's quadratic case. */
static void test_million_thermos_swaps(place_item_t *it, unsigned *tier)
{
    size_t n = MILLION, a = n / 2, q = 1000;
    for (size_t i = 0; i < n; i++)
        it[i] = i < a ? (place_item_t){i, 3 * PAGE, 3.5}
                      : (place_item_t){i, 5 * PAGE, 5};
    uint64_t cap[2] = {(3 * a + 5 * q + 4) * PAGE, 0};
    double hot = run(PLACE_HOTSET, it, n, cap, 2, tier);
    CHECK(near(hot, 3.5 * (double)a + 5.0 * (double)q));
    bool exact = false;
    double th = place_items(PLACE_THERMOS, it, n, cap, 2, NULL, tier, &exact);
    CHECK(exact);
    CHECK_MSG(near(th, 3.5 * (double)(a - 2) + 5.0 * (double)(q + 2)),
              "thermos %.17g", th);
    CHECK(placement_fault(it, n, cap, 2, tier, th) == NULL);
    /* Evicted: the coldest chosen As, the last two by input order. */
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        bool in = i < a ? i < a - 2 : i < a + q + 2;
        wrong += (tier[i] == 0) != in;
    }
    CHECK_MSG(wrong == 0, "%zu items on the wrong tier", wrong);
    double kn = place_items(PLACE_KNAPSACK, it, n, cap, 2, NULL, tier, &exact);
    CHECK(!exact);
    CHECK(at_least(kn, th));
    CHECK(placement_fault(it, n, cap, 2, tier, kn) == NULL);
}

/* Where greedy goes wrong only around its break: p dense pages (2 each),
 * then X (6 pages, 6.6), Y and Z (5 pages, 5.4 and 5.35), then 1-page items
 * of 1.  With p + 10 pages the optimum is every dense page and Y + Z; greedy
 * (and thermos, which falls back to it) takes X and four ones.  The full
 * table would be 2^20 rows: knapsack must find the optimum in its window
 * around the break, and say it is not exact. */
static void test_million_knapsack_core(place_item_t *it, unsigned *tier)
{
    size_t n = MILLION, p = n / 2;
    for (size_t i = 0; i < n; i++)
        it[i] = (place_item_t){i, PAGE, i < p ? 2.0 : 1.0};
    it[p] = (place_item_t){p, 6 * PAGE, 6.6};
    it[p + 1] = (place_item_t){p + 1, 5 * PAGE, 5.4};
    it[p + 2] = (place_item_t){p + 2, 5 * PAGE, 5.35};
    uint64_t cap[2] = {(p + 10) * PAGE, 0};
    double greedy = 2.0 * (double)p + 6.6 + 4.0;
    double best = 2.0 * (double)p + 5.4 + 5.35;
    CHECK(near(run(PLACE_HOTSET, it, n, cap, 2, tier), greedy));
    CHECK(near(run(PLACE_THERMOS, it, n, cap, 2, tier), greedy));
    bool exact = true;
    double kn = place_items(PLACE_KNAPSACK, it, n, cap, 2, NULL, tier, &exact);
    CHECK(!exact);
    CHECK_MSG(near(kn, best), "knapsack %.17g, optimum %.17g", kn, best);
    CHECK(tier[p] == 1 && tier[p + 1] == 0 && tier[p + 2] == 0);
    CHECK(placement_fault(it, n, cap, 2, tier, kn) == NULL);
}

static void test_million_sites(void)
{
    place_item_t *it = malloc(MILLION * sizeof(*it));
    unsigned *tier = malloc(MILLION * sizeof(*tier));
    REQUIRE_VOID(it && tier);
    test_million_equal_pages(it, tier);
    test_million_thermos_swaps(it, tier);
    test_million_knapsack_core(it, tier);
    free(it);
    free(tier);
}

static void test_errors_and_names(void)
{
    place_item_t it[2] = {{1, PAGE, 1}, {2, PAGE, 2}};
    unsigned tier[2];
    uint64_t cap[2] = {PAGE, 0};
    errno = 0;
    CHECK(place_items(PLACE_HOTSET, it, 2, NULL, 2, NULL, tier, NULL) == -1 &&
          errno == EINVAL);
    errno = 0;
    CHECK(place_items(PLACE_HOTSET, it, 2, cap, 0, NULL, tier, NULL) == -1 &&
          errno == EINVAL);
    errno = 0;
    CHECK(place_items((place_policy_t)7, it, 2, cap, 2, NULL, tier, NULL) ==
              -1 && errno == EINVAL);
    errno = 0;
    CHECK(place_items(PLACE_HOTSET, it, 2, cap, 2, NULL, NULL, NULL) == -1 &&
          errno == EINVAL);
    it[1].accesses = -1;
    errno = 0;
    CHECK(place_items(PLACE_KNAPSACK, it, 2, cap, 2, NULL, tier, NULL) ==
              -1 && errno == EINVAL);
    it[1].accesses = NAN;
    errno = 0;
    CHECK(place_items(PLACE_THERMOS, it, 2, cap, 2, NULL, tier, NULL) == -1 &&
          errno == EINVAL);
    CHECK(place_items(PLACE_KNAPSACK, NULL, 0, cap, 2, NULL, NULL, NULL) == 0);

    for (unsigned p = 0; p < 3; p++)
        CHECK(place_policy_parse(place_policy_name(all_policies[p])) ==
              (int)all_policies[p]);
    CHECK(place_policy_parse("greedy") == -1);
    CHECK(place_policy_parse(NULL) == -1);
    CHECK(strcmp(place_policy_name((place_policy_t)9), "unknown") == 0);
}

/* Sizes from a hostile profile near 2^64: their sum wraps, and no policy
 * may take that for "everything fits". */
static void test_sizes_near_2_64(void)
{
    unsigned tier[2];
    uint64_t cap[2] = {UINT64_MAX, 0};
    place_item_t it[2] = {{1, (UINT64_MAX >> 1) + 6, 5}, {2, UINT64_MAX, 7}};
    for (unsigned p = 0; p < 3; p++) {
        double got = run(all_policies[p], it, 2, cap, 2, tier);
        CHECK_MSG(tier[0] == 1 || tier[1] == 1, "%s put both in tier 0",
                  place_policy_name(all_policies[p]));
        CHECK(got == 5 || got == 7);
    }
}

int main(void)
{
    test_errors_and_names();
    test_sizes_near_2_64();
    test_thermos_displaces();
    test_multi_tier();
    test_knapsack_fallback();
    test_knapsack_equals_brute_force();
    test_random_instances();
    test_thermos_equals_reference();
    test_thermos_rounding();
    test_million_sites();
    return tm_test_done(__FILE__);
}
