/*
 * test_extent_region.c -- two arenas never share a VMA (extent_region.c).
 *
 * The kernel merges adjacent anonymous mappings with the same policy into
 * one VMA, and per-VMA figures (smaps Referenced, numa_maps) are only worth
 * something per arena if each VMA holds one arena's pages.  Checked on the
 * kernel's own view, /proc/self/maps:
 *   - two arenas with the same placement, filled in turns: no VMA holds
 *     data pages of both (the metadata jemalloc maps while it creates an
 *     arena is kept out of the regions, and may share a VMA with anything),
 *     and every byte of each arena's extents is mapped;
 *   - the extents of one arena merge into few VMAs (the separation costs no
 *     VMA);
 *   - a foreign mapping squatting on an arena's next hint: the extent goes
 *     elsewhere, counted as a region miss, still exactly tracked;
 *   - jemalloc's in-place growth is refused across a chunk boundary;
 *   - the metadata of an arena, and tiermem's own tables, never get
 *     transparent huge pages (VmFlags "nh").
 */
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "../tm_test.h"
#include "../maps_util.h"

#define BLOCK ((size_t)3 << 20)
#define ROUNDS 8

/* Is p in what jemalloc mapped while creating the arena (its metadata,
 * which is placed by the kernel, outside the regions, on purpose)? */
static bool in_metadata(uintptr_t p)
{
    tm_arena_t *a = arena_by_id(extent_map_lookup((void *)p));
    if (a == NULL)
        return false;
    bool in = false;
    mutex_lock(&a->hooked.lock);
    for (unsigned m = 0; m < a->hooked.nmetadata; m++)
        in |= p >= a->hooked.metadata[m].start &&
              p - a->hooked.metadata[m].start < a->hooked.metadata[m].size;
    mutex_unlock(&a->hooked.lock);
    return in;
}

/* The arena ids of the data pages of [lo, hi) that tiermem tracks, as a
 * mask of the two arenas' ids (bit 0: a, bit 1: b, bit 2: another). */
static unsigned owners_in(uintptr_t lo, uintptr_t hi, unsigned a, unsigned b)
{
    unsigned mask = 0;
    for (uintptr_t p = lo; p < hi; p += os_page_size()) {
        if (in_metadata(p))
            continue;
        unsigned id = extent_map_lookup((void *)p);
        mask |= id == 0 ? 0 : id == a ? 1 : id == b ? 2 : 4;
    }
    return mask;
}

static size_t vmas_holding(unsigned id, long n)
{
    size_t count = 0;
    for (long i = 0; i < n; i++) {
        uintptr_t lo = maps_buf[i].lo, hi = maps_buf[i].hi;
        if (hi - lo > ((size_t)1 << 32))
            continue; /* not an extent-sized VMA; sanitizer shadows */
        for (uintptr_t p = lo; p < hi; p += os_page_size())
            if (extent_map_lookup((void *)p) == id && !in_metadata(p)) {
                count++;
                break;
            }
    }
    return count;
}

static void test_two_arenas_apart(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl), *b = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL && b != NULL);
    unsigned ida = tm_arena_id(a), idb = tm_arena_id(b);
    void *blocks[2 * ROUNDS];
    for (int i = 0; i < ROUNDS; i++) { /* in turns: the worst case */
        blocks[2 * i] = tm_arena_malloc(a, BLOCK);
        blocks[2 * i + 1] = tm_arena_malloc(b, BLOCK);
        REQUIRE_VOID(blocks[2 * i] && blocks[2 * i + 1]);
        memset(blocks[2 * i], 1, BLOCK);
        memset(blocks[2 * i + 1], 2, BLOCK);
    }
    long n = maps_read(maps_buf, MAPS_MAX);
    REQUIRE_VOID(n > 0);
    unsigned shared = 0;
    for (long i = 0; i < n; i++) {
        if (maps_buf[i].hi - maps_buf[i].lo > ((size_t)1 << 32))
            continue;
        if (owners_in(maps_buf[i].lo, maps_buf[i].hi, ida, idb) == 3)
            shared++;
    }
    CHECK_MSG(shared == 0, "%u VMAs hold pages of both arenas", shared);
    /* Eight 3 MiB blocks of one arena: back to back in one VMA (two if
     * jemalloc grew its own bookkeeping in between). */
    size_t va = vmas_holding(ida, n), vb = vmas_holding(idb, n);
    CHECK_MSG(va >= 1 && va <= 2 && vb >= 1 && vb <= 2,
              "arena VMAs: %zu and %zu", va, vb);
    /* Every tracked byte is mapped. */
    tm_arena_t *both[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        mutex_lock(&both[k]->hooked.lock);
        size_t count, bytes;
        extent_range_t *r = arena_ranges(both[k], &count, &bytes);
        size_t tracked = 0, mapped = 0;
        for (size_t i = 0; r != NULL && i < count; i++) {
            tracked += r[i].size;
            mapped += maps_bytes_in(r[i].start, r[i].start + r[i].size);
        }
        mutex_unlock(&both[k]->hooked.lock);
        CHECK(r != NULL && tracked > 0 && mapped == tracked);
        meta_free(r, bytes);
    }
    for (int i = 0; i < 2 * ROUNDS; i++)
        tm_free(blocks[i]);
    CHECK(tm_arena_destroy(a) == 0);
    CHECK(tm_arena_destroy(b) == 0);
}

/* Someone else maps at the arena's next hint: the extent lands elsewhere,
 * and still exactly its bytes are mapped and tracked. */
static void test_hint_taken(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL);
    void *first = tm_arena_malloc(a, BLOCK);
    REQUIRE_VOID(first != NULL);
    mutex_lock(&a->hooked.lock);
    uintptr_t next = a->hooked.region_next;
    mutex_unlock(&a->hooked.lock);
    REQUIRE_VOID(next != 0);
    size_t squat_size = (size_t)256 << 20;
    void *squat = mmap((void *)next, squat_size, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                       -1, 0);
    if (squat == MAP_FAILED || squat != (void *)next) {
        tm_test_skip("hint-taken", "cannot map at the arena's next hint: "
                     "errno %d", errno);
        tm_free(first);
        tm_arena_destroy(a);
        return;
    }
    uint64_t misses = atomic_load(&hook_counters.region_misses);
    void *big = tm_arena_malloc(a, (size_t)64 << 20);
    REQUIRE_VOID(big != NULL);
    CHECK(atomic_load(&hook_counters.region_misses) > misses);
    CHECK(extent_map_lookup(squat) == 0);
    CHECK(tm_arena_of(big) == a);
    mutex_lock(&a->hooked.lock);
    size_t count, bytes, tracked = 0, mapped = 0;
    extent_range_t *r = arena_ranges(a, &count, &bytes);
    for (size_t i = 0; r != NULL && i < count; i++) {
        tracked += r[i].size;
        mapped += maps_bytes_in(r[i].start, r[i].start + r[i].size);
        CHECK(r[i].start + r[i].size <= next ||
              r[i].start >= next + squat_size); /* never over the squatter */
    }
    mutex_unlock(&a->hooked.lock);
    CHECK(r != NULL && mapped == tracked);
    meta_free(r, bytes);
    tm_free(big);
    tm_free(first);
    CHECK(tm_arena_destroy(a) == 0);
    CHECK(munmap(squat, squat_size) == 0);
}

/* Do extents land in the region window?  ThreadSanitizer's mmap drops
 * hints outside its application ranges, so there every extent is
 * kernel-placed (the fall-back): a skip there, a failure anywhere else. */
static bool regions_work(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    void *p = a ? tm_arena_malloc(a, BLOCK) : NULL;
    uintptr_t at = (uintptr_t)p;
    bool in = at >= ((uintptr_t)17 << 40) && at < ((uintptr_t)81 << 40);
    tm_free(p);
    if (a)
        (void)tm_arena_destroy(a);
    if (in)
        return true;
    if (TM_TEST_TSAN)
        tm_test_skip("regions", "ThreadSanitizer drops mmap address hints: "
                     "an extent landed at %p", p);
    else
        CHECK_MSG(in, "an arena's extent landed at %p, outside the region "
                  "window", p);
    return false;
}

static void test_fixed_growth(void)
{
    uintptr_t chunk = (uintptr_t)64 << 30, start = (uintptr_t)17 << 40;
    CHECK(region_allows_fixed(start + chunk + 4096, 8192));
    CHECK(!region_allows_fixed(start + chunk, 8192)); /* next chunk's head */
    CHECK(!region_allows_fixed(start + 2 * chunk - 4096, 8192)); /* across */
    CHECK(region_allows_fixed(0x7f0000000000, 8192)); /* kernel-placed */
}

/* The VmFlags of the VMA holding p, from /proc/self/smaps: does it carry
 * the two-letter flag `flag`?  -1: no VMA holds p. */
static int vma_has_flag(uintptr_t p, const char *flag)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    CHECK(f != NULL);
    if (f == NULL)
        return -1;
    char line[512];
    bool ours = false;
    int found = -1;
    while (fgets(line, sizeof line, f) && found < 0) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') &&
            strncmp(line, "VmFlags", 7) != 0) {
            ours = p >= lo && p < hi;
            continue;
        }
        if (ours && strncmp(line, "VmFlags:", 8) == 0) {
            found = 0;
            for (char *t = strtok(line + 8, " \n"); t; t = strtok(NULL, " \n"))
                if (strcmp(t, flag) == 0)
                    found = 1;
        }
    }
    fclose(f);
    return found;
}

/* tiermem's own bookkeeping is never backed by transparent huge pages:
 * under THP "always" a sparsely touched table became whole 2 MiB pages
 * on the CPU's node, the fast tier (some 40 MiB per process).  Checked on
 * the kernel's view: VmFlags "nh" (MADV_NOHUGEPAGE) on the metadata
 * jemalloc maps for a new arena and on a large meta_alloc table. */
static void test_metadata_no_thp(void)
{
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) {
        tm_test_skip("metadata without huge pages",
                     "this kernel has no transparent huge pages");
        return;
    }
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL);
    mutex_lock(&a->hooked.lock);
    unsigned n = a->hooked.nmetadata;
    uintptr_t first = n ? a->hooked.metadata[0].start : 0;
    mutex_unlock(&a->hooked.lock);
    CHECK_MSG(n > 0, "the arena recorded no metadata range");
    if (n > 0)
        CHECK_MSG(vma_has_flag(first, "nh") == 1, "arena metadata at %#lx "
                  "may get huge pages", (unsigned long)first);
    size_t big = (size_t)4 << 20;
    char *table = meta_alloc(big);
    REQUIRE_VOID(table != NULL);
    table[0] = 1;
    CHECK_MSG(vma_has_flag((uintptr_t)table, "nh") == 1, "a %zu-byte "
              "metadata table may get huge pages", big);
    meta_free(table, big);
    /* control: the arena's data is the program's, and may */
    void *p = tm_arena_malloc(a, BLOCK);
    REQUIRE_VOID(p != NULL);
    CHECK(vma_has_flag((uintptr_t)p, "nh") == 0);
    tm_free(p);
    tm_arena_destroy(a);
}

int main(void)
{
    if (regions_work()) {
        test_two_arenas_apart();
        test_hint_taken();
    }
    test_fixed_growth();
    test_metadata_no_thp();
    return tm_test_done(__FILE__);
}
