/*
 * profile_read.c -- the profile reader the tools and the policy use.
 *
 * Parses a whole profile (doc/profile-format.md), finished or a .partial a
 * crash left behind.  Strict for version 1: a line it does not understand
 * is an error naming "path:line", because the only writer is ours and a
 * surprise means a bug or a damaged file.  The one tolerated damage is a
 * torn end: a last line without its newline and an interval without its
 * end line are dropped.  Heat is not in the file; it is recomputed here
 * from the samples with prof_heat_update, as attribution computed it.
 * Runs in tools and offline passes, never on the profiling thread, so it
 * uses malloc.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profiler.h"

double prof_heat_decay(double halflife)
{
    if (!(halflife > 0)) /* also NaN */
        return 0.0;
    return exp2(-1.0 / halflife);
}

/* ---------------------------------------------------------------- state */

typedef struct span {
    const char *p;
    size_t n;
} span_t;

#define PR_FIELDS_MAX 16

/* Header lines, each required once. */
enum {
    PR_H_EXE = 1 << 0, PR_H_PID = 1 << 1, PR_H_RANK = 1 << 2,
    PR_H_SAMPLER = 1 << 3, PR_H_INTERVAL = 1 << 4, PR_H_HALFLIFE = 1 << 5,
    PR_H_START = 1 << 6, PR_H_ALL = (1 << 7) - 1,
};

/* Where in an interval the parser is: rows come in this order. */
enum { PR_SEC_ARENAS, PR_SEC_RESIDENCY, PR_SEC_SITES };

typedef struct pr_arena {
    bool seen;          /* has a row in a complete interval */
    double heat;
    uint64_t pending;   /* samples of the interval being closed */
    struct prof_arena_total total;
} pr_arena_t;

typedef struct pr_site {
    uint32_t index;
    uint64_t key;       /* from the latest definition line */
    int32_t explicit_id;
    bool seen;
    double heat;
    uint64_t pending;
    struct prof_site_total total;
} pr_site_t;

typedef struct parser {
    const char *name;
    size_t line;
    bool failed;
    profile_t *out;
    unsigned header;       /* PR_H_* seen */
    double decay;
    size_t intervals_cap;
    bool in_interval, trailer;
    int section;
    prof_interval_t cur;
    size_t arenas_cap, residency_cap, sites_cap;
    pr_arena_t *arenas;    /* TM_MAX_ARENAS + 1, by id */
    unsigned *seen_ids;    /* arenas with seen set, in order of appearance */
    size_t nseen_ids, seen_ids_cap;
    pr_site_t *sites;      /* ascending index */
    size_t nsites, site_table_cap;
} parser_t;

/* Log the one error of this parse as "name:line: what" and stop. */
__attribute__((format(printf, 2, 3)))
static bool pr_fail(parser_t *ps, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!ps->failed)
        tm_log_error("%s:%zu: %s", ps->name, ps->line, what);
    ps->failed = true;
    return false;
}

/* Room for one more element of elem bytes at *arr[n]; false if no memory. */
static bool pr_grow(parser_t *ps, void **arr, size_t *cap, size_t n,
                    size_t elem)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = ncap > SIZE_MAX / elem ? NULL : realloc(*arr, ncap * elem);
    if (p == NULL)
        return pr_fail(ps, "out of memory for %zu entries", ncap);
    *arr = p;
    *cap = ncap;
    return true;
}

/* ---------------------------------------------------------------- fields */

static bool sp_eq(span_t s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Split at blanks; returns the count, or PR_FIELDS_MAX + 1 for too many. */
static size_t pr_split(span_t line, span_t *f)
{
    size_t n = 0;
    const char *p = line.p, *end = line.p + line.n;
    while (p < end) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end)
            break;
        const char *s = p;
        while (p < end && !is_blank(*p))
            p++;
        if (n == PR_FIELDS_MAX)
            return PR_FIELDS_MAX + 1;
        f[n++] = (span_t){s, (size_t)(p - s)};
    }
    return n;
}

/* A decimal number up to max, digits only. */
static bool pr_u64(span_t s, uint64_t max, uint64_t *v)
{
    uint64_t acc = 0;
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        unsigned d = (unsigned)(s.p[i] - '0');
        if (acc > (max - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    *v = acc;
    return true;
}

/* "0x" and 1..16 hex digits. */
static bool pr_hex(span_t s, uint64_t *v)
{
    if (s.n < 3 || s.n > 18 || s.p[0] != '0' || (s.p[1] | 0x20) != 'x')
        return false;
    uint64_t acc = 0;
    for (size_t i = 2; i < s.n; i++) {
        char c = s.p[i], l = (char)(c | 0x20);
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (l >= 'a' && l <= 'f')
            d = (unsigned)(l - 'a' + 10);
        else
            return false;
        acc = acc << 4 | d;
    }
    *v = acc;
    return true;
}

/* An optional '-' and a decimal number in [min, max]. */
static bool pr_i64(span_t s, int64_t min, int64_t max, int64_t *v)
{
    bool neg = s.n > 0 && s.p[0] == '-';
    uint64_t m;
    span_t d = {s.p + neg, s.n - neg};
    if (!pr_u64(d, (uint64_t)INT64_MAX + neg, &m))
        return false;
    int64_t x = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m)
                    : (int64_t)m;
    if (x < min || x > max)
        return false;
    *v = x;
    return true;
}

/* Parse fields f[first..] as unsigned numbers into the pointers given. */
static bool pr_nums(parser_t *ps, const span_t *f, size_t first, size_t n,
                    uint64_t *const *dst, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!pr_u64(f[first + i], UINT64_MAX, dst[i]))
            return pr_fail(ps, "%s: field %zu (\"%.*s\") is not a number "
                           "that fits 64 bits", what, first + i + 1,
                           (int)(f[first + i].n > 40 ? 40 : f[first + i].n),
                           f[first + i].p);
    return true;
}

#define PR_FIELD_COUNT(ps, n, want, what)                                     \
    ((n) == (want) ? true                                                     \
                   : pr_fail(ps, "%s line has %zu fields, not %d", what,      \
                             (size_t)(n), (int)(want)))

/* ---------------------------------------------------------------- header */

static bool pr_magic(parser_t *ps, const span_t *f, size_t n)
{
    uint64_t v;
    if (n == 0 || !sp_eq(f[0], "tiermem-profile"))
        return pr_fail(ps, "not a tiermem profile (the first line must be "
                       "\"tiermem-profile %d\")", PROF_FORMAT_VERSION);
    if (n != 2 || !pr_u64(f[1], UINT32_MAX, &v) || v == 0)
        return pr_fail(ps, "bad format version line");
    if (v > PROF_FORMAT_VERSION)
        return pr_fail(ps, "profile format version %" PRIu64 " is newer "
                       "than this reader understands (%d); use a newer "
                       "tiermem", v, PROF_FORMAT_VERSION);
    return true;
}

static bool pr_once(parser_t *ps, unsigned bit, const char *kw)
{
    if (ps->header & bit)
        return pr_fail(ps, "second \"%s\" line", kw);
    ps->header |= bit;
    return true;
}

static bool pr_halflife(parser_t *ps, span_t f)
{
    char buf[64];
    char *end;
    if (f.n >= sizeof buf)
        return pr_fail(ps, "halflife too long");
    memcpy(buf, f.p, f.n);
    buf[f.n] = '\0';
    double v = strtod(buf, &end);
    if (*end != '\0' || !isfinite(v))
        return pr_fail(ps, "halflife \"%s\" is not a finite number", buf);
    ps->out->header.halflife = v;
    ps->decay = prof_heat_decay(v);
    return true;
}

static bool pr_node(parser_t *ps, const span_t *f, size_t n)
{
    prof_header_t *h = &ps->out->header;
    uint64_t id, tier, cap;
    if (!PR_FIELD_COUNT(ps, n, 4, "node"))
        return false;
    if (h->nnodes == TM_MAX_NODES)
        return pr_fail(ps, "more than %d node lines", TM_MAX_NODES);
    if (!pr_u64(f[1], TM_MAX_NODES - 1, &id) ||
        !pr_u64(f[2], TM_MAX_NODES - 1, &tier) ||
        !pr_u64(f[3], UINT64_MAX, &cap))
        return pr_fail(ps, "bad node line (id and tier below %d, capacity "
                       "in bytes)", TM_MAX_NODES);
    h->nodes[h->nnodes++] = (prof_node_t){(unsigned)id, (unsigned)tier, cap};
    return true;
}

/* A header line; false if it is not one (or is bad: ps->failed). */
static bool pr_header_line(parser_t *ps, span_t line, const span_t *f,
                           size_t n, bool *handled)
{
    prof_header_t *h = &ps->out->header;
    int64_t v;
    *handled = true;
    if (sp_eq(f[0], "exe")) {
        /* the rest of the line, blanks included, after "exe " */
        const char *start = f[0].p + 3, *end = line.p + line.n;
        start += start < end; /* the one blank after the keyword */
        span_t rest = {start, (size_t)(end - start)};
        if (rest.n >= sizeof h->exe)
            return pr_fail(ps, "exe longer than %zu bytes",
                           sizeof h->exe - 1);
        memcpy(h->exe, rest.p, rest.n);
        h->exe[rest.n] = '\0';
        return pr_once(ps, PR_H_EXE, "exe");
    }
    if (sp_eq(f[0], "pid") || sp_eq(f[0], "rank")) {
        bool pid = f[0].n == 3;
        if (!PR_FIELD_COUNT(ps, n, 2, pid ? "pid" : "rank"))
            return false;
        if (!pr_i64(f[1], pid ? 0 : -1, pid ? INT32_MAX : INT32_MAX, &v))
            return pr_fail(ps, "bad %s", pid ? "pid" : "rank");
        if (pid)
            h->pid = (long)v;
        else
            h->rank = (int)v;
        return pr_once(ps, pid ? PR_H_PID : PR_H_RANK, pid ? "pid" : "rank");
    }
    if (sp_eq(f[0], "sampler")) {
        if (!PR_FIELD_COUNT(ps, n, 2, "sampler"))
            return false;
        if (f[1].n >= sizeof h->sampler)
            return pr_fail(ps, "sampler name too long");
        if (!sp_eq(f[1], "-"))
            memcpy(h->sampler, f[1].p, f[1].n);
        return pr_once(ps, PR_H_SAMPLER, "sampler");
    }
    if (sp_eq(f[0], "interval_ns") || sp_eq(f[0], "start_unix_ms")) {
        bool iv = f[0].p[0] == 'i';
        if (!PR_FIELD_COUNT(ps, n, 2, iv ? "interval_ns" : "start_unix_ms"))
            return false;
        uint64_t *dst[1] = {iv ? &h->interval_ns : &h->start_unix_ms};
        return pr_nums(ps, f, 1, 1, dst, iv ? "interval_ns" : "start_unix_ms")
               && pr_once(ps, iv ? PR_H_INTERVAL : PR_H_START,
                          iv ? "interval_ns" : "start_unix_ms");
    }
    if (sp_eq(f[0], "halflife"))
        return PR_FIELD_COUNT(ps, n, 2, "halflife") &&
               pr_halflife(ps, f[1]) && pr_once(ps, PR_H_HALFLIFE, "halflife");
    if (sp_eq(f[0], "node"))
        return pr_node(ps, f, n);
    *handled = false;
    return false;
}

/* Every header line must be there before the first interval. */
static bool pr_header_complete(parser_t *ps)
{
    static const char *const names[] = {"exe", "pid", "rank", "sampler",
                                        "interval_ns", "halflife",
                                        "start_unix_ms"};
    for (unsigned i = 0; i < 7; i++)
        if (!(ps->header & (1u << i)))
            return pr_fail(ps, "header incomplete: no \"%s\" line",
                           names[i]);
    return true;
}

/* ---------------------------------------------------------------- rows */

static bool pr_interval_start(parser_t *ps, const span_t *f, size_t n)
{
    prof_interval_t *c = &ps->cur;
    if (ps->in_interval)
        return pr_fail(ps, "interval %" PRIu64 " has no end line", c->seq);
    if (!pr_header_complete(ps) || !PR_FIELD_COUNT(ps, n, 7, "interval"))
        return false;
    /* cur is empty here: the last interval's rows went to the profile. */
    uint64_t *dst[6] = {&c->seq, &c->t_start_ns, &c->t_end_ns, &c->samples,
                        &c->unattributed, &c->lost};
    if (!pr_nums(ps, f, 1, 6, dst, "interval"))
        return false;
    size_t prev = ps->out->nintervals;
    if (c->seq == 0 ||
        (prev > 0 && c->seq <= ps->out->intervals[prev - 1].seq))
        return pr_fail(ps, "interval %" PRIu64 " does not follow the last "
                       "one", c->seq);
    if (c->t_end_ns < c->t_start_ns)
        return pr_fail(ps, "interval %" PRIu64 " ends before it starts",
                       c->seq);
    ps->in_interval = true;
    ps->section = PR_SEC_ARENAS;
    return true;
}

static bool pr_kind(span_t s, uint8_t *kind)
{
    static const char *const names[] = {"user", "site", "shared"};
    for (uint8_t k = 0; k < 3; k++)
        if (sp_eq(s, names[k])) {
            *kind = k;
            return true;
        }
    return false;
}

static bool pr_mode(span_t s, tm_mode_t *mode)
{
    static const char *const names[] = {"none", "bind", "preferred",
                                        "interleave"};
    for (int m = 0; m < 4; m++)
        if (sp_eq(s, names[m])) {
            *mode = (tm_mode_t)m;
            return true;
        }
    return false;
}

static bool pr_arena_row(parser_t *ps, const span_t *f, size_t n)
{
    prof_interval_t *c = &ps->cur;
    uint64_t id, owner;
    if (ps->section != PR_SEC_ARENAS)
        return pr_fail(ps, "arena row after residency or site rows");
    if (!PR_FIELD_COUNT(ps, n, 14, "arena") ||
        !pr_grow(ps, (void **)&c->arenas, &ps->arenas_cap, c->narenas,
                 sizeof *c->arenas))
        return false;
    prof_arena_row_t r = {0};
    if (!pr_u64(f[1], TM_MAX_ARENAS, &id) || id == 0 ||
        (c->narenas > 0 && id <= c->arenas[c->narenas - 1].id))
        return pr_fail(ps, "arena id \"%.*s\" not in 1..%d or not "
                       "ascending", (int)(f[1].n > 24 ? 24 : f[1].n), f[1].p,
                       TM_MAX_ARENAS);
    if (!pr_kind(f[2], &r.kind) || !pr_u64(f[3], UINT32_MAX, &owner) ||
        !pr_mode(f[4], &r.placement.mode) ||
        !pr_hex(f[5], &r.placement.nodes))
        return pr_fail(ps, "bad arena kind, owner or placement");
    tm_alloc_stats_t *s = &r.stats;
    uint64_t *dst[7] = {&r.samples, &r.mapped, &s->allocs, &s->frees,
                        &s->bytes, &s->live, &s->peak};
    if (!pr_nums(ps, f, 6, 7, dst, "arena"))
        return false;
    r.resident_valid = !sp_eq(f[13], "-");
    uint64_t *res[1] = {&r.resident};
    if (r.resident_valid && !pr_nums(ps, f, 13, 1, res, "arena"))
        return false;
    r.id = (unsigned)id;
    r.owner_site = (uint32_t)owner;
    c->arenas[c->narenas++] = r;
    return true;
}

static bool pr_resident_row(parser_t *ps, const span_t *f, size_t n)
{
    prof_interval_t *c = &ps->cur;
    uint64_t arena, node, bytes;
    if (ps->section > PR_SEC_RESIDENCY)
        return pr_fail(ps, "resident row after site rows");
    ps->section = PR_SEC_RESIDENCY;
    if (!PR_FIELD_COUNT(ps, n, 4, "resident") ||
        !pr_grow(ps, (void **)&c->residency, &ps->residency_cap,
                 c->nresidency, sizeof *c->residency))
        return false;
    if (!pr_u64(f[1], TM_MAX_ARENAS, &arena) ||
        !pr_u64(f[2], TM_MAX_NODES - 1, &node) ||
        !pr_u64(f[3], UINT64_MAX, &bytes))
        return pr_fail(ps, "bad resident row (arena, node below %d, bytes)",
                       TM_MAX_NODES);
    const prof_residency_row_t *p =
        c->nresidency ? &c->residency[c->nresidency - 1] : NULL;
    if (p != NULL && (arena < p->arena || (arena == p->arena &&
                                           node <= p->node)))
        return pr_fail(ps, "resident rows not ascending by (arena, node)");
    /* Residency is measured for arenas whose row says so. */
    const prof_arena_row_t *row = NULL;
    for (size_t lo = 0, hi = c->narenas; lo < hi && row == NULL;) {
        size_t mid = (lo + hi) / 2;
        if (c->arenas[mid].id == arena)
            row = &c->arenas[mid];
        else if (c->arenas[mid].id < arena)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (row == NULL || !row->resident_valid)
        return pr_fail(ps, "resident row for arena %" PRIu64 ", which has "
                       "no row with a resident figure", arena);
    c->residency[c->nresidency++] =
        (prof_residency_row_t){(unsigned)arena, (unsigned)node, bytes};
    return true;
}

/* The site table slot for index: found, or where it would go. */
static size_t pr_site_find(const parser_t *ps, uint32_t index, bool *found)
{
    size_t lo = 0, hi = ps->nsites;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ps->sites[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < ps->nsites && ps->sites[lo].index == index;
    return lo;
}

static bool pr_sitedef(parser_t *ps, const span_t *f, size_t n)
{
    uint64_t index, key;
    int64_t id;
    ps->section = PR_SEC_SITES;
    if (!PR_FIELD_COUNT(ps, n, 4, "sitedef"))
        return false;
    if (!pr_u64(f[1], UINT32_MAX, &index) || !pr_hex(f[2], &key) ||
        !pr_i64(f[3], -1, INT32_MAX, &id))
        return pr_fail(ps, "bad sitedef line (index, 0x key, explicit id "
                       "or -1)");
    bool found;
    size_t at = pr_site_find(ps, (uint32_t)index, &found);
    if (!found) {
        if (!pr_grow(ps, (void **)&ps->sites, &ps->site_table_cap,
                     ps->nsites, sizeof *ps->sites))
            return false;
        memmove(&ps->sites[at + 1], &ps->sites[at],
                (ps->nsites - at) * sizeof *ps->sites);
        ps->sites[at] = (pr_site_t){.index = (uint32_t)index};
        ps->nsites++;
    }
    ps->sites[at].key = key;
    ps->sites[at].explicit_id = (int32_t)id;
    return true;
}

static bool pr_site_row(parser_t *ps, const span_t *f, size_t n)
{
    prof_interval_t *c = &ps->cur;
    uint64_t index, arena, est;
    ps->section = PR_SEC_SITES;
    if (!PR_FIELD_COUNT(ps, n, 10, "site") ||
        !pr_grow(ps, (void **)&c->sites, &ps->sites_cap, c->nsites,
                 sizeof *c->sites))
        return false;
    prof_site_row_t r = {0};
    if (!pr_u64(f[1], UINT32_MAX, &index) ||
        (c->nsites > 0 && index <= c->sites[c->nsites - 1].index))
        return pr_fail(ps, "site index not ascending");
    bool found;
    size_t at = pr_site_find(ps, (uint32_t)index, &found);
    if (!found)
        return pr_fail(ps, "site %" PRIu64 " has no sitedef line before it",
                       index);
    if (!pr_u64(f[2], TM_MAX_ARENAS, &arena) || !pr_u64(f[4], 1, &est))
        return pr_fail(ps, "bad site arena or estimated flag");
    tm_alloc_stats_t *s = &r.stats;
    uint64_t *dst[5] = {&s->allocs, &s->frees, &s->bytes, &s->live, &s->peak};
    uint64_t *smp[1] = {&r.samples};
    if (!pr_nums(ps, f, 3, 1, smp, "site") || !pr_nums(ps, f, 5, 5, dst,
                                                       "site"))
        return false;
    r.index = (uint32_t)index;
    r.key = ps->sites[at].key;
    r.explicit_id = ps->sites[at].explicit_id;
    r.arena = (unsigned)arena;
    r.estimated = est != 0;
    c->sites[c->nsites++] = r;
    return true;
}

/* ---------------------------------------------------------------- closing */

/* Heat and totals of the arenas, as of the interval being closed. */
static bool pr_close_arenas(parser_t *ps, prof_interval_t *c)
{
    for (size_t i = 0; i < c->narenas; i++) {
        pr_arena_t *a = &ps->arenas[c->arenas[i].id];
        if (!a->seen) {
            if (!pr_grow(ps, (void **)&ps->seen_ids, &ps->seen_ids_cap,
                         ps->nseen_ids, sizeof *ps->seen_ids))
                return false;
            ps->seen_ids[ps->nseen_ids++] = c->arenas[i].id;
            a->seen = true;
        }
        a->pending = c->arenas[i].samples;
    }
    for (size_t i = 0; i < ps->nseen_ids; i++) {
        pr_arena_t *a = &ps->arenas[ps->seen_ids[i]];
        a->heat = prof_heat_update(a->heat, a->pending, ps->decay);
        a->pending = 0;
    }
    for (size_t i = 0; i < c->narenas; i++) {
        prof_arena_row_t *r = &c->arenas[i];
        pr_arena_t *a = &ps->arenas[r->id];
        r->heat = a->heat;
        a->total.id = r->id;
        a->total.kind = r->kind;
        a->total.samples += r->samples;
        if (r->mapped > a->total.peak_mapped)
            a->total.peak_mapped = r->mapped;
        if (r->resident_valid)
            a->total.last_resident = r->resident;
    }
    return true;
}

static void pr_close_sites(parser_t *ps, prof_interval_t *c)
{
    bool found;
    for (size_t i = 0; i < c->nsites; i++) {
        pr_site_t *s = &ps->sites[pr_site_find(ps, c->sites[i].index, &found)];
        s->seen = true;
        s->pending = c->sites[i].samples;
    }
    for (size_t i = 0; i < ps->nsites; i++) {
        pr_site_t *s = &ps->sites[i];
        if (!s->seen)
            continue;
        s->heat = prof_heat_update(s->heat, s->pending, ps->decay);
        s->pending = 0;
    }
    for (size_t i = 0; i < c->nsites; i++) {
        prof_site_row_t *r = &c->sites[i];
        pr_site_t *s = &ps->sites[pr_site_find(ps, r->index, &found)];
        struct prof_site_total *t = &s->total;
        r->heat = s->heat;
        uint64_t peak = t->stats.peak > r->stats.peak ? t->stats.peak
                                                      : r->stats.peak;
        *t = (struct prof_site_total){
            .index = r->index, .key = r->key, .explicit_id = r->explicit_id,
            .arena = r->arena, .samples = t->samples + r->samples,
            .stats = r->stats};
        t->stats.peak = peak;
    }
}

static bool pr_interval_end(parser_t *ps, const span_t *f, size_t n)
{
    prof_interval_t *c = &ps->cur;
    uint64_t seq;
    profile_t *out = ps->out;
    if (!ps->in_interval)
        return pr_fail(ps, "end line outside an interval");
    if (!PR_FIELD_COUNT(ps, n, 2, "end"))
        return false;
    if (!pr_u64(f[1], UINT64_MAX, &seq) || seq != c->seq)
        return pr_fail(ps, "end line does not name interval %" PRIu64,
                       c->seq);
    if (!pr_grow(ps, (void **)&out->intervals, &ps->intervals_cap,
                 out->nintervals, sizeof *out->intervals) ||
        !pr_close_arenas(ps, c))
        return false;
    pr_close_sites(ps, c);
    out->intervals[out->nintervals++] = *c;
    /* The rows now belong to the profile; the next interval starts afresh. */
    *c = (prof_interval_t){0};
    ps->arenas_cap = ps->residency_cap = ps->sites_cap = 0;
    ps->in_interval = false;
    return true;
}

static bool pr_trailer(parser_t *ps, const span_t *f, size_t n)
{
    uint64_t count;
    if (ps->in_interval)
        return pr_fail(ps, "interval %" PRIu64 " has no end line",
                       ps->cur.seq);
    if (!pr_header_complete(ps) || !PR_FIELD_COUNT(ps, n, 2, "complete"))
        return false;
    if (!pr_u64(f[1], UINT64_MAX, &count) || count != ps->out->nintervals)
        return pr_fail(ps, "trailer counts \"%.*s\" intervals, the file "
                       "has %zu", (int)(f[1].n > 24 ? 24 : f[1].n), f[1].p,
                       ps->out->nintervals);
    ps->trailer = true;
    return true;
}

/* ---------------------------------------------------------------- driver */

static bool pr_line(parser_t *ps, span_t line)
{
    span_t f[PR_FIELDS_MAX];
    size_t n = pr_split(line, f);
    if (ps->line == 1)
        return pr_magic(ps, f, n);
    if (n == 0 || f[0].p[0] == '#')
        return true; /* blank lines and comments */
    if (n > PR_FIELDS_MAX)
        return pr_fail(ps, "too many fields");
    if (ps->trailer)
        return pr_fail(ps, "a line after the trailer");
    if (ps->out->nintervals == 0 && !ps->in_interval) {
        bool handled;
        bool ok = pr_header_line(ps, line, f, n, &handled);
        if (handled)
            return ok;
    }
    if (sp_eq(f[0], "interval"))
        return pr_interval_start(ps, f, n);
    if (sp_eq(f[0], "complete"))
        return pr_trailer(ps, f, n);
    if (!ps->in_interval)
        return pr_fail(ps, "unknown or misplaced line \"%.*s\"",
                       (int)(f[0].n > 40 ? 40 : f[0].n), f[0].p);
    if (sp_eq(f[0], "arena"))
        return pr_arena_row(ps, f, n);
    if (sp_eq(f[0], "resident"))
        return pr_resident_row(ps, f, n);
    if (sp_eq(f[0], "sitedef"))
        return pr_sitedef(ps, f, n);
    if (sp_eq(f[0], "site"))
        return pr_site_row(ps, f, n);
    if (sp_eq(f[0], "end"))
        return pr_interval_end(ps, f, n);
    return pr_fail(ps, "unknown line \"%.*s\"",
                   (int)(f[0].n > 40 ? 40 : f[0].n), f[0].p);
}

/* The totals, ascending, from the per-arena and per-site state. */
static bool pr_totals(parser_t *ps)
{
    profile_t *out = ps->out;
    out->narenas = 0;
    out->arenas = calloc(ps->nseen_ids ? ps->nseen_ids : 1,
                         sizeof *out->arenas);
    out->sites = calloc(ps->nsites ? ps->nsites : 1, sizeof *out->sites);
    if (out->arenas == NULL || out->sites == NULL)
        return pr_fail(ps, "out of memory for the totals");
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++)
        if (ps->arenas[id].seen)
            out->arenas[out->narenas++] = ps->arenas[id].total;
    for (size_t i = 0; i < ps->nsites; i++)
        if (ps->sites[i].seen)
            out->sites[out->nsites++] = ps->sites[i].total;
    return true;
}

static bool pr_run(parser_t *ps, const char *text, size_t len)
{
    const char *pos = text, *end = text + len;
    if (len == 0) {
        ps->line = 1;
        return pr_fail(ps, "empty file, not a tiermem profile");
    }
    while (pos < end) {
        const char *nl = memchr(pos, '\n', (size_t)(end - pos));
        if (nl == NULL)
            break; /* a torn last line: as if never written */
        span_t line = {pos, (size_t)(nl - pos)};
        if (line.n > 0 && line.p[line.n - 1] == '\r')
            line.n--;
        pos = nl + 1;
        ps->line++;
        if (memchr(line.p, '\0', line.n) != NULL)
            return pr_fail(ps, "a NUL byte in the line");
        if (!pr_line(ps, line))
            return false;
    }
    if (ps->line == 0) {
        ps->line = 1;
        return pr_fail(ps, "no whole line, not a tiermem profile");
    }
    /* An interval without its end line is a torn write: dropped. */
    return (ps->out->nintervals > 0 || pr_header_complete(ps)) &&
           pr_totals(ps);
}

int profile_parse(const char *text, size_t len, const char *name,
                  profile_t *out)
{
    if (out == NULL || (text == NULL && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->header.rank = -1;
    parser_t ps = {.name = name ? name : "(profile)", .out = out};
    ps.arenas = calloc(TM_MAX_ARENAS + 1, sizeof *ps.arenas);
    bool ok = ps.arenas != NULL
                  ? pr_run(&ps, text, len)
                  : (ps.line = 1, pr_fail(&ps, "out of memory"));
    free(ps.cur.arenas);
    free(ps.cur.residency);
    free(ps.cur.sites);
    free(ps.arenas);
    free(ps.seen_ids);
    free(ps.sites);
    if (!ok) {
        profile_free(out);
        errno = EINVAL;
        return -1;
    }
    out->complete = ps.trailer;
    return 0;
}

/* The whole file into a malloc'd buffer. */
static char *pr_slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        tm_log_error("%s: cannot open the profile (errno %d)", path, e);
        errno = e;
        return NULL;
    }
    struct stat st;
    size_t cap = fstat(fd, &st) == 0 && st.st_size > 0
                     ? (size_t)st.st_size + 1 : 4096, n = 0;
    char *buf = malloc(cap);
    int e = ENOMEM;
    while (buf != NULL) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            e = errno;
            free(buf);
            buf = NULL;
            break;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    if (buf == NULL)
        tm_log_error("%s: cannot read the profile from fd %d (errno %d)",
                     path, fd, e);
    close(fd);
    *len = n;
    if (buf == NULL)
        errno = e;
    return buf;
}

int profile_read(const char *path, profile_t *out)
{
    size_t len;
    if (path == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    char *text = pr_slurp(path, &len);
    if (text == NULL)
        return -1;
    int rc = profile_parse(text, len, path, out);
    int e = errno;
    free(text);
    errno = e;
    return rc;
}

void profile_free(profile_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nintervals; i++) {
        free(p->intervals[i].arenas);
        free(p->intervals[i].residency);
        free(p->intervals[i].sites);
    }
    free(p->intervals);
    free(p->sites);
    free(p->arenas);
    memset(p, 0, sizeof *p);
}
