/*
 * attribution.c -- address -> arena -> site, one interval at a time.
 *
 * Samplers call attrib_sample from any thread: the extent map names the
 * arena, and a relaxed fetch_add counts the sample in that arena's slot
 * (slot 0: no arena of ours).  Nothing there locks or allocates, so a
 * sampler thread never waits for the program.
 *
 * Once per interval the profiling thread calls attrib_close, which takes
 * every slot with an atomic exchange (a sample lands in exactly one
 * interval) and builds the interval's rows in memory the attrib_t owns:
 *
 *   1. under arena_walk_begin: one row per live arena (kind, owner,
 *      placement and mapped bytes read under the arena's hooked.lock), and
 *      each site's arena id (site_get and the site's arena pointer are
 *      lock-free);
 *   2. after arena_walk_end: the sites' counters.  stats_snapshot of site 0
 *      takes the site-0 delta lock, and fork takes that lock before the walk
 *      lock, so taking it inside the walk could deadlock against a fork;
 *   3. site samples: exact for a site's own arena, apportioned by live
 *      bytes over the sites of a shared arena; then heat.
 *
 * Heat is an EWMA per arena id and per site index.  An arena id can be
 * reused after tm_arena_destroy: an id's heat starts again from zero when
 * the id had no arena at the previous close, or when the arena's serial
 * (unique per arena ever created) differs from what the previous close saw.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "profiler.h"

#define ATTRIB_IDS (TM_MAX_ARENAS + 1)
#define ATTRIB_NO_ROW UINT32_MAX

/* What attribution remembers about one arena id between closes. */
typedef struct attrib_arena_state {
    double heat;
    uint64_t serial;         /* the arena that held the id at last close */
    uint64_t seen_seq;       /* the close that last saw an arena here */
    uint64_t taken;          /* samples taken from the counter this close */
    uint32_t row;            /* its row in this close, or ATTRIB_NO_ROW */
    /* residency recorded for interval res_seq (pending rows) */
    uint64_t res_seq;
    uint64_t resident;
    uint32_t res_first, res_count;
    /* apportioning over the sites of a shared arena */
    uint64_t weight_sum, assigned;
    uint32_t nsites;
} attrib_arena_state_t;

struct attrib {
    double decay;
    _Atomic uint64_t *counts;       /* [ATTRIB_IDS], 0 = unattributed */
    _Atomic uint64_t lost;
    attrib_arena_state_t *arenas;   /* [ATTRIB_IDS] */
    prof_interval_t iv;
    prof_arena_row_t *arena_rows;   /* [TM_MAX_ARENAS] */
    prof_site_row_t *site_rows;
    size_t site_rows_bytes;
    double *site_heat;              /* by site index */
    size_t site_heat_bytes;
    uint64_t *site_rem;             /* apportioning remainders, by index */
    size_t site_rem_bytes;
    uint32_t *site_order;           /* sites in shared arenas, sorted */
    size_t site_order_bytes;
    prof_residency_row_t *res_rows; /* this close's output */
    size_t res_rows_bytes;
    prof_residency_row_t *res_pending; /* recorded since the last close */
    size_t res_pending_n, res_pending_bytes;
};

/* ------------------------------------------------------------ memory */

/* Make *p hold at least need bytes (contents kept, the rest zeroed). */
static bool attrib_reserve(void **p, size_t *bytes, size_t need)
{
    if (need <= *bytes)
        return true;
    size_t size = *bytes ? *bytes : 4096;
    while (size < need)
        size *= 2;
    void *fresh = meta_alloc(size);
    if (fresh == NULL) {
        log_error("attribution: no metadata memory for %zu bytes of rows",
                     size);
        return false;
    }
    if (*p != NULL) {
        memcpy(fresh, *p, *bytes);
        meta_free(*p, *bytes);
    }
    *p = fresh;
    *bytes = size;
    return true;
}

static void attrib_release(void *p, size_t bytes)
{
    if (p != NULL)
        meta_free(p, bytes);
}

attrib_t *attrib_new(double halflife)
{
    attrib_t *a = meta_alloc(sizeof *a);
    if (a == NULL) {
        log_error("attribution: no metadata memory for its state");
        return NULL;
    }
    /* after halflife intervals, half the weight */
    a->decay = prof_heat_decay(halflife);
    a->counts = meta_alloc(ATTRIB_IDS * sizeof *a->counts);
    a->arenas = meta_alloc(ATTRIB_IDS * sizeof *a->arenas);
    a->arena_rows = meta_alloc(TM_MAX_ARENAS * sizeof *a->arena_rows);
    if (a->counts == NULL || a->arenas == NULL || a->arena_rows == NULL) {
        log_error("attribution: no metadata memory for %d arena slots",
                     ATTRIB_IDS);
        attrib_delete(a);
        return NULL;
    }
    return a;
}

void attrib_delete(attrib_t *a)
{
    if (a == NULL)
        return;
    attrib_release((void *)a->counts, ATTRIB_IDS * sizeof *a->counts);
    attrib_release(a->arenas, ATTRIB_IDS * sizeof *a->arenas);
    attrib_release(a->arena_rows, TM_MAX_ARENAS * sizeof *a->arena_rows);
    attrib_release(a->site_rows, a->site_rows_bytes);
    attrib_release(a->site_heat, a->site_heat_bytes);
    attrib_release(a->site_rem, a->site_rem_bytes);
    attrib_release(a->site_order, a->site_order_bytes);
    attrib_release(a->res_rows, a->res_rows_bytes);
    attrib_release(a->res_pending, a->res_pending_bytes);
    meta_free(a, sizeof *a);
}

/* ------------------------------------------------------------ samples */

unsigned attrib_sample(attrib_t *a, uintptr_t addr, uint32_t weight)
{
    unsigned id = extent_map_lookup((const void *)addr);
    if (TM_UNLIKELY(id >= ATTRIB_IDS))
        id = 0;
    atomic_fetch_add_explicit(&a->counts[id], weight, memory_order_relaxed);
    return id;
}

void attrib_lost(attrib_t *a, uint64_t n)
{
    atomic_fetch_add_explicit(&a->lost, n, memory_order_relaxed);
}

static void attrib_sink_sample(void *ctx, uintptr_t addr, uint32_t weight)
{
    attrib_sample(ctx, addr, weight);
}

static void attrib_sink_lost(void *ctx, uint64_t n) { attrib_lost(ctx, n); }

prof_sink_t attrib_sink(attrib_t *a)
{
    prof_sink_t s = {attrib_sink_sample, attrib_sink_lost, a};
    return s;
}

void attrib_residency(attrib_t *a, unsigned arena, const tm_residency_t *r)
{
    if (arena == 0 || arena > TM_MAX_ARENAS || r == NULL)
        return;
    size_t need = a->res_pending_n + TM_MAX_NODES;
    if (!attrib_reserve((void **)&a->res_pending, &a->res_pending_bytes,
                        need * sizeof *a->res_pending))
        return; /* logged; the arena's row says "not measured" */
    attrib_arena_state_t *st = &a->arenas[arena];
    st->res_seq = a->iv.seq + 1; /* the interval the next close builds */
    st->resident = r->bytes_resident;
    st->res_first = (uint32_t)a->res_pending_n;
    st->res_count = 0;
    for (unsigned node = 0; node < TM_MAX_NODES; node++) {
        if (r->node_bytes[node] == 0)
            continue;
        prof_residency_row_t *row = &a->res_pending[a->res_pending_n++];
        *row = (prof_residency_row_t){arena, node, r->node_bytes[node]};
        st->res_count++;
    }
}

/* ------------------------------------------------------------ arena rows */

/* Take every counter: a sample counted after its exchange belongs to the
 * next interval.  Returns the samples of ids 1.. (slot 0 -> *unattributed). */
static uint64_t attrib_take_counts(attrib_t *a, uint64_t *unattributed)
{
    uint64_t total = 0;
    *unattributed = atomic_exchange_explicit(&a->counts[0], 0,
                                             memory_order_relaxed);
    for (unsigned id = 1; id < ATTRIB_IDS; id++) {
        uint64_t n = atomic_load_explicit(&a->counts[id], memory_order_relaxed);
        if (n != 0)
            n = atomic_exchange_explicit(&a->counts[id], 0,
                                         memory_order_relaxed);
        a->arenas[id].taken = n;
        a->arenas[id].row = ATTRIB_NO_ROW;
        total += n;
    }
    return total;
}

/* The row of a live arena; caller holds the arena walk. */
static void attrib_arena_row(attrib_t *a, tm_arena_t *arena, unsigned id)
{
    attrib_arena_state_t *st = &a->arenas[id];
    prof_arena_row_t *row = &a->arena_rows[a->iv.narenas];
    st->row = (uint32_t)a->iv.narenas++;
    uint32_t owner;
    arena_kind_t kind = site_arena_kind(arena, &owner);
    *row = (prof_arena_row_t){.id = id,
                              .serial = arena->serial,
                              .kind = (uint8_t)kind,
                              .owner_site = owner,
                              .samples = st->taken};
    mutex_lock(&arena->hooked.lock);
    row->placement = arena->hooked.placement;
    row->mapped = arena->hooked.extents.bytes;
    mutex_unlock(&arena->hooked.lock);
    if (kind == ARENA_SHARED) /* the arena's own counters: lock-free */
        tm_arena_alloc_stats(arena, &row->stats);
    /* ARENA_SITE stats are the owner site's: filled after the walk */

    bool same = st->serial == arena->serial && st->seen_seq + 1 == a->iv.seq;
    if (!same)
        st->heat = 0; /* a new arena in this id: its heat starts afresh */
    st->serial = arena->serial;
    st->seen_seq = a->iv.seq;
    st->heat = prof_heat_update(st->heat, row->samples, a->decay);
    row->heat = st->heat;
    if (st->res_seq == a->iv.seq) {
        row->resident_valid = true;
        row->resident = st->resident;
        memcpy(&a->res_rows[a->iv.nresidency], &a->res_pending[st->res_first],
               st->res_count * sizeof *a->res_rows);
        a->iv.nresidency += st->res_count;
    }
}

/* The id of the arena a site allocates from, 0 if none or not in the
 * table; caller holds the arena walk, so the pointer cannot be freed. */
static unsigned attrib_site_arena(const site_t *s)
{
    tm_arena_t *arena = atomic_load_explicit(
        &((site_t *)s)->arena, memory_order_acquire);
    if (arena == NULL)
        return 0;
    unsigned id = arena->hooked.id;
    return arena_by_id(id) == arena ? id : 0;
}

static void attrib_walk(attrib_t *a, uint32_t nsites)
{
    arena_walk_begin();
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *arena = arena_by_id(id);
        if (arena != NULL)
            attrib_arena_row(a, arena, id);
    }
    for (uint32_t i = 0; i < nsites; i++) {
        const site_t *s = site_get(i);
        a->site_rows[i] = (prof_site_row_t){.index = i};
        if (s != NULL)
            a->site_rows[i].arena = attrib_site_arena(s);
    }
    arena_walk_end();
}

/* ------------------------------------------------------------ site rows */

/* Order for handing out rounding leftovers: arena ascending, then the
 * larger remainder first, then the lower index (deterministic). */
static bool attrib_order_before(const attrib_t *a, uint32_t x, uint32_t y)
{
    unsigned ax = a->site_rows[x].arena, ay = a->site_rows[y].arena;
    if (ax != ay)
        return ax < ay;
    if (a->site_rem[x] != a->site_rem[y])
        return a->site_rem[x] > a->site_rem[y];
    return x < y;
}

static void attrib_sift(const attrib_t *a, uint32_t *v, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && attrib_order_before(a, v[child], v[child + 1]))
            child++;
        if (!attrib_order_before(a, v[root], v[child]))
            return;
        uint32_t t = v[root];
        v[root] = v[child];
        v[child] = t;
        root = child;
    }
}

/* Heapsort: qsort may call malloc, which this thread must not. */
static void attrib_sort_sites(const attrib_t *a, uint32_t *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        attrib_sift(a, v, i, n);
    for (size_t end = n; end-- > 1;) {
        uint32_t t = v[0];
        v[0] = v[end];
        v[end] = t;
        attrib_sift(a, v, 0, end);
    }
}

/* A shared arena's samples over the sites mapped to it, by live bytes
 * (equal shares when none has live bytes); largest remainders get the
 * rounding leftovers, so the parts add up to the arena's samples. */
static void attrib_apportion(attrib_t *a, uint32_t nsites)
{
    size_t norder = 0;
    for (uint32_t i = 0; i < nsites; i++) {
        prof_site_row_t *sr = &a->site_rows[i];
        attrib_arena_state_t *st = &a->arenas[sr->arena];
        if (sr->arena == 0 || st->row == ATTRIB_NO_ROW ||
            a->arena_rows[st->row].kind != ARENA_SHARED)
            continue;
        if (st->nsites++ == 0)
            st->weight_sum = st->assigned = 0;
        st->weight_sum += sr->stats.live;
        a->site_order[norder++] = i;
    }
    for (size_t k = 0; k < norder; k++) {
        prof_site_row_t *sr = &a->site_rows[a->site_order[k]];
        attrib_arena_state_t *st = &a->arenas[sr->arena];
        uint64_t samples = a->arena_rows[st->row].samples;
        uint64_t w = st->weight_sum ? sr->stats.live : 1;
        uint64_t sum = st->weight_sum ? st->weight_sum : st->nsites;
        unsigned __int128 part = (unsigned __int128)samples * w;
        sr->samples = (uint64_t)(part / sum);
        a->site_rem[sr->index] = (uint64_t)(part % sum);
        sr->estimated = true;
        st->assigned += sr->samples;
    }
    attrib_sort_sites(a, a->site_order, norder);
    for (size_t k = 0; k < norder; k++) {
        prof_site_row_t *sr = &a->site_rows[a->site_order[k]];
        attrib_arena_state_t *st = &a->arenas[sr->arena];
        if (st->assigned < a->arena_rows[st->row].samples) {
            sr->samples++;
            st->assigned++;
        }
        st->nsites = 0; /* ready for the next close */
    }
}

static void attrib_sites(attrib_t *a, uint32_t nsites)
{
    for (uint32_t i = 0; i < nsites; i++) {
        prof_site_row_t *sr = &a->site_rows[i];
        site_t *s = site_get(i);
        if (s == NULL)
            continue;
        sr->key = s->key;
        sr->explicit_id = s->explicit_id;
        stats_snapshot(&s->stats, &sr->stats);
        attrib_arena_state_t *st = &a->arenas[sr->arena];
        if (sr->arena == 0 || st->row == ATTRIB_NO_ROW)
            continue;
        prof_arena_row_t *ar = &a->arena_rows[st->row];
        if (ar->kind == ARENA_SITE && ar->owner_site == i)
            sr->samples = ar->samples;
    }
    attrib_apportion(a, nsites);
    for (uint32_t i = 0; i < nsites; i++) {
        prof_site_row_t *sr = &a->site_rows[i];
        a->site_heat[i] = prof_heat_update(a->site_heat[i], sr->samples,
                                           a->decay);
        sr->heat = a->site_heat[i];
    }
}

/* A site arena's counters are its owner's. */
static void attrib_site_arena_stats(attrib_t *a, uint32_t nsites)
{
    for (size_t r = 0; r < a->iv.narenas; r++) {
        prof_arena_row_t *ar = &a->arena_rows[r];
        if (ar->kind != ARENA_SITE)
            continue;
        if (ar->owner_site < nsites) {
            ar->stats = a->site_rows[ar->owner_site].stats;
        } else {
            site_t *s = site_get(ar->owner_site);
            if (s != NULL)
                stats_snapshot(&s->stats, &ar->stats);
        }
    }
}

/* Room for this close's rows; before the walk, which must not allocate. */
static bool attrib_reserve_rows(attrib_t *a, uint32_t nsites)
{
    size_t n = nsites ? nsites : 1;
    return attrib_reserve((void **)&a->site_rows, &a->site_rows_bytes,
                          n * sizeof *a->site_rows) &&
           attrib_reserve((void **)&a->site_heat, &a->site_heat_bytes,
                          n * sizeof *a->site_heat) &&
           attrib_reserve((void **)&a->site_rem, &a->site_rem_bytes,
                          n * sizeof *a->site_rem) &&
           attrib_reserve((void **)&a->site_order, &a->site_order_bytes,
                          n * sizeof *a->site_order) &&
           attrib_reserve((void **)&a->res_rows, &a->res_rows_bytes,
                          (a->res_pending_n + 1) * sizeof *a->res_rows);
}

const prof_interval_t *attrib_close(attrib_t *a, uint64_t t_start_ns,
                                    uint64_t t_end_ns)
{
    uint32_t nsites = site_count();
    if (!attrib_reserve_rows(a, nsites))
        return NULL; /* counters kept: the next close takes them */
    prof_interval_t *iv = &a->iv;
    iv->seq++;
    iv->t_start_ns = t_start_ns;
    iv->t_end_ns = t_end_ns;
    iv->narenas = iv->nresidency = 0;
    iv->arenas = a->arena_rows;
    iv->residency = a->res_rows;
    iv->sites = a->site_rows;
    iv->nsites = nsites;
    uint64_t unattributed;
    uint64_t owned = attrib_take_counts(a, &unattributed);
    iv->lost = atomic_exchange_explicit(&a->lost, 0, memory_order_relaxed);

    attrib_walk(a, nsites);
    a->res_pending_n = 0;

    /* samples of an id whose arena is gone have no row: unattributed, so
     * rows + unattributed always add up to samples */
    uint64_t in_rows = 0;
    for (size_t r = 0; r < iv->narenas; r++)
        in_rows += iv->arenas[r].samples;
    iv->samples = owned + unattributed;
    iv->unattributed = unattributed + (owned - in_rows);

    attrib_sites(a, nsites);
    attrib_site_arena_stats(a, nsites);
    return iv;
}
