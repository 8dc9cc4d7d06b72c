/*
 * invariant.c -- the thread state debug builds check rules against.
 *
 * Comments state rules such as "caller holds the arena mutex" or "profiling
 * thread only"; in --enable-debug builds these are checked (mutex_*,
 * debug_assert_role in hooks.h).  This file keeps what those checks compare
 * with: a token naming the calling thread, and the thread's role.  Release
 * builds compile none of it.
 */
#include "config.h"

#include "base.h"

#ifdef TM_DEBUG

/* initial-exec, as the arena table's walk flag: these are read on every
 * lock and unlock, and the library is loaded at start-up, not dlopen'ed. */
static __thread char thread_marker __attribute__((tls_model("initial-exec")));
static __thread thread_role_t thread_role
    __attribute__((tls_model("initial-exec")));

/* The address of a thread-local byte: non-zero, and no two live threads
 * share it (pthread_self is not guaranteed to be an integer). */
uintptr_t thread_token(void) { return (uintptr_t)&thread_marker; }

void thread_set_role(thread_role_t role) { thread_role = role; }

thread_role_t thread_role_current(void) { return thread_role; }

#else
/* ISO C wants a translation unit to declare something. */
typedef int invariant_release_build_t;
#endif
