/*
 * online.c -- the online policy: which arenas live on which tier, decided
 * while the program runs, from the profiler's per-interval arena rows.
 *
 * Every `every` intervals (on the profiling thread):
 *   1. rank arenas by heat per byte (resident bytes when measured);
 *   2. choose, fastest tier first, the arenas that fit each fast tier's
 *      capacity less headroom -- arenas moved recently stay put, incumbents
 *      get a hysteresis bonus, and an arena whose expected benefit does not
 *      pay for moving its bytes is not eligible for a faster tier;
 *   3. migrate the difference: demotions first (they make room), then
 *      promotions, within this decision's byte budget, never past a tier's
 *      capacity.  A failed move leaves the arena where it was in the map;
 *      the next decision tries again.
 *
 * The policy keeps its own map of arena -> tier: an arena first seen is
 * on the tier its placement names (cfg.topology), else on
 * cfg.initial_tier (the slowest by default).  place_items()
 * allocates with malloc, so the greedy (hotset) selection is done here
 * over meta_alloc tables instead.
 */
#include "policy.h"

#include <errno.h>
#include <string.h>

#include "base.h"
#include "sites.h"

#define ONLINE_NONE 0xffu   /* tier byte: arena not known */

typedef struct online_arena {
    uint64_t serial;        /* new serial in a reused id: forget the old */
    uint64_t seen_seq;      /* interval seq it was last in */
    uint64_t bytes;         /* what it occupies: see online_bytes */
    uint64_t resident;      /* the last resident bytes measured */
    uint64_t mapped_then;   /* its mapped bytes at that measurement */
    bool measured;          /* resident is known */
    double heat;
    uint64_t moved_at;      /* decision number of its last move */
    uint8_t tier;           /* the policy's map; ONLINE_NONE if unknown */
    uint8_t target;         /* this decision's choice */
} online_arena_t;

struct online {
    online_config_t cfg;
    uint64_t steps, last_seq;
    double sampler_accesses_per_sample; /* the last interval's (0: unknown) */
    online_stats_t stats;
    double credit;          /* migration bytes the budget allows now */
    uint64_t wanted;        /* the largest move the budget put off last */
    online_arena_t *arena;  /* [TM_MAX_ARENAS + 1] */
    unsigned *order;        /* [TM_MAX_ARENAS]: ids being ranked */
    double *score;          /* [TM_MAX_ARENAS + 1]: sort keys by id */
    /* What the kernel let a tier hold when a move into it last failed
     * with ENOMEM, until decision full_until[t] (online_tier_full). */
    uint64_t full_bytes[TM_MAX_NODES], full_until[TM_MAX_NODES];
};

/* Decisions a tier that refused a move counts as full: long enough that a
 * failing promotion is not retried every decision, short enough that
 * memory freed by others is used again (10 s at the defaults). */
#define ONLINE_FULL_DECISIONS 25

#define ONLINE_ARENA_TABLE ((TM_MAX_ARENAS + 1) * sizeof(online_arena_t))
#define ONLINE_ORDER_TABLE (TM_MAX_ARENAS * sizeof(unsigned))
#define ONLINE_SCORE_TABLE ((TM_MAX_ARENAS + 1) * sizeof(double))

void online_config_default(online_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->every = 4;
    cfg->interval_ns = 100000000ull;
    cfg->ntiers = 2;
    cfg->headroom = 0.05;
    cfg->hysteresis = 1.5;
    cfg->min_stay = 2;
    cfg->benefit_per_access = 1.0;
    cfg->initial_tier = 1;
}

static bool online_config_valid(const online_config_t *c)
{
    return c->every >= 1 && c->ntiers >= 1 && c->ntiers <= TM_MAX_NODES &&
           c->ntiers < ONLINE_NONE && c->headroom >= 0.0 &&
           c->headroom < 1.0 && c->hysteresis >= 1.0 &&
           c->budget_bytes_per_s >= 0.0 && c->benefit_per_access >= 0.0 &&
           c->cost_per_byte >= 0.0 && c->initial_tier < c->ntiers;
}

online_t *online_new(const online_config_t *cfg)
{
    if (!cfg || !online_config_valid(cfg)) {
        errno = EINVAL;
        return NULL;
    }
    online_t *o = meta_alloc(sizeof(*o));
    if (!o)
        return NULL;
    o->cfg = *cfg;
    o->arena = meta_alloc(ONLINE_ARENA_TABLE);
    o->order = meta_alloc(ONLINE_ORDER_TABLE);
    o->score = meta_alloc(ONLINE_SCORE_TABLE);
    if (!o->arena || !o->order || !o->score) {
        log_error("online: no memory for the arena tables");
        online_delete(o);
        errno = ENOMEM;
        return NULL;
    }
    for (unsigned id = 0; id <= TM_MAX_ARENAS; id++)
        o->arena[id].tier = ONLINE_NONE;
    return o;
}

void online_delete(online_t *o)
{
    if (!o)
        return;
    if (o->arena)
        meta_free(o->arena, ONLINE_ARENA_TABLE);
    if (o->order)
        meta_free(o->order, ONLINE_ORDER_TABLE);
    if (o->score)
        meta_free(o->score, ONLINE_SCORE_TABLE);
    meta_free(o, sizeof(*o));
}

/* ---------------------------------------------------------------- migrate */

/* The real move: the arena table walk keeps the arena alive meanwhile.
 * Fast tiers are bound PREFERRED so a full node spills, not fails. */
static int online_migrate_default(const online_t *o, unsigned arena_id,
                                  unsigned tier)
{
    const tm_topology_t *topo = o->cfg.topology ? o->cfg.topology
                                                : topology_get();
    tm_placement_t to;
    if (tm_topology_tier_placement(topo, tier, TM_MODE_PREFERRED, &to) != 0) {
        log_warn("online: no placement for tier %u: errno %d", tier, errno);
        return -1;
    }
    arena_walk_begin();
    int rc = -1;
    tm_arena_t *a = arena_by_id(arena_id);
    if (!a)
        errno = ENOENT;
    else
        rc = tm_arena_migrate(a, &to, NULL);
    int err = errno;
    arena_walk_end();
    errno = err;
    return rc;
}

static int online_migrate(online_t *o, unsigned id, unsigned tier)
{
    if (o->cfg.migrate)
        return o->cfg.migrate(o->cfg.migrate_ctx, id, tier);
    return online_migrate_default(o, id, tier);
}

/* ---------------------------------------------------------------- tracking */

/* The tier whose nodes hold every node of the placement; initial_tier
 * when there is no topology or the placement spans tiers. */
static uint8_t online_first_tier(const online_t *o, const tm_placement_t *p)
{
    const tm_topology_t *t = o->cfg.topology;
    if (t != NULL && p->nodes != 0)
        for (unsigned i = 0; i < t->ntiers && i < o->cfg.ntiers; i++)
            if ((p->nodes & ~t->tiers[i].nodes) == 0)
                return (uint8_t)i;
    return (uint8_t)o->cfg.initial_tier;
}

/* What an arena occupies in a tier.  Residency is measured only every
 * few intervals (TIERMEM_PROFILE_RESIDENCY_EVERY), and mapped bytes can be
 * far more than resident ones (jemalloc keeps unused extents), so between
 * measurements it is the last resident figure plus what was mapped since
 * -- new extents are about to be touched -- never more than mapped. */
static uint64_t online_bytes(online_arena_t *a, const prof_arena_row_t *r)
{
    if (r->resident_valid) {
        a->resident = r->resident;
        a->mapped_then = r->mapped;
        a->measured = true;
    }
    if (!a->measured)
        return r->mapped;
    uint64_t grown = r->mapped > a->mapped_then ? r->mapped - a->mapped_then
                                                : 0;
    uint64_t b = a->resident + grown;
    return b < r->mapped ? b : r->mapped;
}

static void online_track(online_t *o, const prof_interval_t *iv)
{
    for (size_t i = 0; i < iv->narenas; i++) {
        const prof_arena_row_t *r = &iv->arenas[i];
        if (r->id == 0 || r->id > TM_MAX_ARENAS)
            continue;
        online_arena_t *a = &o->arena[r->id];
        if (a->tier == ONLINE_NONE || a->serial != r->serial) {
            memset(a, 0, sizeof(*a));
            a->serial = r->serial;
            a->tier = online_first_tier(o, &r->placement);
        }
        a->seen_seq = iv->seq;
        a->heat = r->heat;
        a->bytes = online_bytes(a, r);
    }
    o->last_seq = iv->seq;
    o->sampler_accesses_per_sample = iv->accesses_per_sample;
}

static bool online_live(const online_t *o, unsigned id)
{
    const online_arena_t *a = &o->arena[id];
    return a->tier != ONLINE_NONE && a->seen_seq == o->last_seq;
}

uint64_t online_tier_bytes(const online_t *o, unsigned tier)
{
    uint64_t sum = 0;
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++)
        if (online_live(o, id) && o->arena[id].tier == tier)
            sum += o->arena[id].bytes;
    return sum;
}

int online_tier_of(const online_t *o, unsigned arena_id)
{
    if (arena_id == 0 || arena_id > TM_MAX_ARENAS ||
        o->arena[arena_id].tier == ONLINE_NONE)
        return -1;
    return o->arena[arena_id].tier;
}

void online_get_stats(const online_t *o, online_stats_t *out)
{
    *out = o->stats;
}

/* ---------------------------------------------------------------- ranking */

/* Shell sort of ids by score descending, id ascending on ties: no malloc,
 * deterministic, fast enough for 4095 ids. */
static void online_sort(unsigned *ids, size_t n, const double *score)
{
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            unsigned v = ids[i];
            size_t j = i;
            while (j >= gap &&
                   (score[ids[j - gap]] < score[v] ||
                    (score[ids[j - gap]] == score[v] && ids[j - gap] > v))) {
                ids[j] = ids[j - gap];
                j -= gap;
            }
            ids[j] = v;
        }
    }
}

static double online_density(const online_arena_t *a)
{
    return a->heat / (double)(a->bytes ? a->bytes : 1);
}

static bool online_pinned(const online_t *o, const online_arena_t *a)
{
    return a->moved_at && o->stats.decisions - a->moved_at < o->cfg.min_stay;
}

/* Accesses one heat unit stands for: the configured figure, else the
 * sampler's, as the last interval carried it, else 1. */
static double online_accesses_per_sample(const online_t *o)
{
    if (o->cfg.accesses_per_sample > 0.0)
        return o->cfg.accesses_per_sample;
    double a = o->sampler_accesses_per_sample;
    return a > 0.0 ? a : 1.0;
}

/* Cost/benefit: the accesses the arena is expected to take over the time
 * it will stay (min_stay decisions) must pay for moving its bytes. */
static bool online_worth_moving(const online_t *o, const online_arena_t *a)
{
    double horizon = (double)o->cfg.every *
                     (o->cfg.min_stay ? o->cfg.min_stay : 1);
    double benefit = a->heat * online_accesses_per_sample(o) * horizon *
                     o->cfg.benefit_per_access;
    return benefit >= (double)a->bytes * o->cfg.cost_per_byte;
}

static uint64_t online_usable(const online_t *o, unsigned tier)
{
    uint64_t u = (uint64_t)((double)o->cfg.cap[tier] * (1.0 - o->cfg.headroom));
    if (o->full_until[tier] > o->stats.decisions && o->full_bytes[tier] < u)
        u = o->full_bytes[tier];
    return u;
}

/* ------------------------------------------------------- displacement
 * Greedy by density alone fails a big hot arena: the small dense ones
 * fill the tier first and the big one no longer fits, although it takes
 * more accesses than they do together (measured by bench/bench_policy's
 * small-vs-big workload).  So, as the offline thermos policy does, an
 * arena left out may displace chosen arenas smaller than itself --
 * coldest per byte first, never pinned ones -- when their heat together
 * (incumbents' with the hysteresis bonus) is below its own. */

/* Arenas left out that are considered for displacing, per tier and
 * decision: bounds the quadratic walk over thousands of arenas. */
#define ONLINE_DISPLACE_CANDIDATES 64

static double online_weight(const online_t *o, const online_arena_t *a,
                            unsigned t)
{
    return a->tier == t ? a->heat * o->cfg.hysteresis : a->heat;
}

static bool online_evictable(const online_t *o, const online_arena_t *y,
                             unsigned t, uint64_t bytes)
{
    return y->target == t && y->bytes < bytes &&
           !(y->tier == t && online_pinned(o, y));
}

/* Walk the chosen arenas coldest first, freeing room for `bytes`; evict
 * them only when `evict`.  The bytes freed, *lost their weight. */
static uint64_t online_free_room(online_t *o, unsigned t, size_t n,
                                 uint64_t room, uint64_t bytes, bool evict,
                                 double *lost)
{
    uint64_t freed = 0;
    *lost = 0.0;
    for (size_t j = n; j-- > 0 && room + freed < bytes;) {
        online_arena_t *y = &o->arena[o->order[j]];
        if (!online_evictable(o, y, t, bytes))
            continue;
        freed += y->bytes;
        *lost += online_weight(o, y, t);
        if (evict)
            y->target = ONLINE_NONE;
    }
    return freed;
}

/* Worth a place on tier t: hot, and, coming from a slower tier, paying
 * for its move.  Refusals are counted when `count`. */
static bool online_wants(online_t *o, const online_arena_t *a, unsigned t,
                         bool count)
{
    if (a->heat <= 0.0)
        return false;
    if (a->tier > t && !online_worth_moving(o, a)) {
        if (count)
            o->stats.skipped_cost++;
        return false;
    }
    return true;
}

/* Greedy: the arenas left, in order[] (densest first), that fit. */
static uint64_t online_fill(online_t *o, unsigned t, size_t n, uint64_t room,
                            bool count)
{
    for (size_t i = 0; i < n; i++) {
        online_arena_t *a = &o->arena[o->order[i]];
        if (a->target != ONLINE_NONE || a->bytes > room ||
            !online_wants(o, a, t, count))
            continue;
        a->target = (uint8_t)t;
        room -= a->bytes;
    }
    return room;
}

/* After the greedy fill: arenas left out that do not fit may displace
 * smaller chosen ones; then what room is left is filled again. */
static void online_displace(online_t *o, unsigned t, size_t n, uint64_t room)
{
    unsigned tried = 0;
    for (size_t i = 0; i < n && tried < ONLINE_DISPLACE_CANDIDATES; i++) {
        online_arena_t *x = &o->arena[o->order[i]];
        if (x->target != ONLINE_NONE || x->bytes <= room ||
            x->bytes > online_usable(o, t) || !online_wants(o, x, t, false))
            continue;
        tried++;
        double lost;
        uint64_t freed = online_free_room(o, t, n, room, x->bytes, false,
                                          &lost);
        if (room + freed < x->bytes || lost >= online_weight(o, x, t))
            continue;
        freed = online_free_room(o, t, n, room, x->bytes, true, &lost);
        debug_assert_rule(room + freed >= x->bytes,
                       "a tier's chosen arenas fit its usable capacity");
        room = room + freed - x->bytes;
        x->target = (uint8_t)t;
    }
    if (tried > 0)
        (void)online_fill(o, t, n, room, false);
}

/* Choose the target of every live arena: fastest tier first, pinned
 * arenas keep their room, then the rest greedily by (boosted) density,
 * then displacement for the big ones left out. */
static void online_choose(online_t *o)
{
    const online_config_t *c = &o->cfg;
    unsigned last = c->ntiers - 1;
    size_t n = 0;
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++)
        if (online_live(o, id)) {
            o->arena[id].target = ONLINE_NONE;
            o->order[n++] = id;
        }
    for (unsigned t = 0; t < last; t++) {
        uint64_t room = online_usable(o, t);
        for (size_t i = 0; i < n; i++) {
            online_arena_t *a = &o->arena[o->order[i]];
            if (a->target == ONLINE_NONE && a->tier == t &&
                online_pinned(o, a) && a->bytes <= room) {
                a->target = (uint8_t)t;
                room -= a->bytes;
            }
        }
        for (size_t i = 0; i < n; i++) {
            const online_arena_t *a = &o->arena[o->order[i]];
            double d = online_density(a);
            o->score[o->order[i]] = a->tier == t ? d * c->hysteresis : d;
        }
        online_sort(o->order, n, o->score);
        room = online_fill(o, t, n, room, true);
        online_displace(o, t, n, room);
    }
    for (size_t i = 0; i < n; i++) {
        online_arena_t *a = &o->arena[o->order[i]];
        if (a->target == ONLINE_NONE)
            a->target = (uint8_t)last;
    }
}

/* ---------------------------------------------------------------- moving */

typedef struct online_round {
    double budget;          /* bytes left this decision; < 0 = unlimited */
    bool held;              /* an earlier move waits for budget */
    uint64_t wanted;        /* the largest move put off for budget */
    uint64_t used[TM_MAX_NODES];
} online_round_t;

/* Moves are paid for in order (demotions, then promotions).  One the
 * budget cannot pay for now holds back every move after it: otherwise
 * smaller, less important moves would spend the budget each decision and
 * a large arena would never save up enough to move. */
static bool online_afford(online_t *o, online_round_t *r, uint64_t bytes)
{
    if (r->budget < 0.0)
        return true;
    if (!r->held && (double)bytes <= r->budget)
        return true;
    r->held = true;
    if (bytes > r->wanted)
        r->wanted = bytes;
    o->stats.skipped_budget++;
    return false;
}

/*
 * A move failed with ENOMEM: the kernel found no free page on the tier's
 * nodes, whatever its configured capacity says (other processes, the
 * kernel's reserves).  Retrying every decision would move part of the
 * arena each time and fail again -- bytes migrated for nothing, a few
 * hundred MiB in the guest benchmark.  (A demotion too: a middle tier
 * whose nodes are full; the next decision then demotes past it.)  So the arena goes back where the
 * policy has it (its pages and its placement agree again, and the pages
 * that did move free the fast tier for others), and the tier counts as
 * holding at most what it holds now (and a sixteenth) for
 * ONLINE_FULL_DECISIONS decisions.
 */
static void online_tier_full(online_t *o, online_round_t *r, unsigned id,
                             unsigned from, unsigned to)
{
    online_arena_t *a = &o->arena[id];
    /* what it holds, and a sixteenth more: the arenas already there grow
     * a little between decisions, and must not be pushed out for it */
    o->full_bytes[to] = r->used[to] + r->used[to] / 16;
    o->full_until[to] = o->stats.decisions + ONLINE_FULL_DECISIONS;
    bool back = online_migrate(o, id, from) == 0;
    log_warn("online: tier %u is full: arena %u (%llu bytes) could not move "
             "there (errno %d)%s; the tier counts as holding at most %llu "
             "bytes for %u decisions", to, id, (unsigned long long)a->bytes,
             ENOMEM, back ? "" : ", nor all the way back",
             (unsigned long long)o->full_bytes[to], ONLINE_FULL_DECISIONS);
}

static void online_move(online_t *o, online_round_t *r, unsigned id)
{
    online_arena_t *a = &o->arena[id];
    unsigned to = a->target, from = a->tier, last = o->cfg.ntiers - 1;
    debug_assert(to <= last && from <= last); /* online_choose set every target */
    if (to < from && r->used[to] + a->bytes > online_usable(o, to))
        return;               /* a promotion would overfill: wait for room */
    /* A demotion into a full tier may wait for a promotion out of it, and
     * that promotion for this demotion's room (a swap between two fast
     * tiers): go further down to a tier with room instead; the next
     * decision brings it back up if it belongs there. */
    while (to > from && to < last &&
           r->used[to] + a->bytes > online_usable(o, to))
        to++;
    if (!online_afford(o, r, a->bytes))
        return;
    if (online_migrate(o, id, to) != 0) {
        o->stats.failures++;
        if (errno == ENOMEM) {
            online_tier_full(o, r, id, from, to);
            return;
        }
        log_warn("online: moving arena %u (%llu bytes) from tier %u to %u "
                    "failed: errno %d (will retry)", id,
                    (unsigned long long)a->bytes, from, to, errno);
        return;
    }
    log_info("online: arena %u (%llu bytes) tier %u -> %u", id,
                (unsigned long long)a->bytes, from, to);
    if (r->budget >= 0.0)
        r->budget -= (double)a->bytes;
    debug_assert_rule(r->used[from] >= a->bytes,
                   "a tier's used bytes count every arena on it");
    r->used[from] -= a->bytes;
    r->used[to] += a->bytes;
    a->tier = (uint8_t)to;
    a->moved_at = o->stats.decisions;
    o->stats.moves++;
    o->stats.bytes_migrated += a->bytes;
    o->stats.last_bytes += a->bytes;
    if (to > from)
        o->stats.demotions++;
    else
        o->stats.promotions++;
}

/* The budget this decision may spend: one decision's worth, plus what
 * earlier decisions saved while a move they put off waited -- up to that
 * move's size, so an idle policy banks no burst. */
static double online_budget(online_t *o)
{
    if (o->cfg.budget_bytes_per_s <= 0.0)
        return -1.0;
    double per = o->cfg.budget_bytes_per_s * o->cfg.every *
                 (double)o->cfg.interval_ns / 1e9;
    double cap = (double)o->wanted > per ? (double)o->wanted : per;
    o->credit += per;
    if (o->credit > cap)
        o->credit = cap;
    return o->credit;
}

/* Demotions: slowest source tier first (room below before room above),
 * coldest first.  Promotions: fastest destination first, hottest first. */
static void online_apply(online_t *o)
{
    online_round_t r;
    memset(&r, 0, sizeof(r));
    r.budget = online_budget(o);
    size_t n = 0;
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++)
        if (online_live(o, id)) {
            o->order[n++] = id;
            r.used[o->arena[id].tier] += o->arena[id].bytes;
            o->score[id] = online_density(&o->arena[id]);
        }
    online_sort(o->order, n, o->score);
    for (unsigned t = o->cfg.ntiers; t-- > 0;)
        for (size_t i = n; i-- > 0;) {
            const online_arena_t *a = &o->arena[o->order[i]];
            if (a->tier == t && a->target > t)
                online_move(o, &r, o->order[i]);
        }
    for (unsigned t = 0; t < o->cfg.ntiers; t++)
        for (size_t i = 0; i < n; i++) {
            const online_arena_t *a = &o->arena[o->order[i]];
            if (a->target == t && a->tier > t)
                online_move(o, &r, o->order[i]);
        }
    if (r.budget >= 0.0)
        o->credit = r.budget;
    o->wanted = r.wanted;
}

/* ---------------------------------------------------------------- step */

void online_step(online_t *o, const prof_interval_t *iv)
{
    if (!o || !iv)
        return;
    online_track(o, iv);
    if (++o->steps % o->cfg.every != 0)
        return;
    o->stats.decisions++;
    o->stats.last_bytes = 0;
    if (o->cfg.ntiers < 2)
        return;
    online_choose(o);
    online_apply(o);
}

void online_interval_hook(const prof_interval_t *iv, void *ctx)
{
    online_step((online_t *)ctx, iv);
}
