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
 *     chosen items (see thermos_pick), then a fill pass; never worse than
 *     hotset (if it would be, the hotset set is used);
 *   - knapsack: 0/1 knapsack by dynamic programming over sizes scaled to a
 *     granularity (see knapsack_pick); exact when the gcd of the sizes gives
 *     a table within limits->max_cells and the time stays within
 *     limits->max_seconds; otherwise the best of a coarser table, hotset and
 *     thermos, and *exact = false.
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

#include "hooks.h"
#include "policy.h"

#define PLACE_DEFAULT_CELLS (UINT64_C(1) << 26)
#define PLACE_DEFAULT_SECONDS 10.0
/* A DP column costs one double (64 bits) besides one decision bit per item:
 * counting it as 64 cells makes max_cells a bound on the table's bits. */
#define PLACE_COLUMN_CELLS 64

/* One candidate for the tier being filled. */
typedef struct place_ent {
    size_t idx;       /* index in the caller's items */
    uint64_t bytes;   /* > 0 */
    double acc;       /* > 0 */
    double density;   /* acc / bytes */
} place_ent_t;

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

static double place_sum(const place_ent_t *ents, size_t m,
                        const unsigned char *pick)
{
    double s = 0;
    for (size_t k = 0; k < m; k++)
        if (pick[k])
            s += ents[k].acc;
    return s;
}

/* Add, in density order, every unpicked item that still fits. */
static void place_fill(const place_ent_t *ents, size_t m, uint64_t cap,
                       uint64_t used, unsigned char *pick)
{
    for (size_t k = 0; k < m; k++) {
        if (!pick[k] && ents[k].bytes <= cap - used) {
            pick[k] = 1;
            used += ents[k].bytes;
        }
    }
}

/* hotset: greedy by density, skipping what does not fit. */
static double hotset_pick(const place_ent_t *ents, size_t m, uint64_t cap,
                          unsigned char *pick)
{
    memset(pick, 0, m);
    place_fill(ents, m, cap, 0, pick);
    return place_sum(ents, m, pick);
}

/* Try to make room for ents[k] by evicting chosen items.  The rule:
 * candidates are chosen items strictly smaller than ents[k], taken coldest
 * per byte first (the chosen list is in density order, so from its end);
 * stop once they free enough room.  Displace only if they do free enough
 * and their accesses together are strictly fewer than ents[k]'s.
 * sel[0..*ns) are chosen positions in ents; evict is scratch of size m. */
static bool thermos_displace(const place_ent_t *ents, size_t k, uint64_t cap,
                             uint64_t *used, size_t *sel, size_t *ns,
                             size_t *evict)
{
    uint64_t need = ents[k].bytes - (cap - *used), freed = 0;
    double lost = 0;
    size_t ne = 0;
    for (size_t j = *ns; j-- > 0 && freed < need;) {
        const place_ent_t *s = &ents[sel[j]];
        if (s->bytes >= ents[k].bytes)
            continue;
        freed += s->bytes;
        lost += s->acc;
        evict[ne++] = j;
        if (lost >= ents[k].acc)
            return false;
    }
    if (freed < need)
        return false;
    /* evict[] holds positions in sel in descending order: remove them. */
    size_t w = 0, e = ne;
    for (size_t j = 0; j < *ns; j++) {
        if (e > 0 && evict[e - 1] == j) {
            e--;
            continue;
        }
        sel[w++] = sel[j];
    }
    *ns = w;
    *used -= freed;
    sel[(*ns)++] = k;
    *used += ents[k].bytes;
    return true;
}

/* thermos: hotset order with displacement, then a fill pass.  Returns the
 * accesses picked, or -1 (ENOMEM). */
static double thermos_pick(const place_ent_t *ents, size_t m, uint64_t cap,
                           unsigned char *pick)
{
    size_t *sel = malloc(2 * (m ? m : 1) * sizeof(*sel));
    if (!sel)
        return -1;
    size_t *evict = sel + m, ns = 0;
    uint64_t used = 0;
    for (size_t k = 0; k < m; k++) {
        if (ents[k].bytes <= cap - used) {
            sel[ns++] = k;
            used += ents[k].bytes;
        } else if (ents[k].bytes <= cap) {
            thermos_displace(ents, k, cap, &used, sel, &ns, evict);
        }
    }
    memset(pick, 0, m);
    for (size_t j = 0; j < ns; j++)
        pick[sel[j]] = 1;
    free(sel);
    place_fill(ents, m, cap, used, pick);
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
        tm_log_warn("placement: knapsack table of %zu x %zu cells: %s", m,
                    cols, strerror(errno));
        goto out;
    }
    double start = place_now();
    for (size_t k = 0; k < m; k++) {
        uint64_t w = (ents[k].bytes + g - 1) / g;   /* rounded up */
        for (uint64_t c = W; w <= W && c >= w; c--) {
            double with = val[c - w] + ents[k].acc;
            if (with > val[c]) {
                val[c] = with;
                uint64_t bit = (uint64_t)k * cols + c;
                bits[bit / 8] |= (unsigned char)(1u << (bit % 8));
            }
        }
        if (place_now() - start > max_seconds) {
            tm_log_info("placement: knapsack past %.3g s after %zu of %zu "
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
            c -= (ents[k].bytes + g - 1) / g;
        }
    }
    done = 1;
out:
    free(val);
    free(bits);
    return done;
}

/* knapsack: exact when the gcd of the sizes makes a table of at most
 * max_cells within max_seconds; a coarser granularity when the gcd's table
 * is too big (not exact); the best greedy pick when even that cannot be
 * built or time runs out.  Returns the accesses picked, or -1 (ENOMEM). */
static double knapsack_pick(const place_ent_t *ents, size_t m, uint64_t cap,
                            const place_limits_t *limits, unsigned char *pick,
                            bool *exact)
{
    uint64_t max_cells = limits && limits->max_cells ? limits->max_cells
                                                     : PLACE_DEFAULT_CELLS;
    double max_seconds = limits && limits->max_seconds > 0
                             ? limits->max_seconds : PLACE_DEFAULT_SECONDS;
    uint64_t g = 0, total = 0;
    for (size_t k = 0; k < m; k++) {
        g = place_gcd(g, ents[k].bytes);
        total = ents[k].bytes > UINT64_MAX - total ? UINT64_MAX
                                                   : total + ents[k].bytes;
    }
    *exact = true;
    if (total <= cap) {   /* everything fits: trivially optimal */
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

    /* Best of what we have: the coarse table (if any), hotset, thermos. */
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
    double h = hotset_pick(ents, m, cap, alt);
    if (h > best) {
        memcpy(pick, alt, m);
        best = h;
    }
    double t = thermos_pick(ents, m, cap, alt);
    if (t > best) {
        memcpy(pick, alt, m);
        best = t;
    }
    free(alt);
    return t < 0 ? -1 : best;
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
    } else if (policy == PLACE_THERMOS) {
        got = thermos_pick(ents, m, cap, pick);
        if (got >= 0) {
            unsigned char *alt = malloc(m ? m : 1);
            double h = alt ? hotset_pick(ents, m, cap, alt) : -1;
            if (h > got) {   /* never worse than hotset */
                memcpy(pick, alt, m);
                got = h;
            }
            free(alt);
            if (!alt)
                got = -1;
        }
    } else {
        bool ex = true;
        got = knapsack_pick(ents, m, cap, limits, pick, &ex);
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
            tm_log_warn("placement: item %zu (key 0x%016llx) has %g "
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
