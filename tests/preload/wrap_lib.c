/*
 * wrap_lib.c -- libtmwrap.so: an allocation wrapper in a shared library,
 * like hypre_CAlloc or PetscMallocA.  Every allocation made through it has
 * the wrapper as its innermost frame, so without TIERMEM_WRAPPERS all its
 * callers share one site.
 *
 * It does work after malloc returns (zeroing, a count), so the call is
 * never a tail call: the wrapper's frame must be on the stack when the
 * preload walks it, or the test would prove nothing.  (GCC folds the
 * malloc+memset into calloc, which the preload interposes just the same.)
 */
#include <stdlib.h>
#include <string.h>

unsigned long my_alloc_wrapper_calls;

void *my_alloc_wrapper(size_t n)
{
    void *p = malloc(n);
    if (!p)
        abort();
    memset(p, 0, n);
    my_alloc_wrapper_calls++;
    return p;
}
