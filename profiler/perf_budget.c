/*
 * perf_budget.c -- which CPUs get a perf ring.
 *
 * The CPU lists of sysfs are parsed as hostile text, and a ring goes only
 * on the online CPUs this process may run on.  No allocation: it runs on
 * the profiling thread, in the sampler's open.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "perf_internal.h"

#define PERF_ONLINE_PATH "/sys/devices/system/cpu/online"

_Static_assert(PERF_AFFINITY_MAX_CPUS % CPU_SETSIZE == 0,
               "the affinity mask is a whole number of cpu_set_t");

/* ---------------------------------------------------------------- files */

/* A whole small /proc or /sys file into buf, NUL-terminated: its length,
 * or -1 when it cannot be read or does not fit (the kernel writes nothing
 * that long there, and a cut list could end in half a number). */
static ssize_t perf_read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    bool whole = false;
    char probe;
    for (;;) {
        bool full = len == size - 1; /* then: is there more? */
        ssize_t r = full ? read(fd, &probe, 1)
                         : read(fd, buf + len, size - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        whole = r == 0;
        if (r <= 0 || full)
            break;
        len += (size_t)r;
    }
    (void)close(fd); /* read-only: nothing to lose */
    if (!whole)
        return -1;
    buf[len] = '\0';
    return (ssize_t)len;
}

/* ---------------------------------------------------------------- CPUs */

/* A CPU number at *p, below PERF_CPU_ID_LIMIT; *p moves past it. */
static bool perf_cpu_number(const char **p, long *out)
{
    size_t n = 0;
    while ((*p)[n] >= '0' && (*p)[n] <= '9')
        n++;
    uint64_t v;
    if (!text_dec_u64(span_make(*p, n), PERF_CPU_ID_LIMIT - 1, &v))
        return false;
    *p += n;
    *out = (long)v;
    return true;
}

/* One item of a CPU list, "N" or "N-M" with N <= M. */
static bool perf_cpu_item(const char **p, long *lo, long *hi)
{
    if (!perf_cpu_number(p, lo))
        return false;
    *hi = *lo;
    if (**p != '-')
        return true;
    (*p)++;
    return perf_cpu_number(p, hi) && *hi >= *lo;
}

/* CPUs lo..hi appended at cpus[count] (or only counted), up to max. */
static size_t perf_cpu_range_add(int *cpus, size_t count, size_t max,
                                 long lo, long hi)
{
    for (long c = lo; c <= hi && count < max; c++, count++)
        if (cpus != NULL)
            cpus[count] = (int)c;
    return count;
}

size_t perf_cpu_list_parse(const char *text, int *cpus, size_t max)
{
    size_t count = 0;
    long next = 0; /* the lowest CPU the next item may name */
    const char *p = text;
    if (text == NULL)
        return 0;
    while (count < max) {
        long lo, hi;
        if (!perf_cpu_item(&p, &lo, &hi) || lo < next)
            break;
        char end = *p;
        if (end != ',' && end != '\n' && end != '\0')
            break; /* junk right after the item: the item is not one */
        count = perf_cpu_range_add(cpus, count, max, lo, hi);
        if (end != ',')
            break;
        p++;
        next = hi + 1;
    }
    return count;
}

size_t perf_cpus_intersect(const int *online, size_t n,
                           const cpu_set_t *mask, size_t mask_size,
                           int *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        int c = online[i];
        if (c >= 0 && (size_t)c < mask_size * 8 &&
            CPU_ISSET_S((size_t)c, mask_size, mask))
            out[k++] = c; /* k <= i: safe when out is online */
    }
    return k;
}

/* The online CPUs into cpus[0..max) (NULL: counted only); 0 when neither
 * sysfs nor sysconf knows. */
static size_t perf_online_cpus(int *cpus, size_t max)
{
    char buf[8192];
    if (perf_read_small(PERF_ONLINE_PATH, buf, sizeof buf) >= 0) {
        size_t n = perf_cpu_list_parse(buf, cpus, max);
        if (n > 0)
            return n;
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    log_debug("profiler: " PERF_ONLINE_PATH " unreadable or malformed;"
              " assuming CPUs 0 to %ld online", c - 1);
    if (c <= 0)
        return 0;
    return perf_cpu_range_add(cpus, 0, max, 0, c - 1);
}

/*
 * A ring only on the CPUs this process may run on: an MPI rank bound to
 * one core maps one ring, not one per CPU of the host, which is what
 * keeps 128 ranks x 128 CPUs from pinning gigabytes.
 *
 * The cost: events are opened per (thread, CPU) on these CPUs only, so a
 * thread the program later moves to a CPU outside the mask (a widened
 * sched_setaffinity, a runtime re-binding its workers) is not sampled
 * while it runs there -- silently: with no event on that CPU the kernel
 * has nothing to count as lost.  The mask read is the main thread's, as
 * the launcher (mpirun --bind-to, taskset, numactl) set it for the whole
 * process; a thread given a wider mask than the main thread's is missed
 * on the difference.
 */
size_t perf_cpus_for_rings(int *cpus, size_t max)
{
    if (cpus == NULL || max == 0)
        return 0;
    size_t n = perf_online_cpus(cpus, max);
    if (n == 0) {
        log_info("profiler: online CPUs unknown; one perf ring, on CPU 0");
        cpus[0] = 0;
        return 1;
    }
    cpu_set_t mask[PERF_AFFINITY_MAX_CPUS / CPU_SETSIZE];
    if (sched_getaffinity(getpid(), sizeof mask, mask) != 0) {
        log_debug("profiler: sched_getaffinity failed: errno %d; a perf"
                  " ring on each of the %zu online CPUs", errno, n);
        return n;
    }
    size_t k = perf_cpus_intersect(cpus, n, mask, sizeof mask, cpus, max);
    return k > 0 ? k : n; /* none in common: nothing wrote to cpus */
}
