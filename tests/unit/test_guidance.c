/*
 * test_guidance.c -- the guidance file parser (sites/guidance.c).
 *
 * Cases feed guidance_parse texts with every kind of line the format
 * allows and forbids, and check the rules guidance_find returns and the
 * "name:line:" messages in the log, which is pointed at a temporary file.
 * One case places the text against an inaccessible page, so a read past
 * its end would crash; a property test compares lookups in a large random
 * file, duplicates included, with a plain "last rule wins" scan.
 */
#include "config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sites.h"
#include "sites.h"
#include "../tm_test.h"
#include "../observe.h"

static long parse_str(const char *text, const char *name, guidance_t *g)
{
    memset(g, 0, sizeof *g);
    return guidance_parse(text, strlen(text), name, g);
}

/* The rule for a selector is there with this target. */
static bool has_rule(const guidance_t *g, bool by_id, uint64_t key,
                     int kind, unsigned index, tm_mode_t mode)
{
    const guidance_rule_t *r = guidance_find(g, by_id, key);
    return r != NULL && r->by_id == by_id && r->key == key &&
           (int)r->target.kind == kind && r->target.index == index &&
           r->target.mode == mode;
}

/* ------------------------------------------------------------------ */
/* Cases                                                                */
/* ------------------------------------------------------------------ */

static void test_good_file(void)
{
    static const char text[] =
        "# made by hand\r\n"
        "\r\n"
        "   tiermem-guidance   1   # the header may carry a comment\r\n"
        "key 0x9f3c0e1d2a4b5c6d tier 0\r\n"
        "\tkey 9F3C0E1D2A4B5C6E node 1 bind  \r\n"
        "key 0XFFFFFFFFFFFFFFFF tier 63 interleave # the largest key\n"
        "key 0 node 63 preferred\n"
        "id 12 node 1 preferred\n"
        "id 2147483647 tier 2\n"
        "ID 7 TIER 1 BIND\n"
        "# the end, without a newline\n"
        "key a tier 3";
    guidance_t g;
    log_reset(TM_LOG_WARN);
    CHECK(parse_str(text, "good.txt", &g) == 8);
    CHECK(g.count == 8 && g.rejected == 0);
    CHECK(has_rule(&g, false, 0x9f3c0e1d2a4b5c6dULL, TM_TARGET_TIER, 0,
                   TM_MODE_PREFERRED));
    CHECK(has_rule(&g, false, 0x9f3c0e1d2a4b5c6eULL, TM_TARGET_NODE, 1,
                   TM_MODE_BIND));
    CHECK(has_rule(&g, false, UINT64_MAX, TM_TARGET_TIER, 63,
                   TM_MODE_INTERLEAVE));
    CHECK(has_rule(&g, false, 0, TM_TARGET_NODE, 63, TM_MODE_PREFERRED));
    CHECK(has_rule(&g, true, 12, TM_TARGET_NODE, 1, TM_MODE_PREFERRED));
    CHECK(has_rule(&g, true, 2147483647, TM_TARGET_TIER, 2,
                   TM_MODE_PREFERRED));
    CHECK(has_rule(&g, true, 7, TM_TARGET_TIER, 1, TM_MODE_BIND));
    CHECK(has_rule(&g, false, 0xa, TM_TARGET_TIER, 3, TM_MODE_PREFERRED));
    /* ids and keys are separate name spaces */
    CHECK(guidance_find(&g, false, 12) == NULL);
    CHECK(guidance_find(&g, true, 0) == NULL);
    CHECK(guidance_find(&g, false, 0x9f3c0e1d2a4b5c6cULL) == NULL);
    CHECK_MSG(log_count("warning", NULL) == 0, "log: %s", log_text());
    /* sorted, one rule per selector */
    for (size_t i = 1; i < g.count; i++)
        CHECK(g.rules[i - 1].by_id < g.rules[i].by_id ||
              (g.rules[i - 1].by_id == g.rules[i].by_id &&
               g.rules[i - 1].key < g.rules[i].key));
    guidance_free(&g);
    CHECK(g.count == 0 && g.cap == 0 && g.rules == NULL);
    CHECK(guidance_find(&g, false, 0xa) == NULL);
    CHECK(guidance_find(NULL, false, 0xa) == NULL);
    guidance_free(NULL);
}

static void test_duplicates(void)
{
    static const char text[] = "tiermem-guidance 1\n"
                               "key 0x10 tier 0\n"
                               "id 5 tier 0\n"
                               "key 10 node 2 bind\n" /* same key, later */
                               "id 5 node 3\n"
                               "key 0x000010 tier 4\n" /* the last one */
                               "id 6 tier 1\n";
    guidance_t g;
    log_reset(TM_LOG_WARN);
    CHECK(parse_str(text, "dup.txt", &g) == 3);
    CHECK(has_rule(&g, false, 0x10, TM_TARGET_TIER, 4, TM_MODE_PREFERRED));
    CHECK(has_rule(&g, true, 5, TM_TARGET_NODE, 3, TM_MODE_PREFERRED));
    CHECK(has_rule(&g, true, 6, TM_TARGET_TIER, 1, TM_MODE_PREFERRED));
    CHECK(log_count("warning", NULL) == 0);
    guidance_free(&g);
}

/* Each bad line: skipped, one warning "name:LINE:" quoting the field. */
static void test_malformed_lines(void)
{
    static const struct { const char *line, *quoted; } bad[] = {
        {"key 0x tier 0", "\"0x\""},
        {"key 0x12345678123456789 tier 0", "\"0x12345678123456789\""},
        {"key 12345678123456789 tier 0", "\"12345678123456789\""},
        {"key 0xg1 tier 0", "\"0xg1\""},
        {"key -1 tier 0", "\"-1\""},
        {"id 2147483648 tier 0", "\"2147483648\""},
        {"id -1 tier 0", "\"-1\""},
        {"id 0x10 tier 0", "\"0x10\""},
        {"key 1 tier 64", "\"64\""},
        {"key 1 node 64", "\"64\""},
        {"key 1 node -1", "\"-1\""},
        {"key 1 socket 0", "\"socket\""},
        {"key 1 tier 0 fast", "\"fast\""},
        {"key 1 tier 0 bind extra", "\"extra\""},
        {"key 1 tier", "\"key 1 tier\""},
        {"key 1", "\"key 1\""},
        {"site 1 tier 0", "\"site 1 tier 0\""},
        {"tiermem-guidance 1", "\"tiermem-guidance 1\""},
        {"key\x01 1 tier 0", "\"key? 1 tier 0\""},
    };
    char text[4096] = "tiermem-guidance 1\n";
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        strcat(text, bad[i].line);
        strcat(text, "\nkey 0x77 tier 1\n");
    }
    guidance_t g;
    log_reset(TM_LOG_WARN);
    long n = parse_str(text, "bad.txt", &g);
    size_t nbad = sizeof bad / sizeof *bad;
    CHECK_MSG(n == 1, "kept %ld", n);
    CHECK(g.rejected == nbad);
    CHECK(has_rule(&g, false, 0x77, TM_TARGET_TIER, 1, TM_MODE_PREFERRED));
    CHECK(guidance_find(&g, false, 1) == NULL);
    for (size_t i = 0; i < nbad; i++) {
        char where[32];
        snprintf(where, sizeof where, "bad.txt:%zu: ", 2 + 2 * i);
        CHECK_MSG(log_count("warning", where, bad[i].quoted, "line skipped", NULL) == 1,
                  "no warning \"%s...%s\" for \"%s\"; log:\n%s", where,
                  bad[i].quoted, bad[i].line, log_text());
    }
    CHECK_MSG(log_count("warning", NULL) == nbad, "%u warnings for %zu bad lines",
              log_count("warning", NULL), nbad);
    guidance_free(&g);
}

static void test_header(void)
{
    guidance_t g;
    log_reset(TM_LOG_WARN);
    CHECK(parse_str("# only comments\n\n  # and blanks\n", "empty.txt",
                    &g) == -1);
    CHECK(log_count("warning", "empty.txt: no \"tiermem-guidance 1\" header", NULL) ==
          1);
    CHECK(parse_str("", "empty.txt", &g) == -1);
    memset(&g, 0, sizeof g);
    CHECK(guidance_parse(NULL, 0, NULL, &g) == -1);
    log_reset(TM_LOG_WARN);
    CHECK(parse_str("# v2\ntiermem-guidance 2\nkey 1 tier 0\n", "v2.txt",
                    &g) == -1);
    CHECK(g.count == 0 && g.rules == NULL);
    CHECK_MSG(log_count("warning", "v2.txt:2: ", "version 2 is not supported",
                       "guidance file ignored", NULL) == 1,
              "log: %s", log_text());
    log_reset(TM_LOG_WARN);
    CHECK(parse_str("tiermem-guidance 1.0\nkey 1 tier 0\n", "v10.txt", &g) ==
          -1);
    CHECK(log_count("warning", "v10.txt:1: ", "version 1.0 is not supported", NULL) ==
          1);
    CHECK(parse_str("tiermem-guidance\nkey 1 tier 0\n", "nov.txt", &g) == -1);
    CHECK(log_count("warning", "nov.txt:1: ", NULL) == 1);
    CHECK(parse_str("tiermem-guidance 1 x\nkey 1 tier 0\n", "x.txt", &g) ==
          -1);
    CHECK(log_count("warning", "x.txt:1: ", NULL) == 1);
    /* rules before the header: the file is rejected, not half-read */
    log_reset(TM_LOG_WARN);
    CHECK(parse_str("key 1 tier 0\ntiermem-guidance 1\n", "late.txt", &g) ==
          -1);
    CHECK(log_count("warning", "late.txt:1: ", "must be \"tiermem-guidance 1\"",
                   NULL) == 1);
    /* a SICM file is recognised and pointed to the documentation */
    log_reset(TM_LOG_WARN);
    CHECK(parse_str("===== GUIDANCE\n12 1\n===== END\n", "sicm.txt", &g) ==
          -1);
    CHECK(log_count("warning", "sicm.txt:1: ", "SICM guidance file", NULL) == 1);
    /* a UTF-8 byte order mark before the header is fine */
    log_reset(TM_LOG_WARN);
    CHECK(parse_str("\xEF\xBB\xBFtiermem-guidance 1\r\nid 1 tier 1\r\n",
                    "bom.txt", &g) == 1);
    CHECK(log_count("warning", NULL) == 0);
    guidance_free(&g);
}

/* The text ends exactly at an inaccessible page: any read past len faults.
 * The last line has no newline and is cut in the middle of a rule. */
static void test_bounds(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE_VOID(map != MAP_FAILED);
    CHECK(mprotect(map + page, page, PROT_NONE) == 0);
    static const char *const texts[] = {
        "tiermem-guidance 1\nkey 1 tier 0\nkey 2 tier",
        "tiermem-guidance 1\nkey 1 tier 0\nkey 2 tier 1",
        "tiermem-guidance 1\nkey 1 tier 0\nkey 0x",
        "tiermem-guidance 1\nkey 1 tier 0\n# comment",
        "tiermem-guidance 1\nkey 1 tier 0\nid 1 tier 1 bind",
        "tiermem-guidance",
        "tiermem-guidance 1",
        "\xEF\xBB",
        "#",
    };
    static const long want[] = {1, 2, 1, 1, 2, -1, 0, -1, -1};
    log_configure(TM_LOG_OFF, log_fd);
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        size_t len = strlen(texts[i]);
        char *text = map + page - len;
        memcpy(text, texts[i], len);
        guidance_t g = {0};
        long n = guidance_parse(text, len, "edge", &g);
        CHECK_MSG(n == want[i], "text %zu: %ld rules, want %ld", i, n,
                  want[i]);
        guidance_free(&g);
    }
    /* len 0 at the very end of the page */
    guidance_t g = {0};
    CHECK(guidance_parse(map + page, 0, "edge", &g) == -1);
    CHECK(munmap(map, 2 * page) == 0);
}

/* NUL bytes, high bytes, a very long line: malformed, never a crash. */
static void test_garbage(void)
{
    static char text[300000];
    size_t n = 0;
    const char head[] = "tiermem-guidance 1\nkey 1\0 tier 0\n";
    memcpy(text, head, sizeof head - 1);
    n += sizeof head - 1;
    for (int i = 0; i < 256; i++)
        text[n++] = (char)(i == '\n' ? 'x' : i);
    text[n++] = '\n';
    memset(text + n, 'k', 200000); /* one 200 KB line */
    n += 200000;
    const char tail[] = "\nkey 2 tier 1\n\xff\xfe\n";
    memcpy(text + n, tail, sizeof tail - 1);
    n += sizeof tail - 1;
    guidance_t g = {0};
    log_reset(TM_LOG_WARN);
    CHECK(guidance_parse(text, n, "bin", &g) == 1);
    CHECK(g.rejected == 4);
    CHECK(has_rule(&g, false, 2, TM_TARGET_TIER, 1, TM_MODE_PREFERRED));
    CHECK(guidance_find(&g, false, 1) == NULL);
    CHECK(log_count("warning", "bin:2: ", NULL) == 1);
    CHECK(log_count("warning", "bin:4: ", "...\")", NULL) == 1); /* quoted, bounded */
    CHECK(strlen(log_text()) < 2000);
    guidance_free(&g);
}

/* Thousands of bad lines: a bounded log, and the rest counted. */
static void test_flood(void)
{
    static char text[200000];
    size_t n = (size_t)sprintf(text, "tiermem-guidance 1\n");
    for (int i = 0; i < 5000; i++)
        n += (size_t)sprintf(text + n, "junk\n");
    strcpy(text + n, "key 5 tier 5\n");
    guidance_t g;
    log_reset(TM_LOG_WARN);
    CHECK(parse_str(text, "flood", &g) == 1);
    CHECK(g.rejected == 5000);
    CHECK_MSG(log_count("warning", NULL) == 21, "%u warnings", log_count("warning", NULL));
    CHECK(log_count("warning", "flood:21: ", NULL) == 1);
    CHECK(log_count("warning", "flood:22: ", NULL) == 0);
    CHECK(log_count("warning", "flood: 4980 more malformed lines not shown", NULL) == 1);
    guidance_free(&g);
}

/* A large file with duplicates agrees with a plain last-wins scan. */
static void test_random(void)
{
    enum { RULES = 100000, KEYS = 30000 };
    static guidance_rule_t ref[RULES];
    static char text[RULES * 48];
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    size_t n = (size_t)sprintf(text, "tiermem-guidance 1\n");
    for (int i = 0; i < RULES; i++) {
        guidance_rule_t *r = &ref[i];
        uint64_t x = tm_test_rand(&seed);
        r->by_id = x & 1;
        r->key = r->by_id ? (x >> 8) % KEYS : ((x >> 8) % KEYS) * 0x9e37ULL;
        r->target.kind = (x >> 40) & 1 ? TM_TARGET_NODE : TM_TARGET_TIER;
        r->target.index = (unsigned)((x >> 41) % 64);
        r->target.mode = (tm_mode_t)(1 + (x >> 50) % 3);
        static const char *const modes[] = {"", "bind", "preferred",
                                            "interleave"};
        n += (size_t)sprintf(
            text + n, r->by_id ? "id %llu %s %u %s\n" : "key %llx %s %u %s\n",
            (unsigned long long)r->key,
            r->target.kind == TM_TARGET_NODE ? "node" : "tier",
            r->target.index, modes[r->target.mode]);
    }
    guidance_t g = {0};
    log_reset(TM_LOG_WARN);
    long kept = guidance_parse(text, n, "random", &g);
    CHECK(kept > 0 && kept <= 2 * KEYS);
    CHECK(g.rejected == 0);
    unsigned wrong = 0, checked = 0;
    for (int probe = 0; probe < 1000; probe++) {
        uint64_t x = tm_test_rand(&seed);
        bool by_id = x & 1;
        uint64_t key = by_id ? (x >> 8) % (KEYS + 100)
                             : ((x >> 8) % (KEYS + 100)) * 0x9e37ULL;
        const guidance_rule_t *want = NULL;
        for (int i = RULES - 1; i >= 0 && want == NULL; i--)
            if (ref[i].by_id == by_id && ref[i].key == key)
                want = &ref[i];
        const guidance_rule_t *got = guidance_find(&g, by_id, key);
        checked++;
        if (want == NULL ? got != NULL
                         : got == NULL ||
                               got->target.kind != want->target.kind ||
                               got->target.index != want->target.index ||
                               got->target.mode != want->target.mode)
            wrong++;
    }
    CHECK_MSG(wrong == 0, "%u of %u lookups disagree", wrong, checked);
    guidance_free(&g);
}

static void test_load(void)
{
    char dir[] = "/tmp/tm_test_guidance.XXXXXX", path[128];
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/rank0.txt", dir);
    const char text[] = "tiermem-guidance 1\nkey beef tier 1\nid 3 node 0 "
                        "bind\nkey zz tier 1\n";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE_VOID(fd >= 0);
    CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    CHECK(close(fd) == 0);
    guidance_t g;
    log_reset(TM_LOG_WARN);
    CHECK(guidance_load(path, &g) == 2);
    CHECK(has_rule(&g, false, 0xbeef, TM_TARGET_TIER, 1, TM_MODE_PREFERRED));
    CHECK(has_rule(&g, true, 3, TM_TARGET_NODE, 0, TM_MODE_BIND));
    char where[160];
    snprintf(where, sizeof where, "%s:4: ", path);
    CHECK_MSG(log_count("warning", where, "\"zz\"", NULL) == 1, "log: %s", log_text());
    guidance_free(&g);
    /* a missing file, a directory, an empty path: -1, logged with errno */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.txt", dir);
    log_reset(TM_LOG_WARN);
    CHECK(guidance_load(missing, &g) == -1);
    CHECK(g.count == 0 && g.rules == NULL);
    CHECK_MSG(log_count("warning", missing, "cannot be opened", "errno 2", NULL) == 1,
              "log: %s", log_text());
    CHECK(guidance_load(dir, &g) == -1);
    CHECK(log_count("warning", dir, "is a directory", NULL) == 1);
    CHECK(guidance_load("", &g) == -1);
    /* a pipe: refused with one warning, never read (inside the library a
     * FIFO could hang start-up; regular files only) */
    int pfd[2];
    REQUIRE_VOID(pipe(pfd) == 0);
    CHECK(write(pfd[1], text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    CHECK(close(pfd[1]) == 0);
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", pfd[0]);
    CHECK(guidance_load(fdpath, &g) == -1);
    CHECK(g.count == 0 && g.rules == NULL);
    CHECK(log_count("warning", fdpath, "is a FIFO, not a regular file",
                    NULL) == 1);
    CHECK(close(pfd[0]) == 0);
    CHECK(unlink(path) == 0);
    CHECK(rmdir(dir) == 0);
}

/* Parsing and loading, warnings included, never touch malloc. */
static void test_no_malloc(void)
{
    if (!malloc_is_counted())
        return;
    char text[20000];
    size_t n = (size_t)sprintf(text, "tiermem-guidance 1\n");
    for (int i = 0; i < 500; i++)
        n += (size_t)sprintf(text + n, "key %x tier %d\nbad line %d\n",
                             i * 7919, i % 64, i);
    guidance_t g = {0};
    log_reset(TM_LOG_DEBUG);
    uint64_t before = thread_allocated();
    long kept = guidance_parse(text, n, "nomalloc", &g);
    guidance_free(&g);
    long missing = guidance_load("/nonexistent/guidance.txt", &g);
    uint64_t after = thread_allocated();
    CHECK(kept == 500 && missing == -1);
    CHECK_MSG(after == before, "guidance parsing allocated %llu bytes",
              (unsigned long long)(after - before));
}

/* base/text.c's one '\r' rule: a CRLF file gives exactly the LF file's
 * rules; a '\r' inside a line is a byte of its field, not a blank. */
static void test_carriage_returns(void)
{
    static const char lf[] = "tiermem-guidance 1\nkey 0x1f tier 1\n"
                             "id 3 node 2 bind\nkey 0x2f tier 0";
    static const char crlf[] = "tiermem-guidance 1\r\nkey 0x1f tier 1\r\n"
                               "id 3 node 2 bind\r\nkey 0x2f tier 0\r";
    guidance_t a, b;
    log_reset(TM_LOG_WARN);
    CHECK(parse_str(lf, "lf", &a) == 3 && parse_str(crlf, "crlf", &b) == 3);
    CHECK(a.count == b.count && a.rejected == 0 && b.rejected == 0 &&
          memcmp(a.rules, b.rules, a.count * sizeof *a.rules) == 0);
    guidance_free(&a);
    guidance_free(&b);
    CHECK(parse_str("tiermem-guidance 1\nkey 0x1f\rtier 1\n"
                    "key 0x2f tier 1\rbind\nkey 0x3f tier 2\n", "mid", &a) == 1);
    CHECK(a.rejected == 2 && has_rule(&a, false, 0x3f, TM_TARGET_TIER, 2,
                                      TM_MODE_PREFERRED));
    CHECK(log_count("warning", "mid:2:", NULL) == 1 &&
          log_count("warning", "mid:3:", NULL) == 1);
    guidance_free(&a);
}

int main(void)
{
    REQUIRE(log_open());

    test_good_file();
    test_duplicates();
    test_malformed_lines();
    test_header();
    test_bounds();
    test_garbage();
    test_flood();
    test_random();
    test_load();
    test_no_malloc();
    test_carriage_returns();

    log_configure(TM_LOG_WARN, -1);
    CHECK(close(log_fd) == 0);
    return tm_test_done(__FILE__);
}
