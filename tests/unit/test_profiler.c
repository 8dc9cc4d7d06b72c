/*
 * test_profiler.c -- the profiling thread: settings, lifecycle, fork, exit,
 * signals, fallback, and a replay run end to end.
 *
 * Every check reads observed state: the profile file through the library's
 * reader, /proc/self/task for the thread, the files left in a directory.
 * Waiting for intervals polls a counter with a generous deadline; nothing
 * asserts how long anything took.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "profiler.h"
#include "../tm_test.h"
#include "../observe.h"
#include "../profiler_util.h"

/* The test forks while jemalloc and tiermem hold more locks than TSan's
 * deadlock detector can track (it aborts inside fork), as test_fork.c
 * explains; races are still detected. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "detect_deadlocks=0"; }

static char dir[] = "/tmp/tm_test_profiler.XXXXXX";
static _Atomic uint64_t hook_calls, hook_last_seq;
static _Atomic bool hook_in_order = true;
static _Atomic double hook_accesses_per_sample; /* the last interval's */

static void hook(const prof_interval_t *iv, void *ctx)
{
    (void)ctx;
    uint64_t prev = atomic_exchange(&hook_last_seq, iv->seq);
    if (iv->seq != prev + 1)
        hook_in_order = false;
    atomic_store(&hook_accesses_per_sample, iv->accesses_per_sample);
    atomic_fetch_add(&hook_calls, 1);
}

static void hook_reset(void)
{
    hook_calls = 0;
    hook_last_seq = 0;
    hook_in_order = true;
    hook_accesses_per_sample = -1.0;
}

/* Wait (at most 20 s) until the hook has seen n intervals. */
static bool wait_intervals(uint64_t n)
{
    return wait_count(&hook_calls, n);
}

/* The profiling thread's tid, found by its name. */
static pid_t profiler_tid(void)
{
    DIR *d = opendir("/proc/self/task");
    pid_t tid = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        if (n > 0 && strncmp(comm, "tiermem-prof", 12) == 0)
            tid = atoi(e->d_name);
    }
    if (d != NULL)
        closedir(d);
    return tid;
}

/* A field of /proc/self/task/TID/status, as text. */
static bool task_status(pid_t tid, const char *field, char *out, size_t size)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *p = strstr(buf, field);
    if (p == NULL)
        return false;
    p += strlen(field);
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strcspn(p, "\n");
    if (len >= size)
        len = size - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* The system call a thread is blocked in, from /proc/self/task/TID/syscall:
 * its number, -1 when blocked outside one, -2 when running or unreadable.
 * The line is kept in last_syscall for the failure message. */
static char last_syscall[128] = "(none read)";
static long task_syscall(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(last_syscall, sizeof last_syscall, "open %s: errno %d",
                 path, errno);
        return -2;
    }
    ssize_t n = read(fd, last_syscall, sizeof last_syscall - 1);
    close(fd);
    last_syscall[n > 0 ? n : 0] = '\0';
    last_syscall[strcspn(last_syscall, "\n")] = '\0';
    if (n <= 0 || strncmp(last_syscall, "running", 7) == 0)
        return -2;
    return strtol(last_syscall, NULL, 10);
}

/* Is the thread ever found blocked in poll or ppoll (looking for at most
 * 20 s)?  A thread that sleeps between intervals is, as soon as it gets to
 * run and goes back to sleep; however busy the machine, only a thread
 * that never blocks there fails. */
static bool waits_in_poll(pid_t tid)
{
    for (int i = 0; i < 20000; i++) {
        long nr = task_syscall(tid);
#ifdef SYS_poll
        if (nr == SYS_poll)
            return true;
#endif
        if (nr == SYS_ppoll)
            return true;
        sleep_ms(1);
    }
    return false;
}

/* The thread's CPU time (utime + stime from /proc/self/task/TID/stat) in
 * seconds, or -1. */
static double task_cpu_seconds(pid_t tid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* fields after the ")" that ends comm: state is field 3; utime and
     * stime are fields 14 and 15 */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
                            "%*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The share of one CPU the thread used over at least ms of wall time, or
 * -1.  Other load can only lower it: the thread gets less CPU, and its
 * timerfd folds missed intervals into one wake-up. */
static double cpu_share(pid_t tid, long ms)
{
    double c0 = task_cpu_seconds(tid), t0 = monotonic_seconds();
    sleep_ms(ms);
    double c1 = task_cpu_seconds(tid), t1 = monotonic_seconds();
    if (c0 < 0 || c1 < 0)
        return -1;
    return (c1 - c0) / (t1 - t0);
}

/* ---------------------------------------------------------------- settings */

static void test_options(void)
{
    prof_options_t o;
    char *none[] = {NULL};
    log_reset(TM_LOG_WARN);
    prof_options_parse(none, &o);
    CHECK(!o.enabled && o.sampler == PROF_SAMPLER_AUTO);
    CHECK(o.interval_ns == 100000000ull && o.halflife == 4.0);
    CHECK(o.residency_every == 10 && o.ring_pages == 0); /* 0: sized */
    CHECK(o.system_wide == PROF_SYSTEM_WIDE_AUTO && !o.l3_miss_only);
    CHECK(log_text()[0] == '\0');

    char *good[] = {"TIERMEM_PROFILE=on", "TIERMEM_PROFILE_SAMPLER=uffd",
                    "TIERMEM_PROFILE_INTERVAL=250ms",
                    "TIERMEM_PROFILE_HALFLIFE=2.5",
                    "TIERMEM_PROFILE_RING_PAGES=128",
                    "TIERMEM_PROFILE_RESIDENCY_EVERY=0",
                    "TIERMEM_PROFILE_FILE=/tmp/p.%p.txt",
                    "TIERMEM_PROFILE_SYSTEM_WIDE=on",
                    "TIERMEM_PROFILE_L3_MISS_ONLY=yes", NULL};
    prof_options_parse(good, &o);
    CHECK(o.enabled && o.sampler == PROF_SAMPLER_UFFD);
    CHECK(o.system_wide == PROF_SYSTEM_WIDE_ON && o.l3_miss_only);
    CHECK(o.interval_ns == 250000000ull && o.halflife == 2.5);
    CHECK(o.ring_pages == 128 && o.residency_every == 0);
    char want[64];
    snprintf(want, sizeof want, "/tmp/p.%ld.txt", (long)getpid());
    CHECK_MSG(strcmp(o.file, want) == 0, "file %s", o.file);
    CHECK(log_text()[0] == '\0');

    char *seconds[] = {"TIERMEM_PROFILE_INTERVAL=1s", NULL};
    prof_options_parse(seconds, &o);
    CHECK(o.interval_ns == 1000000000ull);

    char *bad[] = {"TIERMEM_PROFILE=maybe", "TIERMEM_PROFILE_SAMPLER=magic",
                   "TIERMEM_PROFILE_INTERVAL=0", "TIERMEM_PROFILE_HALFLIFE=-1",
                   "TIERMEM_PROFILE_RING_PAGES=100",
                   "TIERMEM_PROFILE_CLOCK=sundial",
                   "TIERMEM_PROFILE_SYSTEM_WIDE=sometimes", NULL};
    log_reset(TM_LOG_WARN);
    prof_options_parse(bad, &o);
    CHECK(!o.enabled && o.sampler == PROF_SAMPLER_AUTO);
    CHECK(o.interval_ns == 100000000ull && o.halflife == 4.0);
    CHECK(o.ring_pages == 0 && !o.trace_clock);
    CHECK(o.system_wide == PROF_SYSTEM_WIDE_AUTO);
    const char *names[] = {"TIERMEM_PROFILE=maybe", "TIERMEM_PROFILE_SAMPLER",
                           "TIERMEM_PROFILE_INTERVAL", "TIERMEM_PROFILE_HALFLIFE",
                           "TIERMEM_PROFILE_RING_PAGES", "TIERMEM_PROFILE_CLOCK",
                           "TIERMEM_PROFILE_SYSTEM_WIDE"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        CHECK_MSG(log_count("warning", names[i], "using", NULL) == 1,
                  "one warning for %s", names[i]);

    char *replay_without_file[] = {"TIERMEM_PROFILE_SAMPLER=replay", NULL};
    log_reset(TM_LOG_WARN);
    prof_options_parse(replay_without_file, &o);
    CHECK(o.sampler == PROF_SAMPLER_NONE);
    CHECK(log_count("warning", "TIERMEM_PROFILE_REPLAY", NULL) == 1);
    log_configure(TM_LOG_WARN, -1);
}

/* ---------------------------------------------------------------- lifecycle */

/* Runs with the profiler going: the thread exists, sleeps between
 * intervals, blocks every signal, and signals reach the application. */
static _Atomic pid_t signal_tid;
static void on_usr1(int sig)
{
    (void)sig;
    signal_tid = (pid_t)syscall(SYS_gettid);
}

/* Far below a spinning thread's share, even one sharing a CPU with a few
 * busy loops (53% measured beside two); well above what 50 wake-ups a
 * second cost, even under ASan on a loaded machine (1-2% measured). */
#define CPU_SHARE_MAX 0.10

static void check_thread(void)
{
    pid_t tid = profiler_tid();
    REQUIRE_VOID(tid > 0);
    char blk[64];
    CHECK(task_status(tid, "SigBlk:", blk, sizeof blk));
    /* every signal the kernel lets a thread block */
    CHECK_MSG(strcmp(blk, "fffffffe7ffbfeff") == 0 ||
                  strcmp(blk, "fffffffffffbfeff") == 0 ||
                  strcmp(blk, "fffffffe7fffffff") == 0 ||
                  strcmp(blk, "ffffffffffffffff") == 0,
              "SigBlk %s", blk);
    /* sleeping, not spinning: what the scheduler does with it on a loaded
     * machine changes neither property (load only lowers its CPU share) */
    CHECK_MSG(waits_in_poll(tid), "the profiling thread was never seen "
              "blocked in poll (last /proc syscall: %s)", last_syscall);
    double share = cpu_share(tid, 1000);
    printf("  profiling thread: %.1f%% of one CPU over 1 s\n", 100 * share);
    fflush(stdout); /* before the forks below copy the buffer */
    CHECK_MSG(share >= 0 && share < CPU_SHARE_MAX,
              "the profiling thread used %.1f%% of a CPU over 1 s",
              100 * share);
    /* a process-directed signal lands on the application's thread */
    struct sigaction sa = {.sa_handler = on_usr1}, old;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, &old) == 0);
    signal_tid = 0;
    CHECK(kill(getpid(), SIGUSR1) == 0);
    for (int i = 0; i < 2000 && signal_tid == 0; i++) /* 20 s at most */
        sleep_ms(10);
    CHECK(signal_tid == (pid_t)syscall(SYS_gettid));
    CHECK(sigaction(SIGUSR1, &old, NULL) == 0);
}

static void test_lifecycle(void)
{
    tm_arena_t *a = tm_arena_create(&(tm_placement_t){TM_MODE_PREFERRED, 1});
    REQUIRE_VOID(a != NULL);
    size_t size = 8u << 20;
    char *p = tm_arena_malloc(a, size);
    REQUIRE_VOID(p != NULL);
    memset(p, 1, size);

    prof_options_t o;
    profile_options_in(&o, dir, "life.txt", PROF_SAMPLER_NONE);
    char path[TM_PATH_MAX], partial[TM_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s", o.file);
    snprintf(partial, sizeof partial, "%s.partial", path);
    hook_reset();
    profiler_set_interval_hook(hook, NULL);
    REQUIRE_VOID(profiler_start(&o) == 0);
    CHECK(profiler_running());
    CHECK(strcmp(profiler_sampler_name(), "none") == 0);
    CHECK(strcmp(profiler_profile_path(), path) == 0);
    CHECK(profiler_start(&o) == -1 && errno == EBUSY);
    CHECK(wait_intervals(3));
    CHECK(path_exists(partial) && !path_exists(path));
    check_thread();
    profiler_stop();
    CHECK(!profiler_running());
    CHECK(profiler_tid() == 0);
    CHECK(path_exists(path) && !path_exists(partial));
    profiler_stop(); /* harmless */

    profile_t prof;
    REQUIRE_VOID(profile_read(path, &prof) == 0);
    CHECK(prof.complete);
    CHECK(prof.header.pid == (long)getpid());
    CHECK(strcmp(prof.header.sampler, "none") == 0);
    CHECK(prof.header.interval_ns == o.interval_ns);
    /* the hook saw every interval the file holds, in order */
    CHECK_MSG(prof.nintervals == hook_calls, "%zu intervals, %llu hook calls",
              prof.nintervals, (unsigned long long)hook_calls);
    CHECK(hook_in_order);
    CHECK(hook_accesses_per_sample == 0.0); /* no sampler: unknown */
    /* the arena is there, with its bytes resident on node 0 */
    unsigned id = tm_arena_id(a);
    bool seen = false;
    uint64_t resident0 = 0;
    for (size_t i = 0; i < prof.nintervals; i++) {
        const prof_interval_t *iv = &prof.intervals[i];
        CHECK(iv->seq == i + 1);
        for (size_t k = 0; k < iv->narenas; k++)
            if (iv->arenas[k].id == id && iv->arenas[k].mapped >= size)
                seen = true;
        for (size_t k = 0; k < iv->nresidency; k++)
            if (iv->residency[k].arena == id && iv->residency[k].node == 0)
                resident0 = iv->residency[k].bytes;
    }
    CHECK(seen);
    CHECK_MSG(resident0 >= size && resident0 <= size + (2u << 20),
              "resident on node 0: %llu", (unsigned long long)resident0);
    profile_free(&prof);

    /* it starts again, into a new file */
    profile_options_in(&o, dir, "life2.txt", PROF_SAMPLER_NONE);
    hook_reset();
    REQUIRE_VOID(profiler_start(&o) == 0);
    CHECK(wait_intervals(1));
    profiler_stop();
    CHECK(path_exists(o.file));
    profiler_set_interval_hook(NULL, NULL);
    tm_free(p);
    CHECK(tm_arena_destroy(a) == 0);
}

/* A second profile under a taken name (a rank's exec'd child inherits the
 * rank) gets the pid in its name; the first writer's file is untouched. */
static void test_name_taken(void)
{
    prof_options_t o;
    profile_options_in(&o, dir, "taken.txt", PROF_SAMPLER_NONE);
    char partial[TM_PATH_MAX + 16], mine[TM_PATH_MAX + 32];
    snprintf(partial, sizeof partial, "%s.partial", o.file);
    FILE *f = fopen(partial, "w");
    REQUIRE_VOID(f != NULL);
    fputs("another writer\n", f);
    fclose(f);
    REQUIRE_VOID(profiler_start(&o) == 0);
    snprintf(mine, sizeof mine, "%s/taken.%ld.txt", dir, (long)getpid());
    CHECK_MSG(strcmp(profiler_profile_path(), mine) == 0, "path %s",
              profiler_profile_path());
    profiler_stop();
    CHECK(path_exists(mine));
    char text[64] = "";
    f = fopen(partial, "r");
    CHECK(f != NULL && fgets(text, sizeof text, f) != NULL);
    if (f != NULL)
        fclose(f);
    CHECK(strcmp(text, "another writer\n") == 0);

    /* Both names planted (as links a hostile user left in a shared
     * directory): the profile is written under a name nobody can predict,
     * and the links' target is untouched. */
    char target[TM_PATH_MAX + 16], mine_partial[TM_PATH_MAX + 48];
    snprintf(target, sizeof target, "%s/target", dir);
    f = fopen(target, "w");
    REQUIRE_VOID(f != NULL);
    fputs("root's file\n", f);
    fclose(f);
    profile_options_in(&o, dir, "planted.txt", PROF_SAMPLER_NONE);
    snprintf(partial, sizeof partial, "%s.partial", o.file);
    snprintf(mine_partial, sizeof mine_partial, "%s/planted.%ld.txt.partial",
             dir, (long)getpid());
    REQUIRE_VOID(symlink(target, partial) == 0);
    REQUIRE_VOID(symlink(target, mine_partial) == 0);
    REQUIRE_VOID(profiler_start(&o) == 0);
    const char *path = profiler_profile_path();
    size_t len = strlen(dir) + strlen("/planted.") + 16 + strlen(".txt");
    CHECK_MSG(strncmp(path, dir, strlen(dir)) == 0 && strlen(path) == len &&
                  strstr(path, "/planted.") != NULL,
              "path %s", path);
    snprintf(mine, sizeof mine, "%s", path);
    profiler_stop();
    CHECK(path_exists(mine));
    f = fopen(target, "r");
    CHECK(f != NULL && fgets(text, sizeof text, f) != NULL);
    if (f != NULL)
        fclose(f);
    CHECK(strcmp(text, "root's file\n") == 0);
}

/* Settings given through the API are checked like the environment's. */
static void test_bad_options(void)
{
    prof_options_t o;
    profile_options_in(&o, dir, "bad.txt", PROF_SAMPLER_NONE);
    o.interval_ns = 0;
    log_reset(TM_LOG_WARN);
    CHECK(profiler_start(&o) == -1 && errno == EINVAL);
    profile_options_in(&o, dir, "bad.txt", PROF_SAMPLER_NONE);
    o.trace_clock = true;
    CHECK(profiler_start(&o) == -1 && errno == EINVAL);
    profile_options_in(&o, dir, "bad.txt", PROF_SAMPLER_REPLAY);
    CHECK(profiler_start(&o) == -1 && errno == EINVAL);
    CHECK(log_count("error", "not started", NULL) == 3);
    log_configure(TM_LOG_WARN, -1);
    CHECK(!profiler_running());
    char partial[TM_PATH_MAX + 16];
    snprintf(partial, sizeof partial, "%s.partial", o.file);
    CHECK(!path_exists(o.file) && !path_exists(partial));
}

/* ---------------------------------------------------------------- fork, exit */

static void test_fork(void)
{
    prof_options_t o;
    profile_options_in(&o, dir, "fork.txt", PROF_SAMPLER_NONE);
    char partial[TM_PATH_MAX + 16];
    snprintf(partial, sizeof partial, "%s.partial", o.file);
    hook_reset();
    profiler_set_interval_hook(hook, NULL);
    REQUIRE_VOID(profiler_start(&o) == 0);
    CHECK(wait_intervals(2));
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        /* disabled here; exit's handler must not finish the parent's file */
        int bad = profiler_running() ? 1 : 0;
        profiler_stop();
        exit(bad ? 3 : 0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(path_exists(partial) && !path_exists(o.file));
    uint64_t before = hook_calls;
    CHECK(wait_intervals(before + 2)); /* the parent's thread goes on */
    profiler_stop();
    profiler_set_interval_hook(NULL, NULL);
    profile_t prof;
    REQUIRE_VOID(profile_read(o.file, &prof) == 0);
    CHECK(prof.complete && prof.nintervals >= before + 2);
    CHECK(prof.header.pid == (long)getpid());
    profile_free(&prof);
}

/* A program that exits without stopping still gets its last interval. */
static void test_exit_flush(void)
{
    prof_options_t o;
    profile_options_in(&o, dir, "exit.txt", PROF_SAMPLER_NONE);
    /* an hour: only the exit closes an interval, however slowly a loaded
     * machine runs the child */
    o.interval_ns = 3600 * 1000000000ull;
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        tm_arena_t *a = tm_arena_create(&(tm_placement_t){TM_MODE_PREFERRED, 1});
        char *p = a ? tm_arena_malloc(a, 1u << 20) : NULL;
        if (p == NULL || profiler_start(&o) != 0)
            _exit(3);
        memset(p, 2, 1u << 20);
        exit(0); /* no profiler_stop: the atexit handler flushes */
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    profile_t prof;
    REQUIRE_VOID(profile_read(o.file, &prof) == 0);
    CHECK(prof.complete);
    CHECK_MSG(prof.nintervals == 1, "%zu intervals", prof.nintervals);
    if (prof.nintervals == 1) {
        const prof_interval_t *iv = &prof.intervals[0];
        CHECK(iv->t_end_ns < o.interval_ns);
        bool resident = false;
        for (size_t k = 0; k < iv->nresidency; k++)
            resident |= iv->residency[k].bytes >= (1u << 20);
        CHECK(resident);
    }
    profile_free(&prof);
}

/* An interval hook (the policy's place) that calls exit: exit's handler
 * runs on the profiling thread and must neither deadlock nor join itself.
 * A hang turns into SIGALRM, which the parent sees. */
static void exit_from_hook(const prof_interval_t *iv, void *ctx)
{
    (void)ctx;
    if (iv->seq == 2)
        exit(0);
}

static void test_exit_from_hook(void)
{
    prof_options_t o;
    profile_options_in(&o, dir, "hookexit.txt", PROF_SAMPLER_NONE);
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        alarm(60);
        profiler_set_interval_hook(exit_from_hook, NULL);
        if (profiler_start(&o) != 0)
            _exit(3);
        for (;;)
            pause();
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x",
              status);
    /* left unfinished, every whole interval readable */
    char partial[TM_PATH_MAX + 16];
    snprintf(partial, sizeof partial, "%s.partial", o.file);
    profile_t prof;
    REQUIRE_VOID(profile_read(partial, &prof) == 0);
    CHECK(!prof.complete && prof.nintervals >= 1);
    profile_free(&prof);
}

/* ---------------------------------------------------------------- fallback */

/* pebs is unavailable here (no PMU): the profiler says so and falls back. */
static void test_fallback(void)
{
    prof_options_t o;
    profile_options_in(&o, dir, "fallback.txt", PROF_SAMPLER_PEBS);
    log_reset(TM_LOG_WARN);
    REQUIRE_VOID(profiler_start(&o) == 0);
    char name[32];
    snprintf(name, sizeof name, "%s", profiler_sampler_name());
    if (strcmp(name, "pebs") == 0) {
        tm_test_skip("falling back from pebs", "this machine has a PMU");
    } else {
        CHECK(strcmp(name, "refs") == 0 || strcmp(name, "uffd") == 0 ||
              strcmp(name, "none") == 0);
        /* one clear line: what failed, and that it falls back */
        CHECK(log_count("warning", "pebs", "perf_event_open", NULL) == 1);
        CHECK(log_count("warning", "falling back", NULL) == 1);
    }
    profiler_stop();
    log_configure(TM_LOG_WARN, -1);
    profile_t prof;
    REQUIRE_VOID(profile_read(o.file, &prof) == 0);
    CHECK(prof.complete);
    CHECK(strcmp(prof.header.sampler, name) == 0);
    profile_free(&prof);
}

/* ---------------------------------------------------------------- hot/cold */

static _Atomic bool writer_stop;

static void *write_hot(void *arg)
{
    volatile char *hot = arg;
    uint64_t x = 88172645463325252ull;
    while (!writer_stop) {
        for (int i = 0; i < 4096; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            hot[(x % (16u << 20)) & ~63ull]++;
        }
    }
    return NULL;
}

/* The whole profiler with the portable sampler on a program with one hot
 * and one cold array: the profile read back names the hot site. */
static void test_hot_cold(void)
{
    size_t size = 16u << 20;
    char *hot = tm_site_malloc(61, size), *cold = tm_site_malloc(62, size);
    REQUIRE_VOID(hot != NULL && cold != NULL);
    memset(hot, 1, size);
    memset(cold, 2, size);
    prof_options_t o;
    profile_options_in(&o, dir, "hotcold.txt", PROF_SAMPLER_UFFD);
    hook_reset();
    profiler_set_interval_hook(hook, NULL);
    REQUIRE_VOID(profiler_start(&o) == 0);
    if (strcmp(profiler_sampler_name(), "uffd") != 0) {
        char why[160], seen[64];
        bool expected = tm_test_expect_uffd_wp(why, sizeof why);
        snprintf(seen, sizeof seen, "the profiler ran with %s",
                 profiler_sampler_name());
        tm_test_missing("hot/cold with the uffd sampler", expected, why, seen);
        profiler_stop();
        profiler_set_interval_hook(NULL, NULL);
        return;
    }
    writer_stop = false;
    pthread_t t;
    REQUIRE_VOID(pthread_create(&t, NULL, write_hot, hot) == 0);
    CHECK(wait_intervals(25));
    /* the cold array is read, never written */
    volatile uint64_t sum = 0;
    for (size_t i = 0; i < size; i += 4096)
        sum += (unsigned char)cold[i];
    CHECK(sum == 2 * (size / 4096));
    writer_stop = true;
    pthread_join(t, NULL);
    profiler_stop();
    profiler_set_interval_hook(NULL, NULL);
    profile_t p;
    REQUIRE_VOID(profile_read(o.file, &p) == 0);
    uint64_t hot_samples = 0, cold_samples = 0;
    for (size_t k = 0; k < p.nsites; k++) {
        if (p.sites[k].explicit_id == 61)
            hot_samples = p.sites[k].samples;
        if (p.sites[k].explicit_id == 62)
            cold_samples = p.sites[k].samples;
    }
    CHECK_MSG(hot_samples > 0 && hot_samples >= 10 * cold_samples,
              "hot %llu, cold %llu samples", (unsigned long long)hot_samples,
              (unsigned long long)cold_samples);
    printf("  hot/cold: hot %llu samples, cold %llu, over %zu intervals\n",
           (unsigned long long)hot_samples, (unsigned long long)cold_samples,
           p.nintervals);
    profile_free(&p);
    tm_free(hot);
    tm_free(cold);
}

/* ---------------------------------------------------------------- replay */

/* The site row of explicit id `id` in interval iv, or NULL. */
static const prof_site_row_t *site_row(const prof_interval_t *iv, int id)
{
    for (size_t k = 0; k < iv->nsites; k++)
        if (iv->sites[k].explicit_id == id)
            return &iv->sites[k];
    return NULL;
}

/* A trace through the whole profiler: thread, trace clock, attribution,
 * writer, reader.  The intervals are 10 ms of trace time each, so every
 * sample's interval is known in advance. */
static void test_replay_end_to_end(void)
{
    void *hot = tm_site_malloc(41, 4u << 20), *cold = tm_site_malloc(42, 1u << 20);
    REQUIRE_VOID(hot != NULL && cold != NULL);
    memset(hot, 1, 4u << 20);
    char trace[TM_PATH_MAX];
    snprintf(trace, sizeof trace, "%s/trace.txt", dir);
    FILE *f = fopen(trace, "w");
    REQUIRE_VOID(f != NULL);
    fprintf(f, "tiermem-trace 1\n"
               "1    id 41 0        5\n"   /* interval 1: hot 5+2, cold 1 */
               "2    id 41 8192     2\n"
               "3.5  id 42 100      1\n"
               "12   id 41 1048576  9\n"   /* interval 2: hot 9 */
               "25   id 42 0        4\n"   /* interval 3: cold 4 */
               "26   id 41 4096\n");       /* and hot 1 */
    fclose(f);

    prof_options_t o;
    profile_options_in(&o, dir, "replay.txt", PROF_SAMPLER_REPLAY);
    o.interval_ns = 10 * 1000000ull;
    o.trace_clock = true;
    snprintf(o.replay, sizeof o.replay, "%s", trace);
    hook_reset();
    profiler_set_interval_hook(hook, NULL);
    REQUIRE_VOID(profiler_start(&o) == 0);
    CHECK(strcmp(profiler_sampler_name(), "replay") == 0);
    CHECK(wait_intervals(3));
    profiler_stop();
    profiler_set_interval_hook(NULL, NULL);
    /* the intervals carry what a sample stands for: one access, in a trace */
    CHECK_MSG(hook_accesses_per_sample == 1.0, "%g accesses per sample",
              (double)hook_accesses_per_sample);

    profile_t p;
    REQUIRE_VOID(profile_read(o.file, &p) == 0);
    CHECK(p.complete && strcmp(p.header.sampler, "replay") == 0);
    CHECK_MSG(p.nintervals == 3, "%zu intervals", p.nintervals);
    static const uint64_t want_hot[] = {7, 9, 1}, want_cold[] = {1, 0, 4};
    for (size_t i = 0; i < 3 && i < p.nintervals; i++) {
        const prof_interval_t *iv = &p.intervals[i];
        CHECK(iv->t_end_ns == (i + 1) * o.interval_ns);
        const prof_site_row_t *h = site_row(iv, 41), *c = site_row(iv, 42);
        CHECK_MSG((h ? h->samples : 0) == want_hot[i] &&
                      (c ? c->samples : 0) == want_cold[i],
                  "interval %zu: hot %llu cold %llu", i + 1,
                  (unsigned long long)(h ? h->samples : 0),
                  (unsigned long long)(c ? c->samples : 0));
        CHECK(h == NULL || !h->estimated);
        CHECK(iv->lost == 0 && iv->unattributed == 0);
    }
    /* the totals name the sites by their stable keys */
    uint64_t hot_key = 0, hot_total = 0;
    for (size_t k = 0; k < p.nsites; k++)
        if (p.sites[k].explicit_id == 41) {
            hot_key = p.sites[k].key;
            hot_total = p.sites[k].samples;
        }
    CHECK(hot_total == 17);
    tm_site_info_t info;
    bool found = false;
    for (unsigned i = 0; i < tm_site_count(); i++)
        if (tm_site_info(i, &info) == 0 && info.explicit_id == 41)
            found = info.key == hot_key;
    CHECK(found);
    profile_free(&p);
    tm_free(hot);
    tm_free(cold);
}

int main(void)
{
    REQUIRE(mkdtemp(dir) != NULL);
    REQUIRE(log_open());
    test_options();
    test_lifecycle();
    test_bad_options();
    test_name_taken();
    test_fork();
    test_exit_flush();
    test_exit_from_hook();
    test_fallback();
    test_replay_end_to_end();
    test_hot_cold();
    return tm_test_done(__FILE__);
}
