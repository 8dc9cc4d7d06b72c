/*
 * refs_rearm.c -- what the refs sampler's clear costs the program: the
 * first access to a small page after a clear sets its accessed bit again.
 *
 * What the first access to a small page costs the program after a clear.
 * It grows with the set of pages touched, once that outgrows the TLB
 * (bench figures, this VM: 0.2 ns a page over 1 MiB, 16 ns over 4 MiB,
 * 311 ns over 16 MiB, 430 ns over 512 MiB), so it is measured over 16 MiB
 * of the sampler's own pages -- a pass warm, then just after a clear --
 * and only once the process references that much itself, on the profiling
 * thread: a program that small pays little either way, and a short-lived
 * one never maps the 16 MiB.  Until then, REFS_REARM_DEFAULT_NS, the
 * figure measured here.  The clear itself is the sampler's
 * (sampler_refs.c): the calibration is the passes around it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "refs_internal.h"

#define REFS_CALIBRATE_PAGES 4096

static double monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double touch_pass(volatile const char *p, size_t pages, size_t page)
{
    double t = monotonic_ns();
    unsigned sum = 0;
    for (size_t i = 0; i < pages; i++)
        sum += p[i * page];
    (void)sum;
    return monotonic_ns() - t;
}

/* The 16 MiB come from the slowest tier.  Left to the kernel they came
 * from the CPU's node -- the fast tier on most machines -- and, once
 * unmapped, sat a while in the kernel's per-CPU free lists, which the zone
 * counters do not show: in the guest benchmark the fast node looked 16 MiB
 * fuller to the policy's room check (doc/benchmarks.md, bigger-hot).  A
 * page walk costs the same wherever the page is. */
static void calibration_on_slowest_tier(void *p, size_t len)
{
    const tm_topology_t *t = topology_get();
    tm_placement_t slow;
    if (t == NULL || t->ntiers < 2 ||
        tm_topology_tier_placement(t, t->ntiers - 1, TM_MODE_PREFERRED,
                                   &slow) != 0)
        return;
    if (os_bind(p, len, &slow, 0) != 0)
        log_debug("refs sampler: binding the calibration pages to nodes "
                  "%#llx failed: errno %d", (unsigned long long)slow.nodes,
                  errno);
}

bool refs_calibration_begin(refs_calibration_t *c)
{
    c->t0 = thread_cpu_ns();
    c->len = REFS_CALIBRATE_PAGES * os_page_size();
    c->p = os_map_near(NULL, c->len);
    if (c->p == NULL)
        return false;
    (void)os_madvise(c->p, c->len, MADV_NOHUGEPAGE);
    calibration_on_slowest_tier(c->p, c->len);
    memset(c->p, 1, c->len);
    size_t page = os_page_size();
    double warm = touch_pass(c->p, REFS_CALIBRATE_PAGES, page);
    double w2 = touch_pass(c->p, REFS_CALIBRATE_PAGES, page);
    c->warm = w2 < warm ? w2 : warm;
    return true;
}

double refs_calibration_end(refs_calibration_t *c, uint64_t *spent_ns)
{
    double cold = touch_pass(c->p, REFS_CALIBRATE_PAGES, os_page_size());
    (void)os_unmap(c->p, c->len);
    c->p = NULL;
    *spent_ns = thread_cpu_ns() - c->t0;
    double per_page = (cold - c->warm) / REFS_CALIBRATE_PAGES;
    return per_page < 20.0 ? 20.0 : per_page > 5000.0 ? 5000.0 : per_page;
}
