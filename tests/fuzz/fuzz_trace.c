/*
 * fuzz_trace.c -- libFuzzer target for the trace (replay) file parser
 * (doc/profiler-replay.md).
 *
 * The parser is static in profiler/sampler_replay.c, so this target
 * includes that file and gives it stubs for the arena and site layers it
 * resolves samples against (no arena, no site: parsing needs neither).
 * The input is the file's bytes, exactly (no NUL after them).  After the
 * parse: no more records than lines, each with a line number past the
 * header, a count of at least 1, a filled selector slot, and replay times
 * that never go backwards.
 */
#include "config.h"

#include <stdlib.h>

#include "../../profiler/sampler_replay.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The layers below the sampler: empty, as before any allocation (the
 * arena and site tables are read inline, so they are data here). */
_Atomic(tm_arena_t *) arena_table[TM_MAX_ARENAS + 1];
site_t *site_table_sites;
_Atomic uint32_t site_table_count;
void arena_walk_begin(void) {}
void arena_walk_end(void) {}
extent_range_t *arena_ranges(tm_arena_t *arena, size_t *count, size_t *bytes)
{
    (void)arena;
    *count = *bytes = 0;
    return NULL;
}

static void check(const replay_state_t *st, size_t lines)
{
    uint64_t last = 0;
    if (st->nrecs > lines)
        abort();
    for (size_t i = 0; i < st->nrecs; i++) {
        const replay_rec_t *r = &st->recs[i];
        if (r->count == 0 || r->line < 2 || r->line > lines ||
            r->sel > st->sel_mask || !st->sels[r->sel].used ||
            r->t_ns < last)
            abort();
        last = r->t_ns;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    replay_state_t *st = meta_alloc(sizeof *st);
    if (st == NULL)
        abort();
    memcpy(st->path, "fuzz", 5);
    st->max_gap_ns = size % 2 ? 0 : 1000000; /* both clocks' paths */
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (replay_parse(st, (const char *)data, size) == 0)
        check(st, lines);
    replay_free(st);
    return 0;
}
