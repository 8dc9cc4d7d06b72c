/*
 * residency_sampler.c -- where every arena's pages are, once in a while.
 *
 * Two ways to measure it, and each pass takes the one that costs less for
 * this process now:
 *   - the move_pages walk (arena/residency.c): status queries, every page
 *     of a small arena, every k-th page of a big one, at most max_pages
 *     per arena (TIERMEM_PROFILE_RESIDENCY_PAGES); about 160 ns a page;
 *   - numa_maps (residency_numa_maps.c): exact pages per node for every
 *     VMA, at the price of walking the whole process's page tables, about
 *     20 ns per resident 4 KiB page and far less for huge pages.
 * The walk is cheaper for a big process with few arenas (it samples); the
 * numa_maps read for a small one with many arenas, and it is exact.  The
 * costs start from bench_refs's figures and follow what each pass really
 * took on the profiling thread.  Arenas whose VMAs numa_maps cannot tell
 * apart from other memory get the walk either way.  A report that needs
 * exact bytes asks tm_arena_residency with max_pages 0 (the exact walk).
 *
 * The profiling thread runs a pass every TIERMEM_PROFILE_RESIDENCY_EVERY
 * intervals; attribution puts the figures into that interval's rows.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "refs_internal.h"

/* ns per page: queried by the walk; resident in the process for numa_maps */
static double walk_ns_per_page = 160.0, numa_maps_ns_per_page = 20.0;
static residency_source_t source[TM_MAX_ARENAS + 1];
static int forced, last_method;

int residency_test_method(int force)
{
    forced = force;
    return last_method;
}

static double smooth(double old, double now)
{
    return now > 0 ? 0.75 * old + 0.25 * now : old;
}

/* Pages the walk would query: min(arena pages, max_pages) per arena. */
static double walk_pages(size_t max_pages)
{
    size_t page = os_page_size(), pages = 0;
    arena_walk_begin();
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        if (a == NULL)
            continue;
        mutex_lock(&a->hooked.lock);
        size_t n = a->hooked.extents.bytes / page;
        mutex_unlock(&a->hooked.lock);
        pages += max_pages && n > max_pages ? max_pages : n;
    }
    arena_walk_end();
    return (double)pages;
}

/* Resident pages of the whole process, at most: the peak RSS. */
static double process_pages(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 1e12;
    return (double)ru.ru_maxrss * 1024.0 / (double)os_page_size();
}

static bool numa_maps_cheaper(size_t max_pages)
{
    if (forced)
        return forced == 1;
    return process_pages() * numa_maps_ns_per_page <
           walk_pages(max_pages) * walk_ns_per_page;
}

/* numa_maps for whom it can; source[] says who is left for the walk. */
static void try_numa_maps(attrib_t *at)
{
    double pages = process_pages();
    uint64_t t0 = thread_cpu_ns();
    if (residency_numa_maps(at, source) != 0) {
        log_debug("profiler: residency from numa_maps failed: errno %d; "
                  "walking instead", errno);
        memset(source, 0, sizeof source);
        return;
    }
    numa_maps_ns_per_page =
        smooth(numa_maps_ns_per_page, (double)(thread_cpu_ns() - t0) / pages);
}

void residency_sample_all(attrib_t *at, size_t max_pages)
{
    memset(source, 0, sizeof source);
    last_method = 2;
    if (numa_maps_cheaper(max_pages)) {
        try_numa_maps(at);
        last_method = 1;
    }
    unsigned failed = 0;
    int first_errno = 0;
    size_t queried = 0;
    uint64_t t0 = thread_cpu_ns();
    arena_walk_begin();
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        if (a == NULL || source[id] == RESIDENCY_NUMA_MAPS)
            continue;
        tm_residency_t r;
        if (tm_arena_residency(a, max_pages, &r) != 0) {
            if (failed++ == 0)
                first_errno = errno;
            continue;
        }
        queried += r.pages_queried;
        attrib_residency(at, id, &r);
    }
    arena_walk_end();
    if (queried > 0)
        walk_ns_per_page = smooth(walk_ns_per_page,
                                  (double)(thread_cpu_ns() - t0) /
                                      (double)queried);
    if (failed)
        log_warn("profiler: residency of %u arenas could not be measured "
                    "(first errno %d)", failed, first_errno);
}
