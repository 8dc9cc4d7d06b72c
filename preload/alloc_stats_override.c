/*
 * alloc_stats_override.c -- glibc's heap statistics and tuning calls
 * (mallinfo2, mallinfo, malloc_trim, malloc_stats, malloc_info, mallopt),
 * answered from tiermem's arenas; libtiermem-preload.so only.
 *
 * Without these, programs and monitoring agents that read glibc's figures
 * see an empty heap: glibc knows nothing of the blocks tiermem hands out.
 * The figures are jemalloc's statistics over every arena (refreshed with
 * the "epoch" mallctl), mapped onto glibc's fields where a field has a
 * meaning (doc/sites.md has the table):
 *   - small blocks play glibc's heap: uordblks is the bytes in them, arena
 *     the active pages that are not large blocks, fordblks the rest;
 *   - large blocks (above jemalloc's largest small class) play glibc's
 *     separately mmapped chunks: hblks and hblkhd.
 * Blocks in thread caches count as allocated, as glibc's tcache chunks do.
 *
 * Nothing here runs under a tiermem or jemalloc lock while it writes to the
 * program's FILE or descriptor: those writes may allocate.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sites.h"

#define OVERRIDE __attribute__((visibility("default")))
#define ALL_ARENAS "4096" /* MALLCTL_ARENAS_ALL */

typedef struct heap_figures {
    size_t mapped;      /* bytes jemalloc has mapped for these arenas */
    size_t active;      /* bytes in pages holding blocks */
    size_t small_bytes, small_count;
    size_t large_bytes, large_count;
    size_t free_regions; /* free regions in the small classes' slabs */
} heap_figures_t;

static _Atomic bool stats_failure_logged;

static bool stat_read(const char *name, size_t *out)
{
    uint64_t v64;
    size_t v = 0, sz = sizeof v;
    int rc = mallctl(name, &v, &sz, NULL, 0);
    if (rc == EINVAL && sz != sizeof v) { /* the counters are uint64_t */
        sz = sizeof v64;
        rc = mallctl(name, &v64, &sz, NULL, 0);
        v = (size_t)v64;
    }
    if (rc != 0) {
        if (!atomic_exchange(&stats_failure_logged, true))
            log_warn("heap statistics: jemalloc mallctl(%s) failed: "
                        "error %d (built without --enable-stats?); reported "
                        "as 0 (reported once)", name, rc);
        return false;
    }
    *out = v;
    return true;
}

/* Make jemalloc merge its per-thread and per-arena counters. */
static void stats_refresh(void)
{
    uint64_t epoch = 1;
    size_t sz = sizeof epoch;
    (void)mallctl("epoch", &epoch, &sz, &epoch, sz);
}

static size_t counter_diff(const char *prefix, const char *plus,
                           const char *minus)
{
    char name[96];
    size_t a = 0, b = 0;
    snprintf(name, sizeof name, "%s.%s", prefix, plus);
    (void)stat_read(name, &a);
    snprintf(name, sizeof name, "%s.%s", prefix, minus);
    (void)stat_read(name, &b);
    return a > b ? a - b : 0;
}

/* prefix: "stats.arenas.<i>" (one jemalloc arena, or ALL_ARENAS). */
static void heap_read(const char *prefix, heap_figures_t *h)
{
    char name[96];
    memset(h, 0, sizeof *h);
    snprintf(name, sizeof name, "%s.mapped", prefix);
    (void)stat_read(name, &h->mapped);
    snprintf(name, sizeof name, "%s.pactive", prefix);
    size_t pages = 0;
    if (stat_read(name, &pages))
        h->active = pages * os_page_size();
    snprintf(name, sizeof name, "%s.small.allocated", prefix);
    (void)stat_read(name, &h->small_bytes);
    snprintf(name, sizeof name, "%s.large.allocated", prefix);
    (void)stat_read(name, &h->large_bytes);
    h->small_count = counter_diff(prefix, "small.nmalloc", "small.ndalloc");
    h->large_count = counter_diff(prefix, "large.nmalloc", "large.ndalloc");
}

/* Free regions of the small classes: glibc's count of free chunks. */
static size_t free_regions(const char *prefix)
{
    unsigned nbins = 0;
    size_t sz = sizeof nbins, total = 0;
    if (mallctl("arenas.nbins", &nbins, &sz, NULL, 0) != 0)
        return 0;
    for (unsigned b = 0; b < nbins; b++) {
        char name[96];
        uint32_t nregs = 0;
        size_t slabs = 0, regs = 0;
        snprintf(name, sizeof name, "arenas.bin.%u.nregs", b);
        sz = sizeof nregs;
        if (mallctl(name, &nregs, &sz, NULL, 0) != 0)
            continue;
        snprintf(name, sizeof name, "%s.bins.%u.curslabs", prefix, b);
        (void)stat_read(name, &slabs);
        snprintf(name, sizeof name, "%s.bins.%u.curregs", prefix, b);
        (void)stat_read(name, &regs);
        if (slabs * nregs > regs)
            total += slabs * nregs - regs;
    }
    return total;
}

/* The figures over all arenas, of the epoch the caller refreshed. */
static void totals_read(heap_figures_t *h)
{
    heap_read("stats.arenas." ALL_ARENAS, h);
}

/* glibc's "arena": the pages of the small blocks' slabs. */
static size_t heap_bytes(const heap_figures_t *h)
{
    size_t slab = h->active > h->large_bytes ? h->active - h->large_bytes : 0;
    return slab > h->small_bytes ? slab : h->small_bytes;
}

OVERRIDE struct mallinfo2 mallinfo2(void)
{
    heap_figures_t h;
    stats_refresh();
    totals_read(&h);
    h.free_regions = free_regions("stats.arenas." ALL_ARENAS);
    struct mallinfo2 mi = {0};
    mi.arena = heap_bytes(&h);
    mi.ordblks = h.free_regions;
    mi.hblks = h.large_count;
    mi.hblkhd = h.large_bytes;
    mi.uordblks = h.small_bytes;
    mi.fordblks = mi.arena - h.small_bytes;
    return mi; /* smblks, usmblks, fsmblks, keepcost: no such thing here */
}

static int saturate(size_t v)
{
    return v > (size_t)INT_MAX ? INT_MAX : (int)v;
}

/* The old interface's int fields stop at INT_MAX instead of wrapping. */
OVERRIDE struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi = {
        .arena = saturate(m2.arena),
        .ordblks = saturate(m2.ordblks),
        .smblks = saturate(m2.smblks),
        .hblks = saturate(m2.hblks),
        .hblkhd = saturate(m2.hblkhd),
        .usmblks = saturate(m2.usmblks),
        .fsmblks = saturate(m2.fsmblks),
        .uordblks = saturate(m2.uordblks),
        .fordblks = saturate(m2.fordblks),
        .keepcost = saturate(m2.keepcost),
    };
    return mi;
}

/* Purge every arena's unused dirty and muzzy pages (pad is meaningless:
 * jemalloc has no top of heap).  1 if there were pages to give back. */
OVERRIDE int malloc_trim(size_t pad)
{
    (void)pad;
    size_t dirty = 0, muzzy = 0;
    stats_refresh();
    (void)stat_read("stats.arenas." ALL_ARENAS ".pdirty", &dirty);
    (void)stat_read("stats.arenas." ALL_ARENAS ".pmuzzy", &muzzy);
    uint64_t purges = atomic_load(&hook_counters.purges);
    int rc = mallctl("arena." ALL_ARENAS ".purge", NULL, NULL, NULL, 0);
    if (rc != 0) {
        log_warn("malloc_trim: jemalloc arena.%s.purge failed: error %d",
                    ALL_ARENAS, rc);
        return 0;
    }
    return dirty + muzzy > 0 || atomic_load(&hook_counters.purges) != purges;
}

/* One tiermem arena as seen by malloc_stats and malloc_info. */
typedef struct arena_view {
    unsigned id, je_index;
    arena_kind_t kind;
    size_t tracked; /* bytes in its extent set: what tiermem has mapped */
} arena_view_t;

/* The arena with this id, copied while the table walk keeps it alive (the
 * walk is taken per arena: nothing is held while the caller writes). */
static bool arena_view(unsigned id, arena_view_t *v)
{
    arena_walk_begin();
    tm_arena_t *a = arena_by_id(id);
    if (a != NULL) {
        v->id = id;
        v->je_index = a->je_index;
        v->kind = site_arena_kind(a, NULL);
        mutex_lock(&a->hooked.lock);
        v->tracked = a->hooked.extents.bytes;
        mutex_unlock(&a->hooked.lock);
    }
    arena_walk_end();
    return a != NULL;
}

static const char *kind_name(arena_kind_t k)
{
    return k == ARENA_SITE ? "site" : k == ARENA_SHARED ? "shared" : "user";
}

/* An arena created after the last "epoch" has no figures yet (jemalloc
 * says ENOENT): zeros, without a warning. */
static void arena_heap(const arena_view_t *v, heap_figures_t *h)
{
    char prefix[48], name[64];
    size_t pages, sz = sizeof pages;
    snprintf(prefix, sizeof prefix, "stats.arenas.%u", v->je_index);
    snprintf(name, sizeof name, "%s.pactive", prefix);
    if (mallctl(name, &pages, &sz, NULL, 0) != 0) {
        memset(h, 0, sizeof *h);
        return;
    }
    heap_read(prefix, h);
}

/* A line to stderr without stdio (stderr's FILE may be in any state). */
static void err_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err_line(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the program's stderr is gone: nothing to report to */
        off += (size_t)w;
    }
}

/* glibc's summary, per tiermem arena then in total, on stderr. */
OVERRIDE void malloc_stats(void)
{
    int saved = errno;
    stats_refresh();
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        arena_view_t v;
        heap_figures_t h;
        if (!arena_view(id, &v))
            continue;
        arena_heap(&v, &h);
        err_line("Arena %u (tiermem, %s; jemalloc arena %u):\n", v.id,
                 kind_name(v.kind), v.je_index);
        err_line("system bytes     = %10zu\n", v.tracked);
        err_line("in use bytes     = %10zu\n", h.small_bytes + h.large_bytes);
    }
    heap_figures_t t;
    totals_read(&t);
    err_line("Total (incl. large blocks):\n");
    err_line("system bytes     = %10zu\n", t.mapped);
    err_line("in use bytes     = %10zu\n", t.small_bytes + t.large_bytes);
    err_line("max mmap regions = %10zu\n", t.large_count);
    err_line("max mmap bytes   = %10zu\n", t.large_bytes);
    errno = saved;
}

static void xml_totals(FILE *fp, const heap_figures_t *h, size_t system)
{
    fprintf(fp, "<total type=\"small\" count=\"%zu\" size=\"%zu\"/>\n",
            h->small_count, h->small_bytes);
    fprintf(fp, "<total type=\"large\" count=\"%zu\" size=\"%zu\"/>\n",
            h->large_count, h->large_bytes);
    fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", system);
    fprintf(fp, "<aspace type=\"active\" size=\"%zu\"/>\n", h->active);
}

/* glibc's layout (a heap element per arena, then the totals), with
 * tiermem's arena ids and jemalloc's figures.  As glibc: options other
 * than 0 return EINVAL (the value, not errno). */
OVERRIDE int malloc_info(int options, FILE *fp)
{
    if (options != 0 || fp == NULL)
        return EINVAL;
    stats_refresh();
    fputs("<malloc version=\"tiermem-1\">\n", fp);
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        arena_view_t v;
        heap_figures_t h;
        if (!arena_view(id, &v))
            continue;
        arena_heap(&v, &h);
        fprintf(fp, "<heap nr=\"%u\" kind=\"%s\" jemalloc=\"%u\">\n", v.id,
                kind_name(v.kind), v.je_index);
        xml_totals(fp, &h, v.tracked);
        fputs("</heap>\n", fp);
    }
    heap_figures_t t;
    totals_read(&t);
    xml_totals(fp, &t, t.mapped);
    fputs("</malloc>\n", fp);
    return ferror(fp) ? -1 : 0;
}

/* glibc's parameters: accepted (1) with glibc's range checks, but none
 * changes anything here (jemalloc has no fastbins, top pad or mmap
 * threshold; tiermem's arenas follow TIERMEM_LAYOUT and
 * TIERMEM_MAX_ARENAS).  Unknown parameters: 0.  doc/sites.md. */
OVERRIDE int mallopt(int param, int value)
{
    switch (param) {
    case M_MXFAST:
        return value >= 0 && value <= 80 * (int)sizeof(size_t) / 4;
    case M_ARENA_TEST:
    case M_ARENA_MAX:
        return value > 0;
    case M_TRIM_THRESHOLD:
    case M_TOP_PAD:
    case M_MMAP_THRESHOLD:
    case M_MMAP_MAX:
    case M_CHECK_ACTION:
    case M_PERTURB:
        return 1;
    default:
        return 0;
    }
}
