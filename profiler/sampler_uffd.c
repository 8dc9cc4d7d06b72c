/*
 * sampler_uffd.c -- the userfaultfd write-protect sampler: the portable
 * sampler, which needs no PMU.
 *
 * Once per interval the profiling thread write-protects a budget of arena
 * pages (every S-th page of every arena, S chosen so the budget covers all
 * mapped pages, with an offset that rotates each interval).  The first write
 * to a protected page stops the writer in the kernel and queues a fault
 * message on the userfaultfd; the sampler's own fault-service thread turns
 * the message into a sample of weight S and un-protects the page, which
 * wakes the writer.  So a sample means "this page was written this
 * interval", and the counts estimate written pages per arena.
 *
 * Safety.  A writer blocked on a fault may hold any lock (jemalloc's, an
 * arena's hook lock, libc's), so the service thread takes no lock, never
 * allocates and never writes into arena memory: it only polls, reads fault
 * messages into its stack and issues ioctls.  close() un-protects, then
 * unregisters every arena range, stops the service thread after it has
 * drained every pending fault, and closes the descriptor, which wakes
 * anything left: no thread of the program can stay blocked on the sampler.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "profiler.h"

/* Pages protected per interval when the settings say 0.  From
 * bench/bench_uffd.c: see doc/profiler-uffd.md for the measurement. */
#define UFFD_DEFAULT_PAGES 64u

/* Fault messages read with one read(2) (32 bytes each, on the stack). */
#define UFFD_MSG_BATCH 64

typedef struct uffd_state {
    int uffd;
    int stop_fd;               /* eventfd: the service thread should exit */
    bool thread_started;
    pthread_t thread;
    prof_sink_t sink;
    size_t page;
    unsigned budget;           /* pages protected per interval */
    _Atomic uint32_t weight;   /* this interval's stride S */
    uint64_t round;            /* intervals collected: rotates the offset */
    /* The pages protected in the last collect, un-protected by the next. */
    uintptr_t *pages;
    size_t npages, cap;
    /* Counters (profiling thread only, except the atomics). */
    uint64_t vanished;         /* ioctls on ranges that were gone */
    bool warned_register, warned_protect, warned_full;
    _Atomic uint64_t faults;   /* write faults served */
    _Atomic bool warned_service;
} uffd_state_t;

/* ---------------------------------------------------------------- ioctls */

static int uffd_protect(int uffd, uintptr_t start, size_t len, bool on)
{
    struct uffdio_writeprotect wp = {
        .range = {.start = start, .len = len},
        .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
}

static int uffd_wake(int uffd, uintptr_t start, size_t len)
{
    struct uffdio_range r = {.start = start, .len = len};
    return ioctl(uffd, UFFDIO_WAKE, &r);
}

/* Errors that mean the range is no longer (or not yet) a registered
 * mapping: expected while arenas grow, shrink and die under us. */
static bool uffd_vanished_error(int err)
{
    return err == ENOENT || err == EINVAL || err == ENOMEM || err == EAGAIN;
}

/* ---------------------------------------------------------------- service */

/* One write fault: count it, then let the writer go.  Un-protecting wakes
 * the writer; if the page is no longer registered (its range was
 * unregistered by close or unmapped), wake the writer explicitly. */
static void uffd_serve_fault(uffd_state_t *st, const struct uffd_msg *m)
{
    uintptr_t page = (uintptr_t)m->arg.pagefault.address & ~(st->page - 1);
    if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
        uint32_t w = atomic_load_explicit(&st->weight, memory_order_relaxed);
        st->sink.sample(st->sink.ctx, page, w);
        atomic_fetch_add_explicit(&st->faults, 1, memory_order_relaxed);
    }
    if (uffd_protect(st->uffd, page, st->page, false) == 0)
        return;
    int err = errno;
    if (uffd_wake(st->uffd, page, st->page) != 0 &&
        !atomic_exchange(&st->warned_service, true))
        tm_log_warn("uffd sampler: fd %d: cannot release the writer of page "
                    "%#lx (unprotect errno %d, wake errno %d; reported once)",
                    st->uffd, (unsigned long)page, err, errno);
}

/* Read and serve every queued message; returns when the queue is empty. */
static void uffd_service_drain(uffd_state_t *st)
{
    struct uffd_msg msg[UFFD_MSG_BATCH];
    for (;;) {
        ssize_t n = read(st->uffd, msg, sizeof msg);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && !atomic_exchange(&st->warned_service, true))
                tm_log_warn("uffd sampler: read of fault messages from fd %d "
                            "failed: errno %d (reported once)", st->uffd,
                            errno);
            return;
        }
        size_t count = (size_t)n / sizeof msg[0];
        for (size_t i = 0; i < count; i++)
            if (msg[i].event == UFFD_EVENT_PAGEFAULT)
                uffd_serve_fault(st, &msg[i]);
        if (count < UFFD_MSG_BATCH)
            return;
    }
}

static void *uffd_service_main(void *arg)
{
    uffd_state_t *st = arg;
    struct pollfd pfd[2] = {{.fd = st->uffd, .events = POLLIN},
                            {.fd = st->stop_fd, .events = POLLIN}};
    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno != EINTR && !atomic_exchange(&st->warned_service, true))
                tm_log_warn("uffd sampler: poll on fd %d failed: errno %d "
                            "(reported once)", st->uffd, errno);
            continue;
        }
        /* Serve first, so stopping never leaves a queued writer behind. */
        if (pfd[0].revents)
            uffd_service_drain(st);
        if (pfd[1].revents & POLLIN) {
            uffd_service_drain(st);
            return NULL;
        }
    }
}

/* The service thread starts with every signal blocked: the application's
 * signals must land on its own threads, never on ours. */
static int uffd_service_start(uffd_state_t *st)
{
    sigset_t all, old;
    sigfillset(&all);
    int rc = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (rc != 0) {
        tm_log_warn("uffd sampler: pthread_sigmask failed: errno %d", rc);
        errno = rc;
        return -1;
    }
    rc = pthread_create(&st->thread, NULL, uffd_service_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        tm_log_warn("uffd sampler: cannot start the fault-service thread: "
                    "errno %d", rc);
        errno = rc;
        return -1;
    }
    st->thread_started = true;
    return 0;
}

static void uffd_service_stop(uffd_state_t *st)
{
    if (!st->thread_started)
        return;
    uint64_t one = 1;
    while (write(st->stop_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    int rc = pthread_join(st->thread, NULL);
    if (rc != 0)
        tm_log_error("uffd sampler: joining the fault-service thread failed: "
                     "errno %d", rc);
    st->thread_started = false;
}

/* ---------------------------------------------------------------- open */

static void uffd_warn_unavailable(int err)
{
    if (err == EPERM || err == EACCES)
        tm_log_warn("uffd sampler: userfaultfd not permitted (errno %d): it "
                    "needs root (CAP_SYS_PTRACE) or sysctl "
                    "vm.unprivileged_userfaultfd=1", err);
    else if (err == ENOSYS)
        tm_log_warn("uffd sampler: this kernel has no userfaultfd (ENOSYS)");
    else
        tm_log_warn("uffd sampler: userfaultfd failed: errno %d", err);
}

/* A userfaultfd that reports write-protect faults, or -1 with errno. */
static int uffd_create(void)
{
    /* Not UFFD_USER_MODE_ONLY: a kernel-mode write into a protected page
     * (read(2) into a buffer) must wait for us, not fail with EFAULT. */
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        uffd_warn_unavailable(err);
        errno = err;
        return -1;
    }
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (ioctl(fd, UFFDIO_API, &api) != 0) {
        int err = errno;
        tm_log_warn("uffd sampler: UFFDIO_API on fd %d failed: errno %d", fd,
                    err);
        close(fd);
        errno = err;
        return -1;
    }
    if (!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
        tm_log_warn("uffd sampler: this kernel's userfaultfd cannot "
                    "write-protect (no UFFD_FEATURE_PAGEFAULT_FLAG_WP)");
        close(fd);
        errno = ENOTSUP;
        return -1;
    }
    return fd;
}

static void uffd_state_free(uffd_state_t *st)
{
    if (st->pages)
        tm_meta_free(st->pages, st->cap * sizeof st->pages[0]);
    if (st->stop_fd >= 0)
        close(st->stop_fd);
    if (st->uffd >= 0)
        close(st->uffd);
    tm_meta_free(st, sizeof *st);
}

static int uffd_open(sampler_t *s, const prof_options_t *o,
                     const prof_sink_t *sink)
{
    uffd_state_t *st = tm_meta_alloc(sizeof *st);
    if (st == NULL) {
        tm_log_warn("uffd sampler: no metadata memory for its state");
        errno = ENOMEM;
        return -1;
    }
    st->uffd = st->stop_fd = -1;
    st->sink = *sink;
    st->page = tm_os_page_size();
    st->budget = o->uffd_pages ? o->uffd_pages : UFFD_DEFAULT_PAGES;
    atomic_store(&st->weight, 1);
    /* A walk picks at most budget + 1 pages when nothing grows between its
     * two passes; the slack absorbs growth, the rest is skipped. */
    st->cap = (size_t)st->budget + 64;
    st->pages = tm_meta_alloc(st->cap * sizeof st->pages[0]);
    int err = ENOMEM;
    if (st->pages == NULL) {
        tm_log_warn("uffd sampler: no metadata memory for %zu pages", st->cap);
        goto fail;
    }
    st->uffd = uffd_create();
    if (st->uffd < 0) {
        err = errno;
        goto fail;
    }
    st->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (st->stop_fd < 0) {
        err = errno;
        tm_log_warn("uffd sampler: eventfd failed: errno %d", err);
        goto fail;
    }
    if (uffd_service_start(st) != 0) {
        err = errno;
        goto fail;
    }
    s->state = st;
    s->sink = *sink;
    if (s->name == NULL)
        s->name = "uffd";
    tm_log_info("uffd sampler: fd %d, %u pages per interval", st->uffd,
                st->budget);
    return 0;
fail:
    uffd_state_free(st);
    s->state = NULL;
    errno = err;
    return -1;
}

/* ---------------------------------------------------------------- collect */

/* Un-protect what the last collect protected.  Pages written since were
 * already un-protected by the service thread; doing it again is harmless. */
static void uffd_unprotect_previous(uffd_state_t *st)
{
    for (size_t i = 0; i < st->npages; i++) {
        if (uffd_protect(st->uffd, st->pages[i], st->page, false) == 0)
            continue;
        if (uffd_vanished_error(errno))
            st->vanished++; /* its extent was unmapped meanwhile */
        else if (!st->warned_protect) {
            st->warned_protect = true;
            tm_log_warn("uffd sampler: un-protecting page %#lx on fd %d "
                        "failed: errno %d (reported once)",
                        (unsigned long)st->pages[i], st->uffd, errno);
        }
    }
    st->npages = 0;
}

/* Pages mapped by every arena.  Caller is inside an arena walk. */
static uint64_t uffd_total_pages(const uffd_state_t *st)
{
    uint64_t bytes = 0;
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = tm_arena_by_id(id);
        if (a == NULL)
            continue;
        pthread_mutex_lock(&a->hooked.lock);
        bytes += a->hooked.extents.bytes;
        pthread_mutex_unlock(&a->hooked.lock);
    }
    return bytes / st->page;
}

/* Register [start, start + size) for write-protect tracking.  Registering
 * a range this uffd already tracks in the same mode is accepted by the
 * kernel as is (checked by test_sampler_uffd's repeated collects).  EBUSY
 * means another userfaultfd (the program's own) owns part of it: skip. */
static bool uffd_register(uffd_state_t *st, unsigned id, uintptr_t start,
                          size_t size)
{
    struct uffdio_register reg = {
        .range = {.start = start, .len = size},
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    if (ioctl(st->uffd, UFFDIO_REGISTER, &reg) == 0) {
        if (reg.ioctls & ((uint64_t)1 << _UFFDIO_WRITEPROTECT))
            return true;
        errno = ENOTSUP;
    }
    int err = errno;
    if (uffd_vanished_error(err)) {
        st->vanished++;
        tm_log_debug("uffd sampler: arena %u range %#lx+%zu gone while "
                     "registering: errno %d", id, (unsigned long)start, size,
                     err);
    } else if (!st->warned_register) {
        st->warned_register = true;
        tm_log_warn("uffd sampler: registering arena %u range %#lx+%zu on fd "
                    "%d failed: errno %d%s (reported once)", id,
                    (unsigned long)start, size, st->uffd, err,
                    err == EBUSY ? " (another userfaultfd owns it)" : "");
    }
    return false;
}

/* The walk's position: pages seen so far over all arenas, and the stride
 * and offset that pick every S-th of them. */
typedef struct uffd_walk {
    uint64_t seen, stride, offset;
} uffd_walk_t;

static void uffd_protect_range(uffd_state_t *st, unsigned id,
                               const extent_range_t *r, uffd_walk_t *w)
{
    uint64_t npages = r->size / st->page;
    /* first k with (seen + k) % stride == offset */
    uint64_t k = (w->offset + w->stride - w->seen % w->stride) % w->stride;
    w->seen += npages;
    for (; k < npages; k += w->stride) {
        if (st->npages == st->cap) {
            if (!st->warned_full) {
                st->warned_full = true;
                tm_log_debug("uffd sampler: arenas grew during the walk; "
                             "pages past %zu skipped", st->cap);
            }
            return;
        }
        uintptr_t page = r->start + (uintptr_t)k * st->page;
        if (uffd_protect(st->uffd, page, st->page, true) == 0) {
            st->pages[st->npages++] = page;
        } else if (uffd_vanished_error(errno)) {
            st->vanished++;
            tm_log_debug("uffd sampler: arena %u page %#lx gone while "
                         "protecting: errno %d", id, (unsigned long)page,
                         errno);
        } else if (!st->warned_protect) {
            st->warned_protect = true;
            tm_log_warn("uffd sampler: protecting arena %u page %#lx on fd "
                        "%d failed: errno %d (reported once)", id,
                        (unsigned long)page, st->uffd, errno);
        }
    }
}

/* Register and protect one arena.  Its hook lock keeps its extents mapped
 * meanwhile. */
static void uffd_protect_arena(uffd_state_t *st, tm_arena_t *a,
                               uffd_walk_t *w)
{
    pthread_mutex_lock(&a->hooked.lock);
    size_t count, bytes;
    extent_range_t *ranges = arena_ranges(a, &count, &bytes);
    if (ranges != NULL) {
        for (size_t i = 0; i < count; i++) {
            if (uffd_register(st, a->hooked.id, ranges[i].start,
                              ranges[i].size))
                uffd_protect_range(st, a->hooked.id, &ranges[i], w);
            else
                w->seen += ranges[i].size / st->page;
        }
        tm_meta_free(ranges, bytes);
    }
    pthread_mutex_unlock(&a->hooked.lock);
}

static void uffd_collect(sampler_t *s, uint64_t t_end_ns)
{
    (void)t_end_ns; /* samples are delivered as the faults happen */
    uffd_state_t *st = s->state;
    if (st == NULL)
        return;
    uffd_unprotect_previous(st);
    arena_walk_begin();
    uint64_t total = uffd_total_pages(st);
    uffd_walk_t w = {.seen = 0, .stride = total / st->budget};
    if (w.stride == 0)
        w.stride = 1;
    if (w.stride > UINT32_MAX)
        w.stride = UINT32_MAX;
    w.offset = st->round++ % w.stride;
    atomic_store_explicit(&st->weight, (uint32_t)w.stride,
                          memory_order_relaxed);
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = tm_arena_by_id(id);
        if (a != NULL)
            uffd_protect_arena(st, a, &w);
    }
    arena_walk_end();
}

/* ---------------------------------------------------------------- close */

/* Drop every arena's registration, so no write can fault on this uffd any
 * more even if a copy of the descriptor lives on (a fork child holds one
 * until it exits or execs). */
static void uffd_unregister_all(uffd_state_t *st)
{
    arena_walk_begin();
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = tm_arena_by_id(id);
        if (a == NULL)
            continue;
        pthread_mutex_lock(&a->hooked.lock);
        size_t count, bytes;
        extent_range_t *ranges = arena_ranges(a, &count, &bytes);
        for (size_t i = 0; ranges != NULL && i < count; i++) {
            struct uffdio_range r = {.start = ranges[i].start,
                                     .len = ranges[i].size};
            if (ioctl(st->uffd, UFFDIO_UNREGISTER, &r) != 0 &&
                !uffd_vanished_error(errno))
                tm_log_warn("uffd sampler: unregistering arena %u range "
                            "%#lx+%zu failed: errno %d", id,
                            (unsigned long)r.start, ranges[i].size, errno);
        }
        if (ranges != NULL)
            tm_meta_free(ranges, bytes);
        pthread_mutex_unlock(&a->hooked.lock);
    }
    arena_walk_end();
}

static void uffd_close(sampler_t *s)
{
    uffd_state_t *st = s->state;
    if (st == NULL)
        return;
    /* The service thread still runs through all of this, serving (or, once
     * a range is unregistered, waking) any writer that faults meanwhile. */
    uffd_unprotect_previous(st);
    uffd_unregister_all(st);
    uffd_service_stop(st);
    tm_log_info("uffd sampler: %llu write faults served, %llu ioctls on "
                "vanished ranges",
                (unsigned long long)atomic_load(&st->faults),
                (unsigned long long)st->vanished);
    /* Closing the last reference wakes any writer still waiting. */
    uffd_state_free(st);
    s->state = NULL;
}

/* A fork child holds copies of the parent's descriptors and no service
 * thread.  Closing its copies only drops references: the parent's
 * registrations and protections are untouched, and the parent's close
 * unregisters everything even while this child lives on. */
static void uffd_fork_child(sampler_t *s)
{
    uffd_state_t *st = s->state;
    if (st == NULL)
        return;
    close(st->uffd);
    close(st->stop_fd);
    s->state = NULL; /* its memory is the parent's copy; left to exit */
}

const sampler_ops_t sampler_uffd_ops = {
    .open = uffd_open,
    .collect = uffd_collect,
    .done = NULL,
    .close = uffd_close,
    .fork_child = uffd_fork_child,
};
