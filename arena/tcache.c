/*
 * tcache.c -- one explicit jemalloc tcache per (thread, arena).
 *
 * Why: jemalloc's automatic tcache is per thread and shared by all arenas,
 * so it would hand one arena's freed blocks to another arena's allocation,
 * and a block would end up on the wrong tier.  MALLOCX_TCACHE_NONE avoids
 * that but costs about 4x per operation from one thread and 14x from two,
 * against an explicit tcache (bench_alloc, doc/benchmarks.md).  An
 * explicit tcache used for one arena only holds that arena's blocks, and
 * keeps the cost close to jemalloc's default path.
 *
 * Each thread has a table of mallocx flags (and of front caches, see
 * front_cache.c) indexed by arena id, created on its first tiermem
 * allocation.  The tables are linked in a registry so
 * arena destroy can flush every thread's tcache for that arena, and a
 * thread's exit destroys its own.  jemalloc offers about 4k explicit
 * tcaches; past that a pair falls back to MALLOCX_TCACHE_NONE (correct,
 * slower, logged once).  arena_mallocx, the allocation under the front
 * cache, is here: a mallocx through this table's flags.
 *
 * One concept with front_cache.c: a thread's caches of an arena.  The
 * per-thread table holds both the tcache flags and the front caches, so it
 * makes and deletes front caches with itself, and the front cache refills
 * and spills through these tcaches.
 */
#include "config.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"

__thread thread_tcaches_t *tcaches_here
    __attribute__((tls_model("initial-exec")));

static mutex_t registry_lock = TM_MUTEX_INITIALIZER;
static thread_tcaches_t *registry_head;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static _Atomic bool exhausted_logged;

/* The tcache id inside a flags value, or -1 for MALLOCX_TCACHE_NONE. */
static int flags_tcache(int flags)
{
    return ((flags >> 8) & 0xfff) - 2;
}

static void tcache_destroy(int flags)
{
    unsigned tc;
    if (flags == 0 || flags_tcache(flags) < 0)
        return;
    tc = (unsigned)flags_tcache(flags);
    int rc = mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc);
    if (rc != 0)
        log_error("tcache.destroy(%u) failed: error %d", tc, rc);
}

/* Set when this thread's table is released: glibc frees thread state
 * (dlerror, resolver, strerror buffers) through free after every key
 * destructor has run, and a new table made then would never be released. */
static __thread bool thread_exited __attribute__((tls_model("initial-exec")));

static void thread_exit(void *arg)
{
    thread_tcaches_t *t = arg;
    thread_exited = true;
    mutex_lock(&registry_lock);
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        front_cache_delete(atomic_exchange(&t->front[id], NULL));
        tcache_destroy(atomic_exchange(&t->flags[id], 0));
    }
    if (t->prev)
        t->prev->next = t->next;
    else
        registry_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    mutex_unlock(&registry_lock);
    if (tcaches_here == t)
        tcaches_here = NULL;
    meta_free(t, sizeof *t);
}

static void make_exit_key(void)
{
    int rc = pthread_key_create(&exit_key, thread_exit);
    if (rc != 0)
        log_error("pthread_key_create failed: error %d; thread caches "
                     "will not be released at thread exit", rc);
}

static thread_tcaches_t *thread_table(void)
{
    thread_tcaches_t *t = tcaches_here;
    if (t != NULL)
        return t;
    if (thread_exited)
        return NULL; /* uncached from here to the thread's end */
    (void)pthread_once(&exit_key_once, make_exit_key);
    t = meta_alloc(sizeof *t);
    if (t == NULL)
        return NULL;
    mutex_lock(&registry_lock);
    t->next = registry_head;
    if (registry_head)
        registry_head->prev = t;
    registry_head = t;
    mutex_unlock(&registry_lock);
    (void)pthread_setspecific(exit_key, t);
    tcaches_here = t;
    return t;
}

/* Caller holds registry_lock: a destroy's flush must see the new pair. */
static int create_flags(tm_arena_t *arena)
{
    mutex_assert_owner(&registry_lock);
    unsigned tc;
    size_t sz = sizeof tc;
    int rc = mallctl("tcache.create", &tc, &sz, NULL, 0);
    if (rc == 0)
        return MALLOCX_ARENA(arena->je_index) | MALLOCX_TCACHE(tc);
    if (!atomic_exchange(&exhausted_logged, true))
        log_warn("tcache.create failed (error %d): arena %u and later "
                    "(thread, arena) pairs allocate without a thread cache",
                    rc, arena->hooked.id);
    return arena->flags_uncached;
}

int tcache_flags_slow(tm_arena_t *arena)
{
    thread_tcaches_t *t = thread_table();
    if (t == NULL)
        return arena->flags_uncached;
    /* An explicit tcache and a front cache cost about 65 KiB per (thread,
     * arena).  Most arenas get a few large blocks, so a pair gets them
     * only once it has been used TCACHE_AFTER_USES times; until then it
     * allocates uncached.  uses[] belongs to this thread: no lock. */
    debug_assert(t == tcaches_here); /* uses[] is this thread's */
    if (t->uses[arena->hooked.id] < TCACHE_AFTER_USES) {
        t->uses[arena->hooked.id]++;
        return arena->flags_uncached;
    }
    mutex_lock(&registry_lock);
    int f = atomic_load(&t->flags[arena->hooked.id]);
    if (f == 0) {
        f = create_flags(arena);
        atomic_store(&t->flags[arena->hooked.id], f);
        /* no front cache (out of metadata memory) only costs speed */
        atomic_store(&t->front[arena->hooked.id], front_cache_new());
    }
    mutex_unlock(&registry_lock);
    return f;
}

void tcache_prefork(void) { mutex_lock(&registry_lock); }
void tcache_postfork_parent(void) { mutex_unlock(&registry_lock); }
void tcache_postfork_child(void) { mutex_unlock(&registry_lock); }

void tcache_forget_arena(unsigned id)
{
    mutex_lock(&registry_lock);
    for (thread_tcaches_t *t = registry_head; t != NULL; t = t->next) {
        front_cache_delete(atomic_exchange(&t->front[id], NULL));
        tcache_destroy(atomic_exchange(&t->flags[id], 0));
    }
    mutex_unlock(&registry_lock);
}

/* ---------------------------------------------------------------- hazards */

/* Threads without a table (past their own exit destructor, or out of
 * metadata memory) cannot publish a hazard of their own: each counts here
 * once while it holds one, and reclaim then spares every arena. */
static _Atomic unsigned tableless_hazards;
static __thread bool tableless_hazard __attribute__((tls_model("initial-exec")));

/*
 * The hazard protocol is a store-then-load on each side (the thread: its
 * hazard, then the site's arena or its live bytes; the client: the site's
 * arena, then the hazards), which needs a full fence on each side.  A
 * seq_cst fence on every allocation and free of a site arena cost more
 * than the rest of the small-block path (bench/bench_cc).  So the fences
 * are asymmetric, as in folly's hazard pointers: the frequent side (set)
 * only keeps the compiler from reordering, and the rare side (held, before
 * an arena is destroyed) runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED),
 * which makes every running thread of the process execute a full barrier
 * (a thread not running has passed one in its context switch).  A thread's
 * hazard store is then either visible to the reader, or its later loads
 * see what the reader stored before the membarrier.  Without membarrier
 * (an old kernel, seccomp, valgrind) set keeps its seq_cst fence.
 */
static _Atomic bool hazard_asymmetric; /* set once, read relaxed */

static bool membarrier_cmd(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0) == 0;
}

/* ThreadSanitizer knows nothing of membarrier: under it the fences stay
 * symmetric, so that what it checks is the protocol as it models it. */
#if defined(__SANITIZE_THREAD__)
#define HAZARD_ASYMMETRIC_ALLOWED 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HAZARD_ASYMMETRIC_ALLOWED 0
#endif
#endif
#ifndef HAZARD_ASYMMETRIC_ALLOWED
#define HAZARD_ASYMMETRIC_ALLOWED 1
#endif

void arena_hazard_init(void)
{
    /* before any arena exists, so before any hazard is set */
    atomic_store(&hazard_asymmetric,
                 HAZARD_ASYMMETRIC_ALLOWED &&
                     membarrier_cmd(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED));
}

/* The reader's half of the fence pair; false if it could not be had. */
static bool hazard_heavy_fence(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&hazard_asymmetric, memory_order_relaxed))
        return true; /* every set has its own full fence */
    if (membarrier_cmd(MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        return true;
    /* a forked child may have to register again */
    return membarrier_cmd(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) &&
           membarrier_cmd(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

void arena_hazard_set(tm_arena_t *arena)
{
    thread_tcaches_t *t = tcaches_here;
    if (t == NULL)
        t = thread_table();
    if (TM_LIKELY(t != NULL)) {
        atomic_store_explicit(&t->hazard, arena, memory_order_relaxed);
    } else if (!tableless_hazard) {
        tableless_hazard = true;
        atomic_fetch_add_explicit(&tableless_hazards, 1,
                                  memory_order_relaxed);
    }
    /* The client unpublishes an arena, then reads the hazards and its own
     * live bytes before destroying it; the fence orders this store before
     * the caller's next loads (the published arena) and stores (its live
     * bytes).  The compiler's half only, when the reader's membarrier
     * supplies the processor's (above). */
    if (TM_LIKELY(atomic_load_explicit(&hazard_asymmetric,
                                       memory_order_relaxed)))
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
}

void arena_hazard_clear(void)
{
    thread_tcaches_t *t = tcaches_here;
    if (TM_LIKELY(t != NULL)) {
        if (atomic_load_explicit(&t->hazard, memory_order_relaxed) != NULL)
            atomic_store_explicit(&t->hazard, NULL, memory_order_release);
    }
    if (TM_UNLIKELY(tableless_hazard)) {
        tableless_hazard = false;
        atomic_fetch_sub_explicit(&tableless_hazards, 1, memory_order_release);
    }
}

bool arena_hazard_held(const tm_arena_t *arena)
{
    if (!hazard_heavy_fence())
        return true; /* cannot tell: keep the arena */
    bool held = atomic_load(&tableless_hazards) != 0;
    mutex_lock(&registry_lock);
    for (thread_tcaches_t *t = registry_head; t != NULL && !held; t = t->next)
        held = atomic_load(&t->hazard) == arena;
    mutex_unlock(&registry_lock);
    return held;
}

/* ---------------------------------------------------------------- mallocx */

static _Atomic arena_pressure_fn pressure_hook;

void arena_set_pressure_hook(arena_pressure_fn fn)
{
    atomic_store(&pressure_hook, fn);
}

bool arena_pressure_release(const tm_arena_t *failed)
{
    arena_pressure_fn fn = atomic_load_explicit(&pressure_hook,
                                                memory_order_acquire);
    return fn != NULL && fn(failed) > 0;
}

void *arena_mallocx(tm_arena_t *a, size_t size, int flags)
{
    size = size ? size : 1;
    void *p = mallocx(size, tcache_alloc_flags(a) | flags);
    if (TM_UNLIKELY(p == NULL) && arena_pressure_release(a))
        p = mallocx(size, tcache_alloc_flags(a) | flags);
    if (TM_UNLIKELY(p == NULL))
        errno = ENOMEM;
    return p;
}
