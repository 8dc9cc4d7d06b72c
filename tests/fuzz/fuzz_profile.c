/*
 * fuzz_profile.c -- libFuzzer target for the profile reader
 * (profiler/profile_read.c).
 *
 * The input is the file's bytes, exactly: libFuzzer's buffer has no NUL
 * after it, so AddressSanitizer catches any read past the end.  A parse
 * either fails with nothing left allocated, or returns a profile whose
 * invariants hold: rows ascending and in range, intervals ascending,
 * totals consistent with the rows, heat finite and non-negative, a finite
 * halflife, and no arena serial in a version 1 file.  The log
 * goes to /dev/null at debug level (fuzz_support.c), so every message is
 * formatted too.  Link with profiler/profile_read.c, profile_parse.c, -lm.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "profiler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_interval(const prof_interval_t *iv, bool v1)
{
    for (size_t k = 0; k < iv->narenas; k++) {
        const prof_arena_row_t *r = &iv->arenas[k];
        if ((v1 && r->serial != 0) || r->id == 0 || r->id > TM_MAX_ARENAS ||
            (k > 0 && r->id <= iv->arenas[k - 1].id) ||
            !isfinite(r->heat) || r->heat < 0)
            abort();
    }
    for (size_t k = 0; k < iv->nresidency; k++)
        if (iv->residency[k].node >= TM_MAX_NODES ||
            iv->residency[k].arena == 0)
            abort();
    for (size_t k = 0; k < iv->nsites; k++)
        if ((k > 0 && iv->sites[k].index <= iv->sites[k - 1].index) ||
            iv->sites[k].explicit_id < -1 || !isfinite(iv->sites[k].heat) ||
            iv->sites[k].heat < 0)
            abort();
}

static void check_profile(const profile_t *p, bool v1)
{
    uint64_t arena_samples = 0, total = 0;
    if (p->header.nnodes > TM_MAX_NODES || !isfinite(p->header.halflife))
        abort();
    for (size_t i = 0; i < p->nintervals; i++) {
        if (i > 0 && p->intervals[i].seq <= p->intervals[i - 1].seq)
            abort();
        check_interval(&p->intervals[i], v1);
        for (size_t k = 0; k < p->intervals[i].narenas; k++)
            arena_samples += p->intervals[i].arenas[k].samples;
    }
    for (size_t i = 0; i < p->narenas; i++) {
        if (i > 0 && p->arenas[i].id <= p->arenas[i - 1].id)
            abort();
        total += p->arenas[i].samples;
    }
    for (size_t i = 1; i < p->nsites; i++)
        if (p->sites[i].index <= p->sites[i - 1].index)
            abort();
    if (total != arena_samples) /* both wrap alike on overflow */
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    profile_t p;
    int rc = profile_parse((const char *)data, size, "fuzz", &p);
    if (rc != 0 && (p.intervals != NULL || p.sites != NULL ||
                    p.arenas != NULL || p.nintervals != 0))
        abort();
    static const char v1[] = "tiermem-profile 1\n";
    if (rc == 0)
        check_profile(&p, size >= sizeof v1 - 1 &&
                              memcmp(data, v1, sizeof v1 - 1) == 0);
    profile_free(&p);
    if (p.intervals != NULL || p.nintervals != 0)
        abort();
    return 0;
}
