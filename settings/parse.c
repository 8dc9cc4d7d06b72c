/*
 * parse.c -- the typed value parsers under tiermem's settings: sizes with
 * binary units, bounded decimals, names from a list, booleans, durations,
 * bounded doubles and shares, and path patterns with %r (rank), %p (pid)
 * and %e (executable).
 *
 * Pure functions over the caller's strings: no allocation, no global state,
 * so options.c can call them inside the preload library's malloc, and the
 * fuzz targets can call them on anything.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "settings.h"

/* Decimal digits at *s into *v, stopping at the first non-digit; false on
 * no digits or overflow past max.  base/text.c's checked parser does the
 * arithmetic; strtoul would accept blanks and a sign, which a setting must
 * not. */
static bool digits(const char **s, unsigned long long max,
                   unsigned long long *v)
{
    size_t n = strspn(*s, "0123456789");
    uint64_t u;
    if (!text_dec_u64(span_make(*s, n), max, &u))
        return false;
    *s += n;
    *v = u;
    return true;
}

static unsigned unit_shift(char c)
{
    switch (c) {
    case 'k': case 'K': return 10;
    case 'm': case 'M': return 20;
    case 'g': case 'G': return 30;
    case 't': case 'T': return 40;
    default: return 0;
    }
}

bool parse_size(const char *s, size_t *out)
{
    unsigned long long v;
    if (s == NULL || !digits(&s, SIZE_MAX, &v))
        return false;
    unsigned shift = unit_shift(*s);
    if (shift != 0)
        s++;
    if (shift != 0 && (s[0] == 'i' || s[0] == 'I') &&
        (s[1] == 'b' || s[1] == 'B'))
        s += 2; /* "KiB" */
    else if (*s == 'b' || *s == 'B')
        s++; /* "KB", or plain bytes "4096B" */
    if (*s != '\0' || v > ((size_t)SIZE_MAX >> shift))
        return false;
    *out = (size_t)v << shift;
    return true;
}

bool parse_ulong(const char *s, unsigned long min, unsigned long max,
                    unsigned long *out)
{
    unsigned long long v;
    if (s == NULL || !digits(&s, ULONG_MAX, &v) || *s != '\0')
        return false;
    if (v < min || v > max)
        return false;
    *out = (unsigned long)v;
    return true;
}

int parse_enum(const char *s, const char *const *names, size_t n)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* Append len bytes to out[*n], keeping room for the NUL. */
static bool append(char *out, size_t outsz, size_t *n, const char *s,
                   size_t len)
{
    if (len >= outsz - *n)
        return false;
    memcpy(out + *n, s, len);
    *n += len;
    return true;
}

bool expand_path(const char *pattern, int rank, long pid, const char *exe,
                    char *out, size_t outsz)
{
    if (out == NULL || outsz == 0)
        return false;
    out[0] = '\0';
    if (pattern == NULL)
        return false;
    size_t n = 0;
    for (const char *p = pattern; *p != '\0'; p++) {
        char num[24];
        const char *piece = p;
        size_t len = 1;
        if (*p == '%') {
            p++;
            if (*p == 'r' || *p == 'p') {
                long v = *p == 'r' ? (rank < 0 ? 0 : rank) : pid;
                int m = snprintf(num, sizeof num, "%ld", v);
                piece = num;
                len = m > 0 ? (size_t)m : 0;
            } else if (*p == 'e') {
                piece = exe != NULL && *exe != '\0' ? exe : "unknown";
                len = strlen(piece);
            } else if (*p != '%') {
                out[0] = '\0'; /* includes a lone % at the end */
                return false;
            }
        }
        if (!append(out, outsz, &n, piece, len)) {
            out[0] = '\0';
            return false;
        }
    }
    out[n] = '\0';
    return true;
}

bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "on", "yes", "true"};
    static const char *const no[] = {"0", "off", "no", "false"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

/* strtod follows LC_NUMERIC: settings are read at start-up, before the
 * program's main can have set a locale, so "0.1" means what it says. */
bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool parse_duration_ns(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000000},
                 {"s", 1000000000}, {"", 1000000}};
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 12)
        return false;
    char digits[16];
    memcpy(digits, s, n);
    digits[n] = '\0';
    unsigned long v;
    if (!parse_ulong(digits, 0, 999999999999ul, &v))
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(s + n, units[i].unit) == 0) {
            *out = (uint64_t)v * units[i].ns;
            return true;
        }
    return false;
}

/* "0.1" or "10%": the percent form is the same share, times 100. */
bool parse_fraction(const char *s, double lo, double hi, double *out)
{
    size_t len = strlen(s);
    if (len > 1 && len < 32 && s[len - 1] == '%') {
        char num[32];
        memcpy(num, s, len - 1);
        num[len - 1] = '\0';
        double pct;
        if (!parse_double(num, lo * 100.0, hi * 100.0, &pct))
            return false;
        *out = pct / 100.0;
        return true;
    }
    return parse_double(s, lo, hi, out);
}
