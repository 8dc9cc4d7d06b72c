/*
 * wrap_static.c -- an allocation wrapper inside the executable itself, as
 * when a solver library (hypre) is linked into the program: app_alloc is a
 * global function, but without -rdynamic the program exports nothing, so
 * only its symbol table knows the name.
 *
 * run.sh builds it twice, with and without -rdynamic, and runs both with
 * TIERMEM_WRAPPERS=app_alloc TIERMEM_STACK_DEPTH=1 TIERMEM_SMALL_SIZE=0.
 * Both must get the same sites: one in caller_one (37 blocks), one in
 * caller_two (53), none in the wrapper.  The callers are global and never
 * inlined, and do work after the call, so it is not a tail call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONE_COUNT 37
#define ONE_SIZE 1000
#define TWO_COUNT 53
#define TWO_SIZE 3000

unsigned long app_alloc_calls;

__attribute__((noinline)) void *app_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        abort();
    memset(p, 0, n);
    app_alloc_calls++;
    return p;
}

static void *blocks[ONE_COUNT + TWO_COUNT];
static unsigned nblocks;

__attribute__((noinline)) void caller_one(void)
{
    unsigned char *p = app_alloc(ONE_SIZE);
    p[0] = 1;
    blocks[nblocks++] = p;
}

__attribute__((noinline)) void caller_two(void)
{
    unsigned char *p = app_alloc(TWO_SIZE);
    p[TWO_SIZE - 1] = 2;
    blocks[nblocks++] = p;
}

int main(void)
{
    for (int i = 0; i < ONE_COUNT; i++)
        caller_one();
    for (int i = 0; i < TWO_COUNT; i++)
        caller_two();
    for (unsigned i = 0; i < nblocks; i++)
        free(blocks[i]);
    printf("caller_one %d x %d bytes, caller_two %d x %d bytes, %lu calls\n",
           ONE_COUNT, ONE_SIZE, TWO_COUNT, TWO_SIZE, app_alloc_calls);
    return 0;
}
