/*
 * extent_map.c -- which arena owns an address.
 *
 * A two-level radix over 4 KiB pages of the 47-bit user address space holds
 * a 16-bit arena id per page.  Lookup is two dependent loads and no lock, so
 * the free path and the profiler (which attributes sampled addresses) can ask
 * from any thread while other threads map and unmap.
 *
 * Why pages and not extents: jemalloc splits and merges extents constantly,
 * but never moves bytes between arenas, so ownership changes only when an
 * extent is mapped or unmapped.  split and merge therefore never touch this
 * map; the exact extent boundaries live in each arena's extent_set.
 *
 * Leaves (512 KiB, covering 1 GiB) are mapped on first use and never freed,
 * so a reader never follows a pointer to unmapped metadata.
 */
#include "config.h"

#include <errno.h>
#include <sys/mman.h>

#include "extent.h"

#define MAP_PAGE_SHIFT 12
#define MAP_VA_BITS 47
#define MAP_LEAF_BITS 18
#define MAP_ROOT_BITS (MAP_VA_BITS - MAP_PAGE_SHIFT - MAP_LEAF_BITS)
#define MAP_LEAF_ENTRIES ((size_t)1 << MAP_LEAF_BITS)
#define MAP_ROOT_ENTRIES ((size_t)1 << MAP_ROOT_BITS)

typedef struct map_leaf {
    _Atomic uint16_t owner[MAP_LEAF_ENTRIES];
} map_leaf_t;

static _Atomic(map_leaf_t *) map_root[MAP_ROOT_ENTRIES];

static inline size_t root_index(uintptr_t page)
{
    return page >> MAP_LEAF_BITS;
}
static inline size_t leaf_index(uintptr_t page)
{
    return page & (MAP_LEAF_ENTRIES - 1);
}

static map_leaf_t *leaf_get_or_create(size_t ri)
{
    map_leaf_t *leaf = atomic_load_explicit(&map_root[ri], memory_order_acquire);
    if (leaf != NULL)
        return leaf;
    void *p = mmap(NULL, sizeof(map_leaf_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        log_error("extent map: mmap of a %zu-byte leaf failed: errno %d",
                     sizeof(map_leaf_t), errno);
        return NULL;
    }
    map_leaf_t *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&map_root[ri], &expected, p,
                                                memory_order_acq_rel,
                                                memory_order_acquire)) {
        atomic_fetch_add(&meta_bytes_mapped, sizeof(map_leaf_t));
        return p;
    }
    /* Another thread published a leaf first: use it, drop ours. */
    if (munmap(p, sizeof(map_leaf_t)) != 0)
        log_error("extent map: munmap of a spare leaf failed: errno %d",
                     errno);
    return expected;
}

static bool range_ok(uintptr_t start, size_t size)
{
    return size > 0 && start + size > start &&
           start + size <= ((uintptr_t)1 << MAP_VA_BITS);
}

/* Store `id` for every page of [start, start + size). */
static int map_fill(uintptr_t start, size_t size, uint16_t id, bool create)
{
    uintptr_t page = start >> MAP_PAGE_SHIFT;
    uintptr_t end = (start + size + ((1u << MAP_PAGE_SHIFT) - 1)) >>
                    MAP_PAGE_SHIFT;
    while (page < end) {
        size_t ri = root_index(page);
        map_leaf_t *leaf = create ? leaf_get_or_create(ri)
                                  : atomic_load_explicit(&map_root[ri],
                                                         memory_order_acquire);
        uintptr_t leaf_end = (uintptr_t)(ri + 1) << MAP_LEAF_BITS;
        uintptr_t stop = end < leaf_end ? end : leaf_end;
        if (leaf == NULL) {
            if (create)
                return -1;
            page = stop; /* nothing recorded there */
            continue;
        }
        for (; page < stop; page++) {
            debug_assert(!create ||
                      atomic_load_explicit(&leaf->owner[leaf_index(page)],
                                           memory_order_relaxed) == 0);
            atomic_store_explicit(&leaf->owner[leaf_index(page)], id,
                                  memory_order_release);
        }
    }
    return 0;
}

int extent_map_insert(const void *addr, size_t size, unsigned arena_id)
{
    uintptr_t start = (uintptr_t)addr;
    debug_assert_rule((start & ((1u << MAP_PAGE_SHIFT) - 1)) == 0,
                   "extent map ranges are whole pages of user space");
    if (!range_ok(start, size) || arena_id == 0 || arena_id > TM_MAX_ARENAS) {
        errno = EINVAL;
        return -1;
    }
    if (map_fill(start, size, (uint16_t)arena_id, true) != 0) {
        map_fill(start, size, 0, false); /* undo the part that was stored */
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void extent_map_remove(const void *addr, size_t size)
{
    uintptr_t start = (uintptr_t)addr;
    debug_assert_rule((start & ((1u << MAP_PAGE_SHIFT) - 1)) == 0,
                   "extent map ranges are whole pages of user space");
    if (range_ok(start, size))
        map_fill(start, size, 0, false);
}

unsigned extent_map_lookup(const void *addr)
{
    uintptr_t page = (uintptr_t)addr >> MAP_PAGE_SHIFT;
    size_t ri = root_index(page);
    if (TM_UNLIKELY(ri >= MAP_ROOT_ENTRIES))
        return 0;
    map_leaf_t *leaf = atomic_load_explicit(&map_root[ri], memory_order_acquire);
    if (leaf == NULL)
        return 0;
    return atomic_load_explicit(&leaf->owner[leaf_index(page)],
                                memory_order_acquire);
}
