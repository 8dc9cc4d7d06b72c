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
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "profiler.h"
#include "../tm_test.h"

#define MiB ((size_t)1 << 20)

static size_t page_size;

/* ---------------------------------------------------------------- the sink */

static _Atomic uint64_t per_arena[TM_MAX_ARENAS + 1]; /* [0]: not ours */
static _Atomic uint64_t weighted;
static _Atomic uint64_t foreign_hits; /* samples inside `foreign` */
static _Atomic uint64_t watch_hits;   /* samples at `watch_page` */
static _Atomic uintptr_t foreign_lo, foreign_hi, watch_page;

static void count_sample(void *ctx, uintptr_t addr, uint32_t weight)
{
    (void)ctx;
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
}

static uint64_t samples_of(tm_arena_t *a)
{
    return atomic_load(&per_arena[tm_arena_id(a)]);
}

/* ---------------------------------------------------------------- helpers */

static int sampler_open_pages(sampler_t *s, unsigned pages)
{
    prof_options_t o;
    memset(&o, 0, sizeof o);
    o.uffd_pages = pages;
    prof_sink_t sink = {count_sample, count_lost, NULL};
    memset(s, 0, sizeof *s);
    s->ops = &sampler_uffd_ops;
    return s->ops->open(s, &o, &sink);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
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

/* 5: read(2) into a protected page: the kernel's own write faults, is
 * served, and the data arrives (no EFAULT). */
static void test_kernel_write(void)
{
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    REQUIRE_VOID(a != NULL);
    size_t size = 64 * 1024;
    char *buf = tm_arena_malloc(a, size);
    REQUIRE_VOID(buf != NULL);
    memset(buf, 0, size);
    char *target = (char *)(((uintptr_t)buf + size / 2) & ~(page_size - 1));
    atomic_store(&watch_page, (uintptr_t)target);

    int p[2];
    REQUIRE_VOID(pipe(p) == 0);
    static const char msg[] = "written by the kernel";
    REQUIRE_VOID(write(p[1], msg, sizeof msg) == (ssize_t)sizeof msg);

    counts_reset();
    sampler_t s;
    /* A budget larger than every arena's pages: stride 1, all protected. */
    REQUIRE_VOID(sampler_open_pages(&s, 1u << 20) == 0);
    s.ops->collect(&s, 1);
    ssize_t n = read(p[0], target, sizeof msg);
    CHECK(n == (ssize_t)sizeof msg);
    CHECK(memcmp(target, msg, sizeof msg) == 0);
    CHECK_MSG(atomic_load(&watch_hits) == 1,
              "the target page gave %llu samples, expected 1",
              (unsigned long long)atomic_load(&watch_hits));
    /* Its first write un-protected it: a second write does not fault. */
    target[1] = 'x';
    CHECK(atomic_load(&watch_hits) == 1);
    s.ops->close(&s);
    CHECK(count_uffds() == 0);
    close(p[0]);
    close(p[1]);
    atomic_store(&watch_page, 0);
    tm_arena_destroy(a);
}

int main(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        printf("skip: userfaultfd unavailable (errno %d %s): needs root or "
               "vm.unprivileged_userfaultfd=1\n", errno, strerror(errno));
        return 77;
    }
    close(fd);
    sampler_t probe;
    if (sampler_open_pages(&probe, 16) != 0) {
        printf("skip: the uffd sampler cannot open here (errno %d %s)\n",
               errno, strerror(errno));
        return 77;
    }
    probe.ops->close(&probe);
    /* A writer left blocked on a fault must fail the test, not hang it. */
    alarm(120);

    test_hot_cold();
    test_churn();
    test_kernel_write();
    return tm_test_done(__FILE__);
}
