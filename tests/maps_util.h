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

/* Bytes of [start, end) covered by any mapping. */
static inline size_t maps_bytes_in(uintptr_t start, uintptr_t end)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return (size_t)-1;
    char line[512];
    size_t total = 0;
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) != 2)
            continue;
        uintptr_t a = lo > start ? lo : start, b = hi < end ? hi : end;
        if (a < b)
            total += b - a;
    }
    fclose(f);
    return total;
}

/* Number of VMAs and their total size. */
static inline size_t maps_count(size_t *bytes)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return 0;
    char line[512];
    size_t n = 0, total = 0;
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) != 2)
            continue;
        n++;
        total += hi - lo;
    }
    fclose(f);
    if (bytes)
        *bytes = total;
    return n;
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
#endif
