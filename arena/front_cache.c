/*
 * front_cache.c -- small free blocks kept per (thread, arena), in front of
 * jemalloc.
 *
 * Why: jemalloc's fast path is for mallocx(size, 0).  With MALLOCX_ARENA and
 * MALLOCX_TCACHE flags every call takes its general path, which costs about
 * a quarter more (bench/bench_alloc).  Most allocations in real programs are
 * small and short-lived, so tiermem keeps a few freed blocks of each small
 * size class per (thread, arena) and hands them straight back: the fast path
 * is a table lookup and a pop.  Refills and spills go through the explicit
 * tcache of the same (thread, arena), a batch at a time.
 *
 * Bins hold at most 4 KiB of blocks each (32 slots for classes up to 128 B,
 * 4 for 1 KiB), so a cache pins at most ~80 KiB however it is used.
 *
 * Every block in a cache belongs to that cache's arena, because a free
 * routes each block by the extent map.  This file holds both ends of the
 * fast path: tm_arena_malloc's pop, and the one free path (tm_free and
 * arena_free: the extent map, the block check, the arena's client, then
 * arena_free_known's push), so that a warm malloc/free pair costs no call
 * beyond its entry point.
 *
 * One concept with tcache.c: a thread's caches of an arena.  The front
 * caches hang in tcache.c's per-thread table, which makes and deletes them
 * with the table; they refill and spill through that table's tcaches.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "arena.h"

#define FRONT_MAX_SLOTS 32

typedef struct front_bin {
    uint32_t count, cap;
    void *slot[FRONT_MAX_SLOTS];
} front_bin_t;

struct front_cache {
    front_bin_t bin[FRONT_MAX_CLASSES];
};

uint8_t front_class_of[FRONT_MAX_SIZE / 8 + 1];
uint32_t front_class_size[FRONT_MAX_CLASSES];
unsigned front_nclasses;

#define FRONT_BIN_BYTES 4096

void front_cache_init_classes(void)
{
    unsigned n = 0;
    for (size_t k = 0; k <= FRONT_MAX_SIZE / 8; k++) {
        size_t cls = nallocx(k ? k * 8 : 1, 0);
        if (n == 0 || front_class_size[n - 1] != cls) {
            if (n == FRONT_MAX_CLASSES || cls > FRONT_MAX_SIZE || cls == 0) {
                /* A jemalloc built with other size classes: a table that
                 * does not fit would hand out blocks too small, so run
                 * without front caches instead. */
                log_warn("jemalloc's size classes up to %d bytes do not "
                            "fit the front cache; running without it",
                            FRONT_MAX_SIZE);
                front_nclasses = 0;
                return;
            }
            front_class_size[n++] = (uint32_t)cls;
        }
        front_class_of[k] = (uint8_t)(n - 1);
    }
    front_nclasses = n;
}

front_cache_t *front_cache_new(void)
{
    if (front_nclasses == 0)
        return NULL; /* disabled: see front_cache_init_classes */
    front_cache_t *fc = meta_alloc(sizeof *fc);
    if (fc == NULL)
        return NULL;
    for (unsigned c = 0; c < front_nclasses; c++) {
        uint32_t cap = FRONT_BIN_BYTES / front_class_size[c];
        fc->bin[c].cap = cap < 4 ? 4 : cap > FRONT_MAX_SLOTS ? FRONT_MAX_SLOTS
                                                             : cap;
    }
    return fc;
}

void front_cache_delete(front_cache_t *fc)
{
    if (fc == NULL)
        return;
    for (unsigned c = 0; c < front_nclasses; c++)
        for (uint32_t i = 0; i < fc->bin[c].count; i++)
            dallocx(fc->bin[c].slot[i], MALLOCX_TCACHE_NONE);
    meta_free(fc, sizeof *fc);
}

/* Fill half the bin and return one more block; NULL + ENOMEM if jemalloc
 * has none. */
__attribute__((noinline)) static void *front_cache_refill(front_bin_t *bin, size_t class_size, int flags)
{
    /* called when the bin is empty; cap fits the slot array */
    debug_assert(bin->count == 0 && bin->cap <= FRONT_MAX_SLOTS);
    uint32_t want = bin->cap / 2;
    while (bin->count < want) {
        void *p = mallocx(class_size, flags);
        if (p == NULL)
            break;
        bin->slot[bin->count++] = p;
    }
    void *p = mallocx(class_size, flags);
    if (p == NULL)
        errno = ENOMEM;
    return p;
}

/* Give the older half of a full bin back to the tcache. */
__attribute__((noinline)) static void front_cache_spill(front_bin_t *bin, int free_flags)
{
    debug_assert(bin->count <= bin->cap && bin->cap <= FRONT_MAX_SLOTS);
    uint32_t half = bin->count / 2;
    for (uint32_t i = 0; i < half; i++)
        dallocx(bin->slot[i], free_flags);
    for (uint32_t i = half; i < bin->count; i++)
        bin->slot[i - half] = bin->slot[i];
    bin->count -= half;
}

/* ---------------------------------------------------------------- fast path */

static inline front_cache_t *front_cache_get(unsigned id)
{
    thread_tcaches_t *t = tcaches_here;
    return t ? atomic_load_explicit(&t->front[id], memory_order_relaxed)
             : NULL;
}

/* A block from this thread's front cache for the arena (refilled from the
 * tcache when its bin is empty), or NULL: no cache yet, or no memory. */
static inline void *front_alloc(tm_arena_t *a, size_t size)
{
    front_cache_t *fc = front_cache_get(a->hooked.id);
    if (TM_UNLIKELY(fc == NULL))
        return NULL;
    unsigned cls = front_class_of[(size + 7) >> 3];
    front_bin_t *bin = &fc->bin[cls];
    if (TM_LIKELY(bin->count > 0))
        return bin->slot[--bin->count];
    return front_cache_refill(bin, front_class_size[cls],
                              tcache_alloc_flags(a));
}

void *tm_arena_malloc(tm_arena_t *a, size_t size)
{
    if (TM_LIKELY(size <= FRONT_MAX_SIZE)) {
        void *p = front_alloc(a, size);
        if (TM_LIKELY(p != NULL))
            return p;
    }
    return arena_mallocx(a, size, 0);
}

void *tm_arena_calloc(tm_arena_t *a, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (total <= FRONT_MAX_SIZE) {
        void *p = front_alloc(a, total);
        if (p != NULL)
            return memset(p, 0, total);
    }
    return arena_mallocx(a, total, MALLOCX_ZERO);
}

/* The block is back in its arena (or this thread's cache of it): drop
 * the hazard the client's free observer may have set.  Inline: every free
 * passes here. */
static inline void arena_hazard_release(void)
{
    thread_tcaches_t *t = tcaches_here;
    if (TM_UNLIKELY(t == NULL ||
                    atomic_load_explicit(&t->hazard, memory_order_relaxed)))
        arena_hazard_clear();
}

void arena_free_known(void *ptr, tm_arena_t *a, size_t usable)
{
    front_cache_t *fc = front_cache_get(a->hooked.id);
    if (TM_LIKELY(fc != NULL)) {
        /* a class size: a multiple of 8 */
        size_t size = usable ? usable : sallocx(ptr, 0);
        if (TM_LIKELY(size <= FRONT_MAX_SIZE)) {
            front_bin_t *bin = &fc->bin[front_class_of[size >> 3]];
            if (TM_UNLIKELY(bin->count == bin->cap))
                front_cache_spill(bin, tcache_free_flags(a));
            bin->slot[bin->count++] = ptr;
            arena_hazard_release();
            return;
        }
    }
    dallocx(ptr, tcache_free_flags(a));
    arena_hazard_release();
}

/* ---------------------------------------------------------------- free */

/* The body of both exported names, inlined into each: tm_free is the
 * benchmark's (and user arenas') hot path, and a jump costs there. */
static inline void free_checked(void *ptr, const char *what)
{
    if (ptr == NULL)
        return;
    unsigned id = extent_map_lookup(ptr);
    tm_arena_t *a = id ? arena_by_id(id) : NULL;
    if (TM_UNLIKELY(a == NULL)) {
        block_report_foreign(ptr, what);
        return;
    }
    size_t usable;
    if (TM_UNLIKELY(!block_is_start(ptr, id, &usable))) {
        block_report_interior(ptr, id, what);
        return;
    }
    /* the client's accounting; a user arena's free pays one test */
    if (a->client.on_free != NULL)
        a->client.on_free(a, ptr, usable);
    arena_free_known(ptr, a, usable);
}

void arena_free(void *ptr, const char *what) { free_checked(ptr, what); }

void tm_free(void *ptr) { free_checked(ptr, "tm_free"); }
