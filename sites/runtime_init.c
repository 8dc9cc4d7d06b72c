/*
 * runtime_init.c -- the start-up of the runtime up to the sites layer,
 * once per process, and the hook the exec wrappers run first.
 *
 * runtime_init: the arena layer's own start-up (settings, jemalloc, its
 * fork handlers), then this layer's fork handlers, registered after the
 * arena layer's so the lock order across fork is this layer's locks first
 * (see fork.c).  sites_ready: the sites themselves, in the order each part
 * needs the one before: placement and guidance, the table with site 0,
 * site 0's counters, its arena, the stack walker; then the exit report.
 * The top of the sites layer: it calls the other files, none calls it
 * but for sites_ready.
 */
#include "config.h"

#include <stdlib.h>

#include "sites.h"

static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;

static void runtime_init_once(void)
{
    arena_layer_init();
    fork_handlers_install();
}

void runtime_init(void)
{
    (void)pthread_once(&runtime_once, runtime_init_once);
}

/* ---------------------------------------------------------------- sites */

/* An allocation that finds no memory first empties sites' arenas. */
static size_t reclaim_under_pressure(const tm_arena_t *failed)
{
    return site_arenas_reclaim(false, failed);
}

static pthread_once_t sites_once = PTHREAD_ONCE_INIT;
static _Atomic bool sites_ok;
static __thread bool initialising __attribute__((tls_model("initial-exec")));

static void sites_init_once(void)
{
    runtime_init();
    arena_set_pressure_hook(reclaim_under_pressure);
    site_arenas_init();
    if (!site_table_init())
        return;
    site_t *zero = site_get(SITE_UNSITED);
    site_stats_init(&zero->stats);
    if (runtime_options.layout != TM_LAYOUT_PER_THREAD)
        site_arena(zero);
    stack_warm_up();
    stack_wrappers_check();
    atomic_store_explicit(&sites_unsited, zero, memory_order_release);
    if (runtime_options.output_dir[0] != '\0' && atexit(site_report_at_exit) != 0)
        log_warn("sites: atexit failed; no site table will be written");
    atomic_store_explicit(&sites_ok, true, memory_order_release);
}

bool sites_ready(void)
{
    if (TM_LIKELY(atomic_load_explicit(&sites_ok, memory_order_acquire)))
        return true;
    if (initialising)
        return false; /* a nested allocation during our own start-up */
    initialising = true;
    pthread_once(&sites_once, sites_init_once);
    initialising = false;
    return atomic_load(&sites_ok);
}

/* ---------------------------------------------------------------- exec */

static void (*_Atomic exec_hook)(void);

void runtime_set_exec_hook(void (*fn)(void))
{
    atomic_store(&exec_hook, fn);
}

void runtime_before_exec(void)
{
    void (*fn)(void) = atomic_load(&exec_hook);
    if (fn != NULL)
        fn();
}
