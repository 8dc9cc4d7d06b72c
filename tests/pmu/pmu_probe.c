/*
 * pmu_probe.c -- the workload of scripts/pmu-smoke.sh: a program whose
 * memory accesses are known, to be run under libtiermem-preload.so with
 * the profiler on, so that its profile can be checked against them.
 *
 *   pmu_probe --pmu-check
 *       One perf_event_open of PERF_TYPE_HARDWARE / PERF_COUNT_HW_CPU_CYCLES
 *       (user space only) on this process.  libpfm4 names a PMU from CPUID
 *       even in VMs where the kernel refuses every hardware event, so this
 *       is the test that counts.  Prints one line; exit status 0 when the
 *       kernel accepts it, 3 when there is no PMU (ENOENT, ENODEV,
 *       EOPNOTSUPP), 4 for any other refusal (EACCES: perf_event_paranoid).
 *
 *   pmu_probe [--seconds S] [--mb N] [--no-fork]
 *       The workload.  Three arrays of N MiB (default 64), each from its own
 *       call site (alloc_hot, alloc_cold, alloc_child: separate noinline
 *       functions, so each gets its own site and arena).  One worker thread
 *       starts at once, before the first allocation; two more start 1 s
 *       later.  Each worker sweeps the hot array 10 times for every sweep
 *       of the cold one (volatile 8-byte loads, one load per element, so
 *       the loads are countable).  After 1.5 s the main thread forks once
 *       (unless --no-fork): the child writes and then sweeps the third
 *       array for 1 s and leaves with _exit.  The parent never touches the
 *       third array, so every sample in its arena would be the child's.
 *       After S seconds (default 4) the workers stop.
 *
 * What it prints, on stdout, for the script to read:
 *   pmu-probe: arenas hot H cold C child K    (0 when no tiermem arena)
 *   pmu-probe: sweeps hot H cold C child K elements E loads L
 *   pmu-probe: done checksum X
 * The arenas come from tm_arena_of / tm_arena_id, looked up with dlsym, so
 * the program runs (and reports 0) without the preload library too.
 *
 * The child calls only async-signal-safe functions (clock_gettime, write,
 * _exit): the parent has threads when it forks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOT_PER_COLD 10

static const volatile uint64_t *hot_arr, *cold_arr;
static size_t n_elems;
static atomic_bool go, stop;
static atomic_ullong hot_sweeps, cold_sweeps;
static atomic_ullong checksum;

static void die(const char *what)
{
    fprintf(stderr, "pmu-probe: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ------------------------------------------------------------ pmu check */

static int pmu_check(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_CPU_CYCLES;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1,
                      PERF_FLAG_FD_CLOEXEC);
    if (fd >= 0) {
        if (close((int)fd) != 0)
            die("close of the perf event");
        printf("pmu-probe: pmu yes (perf_event_open of cpu-cycles "
               "accepted)\n");
        return 0;
    }
    int e = errno;
    bool none = e == ENOENT || e == ENODEV || e == EOPNOTSUPP;
    printf("pmu-probe: pmu %s: perf_event_open of cpu-cycles failed: errno "
           "%d (%s)\n", none ? "no" : "refused", e, strerror(e));
    return none ? 3 : 4;
}

/* ------------------------------------------------------------ workload */

static double now_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0; /* CLOCK_MONOTONIC does not fail */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s,
                          .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        if (errno != EINTR)
            die("nanosleep");
}

/* Three call sites, three sites.  noinline and the use of the result
 * after malloc keep each a frame of its own (no inlining, no tail call). */
static __attribute__((noinline)) uint64_t *alloc_hot(size_t bytes)
{
    uint64_t *p = malloc(bytes);
    if (p == NULL)
        die("malloc of the hot array");
    return p;
}

static __attribute__((noinline)) uint64_t *alloc_cold(size_t bytes)
{
    uint64_t *p = malloc(bytes);
    if (p == NULL)
        die("malloc of the cold array");
    return p;
}

static __attribute__((noinline)) uint64_t *alloc_child(size_t bytes)
{
    uint64_t *p = malloc(bytes);
    if (p == NULL)
        die("malloc of the child's array");
    return p;
}

static void fill(uint64_t *a, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        a[i] = seed + i;
}

/* One load per element: volatile keeps the compiler from vectorizing or
 * dropping them, so a sweep is exactly n loads of the array. */
static __attribute__((noinline)) uint64_t sweep(const volatile uint64_t *a,
                                                size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i];
    return s;
}

static void *worker(void *arg)
{
    (void)arg;
    while (!atomic_load(&go))
        sleep_s(0.001);
    unsigned long long hot = 0, cold = 0;
    uint64_t sum = 0;
    while (!atomic_load(&stop)) {
        for (int k = 0; k < HOT_PER_COLD && !atomic_load(&stop); k++) {
            sum += sweep(hot_arr, n_elems);
            hot++;
        }
        if (atomic_load(&stop))
            break;
        sum += sweep(cold_arr, n_elems);
        cold++;
    }
    atomic_fetch_add(&hot_sweeps, hot);
    atomic_fetch_add(&cold_sweeps, cold);
    atomic_fetch_add(&checksum, sum);
    return NULL;
}

/* The fork child: async-signal-safe calls only.  Writes its sweep count
 * to fd and leaves. */
static __attribute__((noreturn)) void child_run(uint64_t *a, size_t n,
                                                int fd, double seconds)
{
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    uint64_t sweeps = 0, sum = 0;
    double end = now_s() + seconds;
    while (now_s() < end) {
        sum += sweep(a, n);
        sweeps++;
    }
    uint64_t msg[2] = {sweeps, sum};
    ssize_t w = write(fd, msg, sizeof msg);
    _exit(w == (ssize_t)sizeof msg ? 0 : 1);
}

static unsigned arena_id(const void *p)
{
    void *of = dlsym(RTLD_DEFAULT, "tm_arena_of");
    void *id = dlsym(RTLD_DEFAULT, "tm_arena_id");
    if (of == NULL || id == NULL)
        return 0;
    void *(*arena_of)(const void *);
    unsigned (*arena_id_of)(const void *);
    /* POSIX: a dlsym result converts to a function pointer; copy the
     * bits so the compiler does not warn about the cast. */
    memcpy(&arena_of, &of, sizeof of);
    memcpy(&arena_id_of, &id, sizeof id);
    void *arena = arena_of(p);
    return arena != NULL ? arena_id_of(arena) : 0;
}

static void start_thread(pthread_t *t)
{
    int rc = pthread_create(t, NULL, worker, NULL);
    if (rc != 0) {
        errno = rc;
        die("pthread_create");
    }
}

static double arg_number(const char *opt, const char *v, double lo,
                         double hi)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(d >= lo && d <= hi)) {
        fprintf(stderr, "pmu-probe: bad %s %s (want %g to %g)\n", opt, v,
                lo, hi);
        exit(2);
    }
    return d;
}

int main(int argc, char **argv)
{
    double seconds = 4;
    size_t mb = 64;
    bool do_fork = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pmu-check") == 0 && argc == 2)
            return pmu_check();
        if (strcmp(argv[i], "--no-fork") == 0)
            do_fork = false;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = arg_number("--seconds", argv[++i], 2.5, 3600);
        else if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
            mb = (size_t)arg_number("--mb", argv[++i], 1, 65536);
        else {
            fprintf(stderr, "usage: pmu_probe --pmu-check\n"
                            "       pmu_probe [--seconds S] [--mb N] "
                            "[--no-fork]\n");
            return 2;
        }
    }
    size_t bytes = mb << 20;
    n_elems = bytes / sizeof(uint64_t);
    double t0 = now_s();

    pthread_t t[3];
    start_thread(&t[0]); /* before the first allocation */

    uint64_t *hot = alloc_hot(bytes);
    uint64_t *cold = alloc_cold(bytes);
    uint64_t *child = alloc_child(bytes); /* touched by the child only */
    fill(hot, n_elems, 1);
    fill(cold, n_elems, 2);
    hot_arr = hot;
    cold_arr = cold;
    printf("pmu-probe: arenas hot %u cold %u child %u\n", arena_id(hot),
           arena_id(cold), arena_id(child));
    if (fflush(stdout) != 0)
        die("fflush");
    atomic_store(&go, true);

    sleep_s(1.0);
    start_thread(&t[1]); /* after the profiler has been running 1 s */
    start_thread(&t[2]);

    int pipefd[2] = {-1, -1};
    pid_t pid = -1;
    if (do_fork) {
        sleep_s(0.5);
        if (pipe(pipefd) != 0)
            die("pipe");
        pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            close(pipefd[0]);
            child_run(child, n_elems, pipefd[1], 1.0);
        }
        if (close(pipefd[1]) != 0)
            die("close of the pipe");
    }

    double left = seconds - (now_s() - t0);
    if (left > 0)
        sleep_s(left);
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++) {
        int rc = pthread_join(t[i], NULL);
        if (rc != 0) {
            errno = rc;
            die("pthread_join");
        }
    }

    uint64_t child_msg[2] = {0, 0};
    if (do_fork) {
        int status;
        while (waitpid(pid, &status, 0) < 0)
            if (errno != EINTR)
                die("waitpid");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "pmu-probe: the fork child failed (status "
                            "0x%x)\n", (unsigned)status);
            return 1;
        }
        ssize_t r = read(pipefd[0], child_msg, sizeof child_msg);
        if (r != (ssize_t)sizeof child_msg) {
            fprintf(stderr, "pmu-probe: no sweep count from the child (read "
                            "returned %zd)\n", r);
            return 1;
        }
        if (close(pipefd[0]) != 0)
            die("close of the pipe");
    }

    unsigned long long h = atomic_load(&hot_sweeps);
    unsigned long long c = atomic_load(&cold_sweeps);
    printf("pmu-probe: sweeps hot %llu cold %llu child %llu elements %zu "
           "loads %llu\n", h, c, (unsigned long long)child_msg[0], n_elems,
           (h + c) * (unsigned long long)n_elems);
    printf("pmu-probe: done checksum %llx\n",
           (unsigned long long)(atomic_load(&checksum) ^ child_msg[1]));
    free(hot);
    free(cold);
    free(child);
    return fflush(stdout) == 0 ? 0 : 1;
}
