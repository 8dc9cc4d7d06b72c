/*
 * wrap_static.c -- wrap_main.c's two callers, with the allocation wrapper
 * inside the executable itself, as when a solver library (hypre) is linked
 * into the program: app_alloc is a global function, but without -rdynamic
 * the program exports nothing, so only its symbol table knows the name.
 *
 * run.sh builds it twice, with and without -rdynamic, and runs both with
 * TIERMEM_WRAPPERS=app_alloc TIERMEM_STACK_DEPTH=1 TIERMEM_SMALL_SIZE=0.
 * Both must get the same sites: one in caller_one (37 blocks), one in
 * caller_two (53), none in the wrapper.
 */
#include <stdlib.h>
#include <string.h>

void *app_alloc(size_t n);

unsigned long app_alloc_calls;

/* Work after malloc returns, so the call is never a tail call. */
__attribute__((noinline)) void *app_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        abort();
    memset(p, 0, n);
    app_alloc_calls++;
    return p;
}

#define my_alloc_wrapper app_alloc
#include "wrap_main.c"
