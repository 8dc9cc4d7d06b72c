/*
 * bench_migrate.c -- what tm_arena_migrate costs over the system call it is
 * built on.
 *
 * What: milliseconds for tm_arena_migrate of an arena holding N MiB
 * (default 256 MiB in 1 MiB allocations, every page touched) from node 0 to
 * node 0, next to ONE raw mbind(MPOL_BIND, MPOL_MF_MOVE) over a single
 * mmap of the same number of touched bytes to the same node; side by side,
 * alternating, repeated; medians and the median per-round ratio.  For
 * reference it also times the raw mbind followed by a move_pages status
 * query of every page, which is the work tiermem adds to check where the
 * pages ended up.  The last tm_migrate_report is printed in full.
 * Why: on a one-node machine nothing moves, so this isolates tiermem's own
 * overhead in migration: walking the arena's extents under its mutex, one
 * mbind per extent, and the residency queries behind the report.  On a
 * multi-node machine the page copies dominate both sides equally.
 *
 * Usage: bench_migrate [--mib N] [--chunk-kib K] [--rounds R] [--node N]
 */
#include "config.h"

#include <errno.h>
#include <numaif.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"
#include "tiermem.h"

static size_t page;

/* Touch every page so all of it is resident. */
static void touch(void *p, size_t size)
{
    for (size_t off = 0; off < size; off += page)
        ((volatile char *)p)[off] = 1;
}

static void raw_mbind(void *p, size_t size, unsigned node)
{
    unsigned long mask = 1ul << node;
    if (mbind(p, size, MPOL_BIND, &mask, 8 * sizeof mask + 1, MPOL_MF_MOVE) !=
        0)
        die_errno(errno, "mbind(MPOL_BIND, node %u, MPOL_MF_MOVE)", node);
}

/* move_pages status query of every page; returns pages not on `node`. */
static size_t raw_query(void **pages, int *status, size_t npages,
                        unsigned node)
{
    size_t off_node = 0;
    if (move_pages(0, npages, pages, NULL, status, 0) != 0)
        die_errno(errno, "move_pages(query %zu pages)", npages);
    for (size_t i = 0; i < npages; i++)
        if (status[i] != (int)node)
            off_node++;
    return off_node;
}

static void print_report(const tm_migrate_report_t *r)
{
    printf("  extents         %zu\n", r->extents);
    printf("  extents_failed  %zu\n", r->extents_failed);
    printf("  bytes_mapped    %zu (%.1f MiB)\n", r->bytes_mapped,
           (double)r->bytes_mapped / (1 << 20));
    printf("  bytes_resident  %zu (%.1f MiB)\n", r->bytes_resident,
           (double)r->bytes_resident / (1 << 20));
    printf("  bytes_moved     %zu\n", r->bytes_moved);
    printf("  pages_failed    %zu\n", r->pages_failed);
    printf("  busy_retries    %zu\n", r->busy_retries);
    printf("  error           %d%s%s\n", r->error, r->error ? " " : "",
           r->error ? strerror(r->error) : "");
    printf("  nfailures       %zu\n", r->nfailures);
    for (size_t i = 0; i < r->nfailures && i < TM_REPORT_MAX_FAILURES; i++)
        printf("    page %p: %s\n", r->failures[i].addr,
               strerror(r->failures[i].error));
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_migrate [--mib N] [--chunk-kib K] [--rounds R] "
            "[--node N]\n"
            "  --mib N        bytes the arena holds, MiB (default 256)\n"
            "  --chunk-kib K  size of each allocation, KiB (default 1024)\n"
            "  --rounds R     measured rounds (default 9)\n"
            "  --node N       source and target node (default 0)\n");
}

int main(int argc, char **argv)
{
    size_t mib = 256, chunk_kib = 1024, total, chunk, nchunks, npages;
    unsigned rounds = 9, node = 0;
    tm_arena_t *arena;
    tm_placement_t pl;
    tm_migrate_report_t rep;
    tm_stats_t st;
    void **chunks, *raw, **pages;
    int *status;
    double *tm_ms, *raw_ms, *rawq_ms, *ratio;
    int last_rc = 0, last_errno = 0;
    size_t off_node = 0;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--mib")) != NULL)
            mib = bench_parse_count("--mib", v);
        else if ((v = bench_opt(argc, argv, &i, "--chunk-kib")) != NULL)
            chunk_kib = bench_parse_count("--chunk-kib", v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")) != NULL)
            rounds = bench_parse_rounds(v);
        else if ((v = bench_opt(argc, argv, &i, "--node")) != NULL) {
            char *end;
            unsigned long n;
            errno = 0;
            n = strtoul(v, &end, 10);
            if (errno || end == v || *end || n >= TM_MAX_NODES)
                die("--node: bad node %s", v);
            node = (unsigned)n;
        } else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    {
        long ps = sysconf(_SC_PAGESIZE);
        if (ps <= 0)
            die_errno(errno, "sysconf(_SC_PAGESIZE)");
        page = (size_t)ps;
    }
    total = mib << 20;
    chunk = chunk_kib << 10;
    if (chunk > total)
        die("--chunk-kib larger than --mib");
    nchunks = total / chunk;
    total = nchunks * chunk;
    npages = total / page;

    /* The arena, filled and touched. */
    pl = tm_placement_node(TM_MODE_BIND, node);
    arena = tm_arena_create(&pl);
    if (arena == NULL)
        die_errno(errno, "tm_arena_create(BIND, node %u)", node);
    chunks = malloc(nchunks * sizeof *chunks);
    if (chunks == NULL)
        die_errno(errno, "malloc");
    for (size_t i = 0; i < nchunks; i++) {
        chunks[i] = tm_arena_malloc(arena, chunk);
        if (chunks[i] == NULL)
            die_errno(errno, "tm_arena_malloc(%zu) #%zu", chunk, i);
        touch(chunks[i], chunk);
    }
    tm_stats_get(&st);

    /* The raw mapping, same bytes, touched. */
    raw = mmap(NULL, total, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        die_errno(errno, "mmap(%zu)", total);
    touch(raw, total);
    pages = malloc(npages * sizeof *pages);
    status = malloc(npages * sizeof *status);
    if (pages == NULL || status == NULL)
        die_errno(errno, "malloc");
    for (size_t i = 0; i < npages; i++)
        pages[i] = (char *)raw + i * page;

    printf("bench_migrate: %zu MiB in %zu allocations of %zu KiB, every page "
           "touched; node %u -> node %u, %u rounds (+1 warm-up), "
           "alternating\n",
           total >> 20, nchunks, chunk_kib, node, node, rounds);
    printf("  tiermem arena %u: %llu extents, %.1f MiB mapped "
           "(tm_stats_get)\n",
           tm_arena_id(arena), (unsigned long long)st.extents,
           (double)st.bytes_mapped / (1 << 20));
    {
        FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
        char thp[128] = "";
        if (f != NULL) {
            if (fgets(thp, sizeof thp, f) == NULL)
                thp[0] = '\0';
            fclose(f);
            thp[strcspn(thp, "\n")] = '\0';
        }
        printf("  transparent hugepages: %s\n", thp[0] ? thp : "(unknown)");
    }

    tm_ms = calloc(rounds, sizeof *tm_ms);
    raw_ms = calloc(rounds, sizeof *raw_ms);
    rawq_ms = calloc(rounds, sizeof *rawq_ms);
    ratio = calloc(rounds, sizeof *ratio);
    if (!tm_ms || !raw_ms || !rawq_ms || !ratio)
        die_errno(errno, "calloc");

    /* Round -1 is the warm-up. */
    for (int r = -1; r < (int)rounds; r++) {
        double t_tm = 0, t_raw = 0, t_rawq = 0;
        for (int step = 0; step < 3; step++) {
            /* rotate which side goes first */
            int which = (step + (r < 0 ? 0 : r)) % 3;
            uint64_t t0 = bench_now_ns();
            if (which == 0) {
                errno = 0;
                memset(&rep, 0, sizeof rep);
                last_rc = tm_arena_migrate(arena, &pl, &rep);
                last_errno = errno;
                t_tm = (double)(bench_now_ns() - t0) / 1e6;
            } else if (which == 1) {
                raw_mbind(raw, total, node);
                t_raw = (double)(bench_now_ns() - t0) / 1e6;
            } else {
                raw_mbind(raw, total, node);
                off_node = raw_query(pages, status, npages, node);
                t_rawq = (double)(bench_now_ns() - t0) / 1e6;
            }
        }
        if (r >= 0) {
            tm_ms[r] = t_tm;
            raw_ms[r] = t_raw;
            rawq_ms[r] = t_rawq;
            ratio[r] = t_tm / t_raw;
        }
    }

    printf("\nms per call, median of %u rounds [min-max]\n", rounds);
    printf("  tm_arena_migrate                       %9.3f [%.3f-%.3f]\n",
           bench_median(tm_ms, rounds), bench_min(tm_ms, rounds),
           bench_max(tm_ms, rounds));
    printf("  raw mbind(MPOL_MF_MOVE), one mapping   %9.3f [%.3f-%.3f]\n",
           bench_median(raw_ms, rounds), bench_min(raw_ms, rounds),
           bench_max(raw_ms, rounds));
    printf("  raw mbind + move_pages query (ref)     %9.3f [%.3f-%.3f]\n",
           bench_median(rawq_ms, rounds), bench_min(rawq_ms, rounds),
           bench_max(rawq_ms, rounds));
    printf("\nratio tm_arena_migrate / raw mbind: %.2f [%.2f-%.2f] "
           "(median of per-round ratios)\n",
           bench_median(ratio, rounds), bench_min(ratio, rounds),
           bench_max(ratio, rounds));
    for (unsigned r = 0; r < rounds; r++)
        ratio[r] = tm_ms[r] / rawq_ms[r];
    printf("ratio tm_arena_migrate / (raw mbind + query): %.2f [%.2f-%.2f]\n",
           bench_median(ratio, rounds), bench_min(ratio, rounds),
           bench_max(ratio, rounds));
    printf("  (raw query: %zu of %zu pages not on node %u)\n", off_node,
           npages, node);

    printf("\nlast tm_arena_migrate: returned %d%s%s\n", last_rc,
           last_rc ? ", errno " : "", last_rc ? strerror(last_errno) : "");
    print_report(&rep);

    for (size_t i = 0; i < nchunks; i++)
        tm_free(chunks[i]);
    if (tm_arena_destroy(arena) != 0)
        die_errno(errno, "tm_arena_destroy");
    if (munmap(raw, total) != 0)
        die_errno(errno, "munmap");
    free(chunks);
    free(pages);
    free(status);
    free(tm_ms);
    free(raw_ms);
    free(rawq_ms);
    free(ratio);
    return 0;
}
