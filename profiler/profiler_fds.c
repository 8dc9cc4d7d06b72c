/*
 * profiler_fds.c -- the profiler's descriptors in someone else's process:
 * the one warning when the program took one of them away, and the
 * RLIMIT_NOFILE rule that decides whether the profiler may hold any.
 *
 * A program may close every descriptor it did not open (closefrom, a close
 * loop) and open files of its own at those numbers.  Every part of the
 * profiler checks its descriptors with fd_is_ours before using them;
 * the first that finds one lost reports it here.  From then on the whole
 * run stops: the profiling thread sees prof_fd_any_lost() at its next
 * wake-up, closes the sampler, and leaves the profile .partial.  One
 * warning per run, whoever reports first and however many are lost.
 *
 * The limit: the profiler holds 3 descriptors (timerfd, eventfd, profile),
 * the uffd sampler 4 more, the perf sampler one per thread and CPU.  A
 * program at its RLIMIT_NOFILE would see EMFILE because of us, so the
 * profiler starts only if PROF_FD_MARGIN numbers stay free for the program
 * once its own are open.
 */
#include "config.h"

#include <errno.h>

#include "profiler.h"

static _Atomic bool fd_lost;

void prof_fd_reset(void)
{
    atomic_store(&fd_lost, false);
}

void prof_fd_lost(int fd, const char *what)
{
    if (atomic_exchange(&fd_lost, true))
        return;
    log_warn("profiler: %s (descriptor %d) is no longer ours: the program "
                "closed it (closefrom or a close loop) or opened something "
                "else at its number; profiling stops without touching it "
                "again, and the profile stays .partial", what, fd);
}

bool prof_fd_any_lost(void)
{
    return atomic_load(&fd_lost);
}

bool prof_fd_room(long ours)
{
    long free_fds = fd_free_count();
    if (free_fds - ours >= PROF_FD_MARGIN)
        return true;
    if (ours > 0)
        log_warn("profiler: not started: RLIMIT_NOFILE leaves %ld free "
                    "descriptor(s); the profiler needs %ld and leaves at "
                    "least %d to the program (raise ulimit -n)", free_fds,
                    ours, PROF_FD_MARGIN);
    else
        log_warn("profiler: not started: with the profiler's descriptors "
                    "open, RLIMIT_NOFILE would leave the program %ld free, "
                    "fewer than %d (raise ulimit -n)", free_fds,
                    PROF_FD_MARGIN);
    errno = EMFILE;
    return false;
}
