/*
 * test_sampler_refs.c -- the accessed-bit sampler on real arenas.
 *
 *   read-heat      first touches are not heat; then an arena that is only
 *                  read gets heat, and an arena
 *                  allocated beside it with the same placement and never
 *                  touched again gets none (the uffd sampler, which sees
 *                  writes only, gives the read arena nothing: checked too,
 *                  so this test tells the two apart);
 *   small-hot-set  an arena small enough that its translations stay in the
 *                  TLB is still seen (the sampler flushes the TLB after
 *                  each clear);
 *   foreign        a hot mapping tiermem does not own is never counted,
 *                  even when the kernel merged it into an arena's VMA (the
 *                  VMA is dropped, the arena gets nothing);
 *   cost-cap       with scans made dear on purpose, the period grows so
 *                  that the scans' CPU time stays within the share;
 *   fork           a child closes its copies, the parent keeps sampling,
 *                  the descriptors are close-on-exec;
 *   owners, parser the VMA-to-arena rules and the /proc readers on
 *                  synthetic and hostile text.
 *
 * The test drives the sampler itself (open, collect per interval, close):
 * no timing is asserted, only what was delivered.
 */
#include "config.h"

#include <fcntl.h>
#include <numaif.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../profiler/refs_internal.h"
#include "../tm_test.h"
#include "../profiler_util.h"
#include "../maps_util.h"

#define MiB ((size_t)1 << 20)
#define BLOCK (16 * MiB)

static size_t page_size;
static uint64_t weight_of[TM_MAX_ARENAS + 1]; /* [0]: not any arena's */
static uint64_t samples_outside;              /* at addresses of no arena */

static void count_sample(void *ctx, uintptr_t addr, uint32_t weight)
{
    (void)ctx;
    unsigned id = extent_map_lookup((void *)addr);
    weight_of[id] += weight;
    if (id == 0)
        samples_outside++;
}

static void count_lost(void *ctx, uint64_t n) { (void)ctx, (void)n; }

static void counts_reset(void)
{
    memset(weight_of, 0, sizeof weight_of);
    samples_outside = 0;
}

static bool open_sampler(sampler_t *s, const sampler_ops_t *ops,
                         prof_sampler_kind_t kind, double cost)
{
    prof_options_t o;
    prof_options_defaults(&o);
    o.sampler = kind;
    o.refs_cost = cost;
    o.interval_ns = 1000000000ull; /* nominal: a scan every collect */
    prof_sink_t sink = {.sample = count_sample, .lost = count_lost};
    *s = (sampler_t){.ops = ops};
    return ops->open(s, &o, &sink) == 0;
}

static uint64_t read_all(const char *p, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i += 64)
        sum += *(volatile const char *)(p + i);
    return sum;
}

/* Two arenas, same placement, blocks allocated in turns so that without
 * extent_region.c they would share VMAs. */
/* An arena on node 0 with one block of `size` bytes, written once: *a is
 * the arena (NULL if it could not be made); NULL if the block failed. */
static char *one_arena(tm_arena_t **a, size_t size)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    *a = tm_arena_create(&pl);
    char *p = *a ? tm_arena_malloc(*a, size) : NULL;
    if (p)
        memset(p, 1, size);
    return p;
}

static void two_arenas(tm_arena_t **a, tm_arena_t **b, char **pa, char **pb)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    *a = tm_arena_create(&pl);
    *b = tm_arena_create(&pl);
    *pa = *a ? tm_arena_malloc(*a, BLOCK / 2) : NULL;
    *pb = *b ? tm_arena_malloc(*b, BLOCK / 2) : NULL;
    char *pa2 = *a ? tm_arena_malloc(*a, BLOCK / 2) : NULL;
    char *pb2 = *b ? tm_arena_malloc(*b, BLOCK / 2) : NULL;
    (void)pa2, (void)pb2; /* freed with their arenas */
    if (*pa && *pb && pa2 && pb2) {
        memset(*pa, 1, BLOCK / 2);
        memset(pa2, 1, BLOCK / 2);
        memset(*pb, 2, BLOCK / 2);
        memset(pb2, 2, BLOCK / 2);
    }
}

static void test_read_heat(const sampler_ops_t *ops, prof_sampler_kind_t k)
{
    bool refs = k == PROF_SAMPLER_REFS;
    tm_arena_t *a, *b;
    char *pa, *pb;
    sampler_t s;
    REQUIRE_VOID(open_sampler(&s, ops, k, 50.0));
    two_arenas(&a, &b, &pa, &pb);
    REQUIRE_VOID(a && b && pa && pb);
    unsigned ida = tm_arena_id(a), idb = tm_arena_id(b);
    counts_reset();
    s.ops->collect(&s, 1); /* the first touches: referenced, but not reuse */
    if (refs)
        CHECK_MSG(weight_of[ida] == 0 && weight_of[idb] == 0,
                  "first touches counted as heat: %llu and %llu pages",
                  (unsigned long long)weight_of[ida],
                  (unsigned long long)weight_of[idb]);
    uint64_t sum = 0;
    /* Four windows of reads: the smoothed heat (half the last window) is
     * then 15/16 of the pages read in each. */
    for (int round = 0; round < 4; round++) {
        counts_reset();
        sum += read_all(pa, BLOCK / 2);
        s.ops->collect(&s, 2 + (uint64_t)round);
    }
    CHECK(sum > 0);
    uint64_t want = (BLOCK / 2) / page_size;
    if (refs) {
        CHECK_MSG(weight_of[ida] >= want * 9 / 10 &&
                      weight_of[ida] <= want * 21 / 20,
                  "read arena: %llu pages in the 4th window, want about "
                  "15/16 of %llu", (unsigned long long)weight_of[ida],
                  (unsigned long long)want);
        CHECK_MSG(weight_of[idb] == 0, "untouched arena: %llu pages",
                  (unsigned long long)weight_of[idb]);
        refs_stats_t st;
        sampler_refs_stats(&s, &st);
        CHECK(st.scans == 5 && st.period == 1);
        CHECK(st.blurred_vmas == 0 && st.dropped_vmas == 0);
    } else {
        /* uffd: reads are invisible */
        CHECK_MSG(weight_of[ida] == 0, "uffd saw %llu read pages",
                  (unsigned long long)weight_of[ida]);
    }
    CHECK(samples_outside == 0);
    s.ops->close(&s);
    CHECK(tm_arena_destroy(a) == 0 && tm_arena_destroy(b) == 0);
}

/* A small hot set, whose translations all stay in the TLB between two
 * scans: without a TLB flush after the clear, the CPU never sets their
 * accessed bits again and the arena reads as cold. */
static void test_small_hot_set(void)
{
    sampler_t s;
    REQUIRE_VOID(open_sampler(&s, &sampler_refs_ops, PROF_SAMPLER_REFS, 50));
    tm_arena_t *a;
    size_t size = 64 * page_size;
    char *p = one_arena(&a, size);
    REQUIRE_VOID(p != NULL);
    s.ops->collect(&s, 1);
    for (int w = 0; w < 3; w++) { /* smoothed: 7/8 after three windows */
        counts_reset();
        for (int pass = 0; pass < 100; pass++)
            read_all(p, size);
        s.ops->collect(&s, 2 + (uint64_t)w);
    }
    CHECK_MSG(weight_of[tm_arena_id(a)] >= 64 * 8 / 10,
              "a 64-page arena read 100 times per window: %llu pages",
              (unsigned long long)weight_of[tm_arena_id(a)]);
    s.ops->close(&s);
    CHECK(tm_arena_destroy(a) == 0);
}

/* A mapping of the program's own, right after an arena's last extent and
 * with the arena's policy, merges into the arena's VMA; the kernel then
 * counts the program's accesses in that VMA. */
static void test_foreign(void)
{
    sampler_t s;
    REQUIRE_VOID(open_sampler(&s, &sampler_refs_ops, PROF_SAMPLER_REFS, 50));
    tm_arena_t *a;
    char *p = one_arena(&a, BLOCK);
    REQUIRE_VOID(p != NULL);
    /* a plain hot mapping elsewhere */
    char *far = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE_VOID(far != MAP_FAILED);
    memset(far, 3, BLOCK);
    /* and one glued to the arena */
    mutex_lock(&a->hooked.lock);
    uintptr_t next = a->hooked.region_next;
    mutex_unlock(&a->hooked.lock);
    char *glued = next ? mmap((void *)next, BLOCK, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS |
                                  MAP_FIXED_NOREPLACE, -1, 0)
                       : MAP_FAILED;
    bool merged = false;
    if (glued == (char *)next) {
        unsigned long mask = 1;
        CHECK(mbind(glued, BLOCK, MPOL_PREFERRED, &mask, 64, 0) == 0);
        memset(glued, 4, BLOCK); /* a read of a page never written maps
                                    the zero page, which smaps skips */
        long n = maps_read(maps_buf, MAPS_MAX);
        for (long i = 0; i < n; i++)
            if (maps_buf[i].lo <= (uintptr_t)p &&
                maps_buf[i].hi >= (uintptr_t)glued + BLOCK)
                merged = true;
    }
    s.ops->collect(&s, 1);
    counts_reset();
    for (int round = 0; round < 2; round++) {
        read_all(far, BLOCK);
        if (merged)
            read_all(glued, BLOCK);
        s.ops->collect(&s, 2 + (uint64_t)round);
    }
    CHECK(samples_outside == 0);
    CHECK(weight_of[0] == 0);
    if (merged) {
        refs_stats_t st;
        sampler_refs_stats(&s, &st);
        CHECK_MSG(weight_of[tm_arena_id(a)] == 0,
                  "the arena got %llu pages of the program's own mapping",
                  (unsigned long long)weight_of[tm_arena_id(a)]);
        CHECK_MSG(st.dropped_vmas >= 2, "dropped %llu blurred %llu scans %llu", (unsigned long long)st.dropped_vmas, (unsigned long long)st.blurred_vmas, (unsigned long long)st.scans);
    } else {
        tm_test_skip("foreign-merged", "the kernel did not merge a "
                     "same-policy mapping into the arena's VMA");
    }
    s.ops->close(&s);
    if (glued != MAP_FAILED)
        CHECK(munmap(glued, BLOCK) == 0);
    CHECK(munmap(far, BLOCK) == 0);
    CHECK(tm_arena_destroy(a) == 0);
}

static void test_cost_cap(void)
{
    prof_options_t o;
    prof_options_defaults(&o); /* 2% of one core, 100 ms intervals */
    prof_sink_t sink = {.sample = count_sample, .lost = count_lost};
    sampler_t s = {.ops = &sampler_refs_ops};
    REQUIRE_VOID(s.ops->open(&s, &o, &sink) == 0);
    uint64_t extra = 50ull * 1000 * 1000; /* each scan "costs" 50 ms more */
    sampler_refs_test_extra_cost(&s, extra);
    for (int i = 0; i < 400; i++)
        s.ops->collect(&s, (uint64_t)i);
    refs_stats_t st;
    sampler_refs_stats(&s, &st);
    /* 50 ms against 2 ms per interval: 25 intervals per scan at least */
    CHECK_MSG(st.period >= 25 && st.period <= 40, "period %u", st.period);
    double allowed = 0.02 * (double)st.collects * (double)o.interval_ns;
    CHECK_MSG((double)st.cost_ns <= allowed + 2.0 * (double)st.max_scan_ns,
              "%llu scans cost %.0f ms over %llu intervals (share %.0f ms)",
              (unsigned long long)st.scans, (double)st.cost_ns / 1e6,
              (unsigned long long)st.collects, allowed / 1e6);
    CHECK(st.scans >= 10 && st.scans <= 17);
    s.ops->close(&s);
}

static void test_fork(void)
{
    sampler_t s;
    REQUIRE_VOID(open_sampler(&s, &sampler_refs_ops, PROF_SAMPLER_REFS, 50));
    int fd = fd_named("smaps");
    CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
    int cfd = fd_named("clear_refs");
    CHECK(cfd >= 0 && (fcntl(cfd, F_GETFD) & FD_CLOEXEC));
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        s.ops->fork_child(&s);
        _exit(fd_named("smaps") < 0 && fd_named("clear_refs") < 0 ? 0 : 1);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
          WEXITSTATUS(status) == 0);
    tm_arena_t *a;
    char *p = one_arena(&a, BLOCK);
    REQUIRE_VOID(p != NULL);
    s.ops->collect(&s, 1);
    for (int w = 0; w < 2; w++) { /* smoothed: 3/4 after two windows */
        counts_reset();
        read_all(p, BLOCK);
        s.ops->collect(&s, 2 + (uint64_t)w);
    }
    if (TM_TEST_TSAN) /* kernel-placed extents share VMAs: see main */
        tm_test_skip("fork-heat", "ThreadSanitizer ignores mmap hints, so "
                     "the arena's VMA is shared and its heat blurred");
    else
        CHECK(weight_of[tm_arena_id(a)] >= BLOCK / page_size * 7 / 10);
    s.ops->close(&s);
    CHECK(fd_named("smaps") < 0 && fd_named("clear_refs") < 0);
    CHECK(tm_arena_destroy(a) == 0);
}

/* ---------------------------------------------------------------- residency */

/* Resident bytes of [start, start + size) by move_pages, every page. */
static size_t resident_in(uintptr_t start, size_t size)
{
    size_t bytes = 0;
    for (uintptr_t p = start; p < start + size; p += page_size) {
        void *pg = (void *)p;
        int st = -1;
        if (move_pages(0, 1, &pg, NULL, &st, 0) == 0 && st >= 0)
            bytes += page_size;
    }
    return bytes;
}

/* numa_maps residency is exact for an arena's data: the exact walk's
 * bytes less what jemalloc's metadata for the arena has resident (kept
 * in VMAs of its own, which numa_maps does not count for the arena). */
static void test_residency_numa_maps(void)
{
    tm_arena_t *a, *b;
    char *pa, *pb;
    two_arenas(&a, &b, &pa, &pb);
    REQUIRE_VOID(a && b && pa && pb);
    attrib_t *at = attrib_new(4);
    REQUIRE_VOID(at != NULL);
    (void)residency_test_method(1);
    residency_sample_all(at, 1024);
    CHECK(residency_test_method(0) == 1);
    /* its table is sized for every possible arena (2.1 MiB): a pass that
     * saw two arenas (and the process's others) touches a few pages of
     * it, not all -- zeroed whole, it sat on the fast tier */
    size_t table = residency_numa_maps_table_resident();
    CHECK_MSG(table <= (size_t)64 << 10, "the numa_maps residency table "
              "has %zu bytes resident after one pass", table);
    const prof_interval_t *iv = attrib_close(at, 0, 1);
    REQUIRE_VOID(iv != NULL);
    tm_arena_t *both[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        unsigned id = tm_arena_id(both[k]);
        tm_residency_t exact;
        REQUIRE_VOID(tm_arena_residency(both[k], 0, &exact) == 0);
        size_t meta = 0;
        mutex_lock(&both[k]->hooked.lock);
        for (unsigned m = 0; m < both[k]->hooked.nmetadata; m++)
            meta += resident_in(both[k]->hooked.metadata[m].start,
                                both[k]->hooked.metadata[m].size);
        mutex_unlock(&both[k]->hooked.lock);
        const prof_arena_row_t *row = NULL;
        for (size_t i = 0; i < iv->narenas; i++)
            if (iv->arenas[i].id == id)
                row = &iv->arenas[i];
        REQUIRE_VOID(row != NULL);
        CHECK_MSG(row->resident_valid &&
                      row->resident == exact.bytes_resident - meta &&
                      row->resident >= BLOCK,
                  "arena %u: numa_maps %llu, exact walk %zu less metadata "
                  "%zu", id, (unsigned long long)row->resident,
                  exact.bytes_resident, meta);
    }
    /* the walk, forced, for comparison: the same arenas, sampled */
    (void)residency_test_method(2);
    residency_sample_all(at, 1024);
    CHECK(residency_test_method(0) == 2);
    attrib_delete(at);
    CHECK(tm_arena_destroy(a) == 0 && tm_arena_destroy(b) == 0);
}

/* ---------------------------------------------------------------- owners */

static uint64_t credited[8];
static uintptr_t credited_at[8];

static void note_credit(void *ctx, unsigned arena, const vma_amount_t *share,
                        uintptr_t addr)
{
    (void)ctx;
    if (arena < 8) {
        credited[arena] += share->referenced;
        credited_at[arena] = addr;
    }
}

static void test_owners(void)
{
    vma_owners_t o = {0};
    struct owned_range r[] = {
        {0x30000, 0x40000, 3}, {0x10000, 0x20000, 1}, {0x20000, 0x24000, 2},
        {0x50000, 0x60000, 4}, {0x70000, 0x71000, 0}, {0x71000, 0x74000, 5},
        {0x80000, 0x81000, 0}};
    REQUIRE_VOID(vma_owners_set(&o, r, 7) == 0);
    memset(credited, 0, sizeof credited);
    vma_owners_credit(&o, 0x1000, 0x2000, &(vma_amount_t){100, 0},
                      note_credit, NULL); /* foreign */
    vma_owners_credit(&o, 0x10000, 0x18000, &(vma_amount_t){80, 0},
                      note_credit, NULL); /* arena 1 */
    vma_owners_credit(&o, 0x18000, 0x24000, &(vma_amount_t){120, 0},
                      note_credit, NULL); /* 1+2 */
    vma_owners_credit(&o, 0x30000, 0x48000, &(vma_amount_t){50, 0},
                      note_credit, NULL); /* 3+foreign */
    vma_owners_credit(&o, 0x50000, 0x60000, &(vma_amount_t){7, 0},
                      note_credit, NULL);
    /* metadata then data: data's share only; metadata alone: nothing */
    vma_owners_credit(&o, 0x70000, 0x74000, &(vma_amount_t){40, 0},
                      note_credit, NULL);
    vma_owners_credit(&o, 0x80000, 0x81000, &(vma_amount_t){9, 0},
                      note_credit, NULL);
    CHECK(credited[0] == 0);
    CHECK_MSG(credited[1] == 80 + 80 && credited[2] == 40,
              "1: %llu 2: %llu", (unsigned long long)credited[1],
              (unsigned long long)credited[2]);
    CHECK(credited[3] == 0 && credited[4] == 7 && credited[5] == 30);
    CHECK(credited_at[4] == 0x50000 && credited_at[2] == 0x20000);
    CHECK(o.blurred_vmas == 2 && o.dropped_vmas == 1 && o.dropped_bytes == 50);
    vma_owners_free(&o);
}

/* ---------------------------------------------------------------- parser */

static vma_record_t got[16];
static size_t ngot;

static void keep(void *ctx, const vma_record_t *r)
{
    (void)ctx;
    if (ngot < 16)
        got[ngot++] = *r;
}

static void feed_bytewise(vma_scan_t *s, const char *text)
{
    for (size_t i = 0; text[i]; i++)
        vma_scan_feed(s, text + i, 1);
    vma_scan_finish(s);
}

static void test_parser(void)
{
    char longpath[600];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    char smaps[2048];
    snprintf(smaps, sizeof smaps,
             "7f0000000000-7f0000010000 rw-p 00000000 00:00 0 /%s\n"
             "Size:                 64 kB\n"
             "Referenced:           12 kB\n"
             "VmFlags: rd wr mr mw me ac\n"
             "7f0000020000-7f0000010000 rw-p 00000000 00:00 0\n" /* hi < lo */
             "Referenced:            4 kB\n"
             "7f0000030000-7f0000040000 rw-p 00000000 00:00 0\n"
             "Referenced: 99999999999999999999999 kB\n" /* overflows */
             "7f0000050000-7f0000060000 rw-p 00000000 00:00 0\n"
             "Referenced:            8 kB", longpath);
    vma_scan_t s;
    ngot = 0;
    vma_scan_init(&s, VMA_SCAN_SMAPS, keep, NULL);
    feed_bytewise(&s, smaps);
    CHECK_MSG(ngot == 3, "%zu records", ngot);
    CHECK(ngot >= 3 && got[0].lo == 0x7f0000000000 && got[0].referenced ==
                                                          12 * 1024);
    CHECK(ngot >= 3 && got[1].referenced == 0); /* overflow: not trusted */
    CHECK(ngot >= 3 && got[2].referenced == 8 * 1024);
    CHECK(s.malformed >= 3); /* bad header, its orphan key, overflow */

    const char *numa =
        "7f0000000000 default anon=3 dirty=3 N0=2 N1=1 kernelpagesize_kB=4\n"
        "7f0000100000 default file=/tmp/a N0=999 kernelpagesize_kB=4 N1=5\n"
        "7f0000200000 bind:1 anon=1 N99=1 kernelpagesize_kB=4\n"
        "7f0000300000 default anon=512 N1=512 kernelpagesize_kB=2048\n"
        "zzz\n";
    ngot = 0;
    vma_scan_init(&s, VMA_SCAN_NUMA_MAPS, keep, NULL);
    feed_bytewise(&s, numa);
    CHECK_MSG(ngot == 2, "%zu numa records", ngot);
    CHECK(ngot >= 1 && got[0].node_pages[0] == 2 && got[0].node_pages[1] == 1 &&
          got[0].page_size == 4096);
    CHECK(ngot >= 2 && got[1].node_pages[1] == 512 &&
          got[1].page_size == 2048 * 1024);
    CHECK(s.malformed == 2); /* N99, zzz */
}

int main(void)
{
    page_size = os_page_size();
    /* exact pages: a first touch maps only the page written */
    (void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    test_owners();
    test_parser();
    if (access("/proc/self/clear_refs", W_OK) != 0) {
        tm_test_missing("clear_refs", true, "", "/proc/self/clear_refs is "
                        "not writable");
        return tm_test_done(__FILE__);
    }
    if (TM_TEST_TSAN) {
        tm_test_skip("read-heat and foreign", "ThreadSanitizer ignores mmap "
                     "hints, so arenas share VMAs (extent_region.c)");
    } else {
        test_read_heat(&sampler_refs_ops, PROF_SAMPLER_REFS);
        test_read_heat(&sampler_uffd_ops, PROF_SAMPLER_UFFD);
        test_foreign();
        test_small_hot_set();
        test_residency_numa_maps();
    }
    test_cost_cap();
    test_fork();
    return tm_test_done(__FILE__);
}
