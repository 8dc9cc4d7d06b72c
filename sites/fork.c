/*
 * fork.c -- the sites layer's part of keeping tiermem usable in the child
 * of fork().
 *
 * Only the forking thread survives in the child, so any lock another thread
 * held at that moment would stay locked forever.  This layer's locks (the
 * site table, the per-thread arena pool, the reclaim list, site 0's
 * counters, the object list, the compiler sites' descriptions and the
 * ledger) are taken before fork and
 * released, or re-initialised, after it.
 *
 * The arena layer registers its own handlers (arena table, tcaches, and the
 * child's metadata and log locks) in arena_layer_init, which runtime_init
 * calls before it calls fork_handlers_install.  pthread_atfork runs prepare
 * handlers in the reverse order of registration and the others in order,
 * so the whole lock order is: sites (site creation makes arenas), objects,
 * ledger, then the arena table and the tcache registry; the child resets
 * the metadata and log locks before anything here runs.
 */
#include "config.h"

#include <errno.h>

#include "sites.h"

/* Reclaim first: it holds its lock while it waits for the arena table.
 * Then the site table, the shared arena and the thread-arena pool (both
 * make arenas under their lock), site 0's counters; the object list and
 * the ledger are leaves, and so are the compiler sites' descriptions. */
static void prefork(void)
{
    site_reclaim_prefork();
    site_table_prefork();
    sites_prefork();
    site_stats_prefork();
    objects_prefork();
    cc_sites_prefork();
    ledger_prefork();
}

static void postfork_parent(void)
{
    ledger_postfork_parent();
    cc_sites_postfork_parent();
    objects_postfork_parent();
    site_stats_postfork_parent();
    sites_postfork_parent();
    site_table_postfork_parent();
    site_reclaim_postfork_parent();
}

static void postfork_child(void)
{
    ledger_postfork_child();
    cc_sites_postfork_child();
    objects_postfork_child();
    site_stats_postfork_child();
    sites_postfork_child();
    site_table_postfork_child();
    site_reclaim_postfork_child();
}

void fork_handlers_install(void)
{
    int rc = pthread_atfork(prefork, postfork_parent, postfork_child);
    if (rc != 0)
        log_error("pthread_atfork failed: error %d; a fork while a site "
                  "is being made may leave the child's sites locked", rc);
}
