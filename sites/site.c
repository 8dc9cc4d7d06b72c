/*
 * site.c -- allocation sites, the layouts that give them arenas, and their
 * statistics.
 *
 * A site is a 64-bit key: the hash of a call stack (stack.c) or of an
 * explicit id passed to sh_alloc.  Sites live in a fixed table sized by
 * TIERMEM_MAX_SITES; the key -> site index is an open-addressing hash that
 * readers probe without locks (slots only ever go from empty to filled).
 *
 * Layouts (TIERMEM_LAYOUT):
 *   per-site    each site gets its own arena, placed by guidance or the
 *               default target, on first use;
 *   per-thread  each thread gets an arena, recycled when the thread ends;
 *   big-small   sites share one arena until their peak live bytes pass
 *               TIERMEM_BIG_SMALL_THRESHOLD, then get their own.
 * Site 0 (small, re-entrant and past-the-limit allocations) has its own
 * arena except in the per-thread layout.  Past TIERMEM_MAX_ARENAS, new sites
 * share one arena; past TIERMEM_MAX_SITES, new stacks are counted as site
 * 0.  Each limit is logged once.  No index is ever wrapped.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

#include "sites.h"

_Atomic(site_t *) sites_unsited;

static site_t *sites;            /* [runtime_options.max_sites] */
/* key hash -> site, [slot_mask + 1].  A slot is filled once: key first,
 * then the site pointer with release; readers load the pointer with
 * acquire and then compare the key.  Keys past the site limit map to site
 * 0, so they too are found without the lock, up to a quarter of the table
 * more. */
typedef struct site_slot {
    _Atomic uint64_t key;
    _Atomic(site_t *) site;
} site_slot_t;
static site_slot_t *slots;
static size_t slots_used;
static size_t slot_mask;
static _Atomic uint32_t nsites;
static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;

static guidance_t guidance;
static tm_placement_t default_placement;
static _Atomic(tm_arena_t *) shared_arena;
static _Atomic unsigned site_arenas; /* arenas made for sites and threads */
static _Atomic bool sites_full_logged, arenas_full_logged;

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

static tm_arena_t *shared_arena_get(void)
{
    tm_arena_t *a = atomic_load_explicit(&shared_arena, memory_order_acquire);
    if (TM_LIKELY(a != NULL))
        return a;
    pthread_mutex_lock(&sites_lock);
    a = atomic_load(&shared_arena);
    if (a == NULL) {
        a = arena_create(&default_placement, ARENA_SHARED, 0);
        if (a != NULL)
            atomic_store_explicit(&shared_arena, a, memory_order_release);
    }
    pthread_mutex_unlock(&sites_lock);
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
    unsigned n = atomic_fetch_add(&site_arenas, 1);
    tm_arena_t *a = NULL;
    if (n < runtime_options.max_arenas) {
        a = arena_create(p, kind, owner);
        if (a == NULL && site_arenas_reclaim(false, NULL) > 0)
            a = arena_create(p, kind, owner);
    }
    if (a == NULL) {
        atomic_fetch_sub(&site_arenas, 1);
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
            site_reclaim_idle(atomic_load(&site_arenas) >=
                              runtime_options.max_arenas);
        tm_placement_t p = site_placement(s);
        a = arena_for(&p, current ? ARENA_SHARED : ARENA_SITE, s->index);
        if (a == NULL) {
            atomic_store(&s->promote_failed, current != NULL);
            a = current ? current : shared_arena_get();
        } else if (a->reclaimable) {
            site_reclaim_register(a);
        }
        atomic_store_explicit(&s->arena, a, memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
    return a;
}

void site_arena_destroyed(void)
{
    atomic_fetch_sub(&site_arenas, 1);
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
    /* site-owned arenas only (incl. promoted ones): shared and per-thread
     * arenas mix in small blocks */
    if (TM_UNLIKELY(usable >= PROMPT_PURGE_MIN) && a->kind != ARENA_USER &&
        a->owner_site != SITE_UNSITED &&
        !atomic_load_explicit(&a->prompt_purge, memory_order_relaxed) &&
        !atomic_exchange(&a->prompt_purge, true))
        arena_no_decay(a); /* the first large block: once per arena */
    if (s->index == SITE_UNSITED)
        site0_add(usable);
    else
        stats_add(&s->stats, usable);
    if (a->kind == ARENA_SHARED) {
        stats_add(&a->stats, usable);
        if (s->index != SITE_UNSITED)
            ledger_insert(ptr, s->index);
    }
    /* counted in live before the hazard goes: see reclaim_unpublish */
    if (runtime_options.layout == TM_LAYOUT_PER_SITE && s->index != SITE_UNSITED)
        arena_hazard_clear();
}

void site_account_free(tm_arena_t *a, void *ptr, size_t usable)
{
    uint32_t owner;
    if (a->reclaimable) /* until arena_free_known has handed it back */
        arena_hazard_set(a);
    if (a->kind == ARENA_SITE) {
        owner = a->owner_site;
    } else if (a->kind == ARENA_SHARED) {
        stats_sub(&a->stats, usable);
        owner = ledger_remove(ptr);
    } else {
        return;
    }
    if (owner == SITE_UNSITED)
        site0_sub(usable);
    else
        stats_sub(&sites[owner].stats, usable);
}

/* ------------------------------------------------------------ the table */

uint64_t site_explicit_key(int id)
{
    /* A separate key space from stack keys: a fixed tag mixed with the id. */
    uint64_t h = 0x5349434d00000000ull ^ (uint32_t)id; /* "SICM" */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

site_t *site_get(uint32_t index)
{
    return index < atomic_load_explicit(&nsites, memory_order_acquire)
               ? &sites[index]
               : NULL;
}

uint32_t site_count(void) { return atomic_load(&nsites); }

static size_t slot_of(uint64_t key) { return (size_t)(key ^ key >> 29) & slot_mask; }

static site_t *probe(uint64_t key, size_t *free_slot)
{
    for (size_t i = slot_of(key);; i = (i + 1) & slot_mask) {
        site_t *s = atomic_load_explicit(&slots[i].site, memory_order_acquire);
        if (s == NULL) {
            *free_slot = i;
            return NULL;
        }
        if (atomic_load_explicit(&slots[i].key, memory_order_relaxed) == key)
            return s;
    }
}

/* Caller holds sites_lock.  The table has 4 slots per site: at most 3/4
 * are ever used, so a probe always ends. */
static void slot_fill(size_t slot, uint64_t key, site_t *s)
{
    if (slots_used + 1 > (slot_mask + 1) / 4 * 3)
        return; /* only past the site limit: such keys take the lock */
    slots_used++;
    atomic_store_explicit(&slots[slot].key, key, memory_order_relaxed);
    atomic_store_explicit(&slots[slot].site, s, memory_order_release);
}

static site_t *site_new(uint64_t key, int explicit_id,
                        const stack_trace_t *trace, size_t slot)
{
    uint32_t n = atomic_load_explicit(&nsites, memory_order_relaxed);
    if (n >= runtime_options.max_sites) {
        if (!atomic_exchange(&sites_full_logged, true))
            log_warn("site limit reached (TIERMEM_MAX_SITES %u): further "
                        "call stacks are counted as site 0",
                        runtime_options.max_sites);
        slot_fill(slot, key, &sites[SITE_UNSITED]);
        return &sites[SITE_UNSITED];
    }
    site_t *s = &sites[n];
    s->key = key;
    s->explicit_id = explicit_id;
    s->index = n;
    pthread_mutex_init(&s->lock, NULL);
    if (trace != NULL)
        s->trace = *trace;
    atomic_store_explicit(&nsites, n + 1, memory_order_release);
    slot_fill(slot, key, s);
    return s;
}

site_t *site_find(uint64_t key, int explicit_id, const stack_trace_t *trace)
{
    size_t slot;
    site_t *s = probe(key, &slot);
    if (TM_LIKELY(s != NULL))
        return s;
    pthread_mutex_lock(&sites_lock);
    s = probe(key, &slot);
    if (s == NULL)
        s = site_new(key, explicit_id, trace, slot);
    pthread_mutex_unlock(&sites_lock);
    return s;
}

/* ------------------------------------------------------------ start-up */

static bool table_init(void)
{
    size_t nslots = 1;
    while (nslots < 4 * (size_t)runtime_options.max_sites)
        nslots <<= 1;
    sites = meta_alloc(runtime_options.max_sites * sizeof *sites);
    slots = meta_alloc(nslots * sizeof *slots);
    if (sites == NULL || slots == NULL) {
        log_error("sites: cannot map the site table (%u sites)",
                     runtime_options.max_sites);
        return false;
    }
    slot_mask = nslots - 1;
    size_t unused;
    site_t *zero = site_new(0, -1, NULL, (probe(0, &unused), unused));
    return zero == &sites[0];
}

static void guidance_init(void)
{
    if (runtime_options.guidance[0] == '\0')
        return;
    long n = guidance_load(runtime_options.guidance, &guidance);
    if (n >= 0)
        log_info("guidance %s: %ld rules", runtime_options.guidance, n);
}

static pthread_once_t sites_once = PTHREAD_ONCE_INIT;
static _Atomic bool sites_ok;
static __thread bool initialising __attribute__((tls_model("initial-exec")));

static void sites_init_once(void)
{
    runtime_init();
    if (topology_load() != 0)
        log_warn("sites: no NUMA topology (errno %d); one node assumed",
                    errno);
    default_placement_init();
    guidance_init();
    int rc = pthread_key_create(&thread_key, thread_arena_release);
    if (rc != 0)
        log_warn("sites: pthread_key_create failed (error %d); per-thread "
                    "arenas will not be recycled", rc);
    if (!table_init())
        return;
    site_stats_init(&sites[SITE_UNSITED].stats);
    if (runtime_options.layout != TM_LAYOUT_PER_THREAD)
        site_arena(&sites[SITE_UNSITED]);
    stack_warm_up();
    atomic_store_explicit(&sites_unsited, &sites[SITE_UNSITED],
                          memory_order_release);
    if (runtime_options.output_dir[0] != '\0' && atexit(site_report_at_exit) != 0)
        log_warn("sites: atexit failed; no site table will be written");
    atomic_store_explicit(&sites_ok, true, memory_order_release);
}

bool sites_ready(void)
{
    if (TM_LIKELY(atomic_load_explicit(&sites_ok, memory_order_acquire)))
        return true;
    if (initialising)
        return false; /* a nested allocation during our own start-up */
    initialising = true;
    pthread_once(&sites_once, sites_init_once);
    initialising = false;
    return atomic_load(&sites_ok);
}

/* ------------------------------------------------------------ fork */

void sites_prefork(void)
{
    /* first: a reclaim holds it while it waits for the arena table */
    site_reclaim_prefork();
    pthread_mutex_lock(&sites_lock);
    pthread_mutex_lock(&pool_lock);
    site_stats_prefork();
}

void sites_postfork_parent(void)
{
    site_stats_postfork_parent();
    pthread_mutex_unlock(&pool_lock);
    pthread_mutex_unlock(&sites_lock);
    site_reclaim_postfork_parent();
}

void sites_postfork_child(void)
{
    site_stats_postfork_child();
    pthread_mutex_init(&pool_lock, NULL);
    pthread_mutex_init(&sites_lock, NULL);
    site_reclaim_postfork_child();
    uint32_t n = atomic_load(&nsites);
    for (uint32_t i = 0; i < n; i++)
        pthread_mutex_init(&sites[i].lock, NULL);
}
