/*
 * tm_test.h -- the tiny harness every tiermem test uses.
 *
 * CHECK records a failure and goes on, so one run shows every broken
 * property; tm_test_done() prints "N passed, N failed" and gives the exit
 * status automake's test driver expects (0 pass, 1 fail, 77 skip).
 */
#ifndef TM_TEST_H
#define TM_TEST_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static unsigned tm_test_passed, tm_test_failed;

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

static inline int tm_test_done(const char *name)
{
    printf("%s: %u passed, %u failed\n", name, tm_test_passed, tm_test_failed);
    return tm_test_failed ? 1 : 0;
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
#endif
