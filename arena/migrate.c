/*
 * migrate.c -- moving a whole arena to another placement.
 *
 * Under the arena mutex (so the hooks wait, and bind any new extent to the
 * new placement), for each coalesced range of the arena's extents:
 *   1. count the resident pages that are off the target;
 *   2. mbind(MPOL_MF_MOVE | MPOL_MF_STRICT) the range to the target, which
 *      sets the policy for later faults and migrates what it can;
 *   3. look again with move_pages, and move the stragglers page by page,
 *      retrying only EBUSY/EAGAIN (huge pages under migration report it for
 *      a moment); any other refusal is final at once;
 *   4. whatever is still off the target is a failed page, with its reason.
 * bytes_moved is what was off the target before and is on it after.
 *
 * Step 1 walks every page, which costs far more than the mbind when little
 * moves (the kernel locks the page table for each page queried).  It is
 * skipped when the arena's state already answers it: an arena BIND to nodes
 * disjoint from the target (or inside it), with every range bound and no
 * stray page left by its last migration, had every resident page off (or
 * on) the target, so step 3's walk gives the figures.
 *
 * Step 3 is never skipped.  mbind returning 0 does not prove every page
 * moved: on Linux 6.1 a transparent huge page whose first 4 KiB was purged
 * is skipped without an error (seen in the guest rig); move_pages moves it.
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

#include "arena.h"

#define MOVE_BATCH 512
#define MOVE_ATTEMPTS 5

typedef enum before_rule {
    BEFORE_WALK,    /* query every page */
    BEFORE_ALL_OFF, /* every resident page is off the target */
    BEFORE_ALL_ON,  /* every resident page is on the target */
} before_rule_t;

typedef struct migrate_ctx {
    uint64_t target;
    int target_nodes[TM_MAX_NODES];
    unsigned ntarget;
    before_rule_t before_rule;
    tm_migrate_report_t *rep;
    bool walk_failed; /* a status query failed: the figures are not sure */
    /* per range */
    size_t resident, off_target; /* step 1 */
    size_t resident_after, on_after, failed_after; /* steps 3-4 */
    /* pages collected for moving */
    void *pages[MOVE_BATCH];
    int status[MOVE_BATCH];
    unsigned npages;
} migrate_ctx_t;

static bool on_target(const migrate_ctx_t *c, int status)
{
    return status >= 0 && status < TM_MAX_NODES &&
           (c->target >> status & 1);
}

/* -ENOENT: never touched; -EFAULT: no page (purged, or the zero page). */
static bool not_resident(int status)
{
    return status == -ENOENT || status == -EFAULT;
}

static bool retryable(int status)
{
    return status == -EBUSY || status == -EAGAIN;
}

static void note_error(tm_migrate_report_t *rep, int err)
{
    if (rep->error == 0)
        rep->error = err;
}

static void note_failed_page(migrate_ctx_t *c, void *page, int err)
{
    tm_migrate_report_t *rep = c->rep;
    c->failed_after++;
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

/* Move the collected pages to the target.  Only EBUSY/EAGAIN are tried
 * again; every other refusal (EACCES for a page shared after fork, ENOMEM
 * for a full node, ...) fails the page at once, so the arena mutex is not
 * held through pointless sleeps. */
static void move_collected(migrate_ctx_t *c)
{
    int nodes[MOVE_BATCH];
    for (unsigned attempt = 0; c->npages > 0; attempt++) {
        for (unsigned i = 0; i < c->npages; i++)
            nodes[i] = c->target_nodes[i % c->ntarget];
        if (os_move_pages(c->npages, c->pages, nodes, c->status) < 0) {
            int err = errno;
            for (unsigned i = 0; i < c->npages; i++)
                note_failed_page(c, c->pages[i], err);
            break;
        }
        unsigned keep = 0;
        bool last = attempt + 1 == MOVE_ATTEMPTS;
        for (unsigned i = 0; i < c->npages; i++) {
            int s = c->status[i];
            if (on_target(c, s))
                c->on_after++;
            else if (not_resident(s))
                c->resident_after--; /* gone meanwhile: nothing to move */
            else if (retryable(s) && !last) {
                c->rep->busy_retries++;
                c->pages[keep++] = c->pages[i];
            } else
                note_failed_page(c, c->pages[i], s < 0 ? -s : EIO);
        }
        c->npages = keep;
        if (keep > 0)
            pause_briefly(attempt);
    }
    c->npages = 0;
}

static void collect_straggler(void *ctx, void *page, int status)
{
    migrate_ctx_t *c = ctx;
    if (not_resident(status))
        return;
    c->resident_after++;
    if (on_target(c, status)) {
        c->on_after++;
        return;
    }
    c->pages[c->npages] = page;
    c->status[c->npages++] = status;
    if (c->npages == MOVE_BATCH)
        move_collected(c);
}

/* Step 1, from a walk or from what the arena's state guarantees. */
static void count_before(migrate_ctx_t *c, const extent_range_t *r)
{
    c->resident = c->off_target = 0;
    if (c->before_rule != BEFORE_WALK)
        return; /* filled in from step 3 */
    if (pages_query(r->start, r->size, 1, count_off_target, c) < 0) {
        c->walk_failed = true;
        note_error(c->rep, errno);
    }
}

/* Steps 3-4, then the range's figures. */
static void verify_after(migrate_ctx_t *c, const extent_range_t *r)
{
    c->resident_after = c->on_after = c->failed_after = 0;
    c->npages = 0;
    if (pages_query(r->start, r->size, 1, collect_straggler, c) < 0) {
        c->walk_failed = true;
        note_error(c->rep, errno);
    }
    move_collected(c);

    size_t page = os_page_size(), moved;
    switch (c->before_rule) {
    case BEFORE_ALL_OFF: /* everything now on the target has moved */
        moved = c->on_after;
        c->resident = c->resident_after;
        break;
    case BEFORE_ALL_ON:
        moved = 0;
        c->resident = c->resident_after;
        break;
    default:
        moved = c->off_target > c->failed_after
                    ? c->off_target - c->failed_after
                    : 0;
    }
    c->rep->bytes_moved += moved * page;
    c->rep->bytes_resident += c->resident * page;
}

static void migrate_range(migrate_ctx_t *c, const extent_range_t *r,
                          const tm_placement_t *to, unsigned arena_id)
{
    tm_migrate_report_t *rep = c->rep;
    rep->bytes_mapped += r->size;
    count_before(c, r);
    if (os_bind((void *)r->start, r->size, to,
                   MPOL_MF_MOVE | MPOL_MF_STRICT) != 0 &&
        errno != EIO) {
        rep->extents_failed++;
        note_error(rep, errno);
        log_error("arena %u: mbind(MPOL_MF_MOVE) of [%p, +%zu) to nodes "
                     "%#llx failed: errno %d", arena_id, (void *)r->start,
                     r->size, (unsigned long long)to->nodes, errno);
        return;
    }
    rep->extents++;
    verify_after(c, r);
}

/* What the arena's current placement already tells about where its pages
 * are (see the top of this file).  Caller holds the arena mutex. */
static before_rule_t before_rule(const hook_arena_t *h, size_t stray_pages,
                                 const tm_placement_t *to)
{
    mutex_assert_owner(&h->lock);
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
    if (a == NULL || !placement_valid(to)) {
        errno = EINVAL;
        return -1;
    }
    migrate_ctx_t c = {.target = to->nodes, .rep = rep};
    for (unsigned n = 0; n < TM_MAX_NODES; n++)
        if (to->nodes >> n & 1)
            c.target_nodes[c.ntarget++] = (int)n;

    hook_arena_t *h = &a->hooked;
    mutex_lock(&h->lock);
    c.before_rule = before_rule(h, a->stray_pages, to);
    h->placement = *to; /* new extents follow the target from now on */
    size_t count, bytes;
    extent_range_t *ranges = arena_ranges(a, &count, &bytes);
    if (ranges == NULL) {
        h->unbound = h->extents.count;
        mutex_unlock(&h->lock);
        atomic_fetch_add(&arena_migrate_failures, 1);
        rep->error = ENOMEM;
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        migrate_range(&c, &ranges[i], to, h->id);
    h->unbound = rep->extents_failed;
    /* unsure figures make the next migration look at every page */
    a->stray_pages = rep->pages_failed + (c.walk_failed ? 1 : 0);
    mutex_unlock(&h->lock);
    meta_free(ranges, bytes);

    atomic_fetch_add(&arena_migrations, 1);
    if (rep->extents_failed == 0 && rep->pages_failed == 0 && !c.walk_failed)
        return 0;
    atomic_fetch_add(&arena_migrate_failures, 1);
    errno = rep->error ? rep->error : EIO;
    return -1;
}
