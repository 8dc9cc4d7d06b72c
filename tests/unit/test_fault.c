/*
 * test_fault.c -- failed system calls fail cleanly.
 *
 * mmap, mbind and move_pages are made to fail (ENOMEM, EFAULT, EIO) through
 * the os layer's call table.  Allocation must return NULL with errno set,
 * migration must say what failed, and afterwards nothing may be left mapped
 * or tracked that was not there before.
 */
#include "config.h"

#include <sys/mman.h>

#include "sites.h"
#include "../tm_test.h"
#include "../maps_util.h"

#define MiB ((size_t)1 << 20)

static int fail_mmap, fail_mbind, fail_move_pages; /* errno to inject, or 0 */
static unsigned mbind_only_with_flags; /* inject only into MOVE binds */

static void *inj_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
    if (fail_mmap) {
        errno = fail_mmap;
        return MAP_FAILED;
    }
    return os_real_ops()->mmap(a, l, p, f, fd, o);
}

static long inj_mbind(void *a, unsigned long l, int m, const unsigned long *n,
                      unsigned long mx, unsigned fl)
{
    if (fail_mbind && (!mbind_only_with_flags || fl != 0)) {
        errno = fail_mbind;
        return -1;
    }
    return os_real_ops()->mbind(a, l, m, n, mx, fl);
}

/* fake_node: queries report resident pages on this node instead;
 * fake_move_status: every page a move is asked for gets this status. */
static int fake_node = -1, fake_move_status;
static size_t move_asks; /* pages passed to move_pages to be moved */

static long inj_move_pages(int pid, unsigned long c, void **p, const int *n,
                           int *s, int fl)
{
    if (fail_move_pages) {
        errno = fail_move_pages;
        return -1;
    }
    if (n != NULL && fake_move_status) {
        move_asks += c;
        for (unsigned long i = 0; i < c; i++)
            s[i] = fake_move_status;
        return 0;
    }
    long rc = os_real_ops()->move_pages(pid, c, p, n, s, fl);
    if (rc == 0 && n == NULL && fake_node >= 0)
        for (unsigned long i = 0; i < c; i++)
            if (s[i] >= 0)
                s[i] = fake_node;
    return rc;
}

/* Pages the kernel refuses to move for good are failed at once; only EBUSY
 * is tried again (and then reported with its reason). */
static void test_refusals(tm_arena_t *a)
{
    char *p = tm_arena_malloc(a, 4 * MiB);
    memset(p, 1, 4 * MiB);
    tm_placement_t pref = tm_placement_node(TM_MODE_PREFERRED, 0);
    struct { int status; unsigned asks_per_page; } cases[] = {
        {-EACCES, 1}, {-ENOMEM, 1}, {-EBUSY, 5}};
    for (unsigned k = 0; k < 3; k++) {
        tm_migrate_report_t rep;
        fake_node = 1; /* every resident page looks off node 0 */
        fake_move_status = cases[k].status;
        move_asks = 0;
        int rc = tm_arena_migrate(a, &pref, &rep);
        fake_node = -1;
        fake_move_status = 0;
        CHECK_MSG(rc == -1 && rep.pages_failed > 0 &&
                      rep.error == -cases[k].status,
                  "status %d: rc %d failed %zu error %d", cases[k].status, rc,
                  rep.pages_failed, rep.error);
        CHECK_MSG(move_asks == rep.pages_failed * cases[k].asks_per_page,
                  "status %d: %zu pages asked to move for %zu failed",
                  cases[k].status, move_asks, rep.pages_failed);
        CHECK(rep.nfailures == TM_REPORT_MAX_FAILURES &&
              rep.failures[0].error == -cases[k].status);
        CHECK((cases[k].status == -EBUSY) == (rep.busy_retries > 0));
    }
    CHECK(tm_arena_migrate(a, &pref, NULL) == 0); /* nothing wrong really */
    tm_free(p);
}

static tm_placement_t node0;

static void test_create_fails(void)
{
    /* warm up: the first arena maps tiermem's and jemalloc's metadata */
    tm_arena_t *w = tm_arena_create(&node0);
    CHECK(w != NULL && tm_arena_destroy(w) == 0);
    tm_stats_t s0, s1;
    tm_stats_get(&s0);
    size_t vmas = maps_count(NULL);
    fail_mmap = ENOMEM;
    errno = 0;
    tm_arena_t *a = tm_arena_create(&node0);
    fail_mmap = 0;
    CHECK(a == NULL && errno != 0);
    tm_stats_get(&s1);
    CHECK(s1.extents == s0.extents && s1.bytes_mapped == s0.bytes_mapped);
    CHECK(TM_TEST_TSAN || maps_count(NULL) <= vmas);
    /* the slot was given back: the next arena takes it */
    tm_arena_t *b = tm_arena_create(&node0);
    CHECK(b != NULL && tm_arena_id(b) == 1);
    CHECK(tm_arena_destroy(b) == 0);
}

/* A new extent that cannot be mapped or bound: NULL, errno, nothing left. */
static void alloc_fails_cleanly(tm_arena_t *a, int *knob, int err,
                                const char *what)
{
    tm_stats_t s0, s1;
    tm_stats_get(&s0);
    size_t bytes0, bytes1;
    maps_count(&bytes0);
    *knob = err;
    errno = 0;
    void *p = tm_arena_malloc(a, 256 * MiB); /* larger than anything cached */
    int got = errno;
    *knob = 0;
    CHECK_MSG(p == NULL && got == ENOMEM, "%s: p %p errno %d", what, p, got);
    tm_stats_get(&s1);
    CHECK_MSG(s1.hook_alloc_failures > s0.hook_alloc_failures, "%s", what);
    CHECK_MSG(s1.bytes_mapped == s0.bytes_mapped, "%s: tracked %lu -> %lu",
              what, (unsigned long)s0.bytes_mapped,
              (unsigned long)s1.bytes_mapped);
    maps_count(&bytes1);
    CHECK_MSG(TM_TEST_TSAN || bytes1 <= bytes0, "%s: mapped %zu -> %zu", what,
              bytes0, bytes1);
    /* and the arena still works (a size it can carve from what it has, so
     * the next case again needs a new extent) */
    void *q = tm_arena_malloc(a, 1 * MiB);
    CHECK_MSG(q != NULL, "%s: arena unusable afterwards", what);
    tm_free(q);
}

static void test_alloc_failures(tm_arena_t *a)
{
    alloc_fails_cleanly(a, &fail_mmap, ENOMEM, "mmap ENOMEM");
    tm_stats_t s0, s1;
    tm_stats_get(&s0);
    alloc_fails_cleanly(a, &fail_mbind, EFAULT, "mbind EFAULT");
    alloc_fails_cleanly(a, &fail_mbind, EIO, "mbind EIO");
    alloc_fails_cleanly(a, &fail_mbind, ENOMEM, "mbind ENOMEM");
    tm_stats_get(&s1);
    CHECK(s1.mbind_failures >= s0.mbind_failures + 3);
}

static void test_migrate_failures(tm_arena_t *a)
{
    char *p = tm_arena_malloc(a, 8 * MiB);
    memset(p, 1, 8 * MiB);
    tm_placement_t pref = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_migrate_report_t rep;

    /* mbind(MPOL_MF_MOVE) fails: reported per extent, placement recorded */
    fail_mbind = EFAULT;
    mbind_only_with_flags = 1;
    errno = 0;
    int rc = tm_arena_migrate(a, &pref, &rep);
    int got = errno;
    fail_mbind = 0;
    CHECK(rc == -1 && got == EFAULT);
    CHECK(rep.extents == 0 && rep.extents_failed >= 1 && rep.error == EFAULT);
    CHECK(tm_arena_placement(a).mode == TM_MODE_PREFERRED);
    /* the next migration binds them all */
    CHECK(tm_arena_migrate(a, &pref, &rep) == 0);
    CHECK(rep.extents >= 1 && rep.extents_failed == 0);

    /* EIO means "policy set, some pages did not move": verified by query */
    fail_mbind = EIO;
    rc = tm_arena_migrate(a, &node0, &rep);
    fail_mbind = 0;
    mbind_only_with_flags = 0;
    CHECK(rc == 0 && rep.extents >= 1 && rep.pages_failed == 0);

    /* move_pages itself failing is reported, not fatal (PREFERRED: the
     * pages must be looked at, the kernel does not guarantee where) */
    fail_move_pages = ENOMEM;
    rc = tm_arena_migrate(a, &pref, &rep);
    tm_residency_t r;
    int rr = tm_arena_residency(a, 0, &r);
    fail_move_pages = 0;
    CHECK(rc == -1 && rep.error == ENOMEM); /* unsure figures are a failure */
    CHECK(rr == -1);
    CHECK(tm_arena_residency(a, 0, &r) == 0 && r.bytes_resident >= 8 * MiB);
    /* a migration while the queries keep failing keeps failing */
    fail_move_pages = ENOMEM;
    rc = tm_arena_migrate(a, &node0, &rep);
    fail_move_pages = 0;
    CHECK(rc == -1 && rep.error == ENOMEM);
    CHECK(tm_arena_migrate(a, &node0, &rep) == 0);
    tm_free(p);
}

int main(void)
{
    node0 = tm_placement_node(TM_MODE_BIND, 0);
    runtime_init();
    log_configure(TM_LOG_OFF, -1); /* the failures are the point here */
    os_ops_t ops = *os_real_ops();
    ops.mmap = inj_mmap;
    ops.mbind = inj_mbind;
    ops.move_pages = inj_move_pages;
    os_set_ops(&ops);

    test_create_fails();
    tm_arena_t *a = tm_arena_create(&node0);
    REQUIRE(a != NULL);
    tm_free(tm_arena_malloc(a, 64)); /* this thread's tcache exists now */
    test_alloc_failures(a);
    test_migrate_failures(a);
    test_refusals(a);
    CHECK(tm_arena_destroy(a) == 0);
    tm_stats_t s;
    tm_stats_get(&s);
    CHECK(s.extents == 0 && s.bytes_mapped == 0);
    os_set_ops(NULL);
    return tm_test_done(__FILE__);
}
