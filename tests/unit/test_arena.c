/*
 * test_arena.c -- the arena API: allocation calls, ownership, thread caches
 * that never mix arenas, destroy that leaves nothing mapped.
 */
#include "config.h"

#include <numaif.h>
#include <stdint.h>

#include "sites.h"
#include "../tm_test.h"
#include "../maps_util.h"

static tm_placement_t node0;

static void test_calls(void)
{
    tm_arena_t *a = tm_arena_create(&node0);
    REQUIRE_VOID(a != NULL);
    CHECK(tm_arena_id(a) >= 1 && tm_arena_id(a) <= TM_MAX_ARENAS);

    void *z1 = tm_arena_malloc(a, 0), *z2 = tm_arena_malloc(a, 0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2); /* unique, like glibc */

    char *p = tm_arena_malloc(a, 100);
    CHECK(p != NULL && tm_usable_size(p) >= 100);
    CHECK(tm_arena_of(p) == a && tm_arena_of(p + 99) == a);
    memset(p, 'x', 100);

    unsigned char *c = tm_arena_calloc(a, 1000, 8);
    bool zero = c != NULL;
    for (size_t i = 0; zero && i < 8000; i++)
        zero = c[i] == 0;
    CHECK(zero);
    CHECK(tm_arena_calloc(a, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);

    for (size_t al = 8; al <= (64u << 20); al <<= 3) {
        void *q = tm_arena_aligned_alloc(a, al, 3 * al + 5);
        CHECK_MSG(q != NULL && ((uintptr_t)q & (al - 1)) == 0, "align %zu",
                  al);
        CHECK(tm_arena_of(q) == a);
        tm_free(q);
    }
    CHECK(tm_arena_aligned_alloc(a, 24, 10) == NULL && errno == EINVAL);

    char *r = tm_arena_realloc(a, p, 100000);
    CHECK(r != NULL && r[0] == 'x' && r[99] == 'x' && tm_arena_of(r) == a);
    CHECK(tm_arena_realloc(a, r, 0) == NULL); /* frees */
    char *n = tm_arena_realloc(a, NULL, 10);
    CHECK(n != NULL && tm_arena_of(n) == a);

    /* a foreign pointer is left alone, not corrupted */
    int on_stack = 5;
    tm_free(&on_stack);
    CHECK(on_stack == 5 && tm_usable_size(&on_stack) == 0);
    CHECK(tm_arena_of(&on_stack) == NULL);
    tm_free(NULL);

    tm_free(z1), tm_free(z2), tm_free(c), tm_free(n);
    CHECK(tm_arena_destroy(a) == 0);
}

/* Blocks freed into one arena's cache must never come back from another. */
static void test_no_cross_arena_reuse(void)
{
    tm_arena_t *a = tm_arena_create(&node0), *b = tm_arena_create(&node0);
    REQUIRE_VOID(a && b);
    enum { N = 2000 };
    static void *blocks[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            blocks[i] = tm_arena_malloc(a, 16 + (size_t)(i % 64) * 8);
        for (int i = 0; i < N; i++)
            tm_free(blocks[i]);
        size_t wrong = 0;
        for (int i = 0; i < N; i++) {
            blocks[i] = tm_arena_malloc(b, 16 + (size_t)(i % 64) * 8);
            wrong += tm_arena_of(blocks[i]) != b;
        }
        CHECK_MSG(wrong == 0, "%zu blocks of arena b came from elsewhere",
                  wrong);
        for (int i = 0; i < N; i++)
            tm_free(blocks[i]);
    }
    /* cross-arena realloc moves the block into the requested arena */
    char *p = tm_arena_malloc(a, 64);
    strcpy(p, "hello");
    char *q = tm_arena_realloc(b, p, 64);
    CHECK(q && tm_arena_of(q) == b && strcmp(q, "hello") == 0);
    tm_free(q);
    CHECK(tm_arena_destroy(a) == 0);
    CHECK(tm_arena_destroy(b) == 0);
}

/* A thread that cached blocks of an arena, then the arena is destroyed and
 * its slot reused: the thread must not use the stale tcache. */
static tm_arena_t *shared_arena;
static pthread_barrier_t barrier;

static void *cacher(void *arg)
{
    (void)arg;
    void *p[256];
    for (int i = 0; i < 256; i++)
        p[i] = tm_arena_malloc(shared_arena, 48);
    for (int i = 0; i < 256; i++)
        tm_free(p[i]);                 /* now cached in this thread */
    pthread_barrier_wait(&barrier);    /* main destroys and recreates */
    pthread_barrier_wait(&barrier);
    size_t wrong = 0;
    for (int i = 0; i < 256; i++) {
        p[i] = tm_arena_malloc(shared_arena, 48);
        wrong += tm_arena_of(p[i]) != shared_arena;
        memset(p[i], 1, 48);
    }
    for (int i = 0; i < 256; i++)
        tm_free(p[i]);
    return (void *)wrong;
}

static void test_destroy_with_cached_blocks(void)
{
    shared_arena = tm_arena_create(&node0);
    REQUIRE_VOID(shared_arena != NULL);
    unsigned old_id = tm_arena_id(shared_arena);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, cacher, NULL);
    pthread_barrier_wait(&barrier);
    CHECK(tm_arena_destroy(shared_arena) == 0);
    shared_arena = tm_arena_create(&node0);
    CHECK(shared_arena != NULL && tm_arena_id(shared_arena) == old_id);
    pthread_barrier_wait(&barrier);
    void *wrong;
    pthread_join(t, &wrong);
    CHECK(wrong == NULL);
    pthread_barrier_destroy(&barrier);
    CHECK(tm_arena_destroy(shared_arena) == 0);
}

/* Bytes jemalloc counts as allocated in the arena's small classes. */
static size_t small_allocated(tm_arena_t *a)
{
    uint64_t epoch = 1;
    size_t sz = sizeof epoch, bytes = 0;
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    char name[64];
    snprintf(name, sizeof name, "stats.arenas.%u.small.allocated",
             tm_arena_jemalloc_index(a));
    sz = sizeof bytes;
    if (mallctl(name, &bytes, &sz, NULL, 0) != 0)
        return (size_t)-1;
    return bytes;
}

static pthread_barrier_t exit_barrier;

static void *free_then_exit(void *arg)
{
    tm_arena_t *a = arg;
    void *p[64];
    for (int i = 0; i < 64; i++)
        p[i] = tm_arena_malloc(a, 32);
    for (int i = 0; i < 64; i++)
        tm_free(p[i]); /* now in this thread's caches */
    pthread_barrier_wait(&exit_barrier);
    pthread_barrier_wait(&exit_barrier);
    return NULL;
}

/* Blocks a thread cached are handed back to the arena when it exits. */
static void test_thread_exit_returns_cached_blocks(void)
{
    tm_arena_t *a = tm_arena_create(&node0);
    REQUIRE_VOID(a != NULL);
    pthread_barrier_init(&exit_barrier, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, free_then_exit, a);
    pthread_barrier_wait(&exit_barrier);
    size_t cached = small_allocated(a);
    pthread_barrier_wait(&exit_barrier);
    pthread_join(t, NULL);
    size_t after = small_allocated(a);
    CHECK_MSG(cached != (size_t)-1 && cached > 0, "cached %zu", cached);
    CHECK_MSG(after == 0, "still allocated after thread exit: %zu", after);
    pthread_barrier_destroy(&exit_barrier);
    CHECK(tm_arena_destroy(a) == 0);
}

static void test_destroy_unmaps(void)
{
    size_t bound_before = numa_maps_policy_vmas();
    tm_stats_t s0;
    tm_stats_get(&s0);
    tm_arena_t *a = tm_arena_create(&node0);
    REQUIRE_VOID(a != NULL);
    void *big = tm_arena_malloc(a, 48u << 20);
    memset(big, 7, 48u << 20);
    tm_stats_t s1;
    tm_stats_get(&s1);
    CHECK(s1.bytes_mapped >= s0.bytes_mapped + (48u << 20));
    /* every tracked byte is bound to node 0 */
    int mode = -1;
    unsigned long mask[2] = {0};
    CHECK(get_mempolicy(&mode, mask, 128, big, MPOL_F_ADDR) == 0 &&
          mode == MPOL_BIND && mask[0] == 1);
    uintptr_t lo = (uintptr_t)big, hi = lo + (48u << 20);
    CHECK(tm_arena_destroy(a) == 0);
    tm_stats_t s2;
    tm_stats_get(&s2);
    CHECK(s2.bytes_mapped == s0.bytes_mapped && s2.extents == s0.extents);
    CHECK(maps_bytes_in(lo, hi) == 0);
    CHECK(extent_map_lookup(big) == 0);
    /* no VMA with tiermem's policy is left (whole-process VMA counts also
     * move with jemalloc's own arenas and, under TSan, with shadow memory) */
    CHECK_MSG(numa_maps_policy_vmas() == bound_before, "bound VMAs %zu -> %zu",
              bound_before, numa_maps_policy_vmas());
}

/* The front cache's size classes are jemalloc's: a block from class c is
 * exactly nallocx(size) bytes for every size that maps to c. */
static void test_front_classes(void)
{
    REQUIRE_VOID(front_nclasses > 0);
    size_t wrong = 0;
    for (size_t s = 0; s <= FRONT_MAX_SIZE; s++) {
        unsigned c = front_class_of[(s + 7) >> 3];
        wrong += c >= front_nclasses ||
                 front_class_size[c] != nallocx(s ? s : 1, 0);
    }
    CHECK_MSG(wrong == 0, "%zu sizes map to a class jemalloc disagrees with",
              wrong);
    /* and what tm_arena_malloc hands out is at least what was asked */
    tm_arena_t *a = tm_arena_create(&node0);
    REQUIRE_VOID(a != NULL);
    size_t short_blocks = 0;
    for (int round = 0; round < 2; round++)
        for (size_t s = 1; s <= FRONT_MAX_SIZE; s += 7) {
            void *p = tm_arena_malloc(a, s);
            short_blocks += tm_usable_size(p) < s;
            tm_free(p); /* into the front cache: reused in round 2 */
        }
    CHECK(short_blocks == 0);
    CHECK(tm_arena_destroy(a) == 0);
}

static void test_bad_placements(void)
{
    tm_placement_t empty = {TM_MODE_BIND, 0}, badmode = {7, 1};
    CHECK(tm_arena_create(&empty) == NULL && errno == EINVAL);
    CHECK(tm_arena_create(&badmode) == NULL && errno == EINVAL);
    CHECK(tm_arena_create(NULL) == NULL && errno == EINVAL);
    CHECK(tm_arena_destroy(NULL) == -1 && errno == EINVAL);
    tm_placement_t pn = tm_placement_node(TM_MODE_PREFERRED, 3);
    CHECK(pn.mode == TM_MODE_PREFERRED && pn.nodes == 8);
    CHECK(tm_placement_node(TM_MODE_BIND, 64).nodes == 0);
}

int main(void)
{
    node0 = tm_placement_node(TM_MODE_BIND, 0);
    test_calls();
    test_no_cross_arena_reuse();
    test_destroy_with_cached_blocks();
    test_thread_exit_returns_cached_blocks();
    test_destroy_unmaps();
    test_front_classes();
    test_bad_placements();
    return tm_test_done(__FILE__);
}
