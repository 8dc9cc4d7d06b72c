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

/* 64 pages hold the ~5000 samples of a 100 ms interval at the default pebs
 * period (perf_event.c). */
#define PERF_DEFAULT_RING_PAGES 64
#define PERF_MAX_CPUS 1024

/* The ring of one CPU, mapped from the first event opened on it. */
typedef struct perf_cpu_ring {
    int cpu;
    int fd;          /* the event the ring is mapped from; -1 until then */
    owned_fd_t own; /* that event's identity (its fds[] entry's copy) */
    size_t map_len;
    perf_ring_t ring;
} perf_cpu_ring_t;

typedef struct perf_state {
    prof_sampler_kind_t kind;
    pid_t owner;                  /* the process that opened the events */
    char event[128];              /* the name logged */
    struct perf_event_attr attr;  /* as accepted by the first open */
    size_t ring_pages;
    perf_cpu_ring_t *rings;       /* one per online CPU (meta_alloc) */
    size_t nrings;
    owned_fd_t *fds;           /* every event, fds_cap entries */
    size_t nfds, fds_cap;
    size_t nthreads;              /* threads with events */
    uint64_t malformed;           /* ring records skipped as malformed */
    bool throttle_reported, lost_reported, no_addr_reported;
    bool filter_kernel;           /* kernel addresses could not be
                                     excluded (ibs): the rings drop them */
    bool dead;                    /* an event was lost: sampling stopped */
    perf_wake_t wake;             /* the rings' watermarks, as one fd */
} perf_state_t;

/* ---------------------------------------------------------------- open */

static int perf_event_open_tid(struct perf_event_attr *attr, pid_t tid,
                               int cpu)
{
    long fd = syscall(SYS_perf_event_open, attr, tid, cpu, -1,
                      PERF_FLAG_FD_CLOEXEC);
    return (int)fd;
}

/* First open: find the attr variant the kernel accepts.  Hardware events
 * try precise_ip 3, 2, 1; an old kernel without inherit_thread is retried
 * without it; IBS, which may refuse exclude_kernel, without that (and the
 * kernel addresses are then filtered out here). */
static int perf_probe_open(perf_state_t *st, pid_t tid, int cpu)
{
    struct perf_event_attr *attr = &st->attr;
    int precise_max = st->kind == PROF_SAMPLER_PEBS ? 3 : 0;
    int saved = 0;
    for (int no_ex = 0; no_ex <= (st->kind == PROF_SAMPLER_IBS); no_ex++)
        for (int it = 1; it >= 0; it--)
            for (int p = precise_max; p >= (precise_max ? 1 : 0); p--) {
                attr->inherit_thread = (unsigned)it;
                attr->precise_ip = (unsigned)p;
                attr->exclude_kernel = !no_ex;
                attr->exclude_hv = !no_ex;
                int fd = perf_event_open_tid(attr, tid, cpu);
                if (fd >= 0) {
                    if (!it)
                        log_warn("profiler: kernel refused inherit_thread;"
                                    " forked children will feed the parent's"
                                    " %s rings", perf_kind_name(st->kind));
                    st->filter_kernel = no_ex;
                    return fd;
                }
                if (errno != EINVAL && errno != EOPNOTSUPP)
                    return -1; /* no variant will help */
                saved = saved ? saved : errno;
            }
    errno = saved;
    return -1;
}

/* mmap the ring of cpu r from event fd; 0 or -1 (logged). */
static int perf_ring_map(perf_state_t *st, perf_cpu_ring_t *r,
                         const owned_fd_t *own)
{
    int fd = own->fd;
    size_t page = os_page_size();
    size_t len = (1 + st->ring_pages) * page;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        log_error("profiler: mmap of a %zu-byte perf ring (fd %d, cpu %d)"
                     " failed: errno %d (%s)", len, fd, r->cpu, errno,
                     strerror(errno));
        return -1;
    }
    r->fd = fd;
    r->own = *own;
    r->map_len = len;
    r->ring.base = p;
    r->ring.data_size = st->ring_pages * page;
    r->ring.sample_type = st->attr.sample_type;
    r->ring.owner_pid = (uint32_t)st->owner;
    r->ring.user_only = st->filter_kernel;
    return 0;
}

/* Keep fd in the table (grown by copying); -1 when out of memory. */
static int perf_fds_add(perf_state_t *st, const owned_fd_t *own)
{
    if (st->nfds == st->fds_cap) {
        size_t cap = st->fds_cap ? st->fds_cap * 2 : 256;
        owned_fd_t *n = meta_alloc(cap * sizeof *n);
        if (n == NULL) {
            log_error("profiler: no metadata memory for %zu perf fds",
                         cap);
            errno = ENOMEM;
            return -1;
        }
        if (st->fds != NULL) {
            memcpy(n, st->fds, st->nfds * sizeof *n);
            meta_free(st->fds, st->fds_cap * sizeof *n);
        }
        st->fds = n;
        st->fds_cap = cap;
    }
    st->fds[st->nfds++] = *own;
    return 0;
}

/* Route event fd into cpu r's ring: map the ring from it if it is the
 * first, else redirect it there.  0 or -1 (logged). */
static int perf_attach_ring(perf_state_t *st, perf_cpu_ring_t *r,
                            const owned_fd_t *own)
{
    int fd = own->fd;
    if (r->fd < 0)
        return perf_ring_map(st, r, own);
    if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, r->fd) != 0) {
        log_error("profiler: PERF_EVENT_IOC_SET_OUTPUT of fd %d to the"
                     " cpu %d ring (fd %d) failed: errno %d (%s)", fd,
                     r->cpu, r->fd, errno, strerror(errno));
        return -1;
    }
    return 0;
}

/* Open one thread's events, one per CPU.  1 added, 0 the thread is gone,
 * -1 failure (logged, except the very first open's: the caller words
 * that one as "unavailable"). */
static int perf_add_thread(perf_state_t *st, pid_t tid)
{
    for (size_t i = 0; i < st->nrings; i++) {
        perf_cpu_ring_t *r = &st->rings[i];
        bool first = st->nfds == 0;
        int fd = first ? perf_probe_open(st, tid, r->cpu)
                       : perf_event_open_tid(&st->attr, tid, r->cpu);
        if (fd < 0) {
            if (errno == ESRCH)
                return 0; /* exited since we listed it */
            if (!first)
                log_error("profiler: perf_event_open(%s) for tid %d,"
                             " cpu %d failed: errno %d (%s)", st->event,
                             (int)tid, r->cpu, errno, strerror(errno));
            return -1;
        }
        owned_fd_t own;
        if (fd_own(fd, &own) < 0) {
            log_error("profiler: keeping perf fd %d (tid %d, cpu %d) "
                         "failed: errno %d", fd, (int)tid, r->cpu, errno);
            return -1;
        }
        if (perf_fds_add(st, &own) != 0) {
            int e = errno;
            (void)fd_release(&own);
            errno = e;
            return -1;
        }
        if (perf_attach_ring(st, r, &own) != 0)
            return -1; /* fd is in the table: released with the rest */
    }
    st->nthreads++;
    return 1;
}

/* The online CPUs, from /sys/devices/system/cpu/online ("0-3,5"), into
 * st->rings.  0 or -1 (logged). */
static int perf_cpus_init(perf_state_t *st)
{
    char buf[1024];
    ssize_t n = -1;
    int fd = open("/sys/devices/system/cpu/online", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_CONF);
        n = snprintf(buf, sizeof buf, "0-%ld", c > 0 ? c - 1 : 0);
    }
    buf[n] = '\0';
    int cpus[PERF_MAX_CPUS];
    size_t count = 0;
    for (char *p = buf; *p != '\0' && *p != '\n';) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p)
            break;
        if (*end == '-')
            hi = strtol(end + 1, &end, 10);
        for (long c = lo; c <= hi && count < PERF_MAX_CPUS; c++)
            cpus[count++] = (int)c;
        p = *end == ',' ? end + 1 : end;
    }
    if (count == 0)
        cpus[count++] = 0;
    st->rings = meta_alloc(count * sizeof *st->rings);
    if (st->rings == NULL) {
        log_error("profiler: no metadata memory for %zu perf rings",
                     count);
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        st->rings[i].cpu = cpus[i];
        st->rings[i].fd = -1;
    }
    st->nrings = count;
    return 0;
}

struct perf_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Open an event for every thread listed in /proc/self/task.  A thread
 * created while we list and open, by a thread whose event is not open
 * yet, inherits nothing and is missed: a narrow race at start-up only
 * (the usual caller starts profiling before the program's threads). */
static int perf_add_all_threads(perf_state_t *st)
{
    int dfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        log_error("profiler: open /proc/self/task failed: errno %d (%s)",
                     errno, strerror(errno));
        return -1;
    }
    char buf[4096] __attribute__((aligned(8)));
    int rc = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n < 0) {
            log_error("profiler: getdents64 of /proc/self/task failed:"
                         " errno %d (%s)", errno, strerror(errno));
            rc = -1;
        }
        if (n <= 0)
            break;
        for (long off = 0; off < n && rc == 0;) {
            struct perf_dirent64 *d = (struct perf_dirent64 *)(buf + off);
            off += d->d_reclen;
            char *end;
            long tid = strtol(d->d_name, &end, 10);
            if (end == d->d_name || *end != '\0' || tid <= 0)
                continue; /* "." and ".." */
            if (perf_add_thread(st, (pid_t)tid) < 0)
                rc = -1;
        }
        if (rc != 0)
            break;
    }
    int e = errno;
    close(dfd);
    errno = e;
    return rc;
}

/* ---------------------------------------------------------------- ops */

static void perf_release(perf_state_t *st)
{
    perf_wake_close(&st->wake);
    for (size_t i = 0; i < st->nrings; i++) {
        perf_cpu_ring_t *r = &st->rings[i];
        if (r->fd >= 0 && munmap(r->ring.base, r->map_len) != 0)
            log_error("profiler: munmap of the cpu %d perf ring (fd %d)"
                         " failed: errno %d", r->cpu, r->fd, errno);
    }
    for (size_t i = 0; i < st->nfds; i++)
        (void)fd_release(&st->fds[i]); /* only those still ours */
    if (st->rings != NULL)
        meta_free(st->rings, st->nrings * sizeof *st->rings);
    if (st->fds != NULL)
        meta_free(st->fds, st->fds_cap * sizeof *st->fds);
    meta_free(st, sizeof *st);
}

/* The wake-up set over the rings mapped; without it, interval ends only. */
static void perf_wake_start(perf_state_t *st)
{
    int fds[PERF_MAX_CPUS];
    size_t n = 0;
    for (size_t i = 0; i < st->nrings && n < PERF_MAX_CPUS; i++)
        if (st->rings[i].fd >= 0)
            fds[n++] = st->rings[i].fd;
    (void)perf_wake_open(&st->wake, fds, n);
}

static size_t perf_ring_pages(unsigned want)
{
    size_t p = 1;
    if (want == 0)
        return PERF_DEFAULT_RING_PAGES;
    while (p < want && p < ((size_t)1 << 20))
        p <<= 1; /* the kernel wants a power of two */
    return p;
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
    st->ring_pages = perf_ring_pages(o->ring_pages);
    /* Asked for by name, its absence is news; under `auto` it is the
     * normal case on every machine without a PMU (VMs, CI), and a warning
     * there would repeat for every process image and every MPI rank. */
    int level = o->sampler == PROF_SAMPLER_AUTO ? TM_LOG_INFO : TM_LOG_WARN;
    if (perf_event_for_kind(st->kind, o, &st->attr, st->event,
                            sizeof st->event) != 0) {
        int e = errno;
        log_at(level, "profiler: %s sampling unavailable: no event %s here"
                    " (libpfm4 or sysfs does not know it) -- falling back",
                    perf_kind_name(st->kind), st->event);
        perf_release(st);
        errno = e;
        return -1;
    }
    perf_attr_common(&st->attr);
    /* wake the profiling thread when a ring is a quarter full: it drains
     * then, long before the ring can overflow */
    st->attr.watermark = 1;
    st->attr.wakeup_watermark =
        (uint32_t)(st->ring_pages * os_page_size() / 4);
    if (perf_cpus_init(st) != 0 || perf_add_all_threads(st) != 0 ||
        st->nthreads == 0) {
        int e = errno ? errno : ENOENT;
        log_at(level, "profiler: %s sampling unavailable: perf_event_open(%s)"
                    " failed: errno %d (%s)%s -- falling back",
                    perf_kind_name(st->kind), st->event, e, strerror(e),
                    e == ENOENT && st->kind != PROF_SAMPLER_FAULTS
                        ? "; no hardware PMU" : "");
        perf_release(st);
        errno = e;
        return -1;
    }
    perf_wake_start(st);
    s->state = st;
    s->name = perf_kind_name(st->kind);
    s->accesses_per_sample = (double)st->attr.sample_period;
    s->sink = *sink;
    s->has_totals = true;
    snprintf(s->detail, sizeof s->detail, "event %s period %llu counts %s",
             st->event, (unsigned long long)st->attr.sample_period,
             perf_kind_counter(st->kind));
    log_info("profiler: %s sampling with %s, period %llu, %zu thread(s),"
                " %zu CPU rings of %zu pages", s->name, st->event,
                (unsigned long long)st->attr.sample_period, st->nthreads,
                st->nrings, st->ring_pages);
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
                 (unsigned long long)st->attr.sample_period);
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
             s->name, st->event);
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
