/*
 * own_thread.c -- starting one of tiermem's own threads (the profiling
 * thread, the uffd fault service) inside somebody else's process.
 *
 * Two things differ from a plain pthread_create:
 *   - every signal is blocked in the new thread, so the application's
 *     signals land on its own threads, never on ours (the mask is set
 *     around the create, which the new thread inherits);
 *   - a 1 MiB stack instead of the default (8 MiB, from the stack rlimit).
 *     Under transparent huge pages "always" (RHEL's default), the first
 *     touch of a large stack faults in a whole 2 MiB page -- on the CPU's
 *     node, the fast tier tiermem is there to keep for hot data: measured
 *     in the guest benchmark, 544 resident pages for a stack that uses a
 *     few dozen.  A 1 MiB mapping holds no aligned 2 MiB range, so it can
 *     never be backed by one.  Our threads parse, log and decide with
 *     small frames: after a profiled run under the online policy (refs or
 *     uffd sampler, profile and site table written), the profiling
 *     thread's stack had 20 KiB resident.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>

#include "base.h"

#define OWN_THREAD_STACK ((size_t)1 << 20)

int own_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_attr_setstacksize(&attr, OWN_THREAD_STACK);
    if (rc != 0) {
        /* a libc that refuses the size: its default, with huge pages */
        log_debug("own thread: pthread_attr_setstacksize(%zu) failed: "
                  "errno %d", OWN_THREAD_STACK, rc);
    }
    sigset_t all, old;
    sigfillset(&all);
    rc = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (rc == 0) {
        rc = pthread_create(thread, &attr, fn, arg);
        int mrc = pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (mrc != 0)
            log_error("own thread: restoring the signal mask failed: "
                      "errno %d", mrc);
    }
    pthread_attr_destroy(&attr);
    return rc;
}
