/*
 * extent.h -- what the extent layer offers: the memory under every arena.
 *
 * The global address -> arena map (extent_map.c), each arena's exact set of
 * live extents (extent_set.c), and the jemalloc extent hooks that tie them
 * together (extent_hooks.c).
 *
 * The invariant this layer exists for: every byte an extent hook maps is
 * exactly what it tracks, binds, migrates and later unmaps.
 *
 * Nothing here calls into jemalloc: jemalloc calls these hooks while holding
 * its own locks, so a hook that allocated through jemalloc could deadlock.
 */
#ifndef TM_EXTENT_H
#define TM_EXTENT_H

#include "base.h"

/* ------------------------------------------------------------------ */
/* extent_map.c: address -> arena id, for any thread, lock-free reads   */
/* ------------------------------------------------------------------ */

/* Page-granular radix over the 47-bit user address space: O(1) lookup,
 * two loads.  Ids are 1..TM_MAX_ARENAS; 0 means "not tiermem's". */
int extent_map_insert(const void *addr, size_t size, unsigned arena_id);
void extent_map_remove(const void *addr, size_t size);
unsigned extent_map_lookup(const void *addr);

/* ------------------------------------------------------------------ */
/* extent_set.c: one arena's live extents, exactly as jemalloc sees them */
/* ------------------------------------------------------------------ */

typedef struct extent_record extent_record_t;
typedef struct extent_set {
    extent_record_t *by_addr; /* uthash head, keyed by start address */
    size_t count;
    size_t bytes;
#ifdef TM_DEBUG
    /* The owning arena's mutex, which every call must hold (NULL: a set
     * no arena owns, as in unit tests). */
    const mutex_t *guard;
#endif
} extent_set_t;

typedef struct extent_range {
    uintptr_t start;
    size_t size;
} extent_range_t;

/* All of these run under the owning arena's mutex. */
int extent_set_add(extent_set_t *set, uintptr_t start, size_t size);
/* Remove exactly [start, start + size), which may span several records
 * that jemalloc merged; -1 (ENOENT) when the range is not fully tracked. */
int extent_set_remove(extent_set_t *set, uintptr_t start, size_t size);
int extent_set_split(extent_set_t *set, uintptr_t start, size_t size,
                     size_t size_a);
int extent_set_merge(extent_set_t *set, uintptr_t a, size_t size_a,
                     uintptr_t b, size_t size_b);
bool extent_set_contains(const extent_set_t *set, uintptr_t start,
                         size_t size);
/* The live extents as ranges, ascending, adjacent ones coalesced.  `out`
 * must hold set->count entries; returns how many ranges it wrote. */
size_t extent_set_ranges(const extent_set_t *set, extent_range_t *out);
/* Some record of the set (the first in hash order); false when empty. */
bool extent_set_first(const extent_set_t *set, extent_range_t *out);
void extent_set_clear(extent_set_t *set);
/* The consistency walk (any build; debug builds also run it from the hooks,
 * see hook_set_consistency_period): the set's records do not overlap, and
 * every page of every record is mapped to arena `id` in the extent map (so
 * no two arenas' sets share a page).  Returns the number of problems found,
 * each logged as an error naming the arena and the range.  Caller holds the
 * owning arena's mutex. */
size_t extent_set_check_consistency(const extent_set_t *set, unsigned id);

/* ------------------------------------------------------------------ */
/* extent_hooks.c: the hooks jemalloc calls                             */
/* ------------------------------------------------------------------ */

/* The part of an arena the hooks own.  `hooks` must stay first: jemalloc
 * hands the hook functions a pointer to it. */
#define HOOK_METADATA_RANGES 4
typedef struct hook_arena {
    extent_hooks_t hooks;
    mutex_t lock;      /* hooks and migration of this arena take turns */
    unsigned id;          /* 1..TM_MAX_ARENAS, the extent map's value */
    tm_placement_t placement;
    extent_set_t extents;
    size_t unbound;       /* extents whose last mbind failed */
    /* jemalloc keeps an arena's own metadata (its base block: the arena
     * structure, bins, extent records) in memory it asks the arena's hooks
     * for, first while the arena is being created.  The extents mapped
     * while `creating` is set are recorded here, so samplers can tell the
     * allocator's writes from the program's.  Both under `lock`. */
    bool creating;
    unsigned nmetadata;
    extent_range_t metadata[HOOK_METADATA_RANGES];
    /* The arena's current address chunk (extent_region.c), under `lock`:
     * new extents are hinted at region_next; 0 before the first. */
    uintptr_t region_next, region_end;
} hook_arena_t;

int hook_arena_init(hook_arena_t *arena, unsigned id,
                    const tm_placement_t *placement);
/* In a fork child: a migration in another thread may have held the lock. */
void hook_arena_fork_child(hook_arena_t *arena);
/* Unmap every extent of the arena.  Call after jemalloc destroyed it: the
 * hooks keep all address space mapped while the arena lives (see dalloc). */
void hook_arena_fini(hook_arena_t *arena);
/* extent_set_check_consistency for the arena, under its mutex. */
size_t extent_check_consistency(hook_arena_t *arena);
/* Debug builds: also run the consistency walk inside the hooks, after
 * every n-th split, merge or destroy of any arena (0, the default: never;
 * it is linear in the arena's pages, so the stress tests turn it on, not
 * every debug run).  Does nothing in release builds. */
void hook_set_consistency_period(unsigned n);

/* Global counters, read with tm_stats_get.  region_misses: extents the
 * kernel did not place in their arena's address region (extent_region.c). */
typedef struct hook_counters {
    _Atomic uint64_t extents, bytes_mapped, allocs, alloc_failures,
        mbind_failures, unmaps, unmap_failures, splits, merges, purges,
        region_misses;
} hook_counters_t;

/* ------------------------------------------------------------------ */
/* extent_region.c: each arena's extents in address chunks of its own,  */
/* so no VMA ever holds two arenas' pages (the file says why)           */
/* ------------------------------------------------------------------ */

/* The address to hint the next extent of `size` bytes at, aligned, taken
 * from the arena's chunk (claiming a fresh one when it is full); 0 when no
 * chunk is left.  Caller holds the arena's mutex. */
uintptr_t region_reserve(hook_arena_t *arena, size_t size, size_t alignment);
/* May jemalloc's in-place extension at addr be mapped without touching
 * another arena's chunk? */
bool region_allows_fixed(uintptr_t addr, size_t size);
/* An extent was mapped at a fixed address: keep the hints past it. */
void region_note_fixed(hook_arena_t *arena, uintptr_t addr, size_t size);
extern hook_counters_t hook_counters;

#endif /* TM_EXTENT_H */
