/*
 * runtime.h -- what the runtime layer offers inside tiermem.
 *
 * The public face of this layer is include/tiermem.h.  This header adds
 * what the layers above (profiler, policy, tools) and the runtime's own
 * files share: the arena structure, the arena table, per-thread caches and
 * start-up.
 */
#ifndef TM_RUNTIME_H
#define TM_RUNTIME_H

#include "hooks.h"

struct tm_arena {
    hook_arena_t hooked;   /* first: jemalloc's hook pointer points here */
    unsigned je_index;     /* jemalloc's arena index */
    int flags_uncached;    /* MALLOCX_ARENA | MALLOCX_TCACHE_NONE */
    size_t stray_pages;    /* pages the last migration left off target */
};

/* ---------------------------------------------------------------- config.c */

/* Reads the environment once (TIERMEM_LOG, TIERMEM_LOG_FILE); idempotent,
 * thread-safe, called by every entry point that needs it. */
void tm_runtime_init(void);

/* ---------------------------------------------------------------- arena.c */

/* The arena with this id (1..TM_MAX_ARENAS), or NULL. */
tm_arena_t *tm_arena_by_id(unsigned id);

/* fork: the table lock is held across fork, arena locks are reset in the
 * child (see fork.c). */
void arena_table_prefork(void);
void arena_table_postfork_parent(void);
void arena_table_postfork_child(void);

/* Runtime counters, read by tm_stats_get. */
extern _Atomic uint64_t tm_migrations, tm_migrate_failures;

/* ---------------------------------------------------------------- residency.c */

/* Query the node of every stride-th page of [start, start + size) with
 * move_pages, in batches, and call visit(ctx, page, status) for each:
 * status is a node number or a negative errno (-ENOENT: not resident).
 * Returns the number of pages queried, or -1 if move_pages itself failed. */
typedef void (*page_visit_fn)(void *ctx, void *page, int status);
long pages_query(uintptr_t start, size_t size, size_t stride,
                 page_visit_fn visit, void *ctx);

/* The arena's extents as coalesced ranges, in metadata memory the caller
 * frees with tm_meta_free(ranges, *bytes).  Caller holds the arena mutex. */
extent_range_t *arena_ranges(tm_arena_t *arena, size_t *count, size_t *bytes);

/* ---------------------------------------------------------------- tcache.c */

/*
 * jemalloc's thread cache belongs to a thread, not to an arena: a block freed
 * from arena A could be handed out by mallocx(MALLOCX_ARENA(B)).  tiermem
 * therefore gives each (thread, arena) pair its own explicit tcache, and
 * frees every block into the tcache of the arena that owns it.  Each thread
 * has a table, indexed by arena id, of the mallocx flags to use.
 */
typedef struct front_cache front_cache_t;
typedef struct thread_tcaches thread_tcaches_t;
struct thread_tcaches {
    thread_tcaches_t *next, *prev; /* all live tables, for arena destroy */
    _Atomic int flags[TM_MAX_ARENAS + 1];
    /* this thread's small-block cache per arena (front_cache.c) */
    _Atomic(front_cache_t *) front[TM_MAX_ARENAS + 1];
};

extern __thread thread_tcaches_t *tm_thread_tcaches
    __attribute__((tls_model("initial-exec")));

int tcache_flags_slow(tm_arena_t *arena);

/* mallocx flags for allocating from `arena` on this thread. */
static inline int tcache_alloc_flags(tm_arena_t *arena)
{
    thread_tcaches_t *t = tm_thread_tcaches;
    if (TM_LIKELY(t != NULL)) {
        int f = atomic_load_explicit(&t->flags[arena->hooked.id],
                                     memory_order_relaxed);
        if (TM_LIKELY(f != 0))
            return f;
    }
    return tcache_flags_slow(arena);
}

/* dallocx/rallocx need only the tcache bits (arena bits are 20..31). */
#define TCACHE_FLAGS_MASK ((1 << 20) - 1)

/* Destroy every thread's tcache for this arena (its blocks go back to it).
 * Called by arena destroy, when no thread may be using the arena. */
void tcache_forget_arena(unsigned id);

void tcache_prefork(void);
void tcache_postfork_parent(void);
void tcache_postfork_child(void);

/* ---------------------------------------------------------------- fork.c */

/* Register the fork handlers (once; called at start-up). */
void tm_fork_handlers_install(void);

/* ---------------------------------------------------------------- front_cache.c */

/*
 * A per-(thread, arena) cache of small free blocks in front of jemalloc, so
 * the common malloc/free pair never enters jemalloc's flag-handling path.
 * Blocks are binned by jemalloc size class; a bin refills from, and spills
 * to, the (thread, arena) explicit tcache in batches.  Every block in a
 * cache belongs to that cache's arena, because tm_free routes each block by
 * the extent map.
 */
#define FRONT_MAX_SIZE 1024 /* requests up to this size use the cache */
#define FRONT_MAX_CLASSES 24 /* jemalloc 5.3 has 21 up to 1 KiB */
#define FRONT_MAX_SLOTS 32

typedef struct front_bin {
    uint32_t count, cap;
    void *slot[FRONT_MAX_SLOTS];
} front_bin_t;

struct front_cache {
    front_bin_t bin[FRONT_MAX_CLASSES];
};

/* (size + 7) / 8 -> class, and each class's size; built at start-up from
 * jemalloc's own nallocx, so they always match its size classes. */
extern uint8_t front_class_of[FRONT_MAX_SIZE / 8 + 1];
extern uint32_t front_class_size[FRONT_MAX_CLASSES];
extern unsigned front_nclasses;

void front_cache_init_classes(void);
front_cache_t *front_cache_new(void);
/* Return every cached block to jemalloc (without a tcache) and free the
 * cache.  The owner thread must not be using it. */
void front_cache_delete(front_cache_t *fc);
void *front_cache_refill(front_bin_t *bin, size_t class_size, int flags);
void front_cache_spill(front_bin_t *bin, int free_flags);

static inline front_cache_t *front_cache_get(unsigned id)
{
    thread_tcaches_t *t = tm_thread_tcaches;
    return t ? atomic_load_explicit(&t->front[id], memory_order_relaxed)
             : NULL;
}

/* ---------------------------------------------------------------- node_sysfs.c */

/* The kernel's largest MAX_NUMNODES (NODES_SHIFT 10): more ids than this in
 * "online" (or in one TIERMEM_TIERS tier) would be a corrupt file or a
 * typo, not a machine. */
#define SYSFS_MAX_IDS 1024

/* Parse a kernel-style list "0-2,5" in [s, end) into ids.  Blanks around
 * numbers are allowed (users type TIERMEM_TIERS by hand); an empty list is
 * valid with *n = 0.  Returns false on a syntax error, a reversed range or
 * more than max ids. */
bool node_list_parse(const char *s, const char *end, unsigned *ids,
                     unsigned max, unsigned *n);

/* Fill t->nnodes and t->nodes (id, CPUs, memory, HMAT, distance) from the
 * sysfs node directory dir; *t must be zeroed, its tiers are left alone.
 * Returns 0, or -1 with errno (ENOENT: no usable node under dir). */
int node_sysfs_read(const char *dir, tm_topology_t *t);

#endif /* TM_RUNTIME_H */
