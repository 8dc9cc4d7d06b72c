/*
 * test_block_check.c -- a pointer into a block is not a block: tm_free,
 * tm_arena_realloc and tm_usable_size refuse it, and block_is_start tells
 * every block start from the pointers inside it, for every jemalloc size
 * class and several large sizes (block_check.c).
 */
#include "config.h"

#include <stdint.h>

#include "sites.h"
#include "../tm_test.h"

#define PER_SIZE 24 /* blocks of each size: several slabs of the big classes */

static tm_arena_t *arena;
static unsigned arena_id;

/* A large block's start is known only to its page: jemalloc moves it by a
 * random multiple of 64 bytes inside the first page (cache_oblivious), so
 * a pointer there at a multiple of 64 cannot be told from the start. */
static bool large_first_page_miss(size_t usable, uintptr_t q, uintptr_t p)
{
    return usable > 14336 && q / 4096 == p / 4096 && q % 64 == 0;
}

/* The fast rule also checks only the power-of-two alignment of the classes
 * up to 4 KiB that are not powers of two (doc/sites.md). */
static bool fast_rule_miss(size_t usable, uintptr_t q, uintptr_t p)
{
    if (usable >= 16 && usable < 4096 && (usable & (usable - 1)) != 0)
        return (q & ((usable & -usable) - 1)) == 0;
    return large_first_page_miss(usable, q, p);
}

static void check_block(char *p, size_t usable)
{
    size_t got;
    CHECK_MSG(block_is_start(p, arena_id, &got) && got == usable,
              "start %p of a %zu-byte block (got %zu)", (void *)p, usable, got);
    /* the exact path must accept every real start too, or frees leak */
    CHECK_MSG(block_check_slow(p, arena_id, usable),
              "slow check refused the start of a %zu-byte block", usable);
    const size_t offs[] = {8,    16,          48,          64,
                          4096, 8192,        usable / 2,  usable - 8,
                          usable - 4096 - ((uintptr_t)p & 4095),
                          usable - ((uintptr_t)p & 4095)};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        if (offs[k] == 0 || offs[k] >= usable)
            continue;
        char *q = p + offs[k];
        size_t u = sallocx(q, 0);
        if (!large_first_page_miss(usable, (uintptr_t)q, (uintptr_t)p))
            CHECK_MSG(!block_check_slow(q, arena_id, u),
                      "slow check took %p = start + %zu of a %zu-byte block "
                      "(reads as %zu)", (void *)q, offs[k], usable, u);
        if (!fast_rule_miss(usable, (uintptr_t)q, (uintptr_t)p))
            CHECK_MSG(!block_is_start(q, arena_id, &got),
                      "took %p = start + %zu of a %zu-byte block (reads as "
                      "%zu)", (void *)q, offs[k], usable, u);
    }
}

static void check_size(size_t size, size_t align)
{
    char *blocks[PER_SIZE];
    for (int i = 0; i < PER_SIZE; i++) {
        blocks[i] = align ? tm_arena_aligned_alloc(arena, align, size)
                          : tm_arena_malloc(arena, size);
        REQUIRE_VOID(blocks[i] != NULL);
    }
    for (int i = 0; i < PER_SIZE; i++)
        check_block(blocks[i], sallocx(blocks[i], 0));
    for (int i = 0; i < PER_SIZE; i++)
        tm_free(blocks[i]);
}

/* The public calls on pointers into blocks: ignored, the block intact. */
static void check_public_calls(size_t size)
{
    char *p = tm_arena_malloc(arena, size);
    REQUIRE_VOID(p != NULL);
    size_t usable = tm_usable_size(p);
    CHECK(usable >= size);
    memset(p, 'x', size);
    const size_t offs[] = {16, 4096 + 8, size / 2 + 8};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        if (offs[k] >= size)
            continue;
        char *q = p + offs[k];
        CHECK_MSG(tm_usable_size(q) == 0, "usable size of start + %zu of %zu",
                  offs[k], size);
        errno = 0;
        CHECK(tm_arena_realloc(arena, q, size * 2) == NULL && errno == EINVAL);
        tm_free(q);
    }
    /* still live and whole: nothing else was handed its bytes */
    char *others[PER_SIZE];
    for (int i = 0; i < PER_SIZE; i++) {
        others[i] = tm_arena_malloc(arena, size);
        CHECK(others[i] == NULL || others[i] + size <= p ||
              others[i] >= p + usable);
    }
    CHECK(tm_usable_size(p) == usable && p[0] == 'x' && p[size - 1] == 'x');
    for (int i = 0; i < PER_SIZE; i++)
        tm_free(others[i]);
    tm_free(p);
}

int main(void)
{
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    arena = tm_arena_create(&node0);
    REQUIRE(arena != NULL);
    arena_id = tm_arena_id(arena);

    unsigned nbins;
    size_t sz = sizeof nbins;
    REQUIRE(mallctl("arenas.nbins", &nbins, &sz, NULL, 0) == 0);
    for (unsigned b = 0; b < nbins; b++) {
        char name[64];
        size_t size;
        sz = sizeof size;
        snprintf(name, sizeof name, "arenas.bin.%u.size", b);
        REQUIRE(mallctl(name, &size, &sz, NULL, 0) == 0);
        check_size(size, 0);
    }
    const size_t large[] = {16384, 20000, 100000, 1u << 20, 3u << 20};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        check_size(large[i], 0);
        check_size(large[i], 4096);  /* no cache-line offset */
        check_size(large[i], 65536);
    }
    const size_t sizes[] = {64, 4096, 6000, 8192, 20000, 100000, 3u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_public_calls(sizes[i]);

    CHECK(tm_arena_destroy(arena) == 0);
    return tm_test_done("test_block_check");
}
