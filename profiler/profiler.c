/*
 * profiler.c -- the profiling thread: timer, intervals, lifecycle.
 * (Which sampler it runs: sampler_choose.c.)
 *
 * One thread per process.  A timerfd wakes it once per interval; it sleeps
 * in poll() between wake-ups, so it costs nothing while idle and never
 * spins.  No signal is involved: the thread is created with every signal
 * blocked, installs no handler and arms no timer signal, so the
 * application's signals are its own.
 *
 * Each wake-up closes one interval: the sampler delivers what it saw, a
 * residency pass runs every N intervals, attribution turns the counters
 * into rows, the writer appends them to the profile, and the interval hook
 * (the policy, wired in by the library's start-up) gets them.
 *
 * Stopping (profiler_stop, also run at exit) wakes the thread through an
 * eventfd; the thread closes the last, partial interval, and the stopper
 * finishes the profile file, which renames it into place.
 *
 * Descriptors: the timerfd and the eventfd are taken with fd_own (high
 * numbers) and checked once per wake-up; the thread also wakes at least
 * once a second (wake_timeout_ms), so a program that closed them (closefrom)
 * cannot leave it asleep on files nobody will signal.  When any descriptor
 * of the profiler is lost (prof_fd_lost) the thread stops the sampler and
 * leaves the profile .partial: see doc/profiler.md, "Descriptors".
 *
 * fork: POSIX allows a forked child of a threaded program only async-signal-
 * safe calls until it execs, and starting a thread is not one of them.  So
 * the profiler is disabled in a forked child: the child drops its copies of
 * the profiler's descriptors, writes no profile, and the parent's profile
 * carries on untouched.  A child that execs starts afresh.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "profiler_internal.h"

typedef struct profiler {
    pthread_mutex_t lock;    /* start, stop and fork take turns */
    _Atomic bool running;
    bool thread_started;
    pid_t pid;               /* the process that started it */
    pthread_t thread;
    owned_fd_t timer, stop; /* the thread's wake-ups */
    _Atomic bool stop_asked;   /* set by profiler_stop before it wakes us */
    prof_options_t opts;
    sampler_t sampler;
    bool sampling;           /* sampler is open */
    bool wake_off;           /* its wake-up descriptor misbehaved */
    attrib_t *attrib;
    prof_writer_t *writer;
    bool write_failed;       /* logged once */
    char path[PROF_PATH_MAX];
    char sampler_name[32];
    uint64_t t0_ns;          /* CLOCK_MONOTONIC at start */
    uint64_t t_last;         /* end of the last interval, profiler clock */
    uint64_t intervals;
    prof_interval_fn hook;
    void *hook_ctx;
} profiler_t;

static profiler_t prof = {.lock = PTHREAD_MUTEX_INITIALIZER,
                          .timer = {.fd = -1},
                          .stop = {.fd = -1}};

static pthread_once_t process_hooks_once = PTHREAD_ONCE_INIT;
/* Set on the profiling thread: its own calls to stop (an interval hook
 * that calls exit) must neither take the lock nor join themselves. */
static __thread bool on_profiler_thread;

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void profiler_set_interval_hook(prof_interval_fn fn, void *ctx)
{
    pthread_mutex_lock(&prof.lock);
    prof.hook = fn;
    prof.hook_ctx = ctx;
    pthread_mutex_unlock(&prof.lock);
}

bool profiler_running(void)
{
    return atomic_load(&prof.running) && prof.pid == getpid();
}

const char *profiler_sampler_name(void)
{
    return prof.running ? prof.sampler_name : "";
}

const char *profiler_profile_path(void)
{
    return prof.running ? prof.path : "";
}

/* ---------------------------------------------------------------- lost fds */

/* Are the thread's own descriptors still ours?  Reports the first lost. */
static bool loop_fds_ours(void)
{
    if (!fd_is_ours(&prof.stop)) {
        prof_fd_lost(prof.stop.fd, "the profiling thread's stop eventfd");
        return false;
    }
    if (!fd_is_ours(&prof.timer)) {
        prof_fd_lost(prof.timer.fd, "the profiling thread's timerfd");
        return false;
    }
    return true;
}

/* The longest the thread sleeps between two looks at its descriptors and
 * the stop flag: two intervals, at most 1 s.  A poll on a number the
 * program closed sleeps on the old file, which nobody signals any more. */
static int wake_timeout_ms(void)
{
    uint64_t ms = prof.opts.interval_ns / 1000000 * 2;
    return ms > 1000 ? 1000 : (int)ms;
}

/* ---------------------------------------------------------------- intervals */

/* Close the interval ending at t_end.  Returns whether it was the last: it
 * was asked to be, or a trace-clock sampler has nothing left. */
static bool interval_close(uint64_t t_end, bool last)
{
    debug_assert_role(TM_ROLE_PROFILER);
    if (prof.sampling) {
        prof.sampler.ops->collect(&prof.sampler, t_end);
        if (prof.opts.trace_clock && prof.sampler.ops->done != NULL &&
            prof.sampler.ops->done(&prof.sampler))
            last = true;
    }
    unsigned every = prof.opts.residency_every;
    /* intervals 1, 1 + every, ...; and the last, so a profile always ends
     * with where the memory was */
    if (every != 0 && (prof.intervals % every == 0 || last))
        residency_sample_all(prof.attrib, prof.opts.residency_pages);
    const prof_interval_t *closed =
        attrib_close(prof.attrib, prof.t_last, t_end);
    prof.t_last = t_end;
    prof.intervals++;
    if (closed == NULL)
        return last;
    /* Attribution does not know the sampler: the interval says what one
     * sample stands for here, so the hook need not ask the profiler. */
    prof_interval_t stamped = *closed;
    stamped.accesses_per_sample =
        prof.sampling ? prof.sampler.accesses_per_sample : 0.0;
    const prof_interval_t *iv = &stamped;
    if (prof.writer != NULL && profile_writer_interval(prof.writer, iv) != 0 &&
        !prof.write_failed && !prof_fd_any_lost()) {
        prof.write_failed = true;
        log_error("profiler: writing interval %llu to %s failed: errno "
                     "%d; later intervals may be missing",
                     (unsigned long long)iv->seq, prof.path, errno);
    }
    if (prof.hook != NULL)
        prof.hook(iv, prof.hook_ctx);
    return last;
}

/* Should the thread stop?  Asked to, or a descriptor is lost. */
static bool must_stop(void)
{
    return atomic_load(&prof.stop_asked) || !loop_fds_ours() ||
           prof_fd_any_lost();
}

/* Wait up to timeout_ms for a stop; true when profiling must end. */
static bool stop_wait(int timeout_ms)
{
    bool woken = false;
    if (!atomic_load(&prof.stop_asked) && fd_is_ours(&prof.stop)) {
        struct pollfd p = {.fd = prof.stop.fd, .events = POLLIN};
        woken = poll(&p, 1, timeout_ms) > 0;
    }
    return must_stop() || woken;
}

/* One timer wake-up: consume the expiries; false if the timer failed. */
static bool timer_consume(void)
{
    uint64_t expiries;
    if (read(prof.timer.fd, &expiries, sizeof expiries) < 0 &&
        errno != EAGAIN && errno != EINTR) {
        log_error("profiler: read of timer fd %d failed: errno %d; "
                     "profiling stops", prof.timer.fd, errno);
        return false;
    }
    return true;
}

/* The sampler's wake-up descriptor, or -1: none, or given up on. */
static int sampler_wake_fd(void)
{
    const sampler_ops_t *ops = prof.sampler.ops;
    if (!prof.sampling || prof.wake_off || ops->wake_fd == NULL ||
        ops->drain == NULL)
        return -1;
    return ops->wake_fd(&prof.sampler);
}

/* The sampler's descriptor woke us: drain.  An error or hang-up there
 * would wake every poll from now on, so the sampler is then drained at
 * interval ends only. */
static void sampler_woken(short revents)
{
    prof.sampler.ops->drain(&prof.sampler);
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
        prof.wake_off = true;
        log_info("profiler: the %s sampler's wake-up descriptor reports "
                 "poll events %#x; its data is now read at interval ends "
                 "only", prof.sampler.name, (unsigned)revents);
    }
}

/* Wall clock: one interval per timer expiry until stopped; in between,
 * the sampler is drained whenever it asks (perf rings fill faster than an
 * interval at high sample rates). */
static void run_wall_clock(void)
{
    int timeout = wake_timeout_ms();
    for (;;) {
        int wfd = sampler_wake_fd();
        struct pollfd p[3] = {{.fd = prof.timer.fd, .events = POLLIN},
                              {.fd = prof.stop.fd, .events = POLLIN},
                              {.fd = wfd, .events = POLLIN}};
        int n = poll(p, wfd >= 0 ? 3 : 2, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("profiler: poll on timer fd %d failed: errno %d; "
                         "profiling stops", prof.timer.fd, errno);
            return;
        }
        /* before anything touches a descriptor: still ours? */
        if (must_stop())
            return;
        if (n <= 0)
            continue; /* EINTR, or the timeout: looked, all well */
        if (p[1].revents != 0)
            return;
        if (p[0].revents & ~POLLIN) {
            log_error("profiler: timer fd %d reports poll events %#x; "
                         "profiling stops", prof.timer.fd, p[0].revents);
            return;
        }
        if (wfd >= 0 && p[2].revents != 0)
            sampler_woken(p[2].revents);
        if (p[0].revents & POLLIN) {
            if (!timer_consume())
                return;
            interval_close(monotonic_ns() - prof.t0_ns, false);
        }
    }
}

/* Trace clock: intervals back to back in trace time, until the trace is
 * exhausted; then wait to be stopped. */
static void run_trace_clock(void)
{
    for (uint64_t k = 1;; k++) {
        if (stop_wait(0)) {
            interval_close(k * prof.opts.interval_ns, true);
            return;
        }
        if (interval_close(k * prof.opts.interval_ns, false))
            break;
    }
    while (!stop_wait(wake_timeout_ms()))
        ;
}

/* A descriptor was lost: stop sampling now rather than at exit (the
 * program may run for hours), and give back what is still ours.  The
 * loop's own two stay for profiler_stop, which checks them.  Under the
 * lock, so that a fork never copies a half-closed sampler; if a stop or a
 * fork holds it, the stop's teardown does all this instead (profiler_stop
 * holds it while it joins us: never wait for it here). */
static void stop_after_loss(void)
{
    debug_assert_role(TM_ROLE_PROFILER);
    if (pthread_mutex_trylock(&prof.lock) != 0)
        return;
    if (prof.sampling) {
        prof.sampler.ops->close(&prof.sampler);
        prof.sampling = false;
    }
    if (prof.writer != NULL) {
        profile_writer_abandon(prof.writer); /* stays .partial */
        prof.writer = NULL;
    }
    struct itimerspec off = {{0, 0}, {0, 0}};
    if (fd_is_ours(&prof.timer) &&
        timerfd_settime(prof.timer.fd, 0, &off, NULL) != 0)
        log_debug("profiler: disarming timer fd %d failed: errno %d",
                     prof.timer.fd, errno);
    pthread_mutex_unlock(&prof.lock);
}

static void *profiler_main(void *arg)
{
    (void)arg;
    on_profiler_thread = true;
    thread_set_role(TM_ROLE_PROFILER);
    if (prof.opts.trace_clock && prof.sampling) {
        run_trace_clock();
    } else {
        run_wall_clock();
        uint64_t now = monotonic_ns() - prof.t0_ns;
        interval_close(now > prof.t_last ? now : prof.t_last, true);
    }
    if (prof_fd_any_lost())
        stop_after_loss();
    return NULL;
}

/* ---------------------------------------------------------------- start/stop */

static void header_fill(prof_header_t *h)
{
    memset(h, 0, sizeof *h);
    ssize_t n = readlink("/proc/self/exe", h->exe, sizeof h->exe - 1);
    h->exe[n > 0 ? n : 0] = '\0';
    h->pid = (long)getpid();
    h->rank = runtime_options.rank;
    memcpy(h->sampler, prof.sampler_name, sizeof h->sampler);
    if (prof.sampling)
        memcpy(h->sampler_detail, prof.sampler.detail,
               sizeof h->sampler_detail);
    h->interval_ns = prof.opts.interval_ns;
    h->halflife = prof.opts.halflife;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->start_unix_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    const tm_topology_t *t = topology_get();
    for (unsigned i = 0; i < t->nnodes && i < TM_MAX_NODES; i++) {
        prof_node_t *node = &h->nodes[h->nnodes++];
        node->id = t->nodes[i].id;
        node->capacity = t->nodes[i].capacity_bytes;
        for (unsigned k = 0; k < t->ntiers; k++)
            if (t->tiers[k].nodes & (1ull << node->id))
                node->tier = k;
    }
}

/* Closes only what is still ours (async-signal-safe: the fork child). */
static void fds_close(void)
{
    (void)fd_release(&prof.timer);
    (void)fd_release(&prof.stop);
}

static int fds_open(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0 || fd_own(fd, &prof.stop) < 0) {
        log_error("profiler: eventfd failed: errno %d", errno);
        return -1;
    }
    fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0 || fd_own(fd, &prof.timer) < 0) {
        log_error("profiler: timerfd_create failed: errno %d", errno);
        return -1;
    }
    uint64_t ns = prof.opts.interval_ns;
    struct itimerspec its = {
        .it_interval = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)},
        .it_value = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)}};
    /* the trace clock needs no timer, but only with a sampler that runs
     * it: without one the thread falls back to the wall clock */
    bool trace = prof.opts.trace_clock && prof.sampling;
    if (!trace && timerfd_settime(prof.timer.fd, 0, &its, NULL) != 0) {
        log_error("profiler: timerfd_settime(%llu ns) failed: errno %d",
                     (unsigned long long)ns, errno);
        return -1;
    }
    return 0;
}

/* The thread starts with every signal blocked (signals meant for the
 * application are never delivered to it) and a small stack: own_thread.c. */
static int thread_start(void)
{
    int rc = own_thread_start(&prof.thread, profiler_main, NULL);
    if (rc != 0) {
        log_error("profiler: pthread_create failed: errno %d", rc);
        errno = rc;
        return -1;
    }
    pthread_setname_np(prof.thread, "tiermem-prof");
    prof.thread_started = true;
    return 0;
}

/* Undo a start that failed part-way, or finish a stopped one. */
static void teardown(bool finish)
{
    if (prof.sampling) {
        prof.sampler.ops->close(&prof.sampler);
        prof.sampling = false;
    }
    if (prof.writer != NULL) {
        if (finish && !prof_fd_any_lost()) {
            if (prof.sampler.has_totals)
                profile_writer_set_totals(prof.writer, &prof.sampler.totals);
            if (profile_writer_finish(prof.writer) != 0)
                log_error("profiler: finishing %s failed: errno %d",
                             prof.path, errno);
            else
                log_info("profiler: profile written to %s", prof.path);
        } else {
            profile_writer_abandon(prof.writer);
        }
        prof.writer = NULL;
    }
    if (prof.attrib != NULL) {
        attrib_delete(prof.attrib);
        prof.attrib = NULL;
    }
    fds_close();
    prof.thread_started = false;
}

static void profiler_at_exit(void)
{
    profiler_stop();
}

/* In a forked child (see the top of this file): forget the parent's
 * profiler without touching what the parent still uses. */
static void profiler_prefork(void)
{
    pthread_mutex_lock(&prof.lock);
}

static void profiler_postfork_parent(void)
{
    pthread_mutex_unlock(&prof.lock);
}

/* prefork took the lock, so start and stop are never half done here. */
static void profiler_fork_child(void)
{
    if (!prof.running) {
        pthread_mutex_unlock(&prof.lock);
        return;
    }
    prof.running = false;
    prof.thread_started = false;
    if (prof.sampling && prof.sampler.ops->fork_child != NULL)
        prof.sampler.ops->fork_child(&prof.sampler);
    prof.sampling = false;
    if (prof.writer != NULL)
        profile_writer_abandon(prof.writer);
    prof.writer = NULL;
    prof.attrib = NULL; /* the parent's; left to the child's exit */
    fds_close();
    pthread_mutex_unlock(&prof.lock);
}

static void process_hooks_install(void)
{
    if (atexit(profiler_at_exit) != 0)
        log_error("profiler: atexit failed; the last interval will not "
                     "be flushed at exit");
    /* Registered after the runtime's handlers, so this prefork runs before
     * theirs: a fork never waits for the profiler's lock while holding
     * the runtime's. */
    int rc = pthread_atfork(profiler_prefork, profiler_postfork_parent,
                            profiler_fork_child);
    if (rc != 0)
        log_error("profiler: pthread_atfork failed: errno %d", rc);
}

/* Settings that reach profiler_start through the API rather than the
 * environment are checked here too: a zero interval would disarm the
 * timer, a trace clock without a trace would never end. */
static bool options_valid(const prof_options_t *o)
{
    const char *why = NULL;
    if (o->interval_ns < 1000000ull)
        why = "an interval under 1 ms";
    else if (!(o->halflife > 0))
        why = "a half-life that is not positive";
    else if (o->trace_clock && o->sampler != PROF_SAMPLER_REPLAY)
        why = "the trace clock without the replay sampler";
    else if (o->sampler == PROF_SAMPLER_REPLAY && o->replay[0] == '\0')
        why = "the replay sampler without a trace file";
    if (why != NULL)
        log_error("profiler: not started: %s", why);
    return why == NULL;
}

static int start_locked(const prof_options_t *o)
{
    if (!options_valid(o)) {
        errno = EINVAL;
        return -1;
    }
    prof.opts = *o;
    prof.intervals = prof.t_last = 0;
    prof.write_failed = false;
    atomic_store(&prof.stop_asked, false);
    prof_fd_reset();
    /* its two, and the profile's */
    if (!prof_fd_room(o->no_file ? 2 : 3))
        return -1;
    prof.attrib = attrib_new(o->halflife);
    if (prof.attrib == NULL) {
        log_error("profiler: no memory for attribution");
        errno = ENOMEM;
        return -1;
    }
    prof.wake_off = false;
    prof.sampling = prof_sampler_choose(o, attrib_sink(prof.attrib),
                                        &prof.sampler, prof.sampler_name,
                                        sizeof prof.sampler_name);
    if (o->no_file) { /* the online policy alone: intervals, no profile */
        prof.path[0] = '\0';
        return fds_open() == 0 && prof_fd_room(0) ? thread_start() : -1;
    }
    if (!profile_name_choose(o, prof.path, sizeof prof.path)) {
        log_error("profiler: the profile path is too long");
        errno = ENAMETOOLONG;
        return -1;
    }
    prof_header_t *h = meta_alloc(sizeof *h);
    if (h == NULL) {
        errno = ENOMEM;
        return -1;
    }
    header_fill(h);
    prof.writer = profile_name_open_unique(prof.path, sizeof prof.path, h);
    meta_free(h, sizeof *h);
    if (prof.writer == NULL) {
        log_error("profiler: cannot create %s.partial: errno %d",
                     prof.path, errno);
        return -1;
    }
    if (fds_open() != 0 || !prof_fd_room(0))
        return -1;
    prof.t0_ns = monotonic_ns();
    return thread_start();
}

int profiler_start(const prof_options_t *o)
{
    runtime_init();
    (void)sites_ready();
    pthread_once(&process_hooks_once, process_hooks_install);
    pthread_mutex_lock(&prof.lock);
    if (prof.running) {
        pthread_mutex_unlock(&prof.lock);
        errno = EBUSY;
        return -1;
    }
    int rc = start_locked(o);
    if (rc != 0) {
        int e = errno;
        bool wrote = prof.writer != NULL;
        teardown(false);
        if (wrote) { /* a header-only file from a start that failed */
            char partial[sizeof prof.path + 16];
            snprintf(partial, sizeof partial, "%s.partial", prof.path);
            if (unlink(partial) != 0)
                log_warn("profiler: removing %s failed: errno %d",
                            partial, errno);
        }
        errno = e;
    } else {
        prof.pid = getpid();
        prof.running = true;
        log_info("profiler: started, sampler %s, interval %llu ms, "
                    "profile %s", prof.sampler_name,
                    (unsigned long long)(o->interval_ns / 1000000),
                    o->no_file ? "none" : prof.path);
    }
    pthread_mutex_unlock(&prof.lock);
    return rc;
}

void profiler_stop(void)
{
    /* exit() called from the interval hook: the thread cannot join itself
     * (and the atexit handler of another thread may hold the lock while
     * joining it); the profile stays .partial, every interval readable */
    if (on_profiler_thread)
        return;
    /* a fork or vfork child (exec's hook runs there too): not ours */
    if (!atomic_load(&prof.running) || prof.pid != getpid())
        return;
    pthread_mutex_lock(&prof.lock);
    if (!prof.running || prof.pid != getpid()) {
        pthread_mutex_unlock(&prof.lock);
        return;
    }
    /* The flag alone stops the thread within wake_timeout_ms; the eventfd,
     * when it is still ours, makes it at once. */
    atomic_store(&prof.stop_asked, true);
    if (fd_is_ours(&prof.stop)) {
        uint64_t one = 1;
        ssize_t n;
        while ((n = write(prof.stop.fd, &one, sizeof one)) < 0 &&
               errno == EINTR)
            ;
        if (n != (ssize_t)sizeof one)
            log_debug("profiler: waking the thread (eventfd %d) failed: "
                         "errno %d; it sees the stop flag within %d ms",
                         prof.stop.fd, errno, wake_timeout_ms());
    }
    pthread_join(prof.thread, NULL);
    teardown(true);
    prof.running = false;
    pthread_mutex_unlock(&prof.lock);
}

/* Before exec: as profiler_stop, but exec may be called from a signal
 * handler that interrupted a start or stop, so never wait for the lock. */
void profiler_before_exec(void)
{
    if (on_profiler_thread || !atomic_load(&prof.running) ||
        prof.pid != getpid())
        return;
    if (pthread_mutex_trylock(&prof.lock) != 0)
        return; /* the profile stays .partial, every interval readable */
    pthread_mutex_unlock(&prof.lock);
    profiler_stop();
}
