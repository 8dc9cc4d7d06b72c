/*
 * profile_read.c -- the profile reader the tools and the policy use.
 *
 * Reads a whole profile (doc/profile-format.md), finished or a .partial a
 * crash left behind, and assembles it: which line may come where, the
 * intervals, and the heat and totals carried from one interval to the
 * next.  The lines themselves are parsed in profile_parse.c.  The one
 * tolerated damage is a torn end: a last line without its newline and an
 * interval without its end line are dropped.  Every total (per arena, per
 * site, and the intervals' samples the tools add up) fits 64 bits: a file
 * whose counts add up past that is refused at the end line where they do.
 * Heat is not in the file; it is recomputed here from the samples with
 * prof_heat_update, as attribution computed it.  Runs in tools and offline
 * passes, never on the profiling thread, so it uses malloc.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profile_parse.h"

/* ---------------------------------------------------------- intervals */

static bool pr_interval_start(profile_parser_t *ps, const text_span_t *f,
                              size_t n)
{
    prof_interval_t *c = &ps->cur;
    if (ps->in_interval)
        return profile_parse_fail(ps, "interval %" PRIu64 " has no end line",
                                  c->seq);
    if (!profile_parse_header_complete(ps) ||
        !PROFILE_FIELD_COUNT(ps, n, 7, "interval"))
        return false;
    /* cur is empty here: the last interval's rows went to the profile. */
    uint64_t *dst[6] = {&c->seq, &c->t_start_ns, &c->t_end_ns, &c->samples,
                        &c->unattributed, &c->lost};
    if (!profile_parse_nums(ps, f, 1, 6, dst, "interval"))
        return false;
    size_t prev = ps->out->nintervals;
    if (c->seq == 0 ||
        (prev > 0 && c->seq <= ps->out->intervals[prev - 1].seq))
        return profile_parse_fail(ps, "interval %" PRIu64 " does not "
                                  "follow the last one", c->seq);
    if (c->t_end_ns < c->t_start_ns)
        return profile_parse_fail(ps, "interval %" PRIu64 " ends before it "
                                  "starts", c->seq);
    ps->in_interval = true;
    ps->section = PROFILE_SEC_ARENAS;
    return true;
}

/* A total that would wrap: the one error of the parse, at the end line. */
static bool pr_sum_fail(profile_parser_t *ps, const char *what,
                        uint64_t id)
{
    return profile_parse_fail(ps, "%s %" PRIu64 "'s samples up to interval %"
                              PRIu64 " add up past 2^64 - 1: not a real "
                              "profile", what, id, ps->cur.seq);
}

/* Heat and totals of the arenas, as of the interval being closed.  A row
 * with another serial than the id's last one is a new arena in a reused
 * id: its heat restarts from 0, as attribution.c restarts it.  (An id
 * whose arena vanished has no row until a new arena, with a new serial,
 * takes it; an omitted row means the same arena, unchanged.) */
static bool pr_close_arenas(profile_parser_t *ps, prof_interval_t *c)
{
    for (size_t i = 0; i < c->narenas; i++) {
        profile_parser_arena_t *a = &ps->arenas[c->arenas[i].id];
        if (a->seen && a->serial != c->arenas[i].serial)
            a->heat = 0;
        a->serial = c->arenas[i].serial;
        if (!a->seen) {
            if (!profile_parse_grow(ps, (void **)&ps->seen_ids,
                                    &ps->seen_ids_cap, ps->nseen_ids,
                                    sizeof *ps->seen_ids))
                return false;
            ps->seen_ids[ps->nseen_ids++] = c->arenas[i].id;
            a->seen = true;
        }
        a->pending = c->arenas[i].samples;
    }
    for (size_t i = 0; i < ps->nseen_ids; i++) {
        profile_parser_arena_t *a = &ps->arenas[ps->seen_ids[i]];
        a->heat = prof_heat_update(a->heat, a->pending, ps->decay);
        a->pending = 0;
    }
    for (size_t i = 0; i < c->narenas; i++) {
        prof_arena_row_t *r = &c->arenas[i];
        profile_parser_arena_t *a = &ps->arenas[r->id];
        r->heat = a->heat;
        a->total.id = r->id;
        a->total.kind = r->kind;
        if (!profile_sum_add(&a->total.samples, r->samples))
            return pr_sum_fail(ps, "arena", r->id);
        if (r->mapped > a->total.peak_mapped)
            a->total.peak_mapped = r->mapped;
        if (r->resident_valid)
            a->total.last_resident = r->resident;
    }
    return true;
}

static bool pr_close_sites(profile_parser_t *ps, prof_interval_t *c)
{
    bool found;
    for (size_t i = 0; i < c->nsites; i++) {
        profile_parser_site_t *s =
            &ps->sites[profile_parse_site_find(ps, c->sites[i].index,
                                               &found)];
        s->seen = true;
        s->pending = c->sites[i].samples;
    }
    for (size_t i = 0; i < ps->nsites; i++) {
        profile_parser_site_t *s = &ps->sites[i];
        if (!s->seen)
            continue;
        s->heat = prof_heat_update(s->heat, s->pending, ps->decay);
        s->pending = 0;
    }
    for (size_t i = 0; i < c->nsites; i++) {
        prof_site_row_t *r = &c->sites[i];
        profile_parser_site_t *s =
            &ps->sites[profile_parse_site_find(ps, r->index, &found)];
        struct prof_site_total *t = &s->total;
        r->heat = s->heat;
        uint64_t peak = t->stats.peak > r->stats.peak ? t->stats.peak
                                                      : r->stats.peak;
        uint64_t samples = t->samples;
        if (!profile_sum_add(&samples, r->samples))
            return pr_sum_fail(ps, "site", r->index);
        *t = (struct prof_site_total){
            .index = r->index, .key = r->key, .explicit_id = r->explicit_id,
            .arena = r->arena, .samples = samples, .stats = r->stats};
        t->stats.peak = peak;
    }
    return true;
}

static bool pr_interval_end(profile_parser_t *ps, const text_span_t *f,
                            size_t n)
{
    prof_interval_t *c = &ps->cur;
    uint64_t seq;
    profile_t *out = ps->out;
    if (!ps->in_interval)
        return profile_parse_fail(ps, "end line outside an interval");
    if (!PROFILE_FIELD_COUNT(ps, n, 2, "end"))
        return false;
    if (!text_dec_u64(f[1], UINT64_MAX, &seq) || seq != c->seq)
        return profile_parse_fail(ps, "end line does not name interval %"
                                  PRIu64, c->seq);
    /* the tools add up the intervals' samples: that sum must fit too */
    if (!profile_sum_add(&ps->samples, c->samples))
        return profile_parse_fail(ps, "the intervals' samples up to "
                                  "interval %" PRIu64 " add up past 2^64 - "
                                  "1: not a real profile", c->seq);
    if (!profile_parse_grow(ps, (void **)&out->intervals,
                            &ps->intervals_cap, out->nintervals,
                            sizeof *out->intervals) ||
        !pr_close_arenas(ps, c) || !pr_close_sites(ps, c))
        return false;
    out->intervals[out->nintervals++] = *c;
    /* The rows now belong to the profile; the next interval starts afresh. */
    *c = (prof_interval_t){0};
    ps->arenas_cap = ps->residency_cap = ps->sites_cap = 0;
    ps->in_interval = false;
    return true;
}

static bool pr_trailer(profile_parser_t *ps, const text_span_t *f,
                       size_t n)
{
    uint64_t count;
    if (ps->in_interval)
        return profile_parse_fail(ps, "interval %" PRIu64 " has no end line",
                                  ps->cur.seq);
    if (!profile_parse_header_complete(ps) ||
        !PROFILE_FIELD_COUNT(ps, n, 2, "complete"))
        return false;
    if (!text_dec_u64(f[1], UINT64_MAX, &count) ||
        count != ps->out->nintervals)
        return profile_parse_fail(ps, "trailer counts \"%.*s\" intervals, "
                                  "the file has %zu",
                                  (int)(f[1].n > 24 ? 24 : f[1].n), f[1].p,
                                  ps->out->nintervals);
    ps->trailer = true;
    return true;
}

/* sampler_totals (version 3): once, after the last interval, before the
 * trailer. */
static bool pr_sampler_totals(profile_parser_t *ps, const text_span_t *f,
                              size_t n)
{
    profile_t *out = ps->out;
    if (ps->in_interval)
        return profile_parse_fail(ps, "sampler_totals inside interval %"
                                  PRIu64, ps->cur.seq);
    if (out->has_sampler_totals)
        return profile_parse_fail(ps, "second \"sampler_totals\" line");
    if (!profile_parse_header_complete(ps) ||
        !PROFILE_FIELD_COUNT(ps, n, 7, "sampler_totals"))
        return false;
    prof_sampler_totals_t *t = &out->sampler_totals;
    uint64_t *dst[6] = {&t->samples, &t->no_addr, &t->foreign, &t->kernel,
                        &t->lost, &t->throttles};
    if (!profile_parse_nums(ps, f, 1, 6, dst, "sampler_totals"))
        return false;
    out->has_sampler_totals = true;
    return true;
}

/* ---------------------------------------------------------------- driver */

static bool pr_line(profile_parser_t *ps, text_span_t line)
{
    text_span_t f[PROFILE_FIELDS_MAX];
    size_t n = text_fields(line, f, PROFILE_FIELDS_MAX);
    if (ps->line == 1)
        return profile_parse_magic(ps, f, n);
    if (n == 0 || f[0].p[0] == '#')
        return true; /* blank lines and comments */
    if (n > PROFILE_FIELDS_MAX)
        return profile_parse_fail(ps, "too many fields");
    if (ps->trailer)
        return profile_parse_fail(ps, "a line after the trailer");
    if (ps->out->nintervals == 0 && !ps->in_interval) {
        bool handled;
        bool ok = profile_parse_header_line(ps, line, f, n, &handled);
        if (handled)
            return ok;
    }
    if (span_eq(f[0], "interval"))
        return pr_interval_start(ps, f, n);
    if (span_eq(f[0], "complete"))
        return pr_trailer(ps, f, n);
    if (span_eq(f[0], "sampler_totals") && ps->version >= 3)
        return pr_sampler_totals(ps, f, n);
    if (!ps->in_interval)
        return profile_parse_fail(ps, "unknown or misplaced line \"%.*s\"",
                                  (int)(f[0].n > 40 ? 40 : f[0].n), f[0].p);
    if (span_eq(f[0], "arena"))
        return profile_parse_arena_row(ps, f, n);
    if (span_eq(f[0], "resident"))
        return profile_parse_resident_row(ps, f, n);
    if (span_eq(f[0], "sitedef"))
        return profile_parse_sitedef(ps, f, n);
    if (span_eq(f[0], "site"))
        return profile_parse_site_row(ps, f, n);
    if (span_eq(f[0], "end"))
        return pr_interval_end(ps, f, n);
    return profile_parse_fail(ps, "unknown line \"%.*s\"",
                              (int)(f[0].n > 40 ? 40 : f[0].n), f[0].p);
}

/* The totals, ascending, from the per-arena and per-site state. */
static bool pr_totals(profile_parser_t *ps)
{
    profile_t *out = ps->out;
    out->narenas = 0;
    out->arenas = calloc(ps->nseen_ids ? ps->nseen_ids : 1,
                         sizeof *out->arenas);
    out->sites = calloc(ps->nsites ? ps->nsites : 1, sizeof *out->sites);
    if (out->arenas == NULL || out->sites == NULL)
        return profile_parse_fail(ps, "out of memory for the totals");
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++)
        if (ps->arenas[id].seen)
            out->arenas[out->narenas++] = ps->arenas[id].total;
    for (size_t i = 0; i < ps->nsites; i++)
        if (ps->sites[i].seen)
            out->sites[out->nsites++] = ps->sites[i].total;
    return true;
}

static bool pr_run(profile_parser_t *ps, const char *text, size_t len)
{
    text_lines_t it;
    text_span_t line;
    if (len == 0) {
        ps->line = 1;
        return profile_parse_fail(ps, "empty file, not a tiermem profile");
    }
    text_lines_init(&it, text, len);
    while (text_next_line(&it, &line) && !it.torn) {
        /* a torn last line is as if never written */
        ps->line = it.line;
        if (memchr(line.p, '\0', line.n) != NULL)
            return profile_parse_fail(ps, "a NUL byte in the line");
        if (!pr_line(ps, line))
            return false;
    }
    if (ps->line == 0) {
        ps->line = 1;
        return profile_parse_fail(ps, "no whole line, not a tiermem "
                                  "profile");
    }
    /* An interval without its end line is a torn write: dropped. */
    return (ps->out->nintervals > 0 || profile_parse_header_complete(ps)) &&
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
    profile_parser_t ps = {.name = name ? name : "(profile)", .out = out};
    ps.arenas = calloc(TM_MAX_ARENAS + 1, sizeof *ps.arenas);
    bool ok = ps.arenas != NULL
                  ? pr_run(&ps, text, len)
                  : (ps.line = 1, profile_parse_fail(&ps, "out of memory"));
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

/* ---------------------------------------------------------------- file */

/* Profiles of long runs are big, but not this big. */
#define PROFILE_MAX_BYTES ((size_t)16 << 30)

int profile_read(const char *path, profile_t *out)
{
    size_t len;
    if (path == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    size_t cap;
    char *text = read_file_accepting(path, "profile", TM_LOG_ERROR,
                                        TM_FILE_ALLOW_FIFO, /* <(cmd) */
                                        PROFILE_MAX_BYTES, &len, &cap);
    if (text == NULL)
        return -1;
    int rc = profile_parse(text, len, path, out);
    int e = errno;
    meta_free(text, cap);
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
