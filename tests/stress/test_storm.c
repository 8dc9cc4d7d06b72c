/*
 * test_storm.c -- the "perfect storm" that exposed the seed defect.
 *
 * The defect needed large aligned allocations, many threads, and constant
 * allocation and freeing so the address space fragments and a trimmed head
 * or tail is soon reused by someone else.  Here 32 threads on 8 arenas
 * allocate and free blocks of 64 KiB-64 MiB aligned to 4 KiB-32 MiB, while
 * another thread migrates the arenas between placements (all on node 0
 * here, which still drives every mbind and move_pages call) and purges them.
 *
 * Pass: no allocation fails, no hook, mbind or unmap fails, no migration
 * fails, every block is intact, aligned and owned by its arena, and after
 * the arenas are destroyed the mapped bytes and VMA count are back at the
 * baseline taken after a warm-up round.
 *
 * TM_TEST_SCALE shortens it (the sanitizer builds run it at 0.1).
 */
#include "config.h"

#include <sched.h>
#include <sys/mman.h>
#include <stdint.h>

#include "sites.h"
#include "../tm_test.h"
#include "../maps_util.h"

#define NTHREADS 32
#define NARENAS 8
#define SLOTS 3
#define WARMUP_ROUNDS 2
#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static tm_arena_t *arenas[NARENAS];
static pthread_barrier_t barrier;
static _Atomic bool storm_started, storm_done;
static _Atomic size_t inconsistent; /* extent_check_consistency failures */
static _Atomic size_t alloc_failures, corrupt_blocks, wrong_owner,
    misaligned, migrate_errors, migrations_done;
static unsigned ops_per_thread;

typedef struct block {
    uint64_t *p;
    size_t size;
    tm_arena_t *arena;
    uint64_t tag;
} block_t;


/* log-uniform in [lo, hi], both powers of two */
static size_t log_uniform(uint64_t *s, size_t lo, size_t hi)
{
    unsigned lg_lo = (unsigned)__builtin_ctzll(lo), lg_hi = (unsigned)__builtin_ctzll(hi);
    size_t base = (size_t)1 << (lg_lo + tm_test_rand(s) % (lg_hi - lg_lo + 1));
    return base + (tm_test_rand(s) % base) / 2; /* not only powers of two */
}

/* Touch sparsely: first and last word and one per MiB, enough to fault the
 * pages mbind and migration will walk without making RSS huge. */
static void stamp(block_t *b)
{
    size_t words = b->size / 8;
    for (size_t i = 0; i < words; i += MiB / 8)
        b->p[i] = b->tag;
    b->p[words - 1] = b->tag;
}

static bool intact(const block_t *b)
{
    size_t words = b->size / 8;
    for (size_t i = 0; i < words; i += MiB / 8)
        if (b->p[i] != b->tag)
            return false;
    return b->p[words - 1] == b->tag;
}

static void release(block_t *b)
{
    if (b->p == NULL)
        return;
    if (!intact(b))
        atomic_fetch_add(&corrupt_blocks, 1);
    if (tm_arena_of(b->p) != b->arena)
        atomic_fetch_add(&wrong_owner, 1);
    tm_free(b->p);
    b->p = NULL;
}

static void churn(uint64_t *seed, unsigned ops, tm_arena_t **set, unsigned n)
{
    block_t slots[SLOTS] = {{0}};
    for (unsigned op = 0; op < ops; op++) {
        block_t *b = &slots[tm_test_rand(seed) % SLOTS];
        release(b);
        b->arena = set[tm_test_rand(seed) % n];
        b->size = log_uniform(seed, 64 * KiB, 64 * MiB);
        size_t align = log_uniform(seed, 4 * KiB, 32 * MiB);
        align = (size_t)1 << (63 - __builtin_clzll(align)); /* power of two */
        b->p = tm_arena_aligned_alloc(b->arena, align, b->size);
        if (b->p == NULL) {
            atomic_fetch_add(&alloc_failures, 1);
            continue;
        }
        if (((uintptr_t)b->p & (align - 1)) != 0)
            atomic_fetch_add(&misaligned, 1);
        b->tag = tm_test_rand(seed) | 1;
        stamp(b);
    }
    for (unsigned i = 0; i < SLOTS; i++)
        release(&slots[i]);
}

static tm_arena_t *warmup[NARENAS];

static void *worker(void *arg)
{
    uint64_t seed = 0x1234567ULL + (uintptr_t)arg * 7919;
    /* Warm-up: one tcache per (thread, arena) as in the storm, so jemalloc's
     * own arena has already grown to hold them before the baseline. */
    for (int round = 0; round < WARMUP_ROUNDS; round++) {
        for (int i = 0; i < NARENAS; i++)
            tm_free(tm_arena_malloc(warmup[i], 64));
        churn(&seed, 2, warmup, NARENAS);
        pthread_barrier_wait(&barrier);
        pthread_barrier_wait(&barrier); /* main recreated the arenas */
    }
    churn(&seed, ops_per_thread, arenas, NARENAS);
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier); /* main checked, threads may exit */
    return NULL;
}

/* Every mmap and munmap the os layer makes, summed independently of
 * tiermem's own counters. */
static _Atomic long long os_net_bytes;

static void *count_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
    void *r = os_real_ops()->mmap(a, l, p, f, fd, o);
    if (r != MAP_FAILED)
        atomic_fetch_add(&os_net_bytes, (long long)l);
    return r;
}

static int count_munmap(void *a, size_t l)
{
    int r = os_real_ops()->munmap(a, l);
    if (r == 0)
        atomic_fetch_sub(&os_net_bytes, (long long)l);
    return r;
}

/* What jemalloc itself has mapped (its own arenas and metadata). */
static size_t jemalloc_footprint(void)
{
    uint64_t epoch = 1;
    size_t sz = sizeof epoch, mapped = 0, retained = 0, meta = 0;
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    sz = sizeof mapped;
    mallctl("stats.mapped", &mapped, &sz, NULL, 0);
    mallctl("stats.retained", &retained, &sz, NULL, 0);
    mallctl("stats.metadata", &meta, &sz, NULL, 0);
    return mapped + retained + meta;
}

static const tm_placement_t placements[] = {
    {TM_MODE_PREFERRED, 1}, {TM_MODE_INTERLEAVE, 1}, {TM_MODE_BIND, 1}};

static void *migrator(void *arg)
{
    (void)arg;
    unsigned round = 0;
    /* created before the baseline, so its stack is part of it */
    while (!atomic_load(&storm_started))
        sched_yield();
    while (!atomic_load(&storm_done)) {
        tm_arena_t *a = arenas[round % NARENAS];
        tm_migrate_report_t rep;
        if (tm_arena_migrate(a, &placements[round % 3], &rep) != 0) {
            atomic_fetch_add(&migrate_errors, 1);
            fprintf(stderr, "migrate arena %u: error %d, %zu extents "
                    "failed, %zu pages failed\n", tm_arena_id(a), rep.error,
                    rep.extents_failed, rep.pages_failed);
        }
        atomic_fetch_add(&migrations_done, 1);
        /* every extent of the set mapped to this arena, none overlapping,
         * while the workers split and merge */
        if (round % 8 == 0 && extent_check_consistency(&a->hooked) != 0)
            atomic_fetch_add(&inconsistent, 1);
        if (round % 4 == 0) {
            char cmd[64];
            snprintf(cmd, sizeof cmd, "arena.%u.purge",
                     tm_arena_jemalloc_index(a));
            if (mallctl(cmd, NULL, NULL, NULL, 0) != 0)
                atomic_fetch_add(&migrate_errors, 1);
        }
        round++;
    }
    return NULL;
}

/* The invariant the seed defect broke, checked against the kernel: every
 * byte tiermem tracks is mapped, and every byte carrying a NUMA policy (only
 * tiermem binds memory here) is tracked. */
#define MAX_TRACKED 200000
static extent_range_t tracked[MAX_TRACKED];
static maps_vma_t bound[MAPS_MAX];

static int by_start(const void *a, const void *b)
{
    const extent_range_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static size_t tracked_bytes_in(size_t n, uintptr_t lo, uintptr_t hi)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = tracked[i].start > lo ? tracked[i].start : lo;
        uintptr_t e = tracked[i].start + tracked[i].size;
        uintptr_t b = e < hi ? e : hi;
        if (a < b)
            total += b - a;
    }
    return total;
}

static void check_tracked_is_mapped(void)
{
    size_t n = 0;
    for (int i = 0; i < NARENAS; i++) {
        tm_arena_t *a = arenas[i];
        mutex_lock(&a->hooked.lock);
        size_t count, bytes;
        extent_range_t *r = arena_ranges(a, &count, &bytes);
        for (size_t k = 0; r && k < count && n < MAX_TRACKED; k++)
            tracked[n++] = r[k];
        mutex_unlock(&a->hooked.lock);
        meta_free(r, bytes);
    }
    qsort(tracked, n, sizeof tracked[0], by_start);
    size_t unmapped = 0, untracked = 0;
    for (size_t i = 0; i < n; i++) {
        uintptr_t lo = tracked[i].start, hi = lo + tracked[i].size;
        unmapped += tracked[i].size - maps_bytes_in(lo, hi);
    }
    long nb = numa_maps_bound(bound, MAPS_MAX);
    for (long i = 0; i < nb; i++)
        untracked += (bound[i].hi - bound[i].lo) -
                     tracked_bytes_in(n, bound[i].lo, bound[i].hi);
    printf("storm: %zu tracked ranges, %ld bound VMAs\n", n, nb);
    CHECK(n > 0 && nb > 0);
    CHECK_MSG(unmapped == 0, "%zu tracked bytes are not mapped", unmapped);
    CHECK_MSG(untracked == 0, "%zu bound bytes are not tracked", untracked);
}

int main(void)
{
    ops_per_thread = (unsigned)(2000 * tm_test_scale()) + 1;
    /* debug builds: the hooks also walk an arena's set after every 64th
     * split, merge or destroy, and abort next to the call that broke it */
    hook_set_consistency_period(64);
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    pthread_barrier_init(&barrier, NULL, NTHREADS + 1);
    os_ops_t ops = *os_real_ops();
    ops.mmap = count_mmap;
    ops.munmap = count_munmap;
    os_set_ops(&ops);
    pthread_t threads[NTHREADS], mig;
    REQUIRE(pthread_create(&mig, NULL, migrator, NULL) == 0);
    for (int i = 0; i < NARENAS; i++)
        REQUIRE((warmup[i] = tm_arena_create(&node0)) != NULL);
    for (uintptr_t i = 0; i < NTHREADS; i++)
        REQUIRE(pthread_create(&threads[i], NULL, worker, (void *)i) == 0);
    for (int round = 0; round < WARMUP_ROUNDS; round++) {
        pthread_barrier_wait(&barrier); /* this warm-up round is done */
        for (int i = 0; i < NARENAS; i++) {
            CHECK(tm_arena_destroy(warmup[i]) == 0);
            if (round + 1 < WARMUP_ROUNDS)
                warmup[i] = tm_arena_create(&node0);
        }
        if (round + 1 < WARMUP_ROUNDS)
            pthread_barrier_wait(&barrier);
    }

    size_t base_bytes, base_vmas = maps_count(&base_bytes);
    size_t base_policy_vmas = numa_maps_policy_vmas();
    size_t base_jemalloc = jemalloc_footprint();
    tm_stats_t s0;
    tm_stats_get(&s0);
    for (int i = 0; i < NARENAS; i++)
        REQUIRE((arenas[i] = tm_arena_create(&node0)) != NULL);
    atomic_store(&storm_started, true);
    pthread_barrier_wait(&barrier); /* go */
    pthread_barrier_wait(&barrier); /* storm over */
    atomic_store(&storm_done, true);
    pthread_join(mig, NULL);

    tm_stats_t s1;
    tm_stats_get(&s1);
    size_t live_policy_vmas = numa_maps_policy_vmas();
    check_tracked_is_mapped();
    for (int i = 0; i < NARENAS; i++)
        CHECK(extent_check_consistency(&arenas[i]->hooked) == 0);
    for (int i = 0; i < NARENAS; i++)
        CHECK(tm_arena_destroy(arenas[i]) == 0);
    tm_stats_t s2;
    tm_stats_get(&s2);
    size_t end_bytes, end_vmas = maps_count(&end_bytes);
    size_t end_policy_vmas = numa_maps_policy_vmas();
    size_t end_jemalloc = jemalloc_footprint();
    /* growth others may have: jemalloc's arena 0 and radix, our metadata */
    size_t allowed = (end_jemalloc > base_jemalloc ? end_jemalloc - base_jemalloc
                                                   : 0) +
                     (size_t)(s2.metadata_bytes - s0.metadata_bytes);

    printf("storm: %u threads x %u ops on %d arenas, %zu migrations, "
           "%lu extent allocs, %lu splits, %lu merges, %lu purges\n",
           NTHREADS, ops_per_thread, NARENAS, atomic_load(&migrations_done),
           (unsigned long)(s1.hook_allocs - s0.hook_allocs),
           (unsigned long)(s1.splits - s0.splits),
           (unsigned long)(s1.merges - s0.merges),
           (unsigned long)(s1.purges - s0.purges));
    printf("storm: VMAs %zu -> %zu, mapped bytes %zu -> %zu (jemalloc's own "
           "footprint +%zu, tiermem metadata +%llu), bound VMAs %zu -> %zu\n",
           base_vmas, end_vmas, base_bytes, end_bytes,
           end_jemalloc - base_jemalloc,
           (unsigned long long)(s2.metadata_bytes - s0.metadata_bytes),
           base_policy_vmas, end_policy_vmas);
    CHECK(atomic_load(&alloc_failures) == 0);
    CHECK(atomic_load(&corrupt_blocks) == 0);
    CHECK(atomic_load(&wrong_owner) == 0);
    CHECK(atomic_load(&misaligned) == 0);
    CHECK(atomic_load(&migrate_errors) == 0);
    CHECK(atomic_load(&inconsistent) == 0);
    CHECK(atomic_load(&migrations_done) > 0);
    CHECK(s1.hook_alloc_failures == s0.hook_alloc_failures);
    CHECK(s1.mbind_failures == s0.mbind_failures);
    CHECK(s2.unmap_failures == s0.unmap_failures);
    CHECK(s2.extents == 0 && s2.bytes_mapped == 0);
    CHECK(atomic_load(&os_net_bytes) == 0);
    CHECK(live_policy_vmas > base_policy_vmas); /* the check can see them */
    CHECK(end_policy_vmas == base_policy_vmas);
    CHECK_MSG(TM_TEST_TSAN || end_bytes <= base_bytes + allowed,
              "mapped %zu -> %zu, more than the %zu others account for",
              base_bytes, end_bytes, allowed);

    pthread_barrier_wait(&barrier);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    return tm_test_done(__FILE__);
}
