/*
 * profile_parse.h -- the profile reader's parser state and line parsers,
 * shared by profile_parse.c (the lines of doc/profile-format.md into
 * structs) and profile_read.c (the file, intervals, heat and totals).
 *
 * Private to those two files; nothing here is part of profiler.h.
 */
#ifndef TM_PROFILE_PARSE_H
#define TM_PROFILE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "profiler.h"

/* ---------------------------------------------------------------- state */

#define PROFILE_FIELDS_MAX 16

/* Where in an interval the parser is: rows come in this order. */
enum { PROFILE_SEC_ARENAS, PROFILE_SEC_RESIDENCY, PROFILE_SEC_SITES };

typedef struct profile_parser_arena {
    bool seen;          /* has a row in a complete interval */
    uint64_t serial;    /* of the arena in the id's last row */
    double heat;
    uint64_t pending;   /* samples of the interval being closed */
    struct prof_arena_total total;
} profile_parser_arena_t;

typedef struct profile_parser_site {
    uint32_t index;
    uint64_t key;       /* from the latest definition line */
    int32_t explicit_id;
    bool seen;
    double heat;
    uint64_t pending;
    struct prof_site_total total;
} profile_parser_site_t;

typedef struct profile_parser {
    const char *name;
    size_t line;
    bool failed;
    profile_t *out;
    unsigned version;      /* from the first line: 1, 2 or 3 */
    unsigned header;       /* header lines seen (profile_parse.c's bits) */
    double decay;
    size_t intervals_cap;
    bool in_interval, trailer;
    int section;           /* PROFILE_SEC_* */
    prof_interval_t cur;
    uint64_t samples;      /* of the complete intervals so far */
    size_t arenas_cap, residency_cap, sites_cap;
    profile_parser_arena_t *arenas; /* TM_MAX_ARENAS + 1, by id */
    unsigned *seen_ids;    /* arenas with seen set, in order of appearance */
    size_t nseen_ids, seen_ids_cap;
    profile_parser_site_t *sites;   /* ascending index */
    size_t nsites, site_table_cap;
} profile_parser_t;

/* ---------------------------------------------------------------- errors */

/* Log the one error of this parse as "name:line: what" and stop; false. */
__attribute__((format(printf, 2, 3)))
bool profile_parse_fail(profile_parser_t *ps, const char *fmt, ...);

/* *total += add, or false when that passes 2^64 - 1: no real run counts
 * that many samples, so the file is damaged or forged, and a wrapped sum
 * would rank a hot site as cold. */
static inline bool profile_sum_add(uint64_t *total, uint64_t add)
{
    if (add > UINT64_MAX - *total)
        return false;
    *total += add;
    return true;
}

/* Room for one more element of elem bytes at *arr[n]; false if no memory. */
bool profile_parse_grow(profile_parser_t *ps, void **arr, size_t *cap,
                        size_t n, size_t elem);

/* ---------------------------------------------------------------- fields */

/* Fields are split and numbers read by base/text.c (text_fields,
 * text_dec_u64, ...); PROFILE_FIELDS_MAX bounds a line's fields. */

/* Parse fields f[first..] as unsigned numbers into the pointers given. */
bool profile_parse_nums(profile_parser_t *ps, const text_span_t *f,
                        size_t first, size_t n, uint64_t *const *dst,
                        const char *what);

#define PROFILE_FIELD_COUNT(ps, n, want, what)                                \
    ((n) == (want) ? true                                                     \
                   : profile_parse_fail(ps, "%s line has %zu fields, not %d", \
                                        what, (size_t)(n), (int)(want)))

/* ---------------------------------------------------------------- lines */

/* The first line, "tiermem-profile VERSION". */
bool profile_parse_magic(profile_parser_t *ps, const text_span_t *f,
                         size_t n);
/* A header line into ps->out->header; *handled false if it is not one
 * (then the result is false without a failure). */
bool profile_parse_header_line(profile_parser_t *ps, text_span_t line,
                               const text_span_t *f, size_t n,
                               bool *handled);
/* Every header line must be there before the first interval. */
bool profile_parse_header_complete(profile_parser_t *ps);

/* Rows of the interval being read, appended to ps->cur. */
bool profile_parse_arena_row(profile_parser_t *ps, const text_span_t *f,
                             size_t n);
bool profile_parse_resident_row(profile_parser_t *ps, const text_span_t *f,
                                size_t n);
/* A site definition, into the site table ps->sites. */
bool profile_parse_sitedef(profile_parser_t *ps, const text_span_t *f,
                           size_t n);
bool profile_parse_site_row(profile_parser_t *ps, const text_span_t *f,
                            size_t n);

/* The site table slot for index: found, or where it would go. */
size_t profile_parse_site_find(const profile_parser_t *ps, uint32_t index,
                               bool *found);

#endif /* TM_PROFILE_PARSE_H */
