/*
 * test_sampler_uffd.c -- the userfaultfd write-protect sampler on real
 * arenas: written pages are seen, read or foreign pages are not, churn
 * neither crashes nor hangs nor mis-attributes, close leaves no descriptor
 * and no blocked writer, and a kernel-mode write into a protected page
 * (read(2) from a pipe) completes.
 *
 * The test drives the sampler itself (open, sleep + collect per interval,
 * close).  An alarm turns a hung writer into a failure instead of a hang.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "profiler.h"
#include "../tm_test.h"
#include "../profiler_util.h"

#define MiB ((size_t)1 << 20)

static size_t page_size;

/* ---------------------------------------------------------------- the sink */

static _Atomic uint64_t per_arena[TM_MAX_ARENAS + 1]; /* [0]: not ours */
static _Atomic uint64_t weighted;
static _Atomic uint64_t foreign_hits; /* samples inside `foreign` */
static _Atomic uint64_t watch_hits;   /* samples at `watch_page` */
static _Atomic uintptr_t foreign_lo, foreign_hi, watch_page;

/* Every sample's address and weight, in order. */
#define REC_MAX 65536
static _Atomic uintptr_t rec_addr[REC_MAX];
static _Atomic uint32_t rec_weight[REC_MAX];
static _Atomic size_t nrec;

/* The rounds test stalls the service thread inside its first sample at
 * stall_page (-1: in [foreign_lo, foreign_hi)) until stall_release is set (or 200 ms passed). */
static _Atomic uintptr_t stall_page;
static _Atomic bool stall_in, stall_release;

static void count_sample(void *ctx, uintptr_t addr, uint32_t weight)
{
    (void)ctx;
    size_t i = atomic_fetch_add(&nrec, 1);
    if (i < REC_MAX) {
        atomic_store(&rec_addr[i], addr);
        atomic_store(&rec_weight[i], weight);
    }
    uintptr_t sp = atomic_load(&stall_page); /* -1: any in the window */
    bool in_window = addr >= atomic_load(&foreign_lo) &&
                     addr < atomic_load(&foreign_hi);
    if (sp != 0 && (addr == sp || (sp == (uintptr_t)-1 && in_window)) &&
        atomic_exchange(&stall_page, 0) == sp) { /* only the first */
        atomic_store(&stall_in, true);
        for (int t = 0; t < 200 && !atomic_load(&stall_release); t++)
            sleep_ms(1);
    }
    atomic_fetch_add(&per_arena[extent_map_lookup((void *)addr)], 1);
    atomic_fetch_add(&weighted, weight);
    if (addr >= atomic_load(&foreign_lo) && addr < atomic_load(&foreign_hi))
        atomic_fetch_add(&foreign_hits, 1);
    if (addr == atomic_load(&watch_page))
        atomic_fetch_add(&watch_hits, 1);
}

static void count_lost(void *ctx, uint64_t n)
{
    (void)ctx;
    (void)n;
}

static void counts_reset(void)
{
    for (unsigned i = 0; i <= TM_MAX_ARENAS; i++)
        atomic_store(&per_arena[i], 0);
    atomic_store(&weighted, 0);
    atomic_store(&foreign_hits, 0);
    atomic_store(&watch_hits, 0);
    atomic_store(&nrec, 0);
}

/* Samples recorded in [lo, hi). */
static size_t samples_in(uintptr_t lo, uintptr_t hi)
{
    size_t n = 0, end = atomic_load(&nrec);
    for (size_t i = 0; i < end && i < REC_MAX; i++) {
        uintptr_t a = atomic_load(&rec_addr[i]);
        n += a >= lo && a < hi;
    }
    return n;
}

static uint64_t samples_of(tm_arena_t *a)
{
    return atomic_load(&per_arena[tm_arena_id(a)]);
}

/* ---------------------------------------------------------------- helpers */

/* pages 0: the budget scales with resident memory, its caps set by the
 * interval length. */
static int sampler_open_interval(sampler_t *s, unsigned pages,
                                 uint64_t interval_ns)
{
    prof_options_t o;
    memset(&o, 0, sizeof o);
    o.uffd_pages = pages;
    o.interval_ns = interval_ns;
    prof_sink_t sink = {count_sample, count_lost, NULL};
    memset(s, 0, sizeof *s);
    s->ops = &sampler_uffd_ops;
    return s->ops->open(s, &o, &sink);
}

static int sampler_open_pages(sampler_t *s, unsigned pages)
{
    return sampler_open_interval(s, pages, 0);
}

static void run_intervals(sampler_t *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        sleep_ms(15);
        s->ops->collect(s, (uint64_t)(i + 1) * 15000000u);
    }
}

/* Open userfaultfd descriptors of this process, from /proc/self/fd. */
static int count_uffds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], link[128];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strcmp(link, "anon_inode:[userfaultfd]") == 0)
            n++;
    }
    closedir(d);
    return n;
}

static _Atomic bool stop;

typedef struct span {
    volatile char *p;
    size_t size;
    volatile const char *read_p; /* read (never written) alongside */
} span_t;

/* Write one byte per page all over p, again and again; read read_p too. */
static void *page_writer(void *arg)
{
    span_t *sp = arg;
    unsigned long sink = 0;
    for (unsigned round = 0; !atomic_load(&stop); round++) {
        for (size_t off = 0; off < sp->size; off += page_size) {
            sp->p[off] = (char)round;
            if (sp->read_p)
                sink += (unsigned char)sp->read_p[off];
        }
    }
    return (void *)(uintptr_t)sink;
}

/* ---------------------------------------------------------------- tests */

/* 1, 2 and 4: hot written pages are sampled, the read-only cold array and
 * memory tiermem does not own are not; close while writers keep writing
 * leaves no descriptor and no blocked writer. */
static void test_hot_cold(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *ha = tm_arena_create(&pl), *ca = tm_arena_create(&pl);
    REQUIRE_VOID(ha != NULL && ca != NULL);
    size_t size = 16 * MiB;
    char *hot = tm_arena_malloc(ha, size), *cold = tm_arena_malloc(ca, size);
    REQUIRE_VOID(hot != NULL && cold != NULL);
    memset(hot, 1, size);
    memset(cold, 2, size);
    size_t fsize = 4 * MiB;
    char *foreign = mmap(NULL, fsize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE_VOID(foreign != MAP_FAILED);
    memset(foreign, 3, fsize);
    atomic_store(&foreign_lo, (uintptr_t)foreign);
    atomic_store(&foreign_hi, (uintptr_t)foreign + fsize);
    CHECK(extent_map_lookup(foreign) == 0);

    counts_reset();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 512) == 0);
    CHECK(count_uffds() == 1);
    atomic_store(&stop, false);
    span_t hs = {hot, size, cold}, fs = {foreign, fsize, NULL};
    pthread_t hw, fw;
    REQUIRE_VOID(pthread_create(&hw, NULL, page_writer, &hs) == 0);
    REQUIRE_VOID(pthread_create(&fw, NULL, page_writer, &fs) == 0);

    run_intervals(&s, 10);
    uint64_t hot_half = samples_of(ha);
    /* The same ranges are registered again each interval: sampling must
     * go on working after re-registration. */
    run_intervals(&s, 10);
    uint64_t h = samples_of(ha), c = samples_of(ca);
    s.ops->close(&s); /* writers still running */
    atomic_store(&stop, true);
    pthread_join(hw, NULL);
    pthread_join(fw, NULL);

    printf("hot/cold: hot %llu (first half %llu), cold %llu, unowned %llu, "
           "weighted %llu\n", (unsigned long long)h,
           (unsigned long long)hot_half, (unsigned long long)c,
           (unsigned long long)atomic_load(&per_arena[0]),
           (unsigned long long)atomic_load(&weighted));
    CHECK(h > 0);
    CHECK(h > hot_half);
    CHECK(h >= 10 * c);
    CHECK_MSG(atomic_load(&foreign_hits) == 0, "%llu samples in foreign",
              (unsigned long long)atomic_load(&foreign_hits));
    CHECK(atomic_load(&per_arena[0]) == 0);
    CHECK(atomic_load(&weighted) >= h);

    /* 4: nothing left open, nothing left protected */
    CHECK(count_uffds() == 0);
    memset(hot, 5, size);
    memset(cold, 6, size);
    CHECK(hot[0] == 5 && hot[size - 1] == 5 && cold[size / 2] == 6);

    munmap(foreign, fsize);
    atomic_store(&foreign_lo, 0);
    atomic_store(&foreign_hi, 0);
    tm_arena_destroy(ha);
    tm_arena_destroy(ca);
}

/* 3: churn in two arenas while the sampler walks them. */
enum { CHURN_SLOTS = 6 };
typedef struct churn_arg {
    tm_arena_t *a, *b;
    uint64_t seed;
    unsigned long ops;
} churn_arg_t;

static void *churn_thread(void *arg)
{
    churn_arg_t *c = arg;
    char *slot[CHURN_SLOTS] = {0};
    while (!atomic_load(&stop)) {
        uint64_t r = tm_test_rand(&c->seed);
        unsigned i = (unsigned)(r % CHURN_SLOTS);
        tm_free(slot[i]);
        size_t size = 64 * 1024 + (size_t)((r >> 8) % (4 * MiB - 64 * 1024));
        slot[i] = tm_arena_malloc((r >> 40) & 1 ? c->a : c->b, size);
        if (slot[i] != NULL)
            memset(slot[i], (int)r, size);
        c->ops++;
    }
    for (unsigned i = 0; i < CHURN_SLOTS; i++)
        tm_free(slot[i]);
    return NULL;
}

static void test_churn(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl), *b = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL && b != NULL);
    counts_reset();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 256) == 0);
    atomic_store(&stop, false);
    churn_arg_t args[2] = {{a, b, 0x9e3779b97f4a7c15ull, 0},
                           {a, b, 0x2545f4914f6cdd1dull, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        REQUIRE_VOID(pthread_create(&t[i], NULL, churn_thread, &args[i]) == 0);
    unsigned n = (unsigned)(30 * tm_test_scale());
    run_intervals(&s, n < 5 ? 5 : n);
    s.ops->close(&s);
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);

    uint64_t mine = samples_of(a) + samples_of(b), others = 0;
    for (unsigned id = 0; id <= TM_MAX_ARENAS; id++)
        if (id != tm_arena_id(a) && id != tm_arena_id(b))
            others += atomic_load(&per_arena[id]);
    printf("churn: %lu + %lu ops, samples in the two arenas %llu, "
           "elsewhere %llu\n", args[0].ops, args[1].ops,
           (unsigned long long)mine, (unsigned long long)others);
    CHECK(args[0].ops > 0 && args[1].ops > 0);
    CHECK(others == 0);
    CHECK(count_uffds() == 0);
    tm_arena_destroy(a);
    tm_arena_destroy(b);
}

/* 5: read(2) into protected pages: the kernel's own write faults, is
 * served, and the data arrives (no EFAULT).  One page per 2 MiB is
 * protected, so the kernel writes one byte into every page of 4 MiB. */
static void test_kernel_write(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL);
    size_t size = 4 * MiB, npages = size / page_size;
    char *buf = tm_arena_aligned_alloc(a, page_size, size);
    REQUIRE_VOID(buf != NULL);
    memset(buf, 0, size);
    int p[2];
    REQUIRE_VOID(pipe(p) == 0);
    counts_reset();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 1u << 20) == 0);
    s.ops->collect(&s, 1);
    size_t ok = 0;
    for (size_t i = 0; i < npages; i++) {
        char c = (char)('a' + i % 26);
        REQUIRE_VOID(write(p[1], &c, 1) == 1);
        ok += read(p[0], buf + i * page_size, 1) == 1 &&
              buf[i * page_size] == c;
    }
    size_t hits = samples_in((uintptr_t)buf, (uintptr_t)buf + size);
    printf("kernel write: %zu of %zu reads arrived, %zu sampled\n", ok,
           npages, hits);
    CHECK(ok == npages);
    CHECK(hits >= 1 && hits <= size / (2 * MiB) + 1);
    /* First writes un-protected them: writing again does not fault. */
    memset(buf, 1, size);
    CHECK(samples_in((uintptr_t)buf, (uintptr_t)buf + size) == hits);
    s.ops->close(&s);
    CHECK(count_uffds() == 0);
    close(p[0]);
    close(p[1]);
    tm_arena_destroy(a);
}

/* 3: at most one protected page per 2 MiB block, every block of a big
 * buffer sampled each round, each sample standing for 2 MiB of pages. */
static void test_one_per_block(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL);
    size_t size = 64 * MiB, nblocks = size / (2 * MiB);
    char *buf = tm_arena_aligned_alloc(a, 2 * MiB, size);
    REQUIRE_VOID(buf != NULL);
    memset(buf, 1, size);
    counts_reset();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 1u << 16) == 0);
    static uint8_t per_block[64];
    for (unsigned r = 0; r < 4; r++) {
        size_t first = atomic_load(&nrec);
        s.ops->collect(&s, r + 1);
        for (size_t off = 0; off < size; off += page_size)
            buf[off] = (char)r;
        memset(per_block, 0, sizeof per_block);
        size_t in = 0, dup = 0, badw = 0;
        for (size_t i = first; i < atomic_load(&nrec) && i < REC_MAX; i++) {
            uintptr_t ad = atomic_load(&rec_addr[i]);
            if (ad < (uintptr_t)buf || ad >= (uintptr_t)buf + size)
                continue;
            in++;
            dup += per_block[(ad - (uintptr_t)buf) / (2 * MiB)]++ > 0;
            badw += atomic_load(&rec_weight[i]) != 2 * MiB / page_size;
        }
        printf("one per block: round %u: %zu samples in %zu blocks, %zu "
               "repeats, %zu bad weights\n", r, in, nblocks, dup, badw);
        CHECK(dup == 0);
        CHECK(badw == 0);
        CHECK(in + 1 >= nblocks && in <= nblocks);
    }
    s.ops->close(&s);
    tm_arena_destroy(a);
}

/* A new arena on node 0 with one 2 MiB-aligned block of size bytes, every
 * page written (resident); NULL if either cannot be made. */
static char *filled_arena(size_t size, tm_arena_t **out)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    char *buf = a ? tm_arena_aligned_alloc(a, 2 * MiB, size) : NULL;
    if (buf != NULL)
        memset(buf, 1, size);
    *out = a;
    return buf;
}

/* Issue 14, part 2: over a run shorter than the stride, the pages probed
 * are spread over the whole of every stride, not a corner of it.  With the
 * old offset (round % stride) 32 rounds probed only the first 32 pages of
 * each 4096-page window: every sample in one or two of the 8 buckets. */
static void test_spread(void)
{
    size_t size = 64 * MiB;
    tm_arena_t *a;
    char *buf = filled_arena(size, &a);
    REQUIRE_VOID(buf != NULL);
    counts_reset();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 4) == 0); /* stride ~ 4096 pages */
    atomic_store(&stop, false);
    span_t sp = {buf, size, NULL};
    pthread_t t;
    REQUIRE_VOID(pthread_create(&t, NULL, page_writer, &sp) == 0);
    enum { ROUNDS = 32, BUCKETS = 8 };
    size_t bucket[BUCKETS] = {0}, n = 0;
    uint32_t stride = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        size_t first = atomic_load(&nrec);
        s.ops->collect(&s, r + 1);
        sleep_ms(20); /* the writer passes over every page meanwhile */
        for (size_t i = first; i < atomic_load(&nrec) && i < REC_MAX; i++) {
            uintptr_t ad = atomic_load(&rec_addr[i]);
            uint32_t w = atomic_load(&rec_weight[i]);
            if (ad < (uintptr_t)buf || ad >= (uintptr_t)buf + size || w < 2)
                continue;
            stride = stride ? stride : w;
            if (w != stride)
                continue; /* the stride changed: another frame of windows */
            size_t in = ((ad - (uintptr_t)buf) / page_size) % w;
            bucket[in * BUCKETS / w]++;
            n++;
        }
    }
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    s.ops->close(&s);
    size_t empty = 0, most = 0;
    for (int b = 0; b < BUCKETS; b++) {
        empty += bucket[b] == 0;
        most = bucket[b] > most ? bucket[b] : most;
    }
    printf("spread: %zu samples over %u rounds, stride %u pages; per eighth "
           "of the stride: %zu %zu %zu %zu %zu %zu %zu %zu\n", n, ROUNDS,
           stride, bucket[0], bucket[1], bucket[2], bucket[3], bucket[4],
           bucket[5], bucket[6], bucket[7]);
    CHECK(stride >= 2048);
    CHECK(n >= ROUNDS);
    /* 32 rounds over 8 eighths: 4 rounds each, give or take one */
    CHECK_MSG(empty == 0, "%zu eighths of the stride never probed", empty);
    CHECK_MSG(most * BUCKETS <= 2 * n, "one eighth got %zu of %zu samples",
              most, n);
    tm_arena_destroy(a);
}

/* Samples per round and the weight (the stride) of the last round, over
 * rounds of 100 ms intervals run back to back with a writer that writes
 * one page in `every`. */
typedef struct budget_run {
    size_t last_samples;
    uint32_t last_weight;
    uint64_t mapped_pages; /* all arenas', at the end of the run */
} budget_run_t;

/* The last round's budget: the arenas' pages over its stride. */
static double budget_of(budget_run_t r)
{
    return r.last_weight ? (double)r.mapped_pages / r.last_weight : 0.0;
}

typedef struct sparse {
    volatile char *p;
    size_t size, every;
} sparse_t;

/* Writes one page in `every`, chosen by a hash of its index, not every
 * every-th page: a stride that is a multiple of `every` would otherwise
 * never pick a written page. */
static void *sparse_writer(void *arg)
{
    sparse_t *sp = arg;
    for (unsigned round = 0; !atomic_load(&stop); round++)
        for (size_t i = 0; i < sp->size / page_size; i++)
            if ((i * 0x9e3779b97f4a7c15ull >> 40) % sp->every == 0)
                sp->p[i * page_size] = (char)round;
    return NULL;
}

static budget_run_t budget_run(char *buf, size_t size, size_t every)
{
    budget_run_t out = {0, 0, 0};
    counts_reset();
    sampler_t s;
    if (sampler_open_interval(&s, 0, 100000000u) != 0)
        return out;
    atomic_store(&stop, false);
    sparse_t sp = {buf, size, every};
    pthread_t t;
    if (pthread_create(&t, NULL, sparse_writer, &sp) != 0) {
        s.ops->close(&s);
        return out;
    }
    for (unsigned r = 0; r < 12; r++) {
        size_t first = atomic_load(&nrec);
        s.ops->collect(&s, r + 1);
        sleep_ms(30);
        size_t in = 0;
        for (size_t i = first; i < atomic_load(&nrec) && i < REC_MAX; i++) {
            uintptr_t ad = atomic_load(&rec_addr[i]);
            if (ad >= (uintptr_t)buf && ad < (uintptr_t)buf + size) {
                in++;
                out.last_weight = atomic_load(&rec_weight[i]);
            }
        }
        out.last_samples = in;
    }
    tm_stats_t st;
    tm_stats_get(&st);
    out.mapped_pages = st.bytes_mapped / page_size;
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    s.ops->close(&s);
    return out;
}

/* Issue 14, part 2: with TIERMEM_PROFILE_UFFD_PAGES unset the budget
 * follows the resident memory, one page per 2 MiB, within the cost cap:
 * at 100 ms intervals about 18 faults a round (1% of the interval at
 * 56 us each).  A program that writes every page is held to that cap; one
 * that writes one page in 64 gets the whole resident budget, about 128
 * pages for 256 MiB; and memory that is mapped but not resident does not
 * count. */
static void test_budget_scales(void)
{
    size_t size = 256 * MiB;
    tm_arena_t *a;
    char *buf = filled_arena(size, &a);
    REQUIRE_VOID(buf != NULL);

    budget_run_t dense = budget_run(buf, size, 1);
    double b_dense = budget_of(dense);
    printf("budget: writing every page: %zu samples in the last round, "
           "stride %u, budget %.0f\n", dense.last_samples,
           dense.last_weight, b_dense);
    /* the cost cap: about 18 faults a round, whatever the budget was */
    CHECK(dense.last_samples >= 8 && dense.last_samples <= 24);

    budget_run_t sparse = budget_run(buf, size, 64);
    double b_sparse = budget_of(sparse);
    printf("budget: writing one page in 64: %zu samples in the last round, "
           "stride %u, budget %.0f\n", sparse.last_samples,
           sparse.last_weight, b_sparse);
    /* one pick per resident 2 MiB, ~128, where faults are rare; without
     * scaling it would stay where the dense run was */
    CHECK_MSG(b_sparse >= 4 * b_dense, "budget %.0f against %.0f: it did "
              "not grow", b_sparse, b_dense);

    /* 1 GiB more, mapped and never touched: resident memory decides */
    char *idle = tm_arena_malloc(a, 1024 * MiB);
    REQUIRE_VOID(idle != NULL);
    budget_run_t mapped = budget_run(buf, size, 64);
    double b_mapped = budget_of(mapped);
    printf("budget: with 1 GiB mapped, not resident: stride %u, budget "
           "%.0f\n", mapped.last_weight, b_mapped);
    /* counted as resident, the idle GiB would double the budget (to the
     * ~250 protect cap); the estimate from a few hundred picks a round
     * varies by a fifth or so */
    CHECK_MSG(b_mapped <= 1.5 * b_sparse, "budget %.0f against %.0f: "
              "the untouched GiB counted", b_mapped, b_sparse);
    tm_free(idle);
    tm_arena_destroy(a);
}

/* 4: a fault of round 1 whose message was read but not yet served when
 * collect(2) ran still gets round 1's weight.  The sink stalls the service
 * thread twice: first on W1's fault, while W2 and W3 fault and queue;
 * then on the first of their messages, read in one batch with the other.
 * collect(2) then runs with a stride changed by a new 64 MiB block. */
static _Atomic bool rounds_stop;

static void *rounds_write(void *arg)
{
    span_t *w = arg;
    for (size_t off = 0; off < w->size && !atomic_load(&rounds_stop);
         off += page_size)
        w->p[off] = 7;
    return NULL;
}

static void stall_arm(void)
{
    atomic_store(&stall_in, false);
    atomic_store(&stall_release, false);
    atomic_store(&stall_page, (uintptr_t)-1); /* any page of the buffer */
}

static bool stall_wait(void)
{
    for (int i = 0; i < 20000 && !atomic_load(&stall_in); i++) /* 20 s */
        sleep_ms(1);
    return atomic_load(&stall_in);
}

static void test_rounds(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl), *b = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL && b != NULL);
    size_t size = 48 * MiB, third = size / 3;
    char *buf = tm_arena_aligned_alloc(a, 2 * MiB, size);
    REQUIRE_VOID(buf != NULL);
    memset(buf, 1, size);
    counts_reset();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 8) == 0);
    s.ops->collect(&s, 1);
    atomic_store(&rounds_stop, false);
    atomic_store(&foreign_lo, (uintptr_t)buf);
    atomic_store(&foreign_hi, (uintptr_t)buf + size);
    span_t w[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        w[i] = (span_t){buf + (size_t)i * third, third, NULL};
    stall_arm();
    REQUIRE_VOID(pthread_create(&t[0], NULL, rounds_write, &w[0]) == 0);
    REQUIRE_VOID(stall_wait());
    for (int i = 1; i < 3; i++)
        REQUIRE_VOID(pthread_create(&t[i], NULL, rounds_write, &w[i]) == 0);
    sleep_ms(50); /* W2 and W3 reach a protected page and queue */
    stall_arm();
    atomic_store(&stall_release, true); /* ends the first stall */
    atomic_store(&stall_release, false);
    bool second = stall_wait();
    char *more = tm_arena_malloc(b, 64 * MiB); /* mapped: stride grows */
    REQUIRE_VOID(more != NULL);
    atomic_store(&rounds_stop, true);
    s.ops->collect(&s, 2);
    atomic_store(&stall_release, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    s.ops->close(&s);
    uint32_t w1 = 0;
    size_t n = 0, bad = 0;
    for (size_t i = 0; i < atomic_load(&nrec) && i < REC_MAX; i++) {
        uintptr_t ad = atomic_load(&rec_addr[i]);
        if (ad < (uintptr_t)buf || ad >= (uintptr_t)buf + size)
            continue;
        uint32_t wt = atomic_load(&rec_weight[i]);
        w1 = w1 ? w1 : wt;
        n++;
        bad += wt != w1;
    }
    printf("rounds: %zu round-1 samples (second stall %s), weight %u, %zu "
           "with another weight\n", n, second ? "hit" : "missed", w1, bad);
    CHECK(n >= 3);
    CHECK(bad == 0);
    atomic_store(&stall_page, 0);
    atomic_store(&foreign_lo, 0);
    atomic_store(&foreign_hi, 0);
    tm_free(more);
    tm_arena_destroy(a);
    tm_arena_destroy(b);
}

/* 6: arena S only mallocs and frees small blocks (no data writes): its
 * only written pages are jemalloc's metadata, which must not be sampled.
 * 600 back-to-back rounds move the offset over every page of every 2 MiB
 * block, so any protected metadata page would be written and sampled. */
static void test_metadata_skipped(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *sa = tm_arena_create(&pl), *ba = tm_arena_create(&pl);
    REQUIRE_VOID(sa != NULL && ba != NULL);
    enum { NSMALL = 1000 };
    static void *small[NSMALL];
    for (int i = 0; i < NSMALL; i++) {
        small[i] = tm_arena_malloc(sa, 64);
        REQUIRE_VOID(small[i] != NULL);
        memset(small[i], 1, 64);
    }
    size_t size = 8 * MiB;
    char *big = tm_arena_aligned_alloc(ba, page_size, size);
    REQUIRE_VOID(big != NULL);
    memset(big, 1, size);
    counts_reset();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 4096) == 0);
    uint64_t seed = 42;
    for (unsigned r = 0; r < 600; r++) {
        s.ops->collect(&s, r + 1);
        /* More than a thread cache holds: the arena's bins and slab
         * bitmaps (its metadata) are written. */
        unsigned first = (unsigned)(tm_test_rand(&seed) % (NSMALL / 2));
        for (unsigned i = first; i < first + NSMALL / 2; i++)
            tm_free(small[i]);
        for (unsigned i = first; i < first + NSMALL / 2; i++)
            small[i] = tm_arena_malloc(sa, 64);
        for (size_t off = 0; off < size; off += page_size)
            big[off] = (char)r;
    }
    s.ops->close(&s);
    printf("metadata: small arena %llu samples, big arena %llu\n",
           (unsigned long long)samples_of(sa),
           (unsigned long long)samples_of(ba));
    CHECK(samples_of(ba) > 0);
    CHECK(samples_of(sa) == 0);
    for (int i = 0; i < NSMALL; i++)
        tm_free(small[i]);
    tm_free(big);
    tm_arena_destroy(sa);
    tm_arena_destroy(ba);
}

static int maps_lines(void)
{
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0)
        return -1;
    char b[4096];
    int n = 0;
    ssize_t len;
    while ((len = read(fd, b, sizeof b)) > 0)
        for (ssize_t i = 0; i < len; i++)
            n += b[i] == '\n';
    close(fd);
    return n;
}

/* 2: many extents: VMAs before / while sampling / after close; and a
 * range that vanished (arena destroyed) and came back is sampled again. */
static void test_registrations(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL);
    enum { NBLK = 400 };
    static char *blk[NBLK];
    for (int i = 0; i < NBLK; i++) {
        blk[i] = tm_arena_malloc(a, 256 * 1024 + (size_t)i * page_size);
        REQUIRE_VOID(blk[i] != NULL);
        memset(blk[i], 1, 256 * 1024);
    }
    int before = maps_lines();
    counts_reset();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 64) == 0);
    int peak = before;
    for (unsigned r = 0; r < 40; r++) {
        s.ops->collect(&s, r + 1);
        for (int i = 0; i < NBLK; i++)
            for (size_t off = 0; off < 256 * 1024; off += page_size)
                blk[i][off] = (char)r;
        int n = maps_lines();
        peak = n > peak ? n : peak;
    }
    uint64_t first = samples_of(a);
    s.ops->close(&s);
    int after = maps_lines();
    printf("registrations: %llu extents, maps lines %d before, %d peak while "
           "sampling, %d after close; %llu samples\n",
           (unsigned long long)a->hooked.extents.count, before, peak, after,
           (unsigned long long)first);
    CHECK(first > 0);
    CHECK(peak - before <= 16);
    CHECK(after - before <= 4);

    /* Vanish and come back: same sizes, likely the same addresses. */
    REQUIRE_VOID(sampler_open_pages(&s, 1024) == 0);
    size_t size = 8 * MiB;
    char *p = tm_arena_aligned_alloc(a, 2 * MiB, size);
    REQUIRE_VOID(p != NULL);
    memset(p, 1, size);
    s.ops->collect(&s, 1);
    for (int i = 0; i < NBLK; i++)
        tm_free(blk[i]);
    tm_free(p);
    tm_arena_destroy(a);
    a = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL);
    p = tm_arena_aligned_alloc(a, 2 * MiB, size);
    REQUIRE_VOID(p != NULL);
    memset(p, 1, size);
    counts_reset();
    for (unsigned r = 0; r < 3; r++) {
        s.ops->collect(&s, r + 2);
        memset(p, (int)r, size);
    }
    printf("registrations: after the arena came back, %llu samples\n",
           (unsigned long long)samples_of(a));
    CHECK(samples_of(a) > 0);
    s.ops->close(&s);
    tm_free(p);
    tm_arena_destroy(a);
}

/* 1 and 5: the log is a full pipe; the uffd is replaced by a directory
 * (the program closed ours and reused the number).  The service thread
 * must neither log (it would block on the pipe forever), nor read or ioctl
 * the directory, nor spin: it sees the descriptor is no longer ours and
 * stops by itself, the next collect logs the loss, and close returns.  A
 * write to a protected page wakes the thread from its poll on the old
 * descriptor. */
static void test_service_errors(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL);
    size_t size = 4 * MiB;
    char *buf = tm_arena_aligned_alloc(a, page_size, size);
    REQUIRE_VOID(buf != NULL);
    memset(buf, 1, size);
    int lp[2];
    REQUIRE_VOID(pipe(lp) == 0);
    REQUIRE_VOID(fcntl(lp[1], F_SETFL, O_NONBLOCK) == 0);
    static char junk[4096];
    memset(junk, '.', sizeof junk);
    while (write(lp[1], junk, sizeof junk) > 0)
        ;
    while (write(lp[1], junk, 1) > 0)
        ;
    REQUIRE_VOID(fcntl(lp[1], F_SETFL, 0) == 0); /* full and blocking */
    REQUIRE_VOID(fcntl(lp[0], F_SETFL, O_NONBLOCK) == 0);
    int tasks0 = thread_count();
    sampler_t s;
    REQUIRE_VOID(sampler_open_pages(&s, 1u << 20) == 0);
    s.ops->collect(&s, 1);
    CHECK(thread_count() == tasks0 + 1);
    log_configure(TM_LOG_WARN, lp[1]);
    int ufd = fd_named("anon_inode:[userfaultfd]");
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    REQUIRE_VOID(ufd >= 0 && dir >= 0);
    REQUIRE_VOID(dup2(dir, ufd) == ufd);
    close(dir);
    atomic_store(&rounds_stop, false); /* one sweep */
    span_t sp = {buf, size, NULL};
    pthread_t wt;
    REQUIRE_VOID(pthread_create(&wt, NULL, rounds_write, &sp) == 0);
    pthread_join(wt, NULL);
    for (int i = 0; i < 5000 && thread_count() > tasks0; i++)
        sleep_ms(1);
    int tasks1 = thread_count();
    static char logbuf[1 << 17];
    while (read(lp[0], logbuf, sizeof logbuf) > 0)
        ; /* empty the pipe: the log can be written again */
    s.ops->collect(&s, 2);
    ssize_t n = read(lp[0], logbuf, sizeof logbuf - 1);
    logbuf[n > 0 ? n : 0] = '\0';
    s.ops->close(&s);
    log_configure(TM_LOG_WARN, -1);
    printf("service errors: threads %d -> %d; collect logged: %.300s\n",
           tasks0 + 1, tasks1, logbuf);
    CHECK_MSG(tasks1 == tasks0, "the service thread did not stop");
    CHECK(strstr(logbuf, "userfaultfd") != NULL &&
          strstr(logbuf, "no longer ours") != NULL);
    CHECK(thread_count() == tasks0);
    close(lp[0]);
    close(lp[1]);
    tm_arena_destroy(a);
}

int main(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    char why[160], seen[160];
    bool expected = tm_test_expect_uffd_wp(why, sizeof why);
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(seen, sizeof seen, "userfaultfd: errno %d %s", errno,
                 strerror(errno));
        tm_test_missing("the uffd sampler", expected, why, seen);
        return tm_test_done(__FILE__);
    }
    close(fd);
    sampler_t probe;
    if (sampler_open_pages(&probe, 16) != 0) {
        snprintf(seen, sizeof seen, "the sampler's open: errno %d %s", errno,
                 strerror(errno));
        tm_test_missing("the uffd sampler", expected, why, seen);
        return tm_test_done(__FILE__);
    }
    probe.ops->close(&probe);
    /* A writer left blocked on a fault must fail the test, not hang it. */
    alarm(120);

    test_hot_cold();
    test_churn();
    test_kernel_write();
    test_one_per_block();
    test_spread();
    test_budget_scales();
    test_rounds();
    test_metadata_skipped();
    test_registrations();
    test_service_errors();
    return tm_test_done(__FILE__);
}
