/*
 * perf_wake.c -- one descriptor that wakes the profiling thread when any
 * perf ring has passed its watermark.
 *
 * Why: at a real PMU's sample rates a ring sized for an interval can still
 * fill before the interval ends (a burst, a slow interval close), and
 * records the kernel cannot write are lost.  Each ring's event is opened
 * with a wake-up watermark; an epoll set holds every ring's event, so the
 * profiling thread polls one descriptor next to its timer and drains the
 * rings as they fill (profiler.c, sampler_perf.c).
 *
 * perf's poll reports the wake-ups accumulated since the last poll and
 * clears them, so readiness is consumed by perf_wake_consume.  An event
 * whose task is gone (a thread that owned a ring exited) reports POLLHUP
 * for ever: it is taken out of the set, or every poll would wake at once;
 * its ring is still read at each interval's end.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "perf_internal.h"

int perf_wake_open(perf_wake_t *w, const int *fds, size_t n)
{
    memset(w, 0, sizeof *w);
    w->ep.fd = -1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0 || fd_own(ep, &w->ep) < 0) { /* fd_own closes on failure */
        log_info("profiler: epoll for the perf rings failed: errno %d; "
                 "rings are read at interval ends only", errno);
        w->ep.fd = -1;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(w->ep.fd, EPOLL_CTL_ADD, fds[i], &ev) != 0) {
            log_info("profiler: adding perf ring fd %d to epoll fd %d "
                     "failed: errno %d; rings are read at interval ends "
                     "only", fds[i], w->ep.fd, errno);
            perf_wake_close(w);
            return -1;
        }
    }
    w->on = true;
    return 0;
}

int perf_wake_fd(perf_wake_t *w)
{
    if (!w->on)
        return -1;
    if (!fd_is_ours(&w->ep)) {
        prof_fd_lost(w->ep.fd, "the perf sampler's epoll descriptor");
        fd_forget(&w->ep);
        w->on = false;
        return -1;
    }
    return w->ep.fd;
}

void perf_wake_consume(perf_wake_t *w)
{
    if (perf_wake_fd(w) < 0)
        return;
    struct epoll_event ev[64];
    int n = epoll_wait(w->ep.fd, ev, 64, 0);
    for (int i = 0; i < n; i++) {
        if (!(ev[i].events & (EPOLLHUP | EPOLLERR)))
            continue;
        if (epoll_ctl(w->ep.fd, EPOLL_CTL_DEL, ev[i].data.fd, NULL) != 0) {
            log_info("profiler: removing perf fd %d from epoll fd %d "
                     "failed: errno %d; rings are read at interval ends "
                     "only", ev[i].data.fd, w->ep.fd, errno);
            perf_wake_close(w);
            return;
        }
        log_debug("profiler: perf fd %d hung up (its task exited): its "
                  "ring is read at interval ends only", ev[i].data.fd);
    }
}

void perf_wake_close(perf_wake_t *w)
{
    (void)fd_release(&w->ep); /* only if still ours */
    w->on = false;
}
