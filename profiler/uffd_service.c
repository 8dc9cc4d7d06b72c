/*
 * uffd_service.c -- the uffd sampler's fault-service thread: it turns
 * write faults into samples and releases the writers.  With it, everything
 * it touches: the ioctls it issues, the lock-free error recording, the
 * round drain handshake with collect, and start/stop.
 *
 * Safety.  A writer blocked on a fault may hold any lock (jemalloc's, an
 * arena's hook lock, libc's), and may be blocked in read(2) from the pipe
 * our log goes to.  So the service thread takes no lock, never allocates,
 * never logs and never writes into arena memory: it only polls, reads
 * fault messages into its stack, issues ioctls and writes an eventfd.  Its
 * errors are recorded in atomics and logged by the profiling thread at the
 * next collect or close.  Its worst case per fault: its share of one
 * read(2) of up to 64 messages, one sink call (lock-free), one
 * UFFDIO_WRITEPROTECT (mmap read lock, one PTE) and, only if that fails,
 * one UFFDIO_WAKE.  After 8 consecutive poll/read failures it gives up
 * (recorded); collect then protects nothing more.  close() un-protects,
 * unregisters every arena range, stops the service thread after it drained
 * every pending fault, and closes the descriptor, which wakes anything
 * left: no thread of the program can stay blocked on the sampler.
 *
 * Descriptors.  The program may close ours (closefrom) while the thread
 * sleeps in poll, and poll then sleeps on the old files, which nobody will
 * ever signal: so it wakes at least every UFFD_SERVICE_POLL_MS, and after
 * every wake-up it checks its four descriptors before any read, write or
 * ioctl.  A lost userfaultfd ends the thread at once, untouched: once our
 * poll lets go of the old file, the kernel releases it, which drops its
 * registrations and write protection and wakes every writer waiting on it
 * (tests/unit/test_profiler_fds.c checks that the pages stay writable and
 * nobody hangs).  A lost eventfd is left out of use; collect sees the loss
 * and shuts the sampler down.
 */
#include "config.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "uffd_internal.h"

/* Fault messages read with one read(2) (32 bytes each, on the stack). */
#define UFFD_MSG_BATCH 64
/* Consecutive poll/read failures after which the service thread stops. */
#define UFFD_SERVICE_MAX_ERRORS 8
/* How long collect waits for the service thread to drain old messages. */
#define UFFD_SYNC_TIMEOUT_MS 1000
/* The longest the service thread sleeps before it looks at its descriptors
 * and the stop flag again. */
#define UFFD_SERVICE_POLL_MS 200

/* What each UFFD_ERR_ kind means, for the log. */
static const char *const uffd_err_what[UFFD_ERR_KINDS] = {
    "poll on the userfaultfd failed or reported an error",
    "reading fault messages failed",
    "a writer could not be released (unprotect and wake both failed)",
    ("the fault-service thread gave up after repeated errors: sampling "
     "stopped"),
};

/* ---------------------------------------------------------------- ioctls */

int uffd_protect(int uffd, uintptr_t start, size_t len, bool on)
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
bool uffd_vanished_error(int err)
{
    return err == ENOENT || err == EINVAL || err == ENOMEM || err == EAGAIN;
}

/* ---------------------------------------------------------------- errors */

/* Service thread: remember an error for the profiling thread to log. */
static void uffd_record_error(uffd_state_t *st, int kind, int err)
{
    debug_assert_role(TM_ROLE_UFFD_SERVICE);
    int zero = 0;
    atomic_compare_exchange_strong(&st->err_first[kind], &zero, err ? err : -1);
    atomic_fetch_add(&st->err_count[kind], 1);
}

/* Profiling thread: log what the service thread recorded since the last
 * report (a warning the first time per kind, debug after). */
void uffd_report_errors(uffd_state_t *st)
{
    /* the service thread never logs: it must not wait on anything */
    debug_assert_rule(thread_role_current() != TM_ROLE_UFFD_SERVICE,
                   "the uffd service thread never logs");
    for (int k = 0; k < UFFD_ERR_KINDS; k++) {
        uint64_t n = atomic_load(&st->err_count[k]);
        if (n == st->err_logged[k])
            continue;
        log_at(st->err_logged[k] ? TM_LOG_DEBUG : TM_LOG_WARN,
               "uffd sampler: fd %d: %s: %llu times (%llu in all), first "
               "errno %d", st->uffd.fd, uffd_err_what[k],
               (unsigned long long)(n - st->err_logged[k]),
               (unsigned long long)n, atomic_load(&st->err_first[k]));
        st->err_logged[k] = n;
    }
}

/* ---------------------------------------------------------------- service */

/* One write fault: count it, then let the writer go.  Un-protecting wakes
 * the writer; if the page is no longer registered (its range was
 * unregistered by close or unmapped), wake the writer explicitly. */
static void uffd_serve_fault(uffd_state_t *st, const struct uffd_msg *m)
{
    debug_assert_role(TM_ROLE_UFFD_SERVICE);
    uintptr_t page = (uintptr_t)m->arg.pagefault.address & ~(st->page - 1);
    if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
        uint32_t w = atomic_load_explicit(&st->weight, memory_order_relaxed);
        st->sink.sample(st->sink.ctx, page, w);
        atomic_fetch_add_explicit(&st->faults, 1, memory_order_relaxed);
    }
    if (uffd_protect(st->uffd.fd, page, st->page, false) == 0)
        return;
    if (uffd_wake(st->uffd.fd, page, st->page) != 0)
        uffd_record_error(st, UFFD_ERR_RELEASE, errno);
}

/* Read and serve every queued message.  false on a read failure. */
static bool uffd_service_drain(uffd_state_t *st)
{
    struct uffd_msg msg[UFFD_MSG_BATCH];
    for (;;) {
        ssize_t n = read(st->uffd.fd, msg, sizeof msg);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0) { /* a uffd never reaches end of file */
            uffd_record_error(st, UFFD_ERR_READ, n < 0 ? errno : 0);
            return false;
        }
        size_t count = (size_t)n / sizeof msg[0];
        for (size_t i = 0; i < count; i++)
            if (msg[i].event == UFFD_EVENT_PAGEFAULT)
                uffd_serve_fault(st, &msg[i]);
        if (count < UFFD_MSG_BATCH)
            return true;
    }
}

/* Which of its eventfds the service thread may still use. */
typedef struct uffd_usable {
    bool sync, ack, stop;
} uffd_usable_t;

/* After a wake-up, before any read, write or ioctl: are our descriptors
 * still ours?  A lost eventfd is dropped from use; false when the uffd
 * itself is lost.  Either loss is flagged for collect to report (this
 * thread never logs). */
static bool uffd_service_fds_ours(uffd_state_t *st, uffd_usable_t *u)
{
    if (!fd_is_ours(&st->uffd)) {
        atomic_store(&st->fd_lost, true);
        return false;
    }
    const owned_fd_t *own[3] = {&st->sync, &st->ack, &st->stop};
    bool *ok[3] = {&u->sync, &u->ack, &u->stop};
    for (int i = 0; i < 3; i++)
        if (*ok[i] && !fd_is_ours(own[i])) {
            *ok[i] = false;
            atomic_store(&st->fd_lost, true);
        }
    return true;
}

/* A drain request from collect: serve everything queued, then answer. */
static void uffd_service_sync(uffd_state_t *st, const uffd_usable_t *u)
{
    uint64_t v;
    if (read(st->sync.fd, &v, sizeof v) != (ssize_t)sizeof v)
        return; /* nothing requested (EAGAIN) */
    uffd_service_drain(st);
    atomic_store(&st->sync_done, atomic_load(&st->sync_req));
    uint64_t one = 1;
    while (u->ack && write(st->ack.fd, &one, sizeof one) < 0 &&
           errno == EINTR)
        ;
}

/* One poll round; false if it failed (poll, fd state or read).  *stop
 * when the thread must end. */
static bool uffd_service_once(uffd_state_t *st, uffd_usable_t *u, bool *stop)
{
    struct pollfd pfd[3] = {
        {.fd = st->uffd.fd, .events = POLLIN},
        {.fd = u->sync ? st->sync.fd : -1, .events = POLLIN},
        {.fd = u->stop ? st->stop.fd : -1, .events = POLLIN}};
    int n = poll(pfd, 3, UFFD_SERVICE_POLL_MS);
    if (n < 0 && errno != EINTR) {
        uffd_record_error(st, UFFD_ERR_POLL, errno);
        return false;
    }
    if (!uffd_service_fds_ours(st, u)) {
        *stop = true; /* never read or ioctl a uffd that is not ours */
        return true;
    }
    if (atomic_load(&st->stopping)) {
        uffd_service_drain(st);
        *stop = true;
        return true;
    }
    if (n <= 0)
        return true; /* EINTR, or the timeout: looked, all well */
    if (!u->sync)
        pfd[1].revents = 0; /* lost since the poll: not ours to read */
    if (!u->stop)
        pfd[2].revents = 0;
    bool ok = true;
    for (int i = 0; i < 3; i++)
        if (pfd[i].revents & (POLLERR | POLLNVAL | POLLHUP)) {
            uffd_record_error(st, UFFD_ERR_POLL, EBADF);
            ok = false;
        }
    /* Serve first, so stopping never leaves a queued writer behind. */
    if (ok && (pfd[0].revents & POLLIN))
        ok = uffd_service_drain(st);
    if (pfd[1].revents & POLLIN)
        uffd_service_sync(st, u);
    if (pfd[2].revents & POLLIN) {
        uffd_service_drain(st);
        *stop = true;
    }
    return ok;
}

static void *uffd_service_main(void *arg)
{
    uffd_state_t *st = arg;
    thread_set_role(TM_ROLE_UFFD_SERVICE);
    uffd_usable_t usable = {true, true, true};
    bool stop = false;
    for (unsigned failures = 0; !stop;) {
        failures = uffd_service_once(st, &usable, &stop) ? 0 : failures + 1;
        if (failures >= UFFD_SERVICE_MAX_ERRORS && !stop) {
            /* Writers faulting from now on are released by the next
             * collect's un-protect or by close. */
            uffd_record_error(st, UFFD_ERR_GAVE_UP, 0);
            break;
        }
    }
    /* collect stops waiting for drains (a lost uffd ends the thread too) */
    atomic_store(&st->service_dead, true);
    return NULL;
}

/* The service thread starts with every signal blocked (the application's
 * signals must land on its own threads, never on ours) and a small stack:
 * own_thread.c. */
int uffd_service_start(uffd_state_t *st)
{
    int rc = own_thread_start(&st->thread, uffd_service_main, st);
    if (rc != 0) {
        log_warn("uffd sampler: cannot start the fault-service thread: "
                    "errno %d", rc);
        errno = rc;
        return -1;
    }
    st->thread_started = true;
    return 0;
}

/* The thread exits on the stop flag within UFFD_SERVICE_POLL_MS (at once
 * with the stop event), or has exited already: the join cannot hang. */
void uffd_service_stop(uffd_state_t *st)
{
    if (!st->thread_started)
        return;
    /* The flag stops it within UFFD_SERVICE_POLL_MS; the eventfd, when it
     * is still ours, at once. */
    atomic_store(&st->stopping, true);
    uint64_t one = 1;
    while (fd_is_ours(&st->stop) &&
           write(st->stop.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    int rc = pthread_join(st->thread, NULL);
    if (rc != 0)
        log_error("uffd sampler: joining the fault-service thread failed: "
                     "errno %d", rc);
    st->thread_started = false;
}

/* Have the service thread serve every message queued now (they are all
 * from earlier rounds: nothing of this round is protected yet).  false if
 * it did not answer in time: then nothing is protected this round.  The
 * caller (collect) checked that sync and ack are ours. */
bool uffd_service_sync_wait(uffd_state_t *st)
{
    /* waiting for itself would always time out */
    debug_assert_rule(thread_role_current() != TM_ROLE_UFFD_SERVICE,
                   "the uffd service thread does not wait for its own sync");
    atomic_store(&st->sync_req, st->round);
    uint64_t one = 1, v;
    while (write(st->sync.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    for (int waited = 0; waited < UFFD_SYNC_TIMEOUT_MS; waited += 10) {
        if (atomic_load(&st->sync_done) >= st->round) {
            while (read(st->ack.fd, &v, sizeof v) < 0 && errno == EINTR)
                ;
            return true;
        }
        if (atomic_load(&st->service_dead))
            return false;
        struct pollfd p = {.fd = st->ack.fd, .events = POLLIN};
        (void)poll(&p, 1, 10);
        ssize_t stale = read(st->ack.fd, &v, sizeof v); /* earlier answers */
        (void)stale;
    }
    st->sync_timeouts++;
    if (!st->warned_sync) {
        st->warned_sync = true;
        log_warn("uffd sampler: fd %d: the fault-service thread did not "
                    "drain its queue within %d ms; round %llu not sampled "
                    "(reported once)", st->uffd.fd, UFFD_SYNC_TIMEOUT_MS,
                    (unsigned long long)st->round);
    }
    return false;
}
