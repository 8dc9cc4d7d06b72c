/*
 * test_text.c -- base/text.c, the lexer under every line format: spans,
 * the line iterator and its one '\r' rule, fields, checked numbers at
 * their bounds, and the "name:line: what" error text.
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "base.h"
#include "../tm_test.h"

static text_span_t S(const char *s)
{
    return span_of(s);
}

/* ------------------------------------------------------------ spans */

static void test_spans(void)
{
    CHECK(span_of(NULL).n == 0);
    CHECK(span_eq(S("tier"), "tier") && !span_eq(S("tie"), "tier") &&
          !span_eq(S("Tier"), "tier"));
    CHECK(span_eq_nocase(S("TiEr"), "tier") && !span_eq_nocase(S("tiers"), "tier"));
    /* not NUL-terminated: only the span's bytes count */
    text_span_t part = span_make("nodeX", 4);
    CHECK(span_eq(part, "node") && span_starts(part, "no") &&
          !span_starts(part, "nodeX"));
    text_span_t t = span_trim(S(" \t a b \t"));
    CHECK(t.n == 3 && memcmp(t.p, "a b", 3) == 0);
    CHECK(span_trim(S("\ra\r")).n == 3); /* '\r' is not a blank */
    CHECK(span_cut_at(S("key 1 # x"), '#').n == 6);
    CHECK(span_cut_at(S("no comment"), '#').n == 10);
    CHECK(text_is_blank_line(S("")) && text_is_blank_line(S(" \t")));
    CHECK(!text_is_blank_line(S(" \r")));
    CHECK(text_is_comment(S("  # x"), '#') && !text_is_comment(S("a # x"), '#'));
}

/* ------------------------------------------------------------ lines */

/* The lines of text joined by '|', plus the count and torn flag. */
static void lines_of(const char *text, size_t len, char *out, size_t size,
                     size_t *count, bool *torn)
{
    text_lines_t it;
    text_span_t line;
    size_t at = 0;
    text_lines_init(&it, text, len);
    out[0] = '\0';
    while (text_next_line(&it, &line)) {
        at += (size_t)snprintf(out + at, size - at, "%.*s|", (int)line.n,
                               line.p);
        *torn = it.torn;
    }
    *count = it.line;
}

static void test_lines(void)
{
    char lf[128], crlf[128];
    size_t nlf = 0, ncrlf = 0;
    bool tlf = false, tcrlf = false;
    const char a[] = "one\n\ntwo 2\n  \nthree";
    const char b[] = "one\r\n\r\ntwo 2\r\n  \r\nthree";
    lines_of(a, sizeof a - 1, lf, sizeof lf, &nlf, &tlf);
    lines_of(b, sizeof b - 1, crlf, sizeof crlf, &ncrlf, &tcrlf);
    CHECK_MSG(strcmp(lf, "one||two 2|  |three|") == 0, "%s", lf);
    CHECK_MSG(strcmp(lf, crlf) == 0, "LF \"%s\" vs CRLF \"%s\"", lf, crlf);
    CHECK(nlf == 5 && ncrlf == 5);
    CHECK(tlf && tcrlf); /* "three" has no newline */

    /* a text ending in '\n' has no empty line after it, and is not torn */
    lines_of("x\n", 2, lf, sizeof lf, &nlf, &tlf);
    CHECK(strcmp(lf, "x|") == 0 && nlf == 1 && !tlf);
    lines_of("", 0, lf, sizeof lf, &nlf, &tlf);
    CHECK(strcmp(lf, "") == 0 && nlf == 0);
    lines_of(NULL, 0, lf, sizeof lf, &nlf, &tlf);
    CHECK(nlf == 0);

    /* only ONE '\r' right before the end goes; others are bytes */
    lines_of("a\rb\r\r\nc\r", 8, lf, sizeof lf, &nlf, &tlf);
    CHECK_MSG(strcmp(lf, "a\rb\r|c|") == 0, "%s", lf);
    CHECK(nlf == 2 && tlf);
    /* '\r' alone never ends a line */
    lines_of("a\rb", 3, lf, sizeof lf, &nlf, &tlf);
    CHECK(nlf == 1 && strcmp(lf, "a\rb|") == 0);

    /* the line's bytes are the buffer's, NULs included */
    const char nul[] = "a\0b\nc";
    text_lines_t it;
    text_span_t line;
    text_lines_init(&it, nul, sizeof nul - 1);
    CHECK(text_next_line(&it, &line) && line.n == 3 && line.p == nul);
}

/* ----------------------------------------------------------- fields */

static void test_fields(void)
{
    text_span_t f[3];
    CHECK(text_fields(S(""), f, 3) == 0);
    CHECK(text_fields(S(" \t "), f, 3) == 0);
    CHECK(text_fields(S(" a\tbb  c "), f, 3) == 3);
    CHECK(span_eq(f[0], "a") && span_eq(f[1], "bb") && span_eq(f[2], "c"));
    CHECK(text_fields(S("a b c d"), f, 3) == 4); /* max + 1: too many */
    CHECK(span_eq(f[2], "c"));
    /* '\r' mid-line is part of a field, not a separator */
    CHECK(text_fields(S("a\rb c"), f, 3) == 2 && f[0].n == 3);
    CHECK(text_fields(S("a \r b"), f, 3) == 3 && span_eq(f[1], "\r"));
}

/* ---------------------------------------------------------- numbers */

static void test_decimal(void)
{
    uint64_t v = 7;
    CHECK(text_dec_u64(S("0"), 0, &v) && v == 0);
    CHECK(text_dec_u64(S("18446744073709551615"), UINT64_MAX, &v) &&
          v == UINT64_MAX);
    v = 7;
    CHECK(!text_dec_u64(S("18446744073709551616"), UINT64_MAX, &v) && v == 7);
    CHECK(!text_dec_u64(S("99999999999999999999"), UINT64_MAX, &v));
    CHECK(text_dec_u64(S("63"), 63, &v) && v == 63);
    CHECK(!text_dec_u64(S("64"), 63, &v));
    CHECK(text_dec_u64(S("4294967295"), UINT32_MAX, &v));
    CHECK(!text_dec_u64(S("4294967296"), UINT32_MAX, &v));
    CHECK(!text_dec_u64(S("2"), 1, &v) && text_dec_u64(S("1"), 1, &v));
    CHECK(text_dec_u64(S("007"), 10, &v) && v == 7);
    CHECK(!text_dec_u64(S(""), 10, &v));   /* an empty field */
    CHECK(!text_dec_u64(S("+1"), 10, &v)); /* no sign */
    CHECK(!text_dec_u64(S(" 1"), 10, &v)); /* no blanks */
    CHECK(!text_dec_u64(S("1\r"), 10, &v)); /* '\r' is a byte */
    CHECK(!text_dec_u64(S("1a"), 10, &v));
    CHECK(!text_dec_u64(S("0x1"), 10, &v));
    CHECK(text_dec_u64(span_make("12", 1), 1, &v) && v == 1); /* 1 byte */

    int64_t x = 5;
    CHECK(text_dec_i64(S("-1"), -1, 10, &x) && x == -1);
    CHECK(!text_dec_i64(S("-2"), -1, 10, &x));
    CHECK(text_dec_i64(S("-9223372036854775808"), INT64_MIN, INT64_MAX, &x) &&
          x == INT64_MIN);
    CHECK(!text_dec_i64(S("-9223372036854775809"), INT64_MIN, INT64_MAX, &x));
    CHECK(text_dec_i64(S("9223372036854775807"), INT64_MIN, INT64_MAX, &x) &&
          x == INT64_MAX);
    CHECK(!text_dec_i64(S("9223372036854775808"), INT64_MIN, INT64_MAX, &x));
    CHECK(text_dec_i64(S("2147483647"), 0, INT32_MAX, &x));
    CHECK(!text_dec_i64(S("2147483648"), 0, INT32_MAX, &x));
    CHECK(!text_dec_i64(S("-"), -1, 1, &x) && !text_dec_i64(S(""), -1, 1, &x));
    CHECK(!text_dec_i64(S("--1"), -5, 1, &x) && !text_dec_i64(S("+1"), -5, 5, &x));
}

static void test_hex(void)
{
    uint64_t v = 0;
    CHECK(text_hex_u64(S("ff"), TEXT_HEX_PREFIX_OPTIONAL, &v) && v == 255);
    CHECK(text_hex_u64(S("0xFf"), TEXT_HEX_PREFIX_OPTIONAL, &v) && v == 255);
    CHECK(text_hex_u64(S("0XfF"), TEXT_HEX_PREFIX_OPTIONAL, &v) && v == 255);
    CHECK(!text_hex_u64(S("ff"), TEXT_HEX_PREFIX_REQUIRED, &v));
    CHECK(text_hex_u64(S("0x10"), TEXT_HEX_PREFIX_REQUIRED, &v) && v == 16);
    CHECK(!text_hex_u64(S("0x10"), TEXT_HEX_PREFIX_NONE, &v));
    CHECK(text_hex_u64(S("10"), TEXT_HEX_PREFIX_NONE, &v) && v == 16);
    CHECK(!text_hex_u64(S("0x"), TEXT_HEX_PREFIX_OPTIONAL, &v));
    CHECK(!text_hex_u64(S(""), TEXT_HEX_PREFIX_OPTIONAL, &v));
    CHECK(!text_hex_u64(S("0xg"), TEXT_HEX_PREFIX_OPTIONAL, &v));
    CHECK(!text_hex_u64(S("0x1\r"), TEXT_HEX_PREFIX_OPTIONAL, &v));
    /* 2^64 - 1 fits, 2^64 does not */
    CHECK(text_hex_u64(S("0xffffffffffffffff"), TEXT_HEX_PREFIX_REQUIRED, &v) &&
          v == UINT64_MAX);
    CHECK(!text_hex_u64(S("0x10000000000000000"), TEXT_HEX_PREFIX_REQUIRED, &v));
    /* leading zeros: fine unless the format caps the digits at 16 */
    CHECK(text_hex_u64(S("0x000000000000000001"), TEXT_HEX_PREFIX_REQUIRED, &v) &&
          v == 1);
    CHECK(!text_hex_u64(S("0x00000000000000001"),
                        TEXT_HEX_PREFIX_REQUIRED | TEXT_HEX_MAX_16_DIGITS, &v));
    CHECK(text_hex_u64(S("0000000000000001"),
                       TEXT_HEX_PREFIX_OPTIONAL | TEXT_HEX_MAX_16_DIGITS, &v));

    /* decimal, or hex after 0x */
    CHECK(text_num_u64(S("0x10"), UINT64_MAX, &v) && v == 16);
    CHECK(text_num_u64(S("10"), UINT64_MAX, &v) && v == 10);
    CHECK(!text_num_u64(S("a"), UINT64_MAX, &v));
    CHECK(!text_num_u64(S("0x"), UINT64_MAX, &v));
    CHECK(!text_num_u64(S("0x11"), 16, &v) && text_num_u64(S("0x10"), 16, &v));
    CHECK(!text_num_u64(S("18446744073709551616"), UINT64_MAX, &v));
}

static void test_fixed_and_double(void)
{
    uint64_t v = 0;
    CHECK(text_dec_fixed(S("1.5"), 6, &v) && v == 1500000);
    CHECK(text_dec_fixed(S("2"), 6, &v) && v == 2000000);
    CHECK(text_dec_fixed(S("0.000001"), 6, &v) && v == 1);
    CHECK(!text_dec_fixed(S("0.0000001"), 6, &v));
    CHECK(!text_dec_fixed(S("1."), 6, &v) && !text_dec_fixed(S(".5"), 6, &v));
    CHECK(!text_dec_fixed(S("0x1"), 6, &v) && !text_dec_fixed(S("1.a"), 6, &v));
    CHECK(text_dec_fixed(S("18446744073709.551615"), 6, &v) && v == UINT64_MAX);
    CHECK(!text_dec_fixed(S("18446744073709.551616"), 6, &v));

    double d = 0;
    CHECK(text_double(S("2.5"), &d) && d == 2.5);
    CHECK(text_double(S("1e3"), &d) && d == 1000.0);
    CHECK(text_double(S("-0.25"), &d) && d == -0.25);
    CHECK(!text_double(S("inf"), &d) && !text_double(S("nan"), &d));
    CHECK(!text_double(S("0x1p3"), &d) && !text_double(S(" 1"), &d));
    CHECK(!text_double(S("1e999"), &d)); /* not finite */
    CHECK(!text_double(S("1.2.3"), &d) && !text_double(S(""), &d));
    /* a program's LC_NUMERIC with a decimal comma changes nothing */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL) {
        CHECK(text_double(S("2.5"), &d) && d == 2.5);
        setlocale(LC_NUMERIC, "C");
    }
}

/* ----------------------------------------------------------- errors */

static void test_error(void)
{
    char buf[128];
    CHECK(strcmp(text_error(buf, sizeof buf, "g.txt", 3, "bad %s", "id"),
                 "g.txt:3: bad id") == 0);
    CHECK(strcmp(text_error(buf, sizeof buf, "g.txt", 0, "empty"),
                 "g.txt: empty") == 0);
    /* a name with control bytes is shown printable */
    CHECK(strcmp(text_error(buf, sizeof buf, "a\nb\x1b", 1, "x"),
                 "a?b?:1: x") == 0);
    /* a long path stays whole (not cut at TM_SHOWN_MAX) */
    char name[101];
    memset(name, 'p', 100);
    name[100] = '\0';
    text_error(buf, sizeof buf, name, 12, "what");
    CHECK(strncmp(buf, name, 100) == 0 && strcmp(buf + 100, ":12: what") == 0);
    /* bounded by the buffer, always terminated */
    char small[8];
    text_error(small, sizeof small, name, 1, "what");
    CHECK(strlen(small) == 7);
    CHECK(strcmp(text_error(buf, sizeof buf, NULL, 2, "w"), "(text):2: w") == 0);
}

int main(void)
{
    test_spans();
    test_lines();
    test_fields();
    test_decimal();
    test_hex();
    test_fixed_and_double();
    test_error();
    return tm_test_done(__FILE__);
}
