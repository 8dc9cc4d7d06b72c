/*
 * bench_numa_vs_kernel.c -- a guest benchmark (not a test): tiermem's online
 * policy against the kernel's NUMA balancing, on the same workloads, inside
 * one boot of the QEMU rig (bench/bench_guest_numa.sh builds and runs it
 * through tests/guest/run-rig.sh, TM_GUEST_EXTRA_SRC).
 *
 * Like tests/guest/dyn_*.c it is an ordinary dynamic program: it does not
 * link tiermem.  The parent runs one child per (workload, contender),
 * sequentially:
 *
 *   first-touch   every array first-touched on the slowest tier's node
 *                 (set_mempolicy MPOL_BIND, touch, MPOL_DEFAULT); nothing
 *                 moves it afterwards;
 *   kernel-nb1    the same start, /proc/sys/kernel/numa_balancing = 1 during
 *                 the child (0 again after);
 *   kernel-nb2    numa_balancing = 2 (memory tiering), only where the kernel
 *                 put the CPU node and the slowest node in different
 *                 memory_tiers; otherwise an "n/a (why)" row;
 *   tiermem-<s>   the child re-executed under LD_PRELOAD=$TM_PRELOAD_LIB with
 *                 the online policy and sampler <s> (TM_BENCH_SAMPLERS,
 *                 "refs uffd"); arrays start on the slowest tier through
 *                 TIERMEM_DEFAULT_TIER.  A sampler the library does not know
 *                 (a warning about the sampler in a short probe run) gives
 *                 "pending" rows instead of runs with a fall-back sampler.
 *
 * Workloads (each array from its own noinline malloc site: its own arena):
 *   write-hot   hot 16 MiB written pass after pass, cold 16 MiB touched once;
 *   read-hot    hot 16 MiB written once (its first touch), then only read;
 *               cold 16 MiB;
 *   phase       A hot for the first half, then B (A cold), 16 MiB each;
 *   bigger-hot  h1..h4 12 MiB each (h1 every pass, h2 every 250 ms, h3 every
 *               500 ms, h4 every 1 s) and a cold 16 MiB: 48 MiB hot for a
 *               fast tier of 32 MiB, so the hot set measured is h1+h2 (the
 *               hottest bytes that fit); for every contender the fast
 *               tier's nodes and the CPU node are filled by a balloon
 *               (mbind + mlock in the parent) down to 32 MiB free.
 * Once a second the child asks move_pages where every page of every array
 * is.  Lines: "BENCHSERIES ..." per second, "BENCH ..." per run (the
 * parent adds the guest-wide /proc/vmstat deltas), "BENCHTABLE ..." last.
 * Knobs (environment): TM_BENCH_SECONDS (15), TM_BENCH_WORKLOADS,
 * TM_BENCH_CONTENDERS, TM_BENCH_SAMPLERS.
 */
#include "dyn.h"

#include <sys/prctl.h>

#define MIB DYN_MIB
#define WORKDIR "/tmp/bench_nvk"
#define MAX_ARR 5
#define MAX_PAGES (80 * MIB / TG_PAGE)
#define MAX_RUNS 32
#define CAP_SMALL "24M" /* tiermem's fast tier, workloads 1-3: hot fits */
#define CAP_BIG "32M"   /* bigger-hot: also the balloon's free target */
#define BALLOON_FREE (32 * MIB)
#define BUDGET "0"
#define INTERVAL "100ms"

enum role { HOT, COLD, WARM };
typedef struct arr {
    const char *name;
    void *(*alloc)(void);
    size_t size;
    int role;
    volatile unsigned char *base; /* first whole page of the block */
    size_t npages, first;         /* its pages in the sample buffers */
    double period, last;          /* bigger-hot: seconds between passes */
} arr_t;

DYN_SITE_FN(alloc_hot, 16 * MIB, 'h')
DYN_SITE_FN(alloc_cold, 16 * MIB, 'c')
DYN_SITE_FN(alloc_a, 16 * MIB, 'a')
DYN_SITE_FN(alloc_b, 16 * MIB, 'b')
DYN_SITE_FN(alloc_h1, 12 * MIB, '1')
DYN_SITE_FN(alloc_h2, 12 * MIB, '2')
DYN_SITE_FN(alloc_h3, 12 * MIB, '3')
DYN_SITE_FN(alloc_h4, 12 * MIB, '4')
DYN_SITE_FN(alloc_cold4, 16 * MIB, 'C')

static const char *const all_workloads = "write-hot read-hot phase bigger-hot";

#define ARR(n, fn, mib, r, per)                                               \
    (arr_t) { .name = n, .alloc = fn, .size = (mib) * MIB, .role = r,         \
              .period = per }

static int workload_arrays(const char *w, arr_t *a)
{
    if (!strcmp(w, "write-hot") || !strcmp(w, "read-hot")) {
        a[0] = ARR("hot", alloc_hot, 16, HOT, 0);
        a[1] = ARR("cold", alloc_cold, 16, COLD, 0);
        return 2;
    }
    if (!strcmp(w, "phase")) {
        a[0] = ARR("A", alloc_a, 16, HOT, 0);
        a[1] = ARR("B", alloc_b, 16, COLD, 0);
        return 2;
    }
    if (!strcmp(w, "bigger-hot")) {
        a[0] = ARR("h1", alloc_h1, 12, HOT, 0);
        a[1] = ARR("h2", alloc_h2, 12, HOT, 0.25);
        a[2] = ARR("h3", alloc_h3, 12, WARM, 0.5);
        a[3] = ARR("h4", alloc_h4, 12, WARM, 1.0);
        a[4] = ARR("cold", alloc_cold4, 16, COLD, 0);
        return 5;
    }
    return -1;
}

/* ------------------------------------------------------------ the child */

static void *pages[MAX_PAGES];
static int status[MAX_PAGES];

typedef struct obs {
    size_t n[3], fast[3], up[3]; /* per role: pages, on fast tier, off slowest */
    size_t node[TG_MAX_NODES];   /* hot pages per node */
} obs_t;

static volatile unsigned sink;

static void sweep(arr_t *a, bool write, unsigned char v)
{
    if (write)
        for (size_t i = 0; i < a->npages; i++)
            a->base[i * TG_PAGE] = v;
    else
        for (size_t i = 0; i < a->npages; i++)
            sink += a->base[i * TG_PAGE];
}

/* Each page's node at the last observation (-1: not seen yet), and the
 * pages seen arriving on the fastest tier since the first: moves into it,
 * as far as once-a-second observations see them (a page that goes and
 * comes back within a second is missed); to_mid, the same for the nodes
 * of the tiers between the fastest and the slowest (topology 3's node 0,
 * where the kernel's mode 1 promotes). */
static signed char last_node[MAX_PAGES];
static size_t to_fast, to_mid;

static void count_arrivals(size_t total, uint64_t fast, uint64_t slow,
                           bool first)
{
    for (size_t i = 0; i < total; i++) {
        int s = status[i];
        signed char now = s >= 0 && s < TG_MAX_NODES ? (signed char)s : -1;
        if (!first && now >= 0 && now != last_node[i]) {
            if (fast >> now & 1)
                to_fast++;
            else if (!(slow >> now & 1))
                to_mid++;
        }
        last_node[i] = now;
    }
}

static bool observe(arr_t *a, int na, uint64_t fast, uint64_t slow,
                    obs_t *o)
{
    static bool seen;
    size_t total = a[na - 1].first + a[na - 1].npages;
    memset(o, 0, sizeof *o);
    if (tg_query_pages(pages, status, total, 20) != 0)
        return false;
    count_arrivals(total, fast, slow, !seen);
    seen = true;
    for (int k = 0; k < na; k++)
        for (size_t i = a[k].first; i < a[k].first + a[k].npages; i++) {
            int s = status[i], r = a[k].role;
            o->n[r]++;
            if (s < 0 || s >= TG_MAX_NODES)
                continue;
            o->fast[r] += fast >> s & 1;
            o->up[r] += !(slow >> s & 1);
            if (r == HOT)
                o->node[s]++;
        }
    return true;
}

static double share(size_t a, size_t b) { return b ? (double)a / b : 0; }

/* What the fastest tier's nodes hold, for reading a run's log: the zones'
 * free pages and watermarks as /proc/zoneinfo prints them (low and high
 * include the boost), and this process's own pages there (numa_maps), in
 * MiB.  Any figure not read stays -1. */
typedef struct fast_mem {
    double free, low, high, boost, proc;
} fast_mem_t;

static void fast_memory(uint64_t fast, fast_mem_t *m)
{
    m->free = m->low = m->high = m->boost = m->proc = -1;
    char line[512];
    unsigned node = 0;
    bool ours = false;
    long long v, sum[4] = {0, 0, 0, 0};
    FILE *f = fopen("/proc/zoneinfo", "re");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            char name[32];
            if (sscanf(line, "Node %u, zone %31s", &node, name) == 2)
                ours = node < 64 && (fast >> node & 1);
            else if (ours && sscanf(line, " pages free %lld", &v) == 1)
                sum[0] += v;
            else if (ours && sscanf(line, " low %lld", &v) == 1)
                sum[1] += v;
            else if (ours && sscanf(line, " high %lld", &v) == 1)
                sum[2] += v;
            else if (ours && sscanf(line, " boost %lld", &v) == 1)
                sum[3] += v;
        }
        fclose(f);
        m->free = (double)sum[0] * TG_PAGE / MIB;
        m->low = (double)sum[1] * TG_PAGE / MIB;
        m->high = (double)sum[2] * TG_PAGE / MIB;
        m->boost = (double)sum[3] * TG_PAGE / MIB;
    }
    f = fopen("/proc/self/numa_maps", "re");
    if (!f)
        return;
    long long pages = 0;
    while (fgets(line, sizeof line, f))
        for (char *p = strstr(line, " N"); p; p = strstr(p + 2, " N")) {
            unsigned n;
            if (sscanf(p, " N%u=%lld", &n, &v) == 2 && n < 64 &&
                (fast >> n & 1))
                pages += v;
        }
    fclose(f);
    m->proc = (double)pages * TG_PAGE / MIB;
}

/* TM_BENCH_DUMP_NUMA=N: the mappings holding N pages or more, node 0's
 * meminfo and the zone table, once, after the first touch (for reading
 * why a node is full). */
static void dump_numa_maps(const char *id)
{
    char line[1024];
    FILE *f = fopen("/proc/self/numa_maps", "re");
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, " anon=");
        const char *q = strstr(line, " mapped=");
        long long v = 0;
        long long min = tg_env_long("TM_BENCH_DUMP_NUMA", 0);
        if ((p && sscanf(p, " anon=%lld", &v) == 1 && v >= min) ||
            (q && sscanf(q, " mapped=%lld", &v) == 1 && v >= min))
            printf("NUMAMAP %s %s", id, line);
    }
    if (f)
        fclose(f);
    f = fopen("/sys/devices/system/node/node0/meminfo", "re");
    while (f && fgets(line, sizeof line, f))
        printf("NODEMEM %s %s", id, line);
    if (f)
        fclose(f);
    f = fopen("/proc/zoneinfo", "re");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "Node ") || strstr(line, "pages free") ||
            strstr(line, "count:") || strstr(line, "cpu:") ||
            strstr(line, "protection") ||
            (strstr(line, "       ") && !strchr(line, ':') &&
             (strstr(line, " min ") || strstr(line, " low ") ||
              strstr(line, " high ") || strstr(line, " boost "))))
            printf("ZONEINFO %s %s", id, line);
    if (f)
        fclose(f);
}

static void print_series(const char *id, double t, const obs_t *o,
                         uint64_t fast)
{
    fast_mem_t m;
    fast_memory(fast, &m);
    char nodes[256] = "";
    int off = 0;
    for (unsigned n = 0; n < TG_MAX_NODES && off < (int)sizeof nodes - 24;
         n++)
        if (o->node[n])
            off += snprintf(nodes + off, sizeof nodes - (size_t)off, "%s%u:%zu",
                            off ? "," : "", n, o->node[n]);
    printf("BENCHSERIES %s t=%.0f hot_fast=%.3f hot_up=%.3f cold_fast=%zu "
           "warm_fast=%zu hot_nodes=%s fast_free_mib=%.1f fast_low_mib=%.1f "
           "fast_high_mib=%.1f fast_boost_mib=%.1f proc_fast_mib=%.1f\n", id,
           t, share(o->fast[HOT], o->n[HOT]), share(o->up[HOT], o->n[HOT]),
           o->fast[COLD], o->fast[WARM], nodes[0] ? nodes : "-", m.free,
           m.low, m.high, m.boost, m.proc);
}

static int child_main(const char *w, const char *c, const char *id,
                      const char *resfile)
{
    static char outbuf[8192]; /* no allocation of our own gets heat */
    setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf);
    arr_t a[MAX_ARR];
    int na = workload_arrays(w, a);
    dyn_tiers_t t;
    dyn_expected_tiers(tg_node_count(), &t);
    uint64_t fast = t.mask[0], slow = t.mask[t.n - 1];
    double secs = (double)tg_env_long("TM_BENCH_SECONDS", 15);
    bool tm = strncmp(c, "tiermem-", 8) == 0, phase = !strcmp(w, "phase");
    if (na < 0 || prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
        printf("child %s: bad workload or PR_SET_THP_DISABLE: %s\n", id,
               strerror(errno));
        return 2;
    }
    unsigned long slowmask = (unsigned long)slow;
    if (!tm && set_mempolicy(MPOL_BIND, &slowmask, TG_MAX_NODES) != 0) {
        printf("child %s: set_mempolicy(BIND): %s\n", id, strerror(errno));
        return 2;
    }
    size_t np = 0;
    for (int k = 0; k < na; k++) {
        unsigned char *p = a[k].alloc();
        if (!p) {
            printf("child %s: malloc %s failed\n", id, a[k].name);
            return 2;
        }
        uintptr_t b = ((uintptr_t)p + TG_PAGE - 1) & ~(TG_PAGE - 1);
        a[k].base = (volatile unsigned char *)b;
        a[k].npages = a[k].size / TG_PAGE - 1;
        a[k].first = np;
        for (size_t i = 0; i < a[k].npages; i++)
            pages[np++] = (void *)(b + i * TG_PAGE);
        sweep(&a[k], true, 1); /* the first touch */
    }
    if (!tm && set_mempolicy(MPOL_DEFAULT, NULL, 0) != 0) {
        printf("child %s: set_mempolicy(DEFAULT): %s\n", id, strerror(errno));
        return 2;
    }
    obs_t o;
    if (!observe(a, na, fast, slow, &o)) {
        printf("child %s: move_pages: %s\n", id, strerror(errno));
        return 2;
    }
    print_series(id, 0, &o, fast);
    if (tg_env_long("TM_BENCH_DUMP_NUMA", 0))
        dump_numa_maps(id);
    double t95 = share(o.fast[HOT], o.n[HOT]) >= 0.95 ? 0 : -1;
    double start_fast = share(o.fast[HOT] + o.fast[COLD] + o.fast[WARM],
                              o.n[HOT] + o.n[COLD] + o.n[WARM]);
    double t0 = dyn_now_s(), next = 1, t95b = -1, half = secs / 2;
    double last_obs = 0, max_gap = 0; /* a stalled pass shows as a gap */
    size_t cold_max = 0, sweeps = 0;
    bool swapped = false;
    for (;;) {
        double el = dyn_now_s() - t0;
        if (phase && !swapped && el >= half) {
            a[0].role = COLD; /* A cools, B is the hot set now */
            a[1].role = HOT;
            swapped = true;
        }
        if (el >= next || el >= secs) {
            if (!observe(a, na, fast, slow, &o)) {
                printf("child %s: move_pages: %s\n", id, strerror(errno));
                return 2;
            }
            print_series(id, el, &o, fast);
            if (next == 1 && tg_env_long("TM_BENCH_DUMP_NUMA", 0))
                dump_numa_maps(id);
            if (el - last_obs > max_gap)
                max_gap = el - last_obs;
            last_obs = el;
            double s = share(o.fast[HOT], o.n[HOT]);
            if (!swapped && t95 < 0 && s >= 0.95)
                t95 = el;
            if (swapped && t95b < 0 && s >= 0.95)
                t95b = el - half;
            /* phase: A is expected fast right after the switch, so its
             * maximum is taken over the first half only */
            if (!swapped && o.fast[COLD] > cold_max)
                cold_max = o.fast[COLD];
            next = (double)(long)el + 1;
            if (el >= secs)
                break;
        }
        for (int k = 0; k < na; k++) {
            if (a[k].role == COLD)
                continue;
            if (a[k].period > 0 && el - a[k].last < a[k].period)
                continue;
            a[k].last = el;
            sweep(&a[k], strcmp(w, "read-hot") != 0, (unsigned char)sweeps);
        }
        sweeps++;
    }
    /* o is the last observation, at the end of the run */
    size_t warm_fast = o.fast[WARM];
    FILE *f = fopen(resfile, "we");
    if (!f) {
        printf("child %s: %s: %s\n", id, resfile, strerror(errno));
        return 2;
    }
    fprintf(f, "hot_mib=%.1f start_fast=%.3f hot_fast=%.3f hot_up=%.3f "
               "t95=%.0f t95b=%.0f cold_fast_end=%zu cold_fast_max=%zu "
               "warm_fast_end=%zu best_prec=%.3f sweeps_per_s=%.1f "
               "max_gap_s=%.1f to_fast=%zu to_mid=%zu\n",
            (double)(o.n[HOT] * TG_PAGE) / MIB, start_fast, share(o.fast[HOT], o.n[HOT]),
            share(o.up[HOT], o.n[HOT]), t95, t95b, o.fast[COLD], cold_max,
            warm_fast, share(o.fast[HOT], o.fast[HOT] + warm_fast),
            (double)sweeps / secs, max_gap, to_fast, to_mid);
    return fclose(f) == 0 ? 0 : 2;
}

/* A short run under the library: does it take this sampler? */
static int probe_main(void)
{
    void *volatile p = alloc_cold();
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    free(p);
    return 0;
}

#include "bench_numa_vs_kernel_parent.h"

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "child"))
        return child_main(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 2 && !strcmp(argv[1], "probe"))
        return probe_main();
    return parent_main();
}
