/*
 * maps_util.h -- what /proc/self/maps says about an address range.
 *
 * Tests assert on the kernel's view, not on tiermem's bookkeeping: how many
 * bytes of a range are mapped, and how many VMAs the process has.
 */
#ifndef TM_MAPS_UTIL_H
#define TM_MAPS_UTIL_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Read /proc/self/maps into at most max (lo, hi) pairs; returns how many,
 * or -1 when the file cannot be read. */
typedef struct maps_vma {
    uintptr_t lo, hi;
} maps_vma_t;

static inline long maps_read(maps_vma_t *v, size_t max)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    char line[512];
    size_t n = 0;
    while (n < max && fgets(line, sizeof line, f))
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &v[n].lo, &v[n].hi) == 2)
            n++;
    fclose(f);
    return (long)n;
}

#define MAPS_MAX 65536
static maps_vma_t maps_buf[MAPS_MAX];

/* Bytes of [start, end) covered by any mapping. */
static inline size_t maps_bytes_in(uintptr_t start, uintptr_t end)
{
    long n = maps_read(maps_buf, MAPS_MAX);
    if (n < 0)
        return (size_t)-1;
    size_t total = 0;
    for (long i = 0; i < n; i++) {
        uintptr_t lo = maps_buf[i].lo, hi = maps_buf[i].hi;
        uintptr_t a = lo > start ? lo : start, b = hi < end ? hi : end;
        if (a < b)
            total += b - a;
    }
    return total;
}

/* Number of VMAs and their total size. */
static inline size_t maps_count(size_t *bytes)
{
    long n = maps_read(maps_buf, MAPS_MAX);
    size_t total = 0;
    for (long i = 0; i < n; i++)
        total += maps_buf[i].hi - maps_buf[i].lo;
    if (bytes)
        *bytes = total;
    return n < 0 ? 0 : (size_t)n;
}

/* VMAs with a NUMA policy of their own (bind, prefer, interleave): in a
 * test process only tiermem's extents have one, so after every arena is
 * destroyed there must be as many as before any was created. */
static inline size_t numa_maps_policy_vmas(void)
{
    FILE *f = fopen("/proc/self/numa_maps", "r");
    if (f == NULL)
        return (size_t)-1;
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        if (sp && strncmp(sp + 1, "default", 7) != 0)
            n++;
    }
    fclose(f);
    return n;
}

/* The VMAs that carry a NUMA policy of their own, as (lo, hi) pairs:
 * numa_maps names their start, maps gives their end. */
static inline long numa_maps_bound(maps_vma_t *out, size_t max)
{
    static maps_vma_t all[MAPS_MAX];
    long n = maps_read(all, MAPS_MAX);
    FILE *f = fopen("/proc/self/numa_maps", "r");
    if (f == NULL || n < 0) {
        if (f)
            fclose(f);
        return -1;
    }
    char line[1024];
    size_t m = 0;
    while (m < max && fgets(line, sizeof line, f)) {
        uintptr_t lo;
        char *sp = strchr(line, ' ');
        if (sp == NULL || strncmp(sp + 1, "default", 7) == 0 ||
            sscanf(line, "%" SCNxPTR, &lo) != 1)
            continue;
        for (long i = 0; i < n; i++)
            if (all[i].lo == lo) {
                out[m++] = all[i];
                break;
            }
    }
    fclose(f);
    return (long)m;
}
#endif
