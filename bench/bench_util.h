/*
 * bench_util.h -- what the tiermem benchmarks share: a monotonic clock, a
 * deterministic random generator, medians, option parsing and the one way a
 * benchmark gives up (die / die_errno).
 *
 * Benchmarks are not tests: they print figures and ratios measured side by
 * side in one run.  Every variant is run once per round, in a rotated order,
 * and the figures printed are medians over the rounds.
 */
#ifndef TM_BENCH_UTIL_H
#define TM_BENCH_UTIL_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__)
#define BENCH_UNUSED __attribute__((unused))
#define BENCH_NORETURN __attribute__((noreturn))
#define BENCH_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BENCH_UNUSED
#define BENCH_NORETURN
#define BENCH_PRINTF(a, b)
#endif

/* Keep the compiler from optimising a value (or the work behind it) away. */
#define BENCH_KEEP(x) __asm__ __volatile__("" : : "r"(x) : "memory")

static BENCH_UNUSED BENCH_NORETURN BENCH_PRINTF(1, 2) void
die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* die() with ": strerror(err)" appended. */
static BENCH_UNUSED BENCH_NORETURN BENCH_PRINTF(2, 3) void
die_errno(int err, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(err));
    exit(1);
}

static BENCH_UNUSED uint64_t bench_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die_errno(errno, "clock_gettime");
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, fast, and the same sequence on every machine. */
typedef struct bench_rng {
    uint64_t s;
} bench_rng_t;

static BENCH_UNUSED uint64_t bench_rng_next(bench_rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) (n > 0); the bias for the small n used here is nil. */
static BENCH_UNUSED uint64_t bench_rng_below(bench_rng_t *r, uint64_t n)
{
    return bench_rng_next(r) % n;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (n > 0); sorts a copy, the input is left as it was. */
static BENCH_UNUSED double bench_median(const double *v, size_t n)
{
    double *c = malloc(n * sizeof *c);
    double m;
    if (c == NULL)
        die_errno(errno, "malloc");
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, bench_cmp_double);
    m = (n % 2) ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2.0;
    free(c);
    return m;
}

static BENCH_UNUSED double bench_min(const double *v, size_t n)
{
    double m = v[0];
    for (size_t i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

static BENCH_UNUSED double bench_max(const double *v, size_t n)
{
    double m = v[0];
    for (size_t i = 1; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

/* Parse a positive integer option value (accepts k/M/G suffixes, powers of
 * 1000 for counts: "2M" = 2000000). */
static BENCH_UNUSED unsigned long long bench_parse_count(const char *opt,
                                                         const char *s)
{
    char *end;
    unsigned long long v, mul = 1;
    if (s == NULL)
        die("%s needs a value", opt);
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        die("%s: not a number: %s", opt, s);
    if (*end == 'k' || *end == 'K')
        mul = 1000ull, end++;
    else if (*end == 'M')
        mul = 1000000ull, end++;
    else if (*end == 'G')
        mul = 1000000000ull, end++;
    if (*end != '\0' || v == 0 || v > ULLONG_MAX / mul)
        die("%s: bad value: %s", opt, s);
    return v * mul;
}

/* --rounds: a count of at most 1000. */
static BENCH_UNUSED unsigned bench_parse_rounds(const char *s)
{
    unsigned long long r = bench_parse_count("--rounds", s);
    if (r > 1000)
        die("--rounds: at most 1000");
    return (unsigned)r;
}

/* "--name N" or "--name=N": the value if argv[*i] is option `name`, else
 * NULL.  Advances *i past a separate value. */
static BENCH_UNUSED const char *bench_opt(int argc, char **argv, int *i,
                                          const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        die("%s needs a value", name);
    return argv[++*i];
}

#endif /* TM_BENCH_UTIL_H */
