/*
 * log.c -- tiermem's one logging path.
 *
 * Library code never prints except through tm_log().  The runtime sets the
 * level and the file descriptor once, from TIERMEM_LOG and TIERMEM_LOG_FILE.
 * tm_log formats into a stack buffer and issues a single write(2): it never
 * allocates, so it is safe inside jemalloc's extent hooks and inside malloc
 * interposition, and one message is never interleaved with another.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hooks.h"

static _Atomic int log_level = TM_LOG_WARN;
static _Atomic int log_fd = -1; /* -1: stderr */

void tm_log_configure(int level, int fd)
{
    if (level < TM_LOG_OFF)
        level = TM_LOG_OFF;
    if (level > TM_LOG_DEBUG)
        level = TM_LOG_DEBUG;
    atomic_store(&log_level, level);
    atomic_store(&log_fd, fd);
}

int tm_log_level(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

static const char *level_name(int level)
{
    switch (level) {
    case TM_LOG_ERROR: return "error";
    case TM_LOG_WARN: return "warning";
    case TM_LOG_INFO: return "info";
    default: return "debug";
    }
}

void tm_log(int level, const char *fmt, ...)
{
    if (level > tm_log_level() || level <= TM_LOG_OFF)
        return;
    int saved_errno = errno; /* logging must not disturb the caller's errno */
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "tiermem[%d]: %s: ", (int)getpid(),
                     level_name(level));
    if (n < 0)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    if (fd < 0)
        fd = STDERR_FILENO;
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere left to report a logging failure */
        p += w;
        len -= (size_t)w;
    }
    errno = saved_errno;
}

void tm_assert_fail(const char *cond, const char *file, int line)
{
    tm_log(TM_LOG_ERROR, "invariant violated: %s at %s:%d", cond, file, line);
    abort();
}
