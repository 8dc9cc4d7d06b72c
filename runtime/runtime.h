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
#include "options.h"

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

/* ---------------------------------------------------------------- runtime_init.c */

/* Reads the environment once (TIERMEM_LOG, TIERMEM_LOG_FILE); idempotent,
 * thread-safe, called by every entry point that needs it. */
void runtime_init(void);

/* exec replaces the process image without running atexit handlers, so
 * what the layers above flush at exit (the profile) would be left
 * unfinished.  The preload library's exec functions call
 * runtime_before_exec first; the library's start-up sets the hook. */
void runtime_set_exec_hook(void (*fn)(void));
void runtime_before_exec(void);

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

/* ---------------------------------------------------------------- fork.c */

/* Register the fork handlers (once; called at start-up). */
void fork_handlers_install(void);

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

/* ---------------------------------------------------------------- objects.c */

/* Loaded objects and the offset of an address inside one (for ASLR-stable
 * site keys).  Lookups are lock-free; a miss rescans dl_iterate_phdr. */
#define OBJECTS_MAX 1024
#define OBJECT_PATH_MAX 512

typedef struct object_info {
    uintptr_t base;      /* load base (dlpi_addr) */
    uint64_t name_hash;  /* FNV-1a of the base name: the stable identity */
    bool system;         /* libc or the dynamic loader: never a site */
    char path[OBJECT_PATH_MAX];
} object_info_t;

/* The object holding code address addr and addr's offset in it, or -1. */
int objects_lookup(uintptr_t addr, uintptr_t *offset);
const object_info_t *objects_get(unsigned index);
/* How many objects the loader had unloaded at the last snapshot: a change
 * means cached address classifications may name a dlclose'd object. */
unsigned long long objects_unloads(void);
uint64_t objects_hash_bytes(const void *data, size_t len, uint64_t h);
void objects_prefork(void);
void objects_postfork_parent(void);
void objects_postfork_child(void);

/* ---------------------------------------------------------------- stack.c */

#define STACK_NO_OBJECT UINT32_MAX
#define STACK_KEY_SEED 0x746965726d656dull /* "tiermem" */

typedef struct stack_frame {
    uint32_t object;   /* objects_get index, or STACK_NO_OBJECT */
    uintptr_t offset;  /* offset in the object (or the raw address) */
} stack_frame_t;

typedef struct stack_trace {
    unsigned depth;
    stack_frame_t frame[TM_MAX_STACK_DEPTH];
} stack_trace_t;

/* The key of the calling stack, up to `depth` frames counted from the
 * frame that `caller` (the entry point's return address) returns into,
 * skipping wrapper functions and libc.  Fills trace if not NULL. */
uint64_t stack_key(const void *caller, unsigned depth, stack_trace_t *trace);
void stack_warm_up(void);

/* ---------------------------------------------------------------- site.c */

typedef struct site {
    uint64_t key;             /* stack key, or site_explicit_key(id) */
    int32_t explicit_id;      /* the sh_* id, or -1 for a stack site */
    uint32_t index;           /* dense, 0 = the unsited allocations */
    _Atomic(tm_arena_t *) arena;
    pthread_mutex_t lock;     /* arena creation / promotion */
    _Atomic bool promote_failed; /* big/small: no arena left; stop trying */
    stack_trace_t trace;
    site_stats_t stats;
} site_t;

/* Site 0 holds allocations below TIERMEM_SMALL_SIZE, re-entrant ones, and
 * sites past TIERMEM_MAX_SITES. */
#define SITE_UNSITED 0

/* One-time set-up of sites, layouts and guidance (after runtime_init).
 * Returns false while the calling thread is itself initialising. */
bool sites_ready(void);
uint64_t site_explicit_key(int id);
site_t *site_find(uint64_t key, int explicit_id, const stack_trace_t *trace);
site_t *site_get(uint32_t index);
uint32_t site_count(void);
/* The arena this site allocates from on this thread (layout-dependent). */
tm_arena_t *site_arena(site_t *s);
/* Account a block of `usable` bytes now owned by site s in arena a. */
void site_account_alloc(site_t *s, tm_arena_t *a, void *ptr, size_t usable);
/* Account the free of a block of arena a.  For a reclaimable arena it
 * sets this thread's hazard, which arena_free_known (or the next
 * site_account_alloc) clears: call one of them next. */
void site_account_free(tm_arena_t *a, void *ptr, size_t usable);
/* A site arena was destroyed by reclaim: one fewer against the limit. */
void site_arena_destroyed(void);
void sites_prefork(void);
void sites_postfork_parent(void);
void sites_postfork_child(void);
/* Site 0, once start-up is complete (NULL before): the small-malloc path. */
extern _Atomic(site_t *) sites_unsited;

/* ---------------------------------------------------------------- site_reclaim.c */

/* Return address space: destroy the arenas of empty sites that no thread
 * is using (per-site layout).  idle_only: only those that had no allocation
 * since the previous idle scan and map at least SITE_RECLAIM_IDLE_MIN
 * bytes.  Never destroys `keep`.  Returns the bytes unmapped.  Call on an
 * allocation path, outside jemalloc, holding no arena, table or tcache
 * lock (a site's own lock is fine). */
size_t site_arenas_reclaim(bool idle_only, const tm_arena_t *keep);
#define SITE_RECLAIM_IDLE_MIN ((size_t)64 << 20)
/* A new reclaimable arena (site lock held). */
void site_reclaim_register(tm_arena_t *arena);
/* The idle scan before a new site's arena is made (site lock held). */
void site_reclaim_idle(bool past_limit);
void site_reclaim_prefork(void);
void site_reclaim_postfork_parent(void);
void site_reclaim_postfork_child(void);

/* ---------------------------------------------------------------- site_stats.c */

void stats_add(site_stats_t *st, size_t n);
void stats_sub(site_stats_t *st, size_t n);
/* Site 0's counters, batched per thread (see site_stats.c). */
void site0_add(size_t n);
void site0_sub(size_t n);
void site_stats_init(site_stats_t *site0_stats);
/* Read counters (site 0's include every thread's unfolded counts). */
void stats_snapshot(const site_stats_t *st, tm_alloc_stats_t *out);
void site_stats_prefork(void);
void site_stats_postfork_parent(void);
void site_stats_postfork_child(void);

/* ---------------------------------------------------------------- ledger.c */

/* Which site owns each block in a shared arena (blocks of site 0 are not
 * recorded: a block with no entry belongs to site 0). */
void ledger_insert(const void *ptr, uint32_t site);
/* Remove ptr's entry; returns its site, or SITE_UNSITED if none. */
uint32_t ledger_remove(const void *ptr);
void ledger_prefork(void);
void ledger_postfork_parent(void);
void ledger_postfork_child(void);

/* ---------------------------------------------------------------- site_alloc.c */

/* The allocation entry points shared by sh_* and the malloc interposition.
 * caller = the entry point's return address (for the stack key); site_id >= 0
 * selects an explicit site instead. */
void *site_malloc(const void *caller, int site_id, size_t size);
void *site_calloc(const void *caller, int site_id, size_t n, size_t size);
void *site_realloc(const void *caller, int site_id, void *ptr, size_t size);
void *site_aligned(const void *caller, int site_id, size_t align, size_t size);
void site_free(void *ptr);
size_t site_usable_size(const void *ptr);

/* ---------------------------------------------------------------- site_report.c */

/* Write the site table to `path` (open/write, no stdio).  0 or -1 + errno. */
int site_report_write(const char *path);
/* Write it to TIERMEM_OUTPUT_DIR under the per-process name, if set. */
void site_report_at_exit(void);

/* ---------------------------------------------------------------- site_table_read.c */

/* A site table read back, strictly (tables come from other users and
 * machines).  For tools: uses malloc. */
#define SITE_TABLE_MAX_BYTES ((size_t)256 << 20)
#define SITE_TABLE_LINE_MAX 4096

typedef enum site_table_kind {
    ST_LINE_COMMENT, ST_LINE_SITE, ST_LINE_FRAME, ST_LINE_ARENA
} site_table_kind_t;

typedef struct site_table_line {
    site_table_kind_t kind;
    size_t item;          /* index in sites, frames or arenas */
    const char *text;     /* the line as written, without its newline */
    size_t len;
} site_table_line_t;

typedef struct site_table_site {
    uint32_t index;
    uint64_t key;
    unsigned arena;
    tm_alloc_stats_t stats;
    int32_t explicit_id;  /* -1: a stack site */
    size_t first_frame, nframes;
} site_table_site_t;

typedef struct site_table_frame {
    unsigned index;       /* 0, 1, ... within its site */
    size_t site;          /* index in sites */
    const char *object;   /* an absolute path, or NULL for "?" */
    uint64_t offset;
    const char *function; /* as written: "name+0x12" or "?" */
    size_t function_at;   /* where that field starts in the line's text */
} site_table_frame_t;

typedef struct site_table_arena {
    unsigned id;
    bool shared;
    uint64_t nodes;
    tm_alloc_stats_t stats;
} site_table_arena_t;

typedef struct site_table {
    char *text, *fields;  /* private copies: lines; the same split in fields */
    site_table_line_t *lines;
    size_t nlines;
    site_table_site_t *sites;
    size_t nsites;
    site_table_frame_t *frames;
    size_t nframes;
    site_table_arena_t *arenas;
    size_t narenas;
    char error[320];      /* after a failure: "name:line: what" */
} site_table_t;

/* 0, or -1 with errno and t->error naming the first bad line; on failure
 * nothing is left allocated.  Free a table with site_table_free. */
int site_table_parse(const char *text, size_t len, const char *name,
                     site_table_t *t);
int site_table_read(const char *path, site_table_t *t);
void site_table_free(site_table_t *t);
/* The reader's rules for a frame's object and function fields, for the
 * writer (site_report.c), which must never write a table the reader
 * refuses.  Neither allocates. */
#define SITE_TABLE_SYMBOL_MAX 1024
bool site_table_object_ok(const char *path);
bool site_table_function_ok(const char *fn);

#endif /* TM_RUNTIME_H */
