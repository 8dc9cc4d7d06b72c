/* alloc.h -- the compiler path's test program: allocation in a macro, a
 * static inline function and wrappers (tests/cc/run.sh). */
#ifndef TEST_CC_ALLOC_H
#define TEST_CC_ALLOC_H
#include <stdlib.h>
#include <string.h>

/* two allocations on one line of one macro: told apart by the ordinal */
#define NEW_PAIR(a, b, n) ((a) = malloc(n), (b) = malloc(n))

static inline char *copy_name(const char *s) {
    return strdup(s);
}

void *xmalloc(size_t n);
double *grid_alloc(size_t n);
void make_fields(double **u, double **v, size_t n);
void *alloc_via_pointer(size_t n);
void *bump(void *p, size_t n);
#endif
