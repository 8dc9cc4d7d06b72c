/*
 * log_capture.h -- tests that assert on what tiermem logged.
 *
 * The log (hooks/log.c) is pointed at a temporary file; log_text() reads
 * back everything written since log_reset(), and log_count() counts the
 * lines of one level that contain given words.  Include after tm_test.h.
 */
#ifndef TM_LOG_CAPTURE_H
#define TM_LOG_CAPTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hooks.h"

static int log_fd = -1; /* the test's main opens it (mkstemp) */

/* ------------------------------------------------------------------ */
/* The captured log                                                     */
/* ------------------------------------------------------------------ */

static void log_reset(int level)
{
    CHECK(ftruncate(log_fd, 0) == 0);
    CHECK(lseek(log_fd, 0, SEEK_SET) == 0);
    tm_log_configure(level, log_fd);
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

#endif /* TM_LOG_CAPTURE_H */
