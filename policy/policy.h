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
 *   place_thermos.c  thermos's displacement (place_internal.h: theirs)
 *   guide.c       profiles -> items -> placement -> guidance file
 *   online.c      arenas between tiers while the program runs
 *   policy_options.c, policy_start.c   its settings, and its start-up
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
                           bounds; past them, a bounded approximation */
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
 * *exact (may be NULL) is false when the result is an approximation:
 * knapsack past its table or time bound (the best of a coarse table, an
 * exact table around the greedy break, hotset and thermos), or thermos past
 * its work bound (then the rest by hotset's rule). */
double place_items(place_policy_t policy, const place_item_t *items,
                   size_t n, const uint64_t *cap, unsigned ntiers,
                   const place_limits_t *limits, unsigned *tier_of,
                   bool *exact);

/* "hotset" / "thermos" / "knapsack"; -1 if none. */
int place_policy_parse(const char *name);
const char *place_policy_name(place_policy_t p);

/* ================================================================ guide
 * guide.c: profiles -> sites (items) -> placement -> guidance file text.
 * Runs in tools (malloc and stdio allowed). */

/* One site, merged over every profile read (MPI ranks). */
typedef struct guide_site {
    bool by_id;          /* explicit id: guidance says `id N`, else `key` */
    uint64_t key;        /* the stack key, or the explicit id when by_id */
    uint64_t bytes;      /* the largest peak live bytes in any one profile:
                            guidance applies per process */
    uint64_t accesses;   /* samples summed over profiles (ranks them) */
    unsigned tier;       /* set by guide_place */
} guide_site_t;

typedef struct guide {
    size_t nsites;
    guide_site_t *sites;     /* ascending (by_id, key); site 0 left out */
    uint64_t footprint;      /* sum of bytes over sites: the sum of their
                                peaks, more than was ever live at once */
    uint64_t footprint_peak; /* the most live at once over the intervals
                                (all named sites), the largest of any one
                                profile; 0 when no interval says.  What
                                `N%` capacities are a share of */
    uint64_t accesses;       /* sum of accesses over sites */
    uint64_t unsited;        /* samples of site 0 (no guidance line) */
    unsigned nprofiles;
    unsigned ntiers_seen;    /* tiers in the first profile's header */
    uint64_t tier_capacity[TM_MAX_NODES]; /* per tier, summed over nodes */
    bool approximate;        /* set by guide_place: the policy went past its
                                bounds (guide_format says so) */
    place_policy_t placed_by;/* set by guide_place */
} guide_t;

/* Add one profile.  Samples count only from intervals first..last (seq,
 * inclusive; 0..UINT64_MAX = all).  0, or -1 with errno (ENOMEM). */
int guide_add_profile(guide_t *g, const profile_t *p, uint64_t first,
                      uint64_t last);
void guide_free(guide_t *g);

/* One fast tier's capacity, as given. */
typedef struct guide_capacity {
    enum { GUIDE_CAP_BYTES = 0, GUIDE_CAP_PERCENT, GUIDE_CAP_AUTO } kind;
    uint64_t bytes;      /* GUIDE_CAP_BYTES */
    double percent;      /* GUIDE_CAP_PERCENT: of the footprint (its peak
                            when known), 0..100 */
} guide_capacity_t;

/* "64M,50%,auto": one entry per fast tier, fastest first (at most max).
 * The count, or -1 with errno EINVAL. */
int guide_capacity_parse(const char *spec, guide_capacity_t *out,
                         unsigned max);
/* Byte capacities of the fast tiers: cap[0..n) from c[0..n), with room
 * for cap[n], the last tier (UINT64_MAX).  A lone "auto" (n == 1) means
 * every tier of the profile's header but its last.  Returns the number of
 * tiers (fast tiers + 1; 1 when the header has one tier only). */
unsigned guide_capacities(const guide_t *g, const guide_capacity_t *c,
                          unsigned n, uint64_t *cap, unsigned capmax);
/* Place the sites (sets each site's tier).  The accesses in tier 0, or -1
 * with errno as place_items.  When the placement is approximate (knapsack
 * past its table/time bounds, thermos past its work bound) it logs a
 * warning and sets g->approximate. */
double guide_place(guide_t *g, place_policy_t policy, const uint64_t *cap,
                   unsigned ntiers, const place_limits_t *limits,
                   bool *exact);
/* The guidance file (doc/guidance.md), NUL-terminated, malloc'd; header
 * comment lines from comment (may be NULL).  NULL + errno ENOMEM. */
char *guide_format(const guide_t *g, const char *comment, size_t *len);

/* ===== online ===========================================================
 * online.c: the online policy.  Every `every` profiler intervals, on the
 * profiling thread, rank arenas by heat per resident byte, choose the set
 * that fits the fast tiers (leaving headroom), and migrate the difference:
 * demotions first, then promotions, within a byte budget, each promotion
 * passing a cost/benefit test.  No malloc on this path (meta_alloc).
 * See doc/policy-online.md. */

/* Move arena `arena_id` to tier `tier`: 0, or -1 with errno. */
typedef int (*online_migrate_fn)(void *ctx, unsigned arena_id, unsigned tier);
/* The bytes tier `tier` can take now (its nodes' free memory above the
 * kernel's reserves): 0, or -1 when unknown (then no check is made). */
typedef int (*online_room_fn)(void *ctx, unsigned tier, uint64_t *bytes);

typedef struct online_config {
    unsigned every;            /* intervals between decisions (>= 1) */
    uint64_t interval_ns;      /* the profiler's interval length */
    unsigned ntiers;           /* 1..TM_MAX_NODES */
    uint64_t cap[TM_MAX_NODES];/* bytes per tier, fastest first; the last
                                  tier takes the rest (its cap is ignored) */
    double headroom;           /* fraction of each fast tier left free */
    double budget_bytes_per_s; /* migration budget; 0 = unlimited */
    double hysteresis;         /* a newcomer must beat a tier's incumbent's
                                  heat per byte by this factor (>= 1) */
    unsigned min_stay;         /* decisions a moved arena stays put */
    double benefit_per_access; /* weight of one access (heat unit) saved */
    double cost_per_byte;      /* weight of one byte moved; 0 = free */
    double accesses_per_sample;/* accesses one heat unit stands for in the
                                  cost/benefit test; 0 = the sampler's
                                  estimate, which each interval carries
                                  (1 when none) */
    unsigned initial_tier;     /* tier assumed for an arena first seen
                                  whose placement names no tier */
    const tm_topology_t *topology; /* tiers' nodes: an arena first seen is
                                  on the tier its placement's nodes are
                                  in; NULL = always initial_tier.  The
                                  default move places on these tiers
                                  (NULL: the runtime's topology) */
    online_migrate_fn migrate; /* NULL = move the real arena */
    void *migrate_ctx;
    online_room_fn room;       /* asked before each promotion; NULL = the
                                  nodes' room from /proc/zoneinfo when
                                  migrate is NULL, no check otherwise */
    void *room_ctx;
} online_config_t;

typedef struct online_stats {
    uint64_t decisions;
    uint64_t moves;            /* successful migrations */
    uint64_t promotions, demotions;
    uint64_t bytes_migrated;   /* bytes of successful migrations */
    uint64_t failures;         /* migrate calls that returned -1 */
    uint64_t skipped_cost;     /* promotions refused by cost/benefit */
    uint64_t skipped_budget;   /* moves put off: budget used up (a move
                                  put off holds back the rest of its pass,
                                  so the budget saves up for it) */
    uint64_t skipped_room;     /* promotions not tried: the tier's nodes
                                  had no room for the arena */
    uint64_t skipped_no_heat;  /* decisions that moved nothing: no arena
                                  had any heat (the sampler saw nothing
                                  yet, or the program is idle) */
    uint64_t last_bytes;       /* bytes migrated by the last decision */
} online_stats_t;

typedef struct online online_t;

/* Defaults: every 4, interval 100 ms, 2 tiers (cap[0] = 0: nothing is
 * fast until set), headroom 0.05, unlimited budget, hysteresis 1.5,
 * min_stay 2, benefit_per_access 1, cost_per_byte 0, accesses_per_sample
 * 0, initial_tier = the slowest, no topology. */
void online_config_default(online_config_t *cfg);
/* NULL with errno EINVAL (bad config) or ENOMEM. */
online_t *online_new(const online_config_t *cfg);
void online_delete(online_t *o);
/* Feed one interval; decides on every `every`-th call.  Profiling thread
 * only (or one thread at a time). */
void online_step(online_t *o, const prof_interval_t *iv);
/* profiler_set_interval_hook(online_interval_hook, o). */
void online_interval_hook(const prof_interval_t *iv, void *ctx);
/* Read on the stepping thread (or after the profiler stopped). */
void online_get_stats(const online_t *o, online_stats_t *out);
/* The policy's map: the tier it believes the arena is on (-1: unknown). */
int online_tier_of(const online_t *o, unsigned arena_id);
/* Bytes on a tier by the policy's map (last known bytes per arena). */
uint64_t online_tier_bytes(const online_t *o, unsigned tier);

/* ===== settings and start-up ============================================
 * policy_options.c: TIERMEM_POLICY* (doc/configuration.md);
 * policy_start.c: the online policy wired to the profiler. */

typedef enum policy_kind { POLICY_NONE = 0, POLICY_ONLINE } policy_kind_t;

typedef struct policy_options {
    policy_kind_t kind;          /* TIERMEM_POLICY */
    unsigned every;              /* TIERMEM_POLICY_EVERY */
    unsigned ncap;               /* TIERMEM_POLICY_CAPACITY entries; tiers */
    guide_capacity_t cap[TM_MAX_NODES]; /* past ncap are auto.  PERCENT is
                                    of the tier's size; AUTO the tier's
                                    size over the ranks on this host */
    double headroom;             /* TIERMEM_POLICY_HEADROOM */
    double budget_bytes_per_s;   /* TIERMEM_POLICY_BUDGET; 0 = no limit */
    double hysteresis;           /* TIERMEM_POLICY_HYSTERESIS */
    unsigned min_stay;           /* TIERMEM_POLICY_MIN_STAY */
    double move_cost_ns_per_byte;/* TIERMEM_POLICY_MOVE_COST; 0 = off */
} policy_options_t;

void policy_options_defaults(policy_options_t *o);
/* Fill o from an environment array (like environ); never fails. */
void policy_options_parse(char *const *env, policy_options_t *o);
/* The online policy's configuration for these settings and tiers: fast
 * tiers' capacities, the cost/benefit weights (ns saved per access from
 * HMAT latencies, else 100; ns per byte moved), an arena's first tier from
 * its placement.  0, or -1 with errno ENODEV when there is one tier. */
int policy_online_config(const policy_options_t *po, const tm_topology_t *topo,
                         uint64_t interval_ns, unsigned local_ranks,
                         online_config_t *out);
/* The library's start-up: read TIERMEM_POLICY* and TIERMEM_PROFILE*, wire
 * the online policy in as the profiler's interval hook when asked, and
 * start the profiler when either asks for it. */
void policy_start_from_env(void);

#endif /* TM_POLICY_H */
