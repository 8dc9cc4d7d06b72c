/*
 * guest_seed_storm.c -- the seed scenario (shared/seed-alignment-bug.txt):
 * many threads making large aligned allocations from several arenas while
 * another thread migrates those arenas between node 0 and node 1.
 *
 * 16 worker threads each make ITERS allocations of 64 KiB - 8 MiB with
 * alignments of 4 KiB - 4 MiB, spread over 4 arenas (TM_MODE_BIND, two
 * starting on node 0, two on node 1), touch every page, check the contents
 * survive, and free them again (each keeps at most SLOTS live).  A migrator
 * thread moves the arenas back and forth the whole time.
 *
 * Must hold:
 *   - no allocation returns NULL, every one is aligned as asked and owned by
 *     its arena, and no page's contents change under a migration;
 *   - a migration during the storm either succeeds or reports only pages
 *     that were busy (EIO / EBUSY); no extent may fail to bind (the seed
 *     bug was mbind failing with EFAULT on a trimmed aligned extent);
 *   - tm_stats_get: hook_alloc_failures == 0 and mbind_failures == 0;
 *   - after the storm, one more migration of each arena (alone) succeeds and
 *     every page of every live allocation, and every resident byte of each
 *     arena, is on that arena's final node.
 * TM_STORM_ITERS overrides the allocations per thread;
 * TM_STORM_NO_MIGRATOR=1 leaves out the migrations during the storm (only
 * the final one runs), to tell concurrency problems from others.  On a one-node
 * machine (a host) the same program runs with every arena on node 0, which
 * still exercises the hooks and the migration locking.
 */
#include "guest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <tiermem.h>

#define NTHREADS 16
#define NARENAS 4
#define SLOTS 2
#define MIN_SIZE (64UL << 10)
#define MAX_SIZE (8UL << 20)
#define MIN_ALIGN_SHIFT 12 /* 4 KiB */
#define MAX_ALIGN_SHIFT 22 /* 4 MiB */

static tm_arena_t *arenas[NARENAS];
static _Atomic unsigned arena_node[NARENAS];
/* The two nodes the arenas move between: 0 and 1, or 0 and 0 on a
 * one-node machine (then the test still runs the storm, e.g. on a host). */
static unsigned side[2] = {0, 1};
static atomic_bool workers_done;
static unsigned iters;

typedef struct slot {
    void *p;
    size_t len;
    unsigned arena;
    unsigned char fill;
} slot_t;

typedef struct worker {
    pthread_t tid;
    unsigned id;
    uint64_t rng;
    slot_t slot[SLOTS];
    /* results */
    unsigned allocs, null_allocs, misaligned, wrong_arena, corrupted;
    char why[256];
} worker_t;

typedef struct migrator {
    pthread_t tid;
    unsigned ok, busy_only, bad, rounds;
    int bad_errno;
    size_t bad_extents_failed;
    char why[256];
} migrator_t;

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void note(worker_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(worker_t *w, const char *fmt, ...)
{
    if (w->why[0])
        return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof w->why, fmt, ap);
    va_end(ap);
}

static void fill_pages(slot_t *s)
{
    volatile unsigned char *c = s->p;
    for (size_t off = 0; off < s->len; off += TG_PAGE)
        c[off] = (unsigned char)(s->fill + off / TG_PAGE);
    c[s->len - 1] = s->fill;
}

static bool pages_intact(const slot_t *s)
{
    const volatile unsigned char *c = s->p;
    for (size_t off = 0; off < s->len; off += TG_PAGE)
        if (c[off] != (unsigned char)(s->fill + off / TG_PAGE))
            return false;
    return c[s->len - 1] == s->fill;
}

static void release(worker_t *w, slot_t *s)
{
    if (!s->p)
        return;
    if (!pages_intact(s)) {
        w->corrupted++;
        note(w, "contents of %zu bytes at %p changed", s->len, s->p);
    }
    tm_free(s->p);
    s->p = NULL;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (unsigned i = 0; i < iters; i++) {
        slot_t *s = &w->slot[next_rand(&w->rng) % SLOTS];
        release(w, s);
        /* log-uniform size in [64 KiB, 8 MiB], power-of-two alignment */
        unsigned shift = 16 + (unsigned)(next_rand(&w->rng) % 8); /* 64K..8M */
        size_t size = (1UL << shift) +
                      (next_rand(&w->rng) % (1UL << shift)) / 2;
        if (size > MAX_SIZE)
            size = MAX_SIZE;
        if (size < MIN_SIZE)
            size = MIN_SIZE;
        size_t align = 1UL << (MIN_ALIGN_SHIFT +
                               next_rand(&w->rng) %
                                   (MAX_ALIGN_SHIFT - MIN_ALIGN_SHIFT + 1));
        unsigned ai = (w->id + i) % NARENAS;
        void *p = tm_arena_aligned_alloc(arenas[ai], align, size);
        w->allocs++;
        if (!p) {
            w->null_allocs++;
            note(w, "tm_arena_aligned_alloc(arena %u, %zu, %zu): NULL, %s", ai,
                 align, size, strerror(errno));
            continue;
        }
        if ((uintptr_t)p % align) {
            w->misaligned++;
            note(w, "%p is not aligned to %zu", p, align);
        }
        if (tm_arena_of(p) != arenas[ai] ||
            tm_arena_of((char *)p + size - 1) != arenas[ai]) {
            w->wrong_arena++;
            note(w, "tm_arena_of(%p..+%zu) is not arena %u", p, size, ai);
        }
        *s = (slot_t){.p = p, .len = size, .arena = ai,
                      .fill = (unsigned char)(w->id * 16 + i)};
        fill_pages(s);
    }
    return NULL;
}

/* One migration of arena i to the other node.  `alone`: nothing else runs,
 * so anything short of full success is a failure. */
static bool migrate_one(migrator_t *m, unsigned i, bool alone)
{
    unsigned to = side[atomic_load(&arena_node[i]) == side[0]];
    tm_placement_t pl = tm_placement_node(TM_MODE_BIND, to);
    tm_migrate_report_t rep;
    int rc = tm_arena_migrate(arenas[i], &pl, &rep);
    int err = errno;
    atomic_store(&arena_node[i], to); /* the placement changes either way */
    if (rc == 0) {
        m->ok++;
        return true;
    }
    bool busy_only = !alone && rep.extents_failed == 0 &&
                     (err == EIO || err == EBUSY);
    if (busy_only) {
        m->busy_only++;
        return true;
    }
    m->bad++;
    if (!m->why[0]) {
        m->bad_errno = err;
        m->bad_extents_failed = rep.extents_failed;
        snprintf(m->why, sizeof m->why,
                 "migrating arena %u to node %u%s: rc %d errno %d (%s), "
                 "extents failed %zu, pages failed %zu, first page %p err %d",
                 i, to, alone ? " after the storm" : "", rc, err,
                 strerror(err), rep.extents_failed, rep.pages_failed,
                 rep.nfailures ? rep.failures[0].addr : NULL,
                 rep.nfailures ? rep.failures[0].error : 0);
    }
    return false;
}

static bool no_migrator; /* TM_STORM_NO_MIGRATOR=1: only the final moves */

static void *migrator_main(void *arg)
{
    migrator_t *m = arg;
    while (!no_migrator && !atomic_load(&workers_done)) {
        for (unsigned i = 0; i < NARENAS && !atomic_load(&workers_done); i++)
            migrate_one(m, i, false);
        m->rounds++;
    }
    return NULL;
}

/* After a failed placement check: where are the arena's off-node pages?
 * Prints, for each mapping holding some, its /proc/self/numa_maps line (the
 * kernel's policy for it and its pages per node) and the first page. */
static void explain_off_node(tm_arena_t *a, unsigned node)
{
    FILE *f = fopen("/proc/self/numa_maps", "re");
    if (!f) {
        tg_info("numa_maps: %s", strerror(errno));
        return;
    }
    char line[1024];
    unsigned shown = 0;
    while (shown < 12 && fgets(line, sizeof line, f)) {
        unsigned long start;
        if (sscanf(line, "%lx", &start) != 1)
            continue;
        /* The mapping's extent: from /proc/self/maps' view, one VMA. */
        char path[64], mline[256];
        snprintf(path, sizeof path, "/proc/self/maps");
        FILE *m = fopen(path, "re");
        unsigned long vs = 0, ve = 0;
        while (m && fgets(mline, sizeof mline, m))
            if (sscanf(mline, "%lx-%lx", &vs, &ve) == 2 && vs == start)
                break;
        if (m)
            fclose(m);
        if (vs != start || ve <= vs)
            continue;
        size_t off = 0, thp = 0;
        int first_status = 0;
        void *first = NULL;
        for (unsigned long p = vs; p < ve; p += TG_PAGE) {
            if (tm_arena_of((void *)p) != a)
                continue;
            void *pg = (void *)p;
            int st;
            if (move_pages(0, 1, &pg, NULL, &st, 0) != 0 || st < 0)
                continue;
            if (st != (int)node) {
                if (!off++) {
                    first = pg;
                    first_status = st;
                }
                if (tg_thp_pages(pg, TG_PAGE) == 1)
                    thp++;
            }
        }
        if (off) {
            /* The 2 MiB-aligned page the first one belongs to. */
            void *head = (void *)((uintptr_t)first & ~((2UL << 20) - 1));
            int hst = 0;
            tm_arena_t *howner = tm_arena_of(head);
            if (move_pages(0, 1, &head, NULL, &hst, 0) != 0)
                hst = -errno;
            tg_info("  its 2 MiB frame %p: status %d, owner arena %u (this "
                    "one %u)", head, hst, howner ? tm_arena_id(howner) : 0,
                    tm_arena_id(a));
            tg_info("  %zu page(s) off node %u (%zu of them parts of a "
                    "transparent huge page), first %p on node %d, in: %s",
                    off, node, thp, first, first_status, line);
            shown++;
        }
    }
    fclose(f);
}

int main(void)
{
    tg_begin("seed_storm");
    iters = (unsigned)tg_env_long("TM_STORM_ITERS", 48);
    no_migrator = tg_env_long("TM_STORM_NO_MIGRATOR", 0) != 0;
    unsigned nodes = tg_node_count();
    if (nodes < 2) {
        side[1] = 0;
        tg_info("one node only: the arenas \"migrate\" from node 0 to node 0");
    }

    for (unsigned i = 0; i < NARENAS; i++) {
        tm_placement_t pl = tm_placement_node(TM_MODE_BIND, side[i % 2]);
        arenas[i] = tm_arena_create(&pl);
        atomic_store(&arena_node[i], side[i % 2]);
        if (!arenas[i]) {
            tg_check("create", false, "tm_arena_create(node %u): %s",
                     side[i % 2], strerror(errno));
            return tg_done();
        }
    }
    tg_check("create", true, "%s", "");

    static worker_t w[NTHREADS];
    migrator_t m = {0};
    int rc = 0;
    for (unsigned t = 0; t < NTHREADS && rc == 0; t++) {
        w[t].id = t;
        w[t].rng = 0x9E3779B97F4A7C15ULL * (t + 1);
        rc = pthread_create(&w[t].tid, NULL, worker_main, &w[t]);
    }
    if (rc == 0)
        rc = pthread_create(&m.tid, NULL, migrator_main, &m);
    if (!tg_check("threads", rc == 0, "pthread_create: %s", strerror(rc)))
        return tg_done(); /* exiting ends the threads that did start */
    int jrc = 0;
    for (unsigned t = 0; t < NTHREADS; t++) {
        int r = pthread_join(w[t].tid, NULL);
        jrc = jrc ? jrc : r;
    }
    atomic_store(&workers_done, true);
    int mrc = pthread_join(m.tid, NULL);
    jrc = jrc ? jrc : mrc;
    if (!tg_check("join", jrc == 0, "pthread_join: %s", strerror(jrc)))
        return tg_done();

    unsigned allocs = 0, nulls = 0, misaligned = 0, wrong = 0, corrupt = 0;
    const char *first = "";
    for (unsigned t = 0; t < NTHREADS; t++) {
        allocs += w[t].allocs;
        nulls += w[t].null_allocs;
        misaligned += w[t].misaligned;
        wrong += w[t].wrong_arena;
        corrupt += w[t].corrupted;
        if (!first[0] && w[t].why[0])
            first = w[t].why;
    }
    tg_info("%u allocations by %u threads over %u arenas; %u migrations "
            "during the storm (%u complete, %u with busy pages left, %u "
            "failed) in %u rounds",
            allocs, NTHREADS, NARENAS, m.ok + m.busy_only + m.bad, m.ok,
            m.busy_only, m.bad, m.rounds);
    tg_check("no-null-alloc", nulls == 0, "%u of %u allocations failed; %s",
             nulls, allocs, first);
    tg_check("aligned", misaligned == 0, "%u misaligned; %s", misaligned,
             first);
    tg_check("arena-of", wrong == 0, "%u allocations not owned by their "
             "arena; %s", wrong, first);
    tg_check("contents", corrupt == 0, "%u allocations changed; %s", corrupt,
             first);
    tg_check("migrations-during-storm",
             m.bad == 0 && (no_migrator || m.ok + m.busy_only > 0),
             "%u of %u migrations failed: %s", m.bad,
             m.ok + m.busy_only + m.bad, m.why[0] ? m.why : "none ran");

    /* One last move of each arena, alone: must fully succeed. */
    migrator_t fin = {0};
    for (unsigned i = 0; i < NARENAS; i++)
        migrate_one(&fin, i, true);
    tg_check("final-migration", fin.bad == 0, "%s", fin.why);

    /* Every page of every live allocation on its arena's final node. */
    bool ok = true;
    char why[700] = "";
    size_t live = 0;
    for (unsigned t = 0; t < NTHREADS && ok; t++)
        for (unsigned k = 0; k < SLOTS && ok; k++) {
            slot_t *s = &w[t].slot[k];
            if (!s->p)
                continue;
            live += s->len;
            unsigned node = atomic_load(&arena_node[s->arena]);
            char wbuf[500];
            if (!tg_all_on_node(s->p, s->len, (int)node, wbuf, sizeof wbuf)) {
                ok = false;
                snprintf(why, sizeof why, "arena %u (final node %u), %zu "
                         "bytes at %p: %s", s->arena, node, s->len, s->p, wbuf);
            }
        }
    tg_info("%zu MiB live at the end", live >> 20);
    tg_check("final-placement-live", ok, "%s", why);

    /* ...and every resident byte of each arena (freed but still mapped
     * memory too), by tiermem's residency scan. */
    ok = true;
    for (unsigned i = 0; i < NARENAS && ok; i++) {
        tm_residency_t r;
        unsigned node = atomic_load(&arena_node[i]);
        if (tm_arena_residency(arenas[i], 0, &r) != 0) {
            ok = false;
            snprintf(why, sizeof why, "tm_arena_residency(arena %u): %s", i,
                     strerror(errno));
        } else if (r.node_bytes[node] != r.bytes_resident) {
            ok = false;
            snprintf(why, sizeof why, "arena %u: %zu of %zu resident bytes "
                     "on its node %u", i, r.node_bytes[node],
                     r.bytes_resident, node);
            explain_off_node(arenas[i], node);
        }
    }
    tg_check("final-placement-arena", ok, "%s", why);

    tm_stats_t st;
    tm_stats_get(&st);
    tg_info("stats: extents %llu, mapped %llu MiB, hook allocs %llu, "
            "migrations %llu (%llu failed), splits %llu, merges %llu, "
            "purges %llu, unmaps %llu",
            (unsigned long long)st.extents,
            (unsigned long long)(st.bytes_mapped >> 20),
            (unsigned long long)st.hook_allocs,
            (unsigned long long)st.migrations,
            (unsigned long long)st.migrate_failures,
            (unsigned long long)st.splits, (unsigned long long)st.merges,
            (unsigned long long)st.purges, (unsigned long long)st.unmaps);
    tg_check("stats", st.hook_alloc_failures == 0 && st.mbind_failures == 0 &&
                          st.unmap_failures == 0,
             "hook_alloc_failures %llu, mbind_failures %llu, "
             "unmap_failures %llu",
             (unsigned long long)st.hook_alloc_failures,
             (unsigned long long)st.mbind_failures,
             (unsigned long long)st.unmap_failures);

    for (unsigned t = 0; t < NTHREADS; t++)
        for (unsigned k = 0; k < SLOTS; k++)
            release(&w[t], &w[t].slot[k]);
    ok = true;
    for (unsigned i = 0; i < NARENAS; i++)
        if (tm_arena_destroy(arenas[i]) != 0)
            ok = false;
    tg_check("destroy", ok, "tm_arena_destroy: %s", strerror(errno));
    return tg_done();
}
