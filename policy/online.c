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
 *      capacity, and never into nodes without room for the arena now
 *      (online_has_room).  A failed move leaves the arena where it was in
 *      the map; the next decision tries again (ENOMEM: online_tier_full).
 *
 * The policy keeps its own map of arena -> tier: an arena first seen is
 * on the tier its placement names (cfg.topology), else on
 * cfg.initial_tier (the slowest by default).  place_items()
 * allocates with malloc, so the greedy (hotset) selection is done here
 * over meta_alloc tables instead.  The moves themselves are in
 * online_move.c.
 */
#include "online_internal.h"

#include <errno.h>
#include <string.h>

#include "base.h"
#include "sites.h"

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

/* ---------------------------------------------------------------- step */

/* Did the sampler see anything at all?  Before its first window (the refs
 * sampler's is half a second or more) every arena reads as cold, and a
 * decision would send the fast tier's arenas down only to bring them back
 * at the next one: no heat anywhere is no evidence, not "all cold". */
static bool online_any_heat(const online_t *o)
{
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++)
        if (online_live(o, id) && o->arena[id].heat > 0.0)
            return true;
    return false;
}

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
    if (!online_any_heat(o)) {
        o->stats.skipped_no_heat++;
        return;
    }
    online_choose(o);
    online_apply(o);
}

void online_interval_hook(const prof_interval_t *iv, void *ctx)
{
    online_step((online_t *)ctx, iv);
}
