/*
 * sampler_refs.c -- the accessed-bit sampler: reads and writes, no PMU, no
 * privilege (TIERMEM_PROFILE_SAMPLER=refs; doc/profiler-refs.md).
 *
 * The MMU sets a page's accessed bit on every access, read or write.  A
 * process may clear those bits for itself (write "1" to
 * /proc/self/clear_refs) and later read, per VMA, how many bytes were
 * accessed since (the Referenced line of /proc/self/smaps).  One scan is:
 * read smaps, credit each VMA's referenced bytes to its arena (vma_owner.c;
 * extent_region.c keeps arenas in VMAs of their own), clear the bits for
 * the next window.
 *
 * Heat.  What a scan measures is the set of pages an arena touched in the
 * window since the last clear: its working set, not how often each page
 * was touched.  That figure, averaged with the windows before (half
 * weight to the last), is delivered as samples (weight = pages, at an
 * address inside the arena) on every interval until the next scan, so an
 * arena's heat is "pages in use per window" whatever the window's length.
 *
 * Cost.  The clear and the read each walk the page tables of the whole
 * process (the kernel offers no per-range form on 6.1): about 6 ms per GiB
 * of 4 KiB pages each, 0.1 ms per GiB of huge pages (bench_refs).  And the
 * program pays too: after a clear, the first access to each 4 KiB page
 * misses the TLB and has the MMU set the accessed bit again -- about 420
 * ns a page in the VMs tiermem is developed on, ten times the clear
 * itself (huge pages: nothing measurable).  So a scan's cost is its CPU
 * time on the profiling thread plus the process's referenced small pages
 * times that re-arm cost (measured once on pages of the sampler's own), and
 * a token bucket (refs_scan_due) keeps the sum under
 * TIERMEM_PROFILE_REFS_COST percent of one core.
 *
 * The profiling thread does all of it: metadata memory only, write(2)
 * only, as profiler.h requires.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refs_internal.h"

#define REFS_BUFSIZE ((size_t)64 << 10)
/* Twice the kernel's default per-page flush ceiling (refs_clear). */
#define REFS_FLUSH_PAGES 66
/* A window of at most 5 minutes at the default interval: even a program
 * whose scans are very dear is looked at now and then. */
#define REFS_MAX_PERIOD 3000u

typedef struct refs_hold {
    unsigned arena;
    uintptr_t addr;
    uint32_t pages;
} refs_hold_t;

typedef struct refs_vma {
    uintptr_t lo, hi;
    vma_amount_t amount;
} refs_vma_t;

/* One arena in the scan being made, and what the last one found. */
typedef struct refs_arena {
    uint64_t referenced, resident; /* this scan's credit, bytes */
    uint64_t resident_before;      /* at the last scan */
    double pages;                  /* reused pages per window, smoothed */
    uintptr_t addr;                /* where to deliver its samples */
} refs_arena_t;

typedef struct refs_state {
    owned_fd_t clear, smaps;
    prof_sink_t sink;
    bool dead;                 /* a descriptor was lost: no more scans */
    bool calibrated;           /* the re-arm cost was measured */
    char *flush_area;          /* REFS_FLUSH_PAGES of our own: see
                                  refs_clear */
    bool flush_failed;         /* logged once */
    double share;              /* of one core, for scans */
    uint64_t interval_ns;
    unsigned since;            /* intervals since the last scan */
    double cost_avg_ns;        /* smoothed cost of one scan */
    double predicted_ns;       /* what the next scan will cost */
    double balance_ns;         /* the budget saved up for it: each interval
                                  adds its share, each scan takes its cost */
    uint64_t extra_cost_ns;    /* tests */
    char *buf;                 /* REFS_BUFSIZE, for reading smaps */
    refs_vma_t *vmas;          /* the last smaps read, resident VMAs */
    size_t nvmas, vmas_cap;
    uint64_t seen_vmas;
    uint64_t small_referenced; /* the process's referenced bytes outside
                                  huge pages, in the last read */
    vma_owners_t owners;
    refs_arena_t *arena;       /* [TM_MAX_ARENAS + 1] */
    refs_hold_t *hold;         /* [TM_MAX_ARENAS]: what each interval gets */
    size_t nhold;
    refs_stats_t stats;
} refs_state_t;

/* ---------------------------------------------------------------- state */

static void refs_free(refs_state_t *st)
{
    (void)fd_release(&st->clear);
    (void)fd_release(&st->smaps);
    if (st->buf)
        meta_free(st->buf, REFS_BUFSIZE);
    if (st->vmas)
        meta_free(st->vmas, st->vmas_cap * sizeof st->vmas[0]);
    if (st->arena)
        meta_free(st->arena, (TM_MAX_ARENAS + 1) * sizeof st->arena[0]);
    if (st->hold)
        meta_free(st->hold, TM_MAX_ARENAS * sizeof st->hold[0]);
    vma_owners_free(&st->owners);
    if (st->flush_area)
        (void)os_unmap(st->flush_area, REFS_FLUSH_PAGES * os_page_size());
    meta_free(st, sizeof *st);
}

static refs_state_t *refs_state_new(void)
{
    refs_state_t *st = meta_alloc(sizeof *st);
    if (st == NULL)
        return NULL;
    memset(st, 0, sizeof *st);
    st->clear.fd = st->smaps.fd = -1;
    st->buf = meta_alloc(REFS_BUFSIZE);
    st->arena = meta_alloc((TM_MAX_ARENAS + 1) * sizeof st->arena[0]);
    st->hold = meta_alloc(TM_MAX_ARENAS * sizeof st->hold[0]);
    if (!st->buf || !st->arena || !st->hold) {
        refs_free(st);
        return NULL;
    }
    memset(st->arena, 0, (TM_MAX_ARENAS + 1) * sizeof st->arena[0]);
    size_t len = REFS_FLUSH_PAGES * os_page_size();
    st->flush_area = os_map_near(NULL, len);
    if (st->flush_area != NULL) {
        (void)os_madvise(st->flush_area, len, MADV_NOHUGEPAGE);
        memset(st->flush_area, 0, len); /* present pages: see refs_clear */
    }
    return st;
}

/* ------------------------------------------------------------- the files */

static int refs_open_one(const char *path, int flags, owned_fd_t *out)
{
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    return fd_own(fd, out) < 0 ? -1 : 0;
}

/* Are both descriptors still ours?  A lost one stops the sampler. */
static bool refs_fds_ours(refs_state_t *st)
{
    if (st->dead)
        return false;
    if (!fd_is_ours(&st->smaps)) {
        prof_fd_lost(st->smaps.fd, "the refs sampler's /proc/self/smaps");
        st->dead = true;
    } else if (!fd_is_ours(&st->clear)) {
        prof_fd_lost(st->clear.fd, "the refs sampler's clear_refs");
        st->dead = true;
    }
    return !st->dead;
}

/*
 * Clearing the accessed bits is not enough: x86 caches a translation with
 * its accessed bit set, and the 6.1 kernel's clear_refs (type 1) does not
 * flush the TLB, so a page whose translation is still cached is accessed
 * without the bit being set again -- a small hot working set that fits in
 * the TLB would read as cold (seen: 1758 of 2048 pages of an array read in
 * full).  So after the clear the whole process's TLB is flushed: changing
 * the protection of more present pages than the kernel flushes one by one
 * (tlb_single_page_flush_ceiling, 33) makes it flush the process's TLB on
 * every CPU it runs on.  The pages are our own, never an arena's.
 */
static void refs_flush_tlb(refs_state_t *st)
{
    size_t len = REFS_FLUSH_PAGES * os_page_size();
    if (st->flush_area != NULL &&
        mprotect(st->flush_area, len, PROT_READ) == 0 &&
        mprotect(st->flush_area, len, PROT_READ | PROT_WRITE) == 0)
        return;
    if (!st->flush_failed) {
        st->flush_failed = true;
        log_warn("refs sampler: cannot flush the TLB after clearing "
                 "accessed bits (errno %d): pages the CPU still caches "
                 "may read as cold", st->flush_area ? errno : ENOMEM);
    }
}

static int refs_clear(refs_state_t *st)
{
    for (;;) {
        ssize_t n = write(st->clear.fd, "1", 1);
        if (n == 1) {
            refs_flush_tlb(st);
            return 0;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n >= 0)
            errno = EIO;
        return -1;
    }
}

static void refs_keep_vma(void *ctx, const vma_record_t *r)
{
    refs_state_t *st = ctx;
    st->seen_vmas++;
    if (r->referenced > r->anon_huge)
        st->small_referenced += r->referenced - r->anon_huge;
    if (r->resident == 0)
        return; /* nothing resident, nothing referenced */
    if (st->nvmas == st->vmas_cap) {
        size_t cap = st->vmas_cap ? 2 * st->vmas_cap : 1024;
        refs_vma_t *v = meta_alloc(cap * sizeof *v);
        if (v == NULL)
            return; /* counted as not seen: the scan is short, not wrong */
        if (st->nvmas)
            memcpy(v, st->vmas, st->nvmas * sizeof *v);
        if (st->vmas)
            meta_free(st->vmas, st->vmas_cap * sizeof *v);
        st->vmas = v;
        st->vmas_cap = cap;
    }
    st->vmas[st->nvmas++] =
        (refs_vma_t){.lo = r->lo, .hi = r->hi,
                     .amount = {.referenced = r->referenced,
                                .resident = r->resident}};
}

/* Read smaps into st->vmas.  The key must be there: a kernel without it
 * would make every arena look cold. */
static int refs_read_smaps(refs_state_t *st, uint64_t *malformed,
                           uint64_t *keys)
{
    vma_scan_t scan;
    vma_scan_init(&scan, VMA_SCAN_SMAPS, refs_keep_vma, st);
    st->nvmas = 0;
    st->seen_vmas = 0;
    st->small_referenced = 0;
    int rc = vma_scan_fd(&scan, st->smaps.fd, st->buf, REFS_BUFSIZE);
    *malformed = scan.malformed;
    *keys = scan.keys;
    return rc;
}

/* ---------------------------------------------------------------- re-arm */

/* The clear, with the calibration (refs_rearm.c) around it the first time
 * it is due.  The calibration's own time (mapping and touching 16 MiB: a
 * few ms, much more under emulation) is a one-off, like the open's, so it
 * is left out of the scan's cost: *extra_ns says how much of the time it
 * was. */
static int refs_clear_maybe_calibrate(refs_state_t *st, uint64_t *extra_ns)
{
    *extra_ns = 0;
    refs_calibration_t c;
    if (st->calibrated || st->small_referenced < REFS_CALIBRATE_AT)
        return refs_clear(st);
    st->calibrated = true;
    if (!refs_calibration_begin(&c))
        return refs_clear(st);
    int rc = refs_clear(st);
    st->stats.rearm_ns_per_page = refs_calibration_end(&c, extra_ns);
    log_info("refs sampler: re-arming a page's accessed bit costs the "
             "program about %.0f ns", st->stats.rearm_ns_per_page);
    return rc;
}

/* ---------------------------------------------------------------- a scan */

static void refs_credit(void *ctx, unsigned arena, const vma_amount_t *share,
                        uintptr_t addr)
{
    refs_state_t *st = ctx;
    if (arena == 0 || arena > TM_MAX_ARENAS)
        return;
    refs_arena_t *a = &st->arena[arena];
    if (a->referenced == 0 && a->resident == 0)
        a->addr = addr;
    a->referenced += share->referenced;
    a->resident += share->resident;
}

/* Credit every VMA read to its arena. */
static int refs_credit_vmas(refs_state_t *st)
{
    if (vma_owners_load(&st->owners) != 0)
        return -1;
    for (size_t i = 0; i < st->nvmas; i++)
        vma_owners_credit(&st->owners, st->vmas[i].lo, st->vmas[i].hi,
                          &st->vmas[i].amount, refs_credit, st);
    return 0;
}

/*
 * This scan's credit becomes what every interval delivers until the next.
 * A page that became resident in the window was necessarily referenced:
 * its first touch.  First touches are not reuse -- an array written once
 * while it is built would otherwise look hot for exactly the window in
 * which it is built, and a policy would move it to the fast tier only to
 * move it back -- so an arena's heat is its referenced bytes less its
 * growth since the last scan.  (The uffd sampler sees no first touch
 * either: it protects only pages already resident.)
 */
static void refs_hold_credit(refs_state_t *st)
{
    size_t page = os_page_size();
    st->nhold = 0;
    st->stats.referenced = st->stats.first_touch = 0;
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        refs_arena_t *a = &st->arena[id];
        uint64_t grown = a->resident > a->resident_before
                             ? a->resident - a->resident_before : 0;
        uint64_t reused = a->referenced > grown ? a->referenced - grown : 0;
        st->stats.referenced += a->referenced;
        st->stats.first_touch += a->referenced - reused;
        /* Half the last window, half the ones before: an arena touched in
         * some windows and not others (its period near the window's) gets
         * a steady share instead of all-or-nothing, which would swap it
         * in and out of the fast tier.  Nothing resident: a new start. */
        a->pages = a->resident == 0
                       ? 0.0
                       : 0.5 * a->pages + 0.5 * (double)(reused / page);
        a->resident_before = a->resident;
        a->referenced = a->resident = 0;
        uint64_t pages = (uint64_t)(a->pages + 0.5);
        if (pages == 0)
            continue;
        st->hold[st->nhold++] = (refs_hold_t){
            .arena = id, .addr = a->addr,
            .pages = pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages};
    }
}

/* Intervals per scan for a scan costing cost_ns: the fewest that keep the
 * scans under their share of one core.  Reported in the stats and the
 * log; refs_scan_due's balance is what decides. */
static unsigned refs_period_for(const refs_state_t *st, double cost_ns)
{
    double per_interval = st->share * (double)st->interval_ns;
    double p = per_interval > 0 ? cost_ns / per_interval : REFS_MAX_PERIOD;
    if (!(p < REFS_MAX_PERIOD))
        return REFS_MAX_PERIOD;
    unsigned period = (unsigned)p;
    if ((double)period < p)
        period++;
    return period ? period : 1;
}

/* A scan (or the open's read and clear) cost this much: pay for it from
 * the balance, and predict the next from the dearer of the average and
 * the last, so a footprint that just grew is paid for at once and a lucky
 * cheap scan does not shorten the wait. */
static void refs_account(refs_state_t *st, uint64_t cost)
{
    st->stats.cost_ns += cost;
    if (cost > st->stats.max_scan_ns)
        st->stats.max_scan_ns = cost;
    st->balance_ns -= (double)cost;
    st->cost_avg_ns = st->cost_avg_ns == 0
                          ? (double)cost
                          : 0.75 * st->cost_avg_ns + 0.25 * (double)cost;
    st->predicted_ns =
        (double)cost > st->cost_avg_ns ? (double)cost : st->cost_avg_ns;
    st->stats.period = refs_period_for(st, st->predicted_ns);
}

/* A token bucket over the intervals: a scan runs once the share saved up
 * since the last one pays for the predicted cost.  Whatever each scan
 * really costs is taken from the balance, so over any run the scans cost
 * at most the share of its intervals plus one scan, even when the
 * footprint grows between two scans.  Nothing is saved beyond one scan's
 * worth, so a quiet stretch buys no burst later. */
static bool refs_scan_due(refs_state_t *st)
{
    double per_interval = st->share * (double)st->interval_ns;
    double cap = st->predicted_ns > per_interval ? st->predicted_ns
                                                 : per_interval;
    st->balance_ns += per_interval;
    if (st->balance_ns > cap)
        st->balance_ns = cap;
    return st->balance_ns >= st->predicted_ns ||
           st->since >= REFS_MAX_PERIOD;
}

static void refs_scan(refs_state_t *st)
{
    uint64_t t0 = thread_cpu_ns();
    uint64_t malformed = 0, keys = 0;
    if (refs_read_smaps(st, &malformed, &keys) != 0) {
        log_warn("refs sampler: reading /proc/self/smaps failed: errno %d; "
                 "sampling stops", errno);
        st->dead = true;
        return;
    }
    /* After the read: extents only grow while their arena lives, so every
     * VMA read is inside the extents listed now. */
    if (refs_credit_vmas(st) != 0)
        log_warn("refs sampler: no memory to list the arenas' extents; "
                 "this scan is skipped");
    refs_hold_credit(st);
    uint64_t calibration = 0;
    if (refs_clear_maybe_calibrate(st, &calibration) != 0) {
        log_warn("refs sampler: writing /proc/self/clear_refs failed: "
                 "errno %d; sampling stops", errno);
        st->dead = true;
    }
    st->stats.scans++;
    st->stats.vmas += st->seen_vmas;
    st->stats.owned_vmas += st->nvmas;
    st->stats.blurred_vmas = st->owners.blurred_vmas;
    st->stats.dropped_vmas = st->owners.dropped_vmas;
    st->stats.malformed += malformed;
    uint64_t rearm = (uint64_t)((double)(st->small_referenced /
                                         os_page_size()) *
                                st->stats.rearm_ns_per_page);
    st->stats.rearm_ns += rearm;
    refs_account(st, thread_cpu_ns() - t0 - calibration + rearm +
                         st->extra_cost_ns);
    log_debug("refs sampler: scan %llu: %zu referenced VMAs of %llu, %llu "
              "bytes credited, next in %u intervals",
              (unsigned long long)st->stats.scans, st->nvmas,
              (unsigned long long)st->seen_vmas,
              (unsigned long long)st->stats.referenced, st->stats.period);
}

static void refs_deliver(refs_state_t *st)
{
    for (size_t i = 0; i < st->nhold; i++) {
        const refs_hold_t *h = &st->hold[i];
        /* An arena destroyed since the scan may have left its id and
         * addresses to another: deliver only while the address is still
         * that arena's. */
        if (extent_map_lookup((void *)h->addr) == h->arena)
            st->sink.sample(st->sink.ctx, h->addr, h->pages);
    }
}

/* ---------------------------------------------------------------- the ops */

static int refs_refuse(const prof_options_t *o, const char *what, int err)
{
    int level = o->sampler == PROF_SAMPLER_REFS ? TM_LOG_WARN : TM_LOG_INFO;
    log_at(level, "refs sampler: %s: errno %d", what, err);
    errno = err;
    return -1;
}

static int refs_open(sampler_t *s, const prof_options_t *o,
                     const prof_sink_t *sink)
{
    refs_state_t *st = refs_state_new();
    if (st == NULL)
        return refs_refuse(o, "no metadata memory for its state", ENOMEM);
    st->sink = *sink;
    st->share = o->refs_cost / 100.0;
    st->interval_ns = o->interval_ns;
    const char *what = NULL;
    uint64_t malformed = 0, keys = 0, t0 = thread_cpu_ns();
    errno = 0;
    if (refs_open_one("/proc/self/clear_refs", O_WRONLY, &st->clear) != 0)
        what = "cannot open /proc/self/clear_refs for writing";
    else if (refs_open_one("/proc/self/smaps", O_RDONLY, &st->smaps) != 0)
        what = "cannot open /proc/self/smaps";
    else if (refs_read_smaps(st, &malformed, &keys) != 0)
        what = "cannot read /proc/self/smaps";
    else if (keys == 0)
        what = "/proc/self/smaps has no Referenced lines";
    else if (refs_credit_vmas(st) != 0)
        what = "no memory to list the arenas' extents";
    else if (refs_clear(st) != 0)
        what = "cannot clear the accessed bits";
    if (what != NULL) {
        int err = errno ? errno : ENOTSUP;
        refs_free(st);
        return refs_refuse(o, what, err);
    }
    /* what is resident now was not touched first in the first window */
    refs_hold_credit(st);
    st->nhold = 0;
    /* the first scan waits until the budget has paid for one like this */
    refs_account(st, thread_cpu_ns() - t0);
    s->state = st;
    s->sink = *sink;
    if (s->name == NULL)
        s->name = "refs";
    /* a sample is a page accessed in the window: at least one access; a
     * page read or written through makes one per cache line */
    s->accesses_per_sample = (double)os_page_size() / 64.0;
    st->stats.rearm_ns_per_page = REFS_REARM_DEFAULT_NS;
    log_info("refs sampler: accessed bits (clear_refs, smaps), at most "
             "%.3g%% of one core", o->refs_cost);
    return 0;
}

static void refs_collect(sampler_t *s, uint64_t t_end_ns)
{
    (void)t_end_ns;
    refs_state_t *st = s->state;
    if (st == NULL)
        return;
    st->stats.collects++;
    if (!refs_fds_ours(st))
        return;
    st->since++;
    if (refs_scan_due(st)) {
        st->since = 0;
        refs_scan(st);
    }
    refs_deliver(st);
}

static void refs_close(sampler_t *s)
{
    refs_state_t *st = s->state;
    if (st == NULL)
        return;
    s->state = NULL;
    /* refs_free releases only descriptors that are still ours */
    log_debug("refs sampler: %llu scans over %llu intervals, %.1f ms of "
              "CPU, %llu VMAs shared by arenas, %llu dropped (foreign "
              "bytes)", (unsigned long long)st->stats.scans,
              (unsigned long long)st->stats.collects,
              (double)st->stats.cost_ns / 1e6,
              (unsigned long long)st->stats.blurred_vmas,
              (unsigned long long)st->stats.dropped_vmas);
    refs_free(st);
}

/* Async-signal-safe: the child's descriptors name the parent's files
 * (/proc/self was resolved at open), so they are closed, nothing else. */
static void refs_fork_child(sampler_t *s)
{
    refs_state_t *st = s->state;
    if (st == NULL)
        return;
    (void)fd_release(&st->clear);
    (void)fd_release(&st->smaps);
    s->state = NULL; /* its memory is the parent's copy; left to exit */
}

void sampler_refs_stats(const sampler_t *s, refs_stats_t *out)
{
    const refs_state_t *st = s->state;
    if (st == NULL) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = st->stats;
}

void sampler_refs_test_extra_cost(sampler_t *s, uint64_t ns)
{
    refs_state_t *st = s->state;
    if (st != NULL)
        st->extra_cost_ns = ns;
}

const sampler_ops_t sampler_refs_ops = {
    .open = refs_open,
    .collect = refs_collect,
    .done = NULL,
    .close = refs_close,
    .fork_child = refs_fork_child,
};
