/*
 * site.c -- which arena each site allocates from: placement, the layouts
 * that give sites arenas, and the accounting of each block.
 *
 * Sites themselves are in site_table.c.  This layer is the arenas' client:
 * it makes its arenas with itself as their client (site_account_free is
 * every such arena's free observer), so a block is accounted to its site
 * whichever entry point frees it.
 *
 * Layouts (TIERMEM_LAYOUT):
 *   per-site    each site gets its own arena, placed by guidance or the
 *               default target, on first use;
 *   per-thread  each thread gets an arena, recycled when the thread ends;
 *   big-small   sites share one arena until their peak live bytes pass
 *               TIERMEM_BIG_SMALL_THRESHOLD, then get their own.
 * Site 0 (small, re-entrant and past-the-limit allocations) has its own
 * arena except in the per-thread layout.  Past TIERMEM_MAX_ARENAS, new sites
 * share one arena (logged once).  Arenas of empty sites go back through
 * site_reclaim.c, which also keeps their count.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

#include "sites.h"

/* Makes the shared arena, once. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static guidance_t guidance;
static tm_placement_t default_placement;
static _Atomic(tm_arena_t *) shared_arena;
static _Atomic bool arenas_full_logged;

/* ------------------------------------------------------------ placement */

static bool target_placement(const target_t *t, tm_placement_t *out)
{
    const tm_topology_t *topo = topology_get();
    if (t->kind == TM_TARGET_NODE) {
        for (unsigned i = 0; i < topo->nnodes; i++)
            if (topo->nodes[i].id == t->index) {
                *out = tm_placement_node(t->mode, t->index);
                return true;
            }
        return false;
    }
    if (topo->ntiers == 0)
        return false;
    unsigned tier = t->index < topo->ntiers
                        ? t->index
                        : topo->ntiers - 1; /* slowest there is */
    return tm_topology_tier_placement(topo, tier, t->mode, out) == 0;
}

static void default_placement_init(void)
{
    if (target_placement(&runtime_options.default_target, &default_placement))
        return;
    log_warn("default %s %u does not exist on this machine; using tier 0",
                runtime_options.default_target.kind == TM_TARGET_NODE ? "node"
                                                                 : "tier",
                runtime_options.default_target.index);
    target_t t = {TM_TARGET_TIER, 0, TM_MODE_PREFERRED};
    if (!target_placement(&t, &default_placement))
        default_placement = tm_placement_node(TM_MODE_PREFERRED, 0);
}

/* Guidance for this site, or the default. */
static tm_placement_t site_placement(const site_t *s)
{
    const guidance_rule_t *r =
        s->explicit_id >= 0
            ? guidance_find(&guidance, true, (uint64_t)s->explicit_id)
            : guidance_find(&guidance, false, s->key);
    tm_placement_t p;
    if (r == NULL)
        return default_placement;
    if (target_placement(&r->target, &p)) {
        log_info("site %u (key %#llx): guidance places it on nodes %#llx",
                    s->index, (unsigned long long)s->key,
                    (unsigned long long)p.nodes);
        return p;
    }
    log_warn("site %u (key %#llx): guidance names %s %u, which does not "
                "exist; using the default", s->index,
                (unsigned long long)s->key,
                r->target.kind == TM_TARGET_NODE ? "node" : "tier",
                r->target.index);
    return default_placement;
}

/* ------------------------------------------------------------ arenas */

/* An arena of the given kind with this layer as its client: its frees are
 * accounted by site_account_free whoever frees them (tm_free too). */
static tm_arena_t *site_arena_new(const tm_placement_t *p, arena_kind_t kind,
                                  uint32_t owner)
{
    site_arena_t *sa = meta_alloc(sizeof *sa);
    if (sa == NULL) {
        log_warn("sites: no metadata memory for a new arena's counters");
        return NULL;
    }
    sa->kind = kind;
    sa->owner_site = owner;
    sa->reclaimable = kind == ARENA_SITE && owner != SITE_UNSITED;
    arena_client_t client = {.data = sa, .on_free = site_account_free};
    tm_arena_t *a = arena_create(p, &client);
    if (a == NULL) {
        int err = errno;
        meta_free(sa, sizeof *sa);
        errno = err;
    }
    return a;
}

arena_kind_t site_arena_kind(const tm_arena_t *a, uint32_t *owner)
{
    const site_arena_t *sa = site_arena_of(a);
    if (owner != NULL) /* a promoted site's arena is shared, and its own */
        *owner = sa != NULL ? sa->owner_site : SITE_UNSITED;
    return sa != NULL ? sa->kind : ARENA_USER;
}

static tm_arena_t *shared_arena_get(void)
{
    tm_arena_t *a = atomic_load_explicit(&shared_arena, memory_order_acquire);
    if (TM_LIKELY(a != NULL))
        return a;
    pthread_mutex_lock(&shared_lock);
    a = atomic_load(&shared_arena);
    if (a == NULL) {
        a = site_arena_new(&default_placement, ARENA_SHARED, 0);
        if (a != NULL)
            atomic_store_explicit(&shared_arena, a, memory_order_release);
    }
    pthread_mutex_unlock(&shared_lock);
    return a;
}

/*
 * An arena that holds large blocks returns freed pages at once.  jemalloc
 * keeps freed pages ~10 s and purges them only when the arena is used
 * again; a site's freed pages are bound to its nodes and no other site can
 * reuse them.  AMG's peak per rank was 329 MiB against 225 MiB with glibc,
 * and 242 MiB with no delay.  Not for arenas of small blocks: a site that
 * frees and reallocates 4-64 KiB buffers paid an madvise per free, and the
 * malloc-heavy benchmark doubled its CPU time.  A shorter delay does not
 * help: an idle arena is never purged.
 */
#define PROMPT_PURGE_MIN (256 * 1024)

static void arena_no_decay(tm_arena_t *a)
{
    static const char *const knobs[] = {"dirty_decay_ms", "muzzy_decay_ms"};
    ssize_t zero = 0;
    for (int i = 0; i < 2; i++) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "arena.%u.%s", tm_arena_jemalloc_index(a),
                 knobs[i]);
        int rc = mallctl(cmd, NULL, NULL, &zero, sizeof zero);
        if (rc != 0)
            log_info("arena %u: %s failed (error %d); freed pages wait "
                        "for jemalloc's decay", tm_arena_id(a), cmd, rc);
    }
}

/* A new arena of the given kind, or NULL past the limit (logged once).
 * A creation that fails (jemalloc maps the arena's metadata through our
 * hooks, so an address-space limit fails it) is retried once after
 * reclaiming empty sites' arenas. */
static tm_arena_t *arena_for(const tm_placement_t *p, arena_kind_t kind,
                             uint32_t owner)
{
    unsigned n = site_arena_count_add();
    tm_arena_t *a = NULL;
    if (n < runtime_options.max_arenas) {
        a = site_arena_new(p, kind, owner);
        if (a == NULL && site_arenas_reclaim(false, NULL) > 0)
            a = site_arena_new(p, kind, owner);
    }
    if (a == NULL) {
        site_arena_count_sub();
        /* a failed creation was logged by arena_create: not the limit */
        if (n >= runtime_options.max_arenas &&
            !atomic_exchange(&arenas_full_logged, true))
            log_warn("arena limit reached (%u arenas, TIERMEM_MAX_ARENAS "
                        "%u): further sites share one arena",
                        n, runtime_options.max_arenas);
        return NULL;
    }
    return a;
}

/*
 * Give site s its own arena (or the shared one past the limit).  current
 * is the arena s allocates from now: NULL for a new site, the shared arena
 * for a big/small promotion.  A promoted site's older blocks stay in the
 * shared arena, so its new arena keeps counters of its own (and the ledger
 * its blocks), instead of sharing the site's, which cover both arenas.
 */
static tm_arena_t *site_arena_create(site_t *s, tm_arena_t *current)
{
    pthread_mutex_lock(&s->lock);
    tm_arena_t *a = atomic_load(&s->arena);
    if (a == current) {
        if (current == NULL && runtime_options.layout == TM_LAYOUT_PER_SITE)
            site_reclaim_idle(site_arena_count() >=
                              runtime_options.max_arenas);
        tm_placement_t p = site_placement(s);
        a = arena_for(&p, current ? ARENA_SHARED : ARENA_SITE, s->index);
        if (a == NULL) {
            atomic_store(&s->promote_failed, current != NULL);
            a = current ? current : shared_arena_get();
        } else if (site_arena_of(a)->reclaimable) {
            site_reclaim_register(a);
        }
        atomic_store_explicit(&s->arena, a, memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
    return a;
}

/* ------------------------------------------------------------ per thread */

#define THREAD_ARENAS_MAX TM_MAX_ARENAS

static __thread tm_arena_t *thread_arena
    __attribute__((tls_model("initial-exec")));
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static tm_arena_t *pool_free[THREAD_ARENAS_MAX]; /* exited threads' arenas */
static unsigned pool_nfree;
static tm_arena_t *pool_all[THREAD_ARENAS_MAX];  /* for sharing past limit */
static unsigned pool_nall, pool_next;
static pthread_key_t thread_key;

/* Set when the thread's arena went back to the pool; glibc's last frees
 * of thread state come after every key destructor. */
static __thread bool thread_arena_done __attribute__((tls_model("initial-exec")));

static void thread_arena_release(void *arg)
{
    thread_arena_done = true;
    pthread_mutex_lock(&pool_lock);
    if (pool_nfree < THREAD_ARENAS_MAX)
        pool_free[pool_nfree++] = arg;
    pthread_mutex_unlock(&pool_lock);
    thread_arena = NULL;
}

static tm_arena_t *thread_arena_take(void)
{
    tm_arena_t *a = NULL;
    pthread_mutex_lock(&pool_lock);
    if (pool_nfree > 0)
        a = pool_free[--pool_nfree];
    pthread_mutex_unlock(&pool_lock);
    if (a == NULL && (a = arena_for(&default_placement, ARENA_SHARED, 0))) {
        pthread_mutex_lock(&pool_lock);
        if (pool_nall < THREAD_ARENAS_MAX)
            pool_all[pool_nall++] = a;
        pthread_mutex_unlock(&pool_lock);
    }
    if (a == NULL) { /* past the limit: share round robin */
        pthread_mutex_lock(&pool_lock);
        a = pool_nall ? pool_all[pool_next++ % pool_nall] : NULL;
        pthread_mutex_unlock(&pool_lock);
        if (a == NULL)
            a = shared_arena_get();
        return a; /* shared: not returned to the pool at exit */
    }
    int rc = pthread_setspecific(thread_key, a);
    if (rc != 0)
        log_warn("per-thread arena %u: pthread_setspecific failed "
                    "(error %d); it will not be recycled", tm_arena_id(a), rc);
    return a;
}

/* ------------------------------------------------------------ choice */

/* A per-site arena that reclaim may destroy: set the hazard, then check
 * the site still has it (see site_reclaim.c).  Only then is the pointer
 * safe to follow.  site_account_alloc clears the hazard. */
static tm_arena_t *site_arena_guarded(site_t *s)
{
    tm_arena_t *a = atomic_load_explicit(&s->arena, memory_order_acquire);
    for (;;) {
        if (a == NULL)
            a = site_arena_create(s, NULL);
        if (a == NULL)
            return NULL;
        arena_hazard_set(a);
        tm_arena_t *now = atomic_load(&s->arena);
        if (TM_LIKELY(now == a))
            return a;
        a = now;
    }
}

tm_arena_t *site_arena(site_t *s)
{
    if (runtime_options.layout == TM_LAYOUT_PER_THREAD) {
        tm_arena_t *a = thread_arena;
        if (TM_UNLIKELY(a == NULL)) {
            if (thread_arena_done) /* exiting: don't take one from the pool */
                return shared_arena_get();
            a = thread_arena = thread_arena_take();
        }
        return a;
    }
    if (runtime_options.layout == TM_LAYOUT_PER_SITE && s->index != SITE_UNSITED)
        return site_arena_guarded(s);
    tm_arena_t *a = atomic_load_explicit(&s->arena, memory_order_acquire);
    if (TM_UNLIKELY(a == NULL)) {
        if (runtime_options.layout == TM_LAYOUT_BIG_SMALL && s->index != 0) {
            tm_arena_t *sh = shared_arena_get();
            tm_arena_t *expect = NULL;
            atomic_compare_exchange_strong(&s->arena, &expect, sh);
            a = atomic_load(&s->arena);
        } else {
            a = site_arena_create(s, NULL);
        }
    }
    if (runtime_options.layout == TM_LAYOUT_BIG_SMALL && s->index != 0 &&
        a == atomic_load_explicit(&shared_arena, memory_order_relaxed) &&
        atomic_load_explicit(&s->stats.peak, memory_order_relaxed) >=
            runtime_options.big_small_threshold &&
        !atomic_load_explicit(&s->promote_failed, memory_order_relaxed)) {
        log_debug("site %u: peak %llu bytes passed the big/small "
                     "threshold; own arena", s->index,
                     (unsigned long long)atomic_load(&s->stats.peak));
        a = site_arena_create(s, a);
    }
    return a;
}

/* ------------------------------------------------------------ statistics */

void site_account_alloc(site_t *s, tm_arena_t *a, void *ptr, size_t usable)
{
    site_arena_t *sa = site_arena_of(a);
    /* site-owned arenas only (incl. promoted ones): shared and per-thread
     * arenas mix in small blocks */
    if (TM_UNLIKELY(usable >= PROMPT_PURGE_MIN) && sa != NULL &&
        sa->owner_site != SITE_UNSITED &&
        !atomic_load_explicit(&sa->prompt_purge, memory_order_relaxed) &&
        !atomic_exchange(&sa->prompt_purge, true))
        arena_no_decay(a); /* the first large block: once per arena */
    if (s->index == SITE_UNSITED)
        site0_add(usable);
    else
        site_stats_add(&s->stats, usable);
    if (sa != NULL && sa->kind == ARENA_SHARED) {
        stats_add(&sa->stats, usable);
        if (s->index != SITE_UNSITED)
            ledger_insert(ptr, s->index);
    }
    /* counted in live before the hazard goes: see reclaim_unpublish */
    if (runtime_options.layout == TM_LAYOUT_PER_SITE && s->index != SITE_UNSITED)
        arena_hazard_clear();
}

void site_account_free(tm_arena_t *a, void *ptr, size_t usable)
{
    site_arena_t *sa = site_arena_of(a);
    uint32_t owner;
    if (sa->reclaimable) /* until arena_free_known has handed it back */
        arena_hazard_set(a);
    if (sa->kind == ARENA_SITE) {
        owner = sa->owner_site;
    } else {
        stats_sub(&sa->stats, usable);
        owner = ledger_remove(ptr);
    }
    if (owner == SITE_UNSITED)
        site0_sub(usable);
    else
        site_stats_sub(&site_table_sites[owner].stats, usable);
}


/* ------------------------------------------------------------ start-up */

static void guidance_init(void)
{
    if (runtime_options.guidance[0] == '\0')
        return;
    long n = guidance_load(runtime_options.guidance, &guidance);
    if (n >= 0)
        log_info("guidance %s: %ld rules", runtime_options.guidance, n);
}

void site_arenas_init(void)
{
    if (topology_load() != 0)
        log_warn("sites: no NUMA topology (errno %d); one node assumed",
                    errno);
    default_placement_init();
    guidance_init();
    int rc = pthread_key_create(&thread_key, thread_arena_release);
    if (rc != 0)
        log_warn("sites: pthread_key_create failed (error %d); per-thread "
                    "arenas will not be recycled", rc);
}

/* ------------------------------------------------------------ fork */

void sites_prefork(void)
{
    pthread_mutex_lock(&shared_lock);
    pthread_mutex_lock(&pool_lock);
}

void sites_postfork_parent(void)
{
    pthread_mutex_unlock(&pool_lock);
    pthread_mutex_unlock(&shared_lock);
}

void sites_postfork_child(void)
{
    pthread_mutex_init(&pool_lock, NULL);
    pthread_mutex_init(&shared_lock, NULL);
}
