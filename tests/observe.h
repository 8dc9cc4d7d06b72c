/*
 * observe.h -- what tiermem logged, and whether it called malloc, for the
 * tests of code that must do neither silently (settings, guidance).
 *
 * The log (base/log.c) goes to a temporary file (log_open); log_text()
 * reads back everything written since log_reset(), and log_count() counts
 * the lines of one level that contain given words.  thread_allocated() is
 * jemalloc's count of bytes this thread allocated.  Include after
 * tm_test.h.
 */
#ifndef TM_OBSERVE_H
#define TM_OBSERVE_H

#include <jemalloc/jemalloc.h>
#include <stdint.h>
#include <stdlib.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base.h"

static int log_fd = -1;

/* An unlinked temporary file for the log; false if it cannot be made. */
static bool log_open(void)
{
    char path[] = "/tmp/tm_test_log.XXXXXX";
    log_fd = mkstemp(path);
    return log_fd >= 0 && unlink(path) == 0;
}

/* jemalloc's count of bytes this thread allocated; 0 if unavailable. */
static uint64_t thread_allocated(void)
{
    uint64_t v = 0;
    size_t sz = sizeof v;
    if (mallctl("thread.allocated", &v, &sz, NULL, 0) != 0)
        return 0;
    return v;
}

/* Does thread_allocated() see this thread's mallocs?  Not under ASan or
 * TSan, whose malloc is not jemalloc's: the no-malloc checks are skipped
 * there.  In any other build it must, or those checks would pass blind. */
__attribute__((unused)) static bool malloc_is_counted(void)
{
    if (TM_TEST_SANITIZED) {
        tm_test_skip("a no-malloc check", "the sanitizer's malloc is not "
                     "jemalloc's");
        return false;
    }
    uint64_t a0 = thread_allocated();
    void *volatile p = malloc(100);
    uint64_t a1 = thread_allocated();
    free(p);
    CHECK_MSG(a1 != a0, "jemalloc's thread.allocated did not count a "
              "malloc: the no-malloc checks cannot run");
    return a1 != a0;
}

/* ------------------------------------------------------------------ */
/* The captured log                                                     */
/* ------------------------------------------------------------------ */

static void log_reset(int level)
{
    CHECK(ftruncate(log_fd, 0) == 0);
    CHECK(lseek(log_fd, 0, SEEK_SET) == 0);
    log_configure(level, log_fd);
}

/* Everything logged since log_reset, NUL-terminated. */
static const char *log_text(void)
{
    static char buf[65536];
    ssize_t len = pread(log_fd, buf, sizeof buf - 1, 0);
    CHECK(len >= 0);
    buf[len < 0 ? 0 : len] = '\0';
    return buf;
}

/* Lines at `level` ("warning", "info") that contain every needle given
 * (NULL ends the list). */
static unsigned log_count(const char *level, ...)
{
    char text[65536], tag[32];
    snprintf(text, sizeof text, "%s", log_text());
    snprintf(tag, sizeof tag, ": %s: ", level);
    unsigned count = 0;
    for (char *line = text, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        *nl = '\0';
        bool all = strstr(line, tag) != NULL;
        va_list ap;
        va_start(ap, level);
        for (const char *n; all && (n = va_arg(ap, const char *)) != NULL;)
            all = strstr(line, n) != NULL;
        va_end(ap);
        count += all;
    }
    return count;
}

#endif /* TM_OBSERVE_H */
