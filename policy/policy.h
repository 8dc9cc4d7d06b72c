/*
 * policy.h -- what the policy layer offers to the layers above it (tools).
 *
 * The policy decides which sites (offline, for the next run) or arenas
 * (online, in this run) go on which tier.  Both reduce to the same
 * problem: items with a size and a number of accesses, tiers with
 * capacities, fastest first; place items so that as many accesses as
 * possible land in the fast tiers without overfilling any tier.
 *
 *   placement.c   the algorithms: hotset, thermos, knapsack
 *   guide.c       profiles -> items -> placement -> guidance file
 */
#ifndef TM_POLICY_H
#define TM_POLICY_H

#include "profiler.h"

/* ================================================================ placement
 * placement.c: pure functions over caller-owned arrays (malloc allowed:
 * they run in tools and offline passes). */

typedef struct place_item {
    uint64_t key;       /* site key (or arena id online) */
    uint64_t bytes;     /* footprint: what it occupies in a tier */
    double accesses;    /* samples (or heat) */
} place_item_t;

typedef enum place_policy {
    PLACE_HOTSET = 0,   /* greedy by accesses per byte */
    PLACE_THERMOS,      /* greedy, but a hotter large item may displace a
                           set of smaller, colder ones */
    PLACE_KNAPSACK,     /* exact (0/1 knapsack) within time and memory
                           bounds; past them, the best greedy result */
} place_policy_t;

typedef struct place_limits {
    uint64_t max_cells;   /* knapsack DP table cells at most (memory) */
    double max_seconds;   /* knapsack time bound */
} place_limits_t;

/* Place items on ntiers tiers with capacities cap[0..ntiers) (bytes,
 * fastest first; the last tier takes whatever is left, whatever its
 * capacity).  tier_of[i] receives item i's tier.  Fills the fastest tier
 * first, then the next with the rest, and so on.  Returns the accesses
 * placed in tier 0 (the objective), or -1 with errno (EINVAL, ENOMEM).
 * *exact (may be NULL) tells whether knapsack stayed within its limits. */
double place_items(place_policy_t policy, const place_item_t *items,
                   size_t n, const uint64_t *cap, unsigned ntiers,
                   const place_limits_t *limits, unsigned *tier_of,
                   bool *exact);

/* "hotset" / "thermos" / "knapsack"; -1 if none. */
int place_policy_parse(const char *name);
const char *place_policy_name(place_policy_t p);

#endif /* TM_POLICY_H */
