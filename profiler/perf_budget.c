/*
 * perf_budget.c -- which CPUs get a perf ring, and how big the rings of
 * one process may be.
 *
 * Size: a ring should hold a whole drain interval of samples at the rate
 * expected for its CPU, so that even a late drain loses nothing; the
 * profiling thread is woken at a quarter of that (the watermark) and
 * normally drains long before.
 *
 * Locked memory, as perf_mmap() (kernel/events/core.c) accounts it: each
 * ring costs its data pages + 1 header page.  They are charged first to
 * the USER's locked_vm, which may reach perf_event_mlock_kb (in pages) x
 * num_online_cpus() across all that user's processes on the host -- all
 * the MPI ranks of a job share it -- and the rest to the mapping
 * PROCESS's pinned_vm, refused (EPERM) past RLIMIT_MEMLOCK unless the
 * process has CAP_IPC_LOCK or perf_event_paranoid is -1.  pinned_vm is
 * also where RDMA registrations (the MPI library's) are charged.  Every
 * rank plans its rings alike from the same facts, so the plan splits the
 * user's allowance between the local ranks and spills at most half of
 * each rank's RLIMIT_MEMLOCK into pinned_vm, whatever order they map in
 * (perf_budget_pages).
 *
 * The planning is pure (facts in, plan out) so it can be tested without a
 * PMU; the facts are read from /proc, /sys and system calls, each file
 * opened read-only, read into a fixed buffer, and parsed as hostile.  No
 * allocation: it runs on the profiling thread, in the sampler's open.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "perf_internal.h"

/* Rings sized here: at least 8 data pages (32 KiB, hundreds of samples,
 * so a quarter-ring wakeup is not a wakeup every few samples), at most 512
 * (2 MiB a CPU: a 100 ms interval at the kernel's default cap of 100k
 * samples/s needs 100; a need beyond 512 says drain more often, not pin
 * more memory on every CPU of every rank). */
#define PERF_RING_MIN_PAGES 8
#define PERF_RING_MAX_PAGES 512
/* TIERMEM_PROFILE_RING_PAGES's documented upper bound. */
#define PERF_RING_MAX_WANT 65536
/* The kernel's default kernel.perf_event_max_sample_rate. */
#define PERF_DEFAULT_MAX_SAMPLE_RATE 100000

#define PERF_SYSCTL_DIR "/proc/sys/kernel/"
#define PERF_ONLINE_PATH "/sys/devices/system/cpu/online"

_Static_assert(PERF_AFFINITY_MAX_CPUS % CPU_SETSIZE == 0,
               "the affinity mask is a whole number of cpu_set_t");

/* ---------------------------------------------------------------- files */

/* The first line of a sysctl file as a number in [min, max]; dflt when it
 * cannot be read or is anything else. */
static int64_t perf_read_sysctl(const char *name, int64_t min, int64_t max,
                                int64_t dflt)
{
    char path[128], buf[64];
    snprintf(path, sizeof path, PERF_SYSCTL_DIR "%s", name);
    ssize_t n = read_small_file(path, buf, sizeof buf);
    text_lines_t it;
    text_span_t line;
    int64_t v;
    text_lines_init(&it, buf, n > 0 ? (size_t)n : 0);
    if (n > 0 && text_next_line(&it, &line) &&
        text_dec_i64(span_trim(line), min, max, &v))
        return v;
    log_debug("profiler: %s unreadable or not a number in range;"
              " assuming %lld", path, (long long)dflt);
    return dflt;
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
    if (read_small_file(PERF_ONLINE_PATH, buf, sizeof buf) >= 0) {
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

/* ---------------------------------------------------------------- facts */

/* Is this the initial user namespace?  Its uid_map maps every id to
 * itself in one line; a container's own namespace maps a part.
 * Unreadable: no (the stricter answer). */
static bool perf_in_initial_userns(void)
{
    char buf[256];
    ssize_t n = read_small_file("/proc/self/uid_map", buf, sizeof buf);
    text_lines_t it;
    text_span_t line, f[3];
    uint64_t inside, outside, count;
    text_lines_init(&it, buf, n > 0 ? (size_t)n : 0);
    if (n <= 0 || !text_next_line(&it, &line) ||
        text_fields(line, f, 3) != 3 ||
        !text_dec_u64(f[0], UINT32_MAX, &inside) ||
        !text_dec_u64(f[1], UINT32_MAX, &outside) ||
        !text_dec_u64(f[2], UINT32_MAX, &count))
        return false;
    return inside == 0 && outside == 0 && count == UINT32_MAX &&
           !text_next_line(&it, &line);
}

/* CAP_IPC_LOCK as perf_mmap() tests it: capable() asks the initial user
 * namespace, so the capability a rootless container grants its root does
 * not lift the limit. */
static bool perf_has_ipc_lock(void)
{
    return perf_cap_effective(CAP_IPC_LOCK) && perf_in_initial_userns();
}

/* RLIMIT_MEMLOCK's soft limit in bytes, UINT64_MAX for unlimited; 0 when
 * it cannot be read (the stricter answer). */
static uint64_t perf_memlock_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
        log_debug("profiler: getrlimit(RLIMIT_MEMLOCK) failed: errno %d",
                  errno);
        return 0;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX
                                        : (uint64_t)rl.rlim_cur;
}

void perf_lock_facts_read(perf_lock_facts_t *f)
{
    size_t page = os_page_size();
    size_t online = perf_online_cpus(NULL, PERF_CPU_ID_LIMIT);
    f->page_size = page;
    /* the kernel's default is 512 KiB + one page */
    f->mlock_kb = (uint64_t)perf_read_sysctl("perf_event_mlock_kb", 0,
                                             INT_MAX, 512 + page / 1024);
    f->memlock_limit = perf_memlock_limit();
    f->ipc_lock = perf_has_ipc_lock();
    f->paranoid = perf_paranoid_read(PERF_PARANOID_PATH);
    f->online_cpus = online > 0 ? online : 1;
    f->max_sample_rate = (uint64_t)perf_read_sysctl(
        "perf_event_max_sample_rate", 1, INT_MAX,
        PERF_DEFAULT_MAX_SAMPLE_RATE);
    log_debug("profiler: perf lock facts: perf_event_mlock_kb %llu,"
              " RLIMIT_MEMLOCK %llu, CAP_IPC_LOCK %d, paranoid %d,"
              " %zu CPUs online, max %llu samples/s, %zu-byte pages",
              (unsigned long long)f->mlock_kb,
              (unsigned long long)f->memlock_limit, (int)f->ipc_lock,
              f->paranoid, f->online_cpus,
              (unsigned long long)f->max_sample_rate, f->page_size);
}

/* ---------------------------------------------------------------- plan */

static uint64_t sat_mul_u64(uint64_t a, uint64_t b)
{
    return a != 0 && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

/* The least power of two >= x (x <= PERF_RING_MAX_WANT here). */
static size_t perf_pow2_ceil(size_t x)
{
    size_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

/* The greatest power of two <= x, for x >= 1. */
static uint64_t perf_pow2_floor(uint64_t x)
{
    uint64_t p = 1;
    while (p <= x / 2)
        p <<= 1;
    return p;
}

/* Samples a second one ring should expect: the event rate over the
 * period, but no more than the kernel lets an event take (beyond
 * perf_event_max_sample_rate it throttles).  An unknown rate (period 0,
 * a rate that is not a finite number >= 0) is taken as that cap: the
 * worst the kernel allows. */
static double perf_expected_rate(const perf_ring_plan_in_t *in,
                                 const perf_lock_facts_t *f)
{
    double cap = f->max_sample_rate > 0 ? (double)f->max_sample_rate
                                        : PERF_DEFAULT_MAX_SAMPLE_RATE;
    if (in->period == 0 || !isfinite(in->events_per_s) ||
        in->events_per_s < 0)
        return cap;
    double r = in->events_per_s / (double)in->period;
    return r < cap ? r : cap;
}

/* Data pages for one interval's samples at `rate`, as a power of two in
 * [PERF_RING_MIN_PAGES, PERF_RING_MAX_PAGES]. */
static size_t perf_interval_pages(const perf_ring_plan_in_t *in,
                                  size_t page, double rate)
{
    double bytes = rate * ((double)in->interval_ns / 1e9) *
                   (double)in->record_bytes;
    double pages = ceil(bytes / (double)page);
    if (!(pages < PERF_RING_MAX_PAGES)) /* NaN included */
        return PERF_RING_MAX_PAGES;
    size_t p = perf_pow2_ceil((size_t)pages);
    return p < PERF_RING_MIN_PAGES ? PERF_RING_MIN_PAGES : p;
}

/* Data pages a ring should have: what was asked for (as the power of two
 * the kernel requires), else one interval's worth. */
static size_t perf_ring_need(const perf_ring_plan_in_t *in, size_t page,
                             double rate)
{
    if (in->want_pages == 0)
        return perf_interval_pages(in, page, rate);
    return perf_pow2_ceil(in->want_pages < PERF_RING_MAX_WANT
                              ? in->want_pages : PERF_RING_MAX_WANT);
}

/* Does perf_mmap() check nothing for this process?  perf_is_paranoid()
 * is paranoid > -1; an unlimited RLIMIT_MEMLOCK never refuses. */
static bool perf_lock_unlimited(const perf_lock_facts_t *f)
{
    bool open_paranoid = f->paranoid != INT_MIN && f->paranoid <= -1;
    return f->ipc_lock || open_paranoid || f->memlock_limit == UINT64_MAX;
}

/* perf_event_mlock_kb in pages (the kernel shifts, we divide: the same
 * for pages of 1 KiB and up) x online CPUs. */
static uint64_t perf_user_allowance(const perf_lock_facts_t *f)
{
    return sat_mul_u64(f->mlock_kb / (f->page_size / 1024), f->online_cpus);
}

/*
 * Pages one process may lock for its rings, headers included; UINT64_MAX
 * when the kernel checks nothing (the plan still pins no more than it
 * needs).
 *
 * With A the user's allowance, H half this process's RLIMIT_MEMLOCK in
 * pages, and R local ranks each locking at most B: the kernel fills the
 * user's locked_vm first, in whatever order the ranks map, and charges
 * what is beyond A to the pinned_vm of the rank that maps it.  The last
 * rank to map may find A full, so a rank spills up to min(B, R x B - A).
 * That stays within H -- leaving the other half of RLIMIT_MEMLOCK to the
 * MPI library's RDMA registrations, in every order -- when R x B <= A + H
 * (all ranks together spill at most H) or when B <= H (a rank's whole
 * rings fit its half): so B = max((A + H) / R, H).  (A / R + H would let
 * the last rank spill up to min(B, R x H): 5 ranks of 64 rings on 64
 * CPUs at 8 MiB would spill 2112 pages into a 1024-page half, EPERM once
 * the MPI library has pinned its own.)
 *
 * Other processes of the same user (a second job, perf record) take from
 * A too; the kernel does not show how much, so none is assumed.
 */
static uint64_t perf_budget_pages(const perf_lock_facts_t *f,
                                  unsigned ranks)
{
    if (perf_lock_unlimited(f))
        return UINT64_MAX;
    uint64_t half = f->memlock_limit / f->page_size / 2;
    uint64_t shared = sat_add_u64(perf_user_allowance(f), half) /
                      (ranks > 0 ? ranks : 1);
    return shared > half ? shared : half;
}

/* The largest power of two p <= need with nrings x (p + 1) <= budget; 0
 * when not even p = 1 fits.  need is a power of two. */
static size_t perf_fit_pages(size_t need, size_t nrings, uint64_t budget)
{
    uint64_t per_ring = budget / nrings; /* header included */
    if (per_ring < 2)
        return 0;
    uint64_t p = perf_pow2_floor(per_ring - 1);
    return p < need ? (size_t)p : need;
}

/* A quarter of the ring: the profiling thread wakes and drains with three
 * quarters still free for what arrives meanwhile.  attr.wakeup_watermark
 * is 32 bits. */
static size_t perf_watermark(size_t ring_pages, size_t page)
{
    uint64_t bytes = sat_mul_u64(ring_pages, page) / 4;
    return bytes < UINT32_MAX ? (size_t)bytes : UINT32_MAX;
}

static bool perf_page_size_ok(size_t page)
{
    return page >= 1024 && (page & (page - 1)) == 0;
}

/* ulimit -l as the user sets it: KiB, or "unlimited". */
static const char *perf_memlock_shown(const perf_lock_facts_t *f,
                                      char *buf, size_t size)
{
    if (f->memlock_limit == UINT64_MAX)
        snprintf(buf, size, "unlimited");
    else
        snprintf(buf, size, "%llu KiB",
                 (unsigned long long)(f->memlock_limit / 1024));
    return buf;
}

/* out->why from fmt: cut to fit when the figures are huge (a vsnprintf,
 * which the compiler does not second-guess, unlike snprintf's lengths). */
__attribute__((format(printf, 2, 3))) static void
perf_set_why(perf_ring_plan_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof out->why, fmt, ap);
    va_end(ap);
}

/* Why the rings are smaller than needed (need: data pages a ring), with
 * the figures that decided it and what to change. */
static void perf_plan_why(const perf_ring_plan_in_t *in,
                          const perf_lock_facts_t *f, size_t need,
                          perf_ring_plan_t *out)
{
    char ulimit[32], what[96];
    unsigned ranks = in->local_ranks > 0 ? in->local_ranks : 1;
    if (out->ring_pages == 0)
        snprintf(what, sizeof what, "no room for 1-page perf rings");
    else
        snprintf(what, sizeof what, "%zu-page perf rings (%s) cut to %zu",
                 need, in->want_pages ? "TIERMEM_PROFILE_RING_PAGES"
                                      : "one interval",
                 out->ring_pages);
    perf_set_why(out, "%s: %zu rings x %u ranks > perf_event_mlock_kb %llu"
                 " x %zu CPUs + ulimit -l %s / 2; raise ulimit -l or bind"
                 " to fewer CPUs", what, in->nrings, ranks,
                 (unsigned long long)f->mlock_kb, f->online_cpus,
                 perf_memlock_shown(f, ulimit, sizeof ulimit));
}

int perf_ring_plan(const perf_ring_plan_in_t *in, const perf_lock_facts_t *f,
                   perf_ring_plan_t *out)
{
    if (in == NULL || f == NULL || out == NULL || in->nrings == 0 ||
        !perf_page_size_ok(f->page_size)) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    double rate = perf_expected_rate(in, f);
    size_t need = perf_ring_need(in, f->page_size, rate);
    out->nrings = in->nrings;
    out->samples_per_s = rate;
    out->need_pages = sat_mul_u64(in->nrings, need + 1);
    out->budget_pages = perf_budget_pages(f, in->local_ranks);
    out->ring_pages = perf_fit_pages(need, in->nrings, out->budget_pages);
    out->watermark_bytes = perf_watermark(out->ring_pages, f->page_size);
    if (out->ring_pages < need)
        perf_plan_why(in, f, need, out);
    return 0;
}

const char *perf_ring_plan_format(const perf_ring_plan_t *p, char *buf,
                                  size_t size)
{
    char budget[32];
    if (buf == NULL || size == 0)
        return buf;
    if (p->budget_pages == UINT64_MAX)
        snprintf(budget, sizeof budget, "no kernel limit");
    else
        snprintf(budget, sizeof budget, "%llu",
                 (unsigned long long)p->budget_pages);
    snprintf(buf, size, "perf rings: %zu x %zu data pages, wakeup at %zu"
             " bytes, ~%.0f samples/s each; %llu pages needed, budget %s%s%s",
             p->nrings, p->ring_pages, p->watermark_bytes, p->samples_per_s,
             (unsigned long long)p->need_pages, budget,
             p->why[0] != '\0' ? "; " : "", p->why);
    return buf;
}
