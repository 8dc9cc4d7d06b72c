/*
 * test_options.c -- the environment settings (settings/options.c).
 *
 * Each case hands options_parse a made-up environment and checks the
 * parsed values.  The log is pointed at a temporary file (log_configure)
 * so the test can read back exactly what was logged: a bad value must give
 * one warning naming the variable, the value and the default kept.  The
 * no-malloc rule is checked with jemalloc's per-thread allocation counter.
 * Hostile values and set-user-ID programs: test_options_hostile.c.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "settings.h"
#include "profiler.h"
#include "sites.h"
#include "policy.h"
#include "../tm_test.h"
#include "../observe.h"
#include "../options_util.h"

/* The settings registry holds the rows of the objects a program links, and
 * a layer's rows live in the file that reads them (settings.h): name one
 * function of each such file, so that the names read elsewhere
 * (TIERMEM_LOG, TIERMEM_TIERS, TIERMEM_PROFILE_*, ...) are known here as
 * they are in the library. */
__attribute__((used)) static const void *const layers_linked[] = {
    (const void *)settings_init, (const void *)tm_topology_discover,
    (const void *)prof_options_parse, (const void *)policy_options_parse,
};

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static bool same_options(const options_t *a, const options_t *b)
{
    if (a->nwrappers != b->nwrappers)
        return false;
    for (unsigned i = 0; i < a->nwrappers; i++)
        if (strcmp(a->wrappers[i], b->wrappers[i]) != 0)
            return false;
    return a->layout == b->layout && a->stack_depth == b->stack_depth &&
           a->default_target.kind == b->default_target.kind &&
           a->default_target.index == b->default_target.index &&
           a->default_target.mode == b->default_target.mode &&
           a->small_size == b->small_size &&
           a->big_small_threshold == b->big_small_threshold &&
           a->max_arenas == b->max_arenas && a->max_sites == b->max_sites &&
           strcmp(a->guidance, b->guidance) == 0 &&
           strcmp(a->output_dir, b->output_dir) == 0 && a->rank == b->rank;
}

static const char *const expected_wrappers[] = {
    "hypre_MAlloc", "hypre_CAlloc", "hypre_ReAlloc", "hypre_ReAlloc_v2",
    "_hypre_MAlloc", "Mem_dhMalloc", "hypre_mymalloc", "hypre_idx_malloc",
    "hypre_fp_malloc", "strdup", "strndup", "__strdup", "__strndup"};
#define NEXPECTED_WRAPPERS (sizeof expected_wrappers / sizeof *expected_wrappers)

/* A string of n copies of c, in a static buffer per slot. */
static char *repeat(int slot, const char *prefix, char c, size_t n)
{
    static char bufs[4][4096];
    size_t p = strlen(prefix);
    if (p + n >= sizeof bufs[slot])
        n = sizeof bufs[slot] - p - 1;
    memcpy(bufs[slot], prefix, p);
    memset(bufs[slot] + p, c, n);
    bufs[slot][p + n] = '\0';
    return bufs[slot];
}

/* ------------------------------------------------------------------ */
/* The typed parsers                                                    */
/* ------------------------------------------------------------------ */

static void test_parse_size(void)
{
    static const struct { const char *s; size_t v; } good[] = {
        {"0", 0}, {"4096", 4096}, {"64K", 65536}, {"64k", 65536},
        {"64KB", 65536}, {"64KiB", 65536}, {"64kib", 65536}, {"2M", 2 << 20},
        {"1G", (size_t)1 << 30}, {"1T", (size_t)1 << 40}, {"4096B", 4096},
        {"4096b", 4096}, {"007", 7},
        {"18446744073709551615", SIZE_MAX}, {"16777215T", (size_t)16777215 << 40},
    };
    static const char *const bad[] = {
        "", "K", "-1", "+1", " 1", "1 ", "1KK", "1.5M", "0x10", "1iB",
        "1KiBB", "1P", "1E", "18446744073709551616", "16777216T",
        "17179869184G", "99999999999999999999999", "1 K", "1k\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t v = 12345;
        CHECK_MSG(parse_size(good[i].s, &v) && v == good[i].v,
                  "parse_size(\"%s\") = %zu, want %zu", good[i].s, v,
                  good[i].v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t v = 12345;
        CHECK_MSG(!parse_size(bad[i], &v) && v == 12345,
                  "parse_size(\"%s\") accepted (%zu)", bad[i], v);
    }
    size_t v;
    CHECK(!parse_size(NULL, &v));
}

static void test_parse_ulong(void)
{
    unsigned long v = 99;
    CHECK(parse_ulong("0", 0, 10, &v) && v == 0);
    CHECK(parse_ulong("10", 0, 10, &v) && v == 10);
    CHECK(parse_ulong("0010", 0, 10, &v) && v == 10);
    CHECK(parse_ulong("18446744073709551615", 0, ULONG_MAX, &v) &&
          v == ULONG_MAX);
    v = 99;
    CHECK(!parse_ulong("11", 0, 10, &v) && v == 99);
    CHECK(!parse_ulong("4", 5, 10, &v) && v == 99);
    CHECK(!parse_ulong("18446744073709551616", 0, ULONG_MAX, &v));
    CHECK(!parse_ulong("", 0, 10, &v));
    CHECK(!parse_ulong("-1", 0, 10, &v));
    CHECK(!parse_ulong("+1", 0, 10, &v));
    CHECK(!parse_ulong(" 1", 0, 10, &v));
    CHECK(!parse_ulong("1 ", 0, 10, &v));
    CHECK(!parse_ulong("1x", 0, 10, &v));
    CHECK(!parse_ulong("0x1", 0, 10, &v));
    CHECK(!parse_ulong(NULL, 0, 10, &v));
    CHECK(v == 99);
}

static void test_parse_enum(void)
{
    static const char *const names[] = {"preferred", "bind", "interleave"};
    CHECK(parse_enum("preferred", names, 3) == 0);
    CHECK(parse_enum("BIND", names, 3) == 1);
    CHECK(parse_enum("Interleave", names, 3) == 2);
    CHECK(parse_enum("bin", names, 3) == -1);
    CHECK(parse_enum("binds", names, 3) == -1);
    CHECK(parse_enum("", names, 3) == -1);
    CHECK(parse_enum(NULL, names, 3) == -1);
    CHECK(parse_enum("bind", names, 1) == -1);
}

static void test_expand_path(void)
{
    char out[64];
    CHECK(expand_path("/g/%r.%p.%e", 7, 1234, "app", out, sizeof out) &&
          strcmp(out, "/g/7.1234.app") == 0);
    CHECK(expand_path("%r", -1, 1, "a", out, sizeof out) &&
          strcmp(out, "0") == 0);
    CHECK(expand_path("%%r%%", 3, 1, "a", out, sizeof out) &&
          strcmp(out, "%r%") == 0);
    CHECK(expand_path("", 3, 1, "a", out, sizeof out) &&
          strcmp(out, "") == 0);
    CHECK(expand_path("%e", 0, 1, NULL, out, sizeof out) &&
          strcmp(out, "unknown") == 0);
    CHECK(expand_path("x%r", 2147483647, 1, "a", out, sizeof out) &&
          strcmp(out, "x2147483647") == 0);
    /* bad directives, and a lone % at the end */
    strcpy(out, "junk");
    CHECK(!expand_path("/g/%x", 0, 1, "a", out, sizeof out) &&
          out[0] == '\0');
    CHECK(!expand_path("/g/%", 0, 1, "a", out, sizeof out));
    CHECK(!expand_path("%R", 0, 1, "a", out, sizeof out));
    /* exactly fitting: 7 characters + NUL in 8 bytes; 8 do not */
    char small[8];
    CHECK(expand_path("abc%p", 0, 1234, "a", small, sizeof small) &&
          strcmp(small, "abc1234") == 0);
    CHECK(!expand_path("abcd%p", 0, 1234, "a", small, sizeof small) &&
          small[0] == '\0');
    CHECK(!expand_path("%e", 0, 1, "12345678", small, sizeof small));
    CHECK(!expand_path("a", 0, 1, "a", small, 0));
    CHECK(!expand_path(NULL, 0, 1, "a", small, sizeof small));
}

/* ------------------------------------------------------------------ */
/* Settings                                                             */
/* ------------------------------------------------------------------ */

static void test_defaults(const options_t *before_load)
{
    options_t d;
    options_set_defaults(&d);
    CHECK(d.layout == TM_LAYOUT_PER_SITE);
    CHECK(d.stack_depth == 2);
    CHECK(d.nwrappers == NEXPECTED_WRAPPERS);
    for (size_t i = 0; i < NEXPECTED_WRAPPERS && i < d.nwrappers; i++)
        CHECK_MSG(strcmp(d.wrappers[i], expected_wrappers[i]) == 0,
                  "wrapper %zu is %s, want %s", i, d.wrappers[i],
                  expected_wrappers[i]);
    CHECK(d.default_target.kind == TM_TARGET_TIER);
    CHECK(d.default_target.index == 0);
    CHECK(d.default_target.mode == TM_MODE_PREFERRED);
    CHECK(d.small_size == 4096);
    CHECK(d.big_small_threshold == 4194304);
    CHECK(d.max_arenas == 1024);
    CHECK(d.max_sites == 65536);
    CHECK(d.guidance[0] == '\0' && d.output_dir[0] == '\0');
    CHECK(d.rank == -1);
    /* the global holds the defaults before options_load runs */
    CHECK(same_options(before_load, &d));
    /* an empty environment, and none at all, give the defaults silently */
    options_t o;
    log_reset(TM_LOG_DEBUG);
    parse(&o, NULL);
    CHECK(same_options(&o, &d));
    options_parse(NULL, &o);
    CHECK(same_options(&o, &d));
    CHECK_MSG(log_text()[0] == '\0', "logged: %s", log_text());
}

static void test_good_values(void)
{
    options_t o;
    log_reset(TM_LOG_WARN);
    parse(&o, "TIERMEM_LAYOUT=Per-Thread", "TIERMEM_STACK_DEPTH=16",
          "TIERMEM_DEFAULT_TIER=3", "TIERMEM_MODE=interleave",
          "TIERMEM_SMALL_SIZE=0", "TIERMEM_BIG_SMALL_THRESHOLD=64M",
          "TIERMEM_MAX_ARENAS=4000", "TIERMEM_MAX_SITES=16",
          "TIERMEM_OUTPUT_DIR=/tmp/out", "TIERMEM_WRAPPERS=my_alloc",
          "PATH=/bin", NULL);
    CHECK(o.layout == TM_LAYOUT_PER_THREAD);
    CHECK(o.stack_depth == 16);
    CHECK(o.default_target.kind == TM_TARGET_TIER &&
          o.default_target.index == 3 &&
          o.default_target.mode == TM_MODE_INTERLEAVE);
    CHECK(o.small_size == 0);
    CHECK(o.big_small_threshold == (size_t)64 << 20);
    CHECK(o.max_arenas == 4000 && o.max_sites == 16);
    CHECK(strcmp(o.output_dir, "/tmp/out") == 0);
    CHECK(o.nwrappers == 1 && strcmp(o.wrappers[0], "my_alloc") == 0);
    parse(&o, "TIERMEM_LAYOUT=big-small", "TIERMEM_STACK_DEPTH=1",
          "TIERMEM_MAX_ARENAS=1", "TIERMEM_MAX_SITES=1048576",
          "TIERMEM_MODE=BIND", "TIERMEM_DEFAULT_NODE=63", NULL);
    CHECK(o.layout == TM_LAYOUT_BIG_SMALL && o.stack_depth == 1);
    CHECK(o.max_arenas == 1 && o.max_sites == 1048576);
    CHECK(o.default_target.kind == TM_TARGET_NODE &&
          o.default_target.index == 63 &&
          o.default_target.mode == TM_MODE_BIND);
    CHECK_MSG(log_count("warning", NULL) == 0, "logged: %s", log_text());
    /* empty numbers mean "unset", as for TIERMEM_LOG: no warning */
    options_t d;
    options_set_defaults(&d);
    parse(&o, "TIERMEM_STACK_DEPTH=", "TIERMEM_LAYOUT=", "TIERMEM_MODE=",
          "TIERMEM_MAX_SITES=", NULL);
    CHECK(same_options(&o, &d));
    CHECK(log_count("warning", NULL) == 0);
}

/* Each bad value: exactly one warning, naming the variable and the value
 * (the text before "|") and the default used (after it); every setting
 * keeps its default. */
static void test_bad_values(void)
{
    static const struct { const char *entry, *shown, *dflt; } cases[] = {
        {"TIERMEM_LAYOUT=per-node", NULL, "using per-site"},
        {"TIERMEM_LAYOUT=1", NULL, "using per-site"},
        {"TIERMEM_STACK_DEPTH=0", NULL, "using 2"},
        {"TIERMEM_STACK_DEPTH=17", NULL, "using 2"},
        {"TIERMEM_STACK_DEPTH=two", NULL, "using 2"},
        {"TIERMEM_STACK_DEPTH= 3", NULL, "using 2"},
        {"TIERMEM_STACK_DEPTH=-1", NULL, "using 2"},
        {"TIERMEM_WRAPPERS=foo,ba-r", "\"ba-r\"", "using the default list"},
        {"TIERMEM_WRAPPERS=foo()", "\"foo()\"", "using the default list"},
        {"TIERMEM_SKIP_OBJECTS=libfoo.so,lib bar", NULL, "using the default list"},
        {"TIERMEM_SKIP_OBJECTS=lib/x", NULL, "using the default list"},
        {"TIERMEM_DEFAULT_TIER=64", NULL, "using tier 0"},
        {"TIERMEM_DEFAULT_NODE=x1", NULL, "using tier 0"},
        {"TIERMEM_DEFAULT_NODE=64", NULL, "using tier 0"},
        {"SH_DEFAULT_NODE=-1", NULL, "using tier 0"},
        {"TIERMEM_MODE=fast", NULL, "using preferred"},
        {"TIERMEM_SMALL_SIZE=4k4", NULL, "using 4096"},
        {"TIERMEM_SMALL_SIZE=1.5K", NULL, "using 4096"},
        {"TIERMEM_BIG_SMALL_THRESHOLD=0", NULL, "using 4194304"},
        {"SH_BIG_SMALL_THRESHOLD=0x10", NULL, "using 4194304"},
        {"TIERMEM_MAX_ARENAS=4001", NULL, "using 1024"},
        {"SH_MAX_ARENAS=0", NULL, "using 1024"},
        {"TIERMEM_MAX_SITES=15", NULL, "using 65536"},
        {"TIERMEM_MAX_SITES=1048577", NULL, "using 65536"},
        {"SH_MAX_SITES=lots", NULL, "using 65536"},
        {"TIERMEM_GUIDANCE=/tmp/%q.txt", "%q", "no guidance used"},
        {"TIERMEM_GUIDANCE=/tmp/g%", NULL, "no guidance used"},
        {"SH_GUIDANCE_FILE=/tmp/%d", NULL, "no guidance used"},
        {"SH_ARENA_LAYOUT=ONE_ARENA", NULL, "using per-site"},
        {"SH_ARENA_LAYOUT=SHARED_DEVICE_ARENAS", NULL, "using per-site"},
        {"SH_ARENA_LAYOUT=per-thread", NULL, "using per-site"},
    };
    options_t d, o;
    options_set_defaults(&d);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char var[64];
        const char *e = cases[i].entry;
        snprintf(var, sizeof var, "%.*s", (int)(strchr(e, '=') - e), e);
        log_reset(TM_LOG_WARN);
        parse(&o, (char *)e, NULL);
        CHECK_MSG(same_options(&o, &d), "%s changed the options", e);
        unsigned all = log_count("warning", NULL);
        unsigned named = log_count("warning", e, cases[i].dflt, NULL);
        unsigned shown = cases[i].shown
                             ? log_count("warning", cases[i].shown, NULL)
                             : 1;
        CHECK_MSG(all == 1 && named == 1 && shown == 1,
                  "%s: %u warnings, %u naming it and \"%s\"; log:\n%s", e,
                  all, named, cases[i].dflt, log_text());
    }
}

static void test_too_long(void)
{
    options_t o;
    /* 1023 bytes fit the 1024-byte buffers; 1024 do not */
    char *dir = repeat(0, "TIERMEM_OUTPUT_DIR=/", 'd', 1022);
    log_reset(TM_LOG_WARN);
    parse(&o, dir, NULL);
    CHECK(strlen(o.output_dir) == 1023 && o.output_dir[0] == '/');
    CHECK(log_count("warning", NULL) == 0);
    dir = repeat(0, "TIERMEM_OUTPUT_DIR=/", 'd', 1023);
    parse(&o, dir, NULL);
    CHECK(o.output_dir[0] == '\0');
    CHECK_MSG(log_count("warning", "TIERMEM_OUTPUT_DIR=/ddd",
                        "longer than 1023 bytes", "writing nothing",
                        NULL) == 1, "log: %s", log_text());
    char *g = repeat(1, "TIERMEM_GUIDANCE=/", 'g', 1022);
    log_reset(TM_LOG_WARN);
    parse(&o, g, NULL);
    CHECK(strlen(o.guidance) == 1023);
    g = repeat(1, "TIERMEM_GUIDANCE=/%p", 'g', 1020); /* %p grows it */
    parse(&o, g, NULL);
    CHECK(o.guidance[0] == '\0');
    CHECK_MSG(log_count("warning", "TIERMEM_GUIDANCE=/%pggg",
                        "longer than 1023 bytes once expanded",
                        "no guidance used", NULL) == 1,
              "log: %s", log_text());
    /* a long or binary value is shown bounded and printable */
    char *junk = repeat(2, "TIERMEM_MODE=\x01\x7f", 'z', 3000);
    log_reset(TM_LOG_WARN);
    parse(&o, junk, NULL);
    const char *text = log_text();
    CHECK(log_count("warning", "TIERMEM_MODE=??zzz", "...", NULL) == 1);
    CHECK(strlen(text) < 300);
}

static void test_sicm_names(void)
{
    static const struct { const char *entry; layout_t layout; bool exact; }
        layouts[] = {
            {"SH_ARENA_LAYOUT=SHARED_SITE_ARENAS", TM_LAYOUT_PER_SITE, true},
            {"SH_ARENA_LAYOUT=EXCLUSIVE_ARENAS", TM_LAYOUT_PER_THREAD, true},
            {"SH_ARENA_LAYOUT=EXCLUSIVE_ONE_ARENA", TM_LAYOUT_PER_THREAD, true},
            {"SH_ARENA_LAYOUT=BIG_SMALL_ARENAS", TM_LAYOUT_BIG_SMALL, true},
            {"SH_ARENA_LAYOUT=big_small_arenas", TM_LAYOUT_BIG_SMALL, true},
            {"SH_ARENA_LAYOUT=EXCLUSIVE_SITE_ARENAS", TM_LAYOUT_PER_THREAD,
             false},
            {"SH_ARENA_LAYOUT=EXCLUSIVE_DEVICE_ARENAS", TM_LAYOUT_PER_THREAD,
             false},
        };
    options_t o;
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++) {
        log_reset(TM_LOG_INFO);
        parse(&o, (char *)layouts[i].entry, NULL);
        CHECK_MSG(o.layout == layouts[i].layout, "%s gave layout %d",
                  layouts[i].entry, (int)o.layout);
        CHECK(log_count("warning", NULL) == 0);
        CHECK_MSG(log_count("info", "no exact tiermem equivalent", NULL) ==
                      (layouts[i].exact ? 0u : 1u),
                  "%s: log %s", layouts[i].entry, log_text());
    }
    log_reset(TM_LOG_WARN);
    parse(&o, "SH_MAX_ARENAS=20", "SH_MAX_SITES=100",
          "SH_BIG_SMALL_THRESHOLD=1048576", "SH_DEFAULT_NODE=3",
          "SH_GUIDANCE_FILE=/tmp/sicm.txt", NULL);
    CHECK(o.max_arenas == 20 && o.max_sites == 100);
    CHECK(o.big_small_threshold == 1048576);
    CHECK(o.default_target.kind == TM_TARGET_NODE &&
          o.default_target.index == 3);
    CHECK(strcmp(o.guidance, "/tmp/sicm.txt") == 0);
    CHECK(log_count("warning", NULL) == 0);
}

/* TIERMEM_ beats SH_, whichever comes first, and says so at info level. */
static void test_precedence(void)
{
    options_t o;
    log_reset(TM_LOG_INFO);
    parse(&o, "SH_ARENA_LAYOUT=EXCLUSIVE_ARENAS", "TIERMEM_LAYOUT=big-small",
          NULL);
    CHECK(o.layout == TM_LAYOUT_BIG_SMALL);
    CHECK_MSG(log_count("info", "SH_ARENA_LAYOUT=EXCLUSIVE_ARENAS is ignored",
                        "TIERMEM_LAYOUT=big-small", NULL) == 1,
              "log: %s", log_text());
    log_reset(TM_LOG_INFO);
    parse(&o, "TIERMEM_MAX_ARENAS=10", "SH_MAX_ARENAS=20", NULL);
    CHECK(o.max_arenas == 10);
    CHECK(log_count("info", "SH_MAX_ARENAS=20 is ignored", NULL) == 1);
    /* a bad TIERMEM_ value still wins: the default, not SICM's value */
    log_reset(TM_LOG_WARN);
    parse(&o, "TIERMEM_MAX_ARENAS=0", "SH_MAX_ARENAS=20", NULL);
    CHECK(o.max_arenas == 1024);
    CHECK(log_count("warning", "TIERMEM_MAX_ARENAS=0", "using 1024",
                    NULL) == 1);
    /* an empty TIERMEM_GUIDANCE means "none" and beats SH_GUIDANCE_FILE */
    parse(&o, "SH_GUIDANCE_FILE=/tmp/x", "TIERMEM_GUIDANCE=", NULL);
    CHECK(o.guidance[0] == '\0');
    /* the first of two identical names wins, as getenv does */
    parse(&o, "TIERMEM_STACK_DEPTH=5", "TIERMEM_STACK_DEPTH=6", NULL);
    CHECK(o.stack_depth == 5);
}

static void test_target(void)
{
    options_t o;
    log_reset(TM_LOG_INFO);
    parse(&o, "TIERMEM_DEFAULT_TIER=2", "TIERMEM_DEFAULT_NODE=1", NULL);
    CHECK(o.default_target.kind == TM_TARGET_NODE &&
          o.default_target.index == 1);
    CHECK_MSG(log_count("info", "TIERMEM_DEFAULT_NODE=1 overrides "
                        "TIERMEM_DEFAULT_TIER", NULL) == 1,
              "log: %s", log_text());
    CHECK(log_count("warning", NULL) == 0);
    log_reset(TM_LOG_WARN);
    parse(&o, "TIERMEM_DEFAULT_TIER=2", "TIERMEM_DEFAULT_NODE=one", NULL);
    CHECK(o.default_target.kind == TM_TARGET_TIER &&
          o.default_target.index == 2);
    CHECK(log_count("warning", "TIERMEM_DEFAULT_NODE=one", "using tier 2",
                    NULL) == 1);
    parse(&o, "TIERMEM_DEFAULT_TIER=63", NULL);
    CHECK(o.default_target.kind == TM_TARGET_TIER &&
          o.default_target.index == 63 &&
          o.default_target.mode == TM_MODE_PREFERRED);
}

/* TIERMEM_SKIP_OBJECTS: base-name prefixes, '+' adds to the defaults
 * (libc, the loader, the language runtimes, libnuma); the wrappers named
 * by the user, not the defaults, are the ones worth a warning. */
static void test_skip_objects(void)
{
    options_t o;
    log_reset(TM_LOG_WARN);
    options_set_defaults(&o);
    CHECK(o.nskip_objects == 9 && strcmp(o.skip_objects[3], "libstdc++.so") == 0);
    parse(&o, "TIERMEM_SKIP_OBJECTS=", NULL);
    CHECK(o.nskip_objects == 0);
    parse(&o, "TIERMEM_SKIP_OBJECTS=+libmpi.so,ld-linux-x86-64", NULL);
    CHECK(o.nskip_objects == 11 && strcmp(o.skip_objects[9], "libmpi.so") == 0);
    parse(&o, "TIERMEM_SKIP_OBJECTS=libc.so", NULL);
    CHECK(o.nskip_objects == 1);
    CHECK(log_count("warning", NULL) == 0);
    parse(&o, "TIERMEM_WRAPPERS=+my_alloc,strdup", NULL);
    CHECK(o.wrappers_named == (uint32_t)1 << NEXPECTED_WRAPPERS);
    parse(&o, "TIERMEM_WRAPPERS=strdup,mine", NULL);
    CHECK(o.wrappers_named == 2u);
}

static void test_wrappers(void)
{
    options_t o;
    log_reset(TM_LOG_WARN);
    parse(&o, "TIERMEM_WRAPPERS=", NULL);
    CHECK(o.nwrappers == 0);
    parse(&o, "TIERMEM_WRAPPERS=  ", NULL);
    CHECK(o.nwrappers == 0);
    parse(&o, "TIERMEM_WRAPPERS= a , b,,a,", NULL);
    CHECK(o.nwrappers == 2 && strcmp(o.wrappers[0], "a") == 0 &&
          strcmp(o.wrappers[1], "b") == 0);
    parse(&o, "TIERMEM_WRAPPERS=+my_alloc, std::xalloc,strdup", NULL);
    CHECK(o.nwrappers == NEXPECTED_WRAPPERS + 2);
    CHECK(strcmp(o.wrappers[0], "hypre_MAlloc") == 0);
    CHECK(strcmp(o.wrappers[NEXPECTED_WRAPPERS], "my_alloc") == 0);
    CHECK(strcmp(o.wrappers[NEXPECTED_WRAPPERS + 1], "std::xalloc") == 0);
    parse(&o, "TIERMEM_WRAPPERS=+", NULL);
    CHECK(o.nwrappers == NEXPECTED_WRAPPERS);
    parse(&o, "TIERMEM_WRAPPERS=a.b$c:d_0", NULL);
    CHECK(o.nwrappers == 1 && strcmp(o.wrappers[0], "a.b$c:d_0") == 0);
    char *n63 = repeat(0, "TIERMEM_WRAPPERS=", 'w', 63);
    parse(&o, n63, NULL);
    CHECK(o.nwrappers == 1 && strlen(o.wrappers[0]) == 63);
    CHECK(log_count("warning", NULL) == 0);
    /* 64 characters: too long */
    char *n64 = repeat(0, "TIERMEM_WRAPPERS=", 'w', 64);
    parse(&o, n64, NULL);
    CHECK(o.nwrappers == NEXPECTED_WRAPPERS);
    CHECK(log_count("warning", "TIERMEM_WRAPPERS=www",
                    "using the default list", NULL) == 1);
    /* 32 names fit; 33, or 24 more than the 9 defaults, do not */
    char list[512] = "TIERMEM_WRAPPERS=";
    for (int i = 0; i < 32; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%sf%d",
                 i ? "," : "", i);
    log_reset(TM_LOG_WARN);
    parse(&o, list, NULL);
    CHECK(o.nwrappers == 32 && strcmp(o.wrappers[31], "f31") == 0);
    strcat(list, ",f32");
    parse(&o, list, NULL);
    CHECK(o.nwrappers == NEXPECTED_WRAPPERS);
    CHECK(log_count("warning", "names more than 32 functions",
                    "using the default list", NULL) == 1);
    char plus[512] = "TIERMEM_WRAPPERS=+";
    for (int i = 0; i < 24; i++)
        snprintf(plus + strlen(plus), sizeof plus - strlen(plus), "%sg%d",
                 i ? "," : "", i);
    log_reset(TM_LOG_WARN);
    parse(&o, plus, NULL);
    CHECK(o.nwrappers == NEXPECTED_WRAPPERS);
    CHECK(log_count("warning", "names more than 32", NULL) == 1);
}

static void test_unknown_names(void)
{
    options_t o;
    log_reset(TM_LOG_WARN);
    parse(&o, "TIERMEM_STAK_DEPTH=4", "TIERMEM_LOG=info",
          "TIERMEM_LOG_FILE=/tmp/x", "TIERMEM_TIERS=0;1", "SH_PROFILE_ALL=1",
          "SH_ARENA_LAYOUT_X=1", "NOEQUALS", "=value", "TIERMEM_=1",
          "TIERMEM_CC_ROOT=/src", "TIERMEM_CC_PLUGIN=/x.so", NULL);
    CHECK(o.stack_depth == 2); /* TIERMEM_CC_*: the compiler's, no warning */
    CHECK_MSG(log_count("warning", "unknown setting TIERMEM_STAK_DEPTH "
                        "ignored", NULL) == 1, "log: %s", log_text());
    CHECK(log_count("warning", "unknown setting TIERMEM_ ignored", NULL) ==
          1);
    CHECK_MSG(log_count("warning", NULL) == 2, "log: %s", log_text());
    /* SICM's other settings are only noted, at info level */
    log_reset(TM_LOG_INFO);
    parse(&o, "SH_PROFILE_ALL=1", NULL);
    CHECK(log_count("warning", NULL) == 0);
    CHECK(log_count("info", "SH_PROFILE_ALL", NULL) == 1);
}

static void test_rank(void)
{
    options_t o;
    log_reset(TM_LOG_WARN);
    parse(&o, NULL);
    CHECK(o.rank == -1);
    parse(&o, "SLURM_PROCID=9", "PMI_RANK=5", "OMPI_COMM_WORLD_RANK=3", NULL);
    CHECK(o.rank == 3);
    parse(&o, "SLURM_PROCID=9", "PMIX_RANK=4", NULL);
    CHECK(o.rank == 4);
    parse(&o, "SLURM_PROCID=2147483647", NULL);
    CHECK(o.rank == 2147483647);
    CHECK(log_count("warning", NULL) == 0);
    parse(&o, "OMPI_COMM_WORLD_RANK=x", "PMI_RANK=2147483648",
          "PMIX_RANK=-1", "SLURM_PROCID=6", NULL);
    CHECK(o.rank == 6);
    CHECK(log_count("warning", "OMPI_COMM_WORLD_RANK=x", NULL) == 1);
    CHECK(log_count("warning", "PMI_RANK=2147483648", NULL) == 1);
    CHECK(log_count("warning", "PMIX_RANK=-1", NULL) == 1);
    CHECK(log_count("warning", NULL) == 3);
    log_reset(TM_LOG_WARN);
    parse(&o, "OMPI_COMM_WORLD_RANK=oops", NULL);
    CHECK(o.rank == -1);
    CHECK(log_count("warning", NULL) == 1);
}

static void test_guidance_path(void)
{
    char exe[4096], want[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    REQUIRE_VOID(n > 0);
    exe[n] = '\0';
    const char *base = strrchr(exe, '/') + 1;
    options_t o;
    log_reset(TM_LOG_WARN);
    parse(&o, "TIERMEM_GUIDANCE=/tmp/g.%r.%p.%e.%%", "PMI_RANK=12", NULL);
    snprintf(want, sizeof want, "/tmp/g.12.%ld.%s.%%", (long)getpid(), base);
    CHECK_MSG(strcmp(o.guidance, want) == 0, "guidance %s, want %s",
              o.guidance, want);
    parse(&o, "TIERMEM_GUIDANCE=/tmp/g.%r", NULL);
    CHECK(strcmp(o.guidance, "/tmp/g.0") == 0);
    parse(&o, "TIERMEM_GUIDANCE=/tmp/%%e", NULL);
    CHECK(strcmp(o.guidance, "/tmp/%e") == 0);
    CHECK(log_count("warning", NULL) == 0);
}

/* options_load reads the real environment into the global. */
static void test_load(void)
{
    log_reset(TM_LOG_WARN);
    CHECK(setenv("TIERMEM_STACK_DEPTH", "7", 1) == 0);
    CHECK(setenv("SH_MAX_SITES", "4096", 1) == 0);
    CHECK(setenv("TIERMEM_STACK_DEPHT", "7", 1) == 0);
    options_load();
    CHECK(runtime_options.stack_depth == 7);
    CHECK(runtime_options.max_sites == 4096);
    CHECK(log_count("warning", "unknown setting TIERMEM_STACK_DEPHT",
                    NULL) == 1);
    unsetenv("TIERMEM_STACK_DEPTH");
    unsetenv("SH_MAX_SITES");
    unsetenv("TIERMEM_STACK_DEPHT");
    options_load();
    CHECK(runtime_options.stack_depth == 2 && runtime_options.max_sites == 65536);
}

/* Parsing, warnings and info messages included, allocates nothing. */
static void test_no_malloc(void)
{
    if (!malloc_is_counted())
        return;
    options_t o;
    log_reset(TM_LOG_DEBUG);
    uint64_t before = thread_allocated();
    parse(&o, "TIERMEM_LAYOUT=x", "SH_ARENA_LAYOUT=EXCLUSIVE_SITE_ARENAS",
          "TIERMEM_STACK_DEPTH=99", "TIERMEM_WRAPPERS=+a,b-", "TIERMEM_FOO=1",
          "SH_BAR=2", "TIERMEM_DEFAULT_TIER=1", "TIERMEM_DEFAULT_NODE=2",
          "TIERMEM_GUIDANCE=/tmp/%e.%r.%p", "OMPI_COMM_WORLD_RANK=z",
          "PMI_RANK=1", "TIERMEM_SMALL_SIZE=1Q", "TIERMEM_OUTPUT_DIR=/o",
          NULL);
    uint64_t after = thread_allocated();
    CHECK_MSG(after == before, "options_parse allocated %llu bytes",
              (unsigned long long)(after - before));
    CHECK(log_count("warning", NULL) >= 5);
}

int main(void)
{
    options_t before_load = runtime_options;
    REQUIRE(log_open());

    test_parse_size();
    test_parse_ulong();
    test_parse_enum();
    test_expand_path();
    test_defaults(&before_load);
    test_good_values();
    test_bad_values();
    test_too_long();
    test_sicm_names();
    test_precedence();
    test_target();
    test_wrappers();
    test_skip_objects();
    test_unknown_names();
    test_rank();
    test_guidance_path();
    test_load();
    test_no_malloc();

    log_configure(TM_LOG_WARN, -1);
    CHECK(close(log_fd) == 0);
    return tm_test_done(__FILE__);
}
