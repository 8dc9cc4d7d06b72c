/*
 * perf_open.c -- opening a perf sampler's events: the first open probes
 * what the kernel accepts, then one event per (thread, CPU, event), each
 * CPU's events writing into one ring.
 *
 * The kernel refuses to mmap an inherited event that follows a task on
 * every CPU (cpu == -1): so, as perf record does, we open one event per
 * (thread, CPU), mmap one ring per CPU, and point every other event of
 * that CPU at it with PERF_EVENT_IOC_SET_OUTPUT (allowed across tasks for
 * per-CPU rings).  Rings: one per CPU; fds: threads x CPUs x events.
 *
 * Runs before sampling starts, on the thread that starts the profiler;
 * no malloc (meta_alloc tables), /proc/self/task read with getdents64.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "perf_internal.h"

static int perf_event_open_tid(struct perf_event_attr *attr, pid_t tid,
                               int cpu)
{
    long fd = syscall(SYS_perf_event_open, attr, tid, cpu, -1,
                      PERF_FLAG_FD_CLOEXEC);
    return (int)fd;
}

/* First open of one event: find the attr variant the kernel accepts.
 * Hardware events try precise_ip 2, then 1: data addresses need no more,
 * and 3 pins the event to general-purpose counter 0 on Sapphire and
 * Emerald Rapids, where it then competes for it.  An old kernel without
 * inherit_thread is retried without it; IBS, which may refuse
 * exclude_kernel, without that (the rings then drop kernel addresses). */
static int perf_probe_open(perf_state_t *st, struct perf_event_attr *attr,
                           pid_t tid, int cpu)
{
    int precise_max = st->kind == PROF_SAMPLER_PEBS ? 2 : 0;
    int saved = 0;
    int it_max = st->system_wide ? 0 : 1; /* no inheritance per CPU */
    for (int no_ex = 0; no_ex <= (st->kind == PROF_SAMPLER_IBS); no_ex++)
        for (int it = it_max; it >= 0; it--)
            for (int p = precise_max; p >= (precise_max ? 1 : 0); p--) {
                attr->inherit_thread = (unsigned)it;
                attr->precise_ip = (unsigned)p;
                attr->exclude_kernel = !no_ex;
                attr->exclude_hv = !no_ex;
                int fd = perf_event_open_tid(attr, tid, cpu);
                if (fd >= 0) {
                    if (!it && it_max)
                        log_warn("profiler: kernel refused inherit_thread;"
                                 " samples of forked children are dropped "
                                 "by pid, after they reach the %s rings",
                                 prof_sampler_name(st->kind));
                    if (no_ex)
                        st->filter_kernel = true;
                    return fd;
                }
                if (errno != EINVAL && errno != EOPNOTSUPP)
                    return -1; /* no variant will help */
                saved = saved ? saved : errno;
            }
    errno = saved;
    return -1;
}

/* The first (thread, CPU): probe every event.  An event after the first
 * that no variant opens is dropped (pebs then samples misses without
 * stores), and said so; the first one's failure fails the open. */
static int perf_probe_events(perf_state_t *st, pid_t tid, int cpu, int *fds)
{
    size_t kept = 0;
    for (size_t k = 0; k < st->ev.n; k++) {
        struct perf_event_attr *a = &st->ev.attr[k];
        int fd = perf_probe_open(st, a, tid, cpu);
        if (fd < 0 && k == 0)
            return -1;
        if (fd < 0) {
            log_info("profiler: %s: event %zu of \"%s\" could not open "
                     "(errno %d); sampling without it",
                     prof_sampler_name(st->kind), k + 1, st->ev.name, errno);
            continue;
        }
        st->ev.attr[kept] = *a;
        fds[kept++] = fd;
    }
    st->ev.n = kept;
    return 0;
}

/* mmap the ring of cpu r from event fd; 0 or -1 (logged). */
static int perf_ring_map(perf_state_t *st, perf_cpu_ring_t *r,
                         const owned_fd_t *own)
{
    int fd = own->fd;
    size_t page = os_page_size();
    size_t len = (1 + st->ring_pages) * page;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED && errno == EPERM) {
        /* not a perf_event_open failure: the rings are locked memory */
        log_warn("profiler: mmap of a %zu-byte perf ring (cpu %d) was "
                 "refused (EPERM): locked memory is exhausted -- "
                 "perf_event_mlock_kb x CPUs for all of this user's "
                 "processes, then ulimit -l; lower "
                 "TIERMEM_PROFILE_RING_PAGES, raise ulimit -l, or bind "
                 "the process to fewer CPUs", len, r->cpu);
        errno = EPERM;
        return -1;
    }
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
    r->ring.sample_type = st->ev.attr[0].sample_type;
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

/* Keep an event opened on ring r's CPU: owned, in the table, writing into
 * the ring.  0, or -1 (logged; a kept fd is released with the rest). */
static int perf_keep_event(perf_state_t *st, perf_cpu_ring_t *r, int fd,
                           pid_t tid)
{
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
    return perf_attach_ring(st, r, &own);
}

/* Open one thread's events on every ring's CPU (pid -1: every task on
 * that CPU, the system-wide mode).  1 added, 0 the thread is gone, -1
 * failure (logged, except the very first open's: the caller words that
 * one as "unavailable"). */
static int perf_add_thread(perf_state_t *st, pid_t tid)
{
    for (size_t i = 0; i < st->nrings; i++) {
        perf_cpu_ring_t *r = &st->rings[i];
        int fds[PERF_MAX_EVENTS];
        bool first = st->nfds == 0;
        if (first && perf_probe_events(st, tid, r->cpu, fds) != 0)
            return errno == ESRCH ? 0 : -1;
        for (size_t k = 0; k < st->ev.n; k++) {
            int fd = first ? fds[k]
                           : perf_event_open_tid(&st->ev.attr[k], tid,
                                                 r->cpu);
            if (fd < 0) {
                if (errno == ESRCH)
                    return 0; /* exited since we listed it */
                log_error("profiler: perf_event_open(%s) for tid %d,"
                          " cpu %d failed: errno %d (%s)", st->ev.name,
                          (int)tid, r->cpu, errno, strerror(errno));
                for (size_t j = k + 1; first && j < st->ev.n; j++)
                    close(fds[j]);
                return -1;
            }
            if (perf_keep_event(st, r, fd, tid) != 0) {
                for (size_t j = k + 1; first && j < st->ev.n; j++)
                    close(fds[j]);
                return -1;
            }
        }
    }
    st->nthreads++;
    return 1;
}

int perf_rings_init(perf_state_t *st)
{
    int cpus[PERF_AFFINITY_MAX_CPUS];
    size_t count = perf_cpus_for_rings(cpus, PERF_AFFINITY_MAX_CPUS);
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

int perf_open_events(perf_state_t *st)
{
    if (st->system_wide) /* pid -1: every task on the rings' CPUs */
        return perf_add_thread(st, -1) < 0 ? -1 : 0;
    return perf_add_all_threads(st);
}
