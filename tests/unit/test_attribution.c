/*
 * test_attribution.c -- address -> arena -> site attribution, per interval.
 *
 * Known sample addresses in many arenas must come out of attrib_close as
 * exactly the expected per-arena and per-site counts; heat must follow the
 * EWMA; under allocation churn with concurrent samplers no sample may be
 * lost or misattributed; shared-arena samples are apportioned by live bytes
 * (a child run with TIERMEM_MAX_ARENAS=1, where explicit sites share).
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "profiler.h"
#include "../tm_test.h"

#define NARENAS 64
#define HALFLIFE 2.0

/* The expected decay, computed here rather than by prof_heat_decay, so a
 * wrong prof_heat_decay shows. */
static double test_heat_decay(double halflife) { return exp2(-1.0 / halflife); }

static const prof_arena_row_t *row_of(const prof_interval_t *iv, unsigned id)
{
    for (size_t i = 0; i < iv->narenas; i++)
        if (iv->arenas[i].id == id)
            return &iv->arenas[i];
    return NULL;
}

static const prof_site_row_t *site_row_by_id(const prof_interval_t *iv,
                                             int explicit_id)
{
    for (size_t i = 0; i < iv->nsites; i++)
        if (iv->sites[i].explicit_id == explicit_id)
            return &iv->sites[i];
    return NULL;
}

static tm_placement_t node0(void) { return tm_placement_node(TM_MODE_PREFERRED, 0); }

/* ------------------------------------------------------------ (1) counts */

static void test_many_arenas(void)
{
    attrib_t *a = attrib_new(HALFLIFE);
    REQUIRE_VOID(a != NULL);
    tm_placement_t p = node0();
    tm_arena_t *ar[NARENAS];
    char *blk[NARENAS];
    for (int i = 0; i < NARENAS; i++) {
        ar[i] = tm_arena_create(&p);
        REQUIRE_VOID(ar[i] != NULL);
        blk[i] = tm_arena_malloc(ar[i], 4096 * (size_t)(i + 1));
        REQUIRE_VOID(blk[i] != NULL);
    }
    attrib_close(a, 0, 1); /* start from empty counters */
    prof_sink_t sink = attrib_sink(a);
    uint64_t total = 0;
    for (int i = 0; i < NARENAS; i++) {
        /* i samples of weight 1 and one of weight i + 1, spread inside */
        for (int k = 0; k < i; k++)
            CHECK(attrib_sample(a, (uintptr_t)blk[i] + 4096 * (size_t)k, 1) ==
                  tm_arena_id(ar[i]));
        sink.sample(sink.ctx, (uintptr_t)blk[i] + 17, (uint32_t)(i + 1));
        total += (uint64_t)(2 * i + 1);
    }
    int on_stack = 0;
    char *foreign = malloc(64);
    CHECK(attrib_sample(a, (uintptr_t)&on_stack, 1) == 0);
    CHECK(attrib_sample(a, (uintptr_t)foreign, 2) == 0);
    CHECK(attrib_sample(a, 0, 3) == 0);
    free(foreign);
    attrib_lost(a, 5);
    sink.lost(sink.ctx, 2);

    const prof_interval_t *iv = attrib_close(a, 1, 2);
    REQUIRE_VOID(iv != NULL);
    CHECK(iv->seq == 2 && iv->t_start_ns == 1 && iv->t_end_ns == 2);
    CHECK(iv->unattributed == 6);
    CHECK(iv->lost == 7);
    CHECK(iv->samples == total + 6);
    unsigned bad = 0;
    for (int i = 0; i < NARENAS; i++) {
        const prof_arena_row_t *r = row_of(iv, tm_arena_id(ar[i]));
        bad += r == NULL || r->samples != (uint64_t)(2 * i + 1) ||
               r->kind != ARENA_USER || r->mapped < 4096 * (size_t)(i + 1) ||
               r->placement.nodes != p.nodes || r->resident_valid;
    }
    CHECK_MSG(bad == 0, "%u of %d arena rows wrong", bad, NARENAS);
    uint64_t sum = 0;
    for (size_t i = 0; i < iv->narenas; i++) {
        sum += iv->arenas[i].samples;
        if (i > 0)
            CHECK(iv->arenas[i - 1].id < iv->arenas[i].id);
    }
    CHECK(sum + iv->unattributed == iv->samples);

    /* residency given this interval shows in the next close only */
    tm_residency_t res = {.bytes_resident = 8192};
    res.node_bytes[0] = 8192;
    attrib_residency(a, tm_arena_id(ar[3]), &res);
    iv = attrib_close(a, 2, 3);
    REQUIRE_VOID(iv != NULL);
    CHECK(iv->samples == 0 && iv->lost == 0 && iv->unattributed == 0);
    const prof_arena_row_t *r3 = row_of(iv, tm_arena_id(ar[3]));
    CHECK(r3 != NULL && r3->resident_valid && r3->resident == 8192);
    CHECK(iv->nresidency == 1 && iv->residency[0].arena == tm_arena_id(ar[3]) &&
          iv->residency[0].node == 0 && iv->residency[0].bytes == 8192);
    iv = attrib_close(a, 3, 4);
    r3 = row_of(iv, tm_arena_id(ar[3]));
    CHECK(r3 != NULL && !r3->resident_valid && iv->nresidency == 0);

    for (int i = 0; i < NARENAS; i++)
        CHECK(tm_arena_destroy(ar[i]) == 0);
    attrib_delete(a);
}

/* ------------------------------------------------------------ (2) heat */

static void test_heat(void)
{
    attrib_t *a = attrib_new(HALFLIFE);
    REQUIRE_VOID(a != NULL);
    tm_placement_t p = node0();
    tm_arena_t *x = tm_arena_create(&p);
    REQUIRE_VOID(x != NULL);
    char *b = tm_arena_malloc(x, 65536);
    REQUIRE_VOID(b != NULL);
    unsigned id = tm_arena_id(x);
    double d = test_heat_decay(HALFLIFE), h = 0;
    static const uint64_t samples[] = {100, 0, 50, 0, 0, 7};
    bool exact = true;
    for (size_t k = 0; k < sizeof samples / sizeof *samples; k++) {
        for (uint64_t n = 0; n < samples[k]; n++)
            attrib_sample(a, (uintptr_t)b + n, 1);
        const prof_interval_t *iv = attrib_close(a, k, k + 1);
        h = h * d + (double)samples[k] * (1 - d);
        const prof_arena_row_t *r = iv ? row_of(iv, id) : NULL;
        exact &= r != NULL && r->samples == samples[k] &&
                 fabs(r->heat - h) <= 1e-9 * (1 + h);
    }
    CHECK(exact);
    CHECK(fabs(h - ((((100 * (1 - d)) * d * d + 50 * (1 - d)) * d * d * d) +
                    7 * (1 - d))) < 1e-9);

    /* the id empty at one close: a new arena there starts with no heat */
    CHECK(tm_arena_destroy(x) == 0);
    const prof_interval_t *iv = attrib_close(a, 10, 11);
    CHECK(iv != NULL && row_of(iv, id) == NULL);
    tm_arena_t *y = tm_arena_create(&p);
    REQUIRE_VOID(y != NULL);
    b = tm_arena_malloc(y, 65536);
    REQUIRE_VOID(b != NULL);
    attrib_sample(a, (uintptr_t)b, 4);
    iv = attrib_close(a, 11, 12);
    const prof_arena_row_t *r = row_of(iv, tm_arena_id(y));
    CHECK(r != NULL && fabs(r->heat - 4 * (1 - d)) < 1e-9);

    /* Destroyed and re-created between two closes: the runtime recycles
     * the tm_arena_t block and jemalloc the index, but the serial tells
     * the new arena apart, so its heat starts from zero. */
    CHECK(tm_arena_destroy(y) == 0);
    tm_arena_t *z = tm_arena_create(&p);
    REQUIRE_VOID(z != NULL);
    iv = attrib_close(a, 12, 13);
    r = row_of(iv, tm_arena_id(z));
    CHECK(r != NULL && r->samples == 0 && r->heat == 0);
    CHECK(tm_arena_destroy(z) == 0);
    attrib_delete(a);
}

/* ------------------------------------------------------------ (3) churn */

#define CHURN_ARENAS 32
#define CHURN_SLOTS 48

typedef struct churn_slot {
    char *ptr;
    size_t size;
    unsigned arena; /* index into churn.arenas */
} churn_slot_t;

static struct churn {
    attrib_t *a;
    tm_arena_t *arenas[CHURN_ARENAS];
    pthread_mutex_t lock;
    churn_slot_t slots[CHURN_SLOTS];
    _Atomic bool stop;
    _Atomic unsigned allocators_left;
    unsigned iterations;
} churn = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct sampler_job {
    uint64_t seed;
    uint64_t counted[CHURN_ARENAS];
    uint64_t wrong;
} sampler_job_t;

static void *churn_allocator(void *arg)
{
    uint64_t seed = (uintptr_t)arg;
    for (unsigned it = 0; it < churn.iterations; it++) {
        unsigned ai = (unsigned)(tm_test_rand(&seed) % CHURN_ARENAS);
        size_t size = (64u << 10) + tm_test_rand(&seed) % ((8u << 20) - (64u << 10));
        char *p;
        if (tm_test_rand(&seed) % 3 == 0)
            p = tm_arena_aligned_alloc(churn.arenas[ai],
                                       (size_t)1 << (16 + tm_test_rand(&seed) % 6),
                                       size);
        else
            p = tm_arena_malloc(churn.arenas[ai], size);
        if (p == NULL)
            continue;
        unsigned slot = (unsigned)(tm_test_rand(&seed) % CHURN_SLOTS);
        pthread_mutex_lock(&churn.lock);
        churn_slot_t old = churn.slots[slot];
        churn.slots[slot] = (churn_slot_t){p, size, ai};
        pthread_mutex_unlock(&churn.lock);
        tm_free(old.ptr); /* unpublished first: no sampler can hold it */
    }
    atomic_fetch_sub(&churn.allocators_left, 1);
    return NULL;
}

static void *churn_sampler(void *arg)
{
    sampler_job_t *job = arg;
    while (!atomic_load(&churn.stop)) {
        unsigned slot = (unsigned)(tm_test_rand(&job->seed) % CHURN_SLOTS);
        pthread_mutex_lock(&churn.lock);
        churn_slot_t s = churn.slots[slot];
        if (s.ptr != NULL) {
            uintptr_t addr = (uintptr_t)s.ptr + tm_test_rand(&job->seed) % s.size;
            unsigned id = attrib_sample(churn.a, addr, 1);
            job->counted[s.arena]++;
            job->wrong += id != tm_arena_id(churn.arenas[s.arena]);
        }
        pthread_mutex_unlock(&churn.lock);
    }
    return NULL;
}

static void test_churn(void)
{
    churn.a = attrib_new(HALFLIFE);
    REQUIRE_VOID(churn.a != NULL);
    tm_placement_t p = node0();
    for (int i = 0; i < CHURN_ARENAS; i++) {
        churn.arenas[i] = tm_arena_create(&p);
        REQUIRE_VOID(churn.arenas[i] != NULL);
    }
    churn.iterations = (unsigned)(3000 * tm_test_scale());
    atomic_store(&churn.allocators_left, 2);
    static sampler_job_t jobs[2] = {{.seed = 11}, {.seed = 13}};
    pthread_t alloc_t[2], samp_t[2];
    for (int i = 0; i < 2; i++) {
        REQUIRE_VOID(pthread_create(&alloc_t[i], NULL, churn_allocator,
                                    (void *)(uintptr_t)(0x1234 + i)) == 0);
        REQUIRE_VOID(pthread_create(&samp_t[i], NULL, churn_sampler,
                                    &jobs[i]) == 0);
    }
    uint64_t seen[CHURN_ARENAS] = {0}, unattributed = 0, closes = 0;
    for (bool last = false; !last;) {
        last = atomic_load(&churn.allocators_left) == 0;
        if (last) { /* samplers stop before the last close */
            atomic_store(&churn.stop, true);
            for (int i = 0; i < 2; i++)
                pthread_join(samp_t[i], NULL);
        } else {
            nanosleep(&(struct timespec){0, 2000000}, NULL);
        }
        const prof_interval_t *iv = attrib_close(churn.a, closes, closes + 1);
        REQUIRE_VOID(iv != NULL);
        closes++;
        unattributed += iv->unattributed;
        for (int i = 0; i < CHURN_ARENAS; i++) {
            const prof_arena_row_t *r = row_of(iv, tm_arena_id(churn.arenas[i]));
            seen[i] += r ? r->samples : 0;
        }
    }
    for (int i = 0; i < 2; i++)
        pthread_join(alloc_t[i], NULL);
    unsigned mismatched = 0;
    uint64_t total = 0;
    for (int i = 0; i < CHURN_ARENAS; i++) {
        uint64_t want = jobs[0].counted[i] + jobs[1].counted[i];
        total += want;
        mismatched += seen[i] != want;
    }
    CHECK_MSG(mismatched == 0, "%u arenas' sums differ", mismatched);
    CHECK(jobs[0].wrong + jobs[1].wrong == 0);
    CHECK(unattributed == 0);
    CHECK(total > 0);
    printf("  churn: %llu samples over %llu intervals\n",
           (unsigned long long)total, (unsigned long long)closes);
    for (int i = 0; i < CHURN_SLOTS; i++)
        tm_free(churn.slots[i].ptr);
    for (int i = 0; i < CHURN_ARENAS; i++)
        CHECK(tm_arena_destroy(churn.arenas[i]) == 0);
    attrib_delete(churn.a);
}

/* ------------------------------------------------------------ (4) sites */

static void test_site_exact(void)
{
    attrib_t *a = attrib_new(HALFLIFE);
    REQUIRE_VOID(a != NULL);
    char *b1 = tm_site_malloc(101, 1 << 20);
    char *b2 = tm_site_malloc(102, 2 << 20);
    REQUIRE_VOID(b1 != NULL && b2 != NULL);
    attrib_close(a, 0, 1);
    for (int i = 0; i < 5; i++)
        attrib_sample(a, (uintptr_t)b1 + 1000 * (size_t)i, 1);
    attrib_sample(a, (uintptr_t)b2 + 5, 9);
    const prof_interval_t *iv = attrib_close(a, 1, 2);
    REQUIRE_VOID(iv != NULL);
    const prof_site_row_t *s1 = site_row_by_id(iv, 101);
    const prof_site_row_t *s2 = site_row_by_id(iv, 102);
    REQUIRE_VOID(s1 != NULL && s2 != NULL);
    const prof_arena_row_t *r1 = row_of(iv, s1->arena);
    CHECK(s1->samples == 5 && !s1->estimated);
    CHECK(s2->samples == 9 && !s2->estimated);
    CHECK(s1->key == site_explicit_key(101));
    CHECK(s1->stats.live >= 1 << 20 && s1->stats.allocs == 1);
    CHECK(r1 != NULL && r1->kind == ARENA_SITE && r1->owner_site == s1->index &&
          r1->samples == 5 && r1->stats.live == s1->stats.live);
    double d = test_heat_decay(HALFLIFE);
    CHECK(fabs(s1->heat - 5 * (1 - d)) < 1e-9);
    CHECK(iv->nsites == site_count());
    tm_free(b1);
    tm_free(b2);
    attrib_delete(a);
}

/* Child (TIERMEM_MAX_ARENAS=1): explicit sites share one arena. */
static int child_shared(void)
{
    attrib_t *a = attrib_new(HALFLIFE);
    REQUIRE(a != NULL);
    char *b1 = tm_site_malloc(201, 3 << 20);
    char *b2 = tm_site_malloc(202, 1 << 20);
    REQUIRE(b1 != NULL && b2 != NULL);
    tm_arena_t *sh = tm_arena_of(b1);
    REQUIRE(sh != NULL && tm_arena_of(b2) == sh);
    /* the parent set the per-site layout and one arena: nothing else */
    REQUIRE(site_arena_kind(sh, NULL) == ARENA_SHARED);
    attrib_close(a, 0, 1);
    for (int i = 0; i < 11; i++) /* 3:1 live bytes -> 8.25 : 2.75 */
        attrib_sample(a, (uintptr_t)(i % 2 ? b1 : b2) + (size_t)i, 1);
    const prof_interval_t *iv = attrib_close(a, 1, 2);
    REQUIRE(iv != NULL);
    const prof_site_row_t *s1 = site_row_by_id(iv, 201);
    const prof_site_row_t *s2 = site_row_by_id(iv, 202);
    const prof_arena_row_t *r = row_of(iv, tm_arena_id(sh));
    REQUIRE(s1 != NULL && s2 != NULL && r != NULL);
    CHECK(r->samples == 11 && r->kind == ARENA_SHARED);
    CHECK(s1->arena == tm_arena_id(sh) && s2->arena == tm_arena_id(sh));
    CHECK(s1->estimated && s2->estimated);
    CHECK_MSG(s1->samples == 8 && s2->samples == 3, "%llu %llu",
              (unsigned long long)s1->samples, (unsigned long long)s2->samples);
    CHECK(r->stats.live == s1->stats.live + s2->stats.live);
    /* a site with no live bytes left gets no share */
    tm_free(b1);
    tm_free(b2);
    char *b3 = tm_site_malloc(201, 1 << 20);
    REQUIRE(b3 != NULL);
    attrib_sample(a, (uintptr_t)b3, 7);
    iv = attrib_close(a, 2, 3);
    s1 = site_row_by_id(iv, 201);
    s2 = site_row_by_id(iv, 202);
    CHECK(s1 && s2 && s1->samples == 7 && s2->samples == 0);
    tm_free(b3);
    attrib_delete(a);
    return tm_test_failed ? 1 : 0;
}

/* posix_spawn, not fork: fork runs jemalloc's handler, which takes every
 * arena's mutexes at once, more than ThreadSanitizer's deadlock detector
 * can track; a spawned child starts clean. */
static void test_site_shared(void)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + 3, sizeof *env);
    REQUIRE_VOID(env != NULL);
    /* no tiermem setting from outside: sharing is then certain, and its
     * absence a failure */
    size_t k = 0;
    env[k++] = "TIERMEM_MAX_ARENAS=1";
    env[k++] = "TIERMEM_LAYOUT=per-site";
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "TIERMEM_", 8) != 0 &&
            strncmp(environ[i], "SH_", 3) != 0)
            env[k++] = environ[i];
    char *argv[] = {"test_attribution", "shared", NULL};
    pid_t pid;
    int err = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, env);
    free(env);
    REQUIRE_VOID(err == 0);
    int status;
    REQUIRE_VOID(waitpid(pid, &status, 0) == pid);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    CHECK_MSG(rc == 0, "shared child exit %d", rc);
}

int main(int argc, char **argv)
{
    REQUIRE(sites_ready());
    if (argc == 2 && strcmp(argv[1], "shared") == 0) {
        int rc = child_shared();
        fprintf(stderr, "shared: %u passed, %u failed\n", tm_test_passed,
                tm_test_failed);
        return rc;
    }
    test_many_arenas();
    test_heat();
    test_churn();
    test_site_exact();
    test_site_shared();
    return tm_test_done("test_attribution");
}
