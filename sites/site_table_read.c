/*
 * site_table_read.c -- a site table (doc/sites.md, formats 1 and 2) read
 * back.
 *
 * Site tables travel: they come from other users and other machines, and
 * the tools that read them hand their object paths to other programs.  So
 * every byte is data and the format is checked strictly: lengths are
 * bounded, numbers overflow-checked, object paths of safe bytes, no control
 * byte or malformed UTF-8 anywhere (the lines are printed back to a
 * terminal), frames numbered 0, 1, ... under their site.  The first bad
 * line fails the whole table, named as "name:line: what".
 *
 * Runs in tools, never inside a traced process, so it uses malloc.  The
 * table keeps two copies of the text: `text`, whole lines for printing
 * back, and `fields`, the same bytes with the blanks turned into NULs so
 * that object paths and function names are C strings.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sites.h"

#define ST_FIELDS_MAX 64
#define ST_HEADER "# tiermem site table, format "

typedef struct st_parser {
    site_table_t *t;
    const char *name;
    size_t line;         /* 1-based number of the line being parsed */
    bool in_arenas;      /* an arena line was seen: no site or frame after */
    bool failed;
    char *f[ST_FIELDS_MAX];
    size_t nf;
    size_t line_at;      /* offset of the line in text/fields */
    size_t caps[4];      /* lines, sites, frames, arenas */
} st_parser_t;

__attribute__((format(printf, 2, 3))) static bool fail(st_parser_t *p,
                                                       const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!p->failed)
        text_error(p->t->error, sizeof p->t->error, p->name, p->line, "%s",
                   what);
    p->failed = true;
    return false;
}

/* A field quoted in a message: at most 40 bytes, printable ASCII only. */
static const char *quote(const char *s, char buf[48])
{
    size_t i = 0;
    for (; s[i] != '\0' && i < 40; i++)
        buf[i] = s[i] > ' ' && s[i] < 0x7f ? s[i] : '?';
    if (s[i] != '\0')
        buf[i - 1] = '~';
    buf[i] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- bytes */

/* Length of the well-formed UTF-8 sequence at s (at most n bytes) that is
 * not a C1 control (U+0080..U+009F, CSI among them); 0 if there is none. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    if (s[0] < 0xc2 || s[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xc2 && s[1] < 0xa0) ||  /* C1 controls */
        (s[0] == 0xe0 && s[1] < 0xa0) ||  /* overlong */
        (s[0] == 0xed && s[1] >= 0xa0) || /* surrogates */
        (s[0] == 0xf0 && s[1] < 0x90) ||  /* overlong */
        (s[0] == 0xf4 && s[1] >= 0x90))   /* past U+10FFFF */
        return 0;
    return len;
}

/* Every byte of a line: printable, blank, or part of a UTF-8 character. */
static bool check_bytes(st_parser_t *p, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (s[i] == '\0')
            return fail(p, "a NUL byte at column %zu", i + 1);
        if ((s[i] < ' ' && s[i] != '\t') || s[i] == 0x7f)
            return fail(p, "control byte 0x%02x at column %zu", s[i], i + 1);
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = utf8_char(s + i, n - i);
        if (len == 0)
            return fail(p, "byte 0x%02x at column %zu is not UTF-8 text", s[i],
                        i + 1);
        i += len;
    }
    return true;
}

/* ---------------------------------------------------------------- fields */

/* The fields of the line at s (n bytes, NUL after them), each made a C
 * string by a NUL on the blank that ends it. */
static bool split(st_parser_t *p, char *s, size_t n)
{
    text_span_t f[ST_FIELDS_MAX];
    size_t nf = text_fields(span_make(s, n), f, ST_FIELDS_MAX);
    p->nf = 0;
    if (nf > ST_FIELDS_MAX)
        return fail(p, "more than %d fields", ST_FIELDS_MAX);
    for (size_t k = 0; k < nf; k++) {
        char *field = s + (f[k].p - s);
        field[f[k].n] = '\0';
        p->f[p->nf++] = field;
    }
    return true;
}

/* Is every byte of s one of `set`? */
static bool all_of(const char *s, const char *set)
{
    return s[strspn(s, set)] == '\0';
}

static bool parse_dec(st_parser_t *p, size_t i, uint64_t max, uint64_t *out)
{
    const char *s = p->f[i];
    char q[48];
    if (s[0] == '\0')
        return fail(p, "field %zu is empty", i + 1);
    if (text_dec_u64(span_of(s), max, out))
        return true;
    if (!all_of(s, "0123456789"))
        return fail(p, "field %zu (\"%s\") is not a decimal number", i + 1,
                    quote(s, q));
    return fail(p, "field %zu (\"%s\") is larger than %llu", i + 1,
                quote(s, q), (unsigned long long)max);
}

/* "0x" and 1 to 16 significant hex digits; "0" as printf's %#lx writes 0.
 * Only a lower-case x: the writer's. */
static bool parse_hex(st_parser_t *p, size_t i, uint64_t *out)
{
    const char *s = p->f[i];
    char q[48];
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    if (s[0] != '0' || s[1] != 'x' || s[2] == '\0' ||
        !all_of(s + 2, "0123456789abcdefABCDEF"))
        return fail(p, "field %zu (\"%s\") is not a hex number 0x...", i + 1,
                    quote(s, q));
    if (!text_hex_u64(span_of(s + 2), TEXT_HEX_PREFIX_NONE, out))
        return fail(p, "field %zu (\"%s\") does not fit 64 bits", i + 1,
                    quote(s, q));
    return true;
}

/* Field i must be the word `label`. */
static bool expect(st_parser_t *p, size_t i, const char *label)
{
    char q[48];
    if (strcmp(p->f[i], label) != 0)
        return fail(p, "field %zu is \"%s\", not \"%s\"", i + 1,
                    quote(p->f[i], q), label);
    return true;
}

/* The five counters "allocs N frees N live N peak N bytes N" from field i. */
static bool parse_counters(st_parser_t *p, size_t i, tm_alloc_stats_t *st)
{
    static const char *const label[5] = {"allocs", "frees", "live", "peak",
                                         "bytes"};
    uint64_t *dst[5] = {&st->allocs, &st->frees, &st->live, &st->peak,
                        &st->bytes};
    for (size_t k = 0; k < 5; k++)
        if (!expect(p, i + 2 * k, label[k]) ||
            !parse_dec(p, i + 2 * k + 1, UINT64_MAX, dst[k]))
            return false;
    return true;
}

/* Room for one more of n elements of `size` bytes in *arr. */
static bool grow(st_parser_t *p, void **arr, size_t *cap, size_t n,
                 size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *more = ncap > SIZE_MAX / size ? NULL : realloc(*arr, ncap * size);
    if (more == NULL)
        return fail(p, "out of memory for %zu entries", ncap);
    *arr = more;
    *cap = ncap;
    return true;
}

/* ---------------------------------------------------------------- lines */

static bool add_line(st_parser_t *p, site_table_kind_t kind, size_t item,
                     size_t len)
{
    site_table_t *t = p->t;
    if (!grow(p, (void **)&t->lines, &p->caps[0], t->nlines, sizeof *t->lines))
        return false;
    t->lines[t->nlines++] = (site_table_line_t){
        .kind = kind, .item = item, .text = t->text + p->line_at, .len = len};
    return true;
}

static bool parse_site(st_parser_t *p, site_table_site_t *s)
{
    uint64_t index, arena;
    if (p->nf < 16)
        return fail(p, "a site line has %zu fields, not at least 16", p->nf);
    if (p->in_arenas)
        return fail(p, "a site line after the arena lines");
    if (!parse_dec(p, 1, UINT32_MAX, &index) || !expect(p, 2, "key") ||
        !parse_hex(p, 3, &s->key) || !expect(p, 4, "arena") ||
        !parse_dec(p, 5, TM_MAX_ARENAS, &arena) ||
        !parse_counters(p, 6, &s->stats))
        return false;
    site_table_t *t = p->t;
    if (t->nsites > 0 && index <= t->sites[t->nsites - 1].index)
        return fail(p, "site %llu does not follow site %u",
                    (unsigned long long)index, t->sites[t->nsites - 1].index);
    s->index = (uint32_t)index;
    s->arena = (unsigned)arena;
    s->explicit_id = -1;
    s->first_frame = t->nframes;
    /* format 2: " kind K" first; then " id N" for an explicit id, then
     * fields to ignore */
    size_t at = 16;
    s->kind = SITE_KIND_STACK;
    if (t->version >= 2) {
        static const char *const kinds[] = {"stack", "explicit", "cc"};
        char q[48];
        if (p->nf < 18)
            return fail(p, "a site line without its kind");
        if (!expect(p, 16, "kind"))
            return false;
        unsigned k = 0;
        while (k < 3 && strcmp(p->f[17], kinds[k]) != 0)
            k++;
        if (k == 3)
            return fail(p, "site kind \"%s\" is not stack, explicit or cc",
                        quote(p->f[17], q));
        s->kind = (site_kind_t)k;
        at = 18;
        /* the key spaces (doc/sites.md): only compiler ids have bit 63 */
        if ((s->kind == SITE_KIND_CC) != cc_id_valid(s->key))
            return fail(p, "key 0x%016llx does not fit a site of kind %s",
                        (unsigned long long)s->key, kinds[k]);
    }
    if (p->nf >= at + 2 && strcmp(p->f[at], "id") == 0) {
        uint64_t id;
        if (!parse_dec(p, at + 1, INT32_MAX, &id))
            return false;
        s->explicit_id = (int32_t)id;
        if (t->version < 2)
            s->kind = SITE_KIND_EXPLICIT;
    }
    if (s->kind == SITE_KIND_EXPLICIT && s->explicit_id < 0)
        return fail(p, "an explicit site without its id");
    return true;
}

/* format 2: "cc FILE LINE COLUMN FUNCTION CALLEE CHAIN" under a compiler
 * site, before any frame. */
static bool parse_cc(st_parser_t *p, site_table_site_t **out)
{
    site_table_t *t = p->t;
    uint64_t line, column;
    char q[48];
    if (t->version < 2)
        return fail(p, "a cc line in a format 1 table");
    if (p->nf < 7)
        return fail(p, "a cc line has %zu fields, not at least 7", p->nf);
    site_table_site_t *s = t->nsites && !p->in_arenas ? &t->sites[t->nsites - 1]
                                                      : NULL;
    if (s == NULL || s->kind != SITE_KIND_CC || s->has_cc || s->nframes)
        return fail(p, "a cc line not right under a compiler site");
    if (!site_table_object_ok(p->f[1]))
        return fail(p, "source file \"%s\" is not a safe path",
                    quote(p->f[1], q));
    if (!parse_dec(p, 2, UINT32_MAX, &line) ||
        !parse_dec(p, 3, UINT32_MAX, &column))
        return false;
    for (size_t i = 4; i < 6; i++)
        if (!site_table_function_ok(p->f[i]))
            return fail(p, "\"%s\" is not a symbol name", quote(p->f[i], q));
    if (!site_table_chain_ok(p->f[6]))
        return fail(p, "wrapper chain \"%s\" is not symbol names joined by "
                       "','", quote(p->f[6], q));
    s->has_cc = true;
    s->cc_file = p->f[1];
    s->cc_line = (uint32_t)line;
    s->cc_column = (uint32_t)column;
    s->cc_function = p->f[4];
    s->cc_callee = p->f[5];
    s->cc_chain = p->f[6];
    *out = s;
    return true;
}

static bool check_object(st_parser_t *p, const char *path)
{
    char q[48];
    size_t n;
    switch (site_table_object_problem(path, &n)) {
    case OBJECT_OK:
        return true;
    case OBJECT_LEADING:
        return fail(p, "object \"%s\" starts with '%c'", quote(path, q),
                    path[0]);
    case OBJECT_BAD_BYTE:
        return fail(p, "object path \"%s\" has a '%c' (byte %zu)",
                    quote(path, q), path[n], n + 1);
    case OBJECT_TOO_LONG:
        break;
    }
    return fail(p, "object path longer than %d bytes", OBJECT_PATH_MAX - 1);
}


static bool check_function(st_parser_t *p, const char *fn)
{
    char q[48];
    if (!site_table_function_ok(fn))
        return fail(p, "function \"%s\" is not a symbol name", quote(fn, q));
    return true;
}

static bool parse_frame(st_parser_t *p, site_table_frame_t *fr)
{
    uint64_t index;
    site_table_t *t = p->t;
    if (p->nf < 5)
        return fail(p, "a frame line has %zu fields, not at least 5", p->nf);
    if (t->nsites == 0 || p->in_arenas)
        return fail(p, "a frame line outside a site");
    site_table_site_t *s = &t->sites[t->nsites - 1];
    if (!parse_dec(p, 1, UINT32_MAX, &index))
        return false;
    if (index != s->nframes)
        return fail(p, "frame %llu where frame %zu of site %u should be",
                    (unsigned long long)index, s->nframes, s->index);
    if (index >= TM_MAX_STACK_DEPTH)
        return fail(p, "more than %d frames in site %u", TM_MAX_STACK_DEPTH,
                    s->index);
    if (!check_object(p, p->f[2]) || !parse_hex(p, 3, &fr->offset) ||
        !check_function(p, p->f[4]))
        return false;
    fr->index = (unsigned)index;
    fr->site = t->nsites - 1;
    fr->object = strcmp(p->f[2], "?") == 0 ? NULL : p->f[2];
    fr->function = p->f[4];
    fr->function_at = (size_t)(p->f[4] - (t->fields + p->line_at));
    s->nframes++;
    return true;
}

static bool parse_arena(st_parser_t *p, site_table_arena_t *a)
{
    uint64_t id;
    char q[48];
    if (p->nf < 16)
        return fail(p, "an arena line has %zu fields, not at least 16", p->nf);
    if (!parse_dec(p, 1, TM_MAX_ARENAS, &id) || !expect(p, 2, "kind"))
        return false;
    if (id == 0)
        return fail(p, "arena 0 does not exist");
    if (strcmp(p->f[3], "site") != 0 && strcmp(p->f[3], "shared") != 0)
        return fail(p, "arena kind \"%s\" is neither site nor shared",
                    quote(p->f[3], q));
    if (!expect(p, 4, "nodes") || !parse_hex(p, 5, &a->nodes) ||
        !parse_counters(p, 6, &a->stats))
        return false;
    site_table_t *t = p->t;
    if (t->narenas > 0 && id <= t->arenas[t->narenas - 1].id)
        return fail(p, "arena %llu does not follow arena %u",
                    (unsigned long long)id, t->arenas[t->narenas - 1].id);
    a->id = (unsigned)id;
    a->shared = p->f[3][1] == 'h';
    p->in_arenas = true;
    return true;
}

/* Line 1 names the format: 1, or 2 (site kinds, cc lines). */
static bool parse_header(st_parser_t *p, const char *s, size_t n)
{
    size_t hl = sizeof ST_HEADER - 1;
    char q[48];
    if (n < hl || memcmp(s, ST_HEADER, hl) != 0)
        return fail(p, "not a tiermem site table (no \"" ST_HEADER "1\")");
    if (n != hl + 1 || (s[hl] != '1' && s[hl] != '2'))
        return fail(p, "site table format \"%s\" is not format 1 or 2",
                    quote(p->t->fields + p->line_at + hl, q));
    p->t->version = (unsigned)(s[hl] - '0');
    return true;
}

static bool parse_line(st_parser_t *p, size_t n)
{
    site_table_t *t = p->t;
    char *s = t->fields + p->line_at;
    char q[48];
    if (!check_bytes(p, (const unsigned char *)s, n))
        return false;
    if (p->line == 1)
        return parse_header(p, s, n) && add_line(p, ST_LINE_COMMENT, 0, n);
    if (s[0] == '#')
        return add_line(p, ST_LINE_COMMENT, 0, n);
    if (!split(p, s, n))
        return false;
    if (p->nf == 0)
        return fail(p, "an empty line");
    if (strcmp(p->f[0], "site") == 0) {
        if (!grow(p, (void **)&t->sites, &p->caps[1], t->nsites,
                  sizeof *t->sites))
            return false;
        t->sites[t->nsites] = (site_table_site_t){0};
        return parse_site(p, &t->sites[t->nsites]) &&
               add_line(p, ST_LINE_SITE, t->nsites++, n);
    }
    if (strcmp(p->f[0], "frame") == 0) {
        if (!grow(p, (void **)&t->frames, &p->caps[2], t->nframes,
                  sizeof *t->frames))
            return false;
        return parse_frame(p, &t->frames[t->nframes]) &&
               add_line(p, ST_LINE_FRAME, t->nframes++, n);
    }
    if (strcmp(p->f[0], "cc") == 0) {
        site_table_site_t *cs = NULL;
        return parse_cc(p, &cs) &&
               add_line(p, ST_LINE_CC, (size_t)(cs - t->sites), n);
    }
    if (strcmp(p->f[0], "arena") == 0) {
        if (!grow(p, (void **)&t->arenas, &p->caps[3], t->narenas,
                  sizeof *t->arenas))
            return false;
        return parse_arena(p, &t->arenas[t->narenas]) &&
               add_line(p, ST_LINE_ARENA, t->narenas++, n);
    }
    return fail(p, "unknown line kind \"%s\"", quote(p->f[0], q));
}

/* Every line of t->text, which holds len bytes.  Each line's end ('\n',
 * or the '\r' before it: base.h's one rule) becomes a NUL in both copies. */
static bool parse_all(st_parser_t *p, size_t len)
{
    site_table_t *t = p->t;
    text_lines_t it;
    text_span_t line;
    if (len == 0) {
        p->line = 1;
        return fail(p, "empty file, not a tiermem site table");
    }
    text_lines_init(&it, t->text, len);
    while (text_next_line(&it, &line)) {
        size_t raw = (size_t)(it.pos - line.p) - !it.torn; /* '\r' too */
        p->line = it.line;
        p->line_at = (size_t)(line.p - t->text);
        if (raw > SITE_TABLE_LINE_MAX)
            return fail(p, "line longer than %d bytes", SITE_TABLE_LINE_MAX);
        if (it.torn)
            return fail(p, "the last line has no newline: the table is "
                           "truncated");
        t->text[p->line_at + line.n] = '\0';
        t->fields[p->line_at + line.n] = '\0';
        if (!parse_line(p, line.n))
            return false;
    }
    return true;
}

void site_table_free(site_table_t *t)
{
    if (t == NULL)
        return;
    free(t->text);
    free(t->fields);
    free(t->lines);
    free(t->sites);
    free(t->frames);
    free(t->arenas);
    char error[sizeof t->error];
    memcpy(error, t->error, sizeof error);
    memset(t, 0, sizeof *t);
    memcpy(t->error, error, sizeof error); /* the reason a parse failed */
}

int site_table_parse(const char *text, size_t len, const char *name,
                     site_table_t *out)
{
    if (out == NULL)
        return errno = EINVAL, -1;
    memset(out, 0, sizeof *out);
    st_parser_t p = {.t = out, .name = name ? name : "(site table)"};
    if (text == NULL && len > 0) {
        p.line = 1;
        fail(&p, "no text");
        return errno = EINVAL, -1;
    }
    if (len > SITE_TABLE_MAX_BYTES) {
        p.line = 1;
        fail(&p, "larger than %zu MiB", SITE_TABLE_MAX_BYTES >> 20);
        return errno = EFBIG, -1;
    }
    out->text = malloc(len + 1);
    out->fields = malloc(len + 1);
    bool ok;
    if (out->text == NULL || out->fields == NULL) {
        p.line = 1;
        ok = fail(&p, "out of memory for %zu bytes", len);
    } else {
        if (len > 0) {
            memcpy(out->text, text, len);
            memcpy(out->fields, text, len);
        }
        out->text[len] = out->fields[len] = '\0';
        ok = parse_all(&p, len);
    }
    if (!ok) {
        site_table_free(out);
        return errno = EINVAL, -1;
    }
    return 0;
}

int site_table_read(const char *path, site_table_t *out)
{
    size_t len, cap;
    if (out == NULL)
        return errno = EINVAL, -1;
    memset(out, 0, sizeof *out);
    /* debug level: the reason goes to out->error, for the caller to show.
     * Pipes too: the tools read <(command) as any command-line tool does. */
    char *buf = read_file_accepting(path, "site table", TM_LOG_DEBUG,
                                       TM_FILE_ALLOW_FIFO,
                                       SITE_TABLE_MAX_BYTES, &len, &cap);
    if (buf == NULL) {
        int e = errno;
        snprintf(out->error, sizeof out->error, "%s: cannot read it: %s",
                 path, strerror(e));
        errno = e;
        return -1;
    }
    int rc = site_table_parse(buf, len, path, out);
    int e = errno;
    meta_free(buf, cap);
    errno = e;
    return rc;
}
