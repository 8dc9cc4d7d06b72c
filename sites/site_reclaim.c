/*
 * site_reclaim.c -- giving back the address space of empty sites' arenas.
 *
 * Why: jemalloc keeps an arena's address space for as long as the arena
 * lives (the extent hooks' dalloc opts out, see doc/design.md), and each
 * site has its own arena.  A program whose phases allocate from new sites
 * would grow its address space phase after phase although it frees
 * everything, and under `ulimit -v` (or strict overcommit) it would get
 * NULL.  So the arena of an empty site is destroyed, which unmaps all of
 * it, and the site gets a new arena on its next allocation:
 *   - when an allocation or an arena creation fails: every empty one;
 *   - when a new site needs an arena: those that stayed empty and unused
 *     from one such scan to the next and map SITE_RECLAIM_IDLE_MIN or more
 *     (re-creating an arena costs far less than refilling that much
 *     memory, so a site that comes back does not make this a loss).
 *
 * Races: a thread may be between loading the site's arena and mallocx, or
 * between accounting a free and dallocx.  Both set a hazard first
 * (arena_hazard_set).  Reclaim unpublishes the site's arena, then reads
 * the live bytes, the hazards and the live bytes again: an allocator that
 * saw the arena still published has its hazard seen (or its block counted
 * in the second read); a free whose decrement the first read saw has its
 * hazard seen, or is finished.  Otherwise the arena is put back.
 */
#include "config.h"

#include "sites.h"

/* The reclaimable arenas, under reclaim_lock.  Lock order: a site's lock,
 * then reclaim_lock; reclaim only try-locks sites. */
static pthread_mutex_t reclaim_lock = PTHREAD_MUTEX_INITIALIZER;
static tm_arena_t *reclaim_list[TM_MAX_ARENAS];
static unsigned reclaim_n;
static _Atomic unsigned reclaim_pending; /* reclaim_n, read without lock */

void site_reclaim_register(tm_arena_t *a)
{
    pthread_mutex_lock(&reclaim_lock);
    reclaim_list[reclaim_n++] = a; /* at most one entry per arena slot */
    atomic_store(&reclaim_pending, reclaim_n);
    pthread_mutex_unlock(&reclaim_lock);
}

static size_t arena_mapped(tm_arena_t *a)
{
    mutex_lock(&a->hooked.lock);
    size_t bytes = a->hooked.extents.bytes;
    mutex_unlock(&a->hooked.lock);
    return bytes;
}

/* Empty, and (idle_only) unused since the last idle scan and large. */
static bool reclaim_candidate(site_t *s, tm_arena_t *a, bool idle_only)
{
    if (atomic_load(&s->stats.live) != 0)
        return false;
    if (!idle_only)
        return true;
    uint64_t mark = stats_allocs(&s->stats) + 1;
    site_arena_t *sa = site_arena_of(a);
    if (sa->reclaim_mark != mark) {
        sa->reclaim_mark = mark;
        return false;
    }
    return arena_mapped(a) >= SITE_RECLAIM_IDLE_MIN;
}

/* Take a from s unless a thread is using it; s->lock held. */
static bool reclaim_unpublish(site_t *s, tm_arena_t *a)
{
    atomic_store(&s->arena, NULL);
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t live = atomic_load(&s->stats.live);
    bool busy = live != 0 || arena_hazard_held(a);
    atomic_thread_fence(memory_order_seq_cst);
    busy = busy || atomic_load(&s->stats.live) != 0;
    if (busy)
        atomic_store(&s->arena, a);
    return !busy;
}

/* Destroy entry i's arena if its site lets us; reclaim_lock held.
 * Returns the bytes unmapped (0: kept). */
static size_t reclaim_one(unsigned i, bool idle_only, const tm_arena_t *keep)
{
    tm_arena_t *a = reclaim_list[i];
    site_arena_t *sa = site_arena_of(a);
    site_t *s = site_get(sa->owner_site);
    if (a == keep || pthread_mutex_trylock(&s->lock) != 0)
        return 0;
    size_t bytes = 0;
    if (atomic_load(&s->arena) == a && reclaim_candidate(s, a, idle_only) &&
        reclaim_unpublish(s, a)) {
        bytes = arena_mapped(a);
        unsigned id = tm_arena_id(a);
        if (tm_arena_destroy(a) == 0) {
            meta_free(sa, sizeof *sa); /* no walker or thread can reach it now */
            site_arena_count_sub();
            reclaim_list[i] = reclaim_list[--reclaim_n];
            log_debug("site %u: arena %u reclaimed (%zu bytes unmapped)",
                         s->index, id, bytes);
        } else {
            atomic_store(&s->arena, a); /* logged by tm_arena_destroy */
            bytes = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return bytes;
}

size_t site_arenas_reclaim(bool idle_only, const tm_arena_t *keep)
{
    /* a walker must not destroy arenas (arena_walk_begin) */
    if (atomic_load(&reclaim_pending) == 0 || arena_walking_here())
        return 0;
    size_t bytes = 0;
    pthread_mutex_lock(&reclaim_lock);
    for (unsigned i = reclaim_n; i-- > 0;)
        bytes += reclaim_one(i, idle_only, keep);
    atomic_store(&reclaim_pending, reclaim_n);
    pthread_mutex_unlock(&reclaim_lock);
    return bytes;
}

/* The idle scan before a new site's arena is made.  Past the arena limit
 * new sites share an arena anyway, so the scan (which could free a slot)
 * runs only for every 64th of them: it costs one pass over the list. */
void site_reclaim_idle(bool past_limit)
{
    static _Atomic unsigned skipped;
    if (past_limit && atomic_fetch_add(&skipped, 1) % 64 != 0)
        return;
    (void)site_arenas_reclaim(true, NULL);
}

void site_reclaim_prefork(void) { pthread_mutex_lock(&reclaim_lock); }
void site_reclaim_postfork_parent(void) { pthread_mutex_unlock(&reclaim_lock); }
void site_reclaim_postfork_child(void) { pthread_mutex_init(&reclaim_lock, NULL); }

/* ---------------------------------------------------------------- count */

/* Arenas made for sites and threads, against TIERMEM_MAX_ARENAS.  Kept
 * here because reclaim is what gives them back. */
static _Atomic unsigned site_arenas;

unsigned site_arena_count_add(void) { return atomic_fetch_add(&site_arenas, 1); }
void site_arena_count_sub(void) { atomic_fetch_sub(&site_arenas, 1); }
unsigned site_arena_count(void) { return atomic_load(&site_arenas); }
