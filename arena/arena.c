/*
 * arena.c -- tiermem arenas: creation, allocation, ownership, destruction.
 *
 * An arena is a jemalloc arena created with tiermem's extent hooks, plus a
 * slot in the arena table.  The slot id (1..4095) is what the extent map
 * stores per page, so "who owns this pointer" is a map lookup and a table
 * read.  The slot is taken before jemalloc creates the arena, because
 * jemalloc maps the arena's own metadata through the hooks while creating
 * it.
 *
 * Fast path: mallocx/dallocx with the flags of this thread's explicit tcache
 * for the arena (tcache.c); free finds the arena through the extent map.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "sites.h" /* FIXME(issue 13 part 1): the arena layer must not call up */

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
/* One arenas.create at a time.  Creation is rare, and jemalloc publishes a
 * new arena's metadata with its own (uninstrumented) atomics: two threads
 * creating arenas at once looked like a data race to ThreadSanitizer. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(tm_arena_t *) arena_table[TM_MAX_ARENAS + 1];
/* Walkers of the table (the profiler and the policy, both on the profiling
 * thread) hold this; destroy holds it while it frees an arena, so an arena
 * a walker found stays valid until arena_walk_end.  A mutex, not a rwlock:
 * there is one walker at a time anyway, and a fork child can release a
 * mutex its forking thread took, which glibc's rwlock does not allow (the
 * child's thread has a new id, so its unlock counts as a reader's). */
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;
static bool slot_taken[TM_MAX_ARENAS + 1];
static _Atomic bool foreign_free_logged;

_Atomic uint64_t arena_migrations, arena_migrate_failures;

tm_placement_t tm_placement_node(tm_mode_t mode, unsigned node)
{
    tm_placement_t p = {mode, node < TM_MAX_NODES ? (uint64_t)1 << node : 0};
    return p;
}

static __thread bool walking __attribute__((tls_model("initial-exec")));

void arena_walk_begin(void)
{
    /* a nested begin would wait for ever on walk_lock, which it holds */
    debug_assert_rule(!walking, "arena walks do not nest");
    pthread_mutex_lock(&walk_lock);
    walking = true;
}

void arena_walk_end(void)
{
    debug_assert_rule(walking, "an arena walk ends on the thread that began it");
    walking = false;
    pthread_mutex_unlock(&walk_lock);
}

bool arena_walking_here(void) { return walking; }

void arena_table_prefork(void)
{
    pthread_mutex_lock(&walk_lock);
    pthread_mutex_lock(&create_lock);
    pthread_mutex_lock(&table_lock);
}

void arena_table_postfork_parent(void)
{
    pthread_mutex_unlock(&table_lock);
    pthread_mutex_unlock(&create_lock);
    pthread_mutex_unlock(&walk_lock);
}

void arena_table_postfork_child(void)
{
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = atomic_load(&arena_table[id]);
        if (a != NULL)
            hook_arena_fork_child(&a->hooked);
    }
    pthread_mutex_unlock(&table_lock);
    pthread_mutex_unlock(&create_lock);
    /* the forking thread took it in prefork, and is the one thread left */
    pthread_mutex_unlock(&walk_lock);
}

tm_arena_t *arena_by_id(unsigned id)
{
    if (id == 0 || id > TM_MAX_ARENAS)
        return NULL;
    return atomic_load_explicit(&arena_table[id], memory_order_acquire);
}

static unsigned slot_reserve(void)
{
    unsigned id = 0;
    pthread_mutex_lock(&table_lock);
    for (unsigned i = 1; i <= TM_MAX_ARENAS; i++) {
        if (!slot_taken[i]) {
            slot_taken[i] = true;
            id = i;
            break;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return id;
}

static void slot_release(unsigned id)
{
    pthread_mutex_lock(&table_lock);
    atomic_store_explicit(&arena_table[id], NULL, memory_order_release);
    slot_taken[id] = false;
    pthread_mutex_unlock(&table_lock);
}

static tm_arena_t *arena_new(unsigned id, const tm_placement_t *placement,
                             arena_kind_t kind, uint32_t owner)
{
    tm_arena_t *a = meta_alloc(sizeof *a);
    if (a == NULL)
        return NULL;
    /* set before the table publishes the arena: readers never see a
     * site's arena as a user arena */
    a->kind = kind;
    a->owner_site = owner;
    a->reclaimable = kind == ARENA_SITE && owner != SITE_UNSITED;
    static _Atomic uint64_t serials;
    a->serial = atomic_fetch_add(&serials, 1) + 1;
    if (hook_arena_init(&a->hooked, id, placement) != 0) {
        int err = errno;
        meta_free(a, sizeof *a);
        errno = err;
        return NULL;
    }
    atomic_store_explicit(&arena_table[id], a, memory_order_release);
    return a;
}

static void arena_delete(tm_arena_t *a)
{
    unsigned id = a->hooked.id;
    hook_arena_fini(&a->hooked);
    slot_release(id);
    meta_free(a, sizeof *a);
}

tm_arena_t *tm_arena_create(const tm_placement_t *placement)
{
    return arena_create(placement, ARENA_USER, 0);
}

tm_arena_t *arena_create(const tm_placement_t *placement, arena_kind_t kind,
                         uint32_t owner)
{
    runtime_init();
    if (!placement_valid(placement)) {
        log_warn("arena create: invalid placement (mode %d, nodes %#llx)",
                    placement ? (int)placement->mode : -1,
                    placement ? (unsigned long long)placement->nodes : 0ULL);
        errno = EINVAL;
        return NULL;
    }
    unsigned id = slot_reserve();
    if (id == 0) {
        log_warn("arena create: all %d arena slots are in use",
                    TM_MAX_ARENAS);
        errno = EAGAIN;
        return NULL;
    }
    tm_arena_t *a = arena_new(id, placement, kind, owner);
    if (a == NULL) {
        int err = errno;
        slot_release(id);
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
    debug_assert_rule(!walking, "a walker does not destroy arenas");
    pthread_mutex_lock(&walk_lock);
    arena_delete(a);
    pthread_mutex_unlock(&walk_lock);
    return 0;
}

/* ---------------------------------------------------------------- alloc */

static void *checked(void *p)
{
    if (TM_UNLIKELY(p == NULL))
        errno = ENOMEM;
    return p;
}

/* An allocation from `a` failed, typically because a mapping did (an
 * address-space limit): give back the address space of empty sites'
 * arenas.  True if any was unmapped, so a retry may succeed. */
static bool reclaim_for_retry(const tm_arena_t *a)
{
    return site_arenas_reclaim(false, a) > 0;
}

/* mallocx from a's jemalloc arena (a zero size as one byte), retried once
 * after reclaim when it fails; NULL with errno ENOMEM. */
static void *arena_mallocx(tm_arena_t *a, size_t size, int flags)
{
    size = size ? size : 1;
    void *p = mallocx(size, tcache_alloc_flags(a) | flags);
    if (TM_UNLIKELY(p == NULL) && reclaim_for_retry(a))
        p = mallocx(size, tcache_alloc_flags(a) | flags);
    return checked(p);
}

/* The fast path: a block from this thread's front cache for the arena. */
static inline void *front_alloc(tm_arena_t *a, size_t size)
{
    front_cache_t *fc = front_cache_get(a->hooked.id);
    if (TM_UNLIKELY(fc == NULL))
        return NULL;
    unsigned cls = front_class_of[(size + 7) >> 3];
    front_bin_t *bin = &fc->bin[cls];
    if (TM_LIKELY(bin->count > 0))
        return bin->slot[--bin->count];
    return front_cache_refill(bin, front_class_size[cls],
                              tcache_alloc_flags(a));
}

void *tm_arena_malloc(tm_arena_t *a, size_t size)
{
    if (TM_LIKELY(size <= FRONT_MAX_SIZE)) {
        void *p = front_alloc(a, size);
        if (TM_LIKELY(p != NULL))
            return p;
    }
    return arena_mallocx(a, size, 0);
}

void *tm_arena_calloc(tm_arena_t *a, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (total <= FRONT_MAX_SIZE) {
        void *p = front_alloc(a, total);
        if (p != NULL)
            return memset(p, 0, total);
    }
    return arena_mallocx(a, total, MALLOCX_ZERO);
}

void *tm_arena_aligned_alloc(tm_arena_t *a, size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return arena_mallocx(a, size, MALLOCX_ALIGN(alignment));
}

static int free_flags(unsigned id)
{
    thread_tcaches_t *t = tcaches_here;
    int f = t ? atomic_load_explicit(&t->flags[id], memory_order_relaxed) : 0;
    if (TM_UNLIKELY(f == 0)) {
        tm_arena_t *a = arena_by_id(id);
        f = a ? tcache_flags_slow(a) : MALLOCX_TCACHE_NONE;
    }
    return f & TCACHE_FLAGS_MASK;
}

static void report_foreign(const void *ptr, const char *what)
{
    if (!atomic_exchange(&foreign_free_logged, true))
        log_error("%s(%p): not a tiermem allocation; ignored (reported "
                     "once)", what, ptr);
}

void tm_free(void *ptr)
{
    if (ptr == NULL)
        return;
    unsigned id = extent_map_lookup(ptr);
    if (TM_UNLIKELY(id == 0)) {
        report_foreign(ptr, "tm_free");
        return;
    }
    size_t usable;
    if (TM_UNLIKELY(!block_is_start(ptr, id, &usable))) {
        block_report_interior(ptr, id, "tm_free");
        return;
    }
    tm_arena_t *a = arena_by_id(id);
    if (a != NULL && a->kind != ARENA_USER) /* keep the site's stats right */
        site_account_free(a, ptr, usable);
    arena_free_known(ptr, id, usable);
}

/* The block is back in its arena (or this thread's cache of it): drop
 * the hazard site_account_free set.  Inline: every free passes here. */
static inline void arena_hazard_release(void)
{
    thread_tcaches_t *t = tcaches_here;
    if (TM_UNLIKELY(t == NULL ||
                    atomic_load_explicit(&t->hazard, memory_order_relaxed)))
        arena_hazard_clear();
}

/* usable == 0: not known yet. */
void arena_free_known(void *ptr, unsigned id, size_t usable)
{
    front_cache_t *fc = front_cache_get(id);
    if (TM_LIKELY(fc != NULL)) {
        /* a class size: a multiple of 8 */
        size_t size = usable ? usable : sallocx(ptr, 0);
        if (TM_LIKELY(size <= FRONT_MAX_SIZE)) {
            front_bin_t *bin = &fc->bin[front_class_of[size >> 3]];
            if (TM_UNLIKELY(bin->count == bin->cap))
                front_cache_spill(bin, free_flags(id));
            bin->slot[bin->count++] = ptr;
            arena_hazard_release();
            return;
        }
    }
    dallocx(ptr, free_flags(id));
    arena_hazard_release();
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
        report_foreign(ptr, "tm_arena_realloc");
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
        if (TM_UNLIKELY(q == NULL) && reclaim_for_retry(a))
            q = rallocx(ptr, size, tcache_alloc_flags(a));
        return checked(q);
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
