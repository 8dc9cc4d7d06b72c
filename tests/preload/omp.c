/*
 * omp.c -- OpenMP threads allocating in parallel loops and tasks, and
 * freeing on other threads.
 *
 * 1. A dynamic-schedule loop allocates and fills N blocks; a static loop in
 *    reverse order checks and frees them, so most blocks die on a thread
 *    other than the one that made them.
 * 2. A task tree: every node is malloc'd by the task that creates it and
 *    freed by whichever task walks it last.
 * 3. Per-thread vectors grown by realloc inside a parallel region, merged
 *    by the master thread after it.
 * All sums are integer reductions over values that depend only on the
 * index, so stdout does not depend on the schedule.  Run with
 * OMP_NUM_THREADS=4 on 2 cores so threads are preempted mid-allocation.
 */
#define _GNU_SOURCE
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_probe.h"

#define N 40000

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    return x ^ (x >> 33);
}

static size_t size_of(uint64_t i)
{
    uint64_t r = mix(i);
    switch (r % 20) {
    case 0:
        return 16384 + r % 49152;
    case 1: case 2: case 3: case 4: case 5:
        return 1024 + r % 15360;
    default:
        return 8 + r % 1016;
    }
}

typedef struct node {
    struct node *left, *right;
    uint64_t id;
    size_t n;
    uint64_t payload[];
} node_t;

static node_t *build(uint64_t id, int depth)
{
    size_t n = size_of(id * 7 + 3) / 8 + 1;
    node_t *nd = malloc(sizeof *nd + n * sizeof(uint64_t));
    if (!nd)
        abort();
    nd->id = id;
    nd->n = n;
    for (size_t i = 0; i < n; i++)
        nd->payload[i] = mix(id + i);
    tm_probe_inside_arena(nd, "omp tree node"); /* after the writes: GCC
                                                   warns on a const pointer
                                                   to unwritten memory */
    node_t *l = NULL, *r = NULL;
    if (depth > 0) {
#pragma omp task shared(l) firstprivate(id, depth)
        l = build(2 * id + 1, depth - 1);
#pragma omp task shared(r) firstprivate(id, depth)
        r = build(2 * id + 2, depth - 1);
#pragma omp taskwait
    }
    nd->left = l;
    nd->right = r;
    return nd;
}

/* Sum and free the subtree; bad counts payload mismatches. */
static uint64_t consume(node_t *nd, uint64_t *bad)
{
    if (!nd)
        return 0;
    uint64_t l = 0, r = 0, lb = 0, rb = 0;
#pragma omp task shared(l, lb) firstprivate(nd)
    l = consume(nd->left, &lb);
#pragma omp task shared(r, rb) firstprivate(nd)
    r = consume(nd->right, &rb);
#pragma omp taskwait
    uint64_t s = nd->id;
    for (size_t i = 0; i < nd->n; i++) {
        if (nd->payload[i] != mix(nd->id + i))
            (*bad)++;
        s += nd->payload[i];
    }
    free(nd);
    *bad += lb + rb;
    return s + l + r;
}

int main(void)
{
    tm_probe_init();
    static unsigned char *blocks[N];
    uint64_t made = 0, checked = 0, bad = 0;

#pragma omp parallel for schedule(dynamic, 16) reduction(+ : made)
    for (long i = 0; i < N; i++) {
        size_t n = size_of((uint64_t)i);
        unsigned char *p = (i % 3) ? malloc(n) : calloc(n, 1);
        if (!p)
            abort();
        tm_probe_inside_arena(p, "omp block");
        for (size_t j = 0; j < n; j++)
            p[j] = (unsigned char)(i + j);
        blocks[i] = p;
        made += n;
    }
#pragma omp parallel for schedule(static) reduction(+ : checked, bad)
    for (long k = 0; k < N; k++) {
        long i = N - 1 - k;
        size_t n = size_of((uint64_t)i);
        for (size_t j = 0; j < n; j++)
            if (blocks[i][j] != (unsigned char)(i + j)) {
                bad++;
                break;
            }
        checked += n;
        free(blocks[i]);
    }
    printf("loop: %d blocks, %llu bytes made, %llu checked\n", N,
           (unsigned long long)made, (unsigned long long)checked);

    uint64_t tree_sum = 0, tree_bad = 0;
    for (int round = 0; round < 3; round++) {
        node_t *root = NULL;
#pragma omp parallel
#pragma omp single
        root = build((uint64_t)round << 32, 11);
        uint64_t b = 0, s = 0;
#pragma omp parallel
#pragma omp single
        s = consume(root, &b);
        tree_sum += s;
        tree_bad += b;
    }
    printf("tree: 3 rounds of 4095 nodes, sum %016llx\n",
           (unsigned long long)tree_sum);

    /* Per-thread arrays grown by realloc, handed to the master to merge. */
    int nth = omp_get_max_threads();
    uint64_t **vec = calloc((size_t)nth, sizeof *vec);
    size_t *len = calloc((size_t)nth, sizeof *len);
    if (!vec || !len)
        abort();
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        size_t cap = 0;
#pragma omp for schedule(dynamic, 100)
        for (long i = 0; i < 200000; i++) {
            if (len[t] == cap) {
                cap = cap ? cap * 2 : 16;
                uint64_t *nv = realloc(vec[t], cap * sizeof *nv);
                if (!nv)
                    abort();
                vec[t] = nv;
            }
            vec[t][len[t]++] = mix((uint64_t)i);
        }
    }
    uint64_t vsum = 0, vlen = 0;
    for (int t = 0; t < nth; t++) {
        for (size_t i = 0; i < len[t]; i++)
            vsum += vec[t][i];
        vlen += len[t];
        free(vec[t]);
    }
    free(vec);
    free(len);
    printf("vectors: %llu values, sum %016llx\n", (unsigned long long)vlen,
           (unsigned long long)vsum);
    printf("corrupt: %llu\n", (unsigned long long)(bad + tree_bad));
    return (tm_probe_report() || bad || tree_bad) ? 1 : 0;
}
