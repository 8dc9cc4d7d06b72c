/*
 * arena.h -- what the arena layer offers: arenas as mechanism.
 *
 * An arena is a jemalloc arena over our extent hooks, with a placement
 * (nodes and mode), per-(thread, arena) caches in front of jemalloc, and
 * the operations on all its extents at once: migrate, residency.  The
 * layer also reads the machine's NUMA nodes and orders them into tiers.
 * Which allocation goes to which arena is the sites layer's business.
 */
#ifndef TM_ARENA_H
#define TM_ARENA_H

#include "extent.h"
#include "settings.h"

/* Allocation counters, updated with relaxed atomics (per site, and per
 * arena where an arena is shared by several sites). */
typedef struct site_stats {
    _Atomic uint64_t allocs, frees;
    _Atomic uint64_t bytes;  /* usable bytes ever allocated */
    _Atomic uint64_t live;   /* usable bytes allocated and not yet freed */
    _Atomic uint64_t peak;   /* highest live seen */
} site_stats_t;

/* Who allocates in an arena, which decides how a free is accounted. */
typedef enum arena_kind {
    ARENA_USER = 0,   /* made by tm_arena_create: no site accounting */
    ARENA_SITE,       /* one site's own arena: its stats are the site's */
    ARENA_SHARED,     /* several sites: per-block owners in the ledger */
} arena_kind_t;

struct tm_arena {
    hook_arena_t hooked;   /* first: jemalloc's hook pointer points here */
    unsigned je_index;     /* jemalloc's arena index */
    int flags_uncached;    /* MALLOCX_ARENA | MALLOCX_TCACHE_NONE */
    size_t stray_pages;    /* pages the last migration left off target */
    arena_kind_t kind;     /* set once, before the arena is handed out */
    uint32_t owner_site;   /* ARENA_SITE: the site's index */
    site_stats_t stats;    /* ARENA_SHARED: the arena's own counters */
    _Atomic bool prompt_purge; /* freed pages go back at once (site.c) */
    uint64_t serial;       /* unique per arena ever created: an id and even
                              the struct's memory are reused, this is not */
    /* A per-site arena of a site other than site 0 (per-site layout): when
     * its site is empty, reclaim may destroy it and return its address
     * space (site_reclaim.c).  Set once, before the arena is published. */
    bool reclaimable;
    uint64_t reclaim_mark; /* site allocs + 1 at the last idle scan; under
                              the reclaim lock */
};

/* ---------------------------------------------------------------- arena.c */

/* tm_arena_create for a site or shared arena: kind and owner are set
 * before the arena becomes visible in the table. */
tm_arena_t *arena_create(const tm_placement_t *placement, arena_kind_t kind,
                         uint32_t owner);

/* The arena with this id (1..TM_MAX_ARENAS), or NULL. */
tm_arena_t *arena_by_id(unsigned id);

/* A walk over the arena table by another layer (profiler, policy): between
 * begin and end no arena is freed, so arena_by_id's results stay valid.
 * Walks do not nest.  A walker must not create or destroy arenas, nor wait
 * on a thread that might (destroy waits for the walk to end). */
void arena_walk_begin(void);
void arena_walk_end(void);
/* Is this thread inside a walk (so it must not destroy an arena)? */
bool arena_walking_here(void);

/* fork: the table lock is held across fork, arena locks are reset in the
 * child (see fork.c). */
void arena_table_prefork(void);
void arena_table_postfork_parent(void);
void arena_table_postfork_child(void);

/* tm_free's path once the owner and usable size are known. */
void arena_free_known(void *ptr, unsigned id, size_t usable);

/* Runtime counters, read by tm_stats_get. */
extern _Atomic uint64_t arena_migrations, arena_migrate_failures;

/* ---------------------------------------------------------------- block_check.c */

/* Is ptr, which the extent map puts in arena id, where a block starts?
 * *usable gets the block's usable size.  Exact for the power-of-two small
 * classes (here), for the classes above a page, size class 0 and large
 * blocks (block_check_slow, under the arena's mutex); other classes up to a
 * page are checked for their power-of-two alignment only. */
bool block_check_slow(const void *ptr, unsigned id, size_t usable);
static inline bool block_is_start(const void *ptr, unsigned id,
                                  size_t *usable)
{
    size_t u = sallocx(ptr, 0);
    *usable = u;
    /* A power of two up to 4 KiB divides any page, so its regions are
     * exactly the addresses aligned to it; other classes up to 4 KiB are
     * held to the power of two in their size.  Class 4096 is what the last
     * page of a large extent reads as (its inner pages read as class 8):
     * such a page-aligned pointer is checked against the extent set. */
    if (TM_LIKELY(u >= 16 && u <= 4096)) {
        if (((uintptr_t)ptr & ((u & -u) - 1)) != 0)
            return false;
        if (TM_LIKELY(u < 4096))
            return true;
    }
    return block_check_slow(ptr, id, u);
}
/* Log, once per process, a pointer that failed block_is_start. */
void block_report_interior(const void *ptr, unsigned id, const char *what);

/* ---------------------------------------------------------------- residency.c */

/* Query the node of every stride-th page of [start, start + size) with
 * move_pages, in batches, and call visit(ctx, page, status) for each:
 * status is a node number or a negative errno (-ENOENT: not resident).
 * Returns the number of pages queried, or -1 if move_pages itself failed. */
typedef void (*page_visit_fn)(void *ctx, void *page, int status);
long pages_query(uintptr_t start, size_t size, size_t stride,
                 page_visit_fn visit, void *ctx);

/* The arena's extents as coalesced ranges, in metadata memory the caller
 * frees with meta_free(ranges, *bytes).  Caller holds the arena mutex. */
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
    _Atomic(tm_arena_t *) hazard;  /* see arena_hazard_set */
    _Atomic int flags[TM_MAX_ARENAS + 1];
    /* this thread's small-block cache per arena (front_cache.c) */
    _Atomic(front_cache_t *) front[TM_MAX_ARENAS + 1];
    /* calls before the caches exist (owner thread only; see tcache.c) */
    uint8_t uses[TM_MAX_ARENAS + 1];
};

#define TCACHE_AFTER_USES 32

extern __thread thread_tcaches_t *tcaches_here
    __attribute__((tls_model("initial-exec")));

int tcache_flags_slow(tm_arena_t *arena);

/* mallocx flags for allocating from `arena` on this thread. */
static inline int tcache_alloc_flags(tm_arena_t *arena)
{
    thread_tcaches_t *t = tcaches_here;
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

/*
 * Hazards: which reclaimable arena this thread is inside.  An allocation
 * sets it between choosing its site's arena and accounting the block, a
 * free between accounting the block and handing it back to jemalloc.
 * Reclaim (site_reclaim.c) destroys an arena only when its site is empty
 * and no thread's hazard names it.  Set is a full fence; clear a release.
 */
void arena_hazard_set(tm_arena_t *arena);
void arena_hazard_clear(void);
/* Does any thread's hazard name this arena (conservative: true while a
 * thread without a tcache table holds one)?  Takes the registry lock. */
bool arena_hazard_held(const tm_arena_t *arena);

void tcache_prefork(void);
void tcache_postfork_parent(void);
void tcache_postfork_child(void);

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
    thread_tcaches_t *t = tcaches_here;
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

/* ---------------------------------------------------------------- tiers.c */

/* Discover the process's tiers (once, as the sites start); -1 with errno
 * when the nodes cannot be read (then the topology stays empty). */
int topology_load(void);
/* The process's tiers, as topology_load found them (empty before). */
const tm_topology_t *topology_get(void);

#endif /* TM_ARENA_H */
