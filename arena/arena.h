/*
 * arena.h -- what the arena layer offers: arenas as mechanism.
 *
 * An arena is a jemalloc arena over our extent hooks, with a placement
 * (nodes and mode), per-(thread, arena) caches in front of jemalloc, and
 * the operations on all its extents at once: migrate, residency.  The
 * layer also reads the machine's NUMA nodes and orders them into tiers.
 * Which allocation goes to which arena is the business of the layer above,
 * the arenas' client.
 */
#ifndef TM_ARENA_H
#define TM_ARENA_H

#include "extent.h"
#include "settings.h"

/*
 * An arena may have a client: the layer above that made it for its own
 * bookkeeping.  The client hands down its data and a
 * function the arena calls on each free of one of the arena's blocks,
 * before the block goes back to jemalloc, so the client's counters stay
 * right whichever entry point frees it.  Arenas of tm_arena_create have
 * none, and their frees pay nothing for it.
 */
typedef void (*arena_free_observer_t)(tm_arena_t *arena, void *ptr,
                                      size_t usable);
typedef struct arena_client {
    void *data;                    /* the client's own, per arena */
    arena_free_observer_t on_free; /* NULL: nobody to tell */
} arena_client_t;

struct tm_arena {
    hook_arena_t hooked;   /* first: jemalloc's hook pointer points here */
    unsigned je_index;     /* jemalloc's arena index */
    int flags_uncached;    /* MALLOCX_ARENA | MALLOCX_TCACHE_NONE */
    size_t stray_pages;    /* pages the last migration left off target */
    arena_client_t client; /* set once, before the arena is published */
    uint64_t serial;       /* unique per arena ever created: an id and even
                              the struct's memory are reused, this is not */
};

/* ---------------------------------------------------------------- arena_table.c */

/* The arena with this id (1..TM_MAX_ARENAS), or NULL.  Inline: every
 * free asks it. */
extern _Atomic(tm_arena_t *) arena_table[TM_MAX_ARENAS + 1];
static inline tm_arena_t *arena_by_id(unsigned id)
{
    if (id == 0 || id > TM_MAX_ARENAS)
        return NULL;
    return atomic_load_explicit(&arena_table[id], memory_order_acquire);
}

/* A free slot's id, marked taken (0: none left); the arena goes in with
 * publish once it is whole; release empties the slot for reuse. */
unsigned arena_slot_reserve(void);
void arena_slot_publish(unsigned id, tm_arena_t *a);
void arena_slot_release(unsigned id);

/* A walk over the arena table by another layer (profiler, policy): between
 * begin and end no arena is freed, so arena_by_id's results stay valid.
 * Walks do not nest.  A walker must not create or destroy arenas, nor wait
 * on a thread that might (destroy waits for the walk to end). */
void arena_walk_begin(void);
void arena_walk_end(void);
/* Is this thread inside a walk (so it must not destroy an arena)? */
bool arena_walking_here(void);
/* Destroy's side: wait for the walk in progress, keep new ones out. */
void arena_walkers_exclude(void);
void arena_walkers_admit(void);

/* arena.c's fork handlers call these: the table's locks across fork, and
 * in the child every arena's own mutex re-initialised. */
void arena_table_prefork(void);
void arena_table_postfork_parent(void);
void arena_table_postfork_child(void);

/* ---------------------------------------------------------------- arena.c */

/* The arena layer's start-up, once per process: the settings (which
 * configure the log first), jemalloc and the front cache's size classes,
 * and the fork handlers of the arena table and the tcaches.  Idempotent,
 * thread-safe; every arena entry point that needs it calls it. */
void arena_layer_init(void);

/* tm_arena_create with a client (NULL: none), set before the arena becomes
 * visible in the table, so no reader sees a client's arena without it. */
tm_arena_t *arena_create(const tm_placement_t *placement,
                         const arena_client_t *client);




/* The one free path (tm_free, and the client's free entry points): find
 * the block's arena through the extent map, check ptr starts a block, tell
 * the arena's client, put the block back.  A pointer tiermem did not hand
 * out is reported once (as `what`) and ignored. */
void arena_free(void *ptr, const char *what);


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
/* Log, once per process, a pointer in no arena (what: the entry point). */
void block_report_foreign(const void *ptr, const char *what);

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

/* dallocx flags for freeing a block of `arena` on this thread. */
static inline int tcache_free_flags(tm_arena_t *arena)
{
    thread_tcaches_t *t = tcaches_here;
    int f = t ? atomic_load_explicit(&t->flags[arena->hooked.id],
                                     memory_order_relaxed)
              : 0;
    if (TM_UNLIKELY(f == 0))
        f = tcache_flags_slow(arena);
    return f & TCACHE_FLAGS_MASK;
}

/* Destroy every thread's tcache for this arena (its blocks go back to it).
 * Called by arena destroy, when no thread may be using the arena. */
void tcache_forget_arena(unsigned id);

/*
 * Hazards: which arena this thread is inside, for a client that may destroy
 * its arenas while other threads use them.  The client sets the hazard
 * between choosing an arena and accounting a block (allocation), or between
 * accounting a block and handing it back (its free observer: arena_free
 * clears it once the block is back).  The client destroys an arena only
 * when no thread's hazard names it.  Set and held form a pair of full
 * fences (asymmetric where membarrier allows: see tcache.c); clear is a
 * release.  arena_hazard_init runs once, before any arena exists.
 */
void arena_hazard_init(void);
void arena_hazard_set(tm_arena_t *arena);
void arena_hazard_clear(void);
/* Does any thread's hazard name this arena (conservative: true while a
 * thread without a tcache table holds one)?  Takes the registry lock. */
bool arena_hazard_held(const tm_arena_t *arena);

void tcache_prefork(void);
void tcache_postfork_parent(void);
void tcache_postfork_child(void);

/* mallocx from a's jemalloc arena with this thread's tcache for it (a zero
 * size as one byte), retried once after the pressure hook released
 * memory; NULL with errno ENOMEM.  The path under the front cache. */
void *arena_mallocx(tm_arena_t *a, size_t size, int flags);

/* Called when an allocation from `failed` found no memory (typically an
 * address-space limit): a layer above may release address space of its
 * own and return the bytes it unmapped; non-zero makes the allocation try
 * once more.  Set once at the client's start-up. */
typedef size_t (*arena_pressure_fn)(const tm_arena_t *failed);
void arena_set_pressure_hook(arena_pressure_fn fn);
/* Ask the hook to release memory after `failed` found none: true if any
 * was released, so one retry may succeed. */
bool arena_pressure_release(const tm_arena_t *failed);

/* ---------------------------------------------------------------- front_cache.c */

/*
 * A per-(thread, arena) cache of small free blocks in front of jemalloc, so
 * the common malloc/free pair never enters jemalloc's flag-handling path
 * (front_cache.c has the why and the bins).  Requests up to FRONT_MAX_SIZE
 * use it.
 */
#define FRONT_MAX_SIZE 1024
#define FRONT_MAX_CLASSES 24 /* jemalloc 5.3 has 21 up to 1 KiB */

/* (size + 7) / 8 -> class, and each class's size; built at start-up from
 * jemalloc's own nallocx, so they always match its size classes.  No
 * classes (front_nclasses 0): running without front caches. */
extern uint8_t front_class_of[FRONT_MAX_SIZE / 8 + 1];
extern uint32_t front_class_size[FRONT_MAX_CLASSES];
extern unsigned front_nclasses;

void front_cache_init_classes(void);
front_cache_t *front_cache_new(void);
/* Return every cached block to jemalloc (without a tcache) and free the
 * cache.  The owner thread must not be using it. */
void front_cache_delete(front_cache_t *fc);

/* The usable size of a block of `size` bytes (0 < size <= FRONT_MAX_SIZE)
 * while the front cache runs; 0 if it does not. */
static inline size_t front_usable_size(size_t size)
{
    return front_nclasses != 0
               ? front_class_size[front_class_of[(size + 7) >> 3]]
               : 0;
}

/* Put a block of arena a back: into this thread's front cache for it,
 * else to jemalloc through the thread's tcache.  usable == 0: not known
 * yet.  Clears this thread's hazard once the block is back. */
void arena_free_known(void *ptr, tm_arena_t *a, size_t usable);

/* ---------------------------------------------------------------- node_sysfs.c */

/* The kernel's largest MAX_NUMNODES (NODES_SHIFT 10): more ids than this in
 * "online" (or in one TIERMEM_TIERS tier) would be a corrupt file or a
 * typo, not a machine. */
#define SYSFS_MAX_IDS 1024

/* Parse a kernel-style list "0-2,5" in [s, end) into ids.  Blanks (spaces
 * and tabs) around numbers are allowed (users type TIERMEM_TIERS by hand);
 * an empty list is valid with *n = 0.  Returns false on a syntax error, a reversed range or
 * more than max ids. */
bool node_list_parse(const char *s, const char *end, unsigned *ids,
                     unsigned max, unsigned *n);

/* Fill t->nnodes and t->nodes (id, CPUs, memory, HMAT, distance) from the
 * sysfs node directory dir; *t must be zeroed, its tiers are left alone.
 * Returns 0, or -1 with errno (ENOENT: no usable node under dir). */
int node_sysfs_read(const char *dir, tm_topology_t *t);

/* ---------------------------------------------------------------- node_room.c */

/* The bytes each node can take now without going below the kernel's
 * reserves (free and inactive file pages above the low watermark, boost
 * included, and the zone's lowmem reserve; node_room.c says why these).  room[n] for every node n
 * in *known.  node_room_parse: the text of /proc/zoneinfo, hostile-safe;
 * false when no node got a figure.  node_room_read: path NULL reads
 * /proc/zoneinfo; -1 with errno when unreadable or no figure (ENODATA). */
bool node_room_parse(const char *text, size_t len, uint64_t page_size,
                     uint64_t room[TM_MAX_NODES], uint64_t *known);
int node_room_read(const char *path, uint64_t room[TM_MAX_NODES],
                   uint64_t *known);

/* ---------------------------------------------------------------- tiers.c */

/* Discover the process's tiers (once, at start-up); -1 with errno
 * when the nodes cannot be read (then the topology stays empty). */
int topology_load(void);
/* The process's tiers, as topology_load found them (empty before). */
const tm_topology_t *topology_get(void);

#endif /* TM_ARENA_H */
