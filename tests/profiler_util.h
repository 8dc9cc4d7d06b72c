/*
 * profiler_util.h -- what the profiler's tests share: sleeping, waiting
 * for a counter to reach a value, the process's files, threads and
 * descriptors as /proc shows them, and profiler settings for a test's
 * directory.  Static inline functions; include after tm_test.h.
 */
#ifndef TM_PROFILER_UTIL_H
#define TM_PROFILER_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "profiler.h"

/* Sleep ms milliseconds, through signals. */
static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Wait (at most 20 s) until *count reaches n; a generous deadline, so
 * that only a count that never gets there fails. */
static inline bool wait_count(_Atomic uint64_t *count, uint64_t n)
{
    for (int i = 0; i < 2000 && *count < n; i++)
        sleep_ms(10);
    return *count >= n;
}

static inline bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The threads of this process (/proc/self/task), or -1 if unreadable. */
static inline int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The first open descriptor >= 3 whose /proc/self/fd link contains
 * `needle` ("[userfaultfd]", ".partial", ...), or -1. */
static inline int fd_named(const char *needle)
{
    for (int fd = 3; fd < 4096; fd++) {
        char link[64], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strstr(target, needle) != NULL)
            return fd;
    }
    return -1;
}

/* Profiling on with `sampler`: 20 ms intervals, residency every
 * interval, the profile written to dir/name. */
static inline void profile_options_in(prof_options_t *o, const char *dir,
                                      const char *name,
                                      prof_sampler_kind_t sampler)
{
    prof_options_defaults(o);
    o->enabled = true;
    o->sampler = sampler;
    o->interval_ns = 20 * 1000000ull;
    o->residency_every = 1;
    snprintf(o->file, sizeof o->file, "%s/%s", dir, name);
}

#endif
