/*
 * startup.c -- the library's start-up: the one place that sees every layer.
 *
 * Layers call only the layers below them; the upper layers are wired in
 * here, when the library is loaded.  A constructor runs once libc is ready
 * and before main (for the preload library, before the program's own
 * constructors), so the profiler's thread starts from a context where
 * creating a thread is allowed -- never from inside a malloc call.
 *
 * Linked into libtiermem.so and libtiermem-preload.so only: the tests link
 * the layers directly and start what they test themselves.
 */
#include "config.h"

#include "policy.h"

__attribute__((constructor)) static void tiermem_startup(void)
{
    runtime_init();
    /* exec replaces the image without exit's handlers: finish first */
    runtime_set_exec_hook(profiler_before_exec);
    /* the profiler when TIERMEM_PROFILE or TIERMEM_POLICY=online asks,
     * with the online policy as its interval hook; it stops at exit */
    policy_start_from_env();
}
