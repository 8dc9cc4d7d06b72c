/*
 * bench_uffd.c -- what one write fault of the userfaultfd sampler costs,
 * and the page budget per interval that keeps a program writing everywhere
 * under a given slowdown.
 *
 * Each round: collect() protects one page per 2 MiB of an arena buffer
 * (the densest the sampler goes), then one thread writes one byte per page
 * (the protected ones fault and wait for the sampler's service thread),
 * then writes again (nothing faults: the baseline).  Per fault =
 * (faulting pass - baseline pass) / faults of the round.
 *
 * Then the check: a thread writes one byte per page all over a 64 MiB arena
 * array for --seconds, with and without the sampler collecting every
 * interval at --budget pages (alternated, --rounds each), and the ratio of
 * their write rates is the slowdown a program that writes everywhere sees.
 *
 *   bench_uffd [--pages N] [--rounds R] [--interval-ms MS] [--slowdown PCT]
 *              [--budget B] [--seconds S]
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "profiler.h"
#include "bench_util.h"

static _Atomic uint64_t faults;

static void on_sample(void *ctx, uintptr_t addr, uint32_t weight)
{
    (void)ctx;
    (void)addr;
    (void)weight;
    atomic_fetch_add_explicit(&faults, 1, memory_order_relaxed);
}

static void on_lost(void *ctx, uint64_t n)
{
    (void)ctx;
    (void)n;
}

static void write_pages(volatile char *p, size_t npages, size_t page, char v)
{
    for (size_t i = 0; i < npages; i++)
        p[i * page] = v;
}

typedef struct sweeper {
    volatile char *p;
    size_t npages, page;
    _Atomic bool stop;
    uint64_t pages_written;
} sweeper_t;

static void *sweep(void *arg)
{
    sweeper_t *w = arg;
    uint64_t n = 0;
    for (char v = 0; !atomic_load_explicit(&w->stop, memory_order_relaxed);
         v++) {
        write_pages(w->p, w->npages, w->page, v);
        n += w->npages;
    }
    w->pages_written = n;
    return NULL;
}

/* Pages written per second by a sweeping thread over `seconds`, with the
 * sampler collecting every interval when s is not NULL. */
static double sweep_rate(sampler_t *s, char *buf, size_t npages, size_t page,
                         double seconds, unsigned long long interval_ms)
{
    sweeper_t w = {.p = buf, .npages = npages, .page = page};
    pthread_t t;
    int rc = pthread_create(&t, NULL, sweep, &w);
    if (rc != 0)
        die_errno(rc, "pthread_create");
    uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    while (bench_now_ns() < end) {
        struct timespec ts = {0, (long)interval_ms * 1000000L};
        nanosleep(&ts, NULL);
        if (s != NULL)
            s->ops->collect(s, bench_now_ns() - t0);
    }
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    return (double)w.pages_written / ((double)(bench_now_ns() - t0) / 1e9);
}

static void check_budget(unsigned budget, unsigned rounds, double seconds,
                         unsigned long long interval_ms, size_t page)
{
    size_t npages = (64u << 20) / page;
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    char *buf = a ? tm_arena_aligned_alloc(a, page, npages * page) : NULL;
    if (buf == NULL)
        die_errno(errno, "64 MiB arena array");
    memset(buf, 1, npages * page);
    prof_options_t o;
    memset(&o, 0, sizeof o);
    o.uffd_pages = budget;
    prof_sink_t sink = {on_sample, on_lost, NULL};
    double plain[64], sampled[64];
    uint64_t f0 = atomic_load(&faults);
    for (unsigned r = 0; r < rounds; r++) {
        sampler_t s = {.ops = &sampler_uffd_ops};
        if (s.ops->open(&s, &o, &sink) != 0)
            die_errno(errno, "sampler open");
        if (r % 2) {
            plain[r] = sweep_rate(NULL, buf, npages, page, seconds, interval_ms);
            sampled[r] = sweep_rate(&s, buf, npages, page, seconds, interval_ms);
        } else {
            sampled[r] = sweep_rate(&s, buf, npages, page, seconds, interval_ms);
            plain[r] = sweep_rate(NULL, buf, npages, page, seconds, interval_ms);
        }
        s.ops->close(&s);
    }
    double p = bench_median(plain, rounds), q = bench_median(sampled, rounds);
    printf("check: budget %u pages / %llu ms, 64 MiB swept: %.3g pages/s "
           "plain, %.3g sampled -> slowdown %.2f%% (%llu faults)\n", budget,
           interval_ms, p, q, (p / q - 1.0) * 100.0,
           (unsigned long long)(atomic_load(&faults) - f0));
    tm_free(buf);
    tm_arena_destroy(a);
}

int main(int argc, char **argv)
{
    unsigned long long npages = 65536, interval_ms = 100;
    unsigned rounds = 7;
    double slowdown = 2.0, seconds = 1.0;
    unsigned long long budget = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--pages")))
            npages = bench_parse_count("--pages", v);
        else if ((v = bench_opt(argc, argv, &i, "--rounds")))
            rounds = bench_parse_rounds(v);
        else if ((v = bench_opt(argc, argv, &i, "--interval-ms")))
            interval_ms = bench_parse_count("--interval-ms", v);
        else if ((v = bench_opt(argc, argv, &i, "--slowdown")))
            slowdown = strtod(v, NULL);
        else if ((v = bench_opt(argc, argv, &i, "--budget")))
            budget = bench_parse_count("--budget", v);
        else if ((v = bench_opt(argc, argv, &i, "--seconds")))
            seconds = strtod(v, NULL);
        else
            die("usage: %s [--pages N] [--rounds R] [--interval-ms MS] "
                "[--slowdown PCT] [--budget B] [--seconds S]", argv[0]);
    }
    if (rounds > 64)
        rounds = 64;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_t *a = tm_arena_create(&pl);
    if (a == NULL)
        die_errno(errno, "tm_arena_create");
    char *buf = tm_arena_aligned_alloc(a, page, npages * page);
    if (buf == NULL)
        die_errno(errno, "tm_arena_malloc of %llu pages", npages);
    memset(buf, 1, npages * page);

    prof_options_t o;
    memset(&o, 0, sizeof o);
    o.uffd_pages = (unsigned)(npages * 4); /* one page per 2 MiB */
    prof_sink_t sink = {on_sample, on_lost, NULL};
    sampler_t s = {.ops = &sampler_uffd_ops};
    if (s.ops->open(&s, &o, &sink) != 0) {
        printf("bench_uffd: userfaultfd unavailable (errno %d %s)\n", errno,
               strerror(errno));
        return 0;
    }
    double fault_ns[64], base_ns[64], protect_ns[64];
    uint64_t short_rounds = 0;
    for (unsigned r = 0; r < rounds; r++) {
        uint64_t before = atomic_load(&faults);
        uint64_t t0 = bench_now_ns();
        s.ops->collect(&s, r);
        uint64_t t1 = bench_now_ns();
        write_pages(buf, npages, page, (char)r);
        uint64_t t2 = bench_now_ns();
        write_pages(buf, npages, page, (char)(r + 1));
        uint64_t t3 = bench_now_ns();
        uint64_t nf = atomic_load(&faults) - before;
        size_t expect = npages * page / (2u << 20);
        if (nf + 1 < expect)
            short_rounds++; /* some blocks were not protected */
        double per = nf ? (double)nf : 1.0;
        protect_ns[r] = (double)(t1 - t0) / per;
        fault_ns[r] = (double)(t2 - t1) / per;
        base_ns[r] = (double)(t3 - t2) / per;
    }
    s.ops->close(&s);

    double f = bench_median(fault_ns, rounds), b = bench_median(base_ns, rounds);
    double per_fault = f - b, prot = bench_median(protect_ns, rounds);
    double allowed_ns = (double)interval_ms * 1e6 * slowdown / 100.0;
    printf("pages %llu, rounds %u, faults seen %llu (short rounds %llu)\n",
           npages, rounds, (unsigned long long)atomic_load(&faults),
           (unsigned long long)short_rounds);
    printf("pass per fault: faulting %.0f ns, baseline %.1f ns -> one fault "
           "costs the writer %.0f ns (min %.0f, max %.0f)\n", f, b, per_fault,
           bench_min(fault_ns, rounds) - b, bench_max(fault_ns, rounds) - b);
    printf("collect per protected page (profiling thread): %.0f ns\n", prot);
    printf("budget for <= %.1f%% writer slowdown per %llu ms interval: %.0f "
           "pages\n", slowdown, interval_ms, allowed_ns / per_fault);
    tm_free(buf);
    tm_arena_destroy(a);
    check_budget(budget ? (unsigned)budget : (unsigned)(allowed_ns / per_fault),
                 rounds < 5 ? rounds : 5, seconds, interval_ms, page);
    return 0;
}
