/*
 * test_profiler_fds.c -- the profiler's descriptors in a program that
 * takes them away (issue 12, defect 2): closefrom after profiling started,
 * a userfaultfd closed under a writer, the profile's number reused, a fork
 * after a number was reused, and the RLIMIT_NOFILE rule.
 *
 * What is checked is observed state: the program's files read back byte
 * for byte, the captured log, /proc/self/task and /proc/self/fd, the
 * profile files left in the directory.  alarm() turns a hang into a
 * failure (SIGALRM kills the test) instead of a stuck CI job; nothing
 * asserts how long anything took.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "profiler.h"
#include "../tm_test.h"
#include "../observe.h"
#include "../profiler_util.h"

/* The test forks while jemalloc and tiermem hold locks (test_fork.c). */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "detect_deadlocks=0"; }

static char dir[] = "/tmp/tm_test_profiler_fds.XXXXXX";
static _Atomic uint64_t hook_calls;

static void hook(const prof_interval_t *iv, void *ctx)
{
    (void)iv;
    (void)ctx;
    atomic_fetch_add(&hook_calls, 1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait (at most 20 s) until the hook has seen n intervals. */
static bool wait_intervals(uint64_t n)
{
    return wait_count(&hook_calls, n);
}

static void path_in_dir(char *out, size_t size, const char *name)
{
    snprintf(out, (size_t)size, "%s/%s", dir, name);
}

/* ------------------------------------------------------------ the program */

enum { NFILES = 6 };

typedef struct program_files {
    int fd[NFILES];
    unsigned long lines[NFILES];
    char name[32];
} program_files_t;

/* What a daemon does after it started: close every descriptor it did not
 * open itself (all but stdio and the test's log), then open files. */
static void close_all_but_ours(void)
{
    REQUIRE_VOID(log_fd >= 3);
    if (log_fd > 3)
        CHECK(close_range(3, (unsigned)log_fd - 1, 0) == 0);
    CHECK(close_range((unsigned)log_fd + 1, ~0u, 0) == 0);
}

static bool files_open(program_files_t *pf, const char *tag)
{
    snprintf(pf->name, sizeof pf->name, "%s", tag);
    for (int i = 0; i < NFILES; i++) {
        char path[TM_PATH_MAX], name[64];
        snprintf(name, sizeof name, "%s.file%d", tag, i);
        path_in_dir(path, sizeof path, name);
        pf->fd[i] = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pf->lines[i] = 0;
        if (pf->fd[i] < 0)
            return false;
    }
    return true;
}

/* Write numbered lines to every file and write into mem for secs. */
static void files_write_for(program_files_t *pf, double secs, char *mem,
                            size_t len)
{
    double t0 = now_s();
    for (unsigned long round = 0; now_s() - t0 < secs; round++) {
        for (int i = 0; i < NFILES; i++) {
            char line[64];
            int n = snprintf(line, sizeof line, "file %d line %lu\n", i,
                             pf->lines[i]);
            if (write(pf->fd[i], line, (size_t)n) == n)
                pf->lines[i]++;
        }
        for (size_t off = (round * 4096) % len; off < len; off += 64 * 4096)
            mem[off] = (char)round; /* faults on protected pages */
        sleep_ms(1);
    }
}

/* Close the files; each must hold exactly the lines written. */
static void files_check(program_files_t *pf)
{
    for (int i = 0; i < NFILES; i++) {
        CHECK(close(pf->fd[i]) == 0);
        char path[TM_PATH_MAX], name[64];
        snprintf(name, sizeof name, "%s.file%d", pf->name, i);
        path_in_dir(path, sizeof path, name);
        size_t len;
        size_t cap;
        char *got = read_file(path, "test file", TM_LOG_ERROR, 64u << 20,
                                 &len, &cap);
        REQUIRE_VOID(got != NULL);
        size_t want_len = 0;
        bool same = true;
        for (unsigned long k = 0; k < pf->lines[i] && same; k++) {
            char line[64];
            int n = snprintf(line, sizeof line, "file %d line %lu\n", i, k);
            same = want_len + (size_t)n <= len &&
                   memcmp(got + want_len, line, (size_t)n) == 0;
            want_len += (size_t)n;
        }
        CHECK_MSG(same && len == want_len,
                  "%s: %zu bytes, the program wrote %zu in %lu lines", path,
                  len, want_len, pf->lines[i]);
        meta_free(got, cap);
    }
}

/* ------------------------------------------------------------ scenarios */

/* Profiling with o, warnings captured and intervals counted from now. */
static bool start_counting(const prof_options_t *o)
{
    log_reset(TM_LOG_WARN);
    hook_calls = 0;
    profiler_set_interval_hook(hook, NULL);
    return profiler_start(o) == 0;
}

/* Stop profiling (a hang there is the caller's alarm), then cancel the
 * alarm and the hook. */
static void stop_counting(void)
{
    profiler_stop();
    alarm(0);
    profiler_set_interval_hook(NULL, NULL);
}

/* Wait (at most 20 s) until the profiler has found by itself that one of
 * its descriptors is no longer ours. */
static bool wait_lost(void)
{
    for (int i = 0; i < 2000 && !prof_fd_any_lost(); i++)
        sleep_ms(10);
    return prof_fd_any_lost();
}

/* After the profiler stopped on a lost descriptor: one warning, no thread
 * of ours left, the profile .partial and readable. */
static void check_stopped(const prof_options_t *o, const char *what,
                          int threads_before)
{
    CHECK_MSG(log_count("warning", "no longer ours", NULL) == 1,
              "log:\n%s", log_text());
    CHECK_MSG(log_count("warning", "no longer ours", what, NULL) == 1,
              "the warning does not name %s:\n%s", what, log_text());
    CHECK_MSG(thread_count() == threads_before, "%d threads, %d before",
              thread_count(), threads_before);
    char partial[TM_PATH_MAX + 16];
    snprintf(partial, sizeof partial, "%s.partial", o->file);
    CHECK(path_exists(partial) && !path_exists(o->file));
    profile_t p;
    CHECK(profile_read(partial, &p) == 0 && !p.complete);
    profile_free(&p);
}

/* The profiler runs with another sampler than `want`: a failure where this
 * machine provides the kernel feature `want` needs, a skip elsewhere. */
static void sampler_missing(const char *what, const char *want)
{
    char why[160] = "", seen[96];
    bool expected = true; /* replay and none need nothing of the kernel */
    if (strcmp(want, "uffd") == 0)
        expected = tm_test_expect_uffd_wp(why, sizeof why);
    else if (strcmp(want, "faults") == 0)
        expected = tm_test_expect_perf_sw(why, sizeof why);
    snprintf(seen, sizeof seen, "the profiler ran with %s",
             profiler_sampler_name());
    tm_test_missing(what, expected, why, seen);
}

/* Start profiling, let it run, then behave like a daemon: close everything
 * but stdio (closefrom), open 6 files, write for a second, stop. */
static void test_closefrom(const char *name, prof_sampler_kind_t kind,
                           const char *want_sampler)
{
    printf("closefrom with the %s sampler\n", want_sampler);
    size_t len = 16u << 20;
    char *mem = tm_site_malloc(70, len);
    REQUIRE_VOID(mem != NULL);
    memset(mem, 1, len);
    prof_options_t o;
    profile_options_in(&o, dir, name, kind);
    if (kind == PROF_SAMPLER_REPLAY) {
        char trace[TM_PATH_MAX];
        path_in_dir(trace, sizeof trace, "trace.txt");
        FILE *f = fopen(trace, "w");
        REQUIRE_VOID(f != NULL);
        fprintf(f, "tiermem-trace 1\n1 id 70 0 5\n25 id 70 4096 2\n");
        fclose(f);
        snprintf(o.replay, sizeof o.replay, "%s", trace);
        o.trace_clock = true; /* then waits for the stop: the idle path */
    }
    int threads = thread_count();
    REQUIRE_VOID(start_counting(&o));
    if (strcmp(profiler_sampler_name(), want_sampler) != 0) {
        char what[96];
        snprintf(what, sizeof what, "closefrom under the %s sampler",
                 want_sampler);
        sampler_missing(what, want_sampler);
    }
    CHECK(wait_intervals(2));
    alarm(60); /* a hang is a failure */
    close_all_but_ours();
    program_files_t pf;
    REQUIRE_VOID(files_open(&pf, name));
    files_write_for(&pf, 1.0, mem, len);
    stop_counting();
    files_check(&pf);
    check_stopped(&o, "", threads);
    tm_free(mem);
}

static _Atomic bool writer_stop;
static _Atomic uint64_t writer_rounds;

static void *writer_main(void *arg)
{
    volatile char *mem = arg;
    for (uint64_t r = 0; !writer_stop; r++) {
        for (size_t off = 0; off < (16u << 20); off += 4096)
            mem[off] = (char)r;
        atomic_fetch_add(&writer_rounds, 1);
    }
    return NULL;
}

/* Only the userfaultfd closed, while a thread writes the protected
 * memory: the writer keeps going (the kernel releases the old uffd and its
 * protection once our service thread lets go), the profiler stops. */
static void test_uffd_closed(void)
{
    printf("the userfaultfd closed under a writer\n");
    size_t len = 16u << 20;
    char *mem = tm_site_malloc(71, len);
    REQUIRE_VOID(mem != NULL);
    memset(mem, 1, len);
    prof_options_t o;
    profile_options_in(&o, dir, "uffd_closed.txt", PROF_SAMPLER_UFFD);
    int threads = thread_count();
    REQUIRE_VOID(start_counting(&o));
    if (strcmp(profiler_sampler_name(), "uffd") != 0) {
        sampler_missing("the userfaultfd closed under a writer", "uffd");
        stop_counting();
        tm_free(mem);
        return;
    }
    writer_stop = false;
    writer_rounds = 0;
    pthread_t t;
    REQUIRE_VOID(pthread_create(&t, NULL, writer_main, mem) == 0);
    CHECK(wait_intervals(3));
    alarm(60);
    int uffd = fd_named("[userfaultfd]");
    CHECK(uffd >= 0 && close(uffd) == 0);
    /* the writer goes on through whole rounds over every page */
    uint64_t r0 = writer_rounds;
    for (int i = 0; i < 2000 && writer_rounds < r0 + 20; i++)
        sleep_ms(10);
    CHECK_MSG(writer_rounds >= r0 + 20, "the writer made %llu rounds",
              (unsigned long long)(writer_rounds - r0));
    writer_stop = true;
    pthread_join(t, NULL);
    /* the profiler noticed by itself, before any stop */
    CHECK(wait_lost());
    stop_counting();
    check_stopped(&o, "userfaultfd", threads);
    /* the pages are plain writable memory again */
    memset(mem, 3, len);
    CHECK(mem[len - 1] == 3);
    tm_free(mem);
}

/* The program closed the profile's descriptor and opened its own file at
 * that number: nothing of the profile lands in it. */
static void test_profile_replaced(void)
{
    printf("the profile's number reused by the program\n");
    prof_options_t o;
    profile_options_in(&o, dir, "replaced.txt", PROF_SAMPLER_NONE);
    REQUIRE_VOID(start_counting(&o));
    CHECK(wait_intervals(2));
    int pfd = fd_named(".partial");
    REQUIRE_VOID(pfd >= 3);
    char theirs_path[TM_PATH_MAX];
    path_in_dir(theirs_path, sizeof theirs_path, "theirs.txt");
    int theirs = open(theirs_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE_VOID(theirs >= 0);
    static const char mine[] = "the program's own data\n";
    CHECK(write(theirs, mine, sizeof mine - 1) == sizeof mine - 1);
    REQUIRE_VOID(dup2(theirs, pfd) == pfd);
    /* the next interval's write finds it: profiling stops by itself */
    CHECK(wait_lost());
    alarm(60);
    stop_counting();
    char buf[256];
    ssize_t got = pread(theirs, buf, sizeof buf, 0);
    CHECK_MSG(got == sizeof mine - 1 && memcmp(buf, mine, sizeof mine - 1) == 0,
              "the program's file holds %zd bytes", got);
    CHECK(fcntl(pfd, F_GETFD) >= 0); /* never closed by us */
    check_stopped(&o, "the profile being written", thread_count());
    close(pfd);
    close(theirs);
}

/* A fork after the program reused the number of the profiler's timerfd:
 * the child's fork handler closes its copies of the profiler's
 * descriptors, but not the program's file at that number. */
static void test_fork_after_reuse(void)
{
    printf("fork after the timerfd's number was reused\n");
    prof_options_t o;
    profile_options_in(&o, dir, "fork.txt", PROF_SAMPLER_NONE);
    REQUIRE_VOID(start_counting(&o));
    CHECK(wait_intervals(1));
    int tfd = fd_named("[timerfd]"), efd = fd_named("[eventfd]");
    REQUIRE_VOID(tfd >= 3 && efd >= 3);
    char path[TM_PATH_MAX];
    path_in_dir(path, sizeof path, "fork_theirs.txt");
    int theirs = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE_VOID(theirs >= 0 && dup2(theirs, tfd) == tfd);
    struct stat want;
    REQUIRE_VOID(fstat(theirs, &want) == 0);
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        struct stat st;
        bool kept = fstat(tfd, &st) == 0 && st.st_ino == want.st_ino;
        bool closed = fcntl(efd, F_GETFD) < 0; /* its own copy: dropped */
        _exit(kept && closed ? 0 : kept ? 2 : 1);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child status %#x (1: the program's file was closed, 2: the "
              "profiler's eventfd was not)", status);
    alarm(60);
    stop_counting();
    CHECK(fcntl(tfd, F_GETFD) >= 0);
    close(tfd);
    close(theirs);
}

/* ------------------------------------------------------------ the limit */

/* Lower the soft limit so that exactly `free_fds` numbers are free (old
 * restored if that cannot be done).  Descriptors above the new limit drop
 * out of the count, hence the few rounds. */
static bool limit_leaving(long free_fds, struct rlimit *old)
{
    if (getrlimit(RLIMIT_NOFILE, old) != 0)
        return false;
    struct rlimit low = *old;
    for (int round = 0; round < 8; round++) {
        long now = fd_free_count();
        if (now == free_fds)
            return true;
        low.rlim_cur = (rlim_t)((long)low.rlim_cur + free_fds - now);
        if (setrlimit(RLIMIT_NOFILE, &low) != 0)
            break;
    }
    CHECK(setrlimit(RLIMIT_NOFILE, old) == 0);
    return false;
}

static void start_under_limit(long free_fds, prof_sampler_kind_t kind,
                              bool want_started, const char *why)
{
    struct rlimit old;
    REQUIRE_VOID(limit_leaving(free_fds, &old));
    prof_options_t o;
    profile_options_in(&o, dir, "limit.txt", kind);
    log_reset(TM_LOG_WARN);
    errno = 0;
    int rc = profiler_start(&o);
    int err = errno;
    long free_after = fd_free_count();
    if (rc == 0)
        profiler_stop();
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    if (want_started) {
        CHECK_MSG(rc == 0, "%ld free: not started:\n%s", free_fds,
                  log_text());
        CHECK(free_after >= PROF_FD_MARGIN);
        unlink(o.file);
    } else {
        CHECK_MSG(rc == -1 && err == EMFILE, "%ld free: rc %d errno %d",
                  free_fds, rc, err);
        CHECK_MSG(log_count("warning", "not started", "RLIMIT_NOFILE", why,
                            NULL) == 1, "%ld free: log:\n%s", free_fds,
                  log_text());
        CHECK(free_after == free_fds); /* nothing of ours left open */
        char partial[TM_PATH_MAX + 16];
        snprintf(partial, sizeof partial, "%s.partial", o.file);
        CHECK(!path_exists(partial) && !path_exists(o.file));
    }
}

static void test_rlimit(void)
{
    printf("RLIMIT_NOFILE\n");
    /* 3 of its own plus the margin: refused before opening anything */
    start_under_limit(3, PROF_SAMPLER_UFFD, false, "the profiler needs 3");
    start_under_limit(PROF_FD_MARGIN + 2, PROF_SAMPLER_NONE, false,
                      "the profiler needs 3");
    start_under_limit(PROF_FD_MARGIN + 3, PROF_SAMPLER_NONE, true, "");
    /* the uffd sampler's 4 more: refused once they are open, and given
     * back */
    start_under_limit(PROF_FD_MARGIN + 3, PROF_SAMPLER_UFFD, false,
                      "with the profiler's descriptors open");
    start_under_limit(PROF_FD_MARGIN + 7, PROF_SAMPLER_UFFD, true, "");
}

/* ------------------------------------------------------------ the kernel */

/* What the uffd sampler relies on when the program closes its uffd: the
 * kernel drops the registrations and protection with the last reference,
 * even while another thread sleeps in poll on it, and a write does not
 * hang. */
static int kernel_uffd;

static void *poll_uffd(void *arg)
{
    (void)arg;
    struct pollfd p = {.fd = kernel_uffd, .events = POLLIN};
    (void)poll(&p, 1, 2000);
    return NULL;
}

static void test_kernel_uffd_close(void)
{
    printf("the kernel: a closed write-protecting uffd\n");
    kernel_uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    char why[160], seen[96];
    bool expected = tm_test_expect_uffd_wp(why, sizeof why);
    if (kernel_uffd < 0) {
        snprintf(seen, sizeof seen, "userfaultfd: errno %d", errno);
        tm_test_missing("a closed write-protecting uffd", expected, why, seen);
        return;
    }
    struct uffdio_api api = {.api = UFFD_API};
    size_t len = 1u << 20;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE_VOID(m != MAP_FAILED);
    memset(m, 1, len);
    struct uffdio_register reg = {.range = {(uintptr_t)m, len},
                                  .mode = UFFDIO_REGISTER_MODE_WP};
    struct uffdio_writeprotect wp = {.range = {(uintptr_t)m, len},
                                     .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(kernel_uffd, UFFDIO_API, &api) != 0 ||
        !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) ||
        ioctl(kernel_uffd, UFFDIO_REGISTER, &reg) != 0 ||
        ioctl(kernel_uffd, UFFDIO_WRITEPROTECT, &wp) != 0) {
        snprintf(seen, sizeof seen, "write-protect: errno %d", errno);
        tm_test_missing("a closed write-protecting uffd", expected, why, seen);
        close(kernel_uffd);
        munmap(m, len);
        return;
    }
    pthread_t t;
    REQUIRE_VOID(pthread_create(&t, NULL, poll_uffd, NULL) == 0);
    sleep_ms(50);
    alarm(60);
    CHECK(close(kernel_uffd) == 0);
    for (size_t off = 0; off < len; off += 4096)
        m[off] = 2; /* would block for ever if the protection stayed */
    pthread_join(t, NULL);
    for (size_t off = 0; off < len; off += 4096)
        m[off] = 3;
    alarm(0);
    CHECK(m[0] == 3 && m[len - 4096] == 3);
    munmap(m, len);
}

int main(void)
{
    REQUIRE(mkdtemp(dir) != NULL);
    REQUIRE(log_open());
    runtime_init(); /* its log settings first: then the test's capture */
    test_kernel_uffd_close();
    test_rlimit();
    test_profile_replaced();
    test_fork_after_reuse();
    /* ThreadSanitizer takes a close() of a descriptor that another thread
     * is polling for a race on the descriptor (which is what the program
     * does to us here), and its report of it trips its own internal
     * check.  The release and ASan builds run it. */
    if (TM_TEST_TSAN)
        tm_test_skip("the userfaultfd closed under the service thread",
                     "ThreadSanitizer reports the close itself");
    else
        test_uffd_closed();
    test_closefrom("cf_uffd.txt", PROF_SAMPLER_UFFD, "uffd");
    test_closefrom("cf_refs.txt", PROF_SAMPLER_REFS, "refs");
    test_closefrom("cf_faults.txt", PROF_SAMPLER_FAULTS, "faults");
    test_closefrom("cf_replay.txt", PROF_SAMPLER_REPLAY, "replay");
    return tm_test_done(__FILE__);
}
