/*
 * block_check.c -- is a pointer the start of a block an arena handed out?
 *
 * free, realloc and malloc_usable_size must not hand jemalloc a pointer
 * into the middle of a block: for a large block jemalloc's page map has
 * nothing for the inner pages (sallocx reads size class 0, dallocx follows a
 * NULL extent and crashes), and a small region's neighbour would be handed
 * out twice.  The extent map already tells that a pointer is inside one of
 * an arena's extents; this file decides whether it is where a block starts,
 * from jemalloc 5.3's layout:
 *
 *   - small regions sit at slab_base + k * size, and a slab is
 *     slab_size / PAGE pages (odd part of the size: 48 B -> 3 pages);
 *   - a large block is its extent's first page plus, with
 *     opt.cache_oblivious, a random cache-line offset inside that page
 *     (the extent is one page longer than the block).
 *
 * The fast path is arithmetic only, and exact where the slab base does not
 * matter: a class that is a power of two up to a page has its regions at
 * exactly the addresses aligned to it.  For the other classes the region
 * grid depends on where the slab starts; that start is known only to the
 * arena's extent set, which is read under the arena's mutex.  That costs a
 * lock per free, so it is paid only where the block is not in the front
 * cache's range anyway (classes above a page, size class 0, large blocks).
 * Classes up to a page that are not powers of two are checked for their
 * power-of-two alignment only (see doc/sites.md for what that misses).
 */
#include "config.h"

#include <stdio.h>

#include "arena.h"

#define CACHELINE 64 /* jemalloc's cache-oblivious offsets are multiples */
#define MAX_BINS 64

static struct {
    size_t page;
    size_t small_max;  /* largest small class */
    size_t large_pad;  /* extra page of a large extent (cache_oblivious) */
    unsigned nbins;
    size_t bin_size[MAX_BINS];
    size_t slab_pages[MAX_BINS];
} geo;
static _Atomic bool geo_ready;

static bool ctl_read(const char *name, void *out, size_t size)
{
    size_t sz = size;
    int rc = mallctl(name, out, &sz, NULL, 0);
    if (rc != 0 || sz != size) {
        log_warn("block check: jemalloc mallctl(%s) failed: error %d", name,
                    rc);
        return false;
    }
    return true;
}

/* jemalloc's size classes and slab sizes, once (pthread_once: two frees
 * racing to the first check must not both write geo). */
static bool geometry_load(void)
{
    unsigned nbins;
    bool oblivious = true;
    size_t page;
    if (!ctl_read("arenas.page", &page, sizeof page) ||
        !ctl_read("arenas.nbins", &nbins, sizeof nbins) || nbins == 0 ||
        nbins > MAX_BINS)
        return false;
    /* absent before jemalloc 5.3 made it a run-time option: assume on */
    size_t sz = sizeof oblivious;
    if (mallctl("opt.cache_oblivious", &oblivious, &sz, NULL, 0) != 0)
        oblivious = true;
    for (unsigned b = 0; b < nbins; b++) {
        char name[64];
        size_t slab;
        snprintf(name, sizeof name, "arenas.bin.%u.size", b);
        if (!ctl_read(name, &geo.bin_size[b], sizeof(size_t)))
            return false;
        snprintf(name, sizeof name, "arenas.bin.%u.slab_size", b);
        if (!ctl_read(name, &slab, sizeof slab) || slab % page != 0)
            return false;
        geo.slab_pages[b] = slab / page;
    }
    geo.page = page;
    geo.nbins = nbins;
    geo.small_max = geo.bin_size[nbins - 1];
    geo.large_pad = oblivious ? page : 0;
    return true;
}

static pthread_once_t geo_once = PTHREAD_ONCE_INIT;

static void geometry_init(void)
{
    if (geometry_load())
        atomic_store_explicit(&geo_ready, true, memory_order_release);
}

static bool geometry(void)
{
    if (TM_LIKELY(atomic_load_explicit(&geo_ready, memory_order_acquire)))
        return true;
    (void)pthread_once(&geo_once, geometry_init);
    return atomic_load_explicit(&geo_ready, memory_order_acquire);
}

static int bin_of(size_t size)
{
    unsigned lo = 0, hi = geo.nbins;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (geo.bin_size[mid] < size)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < geo.nbins && geo.bin_size[lo] == size ? (int)lo : -1;
}

/* Does an extent of the arena start exactly at `start`, with records
 * tiling [start, start + size)?  Under the arena's mutex, as every reader
 * of the extent set is. */
static bool extent_starts_at(unsigned id, uintptr_t start, size_t size)
{
    tm_arena_t *a = arena_by_id(id);
    if (a == NULL)
        return false;
    mutex_lock(&a->hooked.lock);
    bool ok = extent_set_contains(&a->hooked.extents, start, size);
    mutex_unlock(&a->hooked.lock);
    return ok;
}

/* A small region of `size` bytes: find the one slab start from which ptr
 * is a whole number of regions away, and ask the extent set whether a slab
 * of that class starts there. */
static bool slab_region_start(uintptr_t p, unsigned id, size_t size)
{
    int b = bin_of(size);
    if (b < 0)
        return false; /* not a size class: a stale or foreign page */
    uintptr_t page = p & ~(uintptr_t)(geo.page - 1);
    size_t pages = geo.slab_pages[b];
    for (size_t j = 0; j < pages; j++) {
        if ((j * geo.page + (p - page)) % size != 0)
            continue;
        /* at most one j fits: the page size is invertible modulo the odd
         * part of the class, and the slab is that many pages */
        return extent_starts_at(id, page - j * geo.page, pages * geo.page);
    }
    return false;
}

/* A large block starts in the first page of its extent, at a cache-line
 * multiple (or exactly there without cache_oblivious). */
static bool large_block_start(uintptr_t p, unsigned id, size_t usable)
{
    size_t in_page = p & (geo.page - 1);
    if (geo.large_pad != 0 ? in_page % CACHELINE != 0 : in_page != 0)
        return false;
    return extent_starts_at(id, p - in_page, usable + geo.large_pad);
}

bool block_check_slow(const void *ptr, unsigned id, size_t usable)
{
    if (!geometry())
        return true; /* cannot tell: behave as before the check existed */
    uintptr_t p = (uintptr_t)ptr;
    if (usable > geo.small_max)
        return large_block_start(p, id, usable);
    if (usable == 0)
        return false;
    /* size class 0 is also what an unmapped page of jemalloc's map reads
     * as (the inner pages of a large block): the slab check tells them
     * apart. */
    return slab_region_start(p, id, usable);
}

static _Atomic bool interior_logged, foreign_logged;

void block_report_foreign(const void *ptr, const char *what)
{
    if (!atomic_exchange(&foreign_logged, true))
        log_warn("%s(%p): not a block tiermem handed out; ignored "
                 "(reported once)", what, ptr);
}

void block_report_interior(const void *ptr, unsigned id, const char *what)
{
    if (!atomic_exchange(&interior_logged, true))
        log_warn("%s(%p): not the start of a block of arena %u (a pointer "
                    "into a block?); ignored (reported once)", what, ptr, id);
}
