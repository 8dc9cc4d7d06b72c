/*
 * text.c -- the one lexer under tiermem's line formats.
 *
 * Guidance files, profiles, traces, site tables, the sysfs node files and
 * the settings' values used to be read by five hand-written readers that
 * disagreed on small things, '\r' above all.  The rules are now here, once
 * (base.h's text section states them): a line ends at '\n', one '\r' before
 * that end is dropped so CRLF reads like LF, any other '\r' is an ordinary
 * byte, blanks are ' ' and '\t', numbers are ASCII digits with overflow and
 * range checks.  What a comment is, whether a torn last line counts, and
 * which numbers a field holds stay each format's own decisions.
 *
 * No allocation, no locale, no global state: the preload library parses
 * guidance and settings while it is the process's malloc, and the fuzz
 * targets feed these functions arbitrary bytes.
 */
#include "config.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

/* ---------------------------------------------------------------- spans */

text_span_t span_of(const char *s)
{
    return s != NULL ? span_make(s, strlen(s)) : span_make("", 0);
}

bool span_eq(text_span_t s, const char *word)
{
    size_t n = strlen(word);
    return s.n == n && memcmp(s.p, word, n) == 0;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* By hand rather than strncasecmp: that one follows the locale. */
bool span_eq_nocase(text_span_t s, const char *word)
{
    size_t n = strlen(word);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(s.p[i]) != ascii_lower(word[i]))
            return false;
    return true;
}

bool span_starts(text_span_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.n >= n && memcmp(s.p, prefix, n) == 0;
}

text_span_t span_trim(text_span_t s)
{
    while (s.n > 0 && text_is_blank(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && text_is_blank(s.p[s.n - 1]))
        s.n--;
    return s;
}

text_span_t span_cut_at(text_span_t s, char mark)
{
    const char *at = s.n > 0 ? memchr(s.p, mark, s.n) : NULL;
    if (at != NULL)
        s.n = (size_t)(at - s.p);
    return s;
}

bool text_is_blank_line(text_span_t line)
{
    return span_trim(line).n == 0;
}

bool text_is_comment(text_span_t line, char mark)
{
    text_span_t t = span_trim(line);
    return t.n > 0 && t.p[0] == mark;
}

/* ---------------------------------------------------------------- lines */

void text_lines_init(text_lines_t *it, const char *text, size_t len)
{
    if (text == NULL) {
        text = "";
        len = 0;
    }
    *it = (text_lines_t){.pos = text, .end = text + len};
}

bool text_next_line(text_lines_t *it, text_span_t *line)
{
    if (it->pos >= it->end)
        return false;
    const char *p = it->pos;
    const char *nl = memchr(p, '\n', (size_t)(it->end - p));
    const char *stop = nl != NULL ? nl : it->end;
    it->pos = nl != NULL ? nl + 1 : it->end;
    it->torn = nl == NULL;
    it->line++;
    /* the one '\r' rule: only the byte right before the line's end */
    if (stop > p && stop[-1] == '\r')
        stop--;
    *line = span_make(p, (size_t)(stop - p));
    return true;
}

size_t text_fields(text_span_t line, text_span_t *f, size_t max)
{
    const char *p = line.p, *end = line.p + line.n;
    size_t n = 0;
    for (;;) {
        while (p < end && text_is_blank(*p))
            p++;
        if (p == end)
            return n;
        if (n == max)
            return max + 1;
        const char *s = p;
        while (p < end && !text_is_blank(*p))
            p++;
        f[n++] = span_make(s, (size_t)(p - s));
    }
}

/* -------------------------------------------------------------- numbers */

bool text_dec_u64(text_span_t s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < '0' || c > '9')
            return false;
        unsigned d = c - '0';
        if (d > max || v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool text_dec_i64(text_span_t s, int64_t min, int64_t max, int64_t *out)
{
    bool neg = s.n > 0 && s.p[0] == '-';
    text_span_t digits = span_make(s.p + neg, s.n - neg);
    uint64_t m;
    /* |INT64_MIN| is one more than INT64_MAX */
    if (!text_dec_u64(digits, (uint64_t)INT64_MAX + neg, &m))
        return false;
    int64_t x = !neg                            ? (int64_t)m
                : m == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                                               : -(int64_t)m;
    if (x < min || x > max)
        return false;
    *out = x;
    return true;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = ascii_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool has_hex_prefix(text_span_t s)
{
    return s.n >= 2 && s.p[0] == '0' && (s.p[1] == 'x' || s.p[1] == 'X');
}

bool text_hex_u64(text_span_t s, unsigned flags, uint64_t *out)
{
    unsigned prefix = flags & 3u;
    bool has = has_hex_prefix(s);
    if (prefix == TEXT_HEX_PREFIX_REQUIRED && !has)
        return false;
    if (prefix != TEXT_HEX_PREFIX_NONE && has) {
        s.p += 2;
        s.n -= 2;
    }
    if (s.n == 0 || ((flags & TEXT_HEX_MAX_16_DIGITS) && s.n > 16))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        int d = hex_digit(s.p[i]);
        if (d < 0 || v >> 60 != 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

bool text_num_u64(text_span_t s, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (!has_hex_prefix(s))
        return text_dec_u64(s, max, out);
    if (!text_hex_u64(s, TEXT_HEX_PREFIX_REQUIRED, &v) || v > max)
        return false;
    *out = v;
    return true;
}

bool text_dec_fixed(text_span_t s, unsigned decimals, uint64_t *out)
{
    const char *dot = s.n > 0 ? memchr(s.p, '.', s.n) : NULL;
    text_span_t whole = span_make(s.p, dot ? (size_t)(dot - s.p) : s.n);
    uint64_t v, frac = 0, scale = 1;
    if (decimals > 19 || !text_dec_u64(whole, UINT64_MAX, &v))
        return false;
    size_t nd = dot != NULL ? s.n - whole.n - 1 : 0;
    if (dot != NULL && (nd == 0 || nd > decimals))
        return false;
    for (unsigned i = 0; i < decimals; i++) {
        char c = i < nd ? dot[1 + i] : '0';
        if (c < '0' || c > '9')
            return false;
        frac = frac * 10 + (uint64_t)(c - '0');
        scale *= 10;
    }
    if (v > (UINT64_MAX - frac) / scale)
        return false;
    *out = v * scale + frac;
    return true;
}

bool text_double(text_span_t s, double *out)
{
    char buf[64];
    if (s.n == 0 || s.n >= sizeof buf)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
              c == '+' || c == '-'))
            return false;
    }
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    /* strtod_l with the C locale: '.' whatever LC_NUMERIC the program set,
     * and no uselocale switch.  newlocale of all-"C" hands back the C
     * library's static C locale, without allocating. */
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return false;
    char *end;
    double x = strtod_l(buf, &end, c_locale);
    freelocale(c_locale);
    if (*end != '\0' || !isfinite(x))
        return false;
    *out = x;
    return true;
}

/* --------------------------------------------------------------- errors */

/* name, each byte outside printable ASCII as '?' (log_shown's rule), into
 * buf from *at on; cut only where buf ends, so a long path stays whole. */
static void put_shown(char *buf, size_t size, size_t *at, const char *name)
{
    for (size_t left = strlen(name); left > 0 && *at + 1 < size;) {
        shown_t piece;
        size_t n = left < TM_SHOWN_MAX ? left : TM_SHOWN_MAX;
        int w = snprintf(buf + *at, size - *at, "%s",
                         log_shown_n(&piece, name, n));
        if (w < 0)
            return;
        *at += (size_t)w < size - *at ? (size_t)w : size - *at - 1;
        name += n;
        left -= n;
    }
}

const char *text_error(char *buf, size_t size, const char *name,
                       size_t line, const char *fmt, ...)
{
    char what[256];
    size_t at = 0;
    va_list ap;
    if (buf == NULL || size == 0)
        return "";
    buf[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    put_shown(buf, size, &at, name != NULL ? name : "(text)");
    if (line != 0)
        snprintf(buf + at, size - at, ":%zu: %s", line, what);
    else
        snprintf(buf + at, size - at, ": %s", what);
    return buf;
}
