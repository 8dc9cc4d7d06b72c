/*
 * test_perf_budget.c -- the perf rings' CPUs (perf_budget.c).
 *
 * CPU lists are parsed from good and hostile text; the CPUs of the
 * affinity mask are picked from the online ones.
 */
#include "config.h"

#include <sched.h>

#include "perf_internal.h"
#include "../tm_test.h"

/* ---------------------------------------------------------------- lists */

/* Parse text into a buffer with a sentinel past max; the count. */
static size_t parse(const char *text, int *cpus, size_t max)
{
    cpus[max] = -12345;
    size_t n = perf_cpu_list_parse(text, cpus, max);
    CHECK_MSG(cpus[max] == -12345, "wrote past max %zu on \"%s\"", max,
              text);
    return n;
}

static void test_list_good(void)
{
    int c[64];
    CHECK(parse("0-3,8,10-11\n", c, 32) == 7);
    CHECK(c[0] == 0 && c[3] == 3 && c[4] == 8 && c[5] == 10 && c[6] == 11);
    CHECK(parse("5", c, 32) == 1 && c[0] == 5);
    CHECK(parse("0-3\n8-9", c, 32) == 4);   /* ends at the newline */
    CHECK(parse("1048575\n", c, 32) == 1 && c[0] == 1048575);
    CHECK(parse("0-63", c, 8) == 8 && c[7] == 7); /* cut at max */
    CHECK(parse("0-3", c, 0) == 0);
    CHECK(perf_cpu_list_parse("0-1023,2048", NULL, SIZE_MAX) == 1025);
    CHECK(perf_cpu_list_parse("0-1023", NULL, 100) == 100);
}

static void test_list_hostile(void)
{
    int c[64];
    CHECK(perf_cpu_list_parse(NULL, c, 32) == 0);
    CHECK(parse("", c, 32) == 0);
    CHECK(parse("\n", c, 32) == 0);
    CHECK(parse("abc", c, 32) == 0);
    CHECK(parse("0-3,x,8", c, 32) == 4);    /* the CPUs before the junk */
    CHECK(parse("0-3,8x", c, 32) == 4);     /* junk inside an item */
    CHECK(parse("0-3x", c, 32) == 0);
    CHECK(parse("3-1", c, 32) == 0);        /* reversed */
    CHECK(parse("0-3,2-5", c, 32) == 4);    /* overlapping */
    CHECK(parse("4,2", c, 32) == 1);        /* descending */
    CHECK(parse("0,0", c, 32) == 1);        /* repeated */
    CHECK(parse("-1", c, 32) == 0);
    CHECK(parse("0-", c, 32) == 0);
    CHECK(parse("0--3", c, 32) == 0);
    CHECK(parse("0-3,", c, 32) == 4);
    CHECK(parse(" 0-3", c, 32) == 0);
    CHECK(parse("1048576", c, 32) == 0);    /* 1 << 20 */
    CHECK(parse("0,99999999999999999999999999", c, 32) == 1);
    CHECK(parse("0-99999999999999999999999999", c, 32) == 0);
}

/* "0,1,2,...": far longer than anything sysfs writes. */
static void test_list_overlong(void)
{
    static char text[200000];
    static int c[8193];
    size_t len = 0;
    for (int i = 0; len + 16 < sizeof text; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%d,", i);
    CHECK(parse(text, c, 8192) == 8192);
    CHECK(c[8191] == 8191);
}

/* Random text over the list alphabet: never past max, always ascending
 * CPUs below the limit. */
static void test_list_fuzz(void)
{
    static const char alphabet[] = "0123456789-,\nx 9";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char text[40];
    int c[17];
    unsigned bad = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = tm_test_rand(&seed) % (sizeof text - 1);
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[tm_test_rand(&seed) % (sizeof alphabet - 1)];
        text[len] = '\0';
        size_t max = tm_test_rand(&seed) % 17;
        c[max] = -7;
        size_t n = perf_cpu_list_parse(text, c, max);
        bool ok = n <= max && c[max] == -7;
        for (size_t i = 0; ok && i < n; i++)
            ok = c[i] >= 0 && c[i] < PERF_CPU_ID_LIMIT &&
                 (i == 0 || c[i] > c[i - 1]);
        if (!ok && bad++ == 0)
            CHECK_MSG(ok, "\"%s\" max %zu gave %zu", text, max, n);
    }
    CHECK(bad == 0);
}

/* ---------------------------------------------------------------- CPUs */

#define MASK_SIZE CPU_ALLOC_SIZE(PERF_AFFINITY_MAX_CPUS)

static void test_intersect(void)
{
    static cpu_set_t mask[PERF_AFFINITY_MAX_CPUS / CPU_SETSIZE];
    int online[80], out[80];
    size_t n = perf_cpu_list_parse("0-63", online, 80);
    memset(mask, 0, sizeof mask);
    CPU_SET_S(5, MASK_SIZE, mask);
    CHECK(perf_cpus_intersect(online, n, mask, MASK_SIZE, out, 80) == 1);
    CHECK(out[0] == 5); /* pinned to one CPU: one ring */

    n = perf_cpu_list_parse("0-6,8-15,9000", online, 80);
    CPU_ZERO_S(MASK_SIZE, mask);
    CPU_SET_S(3, MASK_SIZE, mask);
    CPU_SET_S(7, MASK_SIZE, mask);   /* offline */
    CPU_SET_S(9, MASK_SIZE, mask);
    CPU_SET_S(200, MASK_SIZE, mask); /* offline */
    CHECK(perf_cpus_intersect(online, n, mask, MASK_SIZE, online, 80) == 2);
    CHECK(online[0] == 3 && online[1] == 9); /* in place */

    int odd[] = {-1, 2, 9000, 3};    /* outside the mask's bits */
    for (int c = 0; c < 8; c++)
        CPU_SET_S((size_t)c, MASK_SIZE, mask);
    CHECK(perf_cpus_intersect(odd, 4, mask, MASK_SIZE, out, 80) == 2);
    CHECK(perf_cpus_intersect(odd, 4, mask, MASK_SIZE, out, 1) == 1);
    CHECK(out[0] == 2);
}

/* The live machine: rings on the online CPUs of our mask, and one ring
 * when this process is bound to one CPU. */
static void test_cpus_for_rings(void)
{
    static int cpus[PERF_AFFINITY_MAX_CPUS];
    cpu_set_t saved, one;
    REQUIRE_VOID(sched_getaffinity(0, sizeof saved, &saved) == 0);
    size_t n = perf_cpus_for_rings(cpus, PERF_AFFINITY_MAX_CPUS);
    CHECK(n >= 1 && n <= (size_t)CPU_COUNT(&saved));
    for (size_t i = 0; i < n; i++)
        CHECK(cpus[i] >= 0 && cpus[i] < CPU_SETSIZE &&
              CPU_ISSET(cpus[i], &saved));
    int last = cpus[n - 1];
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    REQUIRE_VOID(sched_setaffinity(0, sizeof one, &one) == 0);
    CHECK(perf_cpus_for_rings(cpus, 4) == 1 && cpus[0] == last);
    CHECK(sched_setaffinity(0, sizeof saved, &saved) == 0);
    CHECK(perf_cpus_for_rings(cpus, 1) == 1);
    CHECK(perf_cpus_for_rings(cpus, 0) == 0);
}

int main(void)
{
    log_configure(TM_LOG_WARN, -1);
    test_list_good();
    test_list_hostile();
    test_list_overlong();
    test_list_fuzz();
    test_intersect();
    test_cpus_for_rings();
    return tm_test_done(__FILE__);
}
