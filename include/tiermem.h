/*
 * tiermem.h -- the public interface of tiermem, a tiered-memory runtime.
 *
 * An arena is a jemalloc arena whose memory comes from tiermem's own extent
 * hooks.  Every extent an arena maps is bound (mbind) to the arena's
 * placement before it is first touched, and tracked, so the whole arena can
 * later be moved to another placement and its residency measured.
 *
 * Tiers are groups of NUMA nodes of equal speed, ordered fastest first.
 *
 * Errors: functions that return a pointer return NULL and set errno;
 * functions that return int return 0 on success and -1 with errno set.
 * Nothing here prints; diagnostics go through the log configured by
 * TIERMEM_LOG / TIERMEM_LOG_FILE (see doc/configuration.md).
 */
#ifndef TIERMEM_H
#define TIERMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TM_EXPORT __attribute__((visibility("default")))
#else
#define TM_EXPORT
#endif

/* Node masks are 64-bit: tiermem supports NUMA nodes 0..63. */
#define TM_MAX_NODES 64
/* jemalloc allows at most 4095 arenas; tiermem's own limit is the same. */
#define TM_MAX_ARENAS 4095

/* ------------------------------------------------------------------ */
/* Placement                                                            */
/* ------------------------------------------------------------------ */

typedef enum tm_mode {
    TM_MODE_BIND = 1,       /* only these nodes; allocation fails when full */
    TM_MODE_PREFERRED = 2,  /* these nodes first, others when they are full */
    TM_MODE_INTERLEAVE = 3, /* pages spread round-robin over these nodes */
} tm_mode_t;

typedef struct tm_placement {
    tm_mode_t mode;
    uint64_t nodes; /* bit n set = NUMA node n */
} tm_placement_t;

/* A placement on a single node. */
TM_EXPORT tm_placement_t tm_placement_node(tm_mode_t mode, unsigned node);

/* ------------------------------------------------------------------ */
/* Arenas                                                               */
/* ------------------------------------------------------------------ */

typedef struct tm_arena tm_arena_t;

/* Create an arena on a placement.  NULL + errno (EINVAL for an empty or
 * out-of-range node mask, EAGAIN when no arena slot is left). */
TM_EXPORT tm_arena_t *tm_arena_create(const tm_placement_t *placement);

/* Destroy an arena: every allocation in it becomes invalid, every extent it
 * mapped is unmapped and removed from the extent map.  No other thread may
 * use the arena during or after this call. */
TM_EXPORT int tm_arena_destroy(tm_arena_t *arena);

TM_EXPORT void *tm_arena_malloc(tm_arena_t *arena, size_t size);
TM_EXPORT void *tm_arena_calloc(tm_arena_t *arena, size_t count, size_t size);
/* The result always lives in `arena`; ptr may come from any tiermem arena. */
TM_EXPORT void *tm_arena_realloc(tm_arena_t *arena, void *ptr, size_t size);
/* alignment: a power of two (EINVAL otherwise). */
TM_EXPORT void *tm_arena_aligned_alloc(tm_arena_t *arena, size_t alignment,
                                       size_t size);
/* Free memory from any tiermem arena.  NULL is ignored.  A pointer tiermem
 * did not hand out is logged and left alone. */
TM_EXPORT void tm_free(void *ptr);
/* Usable size of a tiermem allocation; 0 for NULL or a foreign pointer. */
TM_EXPORT size_t tm_usable_size(const void *ptr);
/* The arena that owns ptr (any address inside one of its extents), or NULL. */
TM_EXPORT tm_arena_t *tm_arena_of(const void *ptr);

TM_EXPORT unsigned tm_arena_id(const tm_arena_t *arena);       /* 1..4095 */
TM_EXPORT unsigned tm_arena_jemalloc_index(const tm_arena_t *arena);
TM_EXPORT tm_placement_t tm_arena_placement(const tm_arena_t *arena);

/* ------------------------------------------------------------------ */
/* Migration                                                            */
/* ------------------------------------------------------------------ */

#define TM_REPORT_MAX_FAILURES 16

typedef struct tm_page_failure {
    void *addr; /* the page */
    int error;  /* positive errno: EBUSY, ENOMEM, EFAULT, EIO, ... */
} tm_page_failure_t;

typedef struct tm_migrate_report {
    /* "extents" here are address ranges: adjacent jemalloc extents of the
     * arena are coalesced into one range and bound with one mbind. */
    size_t extents;        /* ranges bound to the new placement */
    size_t extents_failed; /* ranges whose mbind failed (old policy kept) */
    size_t bytes_mapped;   /* bytes covered by the arena's extents */
    size_t bytes_resident; /* resident bytes examined */
    size_t bytes_moved;    /* resident bytes that changed onto the target */
    size_t pages_failed;   /* resident pages still off the target at the end */
    size_t busy_retries;   /* EBUSY/EAGAIN pages that were tried again */
    int error;             /* first errno seen, 0 if none */
    size_t nfailures;      /* entries used in failures[] */
    tm_page_failure_t failures[TM_REPORT_MAX_FAILURES];
} tm_migrate_report_t;

/* Move every extent of the arena to `to` with mbind(MPOL_MF_MOVE), holding
 * the arena's mutex, so later faults and later extents land on `to` too.
 * The arena's placement becomes `to` even after a partial failure; extents
 * whose mbind failed are retried by the next call.  report may be NULL.
 * Returns 0 when every range was bound and every resident page is seen on
 * the target, else -1 with errno: EIO or the page's own reason when pages
 * did not move, mbind's errno when a range could not be bound, or
 * move_pages' errno when the pages could not be checked. */
TM_EXPORT int tm_arena_migrate(tm_arena_t *arena, const tm_placement_t *to,
                               tm_migrate_report_t *report);

/* ------------------------------------------------------------------ */
/* Residency                                                            */
/* ------------------------------------------------------------------ */

typedef struct tm_residency {
    size_t bytes_mapped;   /* bytes covered by the arena's extents */
    size_t pages_queried;  /* pages passed to move_pages */
    size_t stride;         /* 1 = every page queried, k = every k-th page */
    size_t bytes_resident; /* resident bytes (scaled by stride) */
    size_t node_bytes[TM_MAX_NODES]; /* resident bytes per node (scaled) */
} tm_residency_t;

/* Resident bytes of the arena on each node, from move_pages status queries.
 * At most max_pages pages are queried (0 = every page); larger arenas are
 * sampled at a fixed stride and the figures scaled. */
TM_EXPORT int tm_arena_residency(tm_arena_t *arena, size_t max_pages,
                                 tm_residency_t *out);

/* ------------------------------------------------------------------ */
/* Tiers                                                                */
/* ------------------------------------------------------------------ */

typedef struct tm_node_info {
    unsigned id;
    bool has_cpus;
    uint64_t capacity_bytes;
    uint64_t free_bytes;
    /* HMAT access attributes from the CPU initiators (access0), 0 = unknown */
    unsigned read_latency_ns, write_latency_ns;
    unsigned read_bandwidth_mbps, write_bandwidth_mbps;
    unsigned distance; /* smallest SLIT distance from a node with CPUs */
} tm_node_info_t;

typedef struct tm_tier {
    uint64_t nodes;          /* the nodes of this tier */
    uint64_t capacity_bytes; /* sum over the nodes */
    uint64_t free_bytes;
} tm_tier_t;

typedef struct tm_topology {
    unsigned nnodes;
    tm_node_info_t nodes[TM_MAX_NODES]; /* ascending node id */
    unsigned ntiers;
    tm_tier_t tiers[TM_MAX_NODES]; /* tiers[0] is the fastest */
    /* how the order was decided: "env", "hmat", "distance" or "single" */
    char source[16];
} tm_topology_t;

/* Discover nodes and tiers from sysfs.  TIERMEM_TIERS overrides the order,
 * e.g. "0;1" or "0,2;1" (';' separates tiers, fastest first).  A machine
 * with one node has one tier. */
TM_EXPORT int tm_topology_discover(tm_topology_t *out);
/* Same, reading a sysfs tree rooted elsewhere (for tests). */
TM_EXPORT int tm_topology_discover_at(const char *sysfs_node_dir,
                                      tm_topology_t *out);
/* The placement of tier `tier` in the given mode. */
TM_EXPORT int tm_topology_tier_placement(const tm_topology_t *topo,
                                         unsigned tier, tm_mode_t mode,
                                         tm_placement_t *out);

/* ------------------------------------------------------------------ */
/* Sites                                                                */
/* ------------------------------------------------------------------ */

/*
 * A site is where a program allocates: an explicit id (from a compiler pass
 * or by hand), or the program's call stack (the preload library).  Each site
 * gets an arena according to TIERMEM_LAYOUT; guidance files place sites on
 * tiers or nodes.  Site ids here are the program's own ids: 0 means "no
 * particular site".  The SICM-compatible names (sh_alloc, ...) are the same
 * functions; see doc/sites.md.
 */
TM_EXPORT void *tm_site_malloc(int site, size_t size);
TM_EXPORT void *tm_site_calloc(int site, size_t count, size_t size);
TM_EXPORT void *tm_site_realloc(int site, void *ptr, size_t size);
TM_EXPORT void *tm_site_aligned_alloc(int site, size_t alignment, size_t size);
/* tm_free releases site blocks too. */

typedef struct tm_alloc_stats {
    uint64_t allocs, frees;
    uint64_t bytes;  /* usable bytes ever allocated */
    uint64_t live;   /* usable bytes allocated and not freed */
    uint64_t peak;   /* highest live */
} tm_alloc_stats_t;

/* What names a site. */
typedef enum tm_site_kind {
    TM_SITE_STACK = 0,    /* the call stack (the preload library); site 0 */
    TM_SITE_EXPLICIT = 1, /* an int id: tm_site_* / sh_* */
    TM_SITE_CC = 2,       /* a compiler id: tm_cc_*; key == the id */
} tm_site_kind_t;

typedef struct tm_site_info {
    unsigned index;       /* 0 .. tm_site_count() - 1; 0 = unsited */
    uint64_t key;         /* stable across runs: what guidance names */
    int explicit_id;      /* the program's id, or -1 for a stack site */
    unsigned arena_id;    /* the site's arena (0: none yet / per thread) */
    unsigned depth;       /* frames in the key */
    tm_site_kind_t kind;  /* in what was padding: the size is unchanged */
    tm_alloc_stats_t stats;
} tm_site_info_t;

TM_EXPORT unsigned tm_site_count(void);
/* 0, or -1 with errno EINVAL for an index past the count. */
TM_EXPORT int tm_site_info(unsigned index, tm_site_info_t *out);
/* The allocation counters of an arena (zero for arenas made by
 * tm_arena_create, which are not accounted). */
TM_EXPORT void tm_arena_alloc_stats(const tm_arena_t *arena,
                                    tm_alloc_stats_t *out);
/* Write the site table (doc/sites.md) to path: 0 or -1 with errno. */
TM_EXPORT int tm_sites_write(const char *path);

/* SICM's high-level interface, same names and signatures: programs
 * instrumented for SICM link and run against tiermem unchanged. */
TM_EXPORT void *sh_alloc(int id, size_t sz);
TM_EXPORT void *sh_calloc(int id, size_t num, size_t sz);
TM_EXPORT void *sh_realloc(int id, void *ptr, size_t sz);
TM_EXPORT void *sh_aligned_alloc(int id, size_t alignment, size_t sz);
TM_EXPORT int sh_posix_memalign(int id, void **ptr, size_t alignment,
                                size_t sz);
TM_EXPORT void *sh_memalign(int id, size_t alignment, size_t sz);
TM_EXPORT char *sh_strdup(int id, const char *s);
TM_EXPORT char *sh_strndup(int id, const char *s, size_t n);
TM_EXPORT void sh_free(void *ptr);
TM_EXPORT void sh_sized_free(void *ptr, size_t size);
TM_EXPORT void *sh_alloc_cxx_nothrow(int id, size_t sz, void *nothrow_tag);

/* ------------------------------------------------------------------ */
/* Compiler-instrumented sites                                          */
/* ------------------------------------------------------------------ */

/*
 * A compiler pass rewrites a program's allocation calls into these, each
 * with its call site's 64-bit id (bits 63..62 = binary 10), and describes
 * the ids in an ELF note of each object (.note.tiermem; doc/sites.md).
 * Each behaves as the standard function it replaces (errno, NULL,
 * alignment rules, realloc(NULL, n) and realloc(p, 0) as malloc and free),
 * but its site is the id: no stack walk.  Free the blocks with free,
 * delete or tm_free.  An id without bits 63..62 = 10 counts as site 0.
 * The C++ ones throw std::bad_alloc as operator new does (the program's
 * new_handler first); the nothrow ones return NULL.
 */
TM_EXPORT void *tm_cc_malloc(uint64_t id, size_t size);
TM_EXPORT void *tm_cc_calloc(uint64_t id, size_t n, size_t size);
TM_EXPORT void *tm_cc_realloc(uint64_t id, void *ptr, size_t size);
TM_EXPORT void *tm_cc_reallocarray(uint64_t id, void *ptr, size_t n,
                                   size_t size);
TM_EXPORT int tm_cc_posix_memalign(uint64_t id, void **p, size_t align,
                                   size_t size);
TM_EXPORT void *tm_cc_aligned_alloc(uint64_t id, size_t align, size_t size);
TM_EXPORT void *tm_cc_memalign(uint64_t id, size_t align, size_t size);
TM_EXPORT void *tm_cc_valloc(uint64_t id, size_t size);
TM_EXPORT char *tm_cc_strdup(uint64_t id, const char *s);
TM_EXPORT char *tm_cc_strndup(uint64_t id, const char *s, size_t n);
/* operator new / new[], plain, nothrow, aligned (align: a power of two). */
TM_EXPORT void *tm_cc_new(uint64_t id, size_t size);
TM_EXPORT void *tm_cc_new_array(uint64_t id, size_t size);
TM_EXPORT void *tm_cc_new_nothrow(uint64_t id, size_t size);
TM_EXPORT void *tm_cc_new_array_nothrow(uint64_t id, size_t size);
TM_EXPORT void *tm_cc_new_aligned(uint64_t id, size_t size, size_t align);
TM_EXPORT void *tm_cc_new_array_aligned(uint64_t id, size_t size,
                                        size_t align);
TM_EXPORT void *tm_cc_new_aligned_nothrow(uint64_t id, size_t size,
                                          size_t align);
TM_EXPORT void *tm_cc_new_array_aligned_nothrow(uint64_t id, size_t size,
                                                size_t align);
/* The id the calling thread's next allocation through the replaced malloc
 * takes (0: none; an invalid id counts as none).  The pass brackets calls
 * of a language runtime that allocates inside itself (flang's
 * _FortranAAllocatableAllocate) with tm_cc_next_site(id) and
 * tm_cc_next_site(0). */
TM_EXPORT void tm_cc_next_site(uint64_t id);
/* The calling thread's wrapper context.  The pass brackets each call of an
 * allocation wrapper defined in another file (TIERMEM_CC_WRAPPERS) with
 * prev = tm_cc_wrap_enter(id) and tm_cc_wrap_leave(prev): every
 * allocation the thread makes in between (tm_cc_* or through the replaced
 * malloc) takes id as its site.  Enter sets the context only if none is
 * set (the outermost wrapper call wins) and id is a compiler id; it
 * returns the previous context (0: none), which leave restores. */
TM_EXPORT uint64_t tm_cc_wrap_enter(uint64_t id);
TM_EXPORT void tm_cc_wrap_leave(uint64_t prev);

/* ------------------------------------------------------------------ */
/* Statistics                                                           */
/* ------------------------------------------------------------------ */

typedef struct tm_stats {
    uint64_t extents;        /* live extents tracked */
    uint64_t bytes_mapped;   /* bytes in live extents */
    uint64_t metadata_bytes; /* tiermem's own bookkeeping mappings */
    uint64_t hook_allocs;    /* successful extent allocations */
    uint64_t hook_alloc_failures;
    uint64_t mbind_failures; /* failed binds of new extents */
    uint64_t unmaps;
    uint64_t unmap_failures;
    uint64_t splits, merges, purges;
    uint64_t migrations;
    uint64_t migrate_failures;
} tm_stats_t;

TM_EXPORT void tm_stats_get(tm_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* TIERMEM_H */
