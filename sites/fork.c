/*
 * fork.c -- keeping tiermem usable in the child of fork().
 *
 * Only the forking thread survives in the child, so any lock another thread
 * held at that moment would stay locked forever: a migration holds its
 * arena's mutex for as long as pages take to move, and the next allocation
 * in the child that needs a new extent would hang.
 *
 * The arena table lock and the tcache registry lock are taken before fork
 * and released after it, so the child gets both tables whole.  That is safe
 * because no thread ever waits for either while holding a jemalloc lock, and
 * our handlers are registered after jemalloc's, so they run first in prepare.
 *
 * The arena mutexes and the metadata lock cannot be taken that way: a hook
 * holds a jemalloc lock while it waits for them, and jemalloc's own prepare
 * handler would then wait for that hook.  The child re-initialises them
 * instead.  Their critical sections leave the data consistent at every
 * point a migration can be (between system calls), and the metadata lock
 * guards a few instructions of list surgery.
 */
#include "config.h"

#include <errno.h>

#include "sites.h"

/* Lock order: sites (site creation makes arenas) before the arena table;
 * the object list and the ledger are leaves. */
static void prefork(void)
{
    sites_prefork();
    objects_prefork();
    ledger_prefork();
    arena_table_prefork();
    tcache_prefork();
}

static void postfork_parent(void)
{
    tcache_postfork_parent();
    arena_table_postfork_parent();
    ledger_postfork_parent();
    objects_postfork_parent();
    sites_postfork_parent();
}

static void postfork_child(void)
{
    meta_fork_child();
    log_fork_child();
    tcache_postfork_child();
    arena_table_postfork_child();
    ledger_postfork_child();
    objects_postfork_child();
    sites_postfork_child();
}

void fork_handlers_install(void)
{
    int rc = pthread_atfork(prefork, postfork_parent, postfork_child);
    if (rc != 0)
        log_error("pthread_atfork failed: error %d; a fork during a "
                     "migration may leave the child's arena locked", rc);
}
