/*
 * extent_hooks.c -- the jemalloc extent hooks of a tiermem arena.
 *
 * jemalloc asks these hooks for memory and tells them when it splits, merges,
 * purges and releases it.  Each hook keeps three things in step, under the
 * arena's mutex:
 *   - the kernel's view: what is mapped and which nodes it is bound to;
 *   - the arena's extent_set: exactly the extents jemalloc holds;
 *   - the global extent_map: which arena owns each page.
 * The mutex is also what a migration holds, so a new extent is bound to the
 * placement the arena has after any migration in progress, never before it.
 *
 * Return values follow jemalloc's contract: the bool hooks return false on
 * success and true on failure or "opted out", in which case jemalloc keeps
 * the memory as it was.
 */
#include "config.h"

#include <errno.h>
#include <sys/mman.h>

#include "extent.h"

hook_counters_t hook_counters;

#define HOOK_HUGE_PAGE ((size_t)2 << 20)

static inline hook_arena_t *hook_arena(extent_hooks_t *hooks)
{
    return (hook_arena_t *)hooks; /* `hooks` is the first member */
}

static inline void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Large extents are aligned to 2 MiB so transparent huge pages can back
 * them; the alignment path maps exactly `size` bytes either way. */
static size_t effective_alignment(size_t size, size_t alignment)
{
    if (size >= HOOK_HUGE_PAGE && alignment < HOOK_HUGE_PAGE)
        return HOOK_HUGE_PAGE;
    return alignment;
}

/* A new extent, hinted into the arena's address region right after the
 * arena's last one; where the kernel will not honour the hint, wherever it
 * puts it (aligned either way, and exactly `size` bytes mapped either way).
 * In the region only jemalloc's alignment is asked for: the extents lie
 * back to back in one VMA from a 64 GiB-aligned start, so transparent huge
 * pages can back every aligned 2 MiB of it, and rounding each big extent
 * up to 2 MiB would only leave holes that split the VMA.
 * The metadata jemalloc maps while it creates the arena stays out of the
 * region: in a VMA of its own, the allocator's bookkeeping pages are never
 * counted as the program's accesses to the arena's data. */
/* jemalloc's bookkeeping for a new arena: a block it touches sparsely.
 * Never transparent huge pages: under THP "always" each arena's block
 * became 2-6 MiB resident on the CPU's node (the fast tier) for a few
 * KiB used.  EINVAL only means a kernel without THP. */
static void *map_metadata(size_t size, size_t alignment)
{
    void *p = os_map_aligned(size, effective_alignment(size, alignment));
    if (p != NULL && os_madvise(p, size, MADV_NOHUGEPAGE) != 0 &&
        errno != EINVAL)
        log_debug("hooks: madvise(MADV_NOHUGEPAGE) of arena metadata "
                  "[%p, +%zu) failed: errno %d", p, size, errno);
    return p;
}

static void *map_new_extent(hook_arena_t *a, size_t size, size_t alignment)
{
    size_t page = os_page_size();
    size_t align = alignment > page ? alignment : page;
    mutex_lock(&a->lock);
    bool metadata = a->creating;
    uintptr_t hint = metadata ? 0 : region_reserve(a, size, align);
    mutex_unlock(&a->lock);
    if (metadata)
        return map_metadata(size, alignment);
    if (hint != 0) {
        void *p = os_map_near((void *)hint, size);
        if (p == (void *)hint)
            return p;
        count(&hook_counters.region_misses, 1);
        if (p != NULL && os_unmap(p, size) != 0)
            return NULL; /* logged; those bytes were never tracked */
    } else {
        count(&hook_counters.region_misses, 1);
    }
    return os_map_aligned(size, effective_alignment(size, alignment));
}

/* jemalloc's in-place growth: exactly at new_addr, or not at all. */
static void *map_extent_at(hook_arena_t *a, void *new_addr, size_t size,
                           size_t alignment)
{
    size_t page = os_page_size();
    size_t align = alignment > page ? alignment : page;
    if (((uintptr_t)new_addr & (align - 1)) != 0 ||
        !region_allows_fixed((uintptr_t)new_addr, size)) {
        errno = EINVAL;
        return NULL;
    }
    (void)a;
    return os_map_fixed(new_addr, size);
}

/* The consistency walk from inside the hooks, every `consistency_period`-th
 * time (debug builds; see hook_set_consistency_period).  A broken rule
 * aborts here, next to the call that broke it, not later in jemalloc. */
static _Atomic unsigned consistency_period;
#ifdef TM_DEBUG
static _Atomic unsigned consistency_calls;
#endif

void hook_set_consistency_period(unsigned n)
{
    atomic_store(&consistency_period, n);
}

static void check_consistency_now(hook_arena_t *a)
{
#ifdef TM_DEBUG
    unsigned period = atomic_load_explicit(&consistency_period,
                                           memory_order_relaxed);
    if (period == 0 || atomic_fetch_add_explicit(&consistency_calls, 1,
                                                 memory_order_relaxed) %
                               period != 0)
        return;
    debug_assert_rule(extent_set_check_consistency(&a->extents, a->id) == 0,
                   "each extent of an arena's set is mapped to that arena "
                   "and no two overlap");
#else
    (void)a;
#endif
}

size_t extent_check_consistency(hook_arena_t *a)
{
    mutex_lock(&a->lock);
    size_t problems = extent_set_check_consistency(&a->extents, a->id);
    mutex_unlock(&a->lock);
    return problems;
}

/* Bind and record a freshly mapped extent; on failure undo both.
 * Called with the arena mutex held. */
static int adopt_extent(hook_arena_t *a, void *p, size_t size)
{
    mutex_assert_owner(&a->lock);
    if (os_bind(p, size, &a->placement, 0) != 0) {
        count(&hook_counters.mbind_failures, 1);
        log_error("arena %u: mbind of new extent [%p, +%zu) to nodes "
                     "%#llx (mode %d) failed: errno %d",
                     a->id, p, size, (unsigned long long)a->placement.nodes,
                     (int)a->placement.mode, errno);
        return -1;
    }
    if (extent_set_add(&a->extents, (uintptr_t)p, size) != 0) {
        log_error("arena %u: cannot record extent [%p, +%zu): errno %d",
                     a->id, p, size, errno);
        return -1;
    }
    if (extent_map_insert(p, size, a->id) != 0) {
        int err = errno;
        log_error("arena %u: cannot map extent [%p, +%zu): errno %d",
                     a->id, p, size, err);
        (void)extent_set_remove(&a->extents, (uintptr_t)p, size);
        errno = err;
        return -1;
    }
    return 0;
}

static void *hook_alloc(extent_hooks_t *hooks, void *new_addr, size_t size,
                        size_t alignment, bool *zero, bool *commit,
                        unsigned arena_ind)
{
    (void)arena_ind;
    hook_arena_t *a = hook_arena(hooks);
    if (size == 0 || size % os_page_size() != 0) {
        count(&hook_counters.alloc_failures, 1);
        errno = EINVAL;
        return NULL;
    }
    void *p = new_addr == NULL ? map_new_extent(a, size, alignment)
                               : map_extent_at(a, new_addr, size, alignment);
    if (p == NULL) {
        /* Debug, not a warning: the caller sees NULL (malloc(1 << 46), or
         * an address-space limit, which reclaim may then relieve), and a
         * refused new_addr is routine.  Counted either way. */
        if (new_addr == NULL) {
            count(&hook_counters.alloc_failures, 1);
            log_debug("arena %u: mmap of a %zu-byte extent (alignment %zu) "
                         "failed: errno %d", a->id, size, alignment, errno);
        }
        return NULL;
    }
    mutex_lock(&a->lock);
    int rc = adopt_extent(a, p, size);
    if (rc == 0 && new_addr != NULL)
        region_note_fixed(a, (uintptr_t)p, size);
    if (rc == 0 && a->creating && a->nmetadata < HOOK_METADATA_RANGES)
        a->metadata[a->nmetadata++] =
            (extent_range_t){.start = (uintptr_t)p, .size = size};
    mutex_unlock(&a->lock);
    if (rc != 0) {
        int err = errno;
        (void)os_unmap(p, size);
        count(&hook_counters.alloc_failures, 1);
        errno = err;
        return NULL;
    }
    count(&hook_counters.allocs, 1);
    count(&hook_counters.extents, 1);
    count(&hook_counters.bytes_mapped, size);
    /* Fresh anonymous memory is zeroed, and Linux commits on touch. */
    *zero = true;
    *commit = true;
    return p;
}

/* Unmap a tracked range (possibly several records).  The map entry goes
 * first, so no lookup can name this arena for an address the kernel may
 * already be handing to someone else.  Called with the arena mutex held. */
static int release_extent(hook_arena_t *a, void *addr, size_t size)
{
    mutex_assert_owner(&a->lock);
    if (!extent_set_contains(&a->extents, (uintptr_t)addr, size)) {
        log_error("arena %u: asked to unmap untracked [%p, +%zu); "
                     "refusing", a->id, addr, size);
        return -1;
    }
    extent_map_remove(addr, size);
    if (os_unmap(addr, size) != 0) {
        int err = errno;
        count(&hook_counters.unmap_failures, 1);
        (void)extent_map_insert(addr, size, a->id); /* still ours */
        log_error("arena %u: munmap of extent [%p, +%zu) failed: errno %d",
                     a->id, addr, size, err);
        return -1;
    }
    size_t n = a->extents.count;
    (void)extent_set_remove(&a->extents, (uintptr_t)addr, size);
    count(&hook_counters.unmaps, 1);
    atomic_fetch_sub_explicit(&hook_counters.extents, n - a->extents.count,
                              memory_order_relaxed);
    atomic_fetch_sub_explicit(&hook_counters.bytes_mapped, size,
                              memory_order_relaxed);
    return 0;
}

/*
 * Why dalloc opts out, so an arena never gives address space back while it
 * lives: jemalloc runs with opt.retain, and then it trusts that the first
 * extent of every mapping (its "head") stays put.  It refuses to merge an
 * extent into a following head, and that is the only thing that stops two
 * arenas' extents from merging.  If we unmapped a head piece and the kernel
 * handed the hole to another arena, that arena's new extent could merge with
 * our leftover tail: two arenas sharing an extent, and jemalloc's heaps
 * corrupt.  (We saw exactly this under the storm test.)  So dalloc refuses,
 * jemalloc purges the pages instead (resident memory still shrinks, and the
 * mbind policy stays), and every byte stays tracked until the arena is
 * destroyed -- which is what jemalloc's own hooks do on Linux.
 */
static bool hook_dalloc(extent_hooks_t *hooks, void *addr, size_t size,
                        bool committed, unsigned arena_ind)
{
    (void)committed;
    (void)arena_ind;
    hook_arena_t *a = hook_arena(hooks);
    mutex_lock(&a->lock);
    bool tracked = extent_set_contains(&a->extents, (uintptr_t)addr, size);
    mutex_unlock(&a->lock);
    if (!tracked) {
        log_error("arena %u: dalloc of untracked [%p, +%zu)", a->id, addr,
                     size);
        debug_assert(!"dalloc of an untracked range");
    }
    return true;
}

/* jemalloc destroys an arena's retained extents one by one.  Unmapping each
 * at once would open the same holes dalloc avoids while the rest of the
 * arena is still registered with jemalloc, so the bytes stay tracked and
 * hook_arena_fini unmaps them all once jemalloc has let go of the arena. */
static void hook_destroy(extent_hooks_t *hooks, void *addr, size_t size,
                         bool committed, unsigned arena_ind)
{
    (void)hook_dalloc(hooks, addr, size, committed, arena_ind);
#ifdef TM_DEBUG
    hook_arena_t *a = hook_arena(hooks);
    mutex_lock(&a->lock);
    check_consistency_now(a);
    mutex_unlock(&a->lock);
#endif
}

/* Extents are mapped read-write and Linux commits on first touch, so they
 * are always committed. */
static bool hook_commit(extent_hooks_t *hooks, void *addr, size_t size,
                        size_t offset, size_t length, unsigned arena_ind)
{
    (void)size;
    (void)arena_ind;
    hook_arena_t *a = hook_arena(hooks);
    return length == 0 || extent_map_lookup((char *)addr + offset) != a->id;
}

/* Opt out, as jemalloc's own hooks do on Linux with overcommit: replacing
 * the mapping with PROT_NONE would drop its NUMA policy, and jemalloc falls
 * back to purging, which releases the pages just as well. */
static bool hook_decommit(extent_hooks_t *hooks, void *addr, size_t size,
                          size_t offset, size_t length, unsigned arena_ind)
{
    (void)hooks, (void)addr, (void)size, (void)offset, (void)length,
        (void)arena_ind;
    return true;
}

/* madvise keeps the mapping and therefore its mbind policy: purged pages
 * refault on the arena's nodes. */
static bool purge(extent_hooks_t *hooks, void *addr, size_t offset,
                  size_t length, int advice)
{
    hook_arena_t *a = hook_arena(hooks);
    char *start = (char *)addr + offset;
    mutex_lock(&a->lock);
    int rc = os_madvise(start, length, advice);
    mutex_unlock(&a->lock);
    if (rc != 0) {
        if (errno != EINVAL) /* EINVAL: MADV_FREE unsupported, routine */
            log_warn("arena %u: madvise(%p, %zu, %d) failed: errno %d",
                        a->id, (void *)start, length, advice, errno);
        return true;
    }
    count(&hook_counters.purges, 1);
    return false;
}

static bool hook_purge_lazy(extent_hooks_t *hooks, void *addr, size_t size,
                            size_t offset, size_t length, unsigned arena_ind)
{
    (void)size;
    (void)arena_ind;
#ifdef MADV_FREE
    return purge(hooks, addr, offset, length, MADV_FREE);
#else
    (void)hooks, (void)addr, (void)offset, (void)length;
    return true;
#endif
}

static bool hook_purge_forced(extent_hooks_t *hooks, void *addr, size_t size,
                              size_t offset, size_t length, unsigned arena_ind)
{
    (void)size;
    (void)arena_ind;
    return purge(hooks, addr, offset, length, MADV_DONTNEED);
}

static bool hook_split(extent_hooks_t *hooks, void *addr, size_t size,
                       size_t size_a, size_t size_b, bool committed,
                       unsigned arena_ind)
{
    (void)size_b;
    (void)committed;
    (void)arena_ind;
    hook_arena_t *a = hook_arena(hooks);
    mutex_lock(&a->lock);
    int rc = extent_set_split(&a->extents, (uintptr_t)addr, size, size_a);
    check_consistency_now(a);
    mutex_unlock(&a->lock);
    if (rc != 0) {
        log_error("arena %u: split of [%p, +%zu) at %zu refused: errno %d",
                     a->id, addr, size, size_a, errno);
        return true;
    }
    count(&hook_counters.splits, 1);
    count(&hook_counters.extents, 1);
    return false;
}

static bool hook_merge(extent_hooks_t *hooks, void *addr_a, size_t size_a,
                       void *addr_b, size_t size_b, bool committed,
                       unsigned arena_ind)
{
    (void)committed;
    (void)arena_ind;
    hook_arena_t *a = hook_arena(hooks);
    mutex_lock(&a->lock);
    int rc = extent_set_merge(&a->extents, (uintptr_t)addr_a, size_a,
                              (uintptr_t)addr_b, size_b);
    check_consistency_now(a);
    mutex_unlock(&a->lock);
    if (rc != 0) {
        log_error("arena %u: merge of [%p, +%zu) and [%p, +%zu) refused: "
                     "errno %d", a->id, addr_a, size_a, addr_b, size_b, errno);
        return true;
    }
    count(&hook_counters.merges, 1);
    atomic_fetch_sub_explicit(&hook_counters.extents, 1, memory_order_relaxed);
    return false;
}

static const extent_hooks_t hook_table = {
    .alloc = hook_alloc,
    .dalloc = hook_dalloc,
    .destroy = hook_destroy,
    .commit = hook_commit,
    .decommit = hook_decommit,
    .purge_lazy = hook_purge_lazy,
    .purge_forced = hook_purge_forced,
    .split = hook_split,
    .merge = hook_merge,
};

int hook_arena_init(hook_arena_t *a, unsigned id,
                    const tm_placement_t *placement)
{
    if (!placement_valid(placement) || id == 0 || id > TM_MAX_ARENAS) {
        errno = EINVAL;
        return -1;
    }
    a->hooks = hook_table;
    int rc = mutex_init(&a->lock);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    a->id = id;
    a->placement = *placement;
    a->extents = (extent_set_t){0};
#ifdef TM_DEBUG
    a->extents.guard = &a->lock;
#endif
    a->unbound = 0;
    a->region_next = a->region_end = 0;
    return 0;
}

void hook_arena_fork_child(hook_arena_t *a)
{
    (void)mutex_init(&a->lock);
}

void hook_arena_fini(hook_arena_t *a)
{
    mutex_lock(&a->lock);
    log_debug("arena %u: unmapping %zu extents (%zu bytes)", a->id,
                 a->extents.count, a->extents.bytes);
    extent_range_t r;
    while (extent_set_first(&a->extents, &r)) {
        if (release_extent(a, (void *)r.start, r.size) == 0)
            continue;
        /* Logged by release_extent.  The arena's slot will be reused, so
         * the bytes must not keep its id: forget them (leaked, not lost). */
        log_error("arena %u: leaking [%p, +%zu) after a failed munmap",
                     a->id, (void *)r.start, r.size);
        extent_map_remove((void *)r.start, r.size);
        (void)extent_set_remove(&a->extents, r.start, r.size);
    }
    debug_assert_rule(a->extents.count == 0 && a->extents.bytes == 0,
                   "a finished arena's extent set is empty");
    mutex_unlock(&a->lock);
    mutex_destroy(&a->lock);
}
