/*
 * migrate.c -- moving a whole arena to another placement.
 *
 * Under the arena mutex (so the hooks wait and bind any new extent to the new
 * placement), for each coalesced range of the arena's extents:
 *   1. count the resident pages that are off the target;
 *   2. mbind(MPOL_MF_MOVE | MPOL_MF_STRICT) the range to the target, which
 *      sets the policy for later faults and migrates what it can;
 *   3. look again with move_pages, and move the stragglers page by page,
 *      retrying EBUSY (huge pages under migration report it for a moment);
 *   4. whatever is still off the target is a failed page, with its reason.
 * bytes_moved is what was off the target before and is on it after.
 *
 * A page walk costs far more than the mbind itself when little moves (the
 * kernel locks the page table for every page queried), so step 1 is skipped
 * when the arena's state already answers it: an arena BIND to nodes disjoint
 * from (or inside) the target, with every extent bound and no stray page
 * left by its last migration, has every resident page off (or on) the
 * target, and mincore counts them cheaply.
 *
 * Step 3 is never skipped.  mbind returning 0 does not prove every page
 * moved: on Linux 6.1 a transparent huge page whose first 4 KiB was purged
 * is skipped without an error (seen in the guest rig), and move_pages then
 * moves it.
 *
 * A range whose mbind fails (other than EIO, "some pages did not move") keeps
 * its old policy; the arena's placement still becomes the target, and the
 * next migration binds that range again.  Nothing is rolled back: pages that
 * moved are where the caller asked for them.
 */
#include "config.h"

#include <errno.h>
#include <numaif.h>
#include <string.h>
#include <time.h>

#include "runtime.h"

#define MOVE_BATCH 512
#define MOVE_ATTEMPTS 5

typedef enum before_rule {
    BEFORE_WALK,     /* query every page */
    BEFORE_ALL_OFF,  /* every resident page is off the target */
    BEFORE_ALL_ON,   /* every resident page is on the target */
} before_rule_t;

typedef struct migrate_ctx {
    uint64_t target;
    before_rule_t before_rule;
    int target_nodes[TM_MAX_NODES];
    unsigned ntarget;
    tm_migrate_report_t *rep;
    size_t off_target; /* resident pages off the target, in the last walk */
    size_t resident;   /* resident pages seen by the first walk */
    /* pages collected for a retry */
    void *pages[MOVE_BATCH];
    int status[MOVE_BATCH];
    unsigned npages;
} migrate_ctx_t;

static bool on_target(const migrate_ctx_t *c, int status)
{
    return status >= 0 && status < TM_MAX_NODES &&
           (c->target >> status & 1);
}

static void note_error(tm_migrate_report_t *rep, int err)
{
    if (rep->error == 0)
        rep->error = err;
}

static void note_failed_page(tm_migrate_report_t *rep, void *page, int err)
{
    rep->pages_failed++;
    note_error(rep, err);
    if (rep->nfailures < TM_REPORT_MAX_FAILURES)
        rep->failures[rep->nfailures++] = (tm_page_failure_t){page, err};
}

static void count_off_target(void *ctx, void *page, int status)
{
    (void)page;
    migrate_ctx_t *c = ctx;
    if (status >= 0)
        c->resident++;
    if (status >= 0 && !on_target(c, status))
        c->off_target++;
}

static void pause_briefly(unsigned attempt)
{
    struct timespec ts = {0, 1000000L * (attempt + 1)}; /* 1, 2, 3.. ms */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Move the collected pages to the target, retrying those that stay off it.
 * Pages that are simply not resident (-ENOENT, -EFAULT) are not failures:
 * they will fault in under the new policy. */
static void move_collected(migrate_ctx_t *c)
{
    int nodes[MOVE_BATCH];
    for (unsigned attempt = 0; c->npages > 0; attempt++) {
        for (unsigned i = 0; i < c->npages; i++)
            nodes[i] = c->target_nodes[i % c->ntarget];
        if (tm_os_move_pages(c->npages, c->pages, nodes, c->status) < 0) {
            int err = errno;
            for (unsigned i = 0; i < c->npages; i++)
                note_failed_page(c->rep, c->pages[i], err);
            c->off_target += c->npages;
            break;
        }
        unsigned keep = 0;
        for (unsigned i = 0; i < c->npages; i++) {
            int s = c->status[i];
            if (on_target(c, s) || s == -ENOENT || s == -EFAULT)
                continue;
            if (s == -EBUSY)
                c->rep->busy_retries++;
            c->pages[keep] = c->pages[i];
            c->status[keep++] = s;
        }
        c->npages = keep;
        if (keep == 0)
            break;
        if (attempt + 1 == MOVE_ATTEMPTS) {
            for (unsigned i = 0; i < keep; i++) {
                int s = c->status[i];
                note_failed_page(c->rep, c->pages[i], s < 0 ? -s : EIO);
            }
            c->off_target += keep;
            break;
        }
        pause_briefly(attempt);
    }
    c->npages = 0;
}

static void collect_straggler(void *ctx, void *page, int status)
{
    migrate_ctx_t *c = ctx;
    if (status == -ENOENT || status == -EFAULT || on_target(c, status))
        return;
    c->pages[c->npages] = page;
    c->status[c->npages++] = status;
    if (c->npages == MOVE_BATCH)
        move_collected(c);
}

static void migrate_range(migrate_ctx_t *c, const extent_range_t *r,
                          const tm_placement_t *to, unsigned arena_id)
{
    tm_migrate_report_t *rep = c->rep;
    size_t page = tm_os_page_size();
    rep->bytes_mapped += r->size;

    c->off_target = 0;
    c->resident = 0;
    if (c->before_rule == BEFORE_WALK) {
        if (pages_query(r->start, r->size, 1, count_off_target, c) < 0)
            note_error(rep, errno);
    } else {
        long n = tm_os_resident_pages((void *)r->start, r->size);
        if (n < 0)
            note_error(rep, errno);
        c->resident = n < 0 ? 0 : (size_t)n;
        c->off_target = c->before_rule == BEFORE_ALL_OFF ? c->resident : 0;
    }
    size_t before = c->off_target;
    rep->bytes_resident += c->resident * page;

    if (tm_os_bind((void *)r->start, r->size, to,
                   MPOL_MF_MOVE | MPOL_MF_STRICT) != 0 &&
        errno != EIO) {
        rep->extents_failed++;
        note_error(rep, errno);
        tm_log_error("arena %u: mbind(MPOL_MF_MOVE) of [%p, +%zu) to nodes "
                     "%#llx failed: errno %d", arena_id, (void *)r->start,
                     r->size, (unsigned long long)to->nodes, errno);
        return;
    }
    rep->extents++;

    c->off_target = 0;
    c->npages = 0;
    if (pages_query(r->start, r->size, 1, collect_straggler, c) < 0)
        note_error(rep, errno);
    move_collected(c);
    size_t after = c->off_target;
    if (before > after)
        rep->bytes_moved += (before - after) * page;
}


/* What the arena's current placement already tells about where its pages
 * are (see the top of this file).  Caller holds the arena mutex. */
static before_rule_t before_rule(const hook_arena_t *h, size_t stray_pages,
                                 const tm_placement_t *to)
{
    if (h->placement.mode != TM_MODE_BIND || h->unbound || stray_pages)
        return BEFORE_WALK;
    if ((h->placement.nodes & to->nodes) == 0)
        return BEFORE_ALL_OFF;
    if ((h->placement.nodes & ~to->nodes) == 0)
        return BEFORE_ALL_ON;
    return BEFORE_WALK;
}

int tm_arena_migrate(tm_arena_t *a, const tm_placement_t *to,
                     tm_migrate_report_t *report)
{
    tm_migrate_report_t local;
    tm_migrate_report_t *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (a == NULL || !tm_placement_valid(to)) {
        errno = EINVAL;
        return -1;
    }
    migrate_ctx_t c = {.target = to->nodes, .rep = rep};
    for (unsigned n = 0; n < TM_MAX_NODES; n++)
        if (to->nodes >> n & 1)
            c.target_nodes[c.ntarget++] = (int)n;

    hook_arena_t *h = &a->hooked;
    pthread_mutex_lock(&h->lock);
    c.before_rule = before_rule(h, a->stray_pages, to);
    h->placement = *to; /* new extents follow the target from now on */
    size_t count, bytes;
    extent_range_t *ranges = arena_ranges(a, &count, &bytes);
    if (ranges == NULL) {
        h->unbound = h->extents.count;
        pthread_mutex_unlock(&h->lock);
        atomic_fetch_add(&tm_migrate_failures, 1);
        rep->error = ENOMEM;
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        migrate_range(&c, &ranges[i], to, h->id);
    h->unbound = rep->extents_failed;
    a->stray_pages = rep->pages_failed;
    pthread_mutex_unlock(&h->lock);
    tm_meta_free(ranges, bytes);

    atomic_fetch_add(&tm_migrations, 1);
    if (rep->extents_failed == 0 && rep->pages_failed == 0)
        return 0;
    atomic_fetch_add(&tm_migrate_failures, 1);
    errno = rep->error ? rep->error : EIO;
    return -1;
}
