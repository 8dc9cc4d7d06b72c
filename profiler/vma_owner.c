/*
 * vma_owner.c -- which arena a VMA's figures belong to.
 *
 * The kernel reports accessed pages (smaps) and pages per node (numa_maps)
 * per VMA; the policy needs them per arena.  Each scan lists every arena's
 * extents, sorted by address, and walks them alongside the VMAs, which the
 * kernel prints in ascending order: one pass over both lists.
 *
 * The rules for a VMA (refs_internal.h) keep one promise: memory tiermem
 * does not own is never counted.  A VMA with any foreign byte is dropped
 * whole, since its figure cannot be split; extent_region.c keeps arenas'
 * extents away from other mappings so that this is rare.
 *
 * Runs on the profiling thread: metadata memory only, no qsort (glibc's may
 * call malloc, which in the preload library is tiermem itself).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "refs_internal.h"

typedef struct owned_range owned_range_t;

static bool owners_reserve(vma_owners_t *o, size_t more)
{
    if (o->n + more <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->n + more)
        cap *= 2;
    owned_range_t *r = meta_alloc(cap * sizeof *r);
    if (r == NULL)
        return false;
    if (o->n)
        memcpy(r, o->ranges, o->n * sizeof *r);
    if (o->ranges)
        meta_free(o->ranges, o->cap * sizeof *r);
    o->ranges = r;
    o->cap = cap;
    return true;
}

/* Shell sort by start (ranges never overlap). */
static void owners_sort(owned_range_t *r, size_t n)
{
    static const size_t gaps[] = {1750, 701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        for (size_t i = gaps[g]; i < n; i++) {
            owned_range_t v = r[i];
            size_t j = i;
            for (; j >= gaps[g] && r[j - gaps[g]].start > v.start;
                 j -= gaps[g])
                r[j] = r[j - gaps[g]];
            r[j] = v;
        }
    }
}

/* Append [start, end) as the arena's, with the pieces that are jemalloc's
 * metadata for the arena (hook_arena_t.metadata) as arena 0: owned, but
 * not the program's data.  Room for 2 * HOOK_METADATA_RANGES + 1 entries
 * was reserved. */
static void owners_add_range(vma_owners_t *o, const hook_arena_t *h,
                             uintptr_t start, uintptr_t end, unsigned id)
{
    while (start < end) {
        uintptr_t cut = end, meta_end = 0;
        for (unsigned m = 0; m < h->nmetadata; m++) {
            uintptr_t ms = h->metadata[m].start;
            uintptr_t me = ms + h->metadata[m].size;
            if (me <= start || ms >= end)
                continue;
            if (ms <= start) { /* start lies in metadata */
                cut = start;
                meta_end = me < end ? me : end;
                break;
            }
            if (ms < cut)
                cut = ms;
        }
        if (cut > start)
            o->ranges[o->n++] =
                (owned_range_t){.start = start, .end = cut, .arena = id};
        if (meta_end > start) {
            o->ranges[o->n++] =
                (owned_range_t){.start = start, .end = meta_end, .arena = 0};
            start = meta_end;
        } else {
            start = cut;
        }
    }
}

static int owners_add_arena(vma_owners_t *o, tm_arena_t *a, unsigned id)
{
    mutex_lock(&a->hooked.lock);
    size_t count, bytes;
    extent_range_t *ranges = arena_ranges(a, &count, &bytes);
    bool ok = ranges != NULL;
    for (size_t i = 0; ok && i < count; i++) {
        ok = owners_reserve(o, 2 * HOOK_METADATA_RANGES + 1);
        if (ok)
            owners_add_range(o, &a->hooked, ranges[i].start,
                             ranges[i].start + ranges[i].size, id);
    }
    mutex_unlock(&a->hooked.lock);
    if (ranges != NULL)
        meta_free(ranges, bytes);
    return ok ? 0 : -1;
}

int vma_owners_load(vma_owners_t *o)
{
    o->n = o->next = 0;
    int rc = 0;
    arena_walk_begin();
    for (unsigned id = 1; id <= TM_MAX_ARENAS && rc == 0; id++) {
        tm_arena_t *a = arena_by_id(id);
        if (a != NULL)
            rc = owners_add_arena(o, a, id);
    }
    arena_walk_end();
    if (rc != 0) {
        o->n = 0;
        errno = ENOMEM;
        return -1;
    }
    owners_sort(o->ranges, o->n);
    return 0;
}

int vma_owners_set(vma_owners_t *o, const owned_range_t *r, size_t n)
{
    o->n = o->next = 0;
    if (!owners_reserve(o, n)) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(o->ranges, r, n * sizeof *r);
    o->n = n;
    owners_sort(o->ranges, n);
    return 0;
}

void vma_owners_free(vma_owners_t *o)
{
    if (o->ranges)
        meta_free(o->ranges, o->cap * sizeof o->ranges[0]);
    memset(o, 0, sizeof *o);
}

static uintptr_t max_addr(uintptr_t a, uintptr_t b) { return a > b ? a : b; }
static uintptr_t min_addr(uintptr_t a, uintptr_t b) { return a < b ? a : b; }

static uint64_t share_of(uint64_t amount, uint64_t part, uint64_t whole)
{
    return (uint64_t)((double)amount * (double)part / (double)whole);
}

void vma_owners_credit(vma_owners_t *o, uintptr_t lo, uintptr_t hi,
                       const vma_amount_t *amount, vma_credit_fn credit,
                       void *ctx)
{
    if (hi <= lo)
        return;
    while (o->next < o->n && o->ranges[o->next].end <= lo)
        o->next++;
    uint64_t owned = 0, data = 0;
    unsigned one = 0;
    bool several = false;
    size_t k = o->next;
    for (; k < o->n && o->ranges[k].start < hi; k++) {
        uint64_t part = min_addr(o->ranges[k].end, hi) -
                        max_addr(o->ranges[k].start, lo);
        owned += part;
        if (o->ranges[k].arena == 0)
            continue; /* an arena's metadata: owned, not the program's */
        data += part;
        if (one == 0)
            one = o->ranges[k].arena;
        else if (o->ranges[k].arena != one)
            several = true;
    }
    if (data == 0)
        return; /* not tiermem's, or only the allocator's own pages */
    if (owned < hi - lo) {
        o->dropped_vmas++;
        o->dropped_bytes += amount->referenced;
        return;
    }
    if (!several && data == owned) {
        for (size_t i = o->next; i < k; i++)
            if (o->ranges[i].arena == one) {
                credit(ctx, one, amount, max_addr(o->ranges[i].start, lo));
                break;
            }
        return;
    }
    /* Several arenas, or data and metadata: each data range's share by
     * bytes; the metadata's share is nobody's. */
    o->blurred_vmas++;
    for (size_t i = o->next; i < k; i++) {
        if (o->ranges[i].arena == 0)
            continue;
        uintptr_t s = max_addr(o->ranges[i].start, lo);
        uint64_t part = min_addr(o->ranges[i].end, hi) - s;
        vma_amount_t share = {
            .referenced = share_of(amount->referenced, part, hi - lo),
            .resident = share_of(amount->resident, part, hi - lo)};
        credit(ctx, o->ranges[i].arena, &share, s);
    }
}
