/*
 * residency.c -- where an arena's pages are, from move_pages status queries.
 *
 * move_pages with a NULL node list moves nothing; it reports the node of
 * each resident page, or -ENOENT for a page never touched.  Large arenas are
 * sampled at a fixed stride so a query of a many-GiB arena stays cheap; the
 * figures are scaled by the stride.
 *
 * The query runs under the arena mutex so no extent can be unmapped (and its
 * addresses reused by someone else) while we look at it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "arena.h"

#define QUERY_BATCH 512

long pages_query(uintptr_t start, size_t size, size_t stride,
                 page_visit_fn visit, void *ctx)
{
    size_t page = os_page_size();
    size_t npages = size / page;
    void *pages[QUERY_BATCH];
    int status[QUERY_BATCH];
    long queried = 0;
    if (stride == 0)
        stride = 1;
    for (size_t i = 0; i < npages;) {
        unsigned long n = 0;
        for (; i < npages && n < QUERY_BATCH; i += stride)
            pages[n++] = (void *)(start + i * page);
        if (os_move_pages(n, pages, NULL, status) != 0) {
            log_error("move_pages query of %lu pages at %p failed: "
                         "errno %d", n, pages[0], errno);
            return -1;
        }
        for (unsigned long k = 0; k < n; k++)
            visit(ctx, pages[k], status[k]);
        queried += (long)n;
    }
    return queried;
}

extent_range_t *arena_ranges(tm_arena_t *a, size_t *count, size_t *bytes)
{
    mutex_assert_owner(&a->hooked.lock);
    size_t n = a->hooked.extents.count;
    *count = 0;
    *bytes = (n ? n : 1) * sizeof(extent_range_t);
    extent_range_t *ranges = meta_alloc(*bytes);
    if (ranges == NULL) {
        log_error("arena %u: no memory to list %zu extents", a->hooked.id,
                     n);
        return NULL;
    }
    *count = extent_set_ranges(&a->hooked.extents, ranges);
    return ranges;
}

typedef struct residency_ctx {
    tm_residency_t *out;
    size_t weight; /* bytes one queried page stands for */
} residency_ctx_t;

static void count_page(void *ctx, void *page, int status)
{
    (void)page;
    residency_ctx_t *c = ctx;
    if (status < 0 || status >= TM_MAX_NODES)
        return; /* not resident (or on a node we cannot name) */
    c->out->node_bytes[status] += c->weight;
    c->out->bytes_resident += c->weight;
}

int tm_arena_residency(tm_arena_t *a, size_t max_pages, tm_residency_t *out)
{
    if (a == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    size_t page = os_page_size();
    int rc = 0;
    mutex_lock(&a->hooked.lock);
    size_t count, bytes;
    extent_range_t *ranges = arena_ranges(a, &count, &bytes);
    if (ranges == NULL) {
        mutex_unlock(&a->hooked.lock);
        errno = ENOMEM;
        return -1;
    }
    out->bytes_mapped = a->hooked.extents.bytes;
    size_t total = out->bytes_mapped / page;
    out->stride = max_pages && total > max_pages
                      ? (total + max_pages - 1) / max_pages
                      : 1;
    residency_ctx_t ctx = {out, out->stride * page};
    /* One sampling phase over the whole arena, not one per range: every
     * stride-th page of the arena, so each sample stands for exactly
     * `stride` pages however the extents are laid out. */
    size_t skip = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t npages = ranges[i].size / page;
        if (skip >= npages) {
            skip -= npages;
            continue;
        }
        size_t left = npages - skip;
        long q = pages_query(ranges[i].start + skip * page, left * page,
                             out->stride, count_page, &ctx);
        if (q < 0)
            rc = -1;
        else
            out->pages_queried += (size_t)q;
        skip = (left + out->stride - 1) / out->stride * out->stride - left;
    }
    mutex_unlock(&a->hooked.lock);
    meta_free(ranges, bytes);
    return rc;
}
