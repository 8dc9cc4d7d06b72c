/* main.c -- the compiler path's test program: sites in loops, macros,
 * inline functions, wrappers, through a pointer (tests/cc/run.sh). */
#include <stdio.h>
#include "alloc.h"

int main(int argc, char **argv) {
    void *keep[16];
    int k = 0;
    for (int i = 0; i < 4; i++) {
        char *a, *b;
        NEW_PAIR(a, b, 32 + i);
        free(a);
        free(b);
    }
    char *name = copy_name(argv[0]);
    double *g1 = grid_alloc(100);
    double *g2 = grid_alloc(200);
    double *u, *v;
    make_fields(&u, &v, 50);
    void *x = xmalloc(10);
    void *fp = alloc_via_pointer(64);
    void *z = calloc(4, 8);
    z = bump(z, 128);
    void *al = aligned_alloc(64, 128);
    void *pm;
    if (posix_memalign(&pm, 64, 256) != 0)
        return 1;
    char *nd = strndup("tiermem", 4);
    keep[k++] = name;
    keep[k++] = g1;
    keep[k++] = g2;
    keep[k++] = x;
    keep[k++] = fp;
    keep[k++] = z;
    keep[k++] = al;
    keep[k++] = pm;
    keep[k++] = nd;
    keep[k++] = u;
    keep[k++] = v;
    printf("%s %d sites ran\n", nd, k + argc - 1);
    for (int i = 0; i < k; i++)
        free(keep[i]);
    return 0;
}
