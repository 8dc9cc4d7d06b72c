/*
 * site_stats.c -- allocation counters of sites and arenas.
 *
 * Counters are relaxed atomics, except site 0's.  Site 0 takes every small
 * allocation of every thread, and one shared cache line updated by all of
 * them cost more than the allocation itself (49 -> 101 ns per malloc+free
 * from one thread to two).  So each thread counts site 0's work in its own
 * block and folds it into the shared counters every FLUSH_OPS operations
 * or FLUSH_BYTES of live change.  Readers add the unfolded blocks of live
 * threads, so allocs, frees, bytes and live are exact at any time; site 0's
 * peak is checked when a block is folded, so it can miss a spike shorter
 * than one batch (at most FLUSH_BYTES per thread).
 *
 * Other sites' live bytes and peak stay exact atomics (reclaim and the
 * big/small promotion read them), but their allocs, frees and bytes are
 * batched the same way, in a small per-thread table of (counters, delta)
 * slots: two locked adds per allocation and one per free were a quarter
 * of an instrumented call's malloc+free (bench/bench_cc).  Readers
 * (stats_snapshot, stats_allocs) add the unfolded slots, so the figures
 * stay exact.
 */
#include "config.h"

#include "sites.h"

#define FLUSH_OPS 256
#define FLUSH_BYTES (256 * 1024)

#define SLOTS 16 /* per thread; a power of two */

typedef struct stats_slot {
    _Atomic(site_stats_t *) st; /* whose deltas these are (owner writes) */
    _Atomic int64_t allocs, frees, bytes;
    unsigned ops;
} stats_slot_t;

typedef struct stats_delta {
    /* written by the owner thread only (load + store, no lock prefix);
     * atomics so that readers on other threads are well defined */
    _Atomic int64_t allocs, frees, bytes, live;
    unsigned ops;
    bool registered;
    stats_slot_t *slots; /* SLOTS of them, metadata memory; NULL: none */
    struct stats_delta *next, *prev;
} stats_delta_t;

static __thread stats_delta_t site0_delta
    __attribute__((tls_model("initial-exec")));
static stats_delta_t *delta_head;
static pthread_mutex_t delta_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t delta_key;
static _Atomic bool delta_key_ok;
static site_stats_t *site0;

/* ------------------------------------------------------------ shared */

/* Live bytes grow by n, exactly and at once (reclaim and the big/small
 * promotion read them), and the peak follows. */
static void live_grow(site_stats_t *st, size_t n)
{
    uint64_t live =
        atomic_fetch_add_explicit(&st->live, n, memory_order_relaxed) + n;
    uint64_t peak = atomic_load_explicit(&st->peak, memory_order_relaxed);
    while (live > peak && (int64_t)live > 0 &&
           !atomic_compare_exchange_weak_explicit(&st->peak, &peak, live,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void stats_add(site_stats_t *st, size_t n)
{
    atomic_fetch_add_explicit(&st->allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->bytes, n, memory_order_relaxed);
    live_grow(st, n);
}

void stats_sub(site_stats_t *st, size_t n)
{
    atomic_fetch_add_explicit(&st->frees, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&st->live, n, memory_order_relaxed);
}

/* ------------------------------------------------------------ site 0 */

static void delta_fold(stats_delta_t *d)
{
    int64_t allocs = atomic_load_explicit(&d->allocs, memory_order_relaxed);
    int64_t frees = atomic_load_explicit(&d->frees, memory_order_relaxed);
    int64_t bytes = atomic_load_explicit(&d->bytes, memory_order_relaxed);
    int64_t live = atomic_load_explicit(&d->live, memory_order_relaxed);
    atomic_store_explicit(&d->allocs, 0, memory_order_relaxed);
    atomic_store_explicit(&d->frees, 0, memory_order_relaxed);
    atomic_store_explicit(&d->bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&d->live, 0, memory_order_relaxed);
    d->ops = 0;
    atomic_fetch_add_explicit(&site0->allocs, (uint64_t)allocs,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&site0->frees, (uint64_t)frees,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&site0->bytes, (uint64_t)bytes,
                              memory_order_relaxed);
    uint64_t now = atomic_fetch_add_explicit(&site0->live, (uint64_t)live,
                                             memory_order_relaxed) +
                   (uint64_t)live;
    uint64_t peak = atomic_load_explicit(&site0->peak, memory_order_relaxed);
    while ((int64_t)now > 0 && now > peak &&
           !atomic_compare_exchange_weak_explicit(&site0->peak, &peak, now,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* Fold one slot into its counters (delta_lock held, or the only thread). */
static void slot_fold(stats_slot_t *e)
{
    site_stats_t *st = atomic_load_explicit(&e->st, memory_order_relaxed);
    if (st == NULL)
        return;
    atomic_fetch_add_explicit(&st->allocs,
                              (uint64_t)atomic_load_explicit(
                                  &e->allocs, memory_order_relaxed),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&st->frees,
                              (uint64_t)atomic_load_explicit(
                                  &e->frees, memory_order_relaxed),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&st->bytes,
                              (uint64_t)atomic_load_explicit(
                                  &e->bytes, memory_order_relaxed),
                              memory_order_relaxed);
    atomic_store_explicit(&e->allocs, 0, memory_order_relaxed);
    atomic_store_explicit(&e->frees, 0, memory_order_relaxed);
    atomic_store_explicit(&e->bytes, 0, memory_order_relaxed);
    e->ops = 0;
}

static void slots_fold(stats_delta_t *d)
{
    if (d->slots != NULL)
        for (unsigned i = 0; i < SLOTS; i++)
            slot_fold(&d->slots[i]);
}

/* Set once this thread's block is folded and unlinked at exit: glibc frees
 * thread state through free after every key destructor has run, and
 * registering the block again would leave a pointer to dead TLS on the list.
 * From then on the thread counts straight into the shared counters. */
static __thread bool delta_exited __attribute__((tls_model("initial-exec")));

static void delta_thread_exit(void *arg)
{
    stats_delta_t *d = arg;
    delta_exited = true;
    pthread_mutex_lock(&delta_lock);
    delta_fold(d);
    slots_fold(d);
    if (d->prev)
        d->prev->next = d->next;
    else
        delta_head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->registered = false;
    stats_slot_t *slots = d->slots;
    d->slots = NULL;
    pthread_mutex_unlock(&delta_lock);
    if (slots != NULL)
        meta_free(slots, SLOTS * sizeof *slots);
}

/* First use on a thread: make the block visible to readers. */
static void delta_register(stats_delta_t *d)
{
    if (!atomic_load(&delta_key_ok))
        return; /* before start-up finished: counted at the first fold */
    stats_slot_t *slots = meta_alloc(SLOTS * sizeof *slots); /* zeroed */
    pthread_mutex_lock(&delta_lock);
    d->slots = slots; /* NULL (no memory): other sites count unbatched */
    d->next = delta_head;
    d->prev = NULL;
    if (delta_head)
        delta_head->prev = d;
    delta_head = d;
    d->registered = true;
    pthread_mutex_unlock(&delta_lock);
    if (pthread_setspecific(delta_key, d) != 0) {
        /* nobody would unlink it at exit: count without the block */
        log_warn("site 0 counters: pthread_setspecific failed; this "
                    "thread counts into the shared counters");
        delta_thread_exit(d);
    }
}

static inline void delta_bump(_Atomic int64_t *field, int64_t by)
{
    atomic_store_explicit(field,
                          atomic_load_explicit(field, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static inline void delta_maybe_fold(stats_delta_t *d)
{
    int64_t live = atomic_load_explicit(&d->live, memory_order_relaxed);
    if (TM_UNLIKELY(++d->ops >= FLUSH_OPS || live > FLUSH_BYTES ||
                    live < -FLUSH_BYTES)) {
        /* folding changes our block, which a reader may be summing: under
         * the lock, so a reader sees it before or after, never both */
        pthread_mutex_lock(&delta_lock);
        delta_fold(d);
        pthread_mutex_unlock(&delta_lock);
    }
}

void site0_add(size_t n)
{
    if (TM_UNLIKELY(delta_exited)) {
        stats_add(site0, n);
        return;
    }
    stats_delta_t *d = &site0_delta;
    /* registered at the first use, so even a thread that ends before its
     * first fold is seen by readers and folded at its exit */
    if (TM_UNLIKELY(!d->registered))
        delta_register(d);
    delta_bump(&d->allocs, 1);
    delta_bump(&d->bytes, (int64_t)n);
    delta_bump(&d->live, (int64_t)n);
    delta_maybe_fold(d);
}

void site0_sub(size_t n)
{
    if (TM_UNLIKELY(delta_exited)) {
        stats_sub(site0, n);
        return;
    }
    stats_delta_t *d = &site0_delta;
    if (TM_UNLIKELY(!d->registered))
        delta_register(d);
    delta_bump(&d->frees, 1);
    delta_bump(&d->live, -(int64_t)n);
    delta_maybe_fold(d);
}

/* This thread's slot for st, claimed for it (folding its previous
 * owner's deltas); NULL: count into st's atomics. */
static inline stats_slot_t *slot_of(site_stats_t *st)
{
    stats_delta_t *d = &site0_delta;
    if (TM_UNLIKELY(delta_exited))
        return NULL;
    if (TM_UNLIKELY(!d->registered)) {
        delta_register(d);
        if (!d->registered)
            return NULL;
    }
    if (TM_UNLIKELY(d->slots == NULL))
        return NULL;
    uintptr_t h = (uintptr_t)st * UINT64_C(0x9e3779b97f4a7c15);
    stats_slot_t *e = &d->slots[(h >> 40) & (SLOTS - 1)];
    if (TM_UNLIKELY(atomic_load_explicit(&e->st, memory_order_relaxed) !=
                    st)) {
        pthread_mutex_lock(&delta_lock);
        slot_fold(e);
        atomic_store_explicit(&e->st, st, memory_order_relaxed);
        pthread_mutex_unlock(&delta_lock);
    }
    return e;
}

static inline void slot_done(stats_slot_t *e)
{
    if (TM_UNLIKELY(++e->ops >= FLUSH_OPS)) {
        pthread_mutex_lock(&delta_lock);
        slot_fold(e);
        pthread_mutex_unlock(&delta_lock);
    }
}

void site_stats_add(site_stats_t *st, size_t n)
{
    stats_slot_t *e = slot_of(st);
    if (TM_UNLIKELY(e == NULL)) {
        stats_add(st, n);
        return;
    }
    live_grow(st, n);
    delta_bump(&e->allocs, 1);
    delta_bump(&e->bytes, (int64_t)n);
    slot_done(e);
}

void site_stats_sub(site_stats_t *st, size_t n)
{
    stats_slot_t *e = slot_of(st);
    if (TM_UNLIKELY(e == NULL)) {
        stats_sub(st, n);
        return;
    }
    atomic_fetch_sub_explicit(&st->live, n, memory_order_relaxed);
    delta_bump(&e->frees, 1);
    slot_done(e);
}

void site_stats_init(site_stats_t *site0_stats)
{
    site0 = site0_stats;
    int rc = pthread_key_create(&delta_key, delta_thread_exit);
    if (rc != 0)
        log_warn("site 0 counters: pthread_key_create failed (error %d); "
                    "threads' last counts are lost at exit", rc);
    atomic_store(&delta_key_ok, rc == 0);
}

/* ------------------------------------------------------------ reading */

/* Add one thread's unfolded slot deltas of st (delta_lock held). */
static void slots_add(const stats_delta_t *d, const site_stats_t *st,
                      tm_alloc_stats_t *out)
{
    if (d->slots == NULL)
        return;
    for (unsigned i = 0; i < SLOTS; i++) {
        const stats_slot_t *e = &d->slots[i];
        if (atomic_load(&e->st) != st)
            continue;
        out->allocs += (uint64_t)atomic_load(&e->allocs);
        out->frees += (uint64_t)atomic_load(&e->frees);
        out->bytes += (uint64_t)atomic_load(&e->bytes);
    }
}

/* ... of every thread (delta_lock held). */
static void slots_sum(const site_stats_t *st, tm_alloc_stats_t *out)
{
    bool mine_seen = false;
    for (stats_delta_t *d = delta_head; d; d = d->next) {
        mine_seen |= d == &site0_delta;
        slots_add(d, st, out);
    }
    if (!mine_seen)
        slots_add(&site0_delta, st, out);
}

void stats_snapshot(const site_stats_t *st, tm_alloc_stats_t *out)
{
    pthread_mutex_lock(&delta_lock);
    *out = (tm_alloc_stats_t){
        .allocs = atomic_load(&st->allocs),
        .frees = atomic_load(&st->frees),
        .bytes = atomic_load(&st->bytes),
        .live = atomic_load(&st->live),
        .peak = atomic_load(&st->peak),
    };
    if (st != site0) {
        slots_sum(st, out);
        pthread_mutex_unlock(&delta_lock);
        return;
    }
    stats_delta_t *mine = &site0_delta;
    bool mine_seen = false;
    for (stats_delta_t *d = delta_head; d; d = d->next) {
        mine_seen |= d == mine;
        out->allocs += (uint64_t)atomic_load(&d->allocs);
        out->frees += (uint64_t)atomic_load(&d->frees);
        out->bytes += (uint64_t)atomic_load(&d->bytes);
        out->live += (uint64_t)atomic_load(&d->live);
    }
    if (!mine_seen) { /* this thread has not folded yet */
        out->allocs += (uint64_t)atomic_load(&mine->allocs);
        out->frees += (uint64_t)atomic_load(&mine->frees);
        out->bytes += (uint64_t)atomic_load(&mine->bytes);
        out->live += (uint64_t)atomic_load(&mine->live);
    }
    pthread_mutex_unlock(&delta_lock);
    if (out->live > out->peak && (int64_t)out->live > 0)
        out->peak = out->live;
}

uint64_t stats_allocs(const site_stats_t *st)
{
    tm_alloc_stats_t out;
    stats_snapshot(st, &out);
    return out.allocs;
}

/* A site arena's counters are its site's: site_account_* count there.  A
 * shared arena keeps its own; arenas of tm_arena_create have none. */
void tm_arena_alloc_stats(const tm_arena_t *a, tm_alloc_stats_t *out)
{
    *out = (tm_alloc_stats_t){0};
    if (a == NULL)
        return;
    const site_arena_t *sa = site_arena_of(a);
    if (sa == NULL)
        return;
    if (sa->kind == ARENA_SITE) {
        site_t *s = site_get(sa->owner_site);
        if (s)
            stats_snapshot(&s->stats, out);
    } else {
        stats_snapshot(&sa->stats, out);
    }
}

/* ------------------------------------------------------------ fork */

void site_stats_prefork(void) { pthread_mutex_lock(&delta_lock); }
void site_stats_postfork_parent(void) { pthread_mutex_unlock(&delta_lock); }

void site_stats_postfork_child(void)
{
    /* Only this thread survives: fold the others' blocks (their memory is
     * still mapped in the child) and forget them. */
    for (stats_delta_t *d = delta_head; d; d = d->next)
        if (d != &site0_delta) {
            delta_fold(d);
            slots_fold(d); /* their slots' memory stays (metadata) */
        }
    delta_head = NULL;
    if (site0_delta.registered) {
        site0_delta.next = site0_delta.prev = NULL;
        delta_head = &site0_delta;
    }
    /* taken by this very thread in prefork: unlocking is enough, and
     * keeps ThreadSanitizer's view of the lock right in the child */
    pthread_mutex_unlock(&delta_lock);
}
