/*
 * sampler_perf.c -- the perf_event samplers: pebs, ibs and faults: their
 * events opened per thread and CPU, their rings read, closed, forked.
 * (Which event each kind samples, and its encoding: perf_event.c.)
 *
 * Events are opened with inherit (+ inherit_thread): a thread created
 * later inherits its creator's event, and the kernel writes an inherited
 * event's samples into the ring of the event it inherited from, so the
 * rings we own cover every thread, old and new.  A forked child process
 * inherits nothing (inherit_thread), and so does not feed our rings.
 *
 * The kernel refuses to mmap an inherited event that follows a task on
 * every CPU (cpu == -1): so, as perf record does, we open one event per
 * (thread, online CPU), mmap one ring per CPU, and point every other
 * event of that CPU at it with PERF_EVENT_IOC_SET_OUTPUT (allowed across
 * tasks for per-CPU rings).  Rings: one per CPU; fds: threads x CPUs.
 *
 * Availability is decided by perf_event_open itself, never by libpfm4:
 * libpfm4 recognises a PMU from CPUID even on machines (VMs, containers)
 * where perf_event_open of any hardware event fails with ENOENT.
 *
 * Descriptors: every event is taken with fd_own.  collect reads the
 * rings, which are mappings and need no descriptor, but it checks each
 * ring's event once per interval so that a program that closed ours
 * (closefrom) stops profiling at once (prof_fd_lost); close disables and
 * closes only the events still ours.
 *
 * Runs on the profiling thread: no malloc, no stdio.  State and the tid
 * lists live in meta_alloc memory; /proc/self/task is read with
 * getdents64.  (libpfm4's encoder may allocate, once, in open, before any
 * sample is taken; the faults sampler does not use it.)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "perf_internal.h"

/* One sample record: header, IP, pid/tid, time, address (perf_attr_common). */
#define PERF_RECORD_BYTES 40

/* ---------------------------------------------------------------- ops */

/* Unmap the rings and close the events still ours; the rings' table
 * stays, for the next set of events. */
static void perf_release_events(perf_state_t *st)
{
    for (size_t i = 0; i < st->nrings; i++) {
        perf_cpu_ring_t *r = &st->rings[i];
        if (r->fd >= 0 && munmap(r->ring.base, r->map_len) != 0)
            log_error("profiler: munmap of the cpu %d perf ring (fd %d)"
                         " failed: errno %d", r->cpu, r->fd, errno);
        r->fd = -1;
    }
    for (size_t i = 0; i < st->nfds; i++)
        (void)fd_release(&st->fds[i]); /* only those still ours */
    if (st->fds != NULL)
        meta_free(st->fds, st->fds_cap * sizeof *st->fds);
    st->fds = NULL;
    st->nfds = st->fds_cap = st->nthreads = 0;
    st->filter_kernel = false;
}

static void perf_release(perf_state_t *st)
{
    perf_wake_close(&st->wake);
    perf_release_events(st);
    if (st->rings != NULL)
        meta_free(st->rings, st->nrings * sizeof *st->rings);
    meta_free(st, sizeof *st);
}

/* The wake-up set over the rings mapped; without it, interval ends only. */
static void perf_wake_start(perf_state_t *st)
{
    int fds[PERF_AFFINITY_MAX_CPUS];
    size_t n = 0;
    for (size_t i = 0; i < st->nrings && n < PERF_AFFINITY_MAX_CPUS; i++)
        if (st->rings[i].fd >= 0)
            fds[n++] = st->rings[i].fd;
    (void)perf_wake_open(&st->wake, fds, n);
}

/* Size the rings for this set of events: one interval of samples at the
 * events' highest rate, within this process's share of the host's locked
 * memory (perf_budget.c).  0, or -1 with errno EPERM when not one page per
 * ring fits (st->plan_why says why). */
static int perf_size_rings(perf_state_t *st, const prof_options_t *o,
                           const perf_lock_facts_t *f)
{
    double rate = 0.0; /* samples/s on one CPU, all events together */
    for (size_t k = 0; k < st->ev.n; k++)
        rate += st->ev.worst_rate[k] > 0.0
                    ? st->ev.worst_rate[k] /
                          (double)st->ev.attr[k].sample_period
                    : (double)f->max_sample_rate; /* unknown: the cap */
    perf_ring_plan_in_t in = {
        .period = 1, .events_per_s = rate,
        .record_bytes = PERF_RECORD_BYTES, .interval_ns = o->interval_ns,
        .nrings = st->nrings, .local_ranks = settings_local_ranks(environ),
        .want_pages = o->ring_pages};
    perf_ring_plan_t plan;
    if (perf_ring_plan(&in, f, &plan) != 0)
        return -1;
    char line[320];
    log_debug("profiler: %s", perf_ring_plan_format(&plan, line,
                                                    sizeof line));
    snprintf(st->plan_why, sizeof st->plan_why, "%s", plan.why);
    if (plan.ring_pages == 0) {
        errno = EPERM;
        return -1;
    }
    if (plan.why[0] != '\0')
        log_info("profiler: %s", plan.why);
    st->ring_pages = plan.ring_pages;
    st->watermark = plan.watermark_bytes;
    return 0;
}

/* The attr fields every event of the set gets: the common ones; a wake-up
 * at the plan's watermark (a quarter of the ring), so that the profiling
 * thread drains long before the ring can overflow; and, per CPU for every
 * task, no inheritance (there is nothing to inherit). */
static void perf_events_finish(perf_state_t *st)
{
    for (size_t k = 0; k < st->ev.n; k++) {
        struct perf_event_attr *a = &st->ev.attr[k];
        perf_attr_common(a);
        a->watermark = 1;
        a->wakeup_watermark = (uint32_t)st->watermark;
        if (st->system_wide)
            a->inherit = a->inherit_thread = 0;
    }
}

/* Open the kind's event sets in order of preference until the kernel
 * takes one.  0, or -1 with errno: the last refusal's (an event no
 * encoder knows counts only when nothing opened). */
static int perf_open_variants(perf_state_t *st, const prof_options_t *o)
{
    int err = ENOENT;
    perf_lock_facts_t lock; /* the host's, once for every set tried */
    perf_lock_facts_read(&lock);
    for (unsigned v = 0;; v++) {
        perf_events_t ev; /* st->ev keeps the last set tried, for the log */
        if (perf_events_for_kind(st->kind, o, v, &ev) != 0) {
            if (errno == ENOENT && v == 0) {
                st->no_encoding = true;
                st->ev = ev; /* its name says which event is unknown */
            }
            errno = v == 0 ? errno : err;
            return -1;
        }
        st->ev = ev;
        if (perf_size_rings(st, o, &lock) != 0)
            return -1;
        perf_events_finish(st);
        errno = 0;
        if (perf_open_events(st) == 0 && st->nthreads > 0)
            return 0;
        err = errno ? errno : ENOENT;
        log_debug("profiler: %s events %s refused: errno %d",
                  prof_sampler_name(st->kind), st->ev.name, err);
        perf_release_events(st);
        if (err != EINVAL && err != EOPNOTSUPP && err != ENOENT) {
            errno = err; /* a permission or resource refusal: no set helps */
            return -1;
        }
    }
}

/* IBS before Linux 6.2 cannot follow one process: where the process may
 * sample whole CPUs, do that, keeping its own samples by pid (the rings'
 * owner filter).  auto tries it for ibs only, after the per-process
 * refusal; on, for any kind, from the start. */
static bool perf_try_system_wide(perf_state_t *st, const prof_options_t *o,
                                 int err)
{
    if (o->system_wide != PROF_SYSTEM_WIDE_AUTO ||
        st->kind != PROF_SAMPLER_IBS || st->no_encoding ||
        (err != EINVAL && err != EACCES && err != EPERM))
        return false;
    perf_host_facts_t h;
    perf_host_facts_read(&h);
    if (!h.privileged && !(h.paranoid != INT_MIN && h.paranoid <= 0))
        return false;
    char cause[PERF_CAUSE_LEN];
    log_info("profiler: ibs per process refused (%s); sampling whole CPUs "
             "and keeping this process's samples by pid",
             perf_open_cause(st->kind, err, &h, st->ev.ibs_swfilt, cause,
                             sizeof cause));
    st->system_wide = true;
    return true;
}

/* The one line that says why the kind cannot sample here: the real
 * cause, from the errno and what the host says (perf_open_cause). */
static void perf_say_unavailable(const perf_state_t *st, int level, int e)
{
    if (st->no_encoding) {
        log_at(level, "profiler: %s sampling unavailable: no event %s here"
                      " (libpfm4 or sysfs does not know it) -- falling back",
               prof_sampler_name(st->kind), st->ev.name);
        return;
    }
    if (st->plan_why[0] != '\0' && st->ring_pages == 0) {
        log_at(level, "profiler: %s sampling unavailable: %s -- falling "
                      "back", prof_sampler_name(st->kind), st->plan_why);
        return;
    }
    perf_host_facts_t h;
    perf_host_facts_read(&h);
    if (st->system_wide && (e == EACCES || e == EPERM)) {
        /* perf_open_cause judges a per-process open; whole CPUs need
         * more: paranoid 1 and above forbid CPU-wide events */
        log_at(level, "profiler: %s sampling unavailable: events on whole "
                      "CPUs (TIERMEM_PROFILE_SYSTEM_WIDE) were refused "
                      "(errno %d): they need CAP_PERFMON or "
                      "perf_event_paranoid 0 or less (it is %d) -- falling "
                      "back", prof_sampler_name(st->kind), e, h.paranoid);
        return;
    }
    char cause[PERF_CAUSE_LEN];
    log_at(level, "profiler: %s sampling unavailable: perf_event_open(%s)"
                  " failed: errno %d (%s): %s -- falling back",
           prof_sampler_name(st->kind), st->ev.name, e, strerror(e),
           perf_open_cause(st->kind, e, &h, st->ev.ibs_swfilt, cause,
                           sizeof cause));
}

/* The profile's sampler_detail: "event A + B period 5003+100003 counts
 * l3-miss-loads" (the periods in the events' order). */
static void perf_detail(const perf_state_t *st, char *out, size_t cap)
{
    char periods[48] = "";
    for (size_t k = 0, used = 0; k < st->ev.n && used < sizeof periods;
         k++)
        used += (size_t)snprintf(periods + used, sizeof periods - used,
                                 "%s%llu", k ? "+" : "",
                                 (unsigned long long)st->ev.attr[k]
                                     .sample_period);
    snprintf(out, cap, "event %.120s period %s counts %.16s", st->ev.name,
             periods, st->ev.counter);
}

static int perf_open(sampler_t *s, const prof_options_t *o,
                     const prof_sink_t *sink)
{
    perf_state_t *st = meta_alloc(sizeof *st);
    if (st == NULL) {
        log_error("profiler: no metadata memory for the perf sampler");
        errno = ENOMEM;
        return -1;
    }
    st->kind = o->sampler == PROF_SAMPLER_AUTO ? perf_kind_from_cpu()
                                               : o->sampler;
    st->owner = getpid();
    st->wake.ep.fd = -1;
    st->system_wide = o->system_wide == PROF_SYSTEM_WIDE_ON;
    /* Asked for by name, its absence is news; under `auto` it is the
     * normal case on every machine without a PMU (VMs, CI), and a warning
     * there would repeat for every process image and every MPI rank. */
    int level = o->sampler == PROF_SAMPLER_AUTO ? TM_LOG_INFO : TM_LOG_WARN;
    int rc = perf_rings_init(st);
    if (rc == 0) {
        rc = perf_open_variants(st, o);
        if (rc != 0 && perf_try_system_wide(st, o, errno))
            rc = perf_open_variants(st, o);
    }
    if (rc != 0) {
        int e = errno ? errno : ENOENT;
        perf_say_unavailable(st, level, e);
        perf_release(st);
        errno = e;
        return -1;
    }
    perf_wake_start(st);
    const struct perf_event_attr *a = &st->ev.attr[0];
    s->state = st;
    s->name = prof_sampler_name(st->kind);
    s->accesses_per_sample = (double)a->sample_period;
    s->sink = *sink;
    s->has_totals = true;
    perf_detail(st, s->detail, sizeof s->detail);
    log_info("profiler: %s sampling with %s, period %llu (%s), precise %u,"
             " %s, %zu CPU rings of %zu pages", s->name, st->ev.name,
             (unsigned long long)a->sample_period, st->ev.counter,
             (unsigned)a->precise_ip,
             st->system_wide ? "whole CPUs, this pid's samples" :
                               "per thread", st->nrings, st->ring_pages);
    return 0;
}

/* Once per interval: is every ring's event still ours?  The rings are
 * mappings and read without it, but a program that closed our events has
 * closed our sampling: report it, and sample no more. */
static bool perf_rings_ours(perf_state_t *st)
{
    for (size_t i = 0; i < st->nrings; i++) {
        perf_cpu_ring_t *r = &st->rings[i];
        if (r->fd >= 0 && !fd_is_ours(&r->own)) {
            prof_fd_lost(r->fd, "a perf event of the sampler");
            st->dead = true;
            return false;
        }
    }
    return true;
}

/* Loss and throttling are never silent: each is reported once, as a
 * warning, with what to change.  A throttle matters beyond this process:
 * the kernel's "perf interrupt took too long" logic then lowers
 * perf_event_max_sample_rate for the whole node. */
static void perf_report_loss(const sampler_t *s, perf_state_t *st,
                             const perf_ring_counts_t *c)
{
    if (c->lost && !st->lost_reported) {
        st->lost_reported = true;
        log_warn("profiler: the kernel lost %llu %s samples in one interval"
                 " (rings of %zu pages per CPU were full); raise "
                 "TIERMEM_PROFILE_PERIOD or TIERMEM_PROFILE_RING_PAGES",
                 (unsigned long long)c->lost, s->name, st->ring_pages);
    }
    if (c->throttles && !st->throttle_reported) {
        st->throttle_reported = true;
        log_warn("profiler: the kernel throttled %s sampling (period %llu):"
                 " samples were dropped, and the node's "
                 "perf_event_max_sample_rate may have been lowered; raise "
                 "TIERMEM_PROFILE_PERIOD", s->name,
                 (unsigned long long)st->ev.attr[0].sample_period);
    }
}

/* Samples without an address are useless to tiermem: an event that is
 * not a data-address event (cycles:ppp asked for by name), or IBS on a
 * kernel before 6.1, gives a profile of zero samples.  Say so once, when
 * enough records came in to tell. */
#define PERF_NO_ADDR_MIN_RECORDS 1000

static void perf_warn_no_addr(const sampler_t *s, perf_state_t *st)
{
    const prof_sampler_totals_t *t = &s->totals;
    uint64_t records = t->samples + t->no_addr;
    if (st->no_addr_reported || records < PERF_NO_ADDR_MIN_RECORDS ||
        t->no_addr <= t->samples)
        return;
    st->no_addr_reported = true;
    log_warn("profiler: %llu of %llu %s samples (event %s) carry no data "
             "address, so they cannot be attributed; use a data-address "
             "event (a PEBS load/store event, IBS op on Linux 6.1 or later)",
             (unsigned long long)t->no_addr, (unsigned long long)records,
             s->name, st->ev.name);
}

/* Read every ring into the sink and the totals. */
static void perf_drain_rings(sampler_t *s, perf_state_t *st)
{
    perf_ring_counts_t c;
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < st->nrings; i++)
        if (st->rings[i].fd >= 0)
            perf_ring_drain(&st->rings[i].ring, &s->sink, &c);
    if (c.lost || c.throttles || c.malformed)
        log_debug("profiler: %s drain: %llu samples, %llu lost,"
                     " %llu throttles, %llu malformed", s->name,
                     (unsigned long long)c.samples,
                     (unsigned long long)c.lost,
                     (unsigned long long)c.throttles,
                     (unsigned long long)c.malformed);
    perf_report_loss(s, st, &c);
    prof_sampler_totals_t *t = &s->totals;
    t->samples += c.samples;
    t->no_addr += c.no_addr;
    t->foreign += c.foreign;
    t->kernel += c.kernel;
    t->lost += c.lost;
    t->throttles += c.throttles;
    st->malformed += c.malformed;
    perf_warn_no_addr(s, st);
}

/* Is this the process that opened the events, still sampling?  A fork
 * child must not steal the parent's samples. */
static perf_state_t *perf_live(sampler_t *s)
{
    perf_state_t *st = s->state;
    if (st == NULL || getpid() != st->owner || st->dead ||
        !perf_rings_ours(st))
        return NULL;
    return st;
}

static void perf_collect(sampler_t *s, uint64_t t_end_ns)
{
    (void)t_end_ns; /* samples up to now is all a ring can give */
    perf_state_t *st = perf_live(s);
    if (st != NULL)
        perf_drain_rings(s, st);
}

/* A ring passed its watermark: read them all now, within the interval. */
static void perf_drain(sampler_t *s)
{
    perf_state_t *st = perf_live(s);
    if (st == NULL)
        return;
    perf_wake_consume(&st->wake);
    perf_drain_rings(s, st);
}

static int perf_wake_fd_of(sampler_t *s)
{
    perf_state_t *st = s->state;
    if (st == NULL || getpid() != st->owner || st->dead)
        return -1;
    return perf_wake_fd(&st->wake);
}

static void perf_close(sampler_t *s)
{
    perf_state_t *st = s->state;
    if (st == NULL)
        return;
    /* In a fork child the fds share their file with the parent's: a
     * disable here would stop the parent's sampling. */
    if (getpid() == st->owner) {
        for (size_t i = 0; i < st->nfds; i++) {
            owned_fd_t *o = &st->fds[i];
            if (o->fd < 0)
                continue;
            if (!fd_is_ours(o)) {
                prof_fd_lost(o->fd, "a perf event of the sampler");
                fd_forget(o);
            } else if (ioctl(o->fd, PERF_EVENT_IOC_DISABLE, 0) != 0) {
                log_warn("profiler: disabling perf fd %d failed:"
                            " errno %d", o->fd, errno);
            }
        }
        perf_collect(s, 0);
        log_debug("profiler: %s totals: %llu samples, %llu without an "
                  "address, %llu of other processes, %llu lost, %llu "
                  "throttles, %llu malformed", s->name,
                  (unsigned long long)s->totals.samples,
                  (unsigned long long)s->totals.no_addr,
                  (unsigned long long)s->totals.foreign,
                  (unsigned long long)s->totals.lost,
                  (unsigned long long)s->totals.throttles,
                  (unsigned long long)st->malformed);
    }
    perf_release(st);
    s->state = NULL;
}

/* A fork child: drop its copies of the event descriptors that are still
 * ours, nothing more
 * (an ioctl on them would act on the parent's events; the rings are not
 * mapped in a child, perf maps them do-not-copy). */
static void perf_fork_child(sampler_t *s)
{
    perf_state_t *st = s->state;
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->nfds; i++)
        (void)fd_release(&st->fds[i]); /* async-signal-safe */
    perf_wake_close(&st->wake);
    s->state = NULL;
}

const sampler_ops_t sampler_perf_ops = {
    .open = perf_open,
    .collect = perf_collect,
    .done = NULL,
    .close = perf_close,
    .fork_child = perf_fork_child,
    .wake_fd = perf_wake_fd_of,
    .drain = perf_drain,
};
