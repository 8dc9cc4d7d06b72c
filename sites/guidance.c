/*
 * guidance.c -- the guidance file: which allocation site goes where.
 *
 * A guidance file (format in doc/guidance.md) is a header line
 * "tiermem-guidance 1" and then one rule per line: a site, named by its
 * key (a stack key, or a compiler id: "cc"), or its explicit id, and the
 * tier or node its arena goes to.
 * Files are written by tools and edited by hand, so the parser forgives
 * comments, blank lines, CRLF and blanks; a line it cannot read is logged as
 * "name:line: what is wrong" and skipped, never guessed at.  A missing
 * header or another format version rejects the whole file, because its
 * lines could mean something else.
 *
 * The text need not be NUL-terminated and may be any bytes: every access
 * stays inside [text, text + len).  Rules live in meta_alloc memory,
 * sorted by selector so a lookup is a binary search; nothing here uses
 * malloc, because the preload library loads guidance while it is the
 * process's malloc.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sites.h"

#define GUIDANCE_MAX_BYTES ((size_t)64 << 20)
/* As many rules as TIERMEM_MAX_SITES allows sites: 32 MiB of rules. */
#define GUIDANCE_MAX_RULES ((size_t)1 << 20)
#define GUIDANCE_FIRST_CAP 64
/* Malformed lines logged one by one; the rest are only counted, so a
 * binary file cannot flood the log. */
#define GUIDANCE_MAX_REPORTED 20
#define RULE_FIELDS_MAX 5 /* key|id|cc VALUE tier|node N [mode] */

typedef struct parser {
    const char *name; /* for messages: name_shown's text */
    shown_t name_shown;
    size_t line;      /* 1-based number of the current line */
    size_t reported;  /* malformed lines logged so far */
    guidance_t *g;
} parser_t;

/* ---------------------------------------------------------------- fields */

/* A field as it may appear in a log line: printable, bounded. */
static const char *shown(text_span_t f, shown_t *buf)
{
    return log_shown_n(buf, f.p, f.n);
}

/* ---------------------------------------------------------------- lines */

static void malformed(parser_t *ps, const char *why, text_span_t field)
{
    shown_t buf;
    ps->g->rejected++;
    if (++ps->reported > GUIDANCE_MAX_REPORTED)
        return;
    log_warn("%s:%zu: %s (\"%s\"); line skipped", ps->name, ps->line, why,
                shown(field, &buf));
}

/* The header line; false (logged) rejects the whole file. */
static bool header_ok(parser_t *ps, text_span_t line)
{
    text_span_t f[3];
    shown_t buf;
    size_t n = text_fields(line, f, 2);
    if (!span_eq_nocase(f[0], "tiermem-guidance")) {
        bool sicm = f[0].n >= 5 && memcmp(f[0].p, "=====", 5) == 0;
        log_warn("%s:%zu: the first line must be \"tiermem-guidance 1\", "
                    "not \"%s\"%s; guidance file ignored", ps->name,
                    ps->line, shown(line, &buf),
                    sicm ? " (this looks like a SICM guidance file; see "
                           "doc/guidance.md)" : "");
        return false;
    }
    uint64_t version;
    if (n != 2) {
        log_warn("%s:%zu: header \"%s\" is not \"tiermem-guidance "
                    "VERSION\"; guidance file ignored", ps->name, ps->line,
                    shown(line, &buf));
        return false;
    }
    if (text_dec_u64(f[1], UINT32_MAX, &version) && version == 1)
        return true;
    log_warn("%s:%zu: guidance format version %s is not supported (this "
                "tiermem reads version 1); guidance file ignored", ps->name,
                ps->line, shown(f[1], &buf));
    return false;
}

static bool parse_mode(text_span_t f, tm_mode_t *mode)
{
    static const char *const names[] = {"preferred", "bind", "interleave"};
    static const tm_mode_t modes[] = {TM_MODE_PREFERRED, TM_MODE_BIND,
                                      TM_MODE_INTERLEAVE};
    for (size_t i = 0; i < 3; i++)
        if (span_eq_nocase(f, names[i])) {
            *mode = modes[i];
            return true;
        }
    return false;
}

/* One rule from its fields (n of them, RULE_FIELDS_MAX + 1 meaning "too
 * many").  NULL if it is good, else what is wrong, with *bad set to the
 * text at fault. */
static const char *parse_rule(text_span_t line, const text_span_t *f, size_t n,
                              guidance_rule_t *r, text_span_t *bad)
{
    uint64_t v;
    *bad = line;
    if (n > RULE_FIELDS_MAX) {
        *bad = f[RULE_FIELDS_MAX];
        return "extra field after the rule";
    }
    /* "cc ID" is "key ID" for a compiler id (a compiler site's key is its
     * id), with the id's tag checked: a typo cannot name a stack site. */
    bool cc = span_eq_nocase(f[0], "cc");
    if (span_eq_nocase(f[0], "key") || span_eq_nocase(f[0], "id") || cc)
        r->by_id = span_eq_nocase(f[0], "id");
    else
        return "a rule starts with \"key\", \"id\" or \"cc\"";
    if (n < 4)
        return "too few fields (want: key|id|cc VALUE tier|node N [mode])";
    *bad = f[1];
    if (!r->by_id && !text_hex_u64(f[1], TEXT_HEX_PREFIX_OPTIONAL | TEXT_HEX_MAX_16_DIGITS,
                                        &r->key))
        return cc ? "a compiler id is 16 hex digits, with or without 0x"
                  : "a key is 1 to 16 hex digits, with or without 0x";
    if (cc && !cc_id_valid(r->key))
        return "a compiler id has bits 63..62 = 10 (0x8... to 0xb...)";
    if (r->by_id && !text_dec_u64(f[1], INT32_MAX, &r->key))
        return "an id is a number from 0 to 2147483647";
    *bad = f[2];
    if (span_eq_nocase(f[2], "tier") || span_eq_nocase(f[2], "node"))
        r->target.kind = span_eq_nocase(f[2], "node") ? TM_TARGET_NODE
                                               : TM_TARGET_TIER;
    else
        return "the place is \"tier N\" or \"node N\"";
    *bad = f[3];
    if (!text_dec_u64(f[3], 63, &v))
        return "a tier or node is a number from 0 to 63";
    r->target.index = (unsigned)v;
    r->target.mode = TM_MODE_PREFERRED;
    *bad = n == 5 ? f[4] : f[3];
    if (n == 5 && !parse_mode(f[4], &r->target.mode))
        return "the mode is preferred, bind or interleave";
    return NULL;
}

/* ---------------------------------------------------------------- rules */

/* Append a rule, doubling the array in metadata memory.  False when the
 * cap is reached or memory ran out (logged). */
static bool push(parser_t *ps, const guidance_rule_t *r)
{
    guidance_t *g = ps->g;
    if (g->count == g->cap) {
        if (g->cap >= GUIDANCE_MAX_RULES) {
            log_warn("%s:%zu: more than %zu rules; this line and the rest "
                        "are ignored", ps->name, ps->line, g->cap);
            return false;
        }
        size_t cap = g->cap ? g->cap * 2 : GUIDANCE_FIRST_CAP;
        guidance_rule_t *rules = meta_alloc(cap * sizeof *rules);
        if (rules == NULL) {
            log_error("%s:%zu: no memory for %zu guidance rules (errno "
                         "%d); the rest are ignored", ps->name, ps->line, cap,
                         errno);
            return false;
        }
        if (g->count > 0)
            memcpy(rules, g->rules, g->count * sizeof *rules);
        meta_free(g->rules, g->cap * sizeof *rules);
        g->rules = rules;
        g->cap = cap;
    }
    g->rules[g->count++] = *r;
    return true;
}

static int rule_cmp(const guidance_rule_t *a, const guidance_rule_t *b)
{
    if (a->by_id != b->by_id)
        return a->by_id ? 1 : -1;
    return (a->key > b->key) - (a->key < b->key);
}

/* Merge the sorted runs src[lo, mid) and src[mid, hi) into dst; a tie takes
 * the left (earlier) rule first, which keeps file order among equals. */
static void merge(const guidance_rule_t *src, guidance_rule_t *dst,
                  size_t lo, size_t mid, size_t hi)
{
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi)
        dst[k++] = rule_cmp(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
    while (i < mid)
        dst[k++] = src[i++];
    while (j < hi)
        dst[k++] = src[j++];
}

/* A stable bottom-up merge sort.  Not qsort: glibc's qsort may malloc, and
 * stability is what makes "the last rule wins" cheap. */
static void sort_rules(guidance_rule_t *a, guidance_rule_t *tmp,
                       size_t n)
{
    guidance_rule_t *src = a, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            merge(src, dst, lo, mid, hi);
        }
        guidance_rule_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

/* Sort, then keep only the last rule of each run of equal selectors. */
static bool finish_rules(parser_t *ps)
{
    guidance_t *g = ps->g;
    if (g->count < 2)
        return true;
    guidance_rule_t *tmp = meta_alloc(g->count * sizeof *tmp);
    if (tmp == NULL) {
        log_error("%s: no memory to sort %zu guidance rules (errno %d); "
                     "guidance file ignored", ps->name, g->count, errno);
        return false;
    }
    sort_rules(g->rules, tmp, g->count);
    meta_free(tmp, g->count * sizeof *tmp);
    size_t kept = 0;
    for (size_t i = 0; i < g->count; i++)
        if (i + 1 == g->count || rule_cmp(&g->rules[i], &g->rules[i + 1]))
            g->rules[kept++] = g->rules[i];
    g->count = kept;
    return true;
}

/* ---------------------------------------------------------------- entry points */

void guidance_free(guidance_t *g)
{
    if (g == NULL)
        return;
    meta_free(g->rules, g->cap * sizeof *g->rules);
    memset(g, 0, sizeof *g);
}

static long reject(guidance_t *g)
{
    guidance_free(g);
    return -1;
}

/* The rules after the header.  False if the file as a whole failed. */
static bool parse_rules(parser_t *ps, text_lines_t *it)
{
    text_span_t line;
    while (text_next_line(it, &line)) {
        /* f holds one field more than a rule has, to quote the extra one */
        text_span_t f[RULE_FIELDS_MAX + 1], bad;
        guidance_rule_t r;
        ps->line = it->line;
        line = span_cut_at(line, '#');
        size_t n = text_fields(line, f, RULE_FIELDS_MAX + 1);
        if (n == 0)
            continue;
        const char *why = parse_rule(line, f, n, &r, &bad);
        if (why != NULL)
            malformed(ps, why, bad);
        else if (!push(ps, &r))
            break;
    }
    if (ps->reported > GUIDANCE_MAX_REPORTED)
        log_warn("%s: %zu more malformed lines not shown", ps->name,
                    ps->reported - GUIDANCE_MAX_REPORTED);
    return finish_rules(ps);
}

long guidance_parse(const char *text, size_t len, const char *name,
                       guidance_t *g)
{
    parser_t ps = {.g = g};
    text_lines_t it;
    text_span_t line;
    ps.name = log_shown(&ps.name_shown, name != NULL ? name : "guidance");
    memset(g, 0, sizeof *g);
    if (text == NULL) /* nothing to read: a file without a header */
        len = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3; /* a UTF-8 byte order mark, as some editors write */
        len -= 3;
    }
    text_lines_init(&it, text, len);
    while (text_next_line(&it, &line)) { /* the header: first with a field */
        text_span_t f[1];
        ps.line = it.line;
        line = span_cut_at(line, '#');
        if (text_fields(line, f, 1) == 0)
            continue;
        if (!header_ok(&ps, line))
            return reject(g);
        if (!parse_rules(&ps, &it))
            return reject(g);
        log_info("%s: %zu guidance rules, %zu malformed lines skipped",
                    ps.name, g->count, g->rejected);
        return (long)g->count;
    }
    log_warn("%s: no \"tiermem-guidance 1\" header (the file has no rules "
                "either); guidance file ignored", ps.name);
    return -1;
}

long guidance_load(const char *path, guidance_t *g)
{
    memset(g, 0, sizeof *g);
    if (path == NULL || *path == '\0') {
        log_warn("guidance file: empty path: errno %d", EINVAL);
        return -1;
    }
    size_t len = 0, cap = 0;
    char *buf = read_file(path, "guidance file", TM_LOG_WARN,
                             GUIDANCE_MAX_BYTES, &len, &cap);
    if (buf == NULL)
        return -1;
    long kept = guidance_parse(buf, len, path, g);
    meta_free(buf, cap);
    return kept;
}

const guidance_rule_t *guidance_find(const guidance_t *g,
                                           bool by_id, uint64_t key)
{
    if (g == NULL || g->rules == NULL)
        return NULL;
    guidance_rule_t want = {.by_id = by_id, .key = key};
    size_t lo = 0, hi = g->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = rule_cmp(&g->rules[mid], &want);
        if (c == 0)
            return &g->rules[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
