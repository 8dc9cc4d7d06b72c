/*
 * runtime_init.c -- the runtime's start-up, once per process: the settings
 * (which configure the log first), then jemalloc and the fork handlers;
 * and the hook the exec wrappers run first.
 */
#include "config.h"

#include "sites.h"

static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;

static void runtime_init_once(void)
{
    settings_init();
    front_cache_init_classes(); /* also initialises jemalloc */
    fork_handlers_install();
}

void runtime_init(void)
{
    (void)pthread_once(&runtime_once, runtime_init_once);
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
