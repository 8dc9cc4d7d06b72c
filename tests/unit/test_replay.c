/*
 * test_replay.c -- the replay sampler feeding a real attrib_t.
 *
 * A trace names two explicit-id sites, one site by key and one user arena;
 * each collect/close pair must give exactly the per-site and per-arena
 * counts of that time window, unresolved samples must come out as lost,
 * malformed lines must be logged with file:line and skipped, and done()
 * must turn true after the last line.  Under the trace clock a gap longer
 * than 1024 intervals is shortened to 1024 (a far time once cost one
 * record per empty interval); the wall clock keeps the trace's times.
 */
#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include "profiler.h"
#include "../tm_test.h"
#include "../observe.h"

#define MS 1000000ull

static char trace_path[] = "/tmp/tm_test_trace.XXXXXX";

static bool write_trace(const char *text)
{
    int fd = mkstemp(trace_path);
    if (fd < 0)
        return false;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len;
    return close(fd) == 0 && ok;
}

static uint64_t arena_samples(const prof_interval_t *iv, unsigned id)
{
    for (size_t i = 0; i < iv->narenas; i++)
        if (iv->arenas[i].id == id)
            return iv->arenas[i].samples;
    return UINT64_MAX;
}

static const prof_site_row_t *site_row(const prof_interval_t *iv, int id)
{
    for (size_t i = 0; i < iv->nsites; i++)
        if (iv->sites[i].explicit_id == id)
            return &iv->sites[i];
    return NULL;
}

static bool site_samples(const prof_interval_t *iv, int id, uint64_t n)
{
    const prof_site_row_t *s = site_row(iv, id);
    return s != NULL && s->samples == n && !s->estimated;
}

/* interval_ns 0: the wall clock, as the profiler runs a trace without
 * TIERMEM_PROFILE_CLOCK=trace; else the trace clock with that interval. */
static int open_replay_clock(sampler_t *s, const char *path, attrib_t *a,
                             uint64_t trace_interval_ns)
{
    static prof_options_t o;
    prof_sink_t sink = attrib_sink(a);
    memset(&o, 0, sizeof o);
    snprintf(o.replay, sizeof o.replay, "%s", path);
    o.trace_clock = trace_interval_ns != 0;
    o.interval_ns = trace_interval_ns;
    *s = (sampler_t){.ops = &sampler_replay_ops};
    return sampler_replay_ops.open(s, &o, &sink);
}

static int open_replay(sampler_t *s, const char *path, attrib_t *a)
{
    return open_replay_clock(s, path, a, 0);
}

static void test_windows(void)
{
    char *b11 = tm_site_malloc(11, 1 << 20);
    char *b12 = tm_site_malloc(12, 2 << 20);
    tm_placement_t p = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *u = tm_arena_create(&p);
    REQUIRE_VOID(b11 && b12 && u);
    char *bu = tm_arena_malloc(u, 1 << 20);
    REQUIRE_VOID(bu != NULL);
    unsigned uid = tm_arena_id(u);
    char text[2048];
    snprintf(text, sizeof text,
             "tiermem-trace 1\n"
             "# interval 1: [0, 10 ms)\n"
             "0 id 11 0\n"
             "5 id 11 4096 3   # weighted\n"
             "9.5 arena %u 100\n"
             "\n"
             "# interval 2: [10, 20 ms)\n"
             "10 id 12 8192 2\n"
             "12 site %llx 0 4\n"
             "15 id 99 0 5\n"              /* no such site: lost */
             "bogus line\n"                /* line 11: malformed */
             "17 arena %u 999999999999\n"  /* past the arena: lost */
             "8 id 11 0\n"                 /* line 13: time backwards */
             "18 arena 4095 0\n"           /* no arena there: lost */
             "19 id 12 0 0\n"              /* line 15: zero count */
             "\r\n"
             "25.000001 arena %u 0 2\n",   /* interval 3 */
             uid, (unsigned long long)site_explicit_key(12), uid, uid);
    REQUIRE_VOID(write_trace(text));
    attrib_t *a = attrib_new(4);
    REQUIRE_VOID(a != NULL);
    log_reset(TM_LOG_WARN);
    sampler_t s;
    REQUIRE_VOID(open_replay(&s, trace_path, a) == 0);
    CHECK(strcmp(s.name, "replay") == 0);
    char where[1100];
    snprintf(where, sizeof where, "%s:11:", trace_path);
    CHECK(log_count("warning", where, "skipped", NULL) == 1);
    snprintf(where, sizeof where, "%s:13:", trace_path);
    CHECK(log_count("warning", where, "backwards", NULL) == 1);
    snprintf(where, sizeof where, "%s:15:", trace_path);
    CHECK(log_count("warning", where, "count", NULL) == 1);
    CHECK(log_count("warning", "replay", NULL) == 3);

    attrib_close(a, 0, 0);
    CHECK(!s.ops->done(&s));
    s.ops->collect(&s, 10 * MS);
    const prof_interval_t *iv = attrib_close(a, 0, 10 * MS);
    REQUIRE_VOID(iv != NULL);
    CHECK(site_samples(iv, 11, 4) && site_samples(iv, 12, 0));
    CHECK(arena_samples(iv, uid) == 1);
    CHECK(iv->samples == 5 && iv->lost == 0 && iv->unattributed == 0);

    CHECK(!s.ops->done(&s));
    s.ops->collect(&s, 20 * MS);
    iv = attrib_close(a, 10 * MS, 20 * MS);
    CHECK(site_samples(iv, 11, 0) && site_samples(iv, 12, 6));
    CHECK(arena_samples(iv, uid) == 0);
    CHECK(iv->samples == 6 && iv->lost == 7 && iv->unattributed == 0);

    s.ops->collect(&s, 25 * MS); /* the last line is at 25 ms + 1 ns */
    CHECK(!s.ops->done(&s));
    s.ops->collect(&s, 25 * MS + 2);
    CHECK(s.ops->done(&s));
    iv = attrib_close(a, 20 * MS, 30 * MS);
    CHECK(arena_samples(iv, uid) == 2 && iv->samples == 2 && iv->lost == 0);
    s.ops->close(&s);
    CHECK(s.state == NULL);
    attrib_delete(a);
    unlink(trace_path);
    tm_free(b11);
    tm_free(b12);
    tm_free(bu);
    CHECK(tm_arena_destroy(u) == 0);
}

static void test_bad_files(void)
{
    attrib_t *a = attrib_new(4);
    REQUIRE_VOID(a != NULL);
    sampler_t s;
    errno = 0;
    CHECK(open_replay(&s, "/nonexistent/trace", a) == -1 && errno == ENOENT);
    CHECK(log_count("error", "/nonexistent/trace", NULL) == 1);

    strcpy(trace_path, "/tmp/tm_test_trace.XXXXXX");
    REQUIRE_VOID(write_trace("tiermem-trace 2\n0 arena 1 0\n"));
    errno = 0;
    CHECK(open_replay(&s, trace_path, a) == -1 && errno == EINVAL);
    CHECK(log_count("error", "version 2", NULL) == 1);
    unlink(trace_path);

    strcpy(trace_path, "/tmp/tm_test_trace.XXXXXX");
    REQUIRE_VOID(write_trace("0 arena 1 0\n"));
    errno = 0;
    CHECK(open_replay(&s, trace_path, a) == -1 && errno == EINVAL);
    unlink(trace_path);

    /* base/text.c's '\r' rule: CRLF lines read as LF ones; a '\r' inside
     * a line is a byte, not a blank, so that line is skipped */
    strcpy(trace_path, "/tmp/tm_test_trace.XXXXXX");
    REQUIRE_VOID(write_trace("tiermem-trace 1\r\n0 arena 1 0\r\n"
                             "1 arena\r1 0\n2 arena 1 0\r\r\n"));
    log_reset(TM_LOG_WARN);
    REQUIRE_VOID(open_replay(&s, trace_path, a) == 0);
    char where[1100];
    snprintf(where, sizeof where, "%s:3:", trace_path);
    CHECK(log_count("warning", where, "skipped", NULL) == 1);
    snprintf(where, sizeof where, "%s:4:", trace_path);
    CHECK(log_count("warning", where, "skipped", NULL) == 1);
    CHECK(log_count("warning", NULL) == 2);
    CHECK(!s.ops->done(&s)); /* line 2 is a sample */
    s.ops->close(&s);
    unlink(trace_path);

    /* a header alone: nothing to deliver, done at once */
    strcpy(trace_path, "/tmp/tm_test_trace.XXXXXX");
    REQUIRE_VOID(write_trace("tiermem-trace 1"));
    REQUIRE_VOID(open_replay(&s, trace_path, a) == 0);
    CHECK(s.ops->done(&s));
    s.ops->collect(&s, UINT64_MAX);
    s.ops->close(&s);
    unlink(trace_path);
    attrib_delete(a);
}

/* What the trace clock does (profiler.c's run_trace_clock): intervals of
 * 10 ms back to back until done.  seen[k] = the samples of interval k + 1
 * for the first nseen intervals; returns how many intervals ran, stopping
 * at max (a trace clock that runs away). */
static uint64_t run_trace_clock(sampler_t *s, attrib_t *a, uint64_t max,
                                uint64_t *seen, size_t nseen)
{
    uint64_t k = 0;
    while (k < max) {
        k++;
        s->ops->collect(s, k * 10 * MS);
        const prof_interval_t *iv =
            attrib_close(a, (k - 1) * 10 * MS, k * 10 * MS);
        if (k <= nseen)
            seen[k - 1] = iv ? iv->samples : UINT64_MAX;
        if (s->ops->done(s))
            break;
    }
    return k;
}

static void test_far_gap(void)
{
    tm_placement_t p = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *u = tm_arena_create(&p);
    REQUIRE_VOID(u != NULL);
    char *bu = tm_arena_malloc(u, 4096);
    REQUIRE_VOID(bu != NULL);
    unsigned uid = tm_arena_id(u);
    char text[512];
    /* 10240 ms is exactly 1024 intervals of 10 ms: kept as it is */
    snprintf(text, sizeof text,
             "tiermem-trace 1\n"
             "0 arena %u 0\n"
             "10240 arena %u 0 2\n"
             "1700000000000 arena %u 0 3\n"      /* line 4: far */
             "1700000000015 arena %u 0 4\n",     /* 15 ms after it */
             uid, uid, uid, uid);
    strcpy(trace_path, "/tmp/tm_test_trace.XXXXXX");
    REQUIRE_VOID(write_trace(text));
    attrib_t *a = attrib_new(4);
    REQUIRE_VOID(a != NULL);
    sampler_t s;
    log_reset(TM_LOG_WARN);
    REQUIRE_VOID(open_replay_clock(&s, trace_path, a, 10 * MS) == 0);
    char where[1100];
    snprintf(where, sizeof where, "%s:4:", trace_path);
    CHECK(log_count("warning", where, "shortened", NULL) == 1);
    CHECK(log_count("warning", "replay", NULL) == 1);
    attrib_close(a, 0, 0);
    static uint64_t seen[4096];
    uint64_t n = run_trace_clock(&s, a, 100000, seen, 4096);
    /* 0 ms: interval 1; 10240 ms: 1025; the far sample one gap of 1024
     * intervals later, 20480 ms: 2049; 15 ms after it: 2050, the last */
    CHECK(n == 2050);
    CHECK(seen[0] == 1 && seen[1024] == 2 && seen[2048] == 3 &&
          seen[2049] == 4);
    uint64_t total = 0;
    for (size_t i = 0; i < 4096; i++)
        total += seen[i] != UINT64_MAX ? seen[i] : 0;
    CHECK(total == 10);
    s.ops->close(&s);

    /* the wall clock plays the trace in real time: nothing is moved */
    log_reset(TM_LOG_WARN);
    REQUIRE_VOID(open_replay_clock(&s, trace_path, a, 0) == 0);
    CHECK(log_count("warning", "replay", NULL) == 0);
    s.ops->collect(&s, 20500 * MS);
    const prof_interval_t *iv = attrib_close(a, 0, 20500 * MS);
    CHECK(iv != NULL && iv->samples == 3);
    CHECK(!s.ops->done(&s));
    s.ops->collect(&s, 1700000000000ull * MS + 1);
    iv = attrib_close(a, 20500 * MS, 1700000000000ull * MS + 1);
    CHECK(iv != NULL && iv->samples == 3 && !s.ops->done(&s));
    s.ops->close(&s);
    attrib_delete(a);
    unlink(trace_path);
    tm_free(bu);
    CHECK(tm_arena_destroy(u) == 0);
}

int main(void)
{
    REQUIRE(sites_ready());
    (void)malloc_is_counted;
    REQUIRE(log_open());
    test_windows();
    log_reset(TM_LOG_WARN);
    test_bad_files();
    test_far_gap();
    log_configure(TM_LOG_WARN, -1);
    return tm_test_done("test_replay");
}
