/*
 * test_extent_map.c -- address -> arena lookups, exact at extent edges and
 * consistent while other threads insert and remove.
 */
#include "config.h"

#include <sys/mman.h>

#include "extent.h"
#include "../tm_test.h"

#define PAGE 4096u

static char *region; /* PROT_NONE reserve: the map never dereferences */
static size_t region_size = (size_t)1 << 32; /* 4 GiB: spans several leaves */

static void test_edges(void)
{
    char *p = region + (1u << 30) - 3 * PAGE; /* straddles a leaf boundary */
    size_t size = 7 * PAGE;
    CHECK(extent_map_insert(p, size, 17) == 0);
    CHECK(extent_map_lookup(p) == 17);
    CHECK(extent_map_lookup(p + 123) == 17);
    CHECK(extent_map_lookup(p + size - 1) == 17);
    CHECK(extent_map_lookup(p + (1u << 30) % PAGE + 3 * PAGE) == 17);
    CHECK(extent_map_lookup(p - 1) == 0);
    CHECK(extent_map_lookup(p + size) == 0);
    extent_map_remove(p, size);
    CHECK(extent_map_lookup(p) == 0);
    CHECK(extent_map_lookup(p + size - 1) == 0);
}

static void test_bad_input(void)
{
    CHECK(extent_map_insert(region, PAGE, 0) == -1 && errno == EINVAL);
    CHECK(extent_map_insert(region, PAGE, TM_MAX_ARENAS + 1) == -1);
    CHECK(extent_map_insert(region, 0, 1) == -1);
    CHECK(extent_map_insert((void *)((uintptr_t)1 << 47), PAGE, 1) == -1);
    CHECK(extent_map_lookup((void *)((uintptr_t)1 << 50)) == 0);
    CHECK(extent_map_lookup(NULL) == 0);
}

static void test_many(void)
{
    /* 100k extents of 1..16 pages with one-page gaps, ids cycling. */
    size_t n = 100000, off = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pages = 1 + i % 16;
        bad += extent_map_insert(region + off, pages * PAGE,
                                 1 + (unsigned)(i % TM_MAX_ARENAS)) != 0;
        off += (pages + 1) * PAGE;
    }
    off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pages = 1 + i % 16;
        unsigned id = 1 + (unsigned)(i % TM_MAX_ARENAS);
        bad += extent_map_lookup(region + off) != id;
        bad += extent_map_lookup(region + off + pages * PAGE - 1) != id;
        bad += extent_map_lookup(region + off + pages * PAGE) != 0;
        extent_map_remove(region + off, pages * PAGE);
        bad += extent_map_lookup(region + off) != 0;
        off += (pages + 1) * PAGE;
    }
    CHECK_MSG(bad == 0, "%zu wrong lookups", bad);
}

/* Readers look up a stable extent while writers churn others next to it;
 * the stable one must never read as anything else. */
static char *stable;
static _Atomic bool stop;
static _Atomic size_t reader_errors;

static void *reader(void *arg)
{
    (void)arg;
    size_t errs = 0;
    while (!atomic_load(&stop))
        for (size_t i = 0; i < 64; i++)
            errs += extent_map_lookup(stable + i * PAGE) != 9;
    atomic_fetch_add(&reader_errors, errs);
    return NULL;
}

static void *writer(void *arg)
{
    char *base = region + (size_t)(uintptr_t)arg * (256u << 20);
    unsigned rounds = (unsigned)(2000 * tm_test_scale()) + 1;
    for (unsigned r = 0; r < rounds; r++) {
        for (size_t i = 0; i < 64; i++)
            extent_map_insert(base + i * 4 * PAGE, 3 * PAGE, 5);
        for (size_t i = 0; i < 64; i++)
            extent_map_remove(base + i * 4 * PAGE, 3 * PAGE);
    }
    return NULL;
}

static void test_concurrent(void)
{
    stable = region + (3ul << 30);
    CHECK(extent_map_insert(stable, 64 * PAGE, 9) == 0);
    pthread_t r[2], w[2];
    for (uintptr_t i = 0; i < 2; i++) {
        pthread_create(&r[i], NULL, reader, NULL);
        pthread_create(&w[i], NULL, writer, (void *)(i + 1));
    }
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    CHECK(atomic_load(&reader_errors) == 0);
    extent_map_remove(stable, 64 * PAGE);
}

int main(void)
{
    region = mmap(NULL, region_size, PROT_NONE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(region != MAP_FAILED);
    /* align to 1 GiB so edges fall on leaf boundaries predictably */
    region = (char *)(((uintptr_t)region + (1u << 30) - 1) &
                      ~(uintptr_t)((1u << 30) - 1));
    region_size -= 1u << 30;
    test_edges();
    test_bad_input();
    test_many();
    test_concurrent();
    return tm_test_done(__FILE__);
}
