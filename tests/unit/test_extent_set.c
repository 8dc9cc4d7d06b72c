/*
 * test_extent_set.c -- an arena's extent set against a page-by-page model.
 *
 * Random alloc / split / merge / remove calls, the way jemalloc makes them,
 * are replayed on the set and on a plain array that says which record starts
 * at each page.  After every step the set's count and bytes, its coalesced
 * ranges, and contains() must agree with the model.
 */
#include "config.h"

#include "extent.h"
#include "../tm_test.h"

#define PAGE 4096u
#define NPAGES 4096
#define BASE ((uintptr_t)1 << 40)

/* model: len[i] > 0 when a record starts at page i, of len[i] pages */
static size_t len[NPAGES];

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void) { return tm_test_rand(&rng_state); }

static uintptr_t addr(size_t pg) { return BASE + pg * PAGE; }

static bool page_free(size_t pg, size_t n)
{
    for (size_t i = 0; i < NPAGES; i++)
        if (len[i] && i < pg + n && pg < i + len[i])
            return false;
    return pg + n <= NPAGES;
}

static bool agrees(extent_set_t *set)
{
    size_t count = 0, bytes = 0;
    for (size_t i = 0; i < NPAGES; i++)
        if (len[i]) {
            count++;
            bytes += len[i] * PAGE;
            if (!extent_set_contains(set, addr(i), len[i] * PAGE))
                return false;
        }
    if (count != set->count || bytes != set->bytes)
        return false;
    extent_range_t ranges[NPAGES];
    size_t m = extent_set_ranges(set, ranges);
    /* coalesced model */
    size_t k = 0;
    for (size_t i = 0; i < NPAGES;) {
        if (!len[i]) {
            i++;
            continue;
        }
        size_t start = i, end = i + len[i];
        while (end < NPAGES && len[end])
            end += len[end];
        if (k >= m || ranges[k].start != addr(start) ||
            ranges[k].size != (end - start) * PAGE)
            return false;
        k++;
        i = end;
    }
    return k == m;
}

static void step(extent_set_t *set)
{
    size_t pg = rng() % NPAGES;
    switch (rng() % 4) {
    case 0: { /* alloc */
        size_t n = 1 + rng() % 32;
        if (!page_free(pg, n))
            return;
        CHECK(extent_set_add(set, addr(pg), n * PAGE) == 0);
        len[pg] = n;
        break;
    }
    case 1: /* split */
        if (len[pg] < 2)
            return;
        {
            size_t a = 1 + rng() % (len[pg] - 1);
            CHECK(extent_set_split(set, addr(pg), len[pg] * PAGE, a * PAGE) == 0);
            len[pg + a] = len[pg] - a;
            len[pg] = a;
        }
        break;
    case 2: /* merge with the next record if adjacent */
        if (!len[pg] || pg + len[pg] >= NPAGES || !len[pg + len[pg]])
            return;
        {
            size_t b = pg + len[pg];
            CHECK(extent_set_merge(set, addr(pg), len[pg] * PAGE, addr(b),
                                   len[b] * PAGE) == 0);
            len[pg] += len[b];
            len[b] = 0;
        }
        break;
    default: /* remove */
        if (!len[pg])
            return;
        CHECK(extent_set_remove(set, addr(pg), len[pg] * PAGE) == 0);
        len[pg] = 0;
    }
}

static void test_rejects(extent_set_t *set)
{
    CHECK(extent_set_add(set, addr(0), 4 * PAGE) == 0);
    CHECK(extent_set_add(set, addr(0), 4 * PAGE) == -1);        /* twice */
    CHECK(extent_set_remove(set, addr(1), PAGE) == -1);         /* interior */
    CHECK(extent_set_remove(set, addr(0), 5 * PAGE) == -1);     /* too long */
    CHECK(extent_set_split(set, addr(0), 3 * PAGE, PAGE) == -1); /* bad size */
    CHECK(extent_set_split(set, addr(0), 4 * PAGE, 4 * PAGE) == -1);
    CHECK(extent_set_merge(set, addr(0), 4 * PAGE, addr(8), PAGE) == -1);
    CHECK(set->count == 1 && set->bytes == 4 * PAGE);
    /* a remove may span records jemalloc merged in its own view */
    CHECK(extent_set_add(set, addr(4), 2 * PAGE) == 0);
    CHECK(extent_set_remove(set, addr(0), 6 * PAGE) == 0);
    CHECK(set->count == 0 && set->bytes == 0);
}

int main(void)
{
    extent_set_t set = {0};
    test_rejects(&set);
    unsigned steps = (unsigned)(20000 * tm_test_scale()) + 1, bad = 0;
    for (unsigned i = 0; i < steps; i++) {
        step(&set);
        if (i % 97 == 0 && !agrees(&set) && bad++ < 3)
            fprintf(stderr, "model disagrees after step %u\n", i);
    }
    CHECK(bad == 0);
    CHECK(agrees(&set));
    extent_set_clear(&set);
    CHECK(set.count == 0 && set.bytes == 0 && set.by_addr == NULL);
    return tm_test_done(__FILE__);
}
