/*
 * refs_internal.h -- what the accessed-bit sampler's files share
 * (sampler_refs.c, refs_rearm.c, proc_vma_scan.c, vma_owner.c) and what
 * its tests see.
 * Private to the profiler.
 */
#ifndef TM_REFS_INTERNAL_H
#define TM_REFS_INTERNAL_H

#include <time.h>

#include "profiler.h"

/* CPU time of the calling thread, ns (0 if the clock fails): what the
 * refs sampler and the residency pass charge to their budgets. */
static inline uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ proc_vma_scan.c
 * A streaming reader of /proc/self/smaps and /proc/self/numa_maps: text in
 * pieces of any size, one callback per VMA.  The text is the kernel's, but
 * it is parsed as if it were hostile: a line too long, a header that does
 * not parse, a number that overflows, is counted as malformed and skipped,
 * never trusted. */

#define VMA_SCAN_LINE 256 /* longer lines are cut: headers and keys fit */

typedef enum vma_scan_kind {
    VMA_SCAN_SMAPS,     /* "lo-hi perms ..." then "Key:  N kB" lines */
    VMA_SCAN_NUMA_MAPS, /* "lo policy key=value ... N<node>=pages ..." */
} vma_scan_kind_t;

typedef struct vma_record {
    uintptr_t lo, hi;   /* [lo, hi); numa_maps gives lo only: hi = 0 */
    uint64_t referenced;/* smaps: Referenced, in bytes */
    uint64_t resident;  /* smaps: Rss, in bytes */
    uint64_t anon_huge; /* smaps: AnonHugePages, in bytes */
    uint64_t page_size; /* numa_maps: kernelpagesize_kB, in bytes */
    uint64_t node_pages[TM_MAX_NODES]; /* numa_maps: N<node>= pages */
    bool has_nodes;
} vma_record_t;

typedef void (*vma_record_fn)(void *ctx, const vma_record_t *r);

typedef struct vma_scan {
    vma_scan_kind_t kind;
    vma_record_fn emit;
    void *ctx;
    char line[VMA_SCAN_LINE];
    size_t len;          /* bytes of the current line kept */
    bool cut;            /* the current line was longer */
    bool open;           /* a smaps header was seen, its record not emitted */
    vma_record_t cur;
    uint64_t records, malformed;
    uint64_t keys;       /* smaps Referenced lines parsed */
} vma_scan_t;

void vma_scan_init(vma_scan_t *s, vma_scan_kind_t kind, vma_record_fn emit,
                   void *ctx);
void vma_scan_feed(vma_scan_t *s, const char *text, size_t len);
/* The end of the text: emits the last record. */
void vma_scan_finish(vma_scan_t *s);
/* Read the whole of fd (from offset 0) through s in pieces of
 * bufsize bytes from buf.  0, or -1 + errno. */
int vma_scan_fd(vma_scan_t *s, int fd, char *buf, size_t bufsize);

/* ------------------------------------------------------------- vma_owner.c
 * Which arena each VMA belongs to.  The arenas' extents are listed, sorted
 * by address, and each VMA is matched against them:
 *   - no byte owned by an arena: not ours, never counted;
 *   - bytes of one arena only: that arena's, exactly;
 *   - bytes of several arenas and nothing else (extents the kernel placed
 *     next to each other: see extent_region.c): shared by bytes ("blurred");
 *   - any byte tiermem does not own: dropped, since what the kernel counts
 *     for the VMA cannot be split from the program's other memory. */

typedef struct vma_owners {
    struct owned_range { uintptr_t start, end; unsigned arena; } *ranges;
    size_t n, cap;       /* entries, and room (meta_alloc'd) */
    size_t next;         /* the matcher's cursor: VMAs come in order */
    uint64_t blurred_vmas, dropped_vmas, dropped_bytes;
} vma_owners_t;

/* List every live arena's extents (each arena's mutex in turn).  0, or -1
 * + ENOMEM.  The list is a snapshot: a VMA that has grown since counts as
 * mixed with foreign bytes for this once. */
int vma_owners_load(vma_owners_t *o);
/* For tests: the list from given ranges (sorted here). */
int vma_owners_set(vma_owners_t *o, const struct owned_range *r, size_t n);
void vma_owners_free(vma_owners_t *o);
/* What a VMA has, to be shared between its arenas. */
typedef struct vma_amount {
    uint64_t referenced, resident; /* bytes */
} vma_amount_t;
/* Split the VMA [lo, hi)'s amounts between its arenas: calls
 * credit(ctx, arena, share, an address of the arena inside the VMA) for
 * each, per the rules above.  VMAs must come in ascending order. */
typedef void (*vma_credit_fn)(void *ctx, unsigned arena,
                              const vma_amount_t *share, uintptr_t addr);
void vma_owners_credit(vma_owners_t *o, uintptr_t lo, uintptr_t hi,
                       const vma_amount_t *amount, vma_credit_fn credit,
                       void *ctx);

/* ------------------------------------------------- residency_numa_maps.c */

typedef enum residency_source {
    RESIDENCY_UNSEEN = 0,  /* no VMA of the arena in numa_maps */
    RESIDENCY_NUMA_MAPS,   /* measured from numa_maps, exactly */
    RESIDENCY_WALK,        /* a VMA it shares: the move_pages walk's */
} residency_source_t;

/* Residency of every arena whose VMAs are all its own, from numa_maps,
 * into at; source[id] (TM_MAX_ARENAS + 1 entries, zeroed by the caller)
 * says which arenas got it.  0, or -1 + errno (then nothing was given). */
int residency_numa_maps(attrib_t *at, residency_source_t *source);

/* residency_sampler.c: force a method (tests): 0 the cheaper, 1 numa_maps,
 * 2 the move_pages walk.  Returns what the last pass used (1 or 2). */
int residency_test_method(int force);
/* residency_numa_maps.c, for tests: the bytes of its per-arena table
 * resident now (mincore), SIZE_MAX if that cannot be asked. */
size_t residency_numa_maps_table_resident(void);

/* ------------------------------------------------------------ refs_rearm.c */

/* What re-arming a small page's accessed bit costs the program until it
 * is measured, and the process's referenced bytes that make it worth the
 * measurement (16 MiB of the sampler's own pages, for once). */
#define REFS_REARM_DEFAULT_NS 450.0
#define REFS_CALIBRATE_AT ((uint64_t)64 << 20)

typedef struct refs_calibration {
    char *p;
    size_t len;
    double warm;    /* ns of the warm pass */
    uint64_t t0;    /* thread CPU time at the start */
} refs_calibration_t;

/* Map the pages (on the slowest tier) and time them warm; false when the
 * mapping fails.  Then the caller clears the accessed bits, and
 * refs_calibration_end times them cold, unmaps them and returns the cost
 * per page (ns, clamped to [20, 5000]); *spent_ns is the calibration's own
 * CPU time, clear included. */
bool refs_calibration_begin(refs_calibration_t *c);
double refs_calibration_end(refs_calibration_t *c, uint64_t *spent_ns);

/* ------------------------------------------------------------ sampler_refs.c */

typedef struct refs_stats {
    uint64_t scans;       /* smaps reads (each followed by a clear) */
    uint64_t collects;    /* intervals seen */
    uint64_t cost_ns;     /* CPU time of all scans and clears, and the
                             program's estimated cost of setting the
                             accessed bits again (below) */
    uint64_t rearm_ns;    /* of which: that estimate */
    double rearm_ns_per_page; /* what the first access to a 4 KiB page
                             costs after a clear (sampler_refs.c) */
    uint64_t max_scan_ns; /* the dearest single scan */
    unsigned period;      /* intervals per scan now */
    uint64_t vmas, owned_vmas, blurred_vmas, dropped_vmas, malformed;
    uint64_t referenced;  /* bytes credited to arenas by the last scan */
    uint64_t first_touch; /* of those, bytes that became resident in the
                             window: not counted as heat */
} refs_stats_t;

/* The stats of an open refs sampler (tests, and the profiler's log). */
void sampler_refs_stats(const sampler_t *s, refs_stats_t *out);
/* For tests: pretend each scan costs this much more CPU time (ns). */
void sampler_refs_test_extra_cost(sampler_t *s, uint64_t ns);

#endif
