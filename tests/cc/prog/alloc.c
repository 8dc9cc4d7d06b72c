/* alloc.c -- wrappers two levels deep, and a call through a pointer. */
#include <stdio.h>
#include "alloc.h"

void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "xmalloc: out of memory\n");
        abort();
    }
    return p;
}

/* a wrapper of a wrapper: its callers are the sites */
double *grid_alloc(size_t n) {
    return (double *)xmalloc(n * sizeof(double));
}

/* two calls of a two-level wrapper in the wrapper's own file: two sites
 * here, each with the chain grid_alloc>xmalloc>malloc */
void make_fields(double **u, double **v, size_t n) {
    *u = grid_alloc(n);
    *v = grid_alloc(n);
}

/* a call through a pointer is left alone: nothing says what it calls */
void *(*volatile alloc_fn)(size_t) = malloc;

void *alloc_via_pointer(size_t n) {
    return alloc_fn(n);
}

void *bump(void *p, size_t n) {
    void *q = realloc(p, n);
    return q ? q : p;
}
