/*
 * guest_profile.c -- a profiled run reports resident bytes on the right
 * nodes.
 *
 * Two arenas, one bound to the first node and one to the last, each with
 * 16 MiB written.  The profiler runs with a residency pass every interval;
 * half-way the second arena is migrated to the first node.  The profile,
 * read back with the library's reader, must show each arena's bytes on its
 * node before the move and both on the first node after it, and its header
 * must list every node of the guest.
 */
#include "guest.h"

#include "profiler.h"

#define ARENA_BYTES (16ul << 20)

static _Atomic unsigned intervals_seen;

static void on_interval(const prof_interval_t *iv, void *ctx)
{
    (void)iv;
    (void)ctx;
    intervals_seen++;
}

static void wait_intervals(unsigned n)
{
    for (int i = 0; i < 3000 && intervals_seen < n; i++)
        usleep(10000);
}

/* Resident bytes of arena `id` on `node` in interval iv (0 if no row). */
static uint64_t resident_on(const prof_interval_t *iv, unsigned id,
                            unsigned node)
{
    for (size_t k = 0; k < iv->nresidency; k++)
        if (iv->residency[k].arena == id && iv->residency[k].node == node)
            return iv->residency[k].bytes;
    return 0;
}

/* The block's bytes, plus what jemalloc itself keeps resident in the
 * arena (its metadata, the rest of the block's extent). */
static bool near(uint64_t v, uint64_t want)
{
    return v >= want && v <= want + want / 2;
}

int main(void)
{
    tg_begin("guest_profile");
    long nodes = tg_env_long("TM_NODES", 1);
    if (nodes < 2) {
        tg_skip("residency", "one node: nothing to tell apart");
        return tg_done();
    }
    unsigned fast = 0, slow = (unsigned)nodes - 1;
    tm_placement_t on_fast = tm_placement_node(TM_MODE_BIND, fast);
    tm_placement_t on_slow = tm_placement_node(TM_MODE_BIND, slow);
    tm_arena_t *a = tm_arena_create(&on_fast), *b = tm_arena_create(&on_slow);
    char *pa = a ? tm_arena_malloc(a, ARENA_BYTES) : NULL;
    char *pb = b ? tm_arena_malloc(b, ARENA_BYTES) : NULL;
    if (!tg_check("alloc", pa && pb, "arenas or blocks: %s", strerror(errno)))
        return tg_done();
    tg_touch(pa, ARENA_BYTES, 1);
    tg_touch(pb, ARENA_BYTES, 2);

    prof_options_t o;
    prof_options_defaults(&o);
    o.enabled = true;
    o.sampler = PROF_SAMPLER_UFFD; /* exercised too; residency is the point */
    o.interval_ns = 50 * 1000000ull;
    o.residency_every = 1;
    o.residency_pages = 0; /* every page */
    snprintf(o.file, sizeof o.file, "/tmp/guest-profile.txt");
    profiler_set_interval_hook(on_interval, NULL);
    if (!tg_check("start", profiler_start(&o) == 0, "profiler_start: %s",
                  strerror(errno)))
        return tg_done();
    wait_intervals(3);
    unsigned before = intervals_seen;
    tm_migrate_report_t rep;
    bool moved = tm_arena_migrate(b, &on_fast, &rep) == 0;
    tg_check("migrate", moved, "tm_arena_migrate: %s, %zu pages failed",
             strerror(rep.error), rep.pages_failed);
    wait_intervals(intervals_seen + 3);
    profiler_stop();

    profile_t p;
    if (!tg_check("read", profile_read("/tmp/guest-profile.txt", &p) == 0,
                  "profile_read: %s", strerror(errno)))
        return tg_done();
    tg_check("complete", p.complete && p.nintervals >= before + 3,
             "complete %d, %zu intervals", p.complete, p.nintervals);
    tg_check("header-nodes", p.header.nnodes == (unsigned)nodes,
             "%u nodes in the header, guest has %ld", p.header.nnodes, nodes);
    unsigned ida = tm_arena_id(a), idb = tm_arena_id(b);
    /* the first interval ran before the migration */
    const prof_interval_t *first = &p.intervals[0];
    tg_check("before-a", near(resident_on(first, ida, fast), ARENA_BYTES) &&
                             resident_on(first, ida, slow) == 0,
             "arena a: %llu on node %u, %llu on node %u",
             (unsigned long long)resident_on(first, ida, fast), fast,
             (unsigned long long)resident_on(first, ida, slow), slow);
    tg_check("before-b", near(resident_on(first, idb, slow), ARENA_BYTES) &&
                             resident_on(first, idb, fast) == 0,
             "arena b: %llu on node %u, %llu on node %u",
             (unsigned long long)resident_on(first, idb, slow), slow,
             (unsigned long long)resident_on(first, idb, fast), fast);
    const prof_interval_t *last = &p.intervals[p.nintervals - 1];
    if (moved)
        tg_check("after-b", near(resident_on(last, idb, fast), ARENA_BYTES) &&
                                resident_on(last, idb, slow) == 0,
                 "arena b after the move: %llu on node %u, %llu on node %u",
                 (unsigned long long)resident_on(last, idb, fast), fast,
                 (unsigned long long)resident_on(last, idb, slow), slow);
    tg_check("after-a", near(resident_on(last, ida, fast), ARENA_BYTES),
             "arena a at the end: %llu on node %u",
             (unsigned long long)resident_on(last, ida, fast), fast);
    profile_free(&p);
    return tg_done();
}
