/*
 * test_perf_budget.c -- the perf rings' CPUs and size (perf_budget.c)
 * from injected facts.
 *
 * CPU lists are parsed from good and hostile text; the CPUs of the
 * affinity mask are picked from the online ones.  Ring plans are checked
 * against a model of perf_mmap()'s accounting (kernel/events/core.c): the
 * user's locked_vm up to perf_event_mlock_kb x online CPUs, the rest to
 * each process's pinned_vm, refused past RLIMIT_MEMLOCK.  Every local rank
 * maps its planned rings, in rank order and interleaved, after the MPI
 * library has already pinned its half of the limit; none may be refused.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <sched.h>
#include <sys/resource.h>

#include "perf_internal.h"
#include "../tm_test.h"

#define PAGE 4096
#define MIB ((uint64_t)1 << 20)
#define MAX_RANKS 128

/* ---------------------------------------------------------------- lists */

/* Parse text into a buffer with a sentinel past max; the count. */
static size_t parse(const char *text, int *cpus, size_t max)
{
    cpus[max] = -12345;
    size_t n = perf_cpu_list_parse(text, cpus, max);
    CHECK_MSG(cpus[max] == -12345, "wrote past max %zu on \"%s\"", max,
              text);
    return n;
}

static void test_list_good(void)
{
    int c[64];
    CHECK(parse("0-3,8,10-11\n", c, 32) == 7);
    CHECK(c[0] == 0 && c[3] == 3 && c[4] == 8 && c[5] == 10 && c[6] == 11);
    CHECK(parse("5", c, 32) == 1 && c[0] == 5);
    CHECK(parse("0-3\n8-9", c, 32) == 4);   /* ends at the newline */
    CHECK(parse("1048575\n", c, 32) == 1 && c[0] == 1048575);
    CHECK(parse("0-63", c, 8) == 8 && c[7] == 7); /* cut at max */
    CHECK(parse("0-3", c, 0) == 0);
    CHECK(perf_cpu_list_parse("0-1023,2048", NULL, SIZE_MAX) == 1025);
    CHECK(perf_cpu_list_parse("0-1023", NULL, 100) == 100);
}

static void test_list_hostile(void)
{
    int c[64];
    CHECK(perf_cpu_list_parse(NULL, c, 32) == 0);
    CHECK(parse("", c, 32) == 0);
    CHECK(parse("\n", c, 32) == 0);
    CHECK(parse("abc", c, 32) == 0);
    CHECK(parse("0-3,x,8", c, 32) == 4);    /* the CPUs before the junk */
    CHECK(parse("0-3,8x", c, 32) == 4);     /* junk inside an item */
    CHECK(parse("0-3x", c, 32) == 0);
    CHECK(parse("3-1", c, 32) == 0);        /* reversed */
    CHECK(parse("0-3,2-5", c, 32) == 4);    /* overlapping */
    CHECK(parse("4,2", c, 32) == 1);        /* descending */
    CHECK(parse("0,0", c, 32) == 1);        /* repeated */
    CHECK(parse("-1", c, 32) == 0);
    CHECK(parse("0-", c, 32) == 0);
    CHECK(parse("0--3", c, 32) == 0);
    CHECK(parse("0-3,", c, 32) == 4);
    CHECK(parse(" 0-3", c, 32) == 0);
    CHECK(parse("1048576", c, 32) == 0);    /* 1 << 20 */
    CHECK(parse("0,99999999999999999999999999", c, 32) == 1);
    CHECK(parse("0-99999999999999999999999999", c, 32) == 0);
}

/* "0,1,2,...": far longer than anything sysfs writes. */
static void test_list_overlong(void)
{
    static char text[200000];
    static int c[8193];
    size_t len = 0;
    for (int i = 0; len + 16 < sizeof text; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%d,", i);
    CHECK(parse(text, c, 8192) == 8192);
    CHECK(c[8191] == 8191);
}

/* Random text over the list alphabet: never past max, always ascending
 * CPUs below the limit. */
static void test_list_fuzz(void)
{
    static const char alphabet[] = "0123456789-,\nx 9";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char text[40];
    int c[17];
    unsigned bad = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = tm_test_rand(&seed) % (sizeof text - 1);
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[tm_test_rand(&seed) % (sizeof alphabet - 1)];
        text[len] = '\0';
        size_t max = tm_test_rand(&seed) % 17;
        c[max] = -7;
        size_t n = perf_cpu_list_parse(text, c, max);
        bool ok = n <= max && c[max] == -7;
        for (size_t i = 0; ok && i < n; i++)
            ok = c[i] >= 0 && c[i] < PERF_CPU_ID_LIMIT &&
                 (i == 0 || c[i] > c[i - 1]);
        if (!ok && bad++ == 0)
            CHECK_MSG(ok, "\"%s\" max %zu gave %zu", text, max, n);
    }
    CHECK(bad == 0);
}

/* ---------------------------------------------------------------- CPUs */

#define MASK_SIZE CPU_ALLOC_SIZE(PERF_AFFINITY_MAX_CPUS)

static void test_intersect(void)
{
    static cpu_set_t mask[PERF_AFFINITY_MAX_CPUS / CPU_SETSIZE];
    int online[80], out[80];
    size_t n = perf_cpu_list_parse("0-63", online, 80);
    memset(mask, 0, sizeof mask);
    CPU_SET_S(5, MASK_SIZE, mask);
    CHECK(perf_cpus_intersect(online, n, mask, MASK_SIZE, out, 80) == 1);
    CHECK(out[0] == 5); /* pinned to one CPU: one ring */

    n = perf_cpu_list_parse("0-6,8-15,9000", online, 80);
    CPU_ZERO_S(MASK_SIZE, mask);
    CPU_SET_S(3, MASK_SIZE, mask);
    CPU_SET_S(7, MASK_SIZE, mask);   /* offline */
    CPU_SET_S(9, MASK_SIZE, mask);
    CPU_SET_S(200, MASK_SIZE, mask); /* offline */
    CHECK(perf_cpus_intersect(online, n, mask, MASK_SIZE, online, 80) == 2);
    CHECK(online[0] == 3 && online[1] == 9); /* in place */

    int odd[] = {-1, 2, 9000, 3};    /* outside the mask's bits */
    for (int c = 0; c < 8; c++)
        CPU_SET_S((size_t)c, MASK_SIZE, mask);
    CHECK(perf_cpus_intersect(odd, 4, mask, MASK_SIZE, out, 80) == 2);
    CHECK(perf_cpus_intersect(odd, 4, mask, MASK_SIZE, out, 1) == 1);
    CHECK(out[0] == 2);
}

/* The live machine: rings on the online CPUs of our mask, and one ring
 * when this process is bound to one CPU. */
static void test_cpus_for_rings(void)
{
    static int cpus[PERF_AFFINITY_MAX_CPUS];
    cpu_set_t saved, one;
    REQUIRE_VOID(sched_getaffinity(0, sizeof saved, &saved) == 0);
    size_t n = perf_cpus_for_rings(cpus, PERF_AFFINITY_MAX_CPUS);
    CHECK(n >= 1 && n <= (size_t)CPU_COUNT(&saved));
    for (size_t i = 0; i < n; i++)
        CHECK(cpus[i] >= 0 && cpus[i] < CPU_SETSIZE &&
              CPU_ISSET(cpus[i], &saved));
    int last = cpus[n - 1];
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    REQUIRE_VOID(sched_setaffinity(0, sizeof one, &one) == 0);
    CHECK(perf_cpus_for_rings(cpus, 4) == 1 && cpus[0] == last);
    CHECK(sched_setaffinity(0, sizeof saved, &saved) == 0);
    CHECK(perf_cpus_for_rings(cpus, 1) == 1);
    CHECK(perf_cpus_for_rings(cpus, 0) == 0);
}

/* ---------------------------------------------------------------- facts */

static void test_facts_read(void)
{
    perf_lock_facts_t f;
    struct rlimit rl;
    perf_lock_facts_read(&f);
    CHECK(f.page_size == (size_t)sysconf(_SC_PAGESIZE));
    CHECK(f.online_cpus >= 1);
    CHECK(f.max_sample_rate >= 1);
    long long mlock = tm_test_proc_number(
        "/proc/sys/kernel/perf_event_mlock_kb", NULL, 10, -1);
    if (mlock >= 0)
        CHECK(f.mlock_kb == (uint64_t)mlock);
    long long paranoid = tm_test_proc_number(
        "/proc/sys/kernel/perf_event_paranoid", NULL, 10, INT_MIN);
    CHECK(f.paranoid == (int)paranoid);
    REQUIRE_VOID(getrlimit(RLIMIT_MEMLOCK, &rl) == 0);
    CHECK(f.memlock_limit == (rl.rlim_cur == RLIM_INFINITY
                                  ? UINT64_MAX : (uint64_t)rl.rlim_cur));
    if (f.ipc_lock)
        CHECK(tm_test_capable(14 /* CAP_IPC_LOCK */));
}

/* ---------------------------------------------------------------- model */

/* perf_mmap()'s accounting, for a paranoid kernel and a process without
 * CAP_IPC_LOCK. */
typedef struct kernel_model {
    uint64_t allowance;      /* perf_event_mlock_kb pages x online CPUs */
    uint64_t memlock_pages;  /* RLIMIT_MEMLOCK */
    uint64_t user_locked;
    uint64_t pinned[MAX_RANKS];
} kernel_model_t;

static void model_init(kernel_model_t *k, const perf_lock_facts_t *f,
                       unsigned ranks)
{
    memset(k, 0, sizeof *k);
    k->allowance = f->mlock_kb / (f->page_size / 1024) * f->online_cpus;
    k->memlock_pages = f->memlock_limit / f->page_size;
    /* the MPI library pinned its half before the rings */
    for (unsigned r = 0; r < ranks; r++)
        k->pinned[r] = k->memlock_pages - k->memlock_pages / 2;
}

/* mmap of one ring of `pages` (data + header) by rank r: false on EPERM. */
static bool model_mmap(kernel_model_t *k, unsigned r, uint64_t pages)
{
    uint64_t locked = k->user_locked < k->allowance ? k->user_locked
                                                     : k->allowance;
    locked += pages;
    uint64_t extra = locked > k->allowance ? locked - k->allowance : 0;
    if (k->pinned[r] + extra > k->memlock_pages)
        return false;
    k->user_locked += pages - extra;
    k->pinned[r] += extra;
    return true;
}

/* Every rank maps nrings rings of ring_pages: rank after rank, or one
 * ring of each rank in turn.  False at the first refusal. */
static bool model_map_all(const perf_lock_facts_t *f, unsigned ranks,
                          size_t nrings, size_t ring_pages, bool interleave)
{
    static kernel_model_t k;
    model_init(&k, f, ranks);
    for (size_t i = 0; i < (size_t)ranks * nrings; i++) {
        unsigned r = interleave ? (unsigned)(i % ranks)
                                : (unsigned)(i / nrings);
        if (!model_mmap(&k, r, ring_pages + 1))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- plans */

static perf_lock_facts_t facts(size_t cpus, uint64_t memlock)
{
    return (perf_lock_facts_t){.mlock_kb = 516, .memlock_limit = memlock,
                               .ipc_lock = false, .paranoid = 2,
                               .online_cpus = cpus,
                               .max_sample_rate = 100000,
                               .page_size = PAGE};
}

/* pebs at its default period, ~1e9 loads/s a core, 100 ms drains. */
static perf_ring_plan_in_t pebs(size_t nrings, unsigned ranks)
{
    return (perf_ring_plan_in_t){.period = 20011, .events_per_s = 1e9,
                                 .record_bytes = 40,
                                 .interval_ns = 100000000,
                                 .nrings = nrings, .local_ranks = ranks,
                                 .want_pages = 0};
}

static bool pow2(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Pages the planned rings lock; none when nothing fits (nothing is
 * mapped then). */
static uint64_t total_pages(const perf_ring_plan_t *p)
{
    return p->ring_pages ? (uint64_t)p->nrings * (p->ring_pages + 1) : 0;
}

/* Ranks 1..128 on 64 CPUs, 8 MiB memlock, each mapping `cpus_each` rings
 * (0: 64 / ranks, as when bound to their share of the cores). */
static void check_ranks(size_t cpus_each)
{
    perf_lock_facts_t f = facts(64, 8 * MIB);
    uint64_t allowance = 129 * 64, half = 8 * MIB / PAGE / 2;
    unsigned failures = 0;
    for (unsigned ranks = 1; ranks <= MAX_RANKS; ranks++) {
        size_t nrings = cpus_each ? cpus_each
                                  : (64 / ranks > 0 ? 64 / ranks : 1);
        perf_ring_plan_t p;
        perf_ring_plan_in_t in = pebs(nrings, ranks);
        REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
        bool ok = pow2(p.ring_pages) && p.ring_pages <= 64 &&
                  total_pages(&p) <= p.budget_pages &&
                  (uint64_t)ranks * p.budget_pages <=
                      allowance + (uint64_t)ranks * half &&
                  model_map_all(&f, ranks, nrings, p.ring_pages, false) &&
                  model_map_all(&f, ranks, nrings, p.ring_pages, true);
        if (!ok && failures++ < 3)
            CHECK_MSG(ok, "%u ranks x %zu rings: %zu pages, budget %llu",
                      ranks, nrings, p.ring_pages,
                      (unsigned long long)p.budget_pages);
    }
    CHECK(failures == 0);
}

static void test_ranks(void)
{
    check_ranks(64); /* unbound: a ring on every CPU */
    check_ranks(1);  /* bound to one core */
    check_ranks(0);  /* bound to 64 / ranks cores */
}

/* The issue: fixed 64-page rings on all 64 CPUs, the third rank of a node
 * with an 8 MiB memlock is refused; planned, all three map. */
static void test_three_ranks(void)
{
    perf_lock_facts_t f = facts(64, 8 * MIB);
    CHECK(model_map_all(&f, 2, 64, 64, false));
    CHECK(!model_map_all(&f, 3, 64, 64, false)); /* today's EPERM */
    perf_ring_plan_t p;
    perf_ring_plan_in_t in = pebs(64, 3);
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 32); /* 64 x 65 > (8256 + 1024) / 3 */
    CHECK(p.budget_pages == (129 * 64 + 1024) / 3);
    CHECK(model_map_all(&f, 3, 64, p.ring_pages, false));
    CHECK(strstr(p.why, "64-page perf rings (one interval) cut to 32") !=
          NULL);
    CHECK(strstr(p.why, "3 ranks") && strstr(p.why, "ulimit -l 8192 KiB"));
    /* bound to one core each, nothing is cut */
    in = pebs(1, 3);
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 64 && p.why[0] == '\0');
    CHECK(p.need_pages == 65 && p.watermark_bytes == 64 * PAGE / 4);
}

/* No kernel limit: pin what is needed, no more. */
static void test_unlimited(void)
{
    perf_lock_facts_t f = facts(128, UINT64_MAX);
    perf_ring_plan_t p;
    perf_ring_plan_in_t in = pebs(128, 128);
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.budget_pages == UINT64_MAX);
    CHECK(p.ring_pages == 64 && p.need_pages == 128 * 65);
    CHECK(total_pages(&p) <= p.need_pages && p.why[0] == '\0');
    f = facts(128, 64 * 1024);
    f.ipc_lock = true;
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 64 && p.budget_pages == UINT64_MAX);
    f.ipc_lock = false;
    f.paranoid = -1;
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 64 && p.budget_pages == UINT64_MAX);
    f.paranoid = INT_MIN; /* unknown: limits apply */
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.budget_pages != UINT64_MAX && p.ring_pages < 64);
}

static void test_nothing_fits(void)
{
    perf_lock_facts_t f = facts(256, 0);
    f.mlock_kb = 0;
    perf_ring_plan_t p;
    perf_ring_plan_in_t in = pebs(256, 1);
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 0 && p.budget_pages == 0);
    CHECK(p.watermark_bytes == 0);
    CHECK(strstr(p.why, "no room for 1-page perf rings") != NULL);
    CHECK(strstr(p.why, "256 rings x 1 ranks") != NULL);
    CHECK(strstr(p.why, "perf_event_mlock_kb 0 x 256 CPUs") != NULL);
    CHECK(strstr(p.why, "ulimit -l 0 KiB") != NULL);
    CHECK(strstr(p.why, "raise ulimit -l or bind to fewer CPUs") != NULL);
    /* half of 4 pages: room for one 1-page ring and its header */
    f.memlock_limit = 4 * PAGE;
    in.nrings = 1;
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 1 && p.budget_pages == 2);
    CHECK(strstr(p.why, "64-page perf rings (one interval) cut to 1:") !=
          NULL);
}

static void test_want_pages(void)
{
    perf_lock_facts_t f = facts(64, 8 * MIB);
    perf_ring_plan_t p;
    perf_ring_plan_in_t in = pebs(1, 1);
    in.want_pages = 256;
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 256 && p.why[0] == '\0');
    in.want_pages = 100; /* the kernel wants a power of two */
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 128 && p.need_pages == 129);
    in.want_pages = 2; /* below the auto minimum: still honoured */
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 2);
    in = pebs(64, 3);
    in.want_pages = 4096;
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 32 && pow2(p.ring_pages));
    CHECK(total_pages(&p) <= p.budget_pages);
    CHECK(strstr(p.why, "4096-page perf rings (TIERMEM_PROFILE_RING_PAGES)"
                        " cut to 32") != NULL);
    in.want_pages = UINT_MAX; /* clamped, not overflowed */
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 32 && p.need_pages == 64 * 65537);
}

static void test_rate(void)
{
    perf_lock_facts_t f = facts(64, UINT64_MAX);
    perf_ring_plan_t p;
    perf_ring_plan_in_t in = pebs(1, 1);
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(fabs(p.samples_per_s - 1e9 / 20011) < 1e-6);
    in.period = 1; /* 1e9 samples/s asked: the kernel caps at 100k */
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.samples_per_s == 100000);
    CHECK(p.ring_pages == 128); /* 100k x 0.1 s x 40 B = 98 pages */
    f.max_sample_rate = 1000;   /* 4000 B: the 8-page minimum */
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.samples_per_s == 1000 && p.ring_pages == 8);
    in.period = 0;              /* unknown: the cap */
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.samples_per_s == 1000);
    in.period = 1;
    in.events_per_s = NAN;
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.samples_per_s == 1000);
    in.events_per_s = -5;
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.samples_per_s == 1000);
    in = pebs(1, 1);
    in.interval_ns = UINT64_MAX; /* a need past the maximum */
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    CHECK(p.ring_pages == 512);
}

/* Random facts and inputs, huge ones included: a plan always keeps its
 * promises. */
static void test_plan_fuzz(void)
{
    uint64_t seed = 12345;
    unsigned bad = 0;
    for (int iter = 0; iter < 100000; iter++) {
        uint64_t r[8];
        for (int i = 0; i < 8; i++)
            r[i] = tm_test_rand(&seed);
        perf_lock_facts_t f = {
            .mlock_kb = r[0] % 4 ? r[0] % 100000 : r[0],
            .memlock_limit = r[1] % 4 ? r[1] % (1ull << 40) : r[1],
            .ipc_lock = r[2] % 7 == 0, .paranoid = (int)(r[2] % 6) - 2,
            .online_cpus = r[3] % 3 ? r[3] % 1024 : r[3],
            .max_sample_rate = r[4] % 1000000,
            .page_size = (size_t)1024 << (r[4] % 7)};
        perf_ring_plan_in_t in = {
            .period = r[5] % 3 ? r[5] % 100000 : r[5],
            .events_per_s = (double)(r[6] % 1000000000000ull),
            .record_bytes = r[6] % 500, .interval_ns = r[7] % 10000000000ull,
            .nrings = r[7] % 5 ? 1 + r[7] % 512 : r[7] | 1,
            .local_ranks = (unsigned)(r[3] % 300),
            .want_pages = r[5] % 3 ? 0 : (unsigned)(r[5] >> 40)};
        perf_ring_plan_t p;
        bool ok = perf_ring_plan(&in, &f, &p) == 0 &&
                  (p.ring_pages == 0 || pow2(p.ring_pages)) &&
                  (p.ring_pages == 0 ||
                   total_pages(&p) / (p.ring_pages + 1) == in.nrings) &&
                  p.nrings == in.nrings &&
                  total_pages(&p) <= p.budget_pages &&
                  total_pages(&p) <= p.need_pages &&
                  p.watermark_bytes <= UINT32_MAX &&
                  (p.ring_pages == 0 ||
                   p.watermark_bytes == p.ring_pages * f.page_size / 4 ||
                   p.watermark_bytes == UINT32_MAX) &&
                  (p.ring_pages > 0 || p.why[0] != '\0') &&
                  (p.need_pages == UINT64_MAX || /* need not known here */
                   (p.why[0] != '\0') ==
                       (p.ring_pages == 0 ||
                        p.need_pages / in.nrings > p.ring_pages + 1)) &&
                  memchr(p.why, '\0', sizeof p.why) != NULL;
        if (!ok && bad++ == 0)
            CHECK_MSG(ok, "iteration %d: %zu pages, need %llu, budget %llu,"
                      " why \"%s\"", iter, p.ring_pages,
                      (unsigned long long)p.need_pages,
                      (unsigned long long)p.budget_pages, p.why);
    }
    CHECK(bad == 0);
}

static void test_invalid(void)
{
    perf_lock_facts_t f = facts(4, 8 * MIB);
    perf_ring_plan_in_t in = pebs(0, 1);
    perf_ring_plan_t p;
    errno = 0;
    CHECK(perf_ring_plan(&in, &f, &p) == -1 && errno == EINVAL);
    in.nrings = 1;
    f.page_size = 0;
    CHECK(perf_ring_plan(&in, &f, &p) == -1 && errno == EINVAL);
    f.page_size = 3000;
    CHECK(perf_ring_plan(&in, &f, &p) == -1 && errno == EINVAL);
    f.page_size = PAGE;
    CHECK(perf_ring_plan(NULL, &f, &p) == -1);
    CHECK(perf_ring_plan(&in, NULL, &p) == -1);
    CHECK(perf_ring_plan(&in, &f, NULL) == -1);
}

static void test_format(void)
{
    perf_lock_facts_t f = facts(64, 8 * MIB);
    perf_ring_plan_t p;
    perf_ring_plan_in_t in = pebs(4, 1);
    char line[512], small[16];
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    perf_ring_plan_format(&p, line, sizeof line);
    CHECK(strstr(line, "4 x 64 data pages") != NULL);
    CHECK(strstr(line, "wakeup at 65536 bytes") != NULL);
    CHECK(strstr(line, "~49973 samples/s") != NULL);
    CHECK(strstr(line, "260 pages needed, budget 9280") != NULL);
    CHECK(strchr(line, ';') == strrchr(line, ';')); /* no why */
    in = pebs(64, 3);
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    perf_ring_plan_format(&p, line, sizeof line);
    CHECK(strstr(line, p.why) != NULL && p.why[0] != '\0');
    f.memlock_limit = UINT64_MAX;
    REQUIRE_VOID(perf_ring_plan(&in, &f, &p) == 0);
    perf_ring_plan_format(&p, line, sizeof line);
    CHECK(strstr(line, "budget no kernel limit") != NULL);
    CHECK(perf_ring_plan_format(&p, small, sizeof small) == small);
    CHECK(strlen(small) == sizeof small - 1);
}

int main(void)
{
    log_configure(TM_LOG_WARN, -1);
    test_list_good();
    test_list_hostile();
    test_list_overlong();
    test_list_fuzz();
    test_intersect();
    test_cpus_for_rings();
    test_facts_read();
    test_ranks();
    test_three_ranks();
    test_unlimited();
    test_nothing_fits();
    test_want_pages();
    test_rate();
    test_plan_fuzz();
    test_invalid();
    test_format();
    return tm_test_done(__FILE__);
}
