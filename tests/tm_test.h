/*
 * tm_test.h -- the tiny harness every tiermem test uses.
 *
 * CHECK records a failure and goes on, so one run shows every broken
 * property; tm_test_done() prints "N passed, N failed" and gives the exit
 * status automake's test driver expects (0 pass, 1 fail, 77 skip).
 *
 * A sub-test that cannot run here calls tm_test_skip (or tm_test_missing,
 * for a kernel feature), which prints "SKIP: what (why)"; scripts/test.sh
 * counts those lines into its summary, so a skip never hides inside a
 * pass.  The program still passes on the checks it did run (a whole
 * program that checked nothing exits 77, automake's skip), so one skipped
 * part does not hide the rest.  A skip's reason names the machine or the
 * build, never a symptom
 * tiermem could cause; where the machine guarantees a feature (CI: Linux
 * 6.x, root), its absence is a failure.
 */
#ifndef TM_TEST_H
#define TM_TEST_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* ThreadSanitizer maps shadow memory for whatever the program touches, so
 * whole-process mapped-byte totals mean nothing under it; tests skip only
 * those comparisons (the per-range and per-policy checks still run). */
#if defined(__SANITIZE_THREAD__)
#define TM_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TM_TEST_TSAN 1
#endif
#endif
#ifndef TM_TEST_TSAN
#define TM_TEST_TSAN 0
#endif

/* AddressSanitizer replaces malloc and maps shadow memory as well. */
#if defined(__SANITIZE_ADDRESS__)
#define TM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TM_TEST_ASAN 1
#endif
#endif
#ifndef TM_TEST_ASAN
#define TM_TEST_ASAN 0
#endif

/* A build whose malloc is the sanitizer's and whose address space holds
 * its shadow: jemalloc's counters and VmSize mean something else there. */
#define TM_TEST_SANITIZED (TM_TEST_ASAN || TM_TEST_TSAN)

static unsigned tm_test_passed, tm_test_failed, tm_test_skipped;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (cond) {                                                           \
            tm_test_passed++;                                                 \
        } else {                                                              \
            tm_test_failed++;                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s (errno %d %s)\n",        \
                    __FILE__, __LINE__, #cond, errno, strerror(errno));       \
        }                                                                     \
    } while (0)

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        if (cond) {                                                           \
            tm_test_passed++;                                                 \
        } else {                                                              \
            tm_test_failed++;                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__,  \
                    #cond);                                                   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* Stop the test now: a precondition failed and nothing after it means much. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        bool tm_req_ok_ = (cond);                                             \
        CHECK(tm_req_ok_ && #cond);                                           \
        if (!tm_req_ok_)                                                      \
            return tm_test_done(__FILE__);                                    \
    } while (0)

/* REQUIRE for void helpers: skip the rest of the helper. */
#define REQUIRE_VOID(cond)                                                    \
    do {                                                                      \
        bool tm_req_ok_ = (cond);                                             \
        CHECK(tm_req_ok_ && #cond);                                           \
        if (!tm_req_ok_)                                                      \
            return;                                                           \
    } while (0)

/* A sub-test that could not run: `why` names what the machine or build
 * lacks.  Printed as "SKIP: ..." for scripts/test.sh's summary. */
__attribute__((format(printf, 2, 3), unused)) static void
tm_test_skip(const char *what, const char *why, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, why);
    vsnprintf(reason, sizeof reason, why, ap);
    va_end(ap);
    tm_test_skipped++;
    printf("SKIP: %s (%s)\n", what, reason);
}

static inline int tm_test_done(const char *name)
{
    if (tm_test_skipped)
        printf("%s: %u passed, %u failed, %u sub-tests skipped\n", name,
               tm_test_passed, tm_test_failed, tm_test_skipped);
    else
        printf("%s: %u passed, %u failed\n", name, tm_test_passed,
               tm_test_failed);
    return tm_test_failed ? 1 : tm_test_passed == 0 && tm_test_skipped ? 77
                                                                        : 0;
}

/* xorshift64: deterministic pseudo-random numbers for property tests. */
static inline uint64_t tm_test_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Scale for long tests: TM_TEST_SCALE=0.1 runs a tenth of the work (CI's
 * sanitizer builds use it).  Always at least 1. */
static inline double tm_test_scale(void)
{
    const char *s = getenv("TM_TEST_SCALE");
    double v = s ? strtod(s, NULL) : 1.0;
    return v > 0 ? v : 1.0;
}

/* ------------------------------------------------------------------ */
/* What this machine guarantees                                         */
/* ------------------------------------------------------------------ */

/* CI=true: CI's machines (Linux 6.x, root, no seccomp filter) have every
 * kernel feature the tests use; nothing may be skipped there. */
static inline bool tm_test_on_ci(void)
{
    const char *ci = getenv("CI");
    return ci != NULL && strcmp(ci, "true") == 0;
}

/* Is the running kernel at least major.minor? */
static inline bool tm_test_kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return false;
    return ma > major || (ma == major && mi >= minor);
}

/* A number from a /proc file (a sysctl, or "Field:" of /proc/self/status
 * when field is given, hex when base is 16); dflt when absent. */
static inline long long tm_test_proc_number(const char *path,
                                            const char *field, int base,
                                            long long dflt)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return dflt;
    char line[256];
    long long v = dflt;
    size_t flen = field ? strlen(field) : 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (field == NULL || strncmp(line, field, flen) == 0) {
            v = strtoll(line + flen, NULL, base);
            break;
        }
    }
    fclose(f);
    return v;
}

static inline bool tm_test_capable(int cap)
{
    unsigned long long eff = (unsigned long long)tm_test_proc_number(
        "/proc/self/status", "CapEff:", 16, 0);
    return (eff >> cap) & 1;
}

/* A seccomp filter (a container's) may refuse any system call. */
static inline bool tm_test_seccomp_filtered(void)
{
    return tm_test_proc_number("/proc/self/status", "Seccomp:", 10, 0) == 2;
}

/* Must userfaultfd write-protect of anonymous memory work here?  If not,
 * `why` says what the machine lacks. */
static inline bool tm_test_expect_uffd_wp(char *why, size_t size)
{
    const char *vm = "/proc/sys/vm/unprivileged_userfaultfd";
    if (tm_test_on_ci())
        return true;
#if !defined(__x86_64__)
    snprintf(why, size, "not x86-64: write-protect of anonymous memory "
             "depends on the architecture");
    return false;
#endif
    if (!tm_test_kernel_at_least(5, 7))
        snprintf(why, size, "Linux before 5.7 has no anonymous write-protect");
    else if (access(vm, F_OK) != 0)
        snprintf(why, size, "kernel built without userfaultfd (no %s)", vm);
    else if (!tm_test_capable(19 /* CAP_SYS_PTRACE */) &&
             tm_test_proc_number(vm, NULL, 10, 0) != 1)
        snprintf(why, size, "unprivileged: needs CAP_SYS_PTRACE or "
                 "vm.unprivileged_userfaultfd=1");
    else if (tm_test_seccomp_filtered())
        snprintf(why, size, "a seccomp filter may refuse userfaultfd");
    else
        return true;
    return false;
}

/* Must software perf events (page faults, with addresses) open here? */
static inline bool tm_test_expect_perf_sw(char *why, size_t size)
{
    const char *sysctl = "/proc/sys/kernel/perf_event_paranoid";
    if (tm_test_on_ci())
        return true;
    long long paranoid = tm_test_proc_number(sysctl, NULL, 10, 99);
    if (access(sysctl, F_OK) != 0)
        snprintf(why, size, "kernel built without perf events (no %s)",
                 sysctl);
    else if (paranoid > 2 && !tm_test_capable(38 /* CAP_PERFMON */) &&
             !tm_test_capable(21 /* CAP_SYS_ADMIN */))
        snprintf(why, size, "kernel.perf_event_paranoid=%lld and no "
                 "CAP_PERFMON", paranoid);
    else if (tm_test_seccomp_filtered())
        snprintf(why, size, "a seccomp filter may refuse perf_event_open");
    else
        return true;
    return false;
}

/* A kernel feature `what` needs is missing (`observed`: the error seen): a
 * failure where `expected`, else a skip naming `why_not`. */
static inline void tm_test_missing(const char *what, bool expected,
                                   const char *why_not, const char *observed)
{
    if (expected) {
        tm_test_failed++;
        fprintf(stderr, "FAIL: %s: %s, where this machine provides the "
                "feature\n", what, observed);
    } else {
        tm_test_skip(what, "%s; %s", why_not, observed);
    }
}
#endif
