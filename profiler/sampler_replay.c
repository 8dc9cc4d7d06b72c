/*
 * sampler_replay.c -- samples read from a trace file (doc/profiler-replay.md).
 *
 * A trace names each sample by an arena id, a site key or an explicit site
 * id, plus a byte offset into that arena's extents, so one trace replays
 * the same way whatever ASLR did to this run's addresses.  At each collect
 * the due samples are turned into addresses of this run and go through the
 * sink like live samples, so they are attributed by the extent map exactly
 * as a hardware sampler's would be.
 *
 * Everything runs on the profiling thread: the file is read with open/read
 * into metadata memory and parsed there, no malloc and no stdio.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profiler.h"

#define REPLAY_MAGIC "tiermem-trace"
#define REPLAY_VERSION 1
#define REPLAY_LOG_UNRESOLVED 8 /* unresolved lines logged, then a count */
#define REPLAY_CACHE 8          /* arenas whose ranges one collect keeps */
/* Under the trace clock, at most this many intervals pass with no sample:
 * every interval is closed and written, so a far time would otherwise
 * cost one profile record per interval of the gap (a sample at 1.7e12 ms
 * meant 1.7e13 records).  Heat decays by 2^-(1024/halflife) over the kept
 * gap, which is 0 in practice for any usual halflife. */
#define REPLAY_MAX_GAP_INTERVALS 1024u

typedef enum replay_kind { REPLAY_ARENA, REPLAY_SITE, REPLAY_ID } replay_kind_t;

/* One distinct selector of the trace ("arena 3", "id 7", ...). */
typedef struct replay_sel {
    uint8_t kind;
    bool used;        /* slot of the selector hash is filled */
    uint64_t value;   /* arena id, site key or explicit id */
    uint32_t site_plus1;  /* the site, once found (indices never change) */
    uint32_t scanned;     /* sites [0, scanned) already looked at */
} replay_sel_t;

typedef struct replay_rec {
    uint64_t t_ns;
    uint64_t offset;
    uint32_t count;
    uint32_t line;
    uint32_t sel;     /* index into sels */
} replay_rec_t;

/* An arena's extents, ascending, for one collect. */
typedef struct replay_ranges {
    unsigned id;
    extent_range_t *ranges;
    size_t count, bytes, mapped;
} replay_ranges_t;

typedef struct replay_state {
    char path[TM_PATH_MAX];
    replay_rec_t *recs;
    size_t nrecs, recs_bytes, next;
    replay_sel_t *sels;      /* open-addressing hash, [sel_mask + 1] */
    size_t sel_mask, sels_bytes;
    uint64_t max_gap_ns;     /* longest gap kept; 0 = none shortened */
    uint64_t skipped_ns;     /* trace time cut out of the gaps, in all */
    size_t gaps_shortened;
    uint64_t unresolved;     /* samples (weighted) reported lost */
    unsigned unresolved_logged;
    replay_ranges_t cache[REPLAY_CACHE];
} replay_state_t;

/* ------------------------------------------------------------ reading */

/* A trace bigger than this is a mistake, not a workload. */
#define REPLAY_MAX_BYTES ((size_t)1 << 30)

/* ------------------------------------------------------------ parsing */

/* The line up to a '#' that starts a field: the rest is a comment.  (A
 * '#' inside a field is part of it, as it always was.) */
static text_span_t replay_uncommented(text_span_t line)
{
    for (size_t i = 0; i < line.n; i++)
        if (line.p[i] == '#' && (i == 0 || text_is_blank(line.p[i - 1])))
            return span_make(line.p, i);
    return line;
}

/* At most max fields of the line, comment cut; max + 1 if more. */
static size_t replay_tokens(text_span_t line, text_span_t *t, size_t max)
{
    return text_fields(replay_uncommented(line), t, max);
}

/* Milliseconds with up to 6 decimals -> ns. */
static bool replay_time(text_span_t t, uint64_t *ns)
{
    return text_dec_fixed(t, 6, ns);
}

/* The index of a selector, added if new (the hash never fills: it has
 * twice as many slots as the trace has lines). */
static uint32_t replay_sel_index(replay_state_t *st, uint8_t kind,
                                 uint64_t value)
{
    uint64_t h = (value ^ kind) * 0x9e3779b97f4a7c15ull;
    for (size_t i = (size_t)(h >> 32) & st->sel_mask;;
         i = (i + 1) & st->sel_mask) {
        replay_sel_t *s = &st->sels[i];
        if (!s->used) {
            *s = (replay_sel_t){.kind = kind, .used = true, .value = value};
            return (uint32_t)i;
        }
        if (s->kind == kind && s->value == value)
            return (uint32_t)i;
    }
}

/* Parse one sample line into a record; NULL or what is wrong. */
static const char *replay_parse_sample(replay_state_t *st, text_span_t line,
                                       replay_rec_t *r)
{
    text_span_t t[5];
    size_t n = replay_tokens(line, t, 5);
    if (n < 4 || n > 5)
        return "expected <t_ms> arena|site|id <selector> <offset> [count]";
    if (!replay_time(t[0], &r->t_ns))
        return "bad time (milliseconds, up to 6 decimals)";
    uint64_t value, count = 1;
    uint8_t kind;
    if (span_eq(t[1], "arena")) {
        kind = REPLAY_ARENA;
        if (!text_num_u64(t[2], UINT64_MAX, &value) || value == 0 ||
            value > TM_MAX_ARENAS)
            return "bad arena id (1..4095)";
    } else if (span_eq(t[1], "site")) {
        kind = REPLAY_SITE;
        if (!text_hex_u64(t[2], TEXT_HEX_PREFIX_OPTIONAL, &value))
            return "bad site key (hex)";
    } else if (span_eq(t[1], "id")) {
        kind = REPLAY_ID;
        if (!text_num_u64(t[2], UINT64_MAX, &value) || value > INT32_MAX)
            return "bad explicit site id (0..2147483647)";
    } else {
        return "unknown selector (arena, site or id)";
    }
    if (!text_num_u64(t[3], UINT64_MAX, &r->offset))
        return "bad offset";
    if (n == 5 && (!text_num_u64(t[4], UINT64_MAX, &count) || count == 0 ||
                   count > UINT32_MAX))
        return "bad count (1..4294967295)";
    r->count = (uint32_t)count;
    r->sel = replay_sel_index(st, kind, value);
    return NULL;
}

/* "tiermem-trace 1": -1 + EINVAL (logged) when not that. */
static int replay_parse_header(const char *path, text_span_t line)
{
    text_span_t t[3];
    size_t n = replay_tokens(line, t, 2);
    uint64_t v;
    if (n != 2 || !span_eq(t[0], REPLAY_MAGIC)) {
        log_error("replay: %s:1: not a trace (the first line must be "
                     "\"" REPLAY_MAGIC " %d\")", path, REPLAY_VERSION);
        errno = EINVAL;
        return -1;
    }
    if (!text_num_u64(t[1], UINT64_MAX, &v) || v != REPLAY_VERSION) {
        log_error("replay: %s:1: trace version %.*s is not supported "
                     "(this tiermem reads version %d)", path, (int)t[1].n,
                     t[1].p, REPLAY_VERSION);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static bool replay_alloc_tables(replay_state_t *st, size_t lines)
{
    size_t slots = 16;
    while (slots < 2 * lines)
        slots *= 2;
    st->recs_bytes = (lines ? lines : 1) * sizeof *st->recs;
    st->sels_bytes = slots * sizeof *st->sels;
    st->sel_mask = slots - 1;
    st->recs = meta_alloc(st->recs_bytes);
    st->sels = meta_alloc(st->sels_bytes);
    if (st->recs == NULL || st->sels == NULL) {
        log_error("replay: no memory for %zu trace lines of %s", lines,
                     st->path);
        return false;
    }
    return true;
}

/* Shorten the gap before a sample to st->max_gap_ns: *t_ns (trace time)
 * becomes replay time, every later sample moving back by as much too, so
 * the trace clock never closes more than REPLAY_MAX_GAP_INTERVALS empty
 * intervals in a row.  prev_ns is the previous sample's trace time. */
static void replay_bound_gap(replay_state_t *st, uint32_t line,
                             uint64_t prev_ns, uint64_t *t_ns)
{
    uint64_t gap = *t_ns - prev_ns;
    if (st->max_gap_ns != 0 && gap > st->max_gap_ns) {
        uint64_t cut = gap - st->max_gap_ns;
        if (st->gaps_shortened++ == 0)
            log_warn("replay: %s:%u: %.3f ms after the previous sample, "
                        "more than the trace clock's %u empty intervals "
                        "(%.3f ms): the gap is shortened, and this and later "
                        "samples replay %.3f ms earlier (further gaps are "
                        "shortened without a message)", st->path, line,
                        (double)gap / 1e6, REPLAY_MAX_GAP_INTERVALS,
                        (double)st->max_gap_ns / 1e6, (double)cut / 1e6);
        st->skipped_ns += cut;
    }
    *t_ns -= st->skipped_ns;
}

/* Every line after the header: samples kept, bad ones logged and skipped. */
static int replay_parse(replay_state_t *st, const char *text, size_t len)
{
    text_lines_t it;
    text_span_t line;
    size_t lines = 1;
    for (const char *q = text; q < text + len; q++)
        lines += *q == '\n';
    text_lines_init(&it, text, len);
    if (!text_next_line(&it, &line))
        line = span_make(text, 0); /* an empty file: no header */
    if (replay_parse_header(st->path, line) != 0)
        return -1;
    if (!replay_alloc_tables(st, lines)) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t last_t = 0;
    while (text_next_line(&it, &line)) {
        uint32_t at = (uint32_t)it.line;
        text_span_t first;
        if (replay_tokens(line, &first, 1) == 0)
            continue; /* blank or comment */
        replay_rec_t *r = &st->recs[st->nrecs];
        const char *what = replay_parse_sample(st, line, r);
        if (what == NULL && r->t_ns < last_t)
            what = "time goes backwards (times must not decrease)";
        if (what != NULL) {
            log_warn("replay: %s:%u: %s; line skipped", st->path, at,
                        what);
            continue;
        }
        r->line = at;
        uint64_t t = r->t_ns;
        replay_bound_gap(st, at, last_t, &r->t_ns);
        last_t = t;
        st->nrecs++;
    }
    return 0;
}

/* ------------------------------------------------------------ resolving */

/* The site a site/id selector names, or NULL (none such yet). */
static site_t *replay_find_site(replay_sel_t *sel)
{
    if (sel->site_plus1 != 0)
        return site_get(sel->site_plus1 - 1);
    uint32_t n = site_count();
    for (uint32_t i = sel->scanned; i < n; i++) {
        site_t *s = site_get(i);
        if (s == NULL)
            break;
        bool hit = sel->kind == REPLAY_SITE
                       ? s->key == sel->value
                       : s->explicit_id >= 0 &&
                             (uint64_t)s->explicit_id == sel->value;
        if (hit) {
            sel->site_plus1 = i + 1;
            return s;
        }
    }
    sel->scanned = n;
    return NULL;
}

/* The arena a selector names now; caller holds the arena walk. */
static tm_arena_t *replay_arena(replay_sel_t *sel)
{
    if (sel->kind == REPLAY_ARENA)
        return arena_by_id((unsigned)sel->value);
    site_t *s = replay_find_site(sel);
    if (s == NULL)
        return NULL;
    tm_arena_t *a = atomic_load_explicit(&s->arena, memory_order_acquire);
    return a != NULL && arena_by_id(a->hooked.id) == a ? a : NULL;
}

/* The arena's ranges for this collect (cached); NULL if out of memory. */
static replay_ranges_t *replay_ranges(replay_state_t *st, tm_arena_t *a)
{
    unsigned id = a->hooked.id;
    replay_ranges_t *c = &st->cache[id % REPLAY_CACHE];
    if (c->id == id && c->ranges != NULL)
        return c;
    if (c->ranges != NULL)
        meta_free(c->ranges, c->bytes);
    *c = (replay_ranges_t){.id = id};
    mutex_lock(&a->hooked.lock);
    c->ranges = arena_ranges(a, &c->count, &c->bytes);
    mutex_unlock(&a->hooked.lock);
    if (c->ranges == NULL)
        return NULL; /* logged by arena_ranges */
    for (size_t i = 0; i < c->count; i++)
        c->mapped += c->ranges[i].size;
    return c;
}

static void replay_cache_drop(replay_state_t *st)
{
    for (unsigned i = 0; i < REPLAY_CACHE; i++) {
        if (st->cache[i].ranges != NULL)
            meta_free(st->cache[i].ranges, st->cache[i].bytes);
        st->cache[i] = (replay_ranges_t){0};
    }
}

/* The offset-th byte of the arena's extents in address order, or 0. */
static uintptr_t replay_address(const replay_ranges_t *c, uint64_t offset)
{
    for (size_t i = 0; i < c->count; i++) {
        if (offset < c->ranges[i].size)
            return c->ranges[i].start + (uintptr_t)offset;
        offset -= c->ranges[i].size;
    }
    return 0;
}

static void replay_unresolved(sampler_t *s, const replay_rec_t *r,
                              const char *why)
{
    replay_state_t *st = s->state;
    st->unresolved += r->count;
    if (s->sink.lost != NULL)
        s->sink.lost(s->sink.ctx, r->count);
    if (st->unresolved_logged++ < REPLAY_LOG_UNRESOLVED)
        log_info("replay: %s:%u: %s; %u sample(s) counted as lost%s",
                    st->path, r->line, why, r->count,
                    st->unresolved_logged == REPLAY_LOG_UNRESOLVED
                        ? " (further ones are not logged)"
                        : "");
}

static void replay_deliver(sampler_t *s, const replay_rec_t *r)
{
    replay_state_t *st = s->state;
    tm_arena_t *a = replay_arena(&st->sels[r->sel]);
    if (a == NULL) {
        replay_unresolved(s, r, "the selector names no arena (yet)");
        return;
    }
    replay_ranges_t *c = replay_ranges(st, a);
    uintptr_t addr = c ? replay_address(c, r->offset) : 0;
    if (addr == 0) {
        replay_unresolved(s, r, c ? "offset past the arena's mapped bytes"
                                  : "no memory to list the arena's extents");
        return;
    }
    s->sink.sample(s->sink.ctx, addr, r->count);
}

/* ------------------------------------------------------------ the ops */

static void replay_free(replay_state_t *st)
{
    if (st == NULL)
        return;
    replay_cache_drop(st);
    if (st->recs != NULL)
        meta_free(st->recs, st->recs_bytes);
    if (st->sels != NULL)
        meta_free(st->sels, st->sels_bytes);
    meta_free(st, sizeof *st);
}

static int replay_open(sampler_t *s, const prof_options_t *o,
                       const prof_sink_t *sink)
{
    if (o->replay[0] == '\0') {
        log_error("replay: no trace file (set TIERMEM_PROFILE_REPLAY)");
        errno = EINVAL;
        return -1;
    }
    replay_state_t *st = meta_alloc(sizeof *st);
    if (st == NULL) {
        log_error("replay: no memory for the sampler's state");
        errno = ENOMEM;
        return -1;
    }
    memcpy(st->path, o->replay, sizeof st->path);
    st->path[sizeof st->path - 1] = '\0';
    /* only the trace clock closes intervals as fast as it can: the wall
     * clock plays a trace in real time and never reaches a far sample */
    if (o->trace_clock)
        st->max_gap_ns = REPLAY_MAX_GAP_INTERVALS * o->interval_ns;
    size_t len = 0, bytes = 0;
    char *text = read_file(st->path, "replay: trace", TM_LOG_ERROR,
                              REPLAY_MAX_BYTES, &len, &bytes);
    int rc = text ? replay_parse(st, text, len) : -1;
    int err = errno;
    if (text != NULL)
        meta_free(text, bytes);
    if (rc != 0) {
        replay_free(st);
        errno = err;
        return -1;
    }
    log_info("replay: %s: %zu sample lines", st->path, st->nrecs);
    if (st->gaps_shortened != 0)
        log_info("replay: %s: %zu gap(s) longer than %u intervals "
                    "shortened, %.3f ms of trace time skipped in all",
                    st->path, st->gaps_shortened, REPLAY_MAX_GAP_INTERVALS,
                    (double)st->skipped_ns / 1e6);
    s->sink = *sink;
    s->name = "replay";
    s->accesses_per_sample = 1.0; /* a trace counts accesses */
    s->state = st;
    return 0;
}

static void replay_collect(sampler_t *s, uint64_t t_end_ns)
{
    replay_state_t *st = s->state;
    if (st == NULL || st->next >= st->nrecs ||
        st->recs[st->next].t_ns >= t_end_ns)
        return;
    /* the walk keeps every arena found alive until its samples are in */
    arena_walk_begin();
    while (st->next < st->nrecs && st->recs[st->next].t_ns < t_end_ns)
        replay_deliver(s, &st->recs[st->next++]);
    arena_walk_end();
    replay_cache_drop(st);
}

static bool replay_done(sampler_t *s)
{
    replay_state_t *st = s->state;
    return st == NULL || st->next >= st->nrecs;
}

static void replay_close(sampler_t *s)
{
    replay_state_t *st = s->state;
    if (st != NULL && st->unresolved != 0)
        log_info("replay: %s: %llu sample(s) could not be resolved and "
                    "were counted as lost", st->path,
                    (unsigned long long)st->unresolved);
    replay_free(st);
    s->state = NULL;
}

const sampler_ops_t sampler_replay_ops = {
    .open = replay_open,
    .collect = replay_collect,
    .done = replay_done,
    .close = replay_close,
};
