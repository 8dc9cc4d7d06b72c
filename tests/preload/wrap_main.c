/*
 * wrap_main.c -- two distinct callers of one exported wrapper
 * (my_alloc_wrapper in libtmwrap.so), with distinct sizes and counts.
 *
 * With TIERMEM_WRAPPERS=my_alloc_wrapper TIERMEM_STACK_DEPTH=1
 * TIERMEM_SMALL_SIZE=0, the preload must skip the wrapper's frame and give
 * caller_one's and caller_two's allocations a site each, whose frame 0 lies
 * inside caller_one and caller_two; without TIERMEM_WRAPPERS they share the
 * one site whose frame 0 is inside the wrapper.  run.sh checks the offsets
 * against this program's symbol table (nm), so the callers are global and
 * never inlined, and they do work after the call so it is not a tail call.
 */
#include <stdio.h>
#include <stdlib.h>

void *my_alloc_wrapper(size_t n);

#define ONE_COUNT 37
#define ONE_SIZE 1000
#define TWO_COUNT 53
#define TWO_SIZE 3000

static void *blocks[ONE_COUNT + TWO_COUNT];
static unsigned nblocks;

__attribute__((noinline)) void caller_one(void)
{
    unsigned char *p = my_alloc_wrapper(ONE_SIZE);
    p[0] = 1;
    blocks[nblocks++] = p;
}

__attribute__((noinline)) void caller_two(void)
{
    unsigned char *p = my_alloc_wrapper(TWO_SIZE);
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
    printf("caller_one %d x %d bytes, caller_two %d x %d bytes\n", ONE_COUNT,
           ONE_SIZE, TWO_COUNT, TWO_SIZE);
    return 0;
}
