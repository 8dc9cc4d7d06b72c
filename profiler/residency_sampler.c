/*
 * residency_sampler.c -- where every arena's pages are, once in a while.
 *
 * Resident bytes per arena and node come from move_pages status queries
 * (arena/residency.c): every page of a small arena, every k-th page of a
 * big one, so one pass costs at most max_pages queries per arena whatever
 * the footprint.  The profiling thread runs a pass every
 * TIERMEM_PROFILE_RESIDENCY_EVERY intervals; attribution puts the figures
 * into that interval's rows.
 */
#include "config.h"

#include <errno.h>

#include "profiler.h"

void residency_sample_all(attrib_t *at, size_t max_pages)
{
    unsigned failed = 0;
    int first_errno = 0;
    arena_walk_begin();
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        if (a == NULL)
            continue;
        tm_residency_t r;
        if (tm_arena_residency(a, max_pages, &r) != 0) {
            if (failed++ == 0)
                first_errno = errno;
            continue;
        }
        attrib_residency(at, id, &r);
    }
    arena_walk_end();
    if (failed)
        log_warn("profiler: residency of %u arenas could not be measured "
                    "(first errno %d)", failed, first_errno);
}
