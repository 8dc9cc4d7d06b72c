/*
 * placement.c -- which items go on which tier: hotset, thermos, knapsack.
 *
 * Tiers are filled fastest first: the policy picks a set for tier 0 out of
 * all items within cap[0], then a set for tier 1 out of the rest within
 * cap[1], and so on; the last tier takes whatever is left.  Per tier:
 *
 *   - items of 0 bytes cost nothing and always go to the tier being filled
 *     (so they all land in tier 0);
 *   - items with no accesses (and some bytes) are never picked for a fast
 *     tier: they gain nothing there, and leaving the space free leaves room
 *     for memory the profile did not see.  They end on the last tier;
 *   - hotset: by accesses per byte, descending; take what fits, skip what
 *     does not and go on with the next;
 *   - thermos: hotset order, but an item that does not fit may displace
 *     chosen items (place_thermos.c), then a fill pass; never worse than
 *     hotset (if it would be, the hotset set is used); past a work bound
 *     that only adversarial sizes reach, the rest by hotset's rule and
 *     *exact = false;
 *   - knapsack: 0/1 knapsack by dynamic programming over sizes scaled to a
 *     granularity (see knapsack_pick); exact when the gcd of the sizes gives
 *     a table within limits->max_cells and the time stays within
 *     limits->max_seconds; otherwise the best of a coarser table, an
 *     exact-enough table on the items around the greedy break (see
 *     knapsack_core), hotset and thermos, and *exact = false.
 *
 * Everything here is a pure function over caller-owned arrays; it runs in
 * tools and offline passes, so malloc is allowed.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"
#include "place_internal.h"
#include "policy.h"

#define PLACE_DEFAULT_CELLS (UINT64_C(1) << 26)
#define PLACE_DEFAULT_SECONDS 10.0
/* A DP column costs one double (64 bits) besides one decision bit per item:
 * counting it as 64 cells makes max_cells a bound on the table's bits. */
#define PLACE_COLUMN_CELLS 64
/* Items in the window of the core refinement around the greedy break: its
 * table gets max_cells / (512 + 64) columns (116k by default), fine enough
 * that rounding costs little of the room the window has. */
#define PLACE_CORE_ITEMS 512

/* Hottest per byte first; then more accesses; then caller order, so the
 * result does not depend on qsort's handling of ties. */
static int place_ent_cmp(const void *a, const void *b)
{
    const place_ent_t *x = a, *y = b;
    if (x->density != y->density)
        return x->density > y->density ? -1 : 1;
    if (x->acc != y->acc)
        return x->acc > y->acc ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* hotset: greedy by density, skipping what does not fit. */
static double hotset_pick(const place_ent_t *ents, size_t m, uint64_t cap,
                          unsigned char *pick)
{
    memset(pick, 0, m);
    place_fill(ents, m, cap, 0, pick);
    return place_sum(ents, m, pick);
}

static uint64_t place_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static double place_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;   /* cannot fail for CLOCK_MONOTONIC; the bound just lapses */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ceil(a / b) without the wrap of (a + b - 1) / b: a profile's sizes are
 * hostile data and may sit near 2^64. */
static uint64_t div_round_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* The 0/1 knapsack table over sizes in units of g (rounded up, capacity
 * rounded down, so the pick never exceeds cap).  One row per item, one
 * column per unit of capacity: a value array and one decision bit per cell.
 * Returns 1 done, 0 past the time bound or out of memory (pick untouched). */
static int knapsack_dp(const place_ent_t *ents, size_t m, uint64_t cap,
                       uint64_t g, double max_seconds, unsigned char *pick)
{
    uint64_t W = cap / g;
    size_t cols = (size_t)W + 1;
    double *val = calloc(cols, sizeof(*val));
    unsigned char *bits = calloc(((uint64_t)m * cols + 7) / 8, 1);
    int done = 0;
    if (!val || !bits) {
        log_warn("placement: knapsack table of %zu x %zu cells: %s", m,
                    cols, strerror(errno));
        goto out;
    }
    double start = place_now();
    for (size_t k = 0; k < m; k++) {
        uint64_t w = div_round_up(ents[k].bytes, g);
        for (uint64_t c = W; w <= W && c >= w; c--) {
            double with = val[c - w] + ents[k].acc;
            if (with > val[c]) {
                val[c] = with;
                uint64_t bit = (uint64_t)k * cols + c;
                bits[bit / 8] |= (unsigned char)(1u << (bit % 8));
            }
        }
        if (place_now() - start > max_seconds) {
            log_info("placement: knapsack past %.3g s after %zu of %zu "
                        "rows", max_seconds, k + 1, m);
            goto out;
        }
    }
    memset(pick, 0, m);
    uint64_t c = W;
    for (size_t k = m; k-- > 0;) {
        uint64_t bit = (uint64_t)k * cols + c;
        if (bits[bit / 8] & (1u << (bit % 8))) {
            pick[k] = 1;
            c -= div_round_up(ents[k].bytes, g);
        }
    }
    done = 1;
out:
    free(val);
    free(bits);
    return done;
}

/* The core refinement: greedy by density up to the break item (the first
 * that does not fit in order) is nearly optimal but for the items around
 * it.  Fix the `core` items before the window around the break in, those
 * after it out, and solve the window exactly enough: a table over the room
 * the fixed items leave, at the finest granularity the cell bound allows.
 * Then top up by a fill pass.  Returns the accesses, or -1 (no table). */
static double knapsack_core(const place_ent_t *ents, size_t m, uint64_t cap,
                            uint64_t max_cells, double max_seconds,
                            unsigned char *pick)
{
    size_t b = 0, core = PLACE_CORE_ITEMS;
    uint64_t before = 0;   /* bytes of ents[0..b) */
    while (b < m && ents[b].bytes <= cap - before)
        before += ents[b++].bytes;
    size_t lo = b > core / 2 ? b - core / 2 : 0;
    size_t hi = m - lo > core ? lo + core : m;
    if (hi - lo < core)
        lo = hi > core ? hi - core : 0;
    uint64_t max_cols = max_cells / ((uint64_t)(hi - lo) + PLACE_COLUMN_CELLS);
    if ((lo == 0 && hi == m) || max_cols < 2 || max_cols - 1 > SIZE_MAX / 2)
        return -1;   /* the window is everything: the full table's case */
    uint64_t fixed = 0, g = 0;
    for (size_t k = 0; k < lo; k++)
        fixed += ents[k].bytes;   /* lo <= b: within cap */
    for (size_t k = lo; k < hi; k++)
        g = place_gcd(g, ents[k].bytes);
    uint64_t room = cap - fixed;
    if (room / g > max_cols - 1)
        g = room / (max_cols - 1) + 1;   /* room / g <= max_cols - 1 */
    if (!knapsack_dp(ents + lo, hi - lo, room, g, max_seconds, pick + lo))
        return -1;
    memset(pick, 1, lo);
    memset(pick + hi, 0, m - hi);
    uint64_t used = fixed;
    for (size_t k = lo; k < hi; k++)
        used += pick[k] ? ents[k].bytes : 0;
    place_fill(ents, m, cap, used, pick);
    return place_sum(ents, m, pick);
}

/* Keep the better of pick and alt (alt scored s) in pick. */
static void place_keep_best(unsigned char *pick, double *best,
                            const unsigned char *alt, double s, size_t m)
{
    if (s > *best) {
        memcpy(pick, alt, m);
        *best = s;
    }
}

/* knapsack past its exact bounds: the best of the coarse full table (if
 * dp_done, pick holds it), the core refinement, hotset and thermos.
 * Returns the accesses picked, or -1 (ENOMEM). */
static double knapsack_approx(const place_ent_t *ents, size_t m, uint64_t cap,
                              uint64_t max_cells, double max_seconds,
                              bool dp_done, unsigned char *pick)
{
    unsigned char *alt = malloc(m);
    if (!alt)
        return -1;
    double best = -1;
    if (dp_done) {
        uint64_t used = 0;
        for (size_t k = 0; k < m; k++)
            used += pick[k] ? ents[k].bytes : 0;
        place_fill(ents, m, cap, used, pick);   /* rounding left room */
        best = place_sum(ents, m, pick);
    }
    double c = knapsack_core(ents, m, cap, max_cells, max_seconds, alt);
    place_keep_best(pick, &best, alt, c, m);
    place_keep_best(pick, &best, alt, hotset_pick(ents, m, cap, alt), m);
    bool bounded;
    double t = place_thermos(ents, m, cap, alt, &bounded);
    place_keep_best(pick, &best, alt, t, m);
    free(alt);
    log_info("placement: knapsack on %zu items within %llu bytes past "
                "its exact bounds (%llu cells, %.3g s): approximate, "
                "%.17g accesses", m, (unsigned long long)cap,
                (unsigned long long)max_cells, max_seconds, best);
    return t < 0 ? -1 : best;
}

/* knapsack: exact when the gcd of the sizes makes a table of at most
 * max_cells within max_seconds; past that, knapsack_approx (not exact).
 * Returns the accesses picked, or -1 (ENOMEM). */
static double knapsack_pick(const place_ent_t *ents, size_t m, uint64_t cap,
                            const place_limits_t *limits, unsigned char *pick,
                            bool *exact)
{
    uint64_t max_cells = limits && limits->max_cells ? limits->max_cells
                                                     : PLACE_DEFAULT_CELLS;
    double max_seconds = limits && limits->max_seconds > 0
                             ? limits->max_seconds : PLACE_DEFAULT_SECONDS;
    uint64_t g = 0, total = 0;
    bool wrapped = false;   /* the sizes add up past 2^64 - 1 */
    for (size_t k = 0; k < m; k++) {
        g = place_gcd(g, ents[k].bytes);
        wrapped = wrapped || ents[k].bytes > UINT64_MAX - total;
        total = wrapped ? UINT64_MAX : total + ents[k].bytes;
    }
    *exact = true;
    if (!wrapped && total <= cap) {   /* everything fits: trivially optimal */
        memset(pick, 1, m);
        return place_sum(ents, m, pick);
    }
    /* Columns the bound allows: (m + PLACE_COLUMN_CELLS) * cols <= cells. */
    uint64_t rows = (uint64_t)m + PLACE_COLUMN_CELLS;
    uint64_t max_cols = max_cells / rows;
    bool dp_done = false;
    if (max_cols >= 2 && max_cols - 1 <= SIZE_MAX / 2) {
        if (cap / g > max_cols - 1) {
            *exact = false;
            g = cap / (max_cols - 1) + 1;   /* cap / g <= max_cols - 1 */
        }
        dp_done = knapsack_dp(ents, m, cap, g, max_seconds, pick);
    }
    if (dp_done && *exact)
        return place_sum(ents, m, pick);
    *exact = false;
    return knapsack_approx(ents, m, cap, max_cells, max_seconds, dp_done,
                           pick);
}

/* thermos, never worse than hotset.  -1 (ENOMEM) or the accesses. */
static double thermos_tier(const place_ent_t *ents, size_t m, uint64_t cap,
                           unsigned char *pick, bool *exact)
{
    bool bounded;
    double got = place_thermos(ents, m, cap, pick, &bounded);
    if (got < 0)
        return -1;
    if (!bounded)
        *exact = false;
    unsigned char *alt = malloc(m ? m : 1);
    if (!alt)
        return -1;
    place_keep_best(pick, &got, alt, hotset_pick(ents, m, cap, alt), m);
    free(alt);
    return got;
}

/* One tier: choose, among items not yet placed (tier_of == UINT_MAX), what
 * goes on tier t within cap.  Returns the accesses placed there, or -1. */
static double place_tier(place_policy_t policy, const place_item_t *items,
                         size_t n, uint64_t cap, unsigned t,
                         const place_limits_t *limits, unsigned *tier_of,
                         bool *exact)
{
    place_ent_t *ents = malloc((n ? n : 1) * sizeof(*ents));
    unsigned char *pick = malloc(n ? n : 1);
    double placed = 0, got = -1;
    size_t m = 0;
    if (!ents || !pick)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (tier_of[i] != UINT_MAX)
            continue;
        if (items[i].bytes == 0) {   /* free: always in the tier filled */
            tier_of[i] = t;
            placed += items[i].accesses;
        } else if (items[i].accesses > 0 && items[i].bytes <= cap) {
            ents[m++] = (place_ent_t){i, items[i].bytes, items[i].accesses,
                                      items[i].accesses /
                                          (double)items[i].bytes};
        }
    }
    qsort(ents, m, sizeof(*ents), place_ent_cmp);
    if (policy == PLACE_HOTSET) {
        got = hotset_pick(ents, m, cap, pick);
    } else {
        bool ex = true;
        got = policy == PLACE_THERMOS
                  ? thermos_tier(ents, m, cap, pick, &ex)
                  : knapsack_pick(ents, m, cap, limits, pick, &ex);
        if (!ex && exact)
            *exact = false;
    }
    if (got < 0)
        goto out;
    for (size_t k = 0; k < m; k++)
        if (pick[k])
            tier_of[ents[k].idx] = t;
    got += placed;
out:
    if (got < 0)
        errno = ENOMEM;
    free(ents);
    free(pick);
    return got;
}

double place_items(place_policy_t policy, const place_item_t *items,
                   size_t n, const uint64_t *cap, unsigned ntiers,
                   const place_limits_t *limits, unsigned *tier_of,
                   bool *exact)
{
    if ((unsigned)policy > PLACE_KNAPSACK || !cap || ntiers == 0 ||
        ntiers == UINT_MAX || (n && (!items || !tier_of))) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(items[i].accesses >= 0) || isinf(items[i].accesses)) {
            log_warn("placement: item %zu (key 0x%016llx) has %g "
                        "accesses", i, (unsigned long long)items[i].key,
                        items[i].accesses);
            errno = EINVAL;
            return -1;
        }
    }
    if (exact)
        *exact = true;
    for (size_t i = 0; i < n; i++)
        tier_of[i] = UINT_MAX;   /* not placed yet */
    double objective = 0;
    for (unsigned t = 0; t + 1 < ntiers; t++) {
        double got = place_tier(policy, items, n, cap[t], t, limits, tier_of,
                                exact);
        if (got < 0)
            return -1;
        if (t == 0)
            objective = got;
    }
    for (size_t i = 0; i < n; i++) {
        if (tier_of[i] == UINT_MAX) {
            tier_of[i] = ntiers - 1;
            if (ntiers == 1)
                objective += items[i].accesses;
        }
    }
    return objective;
}

int place_policy_parse(const char *name)
{
    for (int p = PLACE_HOTSET; name && p <= PLACE_KNAPSACK; p++)
        if (strcmp(name, place_policy_name((place_policy_t)p)) == 0)
            return p;
    return -1;
}

const char *place_policy_name(place_policy_t p)
{
    switch (p) {
    case PLACE_HOTSET: return "hotset";
    case PLACE_THERMOS: return "thermos";
    case PLACE_KNAPSACK: return "knapsack";
    }
    return "unknown";
}
