/*
 * sampler_uffd.c -- the userfaultfd write-protect sampler: the portable
 * sampler, which needs no PMU.
 *
 * Once per interval (a "round") the profiling thread write-protects a
 * budget of arena pages: every S-th page of all arenas, S chosen so the
 * budget covers all mapped pages but never below one page per 2 MiB (so at
 * most one page of a transparent huge page is protected), from an offset
 * that moves each round along the golden-ratio sequence, so every part of
 * each stride is probed at an even pace.  The budget follows the resident
 * memory, within a cost cap (uffd_round_budget).  The first write to a
 * protected page stops the writer in the kernel and queues a fault message on the userfaultfd; the
 * sampler's own fault-service thread turns the message into a sample of
 * weight S and un-protects the page, which wakes the writer.  So a sample
 * means "this page was written this interval", and the counts estimate
 * written pages per arena.  Pages holding jemalloc's own metadata for an
 * arena are never protected: they are the allocator's writes, not the
 * program's.
 *
 * Rounds.  Before protecting round R's pages, collect un-protects round
 * R-1's and has the service thread drain every queued message (a sync
 * handshake over two eventfds).  So every message the service thread reads
 * afterwards belongs to round R: it gets round R's weight, and a late
 * message of R-1 can never un-protect a page picked again in R.
 *
 * Descriptors: the userfaultfd and the service thread's three eventfds are
 * taken with fd_own; collect checks them before each round's ioctls.
 * When one is lost (the program closed it), the sampler shuts down at
 * once, touching only what is still ours, and reports it (prof_fd_lost).
 *
 * This file is the sampler proper: open, collect, close and fork_child,
 * the choice of pages, the registration table, the 2 MiB blocks and the
 * metadata skipping.  The fault-service thread, and why it is safe, is in
 * uffd_service.c; the state both share is in uffd_internal.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd_internal.h"

/* The budget, when TIERMEM_PROFILE_UFFD_PAGES does not fix it, follows the
 * program's resident arena memory: one page per 2 MiB of it, so each round
 * can probe every resident huge page's worth once.  Resident memory is
 * estimated from the picks themselves: the share of picked pages mincore
 * finds resident (picks never touched are skipped, not protected), times
 * the mapped pages.  Two costs cap it, each at UFFD_COST_SHARE of an
 * interval: the writers' faults (a written
 * protected page stops its writer ~56 us, bench/bench_uffd.c) and the
 * profiling thread's protect and un-protect ioctls (~2 us each).  The
 * fault cap is divided by the share of protected pages the program
 * actually writes (a read-mostly program writes few of them), so the
 * budget grows where faults are rare.  doc/profiler-uffd.md has the
 * figures. */
#define UFFD_MIN_PAGES 16u
#define UFFD_FAULT_NS 56000.0
#define UFFD_IOCTL_NS 2000.0
#define UFFD_COST_SHARE 0.01
#define UFFD_MAX_PAGES 4096u
/* At most one protected page per block this big (a PMD huge page). */
#define UFFD_BLOCK ((uintptr_t)2 << 20)
/* Registered ranges remembered (a hash table, half full at most). */
#define UFFD_REG_SLOTS 2048u

/* ---------------------------------------------------------------- open */

static void uffd_warn_unavailable(int err)
{
    if (err == EPERM || err == EACCES)
        log_warn("uffd sampler: userfaultfd not permitted (errno %d): it "
                    "needs root (CAP_SYS_PTRACE) or sysctl "
                    "vm.unprivileged_userfaultfd=1", err);
    else if (err == ENOSYS)
        log_warn("uffd sampler: this kernel has no userfaultfd (ENOSYS)");
    else
        log_warn("uffd sampler: userfaultfd failed: errno %d", err);
}

/* A userfaultfd that reports write-protect faults, or -1 with errno. */
static int uffd_create(void)
{
    /* Not UFFD_USER_MODE_ONLY: a kernel-mode write into a protected page
     * (read(2) into a buffer) must wait for us, not fail with EFAULT. */
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        uffd_warn_unavailable(err);
        errno = err;
        return -1;
    }
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (ioctl(fd, UFFDIO_API, &api) != 0) {
        int err = errno;
        log_warn("uffd sampler: UFFDIO_API on fd %d failed: errno %d", fd,
                    err);
        close(fd);
        errno = err;
        return -1;
    }
    if (!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
        log_warn("uffd sampler: this kernel's userfaultfd cannot "
                    "write-protect (no UFFD_FEATURE_PAGEFAULT_FLAG_WP)");
        close(fd);
        errno = ENOTSUP;
        return -1;
    }
    return fd;
}

/* Close the sampler's descriptors that are still ours (only those: the
 * program may have closed ours and reused the numbers).  Async-signal-
 * safe, for the fork child. */
static void uffd_fds_release(uffd_state_t *st)
{
    owned_fd_t *fds[] = {&st->stop, &st->sync, &st->ack, &st->uffd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        (void)fd_release(fds[i]);
}

/* The sampler's memory, and its descriptors that are still ours. */
static void uffd_state_free(uffd_state_t *st)
{
    if (st->pages)
        meta_free(st->pages, st->cap * sizeof st->pages[0]);
    if (st->blocks)
        meta_free(st->blocks, st->nblock_slots * sizeof st->blocks[0]);
    for (int i = 0; i < 2; i++)
        if (st->regs[i])
            meta_free(st->regs[i], UFFD_REG_SLOTS * sizeof(uffd_reg_t));
    uffd_fds_release(st);
    meta_free(st, sizeof *st);
}

static int uffd_open_fds(uffd_state_t *st)
{
    int fd = uffd_create();
    if (fd < 0)
        return -1;
    if (fd_own(fd, &st->uffd) < 0) {
        int err = errno;
        log_warn("uffd sampler: keeping userfaultfd %d failed: errno %d",
                    fd, err);
        errno = err;
        return -1;
    }
    owned_fd_t *efd[] = {&st->stop, &st->sync, &st->ack};
    for (int i = 0; i < 3; i++) {
        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0 || fd_own(fd, efd[i]) < 0) {
            int err = errno;
            log_warn("uffd sampler: eventfd failed: errno %d", err);
            errno = err;
            return -1;
        }
    }
    return 0;
}

/* The caps for this interval length (see UFFD_COST_SHARE), and where this
 * process's offsets start. */
static void uffd_budget_init(uffd_state_t *st, const prof_options_t *o)
{
    double interval = (double)o->interval_ns * UFFD_COST_SHARE;
    double ioctls = interval / (2.0 * UFFD_IOCTL_NS);
    st->fixed_budget = o->uffd_pages;
    st->protect_cap = ioctls < UFFD_MIN_PAGES   ? UFFD_MIN_PAGES
                      : ioctls > UFFD_MAX_PAGES ? UFFD_MAX_PAGES
                                                : (unsigned)ioctls;
    if (st->fixed_budget > st->protect_cap)
        st->protect_cap = st->fixed_budget; /* asked for: the user's cost */
    st->fault_cap = interval / UFFD_FAULT_NS;
    st->hit_rate = 1.0; /* until measured: assume every page is written */
    st->resident_share = 1.0; /* ... and resident */
    st->seed = unpredictable_bits();
}

/* This round's budget, from the arenas' mapped pages (inside the walk).
 * The last round's picks update the resident share (picks found resident
 * over picks) and the write share (faults over pages protected). */
static unsigned uffd_round_budget(uffd_state_t *st, uint64_t mapped_pages)
{
    uint64_t faults = atomic_load(&st->faults);
    if (st->npages_last > 0) {
        double seen = (double)(faults - st->faults_before) /
                      (double)st->npages_last;
        st->hit_rate = 0.5 * st->hit_rate + 0.5 * (seen > 1.0 ? 1.0 : seen);
    }
    st->faults_before = faults;
    if (st->picks > 0) {
        /* a few hundred picks a round: average over about four rounds,
         * from the first round's share rather than from a guess */
        double seen = (double)st->picks_resident / (double)st->picks;
        st->resident_share = st->resident_measured
                                 ? 0.75 * st->resident_share + 0.25 * seen
                                 : seen;
        st->resident_measured = true;
    }
    st->picks = st->picks_resident = 0;
    if (st->fixed_budget != 0)
        return st->fixed_budget;
    uint64_t resident = (uint64_t)((double)mapped_pages * st->resident_share);
    uint64_t want = resident / (UFFD_BLOCK / st->page);
    double by_faults = st->fault_cap / (st->hit_rate > 1e-3 ? st->hit_rate
                                                            : 1e-3);
    double cap = by_faults < st->protect_cap ? by_faults : st->protect_cap;
    if ((double)want > cap)
        want = (uint64_t)cap;
    return want < UFFD_MIN_PAGES ? UFFD_MIN_PAGES : (unsigned)want;
}

static int uffd_open(sampler_t *s, const prof_options_t *o,
                     const prof_sink_t *sink)
{
    uffd_state_t *st = meta_alloc(sizeof *st);
    if (st == NULL) {
        log_warn("uffd sampler: no metadata memory for its state");
        errno = ENOMEM;
        return -1;
    }
    st->uffd.fd = st->stop.fd = st->sync.fd = st->ack.fd = -1;
    st->sink = *sink;
    st->page = os_page_size();
    uffd_budget_init(st, o);
    atomic_store(&st->weight, 1);
    /* A walk picks at most budget + 1 pages when nothing grows between its
     * two passes; the slack absorbs growth, the rest is skipped. */
    st->cap = (size_t)st->protect_cap + 64;
    for (st->nblock_slots = 64; st->nblock_slots < 2 * st->cap;)
        st->nblock_slots *= 2;
    st->pages = meta_alloc(st->cap * sizeof st->pages[0]);
    st->blocks = meta_alloc(st->nblock_slots * sizeof st->blocks[0]);
    st->regs[0] = meta_alloc(UFFD_REG_SLOTS * sizeof(uffd_reg_t));
    st->regs[1] = meta_alloc(UFFD_REG_SLOTS * sizeof(uffd_reg_t));
    int err = ENOMEM;
    if (!st->pages || !st->blocks || !st->regs[0] || !st->regs[1]) {
        log_warn("uffd sampler: no metadata memory for %zu pages", st->cap);
        goto fail;
    }
    if (uffd_open_fds(st) != 0 || uffd_service_start(st) != 0) {
        err = errno;
        goto fail;
    }
    s->state = st;
    s->sink = *sink;
    if (s->name == NULL)
        s->name = "uffd";
    /* a sample is a page written since it was protected: at least one
     * access, and a program that writes a page sequentially makes one
     * per cache line; the line count is the estimate */
    s->accesses_per_sample = (double)st->page / 64.0;
    if (st->fixed_budget != 0)
        log_info("uffd sampler: fd %d, %u pages per interval", st->uffd.fd,
                 st->fixed_budget);
    else
        log_info("uffd sampler: fd %d, one page per 2 MiB resident, %u to "
                 "%u per interval", st->uffd.fd, UFFD_MIN_PAGES,
                 st->protect_cap);
    return 0;
fail:
    uffd_state_free(st);
    s->state = NULL;
    errno = err;
    return -1;
}

/* ---------------------------------------------------------------- registry
 * Registering takes the mmap write lock (every page fault of the process
 * waits) and may split VMAs, so a range is registered only when one of its
 * pages is picked, and only once while it stays as it is.  The table is
 * keyed by range start; a range counts as registered when its start and
 * length match.  Each collect carries over only the ranges the arenas
 * still have, so a range that vanished is forgotten; one that vanished and
 * came back between two collects is caught by its protect failing. */

static size_t uffd_reg_slot(const uffd_reg_t *t, uintptr_t start)
{
    size_t i = (size_t)((start >> 12) * 0x9e3779b97f4a7c15ull >> 40);
    for (;; i++) {
        i &= UFFD_REG_SLOTS - 1;
        if (t[i].start == start || t[i].start == 0)
            return i;
    }
}

static bool uffd_reg_known(const uffd_reg_t *t, const extent_range_t *r)
{
    const uffd_reg_t *e = &t[uffd_reg_slot(t, r->start)];
    return e->start == r->start && e->len == r->size;
}

/* Remember r in the table being built (forgotten when it is full: it is
 * then registered again when next picked, which is harmless). */
static void uffd_reg_note(uffd_state_t *st, const extent_range_t *r)
{
    uffd_reg_t *t = st->regs[st->reg_cur ^ 1];
    uffd_reg_t *e = &t[uffd_reg_slot(t, r->start)];
    if (e->start == 0 && st->reg_count >= UFFD_REG_SLOTS / 2)
        return;
    if (e->start == 0)
        st->reg_count++;
    *e = (uffd_reg_t){.start = r->start, .len = r->size};
}

/* The table built by this collect becomes the current one. */
static void uffd_reg_swap(uffd_state_t *st)
{
    st->reg_cur ^= 1;
    memset(st->regs[st->reg_cur ^ 1], 0, UFFD_REG_SLOTS * sizeof(uffd_reg_t));
    st->reg_count = 0;
}

/* Register r for write-protect tracking.  Registering a range this uffd
 * partly tracks already (a range grown by coalescing) is accepted by the
 * kernel.  EBUSY: another userfaultfd (the program's own) owns part of it. */
static bool uffd_register(uffd_state_t *st, unsigned id,
                          const extent_range_t *r)
{
    struct uffdio_register reg = {
        .range = {.start = r->start, .len = r->size},
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    st->registrations++;
    if (ioctl(st->uffd.fd, UFFDIO_REGISTER, &reg) == 0) {
        if (reg.ioctls & ((uint64_t)1 << _UFFDIO_WRITEPROTECT)) {
            uffd_reg_note(st, r);
            return true;
        }
        errno = ENOTSUP;
    }
    int err = errno;
    if (uffd_vanished_error(err)) {
        st->vanished++;
        log_debug("uffd sampler: arena %u range %#lx+%zu gone while "
                     "registering: errno %d", id, (unsigned long)r->start,
                     r->size, err);
    } else if (!st->warned_register) {
        st->warned_register = true;
        log_warn("uffd sampler: registering arena %u range %#lx+%zu on fd "
                    "%d failed: errno %d%s (reported once)", id,
                    (unsigned long)r->start, r->size, st->uffd.fd, err,
                    err == EBUSY ? " (another userfaultfd owns it)" : "");
    }
    return false;
}

/* ---------------------------------------------------------------- collect */

/* Un-protect what the last collect protected.  Pages written since were
 * already un-protected by the service thread; doing it again is harmless.
 * Writers still waiting on one of them are woken by this. */
static void uffd_unprotect_previous(uffd_state_t *st)
{
    for (size_t i = 0; i < st->npages; i++) {
        if (uffd_protect(st->uffd.fd, st->pages[i], st->page, false) == 0)
            continue;
        if (uffd_vanished_error(errno))
            st->vanished++; /* its extent was unmapped meanwhile */
        else if (!st->warned_protect) {
            st->warned_protect = true;
            log_warn("uffd sampler: un-protecting page %#lx on fd %d "
                        "failed: errno %d (reported once)",
                        (unsigned long)st->pages[i], st->uffd.fd, errno);
        }
    }
    st->npages_last = st->npages;
    st->npages = 0;
    memset(st->blocks, 0, st->nblock_slots * sizeof st->blocks[0]);
}

/* Pages mapped by every arena.  Caller is inside an arena walk. */
static uint64_t uffd_total_pages(const uffd_state_t *st)
{
    uint64_t bytes = 0;
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        if (a == NULL)
            continue;
        mutex_lock(&a->hooked.lock);
        bytes += a->hooked.extents.bytes;
        mutex_unlock(&a->hooked.lock);
    }
    return bytes / st->page;
}

/* Claim page's 2 MiB block for this round; false if a page of it is
 * protected already (possible only across arenas: within one, picks are
 * at least 2 MiB apart). */
static bool uffd_claim_block(uffd_state_t *st, uintptr_t page)
{
    uintptr_t block = page / UFFD_BLOCK + 1; /* never 0 */
    size_t mask = st->nblock_slots - 1;
    for (size_t i = (size_t)(block * 0x9e3779b97f4a7c15ull >> 32);; i++) {
        uintptr_t *slot = &st->blocks[i & mask];
        if (*slot == block)
            return false;
        if (*slot == 0) {
            *slot = block;
            return true;
        }
    }
}

/* Is page part of jemalloc's own metadata for arena a (caller holds its
 * hook lock)? */
static bool uffd_is_metadata(const tm_arena_t *a, uintptr_t page)
{
    for (unsigned i = 0; i < a->hooked.nmetadata; i++) {
        const extent_range_t *m = &a->hooked.metadata[i];
        if (page >= m->start && page - m->start < m->size)
            return true;
    }
    return false;
}

/* Is this (mapped) page resident?  mincore on one page: about as cheap as
 * a system call gets, and per pick, not per mapped page. */
static bool uffd_page_resident(uintptr_t page, size_t size)
{
    unsigned char vec = 0;
    return mincore((void *)page, size, &vec) == 0 && (vec & 1) != 0;
}

/* The walk's position: pages seen so far over all arenas, and the stride
 * and offset that pick every S-th of them. */
typedef struct uffd_walk {
    uint64_t seen, stride, offset;
} uffd_walk_t;

/* Protect one page of r, registering r first if it is not (or no longer)
 * registered.  *registered tracks r's state over the calls for one r. */
static bool uffd_protect_page(uffd_state_t *st, unsigned id,
                              const extent_range_t *r, uintptr_t page,
                              bool *registered)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!*registered && !(*registered = uffd_register(st, id, r)))
            return false;
        if (uffd_protect(st->uffd.fd, page, st->page, true) == 0)
            return true;
        int err = errno;
        if (!uffd_vanished_error(err)) {
            if (!st->warned_protect) {
                st->warned_protect = true;
                log_warn("uffd sampler: protecting arena %u page %#lx on "
                            "fd %d failed: errno %d (reported once)", id,
                            (unsigned long)page, st->uffd.fd, err);
            }
            return false;
        }
        /* The range is mapped (we hold its arena's lock) but not
         * registered: it vanished and came back.  Register it again. */
        st->vanished++;
        *registered = false;
    }
    return false;
}

static void uffd_protect_range(uffd_state_t *st, const tm_arena_t *a,
                               const extent_range_t *r, uffd_walk_t *w)
{
    uint64_t npages = r->size / st->page;
    /* first k with (seen + k) % stride == offset */
    uint64_t k = (w->offset + w->stride - w->seen % w->stride) % w->stride;
    bool registered = uffd_reg_known(st->regs[st->reg_cur], r);
    if (registered)
        uffd_reg_note(st, r); /* still there: carry it over */
    w->seen += npages;
    for (; k < npages; k += w->stride) {
        if (st->npages == st->cap) {
            if (!st->warned_full) {
                st->warned_full = true;
                log_debug("uffd sampler: arenas grew during the walk; "
                             "pages past %zu skipped", st->cap);
            }
            return;
        }
        uintptr_t page = r->start + (uintptr_t)k * st->page;
        if (uffd_is_metadata(a, page) || !uffd_claim_block(st, page))
            continue;
        /* A page never touched cannot be write-protected (6.1 has no
         * markers for empty anonymous entries), so protecting it would
         * waste a pick; the share found resident scales the budget. */
        st->picks++;
        if (!uffd_page_resident(page, st->page))
            continue;
        st->picks_resident++;
        if (uffd_protect_page(st, a->hooked.id, r, page, &registered))
            st->pages[st->npages++] = page;
    }
}

/* Protect one arena's picks.  Its hook lock keeps its extents mapped (and
 * its metadata list stable) meanwhile.  An arena being created is skipped:
 * its metadata is not all known yet. */
static void uffd_protect_arena(uffd_state_t *st, tm_arena_t *a,
                               uffd_walk_t *w)
{
    mutex_lock(&a->hooked.lock);
    size_t count, bytes;
    extent_range_t *ranges =
        a->hooked.creating ? NULL : arena_ranges(a, &count, &bytes);
    if (ranges != NULL) {
        for (size_t i = 0; i < count; i++)
            uffd_protect_range(st, a, &ranges[i], w);
        meta_free(ranges, bytes);
    } else {
        w->seen += a->hooked.extents.bytes / st->page;
    }
    mutex_unlock(&a->hooked.lock);
}

static void uffd_shutdown(uffd_state_t *st);

/* Before a batch of ioctls, reads or writes: are all four still ours?
 * Reports the first lost one (the service thread only flags its finds). */
static bool uffd_fds_ours(uffd_state_t *st)
{
    const owned_fd_t *own[4] = {&st->uffd, &st->sync, &st->ack,
                                   &st->stop};
    static const char *const what[4] = {
        "the uffd sampler's userfaultfd",
        "the uffd sampler's drain-request eventfd",
        "the uffd sampler's drain-answer eventfd",
        "the uffd sampler's stop eventfd"};
    for (int i = 0; i < 4; i++)
        if (!fd_is_ours(own[i])) {
            prof_fd_lost(own[i]->fd, what[i]);
            return false;
        }
    if (atomic_load(&st->fd_lost)) { /* seen by the service thread only */
        prof_fd_lost(st->uffd.fd, what[0]);
        return false;
    }
    return true;
}

static void uffd_collect(sampler_t *s, uint64_t t_end_ns)
{
    (void)t_end_ns; /* samples are delivered as the faults happen */
    uffd_state_t *st = s->state;
    if (st == NULL || st->dead)
        return;
    if (!uffd_fds_ours(st)) {
        uffd_shutdown(st);
        st->dead = true;
        return;
    }
    uffd_report_errors(st);
    uffd_unprotect_previous(st);
    st->round++;
    if (!uffd_service_sync_wait(st))
        return; /* no service thread to serve this round's faults */
    arena_walk_begin();
    uint64_t total = uffd_total_pages(st);
    st->budget = uffd_round_budget(st, total);
    /* Never below one pick per 2 MiB: two picks S pages apart in one
     * range then always fall in different 2 MiB blocks. */
    uffd_walk_t w = {.seen = 0, .stride = total / st->budget};
    if (w.stride < UFFD_BLOCK / st->page)
        w.stride = UFFD_BLOCK / st->page;
    if (w.stride > UINT32_MAX)
        w.stride = UINT32_MAX;
    /* Not round % stride: that sweeps from the start of every stride and
     * reaches its far end only after stride rounds, so a short run never
     * probed past the first pages of each window. */
    w.offset = uffd_round_offset(st->seed, st->round, w.stride);
    /* Every older message was served by the sync: only this round's
     * faults see this weight. */
    atomic_store_explicit(&st->weight, (uint32_t)w.stride,
                          memory_order_relaxed);
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        if (a != NULL)
            uffd_protect_arena(st, a, &w);
    }
    arena_walk_end();
    uffd_reg_swap(st);
}

/* ---------------------------------------------------------------- close */

/* Drop every arena's registration, so no write can fault on this uffd any
 * more even if a copy of the descriptor lives on (a fork child holds one
 * until it exits or execs). */
static void uffd_unregister_all(uffd_state_t *st)
{
    arena_walk_begin();
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        if (a == NULL)
            continue;
        mutex_lock(&a->hooked.lock);
        size_t count, bytes;
        extent_range_t *ranges = arena_ranges(a, &count, &bytes);
        for (size_t i = 0; ranges != NULL && i < count; i++) {
            struct uffdio_range r = {.start = ranges[i].start,
                                     .len = ranges[i].size};
            if (ioctl(st->uffd.fd, UFFDIO_UNREGISTER, &r) != 0 &&
                !uffd_vanished_error(errno))
                log_warn("uffd sampler: unregistering arena %u range "
                            "%#lx+%zu failed: errno %d", id,
                            (unsigned long)r.start, ranges[i].size, errno);
        }
        if (ranges != NULL)
            meta_free(ranges, bytes);
        mutex_unlock(&a->hooked.lock);
    }
    arena_walk_end();
}

/* Stop sampling and give back what is still ours, never touching a lost
 * descriptor.  No thread of the program is left waiting: un-protecting
 * and unregistering wake the writers of a uffd that is ours; a lost one
 * is released by the kernel once our service thread's poll lets go of it
 * (the file's last reference), which wakes its writers and drops its
 * protection. */
static void uffd_shutdown(uffd_state_t *st)
{
    /* The service thread still runs through all of this (unless it gave
     * up), serving (or, once a range is unregistered, waking) any writer
     * that faults meanwhile; un-protecting wakes the rest. */
    if (fd_is_ours(&st->uffd)) {
        uffd_unprotect_previous(st);
        if (fd_is_ours(&st->uffd))
            uffd_unregister_all(st);
    }
    st->npages = 0;
    uffd_service_stop(st);
    uffd_report_errors(st);
    /* Closing the last reference wakes any writer still waiting. */
    uffd_fds_release(st);
}

static void uffd_close(sampler_t *s)
{
    uffd_state_t *st = s->state;
    if (st == NULL)
        return;
    if (!st->dead)
        uffd_shutdown(st);
    log_info("uffd sampler: %llu write faults served, %llu rounds, %llu "
                "registrations, %llu ioctls on vanished ranges, %llu rounds "
                "skipped", (unsigned long long)atomic_load(&st->faults),
                (unsigned long long)st->round,
                (unsigned long long)st->registrations,
                (unsigned long long)st->vanished,
                (unsigned long long)st->sync_timeouts);
    uffd_state_free(st);
    s->state = NULL;
}

/* A fork child holds copies of the parent's descriptors and no service
 * thread.  Closing its copies only drops references: the parent's
 * registrations and protections are untouched, and the parent's close
 * unregisters everything even while this child lives on.  Only copies
 * that are still ours are closed (the parent program may have closed
 * ours and reused the numbers before it forked). */
static void uffd_fork_child(sampler_t *s)
{
    uffd_state_t *st = s->state;
    if (st == NULL)
        return;
    uffd_fds_release(st);
    s->state = NULL; /* its memory is the parent's copy; left to exit */
}

const sampler_ops_t sampler_uffd_ops = {
    .open = uffd_open,
    .collect = uffd_collect,
    .done = NULL,
    .close = uffd_close,
    .fork_child = uffd_fork_child,
};
