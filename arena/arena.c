/*
 * arena.c -- tiermem arenas: creation, allocation, ownership, destruction.
 *
 * An arena is a jemalloc arena created with tiermem's extent hooks, plus a
 * slot in the arena table (arena_table.c).  This file is the arena's life
 * (the layer's start-up and fork handlers, create, destroy), realloc and
 * usable size.  Allocation and free are the caches' (front_cache.c, then
 * tcache.c's arena_mallocx): the fast path is one file.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"

/* One arenas.create at a time.  Creation is rare, and jemalloc publishes a
 * new arena's metadata with its own (uninstrumented) atomics: two threads
 * creating arenas at once looked like a data race to ThreadSanitizer. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

_Atomic uint64_t arena_migrations, arena_migrate_failures;

tm_placement_t tm_placement_node(tm_mode_t mode, unsigned node)
{
    tm_placement_t p = {mode, node < TM_MAX_NODES ? (uint64_t)1 << node : 0};
    return p;
}


/* fork: the table locks are held across fork, arena locks are reset in
 * the child.  Lock order: create, the table's (walk, table), then the
 * tcache registry.  Nothing takes create while it holds a table lock (a
 * walker creates no arena; destroy does not create), so create may come
 * first. */
static void arena_prefork(void)
{
    pthread_mutex_lock(&create_lock);
    arena_table_prefork();
    tcache_prefork();
}

static void arena_postfork_parent(void)
{
    tcache_postfork_parent();
    arena_table_postfork_parent();
    pthread_mutex_unlock(&create_lock);
}

static void arena_postfork_child(void)
{
    /* first of all tiermem's child handlers: they log and allocate */
    meta_fork_child();
    log_fork_child();
    tcache_postfork_child();
    arena_table_postfork_child(); /* also resets each arena's mutex */
    pthread_mutex_unlock(&create_lock);
}

/*
 * Only the forking thread survives in the child, so a lock another thread
 * held at that moment would stay locked for ever.  The table locks and the
 * tcache registry lock are taken before fork and released after it, so the
 * child gets both tables whole: safe because no thread ever waits for
 * either while holding a jemalloc lock, and these handlers are registered
 * after jemalloc's (front_cache_init_classes initialises it first), so
 * they run before them in prepare.
 *
 * The arena mutexes and the metadata lock cannot be taken that way: a hook
 * holds a jemalloc lock while it waits for them, and jemalloc's own prepare
 * handler would then wait for that hook.  The child re-initialises them
 * instead.  Their critical sections leave the data consistent at every
 * point a migration can be (between system calls), and the metadata lock
 * guards a few instructions of list surgery.
 *
 * A client registers its own handlers after these (its init calls this
 * first): its prepare handler then runs before ours, so its locks come
 * first in the order, and its child handlers run after ours.
 */
static void arena_layer_init_once(void)
{
    settings_init();
    front_cache_init_classes(); /* also initialises jemalloc */
    arena_hazard_init();
    int rc = pthread_atfork(arena_prefork, arena_postfork_parent,
                            arena_postfork_child);
    if (rc != 0)
        log_error("pthread_atfork failed: error %d; a fork during a "
                  "migration may leave the child's arena locked", rc);
}

void arena_layer_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, arena_layer_init_once);
}


static tm_arena_t *arena_new(unsigned id, const tm_placement_t *placement,
                             const arena_client_t *client)
{
    tm_arena_t *a = meta_alloc(sizeof *a);
    if (a == NULL)
        return NULL;
    /* set before the table publishes the arena: readers never see a
     * client's arena without its client */
    if (client != NULL)
        a->client = *client;
    static _Atomic uint64_t serials;
    a->serial = atomic_fetch_add(&serials, 1) + 1;
    if (hook_arena_init(&a->hooked, id, placement) != 0) {
        int err = errno;
        meta_free(a, sizeof *a);
        errno = err;
        return NULL;
    }
    arena_slot_publish(id, a);
    return a;
}

static void arena_delete(tm_arena_t *a)
{
    unsigned id = a->hooked.id;
    hook_arena_fini(&a->hooked);
    arena_slot_release(id);
    meta_free(a, sizeof *a);
}

tm_arena_t *tm_arena_create(const tm_placement_t *placement)
{
    return arena_create(placement, NULL);
}

tm_arena_t *arena_create(const tm_placement_t *placement,
                         const arena_client_t *client)
{
    arena_layer_init();
    if (!placement_valid(placement)) {
        log_warn("arena create: invalid placement (mode %d, nodes %#llx)",
                    placement ? (int)placement->mode : -1,
                    placement ? (unsigned long long)placement->nodes : 0ULL);
        errno = EINVAL;
        return NULL;
    }
    unsigned id = arena_slot_reserve();
    if (id == 0) {
        log_warn("arena create: all %d arena slots are in use",
                    TM_MAX_ARENAS);
        errno = EAGAIN;
        return NULL;
    }
    tm_arena_t *a = arena_new(id, placement, client);
    if (a == NULL) {
        int err = errno;
        arena_slot_release(id);
        errno = err;
        return NULL;
    }
    extent_hooks_t *hooks = &a->hooked.hooks;
    unsigned index;
    size_t sz = sizeof index;
    pthread_mutex_lock(&create_lock);
    mutex_lock(&a->hooked.lock);
    a->hooked.creating = true; /* what jemalloc maps now is metadata */
    mutex_unlock(&a->hooked.lock);
    int rc = mallctl("arenas.create", &index, &sz, &hooks, sizeof hooks);
    mutex_lock(&a->hooked.lock);
    a->hooked.creating = false;
    mutex_unlock(&a->hooked.lock);
    pthread_mutex_unlock(&create_lock);
    if (rc != 0) {
        log_error("arena %u: jemalloc arenas.create failed: error %d", id,
                     rc);
        arena_delete(a); /* unmaps whatever creation had mapped */
        errno = rc;
        return NULL;
    }
    a->je_index = index;
    a->flags_uncached = MALLOCX_ARENA(index) | MALLOCX_TCACHE_NONE;
    log_debug("arena %u: created as jemalloc arena %u on nodes %#llx", id,
                 index, (unsigned long long)placement->nodes);
    return a;
}

int tm_arena_destroy(tm_arena_t *a)
{
    if (a == NULL) {
        errno = EINVAL;
        return -1;
    }
    /* jemalloc requires every tcache that cached the arena's blocks to be
     * flushed first; ours are per (thread, arena), so this finds them all. */
    tcache_forget_arena(a->hooked.id);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "arena.%u.destroy", a->je_index);
    int rc = mallctl(cmd, NULL, NULL, NULL, 0);
    if (rc != 0) {
        log_error("arena %u: jemalloc %s failed: error %d", a->hooked.id,
                     cmd, rc);
        errno = rc;
        return -1;
    }
    arena_walkers_exclude();
    arena_delete(a);
    arena_walkers_admit();
    return 0;
}

/* ---------------------------------------------------------------- alloc */


void *tm_arena_aligned_alloc(tm_arena_t *a, size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return arena_mallocx(a, size, MALLOCX_ALIGN(alignment));
}


void *tm_arena_realloc(tm_arena_t *a, void *ptr, size_t size)
{
    if (ptr == NULL)
        return tm_arena_malloc(a, size);
    if (size == 0) {
        tm_free(ptr);
        return NULL;
    }
    unsigned owner = extent_map_lookup(ptr);
    if (owner == 0) {
        block_report_foreign(ptr, "tm_arena_realloc");
        errno = EINVAL;
        return NULL;
    }
    size_t old;
    if (!block_is_start(ptr, owner, &old)) {
        block_report_interior(ptr, owner, "tm_arena_realloc");
        errno = EINVAL;
        return NULL;
    }
    if (owner == a->hooked.id) {
        void *q = rallocx(ptr, size, tcache_alloc_flags(a));
        if (TM_UNLIKELY(q == NULL) && arena_pressure_release(a))
            q = rallocx(ptr, size, tcache_alloc_flags(a));
        if (TM_UNLIKELY(q == NULL))
            errno = ENOMEM;
        return q;
    }
    /* rallocx would free the old block into this arena's tcache: move it. */
    void *q = tm_arena_malloc(a, size);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, old < size ? old : size);
    tm_free(ptr);
    return q;
}

size_t tm_usable_size(const void *ptr)
{
    unsigned id = ptr ? extent_map_lookup(ptr) : 0;
    size_t usable;
    if (id == 0 || !block_is_start(ptr, id, &usable))
        return 0;
    return usable;
}

tm_arena_t *tm_arena_of(const void *ptr)
{
    return arena_by_id(extent_map_lookup(ptr));
}

unsigned tm_arena_id(const tm_arena_t *a) { return a->hooked.id; }
unsigned tm_arena_jemalloc_index(const tm_arena_t *a) { return a->je_index; }

tm_placement_t tm_arena_placement(const tm_arena_t *a)
{
    tm_arena_t *m = (tm_arena_t *)a; /* the lock is not part of the value */
    mutex_lock(&m->hooked.lock);
    tm_placement_t p = m->hooked.placement;
    mutex_unlock(&m->hooked.lock);
    return p;
}

void tm_stats_get(tm_stats_t *out)
{
    hook_counters_t *c = &hook_counters;
    *out = (tm_stats_t){
        .extents = atomic_load(&c->extents),
        .bytes_mapped = atomic_load(&c->bytes_mapped),
        .metadata_bytes = atomic_load(&meta_bytes_mapped),
        .hook_allocs = atomic_load(&c->allocs),
        .hook_alloc_failures = atomic_load(&c->alloc_failures),
        .mbind_failures = atomic_load(&c->mbind_failures),
        .unmaps = atomic_load(&c->unmaps),
        .unmap_failures = atomic_load(&c->unmap_failures),
        .splits = atomic_load(&c->splits),
        .merges = atomic_load(&c->merges),
        .purges = atomic_load(&c->purges),
        .migrations = atomic_load(&arena_migrations),
        .migrate_failures = atomic_load(&arena_migrate_failures),
    };
}
