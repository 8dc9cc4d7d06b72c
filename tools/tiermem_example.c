/*
 * tiermem-example -- the main job: a small memory-bound workload on tiers.
 *
 * It discovers the machine's tiers, gives each tier an arena, puts one array
 * per tier in it, runs a STREAM-style triad over them, and prints where the
 * pages are (move_pages residency).  Then it migrates the fast tier's arena
 * to the slowest tier and back, printing the migration report and the
 * residency after each move.  On a one-node machine every tier is node 0 and
 * the migrations still walk every extent.
 *
 * usage: tiermem-example [MiB per array, default 64]
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tiermem.h"

static void print_mask(uint64_t nodes)
{
    const char *sep = "";
    for (unsigned n = 0; n < TM_MAX_NODES; n++)
        if (nodes >> n & 1) {
            printf("%s%u", sep, n);
            sep = ",";
        }
}

static void print_residency(const char *label, tm_arena_t *a)
{
    tm_residency_t r;
    if (tm_arena_residency(a, 0, &r) != 0) {
        printf("  %-22s residency query failed: %s\n", label, strerror(errno));
        return;
    }
    printf("  %-22s mapped %7.1f MiB, resident %7.1f MiB:", label,
           r.bytes_mapped / 1048576.0, r.bytes_resident / 1048576.0);
    for (unsigned n = 0; n < TM_MAX_NODES; n++)
        if (r.node_bytes[n])
            printf(" node%u %.1f MiB", n, r.node_bytes[n] / 1048576.0);
    printf("\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* a[i] = b[i] + 3 c[i], three times; returns GB/s of the last pass */
static double triad(double *a, const double *b, const double *c, size_t n)
{
    double gbs = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + 3.0 * c[i];
        gbs = 3.0 * n * sizeof(double) / (now() - t0) / 1e9;
    }
    return gbs;
}

static void migrate(tm_arena_t *a, const tm_placement_t *to, const char *what)
{
    tm_migrate_report_t rep;
    int rc = tm_arena_migrate(a, to, &rep);
    printf("migrate %s to nodes ", what);
    print_mask(to->nodes);
    printf(": %s; %zu extents, %.1f MiB mapped, %.1f MiB resident, "
           "%.1f MiB moved, %zu pages failed\n",
           rc == 0 ? "ok" : strerror(rep.error), rep.extents,
           rep.bytes_mapped / 1048576.0, rep.bytes_resident / 1048576.0,
           rep.bytes_moved / 1048576.0, rep.pages_failed);
    for (size_t i = 0; i < rep.nfailures; i++)
        printf("  page %p: %s\n", rep.failures[i].addr,
               strerror(rep.failures[i].error));
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    if (mib == 0 || mib > 65536) {
        fprintf(stderr, "usage: %s [MiB per array, 1..65536]\n", argv[0]);
        return 2;
    }
    tm_topology_t topo;
    if (tm_topology_discover(&topo) != 0) {
        fprintf(stderr, "tier discovery failed: %s\n", strerror(errno));
        return 1;
    }
    printf("%u NUMA node(s), %u tier(s), ordered by %s:\n", topo.nnodes,
           topo.ntiers, topo.source);
    for (unsigned t = 0; t < topo.ntiers; t++) {
        printf("  tier %u: nodes ", t);
        print_mask(topo.tiers[t].nodes);
        printf(", %.1f GiB, %.1f GiB free\n",
               topo.tiers[t].capacity_bytes / 1073741824.0,
               topo.tiers[t].free_bytes / 1073741824.0);
    }

    size_t n = mib * 1048576 / sizeof(double);
    tm_arena_t *arena[TM_MAX_NODES];
    double *array[TM_MAX_NODES];
    for (unsigned t = 0; t < topo.ntiers; t++) {
        tm_placement_t pl;
        tm_topology_tier_placement(&topo, t, TM_MODE_BIND, &pl);
        arena[t] = tm_arena_create(&pl);
        array[t] = arena[t] ? tm_arena_aligned_alloc(arena[t], 2u << 20,
                                                      n * sizeof(double))
                            : NULL;
        if (array[t] == NULL) {
            fprintf(stderr, "tier %u: arena allocation failed: %s\n", t,
                    strerror(errno));
            return 1;
        }
        for (size_t i = 0; i < n; i++)
            array[t][i] = (double)i;
    }

    unsigned last = topo.ntiers - 1;
    double *b = array[0], *c = array[last];
    double *a = tm_arena_malloc(arena[0], n * sizeof(double));
    if (a == NULL) {
        fprintf(stderr, "allocation failed: %s\n", strerror(errno));
        return 1;
    }
    printf("triad a = b + 3c over %zu MiB arrays: %.2f GB/s\n", mib,
           triad(a, b, c, n));
    printf("residency:\n");
    for (unsigned t = 0; t < topo.ntiers; t++) {
        char label[32];
        snprintf(label, sizeof label, "tier %u arena %u", t,
                 tm_arena_id(arena[t]));
        print_residency(label, arena[t]);
    }

    tm_placement_t slow, fast;
    tm_topology_tier_placement(&topo, last, TM_MODE_BIND, &slow);
    tm_topology_tier_placement(&topo, 0, TM_MODE_BIND, &fast);
    migrate(arena[0], &slow, "tier 0 arena");
    print_residency("tier 0 arena after", arena[0]);
    migrate(arena[0], &fast, "tier 0 arena");
    print_residency("tier 0 arena after", arena[0]);
    double check = a[n / 2];
    printf("check a[n/2] = %.1f (expected %.1f)\n", check, 4.0 * (n / 2));

    tm_stats_t s;
    tm_stats_get(&s);
    printf("tiermem: %lu extents, %.1f MiB mapped, %lu migrations, "
           "%lu failed hook allocations, %lu failed binds\n",
           (unsigned long)s.extents, s.bytes_mapped / 1048576.0,
           (unsigned long)s.migrations, (unsigned long)s.hook_alloc_failures,
           (unsigned long)s.mbind_failures);
    tm_free(a);
    for (unsigned t = 0; t < topo.ntiers; t++)
        tm_arena_destroy(arena[t]);
    return check == 4.0 * (n / 2) ? 0 : 1;
}
