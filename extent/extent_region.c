/*
 * extent_region.c -- where in the address space an arena's extents go.
 *
 * Why this exists: the kernel merges adjacent anonymous mappings that have
 * the same protection, flags and NUMA policy into one VMA.  Two arenas on
 * the same tier have the same policy, so with kernel-chosen addresses
 * (which are handed out top-down, each mapping right below the last) their
 * extents would share VMAs.  Whatever the kernel reports per VMA -- the
 * accessed pages in smaps, pages per node in numa_maps -- would then blur
 * the two arenas together, and the arena is the unit the policy moves.
 *
 * So each arena places its extents in address regions of its own: 64 GiB
 * chunks claimed from a window [17 TiB, 81 TiB) that the kernel never
 * reaches on its own (its mmap area grows down from near 128 TiB, a PIE
 * executable sits near 85 TiB, brk and a fixed executable far below), and
 * that AddressSanitizer leaves free (its shadow ends just past 16 TiB, its
 * allocator starts at 96 TiB).  An arena asks for a chunk when it maps
 * its first extent and again whenever its chunk is full; a chunk is never
 * shared, and chunks are claimed in increasing order, so the extents of
 * two arenas are never adjacent: there is always unmapped space between.
 *
 * The cost.  Nothing is mapped or reserved for a chunk: the address is
 * only a hint to mmap, so every byte mapped is still exactly an extent.
 * No extra VMA is made: an arena's extents land next to each other and
 * merge into fewer VMAs than kernel-chosen addresses give, and arenas stay
 * apart by holes, not guard mappings.  Each arena does start its own page
 * tables (a few KiB each).  When the window is used up (1024 chunk claims)
 * or the kernel refuses a hint (an address sanitizer that keeps its own
 * map, a program that mapped there first), the extent goes where the
 * kernel puts it, exactly as before; hook_counters.region_misses counts
 * those, and readers of per-VMA figures must cope with shared VMAs.
 */
#include "config.h"

#include <errno.h>
#include <sys/mman.h>

#include "extent.h"

#define REGION_WINDOW_START ((uintptr_t)17 << 40)
#define REGION_WINDOW_END ((uintptr_t)81 << 40)
#define REGION_CHUNK ((uintptr_t)64 << 30)

static _Atomic uintptr_t region_next_chunk = REGION_WINDOW_START;

static uintptr_t align_up(uintptr_t x, size_t alignment)
{
    return (x + alignment - 1) & ~(uintptr_t)(alignment - 1);
}

/* Claim enough whole chunks for `bytes`; 0 when the window is used up. */
static uintptr_t region_claim(size_t bytes, uintptr_t *end)
{
    uintptr_t want = align_up(bytes, REGION_CHUNK);
    if (want == 0 || want > REGION_WINDOW_END - REGION_WINDOW_START)
        return 0;
    uintptr_t start = atomic_load_explicit(&region_next_chunk,
                                           memory_order_relaxed);
    do {
        if (start > REGION_WINDOW_END - want)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(
        &region_next_chunk, &start, start + want, memory_order_relaxed,
        memory_order_relaxed));
    *end = start + want;
    return start;
}

uintptr_t region_reserve(hook_arena_t *a, size_t size, size_t alignment)
{
    mutex_assert_owner(&a->lock);
    uintptr_t hint = align_up(a->region_next, alignment);
    if (a->region_next == 0 || hint < a->region_next ||
        hint > a->region_end || size > a->region_end - hint) {
        /* The current chunk cannot hold it: a fresh one.  Aligning inside
         * a fresh chunk never fails: chunks are 64 GiB aligned and jemalloc
         * alignments are far smaller (bigger ones go to the kernel). */
        if (alignment > REGION_CHUNK)
            return 0;
        uintptr_t end;
        uintptr_t start = region_claim(size, &end);
        if (start == 0)
            return 0;
        a->region_next = start;
        a->region_end = end;
        hint = start;
    }
    a->region_next = hint + size;
    return hint;
}

bool region_allows_fixed(uintptr_t addr, size_t size)
{
    if (addr < REGION_WINDOW_START || addr >= REGION_WINDOW_END)
        return true; /* a kernel-placed extent's neighbourhood */
    /* jemalloc asks for an address right past one of the arena's extents.
     * Inside a chunk that is the arena's own space; at or across a chunk
     * boundary it is the next chunk, which may be another arena's. */
    uintptr_t last = addr + size - 1;
    return size > 0 && last > addr && addr % REGION_CHUNK != 0 &&
           addr / REGION_CHUNK == last / REGION_CHUNK;
}

void region_note_fixed(hook_arena_t *a, uintptr_t addr, size_t size)
{
    mutex_assert_owner(&a->lock);
    if (addr >= a->region_next && addr < a->region_end)
        a->region_next = addr + size;
}
