/*
 * test_sampler_perf.c -- the perf sampler against the real kernel.
 *
 * No hardware PMU exists here, so the faults sampler (software page-fault
 * events, period 1, which report the faulting address) stands in for pebs
 * and ibs: it goes through the same open / per-thread rings / inherit /
 * drain path.  Checked: threads created after open and threads that
 * existed before it are both sampled, a forked child is not, and pebs/ibs
 * fail cleanly with exactly one warning where perf_event_open has no PMU.
 */
#include "config.h"

#include <linux/perf_event.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "perf_internal.h"
#include "profiler.h"
#include "../tm_test.h"
#include "../observe.h"

#define BLOCK ((size_t)4 << 20)

/* ---------------------------------------------------------------- sink */

/* Which pages of the watched block got a sample (one thread drains). */
static uintptr_t watch_lo;
static unsigned char watched[BLOCK / 4096];
static uint64_t samples_total, lost_total;

static void sink_sample(void *ctx, uintptr_t addr, uint32_t weight)
{
    (void)ctx;
    samples_total += weight;
    if (addr >= watch_lo && addr < watch_lo + BLOCK)
        watched[(addr - watch_lo) / 4096] = 1;
}

static void sink_lost(void *ctx, uint64_t n)
{
    (void)ctx;
    lost_total += n;
}

static const prof_sink_t sink = {sink_sample, sink_lost, NULL};

/* A fresh untouched block of small pages (no THP: one fault per page). */
static char *block_new(void)
{
    void *p = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (madvise(p, BLOCK, MADV_NOHUGEPAGE) != 0)
        printf("  madvise(MADV_NOHUGEPAGE) failed: errno %d\n", errno);
    return p;
}

static void watch(char *block)
{
    watch_lo = (uintptr_t)block;
    memset(watched, 0, sizeof watched);
}

static size_t watched_pages(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof watched; i++)
        n += watched[i];
    return n;
}

static void touch(char *block)
{
    for (size_t off = 0; off < BLOCK; off += 4096)
        ((volatile char *)block)[off] = 1;
}

static void *touch_thread(void *arg)
{
    touch(arg);
    return NULL;
}

static pthread_barrier_t go;
static char *early_block;

static void *early_thread(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&go); /* 1: exists before open */
    pthread_barrier_wait(&go); /* 2: open has happened */
    if (early_block != NULL) /* NULL: the sampler did not open */
        touch(early_block);
    return NULL;
}

static void options(prof_options_t *o, prof_sampler_kind_t kind)
{
    memset(o, 0, sizeof *o);
    o->enabled = true;
    o->sampler = kind;
    o->period = 1;
    o->interval_ns = 100000000; /* the rings hold one interval's samples */
    /* 0: the rings are sized by the locked-memory budget, which is what
     * lets this test run as an unprivileged user (the preload suite runs
     * it as nobody); they are drained at their watermark */
    o->ring_pages = 0;
}

/* ---------------------------------------------------------------- tests */

static void test_threads_and_fork(sampler_t *s)
{
    /* (2) a thread that existed before open */
    pthread_t early;
    REQUIRE_VOID(pthread_create(&early, NULL, early_thread, NULL) == 0);
    pthread_barrier_wait(&go);

    prof_options_t o;
    options(&o, PROF_SAMPLER_FAULTS);
    log_reset(TM_LOG_WARN);
    if (sampler_perf_ops.open(s, &o, &sink) != 0) {
        int e = errno;
        pthread_barrier_wait(&go);
        pthread_join(early, NULL);
        char why[160], seen[600];
        bool expected = tm_test_expect_perf_sw(why, sizeof why);
        snprintf(seen, sizeof seen, "open: errno %d %s: %.400s", e,
                 strerror(e), log_text());
        tm_test_missing("the faults sampler", expected, why, seen);
        return;
    }
    CHECK(strcmp(s->name, "faults") == 0);
    bool inherit_thread = log_count("warning", "inherit_thread", NULL) == 0;

    /* (1) a thread created after open */
    char *late_block = block_new();
    REQUIRE_VOID(late_block != NULL);
    watch(late_block);
    pthread_t late;
    REQUIRE_VOID(pthread_create(&late, NULL, touch_thread, late_block) == 0);
    REQUIRE_VOID(pthread_join(late, NULL) == 0);
    sampler_perf_ops.collect(s, 1);
    size_t n = watched_pages();
    CHECK_MSG(n >= sizeof watched * 9 / 10,
              "thread created after open: %zu of %zu pages sampled"
              " (%llu samples, %llu lost)", n, sizeof watched,
              (unsigned long long)samples_total,
              (unsigned long long)lost_total);

    early_block = block_new();
    REQUIRE_VOID(early_block != NULL);
    watch(early_block);
    pthread_barrier_wait(&go);
    REQUIRE_VOID(pthread_join(early, NULL) == 0);
    bool counted = malloc_is_counted();
    uint64_t before = thread_allocated();
    sampler_perf_ops.collect(s, 2);
    if (counted)
        CHECK(thread_allocated() == before); /* collect never mallocs */
    n = watched_pages();
    CHECK_MSG(n >= sizeof watched * 9 / 10,
              "thread existing before open: %zu of %zu pages sampled", n,
              sizeof watched);

    /* (3) a forked child's faults stay out of our rings */
    char *child_block = block_new();
    REQUIRE_VOID(child_block != NULL);
    watch(child_block);
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        touch(child_block);
        _exit(0);
    }
    int status;
    REQUIRE_VOID(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sampler_perf_ops.collect(s, 3);
    if (inherit_thread)
        CHECK_MSG(watched_pages() == 0, "a forked child fed %zu samples",
                  watched_pages());
    else if (tm_test_kernel_at_least(5, 13)) /* inherit_thread's kernel */
        CHECK_MSG(inherit_thread, "Linux >= 5.13 refused inherit_thread:"
                  "\n%s", log_text());
    else
        tm_test_skip("a forked child's faults stay out",
                     "Linux before 5.13 has no inherit_thread");

    /* the parent itself is still sampled after the fork */
    touch(child_block);
    sampler_perf_ops.collect(s, 4);
    CHECK(watched_pages() >= sizeof watched * 9 / 10);

    /* close: samples taken before it are still delivered, nothing after */
    char *last_block = block_new();
    REQUIRE_VOID(last_block != NULL);
    watch(last_block);
    touch(last_block);
    sampler_perf_ops.close(s);
    CHECK(s->state == NULL);
    CHECK(watched_pages() >= sizeof watched * 9 / 10);
    CHECK_MSG(log_count("warning", NULL) == 0 &&
                  log_count("error", NULL) == 0,
              "logged: %s", log_text());
    munmap(late_block, BLOCK);
    munmap(early_block, BLOCK);
    munmap(child_block, BLOCK);
    munmap(last_block, BLOCK);
}

/* (5) the wake-up watermark: a ring a quarter full makes the sampler's
 * wake descriptor readable, and drain delivers within the interval.  150
 * faults fill a 4-page ring past a quarter (102 records of 40 bytes) but
 * not past half, where the kernel wakes by default: this fails without
 * the watermark. */
static void test_wake(void)
{
#if TM_TEST_TSAN
    /* ThreadSanitizer faults in shadow pages with ours, so how full the
     * ring gets is not ours to set */
    tm_test_skip("the ring's wake-up watermark",
                 "ThreadSanitizer's shadow pages fault with ours");
    return;
#endif
    prof_options_t o;
    options(&o, PROF_SAMPLER_FAULTS);
    o.ring_pages = 4;
    sampler_t s;
    memset(&s, 0, sizeof s);
    log_reset(TM_LOG_WARN);
    if (sampler_perf_ops.open(&s, &o, &sink) != 0) {
        char why[160];
        tm_test_missing("the faults sampler's wake-up",
                        tm_test_expect_perf_sw(why, sizeof why), why,
                        log_text());
        return;
    }
    CHECK_MSG(strstr(s.detail, "event page-faults period 1 counts "
                               "page-faults") != NULL, "detail: %s",
              s.detail);
    char *block = block_new();
    REQUIRE_VOID(block != NULL);
    watch(block);
    int fd = sampler_perf_ops.wake_fd(&s);
    CHECK(fd >= 0);
    for (size_t off = 0; off < 150 * 4096; off += 4096)
        ((volatile char *)block)[off] = 1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_MSG(fd >= 0 && poll(&p, 1, 5000) == 1 && (p.revents & POLLIN),
              "150 faults in a 4-page ring did not wake (revents %#x)",
              p.revents);
    sampler_perf_ops.drain(&s);
    CHECK_MSG(watched_pages() >= 140, "drain delivered %zu of 150 pages",
              watched_pages());
    p.revents = 0;
    CHECK_MSG(fd < 0 || poll(&p, 1, 0) == 0,
              "still readable after the drain (revents %#x)", p.revents);
    CHECK(s.has_totals && s.totals.samples >= 140 && s.totals.foreign == 0 &&
          s.totals.no_addr == 0);
    sampler_perf_ops.close(&s);
    CHECK(s.totals.samples >= 140); /* the totals outlive close */
    CHECK_MSG(log_count("warning", NULL) == 0 &&
                  log_count("error", NULL) == 0,
              "logged: %s", log_text());
    munmap(block, BLOCK);
}

/* (6) system-wide mode (what IBS uses before Linux 6.2): one event per
 * CPU for every task, this process's samples kept by pid.  A forked
 * child's faults reach the rings and are dropped, counted as foreign;
 * ours are delivered.  Needs CAP_PERFMON or paranoid <= 0: root here. */
static void test_system_wide(void)
{
    prof_options_t o;
    options(&o, PROF_SAMPLER_FAULTS);
    o.system_wide = PROF_SYSTEM_WIDE_ON;
    sampler_t s;
    memset(&s, 0, sizeof s);
    log_reset(TM_LOG_INFO);
    if (sampler_perf_ops.open(&s, &o, &sink) != 0) {
        char seen[600];
        snprintf(seen, sizeof seen, "open: errno %d: %.400s", errno,
                 log_text());
        tm_test_missing("system-wide perf events", geteuid() == 0,
                        "not root (needs CAP_PERFMON)", seen);
        return;
    }
    CHECK_MSG(log_count("info", "whole CPUs", NULL) == 1, "log: %s",
              log_text());
    char *mine = block_new(), *childs = block_new();
    REQUIRE_VOID(mine != NULL && childs != NULL);
    watch(childs);
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        touch(childs);
        _exit(0);
    }
    int status;
    REQUIRE_VOID(waitpid(pid, &status, 0) == pid);
    sampler_perf_ops.collect(&s, 1);
    CHECK_MSG(watched_pages() == 0, "the child's faults delivered: %zu",
              watched_pages());
    CHECK_MSG(s.totals.foreign >= BLOCK / 4096 * 9 / 10,
              "%llu foreign samples for the child's %zu faults",
              (unsigned long long)s.totals.foreign, BLOCK / 4096);
    watch(mine);
    touch(mine);
    sampler_perf_ops.collect(&s, 2);
    CHECK_MSG(watched_pages() >= sizeof watched * 9 / 10,
              "system-wide: %zu of our %zu pages sampled", watched_pages(),
              sizeof watched);
    sampler_perf_ops.close(&s);
    munmap(mine, BLOCK);
    munmap(childs, BLOCK);
}

/* (7) the event sets, no PMU needed: pebs prefers L3-miss loads plus
 * all stores, then all loads; a named event is the only set; periods are
 * the defaults unless TIERMEM_PROFILE_PERIOD sets the first event's. */
static void test_event_sets(void)
{
    prof_options_t o;
    options(&o, PROF_SAMPLER_PEBS);
    o.period = 0;
    perf_events_t ev;
    REQUIRE_VOID(perf_events_for_kind(PROF_SAMPLER_PEBS, &o, 0, &ev) == 0);
    CHECK_MSG(ev.n == 2 && ev.attr[0].sample_period == 5003 &&
                  ev.attr[1].sample_period == 100003 &&
                  strcmp(ev.counter, "l3-miss-loads") == 0 &&
                  strstr(ev.name, " + ") != NULL,
              "pebs set 0: %zu events, %s", ev.n, ev.name);
    CHECK(ev.worst_rate[0] > 0.0 && ev.worst_rate[1] > ev.worst_rate[0]);
    REQUIRE_VOID(perf_events_for_kind(PROF_SAMPLER_PEBS, &o, 1, &ev) == 0);
    CHECK_MSG(ev.n == 1 && ev.attr[0].sample_period == 200003 &&
                  strcmp(ev.counter, "loads") == 0,
              "pebs set 1: %zu events, %s", ev.n, ev.name);
    errno = 0;
    CHECK(perf_events_for_kind(PROF_SAMPLER_PEBS, &o, 2, &ev) == -1 &&
          errno == ENOENT);
    o.period = 7;
    REQUIRE_VOID(perf_events_for_kind(PROF_SAMPLER_PEBS, &o, 0, &ev) == 0);
    CHECK(ev.attr[0].sample_period == 7 && ev.attr[1].sample_period == 100003);
    snprintf(o.event, sizeof o.event, "perf::PERF_COUNT_HW_CPU_CYCLES");
    if (perf_events_for_kind(PROF_SAMPLER_PEBS, &o, 0, &ev) == 0) {
        CHECK(ev.n == 1 && ev.attr[0].sample_period == 7 &&
              strcmp(ev.counter, "events") == 0 && ev.worst_rate[0] == 0.0);
        CHECK(perf_events_for_kind(PROF_SAMPLER_PEBS, &o, 1, &ev) == -1);
    } else {
        tm_test_skip("a named pebs event", "libpfm4 cannot be loaded here");
    }
    o.event[0] = '\0';
    o.period = 0;
    REQUIRE_VOID(perf_events_for_kind(PROF_SAMPLER_FAULTS, &o, 0, &ev) == 0);
    CHECK(ev.n == 1 && ev.attr[0].sample_period == 1 &&
          ev.attr[0].type == PERF_TYPE_SOFTWARE);
    CHECK(perf_events_for_kind(PROF_SAMPLER_FAULTS, &o, 1, &ev) == -1);
    CHECK(perf_events_for_kind(PROF_SAMPLER_UFFD, &o, 0, &ev) == -1 &&
          errno == EINVAL);
}

/* Is there a hardware PMU at all?  (Not here: ENOENT.) */
static bool hardware_pmu(void)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_HARDWARE;
    a.config = PERF_COUNT_HW_INSTRUCTIONS;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd >= 0)
        close((int)fd);
    return fd >= 0;
}

/* (4) pebs, ibs and auto without a PMU: -1, errno, one line: a warning
 * when the sampler was asked for by name, an info line under auto (the
 * normal case on machines without a PMU). */
static void test_no_pmu(prof_sampler_kind_t kind, const char *name,
                        const char *event)
{
    bool pmu = hardware_pmu();
    prof_options_t o;
    options(&o, kind);
    o.period = 0;
    snprintf(o.event, sizeof o.event, "%s", event);
    log_reset(TM_LOG_INFO);
    sampler_t s;
    memset(&s, 0, sizeof s);
    errno = 0;
    int rc = sampler_perf_ops.open(&s, &o, &sink);
    const char *level = kind == PROF_SAMPLER_AUTO ? "info" : "warning";
    int e = errno;
    if (rc == 0) {
        CHECK_MSG(pmu, "%s opened without a hardware PMU", name);
        printf("  %s opened: %s\n", s.name, log_text());
        tm_test_skip(name, "this machine has a PMU: its absence cannot be "
                     "tested");
        sampler_perf_ops.close(&s);
        return;
    }
    CHECK(rc == -1);
    CHECK_MSG(e != 0, "%s: errno not set", name);
    CHECK(s.state == NULL);
    CHECK_MSG(log_count(level, NULL) == 1 &&
                  log_count(level, "sampling unavailable", NULL) == 1,
              "%s logged: %s", name, log_text());
    CHECK_MSG(kind != PROF_SAMPLER_AUTO || log_count("warning", NULL) == 0,
              "auto warned: %s", log_text());
    CHECK_MSG(log_count("error", NULL) == 0, "%s logged: %s", name,
              log_text());
    printf("  %s: %s", name, log_text());
}

int main(void)
{
    REQUIRE(log_open()); /* a temporary file: no feature of the machine */
    test_no_pmu(PROF_SAMPLER_PEBS, "pebs", "");
    test_no_pmu(PROF_SAMPLER_IBS, "ibs", "");
    test_no_pmu(PROF_SAMPLER_AUTO, "auto", "");
    /* an event libpfm4 encodes but the kernel has no PMU for: the failure
     * comes from perf_event_open itself */
    test_no_pmu(PROF_SAMPLER_PEBS, "pebs cycles", "perf::PERF_COUNT_HW_CPU_CYCLES");
    CHECK(hardware_pmu() || log_count("warning", "errno 2", NULL) == 1);
    REQUIRE(pthread_barrier_init(&go, NULL, 2) == 0);
    sampler_t s;
    memset(&s, 0, sizeof s);
    test_threads_and_fork(&s);
    pthread_barrier_destroy(&go);
    test_wake();
    test_system_wide();
    test_event_sets();
    return tm_test_done(__FILE__);
}
