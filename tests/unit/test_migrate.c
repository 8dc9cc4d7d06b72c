/*
 * test_migrate.c -- migration and residency on the machine we have.
 *
 * Here there is one NUMA node, so pages cannot change node; what can be
 * observed is that every extent of the arena gets the new policy (the
 * kernel reports it per address through get_mempolicy), that extents mapped
 * after the migration are born with it, that the report accounts for every
 * tracked byte, and that residency agrees with the pages we touched.
 * tests/guest/ repeats this on a multi-node guest where pages do move.
 */
#include "config.h"

#include <numaif.h>

#include "sites.h"
#include "../tm_test.h"

#define MiB ((size_t)1 << 20)

static int policy_at(void *p)
{
    int mode = -1;
    unsigned long mask[2] = {0};
    if (get_mempolicy(&mode, mask, 128, p, MPOL_F_ADDR) != 0)
        return -1;
    return mode;
}

static size_t arena_bytes(tm_arena_t *a)
{
    mutex_lock(&a->hooked.lock);
    size_t b = a->hooked.extents.bytes;
    mutex_unlock(&a->hooked.lock);
    return b;
}

enum { NSMALL = 4000, NLARGE = 6 };
static char *small[NSMALL], *large[NLARGE];
static size_t large_size[NLARGE] = {8 * MiB, 3 * MiB, 32 * MiB,
                                    1 * MiB, 16 * MiB, 5 * MiB};

static void fill(tm_arena_t *a)
{
    for (int i = 0; i < NSMALL; i++) {
        small[i] = tm_arena_malloc(a, 24 + (size_t)(i % 100) * 16);
        memset(small[i], 1, 24);
    }
    for (int i = 0; i < NLARGE; i++) {
        large[i] = tm_arena_aligned_alloc(a, 2 * MiB, large_size[i]);
        memset(large[i], 2, large_size[i]);
    }
}

static void test_residency(tm_arena_t *a)
{
    tm_residency_t r;
    REQUIRE_VOID(tm_arena_residency(a, 0, &r) == 0);
    size_t touched = 0;
    for (int i = 0; i < NLARGE; i++)
        touched += large_size[i];
    CHECK(r.stride == 1);
    CHECK(r.bytes_mapped == arena_bytes(a));
    CHECK(r.pages_queried * 4096 == r.bytes_mapped);
    CHECK(r.bytes_resident >= touched && r.bytes_resident <= r.bytes_mapped);
    CHECK(r.node_bytes[0] == r.bytes_resident);

    /* untouched memory is mapped but not resident */
    char *cold = tm_arena_malloc(a, 64 * MiB);
    tm_residency_t r2;
    CHECK(tm_arena_residency(a, 0, &r2) == 0);
    CHECK(r2.bytes_mapped >= r.bytes_mapped + 64 * MiB);
    CHECK(r2.bytes_resident < r.bytes_resident + 4 * MiB);
    tm_free(cold);

    /* sampled: a stride, and scaled figures near the exact ones */
    tm_residency_t s;
    CHECK(tm_arena_residency(a, 2000, &s) == 0);
    CHECK(s.stride > 1 && s.pages_queried <= 2000 + 64);
    CHECK_MSG(s.bytes_resident > r.bytes_resident * 3 / 4 &&
                  s.bytes_resident < r.bytes_resident * 5 / 4,
              "sampled %zu vs exact %zu", s.bytes_resident, r.bytes_resident);
}

/* Sampling across many small ranges: the query budget holds and the scaled
 * figure stays near the exact one (one phase over the whole arena). */
static void test_sampling_many_ranges(void)
{
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    tm_arena_t *x = tm_arena_create(&node0), *y = tm_arena_create(&node0);
    REQUIRE_VOID(x && y);
    /* alternate growth so each arena's extents are scattered ranges */
    for (int i = 0; i < 12; i++) {
        char *p = tm_arena_malloc(i % 2 ? x : y, 3 * MiB);
        memset(p, 1, 3 * MiB);
    }
    tm_residency_t exact, s16, s64;
    CHECK(tm_arena_residency(x, 0, &exact) == 0);
    CHECK(tm_arena_residency(x, 16, &s16) == 0);
    CHECK(tm_arena_residency(x, 64, &s64) == 0);
    CHECK_MSG(s16.pages_queried <= 16 && s64.pages_queried <= 64,
              "queried %zu and %zu", s16.pages_queried, s64.pages_queried);
    CHECK_MSG(s16.bytes_resident <= s16.bytes_mapped &&
                  s64.bytes_resident <= s64.bytes_mapped,
              "sampled resident above mapped");
    CHECK_MSG(s64.bytes_resident > exact.bytes_resident * 3 / 4 &&
                  s64.bytes_resident < exact.bytes_resident * 5 / 4,
              "sampled %zu vs exact %zu", s64.bytes_resident,
              exact.bytes_resident);
    CHECK(tm_arena_destroy(x) == 0 && tm_arena_destroy(y) == 0);
}

static void check_policy_everywhere(int mode, const char *what)
{
    size_t wrong = 0;
    for (int i = 0; i < NSMALL; i += 97)
        wrong += policy_at(small[i]) != mode;
    for (int i = 0; i < NLARGE; i++) {
        wrong += policy_at(large[i]) != mode;
        wrong += policy_at(large[i] + large_size[i] - 1) != mode;
    }
    CHECK_MSG(wrong == 0, "%s: %zu addresses without policy %d", what, wrong,
              mode);
}

static void migrate_to(tm_arena_t *a, tm_mode_t mode, int expect_policy)
{
    tm_placement_t to = tm_placement_node(mode, 0);
    tm_migrate_report_t rep;
    int rc = tm_arena_migrate(a, &to, &rep);
    CHECK_MSG(rc == 0, "migrate to mode %d: errno %d", (int)mode, rep.error);
    CHECK(rep.extents >= 1 && rep.extents_failed == 0);
    CHECK(rep.bytes_mapped == arena_bytes(a));
    CHECK(rep.bytes_resident > 0 && rep.bytes_moved == 0); /* one node */
    CHECK(rep.pages_failed == 0 && rep.nfailures == 0 && rep.error == 0);
    tm_placement_t now = tm_arena_placement(a);
    CHECK(now.mode == mode && now.nodes == 1);
    check_policy_everywhere(expect_policy, "after migrate");

    /* an extent mapped after the migration is born with the new policy */
    char *fresh = tm_arena_malloc(a, 24 * MiB);
    CHECK(fresh && policy_at(fresh) == expect_policy);
    tm_free(fresh);
}

/* BIND to a superset of the nodes: the arena's state replaces the walk
 * before the mbind, and the figures from the walk after it must agree with
 * a residency query. */
static void test_bind_to_bind(tm_arena_t *a)
{
    tm_residency_t r;
    CHECK(tm_arena_residency(a, 0, &r) == 0);
    tm_placement_t to = tm_placement_node(TM_MODE_BIND, 0);
    tm_migrate_report_t rep;
    CHECK(tm_arena_migrate(a, &to, &rep) == 0);
    CHECK(rep.extents >= 1 && rep.bytes_mapped == r.bytes_mapped);
    CHECK_MSG(rep.bytes_resident == r.bytes_resident,
              "migrate %zu vs residency %zu", rep.bytes_resident,
              r.bytes_resident);
    CHECK(rep.bytes_moved == 0 && rep.pages_failed == 0);
    check_policy_everywhere(MPOL_BIND, "bind to bind");
}

static void test_purge_keeps_policy(tm_arena_t *a)
{
    tm_free(large[2]);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "arena.%u.purge", tm_arena_jemalloc_index(a));
    CHECK(mallctl(cmd, NULL, NULL, NULL, 0) == 0);
    large[2] = tm_arena_aligned_alloc(a, 2 * MiB, large_size[2]);
    memset(large[2], 3, large_size[2]);
    CHECK(policy_at(large[2]) == MPOL_BIND);
    tm_stats_t s;
    tm_stats_get(&s);
    CHECK(s.purges > 0 || s.unmaps > 0);
}

static void test_bad_args(tm_arena_t *a)
{
    tm_placement_t empty = {TM_MODE_BIND, 0};
    CHECK(tm_arena_migrate(a, &empty, NULL) == -1 && errno == EINVAL);
    CHECK(tm_arena_migrate(NULL, &empty, NULL) == -1 && errno == EINVAL);
    tm_residency_t r;
    CHECK(tm_arena_residency(NULL, 0, &r) == -1 && errno == EINVAL);
}

int main(void)
{
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    tm_arena_t *a = tm_arena_create(&node0);
    REQUIRE(a != NULL);
    fill(a);
    check_policy_everywhere(MPOL_BIND, "at creation");
    test_residency(a);
    test_sampling_many_ranges();
    migrate_to(a, TM_MODE_PREFERRED, MPOL_PREFERRED);
    migrate_to(a, TM_MODE_INTERLEAVE, MPOL_INTERLEAVE);
    migrate_to(a, TM_MODE_BIND, MPOL_BIND);
    test_bind_to_bind(a);
    test_purge_keeps_policy(a);
    test_bad_args(a);
    tm_stats_t s;
    tm_stats_get(&s);
    CHECK(s.migrations == 4 && s.migrate_failures == 0);
    CHECK(s.mbind_failures == 0 && s.hook_alloc_failures == 0);
    CHECK(tm_arena_destroy(a) == 0);
    return tm_test_done(__FILE__);
}
