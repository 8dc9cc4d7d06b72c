/*
 * test_os_aligned.c -- the seed defect must stay dead.
 *
 * The old hook mapped size + alignment, trimmed the head, then bound and
 * tracked size + alignment from the aligned start: mbind covered an unmapped
 * tail and failed with EFAULT.  Here mmap is replaced so the first mapping
 * comes back misaligned and the second at a chosen offset (including already
 * aligned), and each result is checked against /proc/self/maps: exactly
 * `size` bytes stay mapped, head and tail are gone, and mbind over exactly
 * the result succeeds.  The same checks are run on a copy of the old
 * algorithm to show they catch it.
 */
#include "config.h"

#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include "extent.h"
#include "sites.h"
#include "../tm_test.h"
#include "../maps_util.h"

static size_t page;

/* ---------------------------------------------------------------- injection
 * mmap #1 of a scenario returns a mapping of the requested length at
 * `first_offset` past an `align` boundary; mmap #2 at `second_offset`.  The
 * returned mapping is exactly the requested length (the reserve around it is
 * unmapped), so the code under test sees an ordinary kernel answer. */
static size_t inj_align, inj_first_offset, inj_second_offset;
static unsigned inj_calls;
static uintptr_t inj_last_base;
static size_t inj_last_len;

static void *place_at_offset(size_t len, size_t align, size_t offset)
{
    size_t reserve = len + 2 * align;
    char *r = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return MAP_FAILED;
    uintptr_t a = ((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1);
    char *base = (char *)(a + offset);
    munmap(r, (size_t)(base - r));
    munmap(base + len, (size_t)(r + reserve - (base + len)));
    if (mprotect(base, len, PROT_READ | PROT_WRITE) != 0)
        return MAP_FAILED;
    return base;
}

static void *inj_mmap(void *addr, size_t len, int prot, int flags, int fd,
                      off_t off)
{
    if (inj_align == 0 || (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)))
        return os_real_ops()->mmap(addr, len, prot, flags, fd, off);
    if (addr != NULL) {
        /* The hooks' region hint (extent_region.c): refused, so the hook
         * takes the kernel-placed path this test is about. */
        errno = ENOMEM;
        return MAP_FAILED;
    }
    size_t offset = inj_calls++ == 0 ? inj_first_offset : inj_second_offset;
    void *p = place_at_offset(len, inj_align, offset);
    inj_last_base = (uintptr_t)p;
    inj_last_len = len;
    return p;
}

static void inject(size_t align, size_t first, size_t second)
{
    inj_align = align;
    inj_first_offset = first;
    inj_second_offset = second;
    inj_calls = 0;
}

/* ---------------------------------------------------------------- checks */

static bool bound_to_node0(void *p)
{
    int mode = -1;
    unsigned long mask[2] = {0, 0};
    if (get_mempolicy(&mode, mask, 128, p, MPOL_F_ADDR) != 0)
        return false;
    return mode == MPOL_BIND && mask[0] == 1;
}

/* Everything a correct aligned mapping must satisfy. */
static bool check_mapping(uintptr_t base, size_t mapped, char *p, size_t size,
                          size_t align)
{
    bool ok = p != NULL && ((uintptr_t)p & (align - 1)) == 0;
    if (!ok)
        return false;
    uintptr_t s = (uintptr_t)p, e = s + size;
    ok &= maps_bytes_in(s, e) == size;
    if (base != 0) { /* head and tail of the oversized mapping are gone */
        ok &= maps_bytes_in(base, s) == 0;
        ok &= maps_bytes_in(e, base + mapped) == 0;
    }
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    ok &= os_bind(p, size, &node0, 0) == 0;
    ok &= bound_to_node0(p) && bound_to_node0(p + size - page);
    return ok;
}

/* The seed's algorithm, kept here only to prove the checks above catch it. */
static void *seed_map_aligned(size_t size, size_t alignment, size_t *bound)
{
    char *ret = inj_mmap(NULL, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (((uintptr_t)ret) % alignment != 0) {
        munmap(ret, size);
        size += alignment;
        ret = inj_mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        uintptr_t n = (uintptr_t)ret;
        uintptr_t m = n + alignment - (n % alignment);
        munmap(ret, m - n);
        ret = (char *)m;
    }
    *bound = size; /* the defect: the trimmed length is never used */
    return ret;
}

static void test_seed_regression(void)
{
    size_t size = 64 * page, align = 2u << 20;
    /* first mapping one page off, second mapping 5 pages off */
    inject(align, page, 5 * page);
    char *p = os_map_aligned(size, align);
    uintptr_t base = inj_last_base;
    size_t mapped = inj_last_len;
    CHECK(inj_calls == 2);
    CHECK(mapped == size + align);
    CHECK(check_mapping(base, mapped, p, size, align));
    CHECK(os_unmap(p, size) == 0);
    CHECK(maps_bytes_in((uintptr_t)p, (uintptr_t)p + size) == 0);

    /* The old algorithm fails the same checks: mbind over its length hits
     * the unmapped tail and the kernel says EFAULT. */
    inject(align, page, 5 * page);
    size_t bound;
    char *q = seed_map_aligned(size, align, &bound);
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    errno = 0;
    CHECK(os_bind(q, bound, &node0, 0) == -1 && errno == EFAULT);
    CHECK(maps_bytes_in((uintptr_t)q, (uintptr_t)q + bound) != bound);
    munmap(q, bound);
}

/* The case an earlier fix got wrong: the second mapping comes back aligned,
 * so the head is empty and the whole alignment is tail. */
static void test_second_mapping_aligned(void)
{
    size_t size = 16 * page, align = 1u << 20;
    inject(align, 3 * page, 0);
    char *p = os_map_aligned(size, align);
    CHECK((uintptr_t)p == inj_last_base);
    CHECK(check_mapping(inj_last_base, inj_last_len, p, size, align));
    CHECK(os_unmap(p, size) == 0);
}

/* First mapping aligned: no second mapping at all. */
static void test_first_mapping_aligned(void)
{
    size_t size = 8 * page, align = 64 * page;
    inject(align, 0, 0);
    char *p = os_map_aligned(size, align);
    CHECK(inj_calls == 1);
    CHECK(check_mapping(0, 0, p, size, align));
    CHECK(os_unmap(p, size) == 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) { return tm_test_rand(&rng_state); }

/* Random (size, alignment, offsets), including offset 0 for either mapping
 * and the largest possible head (alignment - page). */
static void test_property(void)
{
    unsigned n = (unsigned)(2000 * tm_test_scale()) + 1, bad = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t size = (1 + rng() % 512) * page;
        size_t align = page << (rng() % 14); /* 4 KiB .. 32 MiB */
        size_t slots = align / page;
        size_t first = (rng() % slots) * page;
        size_t second = (rng() % 4 == 0) ? 0 : (rng() % slots) * page;
        if (rng() % 8 == 0)
            second = align - page;
        inject(align, first, second);
        char *p = os_map_aligned(size, align);
        uintptr_t base = inj_calls == 2 ? inj_last_base : 0;
        if (!check_mapping(base, inj_last_len, p, size, align)) {
            if (bad++ < 5)
                fprintf(stderr, "property: size %zu align %zu first %zu "
                        "second %zu -> %p\n", size, align, first, second,
                        (void *)p);
            continue;
        }
        os_unmap(p, size);
        if (maps_bytes_in((uintptr_t)p, (uintptr_t)p + size) != 0)
            bad++;
    }
    CHECK_MSG(bad == 0, "%u of %u random cases broke an invariant", bad, n);
}

/* The hook itself, through the same misaligned path: it must bind, record
 * and later release exactly the bytes it mapped. */
static void test_hook_path(void)
{
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    inject(0, 0, 0);
    tm_arena_t *a = tm_arena_create(&node0);
    REQUIRE_VOID(a != NULL);
    extent_hooks_t *h = &a->hooked.hooks;
    size_t size = 40 * page, align = 4u << 20;
    inject(align, 7 * page, 9 * page);
    bool zero = false, commit = false;
    char *p = h->alloc(h, NULL, size, align, &zero, &commit, a->je_index);
    uintptr_t base = inj_last_base;
    size_t mapped = inj_last_len;
    inject(0, 0, 0);
    CHECK(zero && commit);
    CHECK(check_mapping(base, mapped, p, size, align));
    CHECK(extent_map_lookup(p) == tm_arena_id(a));
    CHECK(extent_map_lookup(p + size - 1) == tm_arena_id(a));
    CHECK(extent_map_lookup(p + size) != tm_arena_id(a));
    CHECK(extent_map_lookup(p - 1) != tm_arena_id(a));
    mutex_lock(&a->hooked.lock);
    CHECK(extent_set_contains(&a->hooked.extents, (uintptr_t)p, size));
    mutex_unlock(&a->hooked.lock);
    /* dalloc opts out (the arena keeps its address space while it lives);
     * the extent stays mapped and tracked until the arena is destroyed */
    CHECK(h->dalloc(h, p, size, true, a->je_index) == true);
    CHECK(maps_bytes_in((uintptr_t)p, (uintptr_t)p + size) == size);
    CHECK(extent_map_lookup(p) == tm_arena_id(a));
    CHECK(tm_arena_destroy(a) == 0);
    CHECK(maps_bytes_in((uintptr_t)p, (uintptr_t)p + size) == 0);
    CHECK(extent_map_lookup(p) == 0);
}

int main(void)
{
    page = os_page_size();
    os_ops_t ops = *os_real_ops();
    ops.mmap = inj_mmap;
    os_set_ops(&ops);
    test_seed_regression();
    test_second_mapping_aligned();
    test_first_mapping_aligned();
    test_property();
    test_hook_path();
    os_set_ops(NULL);
    return tm_test_done(__FILE__);
}
