/*
 * test_site_storm.c -- many threads allocating through many sites, in every
 * layout, while threads come and go and the site table is written.
 *
 * Threads pick a site (explicit ids, some past the arena limit), a size
 * (small ones go to site 0) and an operation (malloc, calloc, realloc to
 * another site, aligned, free), and hand some blocks to other threads to
 * free.  Every block carries a pattern checked before it is freed.  At the
 * end every site's and every arena's live bytes must be zero, and every
 * site's allocs minus frees must be zero: the counters, the ledger and the
 * per-thread site 0 batches agree with what really happened.
 *
 * Each layout runs in its own process (settings are read once).
 */
#include "config.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sites.h"
#include "../tm_test.h"

#define SLOTS 256
#define NSITES 40

typedef struct block {
    unsigned char *p;
    size_t size;
    unsigned char tag;
} block_t;

static _Atomic(unsigned char *) handoff[64];
static _Atomic unsigned corrupt, failures;

static void fill(block_t *b)
{
    memset(b->p, b->tag, b->size < 64 ? b->size : 64);
    if (b->size > 64)
        b->p[b->size - 1] = b->tag;
}

static bool intact(const block_t *b)
{
    for (size_t i = 0; i < (b->size < 64 ? b->size : 64); i++)
        if (b->p[i] != b->tag)
            return false;
    return b->size <= 64 || b->p[b->size - 1] == b->tag;
}

static size_t pick_size(uint64_t *r)
{
    switch (tm_test_rand(r) % 8) {
    case 0: return 1 + tm_test_rand(r) % 64;
    case 1: case 2: return 64 + tm_test_rand(r) % 2048;
    case 3: case 4: return 4096 + tm_test_rand(r) % 60000;
    case 5: return 1 + tm_test_rand(r) % 4000;
    case 6: return 100000 + tm_test_rand(r) % 300000;
    default: return 2u << 20;
    }
}

static void op(block_t *b, uint64_t *r)
{
    int site = (int)(tm_test_rand(r) % NSITES); /* 0: unsited */
    if (b->p != NULL) {
        if (!intact(b))
            atomic_fetch_add(&corrupt, 1);
        unsigned k = tm_test_rand(r) % 4;
        if (k == 0) { /* realloc, possibly to another site's arena */
            size_t n = pick_size(r);
            unsigned char *q = tm_site_realloc(site, b->p, n);
            if (q == NULL) {
                atomic_fetch_add(&failures, 1);
                return;
            }
            b->p = q;
            if (n > b->size)
                memset(b->p + b->size, b->tag, n - b->size);
            b->size = n;
            fill(b);
            return;
        }
        if (k == 1) { /* leave it for another thread to free */
            unsigned h = tm_test_rand(r) % 64;
            unsigned char *expect = NULL;
            if (atomic_compare_exchange_strong(&handoff[h], &expect, b->p)) {
                b->p = NULL;
                return;
            }
            tm_free(atomic_exchange(&handoff[h], NULL)); /* NULL is fine */
        }
        tm_free(b->p);
        b->p = NULL;
        return;
    }
    b->size = pick_size(r);
    b->tag = (unsigned char)tm_test_rand(r);
    switch (tm_test_rand(r) % 4) {
    case 0: b->p = tm_site_calloc(site, 1, b->size); break;
    case 1: b->p = tm_site_aligned_alloc(site, 64u << (tm_test_rand(r) % 8),
                                         b->size); break;
    default: b->p = tm_site_malloc(site, b->size); break;
    }
    if (b->p == NULL) {
        atomic_fetch_add(&failures, 1);
        return;
    }
    fill(b);
}

typedef struct worker {
    uint64_t seed;
    unsigned ops;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    block_t blocks[SLOTS] = {0};
    uint64_t r = w->seed;
    for (unsigned i = 0; i < w->ops; i++)
        op(&blocks[tm_test_rand(&r) % SLOTS], &r);
    for (unsigned i = 0; i < SLOTS; i++)
        if (blocks[i].p) {
            if (!intact(&blocks[i]))
                atomic_fetch_add(&corrupt, 1);
            tm_free(blocks[i].p);
        }
    return NULL;
}

/* The consistency walk over every live arena: its extent set against the
 * extent map (see extent_check_consistency).  Returns the problems found. */
static size_t arenas_inconsistent(void)
{
    size_t problems = 0;
    arena_walk_begin(); /* no arena is freed under us */
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        if (a != NULL)
            problems += extent_check_consistency(&a->hooked);
    }
    arena_walk_end();
    return problems;
}

static void *writer(void *arg)
{
    _Atomic bool *stop = arg;
    char path[] = "/tmp/tm-site-storm-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    close(fd);
    while (!atomic_load(stop))
        if (tm_sites_write(path) != 0)
            atomic_fetch_add(&failures, 1);
    unlink(path);
    return NULL;
}

static int run_layout(void)
{
    unsigned nthreads = TM_TEST_TSAN ? 4 : 8, rounds = 3;
    unsigned ops = (unsigned)(15000 * tm_test_scale());
    if (ops < 2000)
        ops = 2000;
    _Atomic bool stop = false;
    pthread_t wt;
    /* debug builds: the hooks walk an arena's set every 64th split, merge
     * or destroy too */
    hook_set_consistency_period(64);
    REQUIRE(pthread_create(&wt, NULL, writer, &stop) == 0);
    /* threads end and new ones start: per-thread arenas are recycled */
    for (unsigned round = 0; round < rounds; round++) {
        pthread_t th[8];
        worker_t w[8];
        for (unsigned i = 0; i < nthreads; i++) {
            w[i] = (worker_t){0x9e3779b97f4a7c15ull * (round * 8 + i + 1), ops};
            REQUIRE(pthread_create(&th[i], NULL, worker, &w[i]) == 0);
        }
        for (unsigned i = 0; i < nthreads; i++)
            pthread_join(th[i], NULL);
        CHECK_MSG(arenas_inconsistent() == 0, "round %u: extent sets and the "
                  "extent map disagree (see the log)", round);
    }
    atomic_store(&stop, true);
    pthread_join(wt, NULL);
    for (unsigned h = 0; h < 64; h++)
        tm_free(atomic_exchange(&handoff[h], NULL));
    CHECK_MSG(atomic_load(&corrupt) == 0, "%u corrupt blocks",
              atomic_load(&corrupt));
    CHECK_MSG(atomic_load(&failures) == 0, "%u failed calls",
              atomic_load(&failures));
    unsigned bad = 0;
    uint64_t total_allocs = 0;
    for (unsigned i = 0; i < tm_site_count(); i++) {
        tm_site_info_t in;
        if (tm_site_info(i, &in) != 0 || in.stats.live != 0 ||
            in.stats.allocs != in.stats.frees) {
            bad++;
            fprintf(stderr, "site %u: allocs %llu frees %llu live %llu\n", i,
                    (unsigned long long)in.stats.allocs,
                    (unsigned long long)in.stats.frees,
                    (unsigned long long)in.stats.live);
        }
        total_allocs += in.stats.allocs;
    }
    CHECK_MSG(bad == 0, "%u sites with blocks left", bad);
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        tm_alloc_stats_t st;
        if (a == NULL)
            continue;
        tm_arena_alloc_stats(a, &st);
        CHECK_MSG(st.live == 0 && st.allocs == st.frees,
                  "arena %u: allocs %llu frees %llu live %llu", id,
                  (unsigned long long)st.allocs, (unsigned long long)st.frees,
                  (unsigned long long)st.live);
    }
    CHECK(total_allocs > (uint64_t)ops); /* the counters counted */
    CHECK(arenas_inconsistent() == 0);
    printf("%s: %u sites, %llu allocations\n", runtime_options.layout == 0 ? "per-site"
           : runtime_options.layout == 1 ? "per-thread" : "big-small",
           tm_site_count(), (unsigned long long)total_allocs);
    return tm_test_done("test_site_storm layout");
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc == 2) {
        REQUIRE(sites_ready());
        return run_layout();
    }
    static const char *layouts[] = {"per-site", "per-thread", "big-small"};
    for (int i = 0; i < 3; i++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            setenv("TIERMEM_LAYOUT", layouts[i], 1);
            setenv("TIERMEM_MAX_ARENAS", "24", 1); /* some sites share */
            setenv("TIERMEM_BIG_SMALL_THRESHOLD", "1M", 1);
            execl("/proc/self/exe", "test_site_storm", "child", (char *)NULL);
            _exit(127);
        }
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "layout %s: status %#x", layouts[i], status);
    }
    return tm_test_done("test_site_storm");
}
