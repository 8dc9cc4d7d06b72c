/*
 * profile_parse.c -- the lines of a profile file (doc/profile-format.md)
 * into structs: keywords, the header lines and the rows of an interval,
 * and the one error a parse reports, "name:line: what".  Lines, fields and
 * numbers are base/text.c's, as for every line format.
 *
 * Strict for versions 1 to 3 (2 adds the arena serial, 3 the sampler_detail
 * and sampler_totals lines): a line it does not understand is an error, because
 * the only writer is ours and a surprise means a bug or a damaged file.
 * Which line may come where, the intervals, heat and totals are the
 * reader's (profile_read.c).  Runs in tools and offline passes, never on
 * the profiling thread, so it uses malloc.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_parse.h"

/* Header lines, each required once. */
enum {
    PR_H_EXE = 1 << 0, PR_H_PID = 1 << 1, PR_H_RANK = 1 << 2,
    PR_H_SAMPLER = 1 << 3, PR_H_INTERVAL = 1 << 4, PR_H_HALFLIFE = 1 << 5,
    PR_H_START = 1 << 6, PR_H_ALL = (1 << 7) - 1,
    PR_H_DETAIL = 1 << 7, /* optional (version 3) */
};

/* ---------------------------------------------------------------- errors */

bool profile_parse_fail(profile_parser_t *ps, const char *fmt, ...)
{
    char what[256], where[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!ps->failed)
        log_error("%s", text_error(where, sizeof where, ps->name, ps->line,
                                   "%s", what));
    ps->failed = true;
    return false;
}

bool profile_parse_grow(profile_parser_t *ps, void **arr, size_t *cap,
                        size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = ncap > SIZE_MAX / elem ? NULL : realloc(*arr, ncap * elem);
    if (p == NULL)
        return profile_parse_fail(ps, "out of memory for %zu entries", ncap);
    *arr = p;
    *cap = ncap;
    return true;
}

/* ---------------------------------------------------------------- fields */

/* "0x" and 1..16 hex digits. */
static bool pr_hex(text_span_t s, uint64_t *v)
{
    return text_hex_u64(s, TEXT_HEX_PREFIX_REQUIRED | TEXT_HEX_MAX_16_DIGITS,
                        v);
}

bool profile_parse_nums(profile_parser_t *ps, const text_span_t *f,
                        size_t first, size_t n, uint64_t *const *dst,
                        const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!text_dec_u64(f[first + i], UINT64_MAX, dst[i]))
            return profile_parse_fail(
                ps, "%s: field %zu (\"%.*s\") is not a number that fits 64 "
                "bits", what, first + i + 1,
                (int)(f[first + i].n > 40 ? 40 : f[first + i].n),
                f[first + i].p);
    return true;
}

static bool pr_kind(text_span_t s, uint8_t *kind)
{
    static const char *const names[] = {"user", "site", "shared"};
    for (uint8_t k = 0; k < 3; k++)
        if (span_eq(s, names[k])) {
            *kind = k;
            return true;
        }
    return false;
}

static bool pr_mode(text_span_t s, tm_mode_t *mode)
{
    static const char *const names[] = {"none", "bind", "preferred",
                                        "interleave"};
    for (int m = 0; m < 4; m++)
        if (span_eq(s, names[m])) {
            *mode = (tm_mode_t)m;
            return true;
        }
    return false;
}

/* ---------------------------------------------------------------- header */

bool profile_parse_magic(profile_parser_t *ps, const text_span_t *f,
                         size_t n)
{
    uint64_t v;
    if (n == 0 || !span_eq(f[0], "tiermem-profile"))
        return profile_parse_fail(ps, "not a tiermem profile (the first "
                                  "line must be \"tiermem-profile %d\")",
                                  PROF_FORMAT_VERSION);
    if (n != 2 || !text_dec_u64(f[1], UINT32_MAX, &v) || v == 0)
        return profile_parse_fail(ps, "bad format version line");
    if (v > PROF_FORMAT_VERSION)
        return profile_parse_fail(ps, "profile format version %" PRIu64
                                  " is newer than this reader understands "
                                  "(%d); use a newer tiermem", v,
                                  PROF_FORMAT_VERSION);
    ps->version = (unsigned)v;
    return true;
}

static bool pr_once(profile_parser_t *ps, unsigned bit, const char *kw)
{
    if (ps->header & bit)
        return profile_parse_fail(ps, "second \"%s\" line", kw);
    ps->header |= bit;
    return true;
}

static bool pr_halflife(profile_parser_t *ps, text_span_t f)
{
    double v;
    if (!text_double(f, &v))
        return profile_parse_fail(ps, "halflife \"%.*s\" is not a finite "
                                  "number", (int)(f.n > 40 ? 40 : f.n), f.p);
    ps->out->header.halflife = v;
    ps->decay = prof_heat_decay(v);
    return true;
}

static bool pr_node(profile_parser_t *ps, const text_span_t *f, size_t n)
{
    prof_header_t *h = &ps->out->header;
    uint64_t id, tier, cap;
    if (!PROFILE_FIELD_COUNT(ps, n, 4, "node"))
        return false;
    if (h->nnodes == TM_MAX_NODES)
        return profile_parse_fail(ps, "more than %d node lines",
                                  TM_MAX_NODES);
    if (!text_dec_u64(f[1], TM_MAX_NODES - 1, &id) ||
        !text_dec_u64(f[2], TM_MAX_NODES - 1, &tier) ||
        !text_dec_u64(f[3], UINT64_MAX, &cap))
        return profile_parse_fail(ps, "bad node line (id and tier below "
                                  "%d, capacity in bytes)", TM_MAX_NODES);
    h->nodes[h->nnodes++] = (prof_node_t){(unsigned)id, (unsigned)tier, cap};
    return true;
}

/* The rest of the line after the keyword f0 and one blank, blanks
 * included, into dst (cap bytes); false when it does not fit. */
static bool pr_rest(profile_parser_t *ps, text_span_t line, text_span_t f0,
                    char *dst, size_t cap)
{
    const char *start = f0.p + f0.n, *end = line.p + line.n;
    start += start < end; /* the one blank after the keyword */
    size_t n = (size_t)(end - start);
    if (n >= cap)
        return profile_parse_fail(ps, "%.*s longer than %zu bytes",
                                  (int)f0.n, f0.p, cap - 1);
    memcpy(dst, start, n);
    dst[n] = '\0';
    return true;
}

bool profile_parse_header_line(profile_parser_t *ps, text_span_t line,
                               const text_span_t *f, size_t n,
                               bool *handled)
{
    prof_header_t *h = &ps->out->header;
    int64_t v;
    *handled = true;
    if (span_eq(f[0], "exe"))
        return pr_rest(ps, line, f[0], h->exe, sizeof h->exe) &&
               pr_once(ps, PR_H_EXE, "exe");
    if (span_eq(f[0], "sampler_detail") && ps->version >= 3)
        return pr_rest(ps, line, f[0], h->sampler_detail,
                       sizeof h->sampler_detail) &&
               pr_once(ps, PR_H_DETAIL, "sampler_detail");
    if (span_eq(f[0], "pid") || span_eq(f[0], "rank")) {
        bool pid = f[0].n == 3;
        if (!PROFILE_FIELD_COUNT(ps, n, 2, pid ? "pid" : "rank"))
            return false;
        if (!text_dec_i64(f[1], pid ? 0 : -1, pid ? INT32_MAX : INT32_MAX, &v))
            return profile_parse_fail(ps, "bad %s", pid ? "pid" : "rank");
        if (pid)
            h->pid = (long)v;
        else
            h->rank = (int)v;
        return pr_once(ps, pid ? PR_H_PID : PR_H_RANK, pid ? "pid" : "rank");
    }
    if (span_eq(f[0], "sampler")) {
        if (!PROFILE_FIELD_COUNT(ps, n, 2, "sampler"))
            return false;
        if (f[1].n >= sizeof h->sampler)
            return profile_parse_fail(ps, "sampler name too long");
        if (!span_eq(f[1], "-"))
            memcpy(h->sampler, f[1].p, f[1].n);
        return pr_once(ps, PR_H_SAMPLER, "sampler");
    }
    if (span_eq(f[0], "interval_ns") ||
        span_eq(f[0], "start_unix_ms")) {
        bool iv = f[0].p[0] == 'i';
        const char *kw = iv ? "interval_ns" : "start_unix_ms";
        if (!PROFILE_FIELD_COUNT(ps, n, 2, kw))
            return false;
        uint64_t *dst[1] = {iv ? &h->interval_ns : &h->start_unix_ms};
        return profile_parse_nums(ps, f, 1, 1, dst, kw) &&
               pr_once(ps, iv ? PR_H_INTERVAL : PR_H_START, kw);
    }
    if (span_eq(f[0], "halflife"))
        return PROFILE_FIELD_COUNT(ps, n, 2, "halflife") &&
               pr_halflife(ps, f[1]) &&
               pr_once(ps, PR_H_HALFLIFE, "halflife");
    if (span_eq(f[0], "node"))
        return pr_node(ps, f, n);
    *handled = false;
    return false;
}

bool profile_parse_header_complete(profile_parser_t *ps)
{
    static const char *const names[] = {"exe", "pid", "rank", "sampler",
                                        "interval_ns", "halflife",
                                        "start_unix_ms"};
    for (unsigned i = 0; i < 7; i++)
        if (!(ps->header & (1u << i)))
            return profile_parse_fail(ps, "header incomplete: no \"%s\" "
                                      "line", names[i]);
    return true;
}

/* ---------------------------------------------------------------- rows */

bool profile_parse_arena_row(profile_parser_t *ps, const text_span_t *f,
                             size_t n)
{
    prof_interval_t *c = &ps->cur;
    uint64_t id, owner;
    if (ps->section != PROFILE_SEC_ARENAS)
        return profile_parse_fail(ps, "arena row after residency or site "
                                  "rows");
    /* Version 2 appends the arena's serial; version 1 has none (0). */
    size_t want = ps->version >= 2 ? 15 : 14;
    if (!PROFILE_FIELD_COUNT(ps, n, want, "arena") ||
        !profile_parse_grow(ps, (void **)&c->arenas, &ps->arenas_cap,
                            c->narenas, sizeof *c->arenas))
        return false;
    prof_arena_row_t r = {0};
    if (!text_dec_u64(f[1], TM_MAX_ARENAS, &id) || id == 0 ||
        (c->narenas > 0 && id <= c->arenas[c->narenas - 1].id))
        return profile_parse_fail(ps, "arena id \"%.*s\" not in 1..%d or "
                                  "not ascending",
                                  (int)(f[1].n > 24 ? 24 : f[1].n), f[1].p,
                                  TM_MAX_ARENAS);
    if (!pr_kind(f[2], &r.kind) ||
        !text_dec_u64(f[3], UINT32_MAX, &owner) ||
        !pr_mode(f[4], &r.placement.mode) ||
        !pr_hex(f[5], &r.placement.nodes))
        return profile_parse_fail(ps, "bad arena kind, owner or placement");
    tm_alloc_stats_t *s = &r.stats;
    uint64_t *dst[7] = {&r.samples, &r.mapped, &s->allocs, &s->frees,
                        &s->bytes, &s->live, &s->peak};
    if (!profile_parse_nums(ps, f, 6, 7, dst, "arena"))
        return false;
    r.resident_valid = !span_eq(f[13], "-");
    uint64_t *res[1] = {&r.resident};
    if (r.resident_valid && !profile_parse_nums(ps, f, 13, 1, res, "arena"))
        return false;
    uint64_t *ser[1] = {&r.serial};
    if (want == 15 && !profile_parse_nums(ps, f, 14, 1, ser, "arena"))
        return false;
    r.id = (unsigned)id;
    r.owner_site = (uint32_t)owner;
    c->arenas[c->narenas++] = r;
    return true;
}

bool profile_parse_resident_row(profile_parser_t *ps, const text_span_t *f,
                                size_t n)
{
    prof_interval_t *c = &ps->cur;
    uint64_t arena, node, bytes;
    if (ps->section > PROFILE_SEC_RESIDENCY)
        return profile_parse_fail(ps, "resident row after site rows");
    ps->section = PROFILE_SEC_RESIDENCY;
    if (!PROFILE_FIELD_COUNT(ps, n, 4, "resident") ||
        !profile_parse_grow(ps, (void **)&c->residency, &ps->residency_cap,
                            c->nresidency, sizeof *c->residency))
        return false;
    if (!text_dec_u64(f[1], TM_MAX_ARENAS, &arena) ||
        !text_dec_u64(f[2], TM_MAX_NODES - 1, &node) ||
        !text_dec_u64(f[3], UINT64_MAX, &bytes))
        return profile_parse_fail(ps, "bad resident row (arena, node below "
                                  "%d, bytes)", TM_MAX_NODES);
    const prof_residency_row_t *p =
        c->nresidency ? &c->residency[c->nresidency - 1] : NULL;
    if (p != NULL && (arena < p->arena || (arena == p->arena &&
                                           node <= p->node)))
        return profile_parse_fail(ps, "resident rows not ascending by "
                                  "(arena, node)");
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
        return profile_parse_fail(ps, "resident row for arena %" PRIu64
                                  ", which has no row with a resident "
                                  "figure", arena);
    c->residency[c->nresidency++] =
        (prof_residency_row_t){(unsigned)arena, (unsigned)node, bytes};
    return true;
}

size_t profile_parse_site_find(const profile_parser_t *ps, uint32_t index,
                               bool *found)
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

bool profile_parse_sitedef(profile_parser_t *ps, const text_span_t *f,
                           size_t n)
{
    uint64_t index, key;
    int64_t id;
    ps->section = PROFILE_SEC_SITES;
    if (!PROFILE_FIELD_COUNT(ps, n, 4, "sitedef"))
        return false;
    if (!text_dec_u64(f[1], UINT32_MAX, &index) || !pr_hex(f[2], &key) ||
        !text_dec_i64(f[3], -1, INT32_MAX, &id))
        return profile_parse_fail(ps, "bad sitedef line (index, 0x key, "
                                  "explicit id or -1)");
    bool found;
    size_t at = profile_parse_site_find(ps, (uint32_t)index, &found);
    if (!found) {
        if (!profile_parse_grow(ps, (void **)&ps->sites, &ps->site_table_cap,
                                ps->nsites, sizeof *ps->sites))
            return false;
        memmove(&ps->sites[at + 1], &ps->sites[at],
                (ps->nsites - at) * sizeof *ps->sites);
        ps->sites[at] = (profile_parser_site_t){.index = (uint32_t)index};
        ps->nsites++;
    }
    ps->sites[at].key = key;
    ps->sites[at].explicit_id = (int32_t)id;
    return true;
}

bool profile_parse_site_row(profile_parser_t *ps, const text_span_t *f,
                            size_t n)
{
    prof_interval_t *c = &ps->cur;
    uint64_t index, arena, est;
    ps->section = PROFILE_SEC_SITES;
    if (!PROFILE_FIELD_COUNT(ps, n, 10, "site") ||
        !profile_parse_grow(ps, (void **)&c->sites, &ps->sites_cap,
                            c->nsites, sizeof *c->sites))
        return false;
    prof_site_row_t r = {0};
    if (!text_dec_u64(f[1], UINT32_MAX, &index) ||
        (c->nsites > 0 && index <= c->sites[c->nsites - 1].index))
        return profile_parse_fail(ps, "site index not ascending");
    bool found;
    size_t at = profile_parse_site_find(ps, (uint32_t)index, &found);
    if (!found)
        return profile_parse_fail(ps, "site %" PRIu64 " has no sitedef "
                                  "line before it", index);
    if (!text_dec_u64(f[2], TM_MAX_ARENAS, &arena) ||
        !text_dec_u64(f[4], 1, &est))
        return profile_parse_fail(ps, "bad site arena or estimated flag");
    tm_alloc_stats_t *s = &r.stats;
    uint64_t *dst[5] = {&s->allocs, &s->frees, &s->bytes, &s->live, &s->peak};
    uint64_t *smp[1] = {&r.samples};
    if (!profile_parse_nums(ps, f, 3, 1, smp, "site") ||
        !profile_parse_nums(ps, f, 5, 5, dst, "site"))
        return false;
    r.index = (uint32_t)index;
    r.key = ps->sites[at].key;
    r.explicit_id = ps->sites[at].explicit_id;
    r.arena = (unsigned)arena;
    r.estimated = est != 0;
    c->sites[c->nsites++] = r;
    return true;
}
