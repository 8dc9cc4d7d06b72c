/*
 * extent_set.c -- one arena's live extents, exactly as jemalloc sees them.
 *
 * jemalloc tells us about every extent through the hooks: alloc adds one,
 * split cuts one in two, merge joins two neighbours, dalloc and destroy take
 * one away.  This set replays those calls, so at any moment it holds exactly
 * the bytes the arena has mapped: migration and residency walk it, and a
 * call that names bytes we do not hold is caught instead of passed to the
 * kernel (the seed defect's EFAULT).
 *
 * Records are hashed by start address (uthash) and live in metadata memory;
 * the owning arena's mutex serialises every call.
 */
#include "config.h"

#include <errno.h>

#include "extent.h"

#define uthash_malloc(sz) meta_alloc(sz)
#define uthash_free(ptr, sz) meta_free((ptr), (sz))
#define HASH_NONFATAL_OOM 1
static _Thread_local bool uthash_oom_seen;
#define uthash_nonfatal_oom(obj) (uthash_oom_seen = true)
#include <uthash.h>

struct extent_record {
    uintptr_t start;
    size_t size;
    UT_hash_handle hh;
};

/* "All of these run under the owning arena's mutex" (hooks.h), checked. */
static inline void assert_guarded(const extent_set_t *set)
{
#ifdef TM_DEBUG
    debug_assert_rule(set->guard == NULL || mutex_owned(set->guard),
                   "an extent set is used under its arena's mutex");
#else
    (void)set;
#endif
}

/* count and bytes are what the records add up to: cheap to keep true, so
 * each change checks its own step (the full walk is
 * extent_set_check_consistency). */
static extent_record_t *record_find(const extent_set_t *set, uintptr_t start)
{
    extent_record_t *r = NULL;
    HASH_FIND(hh, set->by_addr, &start, sizeof start, r);
    return r;
}

/* uthash signals an out-of-memory add through the hook above. */
static int record_insert(extent_set_t *set, uintptr_t start, size_t size)
{
    extent_record_t *r = meta_alloc(sizeof *r);
    if (r == NULL)
        return -1;
    r->start = start;
    r->size = size;
    uthash_oom_seen = false;
    HASH_ADD(hh, set->by_addr, start, sizeof r->start, r);
    if (uthash_oom_seen) {
        meta_free(r, sizeof *r);
        errno = ENOMEM;
        return -1;
    }
    set->count++;
    set->bytes += size;
    return 0;
}

static void record_delete(extent_set_t *set, extent_record_t *r)
{
    HASH_DELETE(hh, set->by_addr, r);
    debug_assert(set->count > 0 && set->bytes >= r->size);
    set->count--;
    set->bytes -= r->size;
    meta_free(r, sizeof *r);
}

int extent_set_add(extent_set_t *set, uintptr_t start, size_t size)
{
    assert_guarded(set);
    if (size == 0 || record_find(set, start) != NULL) {
        errno = EEXIST;
        return -1;
    }
    return record_insert(set, start, size);
}

bool extent_set_contains(const extent_set_t *set, uintptr_t start,
                         size_t size)
{
    assert_guarded(set);
    size_t covered = 0;
    while (covered < size) {
        extent_record_t *r = record_find(set, start + covered);
        if (r == NULL || r->size > size - covered)
            return false;
        covered += r->size;
    }
    return size > 0;
}

int extent_set_remove(extent_set_t *set, uintptr_t start, size_t size)
{
    assert_guarded(set);
    /* Check the whole span first so a bad call changes nothing. */
    if (!extent_set_contains(set, start, size)) {
        errno = ENOENT;
        return -1;
    }
    size_t covered = 0;
    while (covered < size) {
        extent_record_t *r = record_find(set, start + covered);
        covered += r->size;
        record_delete(set, r);
    }
    return 0;
}

int extent_set_split(extent_set_t *set, uintptr_t start, size_t size,
                     size_t size_a)
{
    assert_guarded(set);
    extent_record_t *r = record_find(set, start);
    if (r == NULL || r->size != size || size_a == 0 || size_a >= size) {
        errno = ENOENT;
        return -1;
    }
    if (record_insert(set, start + size_a, size - size_a) != 0)
        return -1;
    r->size = size_a;
    set->bytes -= size - size_a; /* record_insert counted the tail again */
    debug_assert(record_find(set, start + size_a)->size == size - size_a);
    return 0;
}

int extent_set_merge(extent_set_t *set, uintptr_t a, size_t size_a,
                     uintptr_t b, size_t size_b)
{
    assert_guarded(set);
    extent_record_t *ra = record_find(set, a);
    extent_record_t *rb = record_find(set, b);
    if (ra == NULL || rb == NULL || ra->size != size_a ||
        rb->size != size_b || a + size_a != b) {
        errno = ENOENT;
        return -1;
    }
    record_delete(set, rb);
    ra->size += size_b;
    set->bytes += size_b;
    return 0;
}

/* Heapsort by start: qsort may call malloc, which under interposition can
 * re-enter the very arena whose mutex the caller holds. */
static void sift_down(extent_range_t *v, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && v[child + 1].start > v[child].start)
            child++;
        if (v[root].start >= v[child].start)
            return;
        extent_range_t t = v[root];
        v[root] = v[child];
        v[child] = t;
        root = child;
    }
}

static void sort_ranges(extent_range_t *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(v, i, n);
    for (size_t end = n; end-- > 1;) {
        extent_range_t t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift_down(v, 0, end);
    }
}

/* The records as ranges, ascending, not coalesced; returns how many. */
static size_t sorted_records(const extent_set_t *set, extent_range_t *out)
{
    size_t n = 0;
    for (extent_record_t *r = set->by_addr; r != NULL; r = r->hh.next)
        out[n++] = (extent_range_t){r->start, r->size};
    debug_assert(n == set->count);
    sort_ranges(out, n);
    return n;
}

size_t extent_set_ranges(const extent_set_t *set, extent_range_t *out)
{
    assert_guarded(set);
    size_t n = sorted_records(set, out);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && out[m - 1].start + out[m - 1].size == out[i].start)
            out[m - 1].size += out[i].size;
        else
            out[m++] = out[i];
    }
    return m;
}

bool extent_set_first(const extent_set_t *set, extent_range_t *out)
{
    assert_guarded(set);
    if (set->by_addr == NULL)
        return false;
    *out = (extent_range_t){set->by_addr->start, set->by_addr->size};
    return true;
}

void extent_set_clear(extent_set_t *set)
{
    assert_guarded(set);
    extent_record_t *r, *tmp;
    HASH_ITER(hh, set->by_addr, r, tmp) record_delete(set, r);
    debug_assert(set->count == 0 && set->bytes == 0);
}

/* Every page of [start, start + size) mapped to arena id?  Logs the first
 * page that is not; returns whether all were. */
static bool range_mapped_to(uintptr_t start, size_t size, unsigned id)
{
    size_t page = os_page_size();
    for (uintptr_t p = start; p < start + size; p += page) {
        unsigned found = extent_map_lookup((const void *)p);
        if (found != id) {
            log_error("consistency: arena %u's extent [%#lx, +%zu) has "
                         "page %#lx mapped to arena %u", id,
                         (unsigned long)start, size, (unsigned long)p, found);
            return false;
        }
    }
    return true;
}

size_t extent_set_check_consistency(const extent_set_t *set, unsigned id)
{
    assert_guarded(set);
    if (set->count == 0)
        return 0;
    size_t cap = set->count * sizeof(extent_range_t);
    extent_range_t *v = meta_alloc(cap);
    if (v == NULL) {
        log_error("consistency: no memory to list arena %u's %zu "
                     "extents: errno %d", id, set->count, errno);
        return 1;
    }
    size_t n = sorted_records(set, v), problems = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += v[i].size;
        if (i > 0 && v[i - 1].start + v[i - 1].size > v[i].start) {
            log_error("consistency: arena %u's extents [%#lx, +%zu) and "
                         "[%#lx, +%zu) overlap", id,
                         (unsigned long)v[i - 1].start, v[i - 1].size,
                         (unsigned long)v[i].start, v[i].size);
            problems++;
        }
        if (!range_mapped_to(v[i].start, v[i].size, id))
            problems++;
    }
    if (n != set->count || bytes != set->bytes) {
        log_error("consistency: arena %u's set counts %zu extents of %zu "
                     "bytes, its records %zu of %zu", id, set->count,
                     set->bytes, n, bytes);
        problems++;
    }
    meta_free(v, cap);
    return problems;
}
