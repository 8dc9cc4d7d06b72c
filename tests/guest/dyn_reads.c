/*
 * dyn_reads.c -- a read-mostly hot array reaches the fast tier under the
 * refs sampler, and does not under the uffd sampler (which sees writes
 * only): the online policy is fed by reads, and this test tells the two
 * apart.
 *
 * A DYNAMIC guest test (dyn_*.c): the parent runs itself twice under
 * LD_PRELOAD=$TM_PRELOAD_LIB with
 *
 *   TIERMEM_POLICY=online  TIERMEM_POLICY_EVERY=2
 *   TIERMEM_POLICY_CAPACITY=36M (the hot array fits, the cold one not)
 *   TIERMEM_POLICY_BUDGET=0  TIERMEM_DEFAULT_TIER=<slowest>
 *   TIERMEM_PROFILE_SAMPLER=refs, then =uffd  TIERMEM_PROFILE_INTERVAL=50ms
 *   TIERMEM_LOG=info  TIERMEM_LOG_FILE=/tmp/dyn_reads/<sampler>.log
 *
 * The child: a 24 MiB array written once and then only read, page by page,
 * in a loop, and a 48 MiB array written once and never again, from two
 * allocation sites (two arenas).  Both start on the slowest tier.
 *
 *   refs-cold-started-slow  right after its first touch, every page of the
 *                  cold array is on the slowest tier (the hot one may
 *                  already be moving: its first touch is an access too);
 *   refs-hot-on-fast   within DEADLINE_S of reading, every hot page is on
 *                  the fastest tier (a bound on the wait, not a speed);
 *   refs-cold-on-slow, refs-cold-stayed-slow  every observation had every
 *                  cold page on the slowest tier;
 *   refs-log-sampler   the log names refs as the sampler chosen;
 *   uffd-hot-stays-slow  the same program under uffd, read for CONTROL_S:
 *                  the hot array is not all on the fastest tier (uffd
 *                  cannot see the reads).  Were this ever to fail, the
 *                  refs checks would no longer show that reads are seen.
 *
 * On a guest with one node it skips.  Files stay in /tmp/dyn_reads/.
 */
#include "dyn.h"

#include <sys/prctl.h>

#define HOT_SIZE (24 * DYN_MIB)
#define COLD_SIZE (48 * DYN_MIB)
#define CAPACITY "36M"
#define DEADLINE_S 150
#define CONTROL_S 10
#define CHILD_DEADLINE_S 200
#define WORKDIR "/tmp/dyn_reads"

volatile char dyn_reads_marker;

__attribute__((noinline)) void *alloc_read_hot(size_t size)
{
    void *p = malloc(size);
    dyn_reads_marker = 'H';
    return p;
}

__attribute__((noinline)) void *alloc_read_cold(size_t size)
{
    void *p = malloc(size);
    dyn_reads_marker = 'C';
    return p;
}

/* One load per page, the last byte's page too (a block need not start on
 * a page boundary); the sum keeps the loads. */
static unsigned long read_pages(const volatile unsigned char *p, size_t size)
{
    unsigned long sum = p[size - 1];
    for (size_t i = 0; i < size; i += TG_PAGE)
        sum += p[i];
    return sum;
}

static void write_pages(volatile unsigned char *p, size_t size,
                        unsigned char v)
{
    for (size_t i = 0; i < size; i += TG_PAGE)
        p[i] = v;
    p[size - 1] = v;
}

/* Read the hot array until it is all on `fast` (refs) or for `for_s`
 * seconds (uffd); watch the cold array.  True when hot got there. */
static bool read_loop(const unsigned char *hot, const unsigned char *cold,
                      uint64_t fast, uint64_t slow, double for_s,
                      bool stop_when_fast, bool *cold_stayed, char *why,
                      size_t wl)
{
    char tmp[512];
    double t0 = dyn_now_s(), last_show = -100;
    bool hot_fast = false;
    unsigned long sum = 0, passes = 0;
    *cold_stayed = true;
    for (;;) {
        sum += read_pages(hot, HOT_SIZE);
        passes++;
        hot_fast = dyn_pages_in((void *)hot, HOT_SIZE, fast, why, wl);
        if (*cold_stayed &&
            !dyn_pages_in((void *)cold, COLD_SIZE, slow, tmp, sizeof tmp)) {
            *cold_stayed = false;
            tg_info("cold array left the slow nodes: %s", tmp);
        }
        double t = dyn_now_s() - t0;
        if (t - last_show >= 5 || hot_fast) {
            tg_info("%.1f s, %lu passes: hot %s", t, passes,
                    hot_fast ? "all on the fast nodes" : why);
            last_show = t;
        }
        if ((hot_fast && stop_when_fast) || t > for_s)
            break;
    }
    tg_info("read sum %lu", sum);
    return hot_fast;
}

static int child_main(const char *sampler)
{
    static char outbuf[4096]; /* stdout's buffer: not an arena block */
    setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf);
    bool refs = strcmp(sampler, "refs") == 0;
    dyn_tiers_t t;
    dyn_expected_tiers(tg_node_count(), &t);
    uint64_t fast = t.mask[0], slow = t.mask[t.n - 1];
    char name[64], why[512];
    if (!tg_check("thp-disable", prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0,
                  "prctl: %s", strerror(errno)))
        return tg_done();
    unsigned char *hot = alloc_read_hot(HOT_SIZE);
    unsigned char *cold = alloc_read_cold(COLD_SIZE);
    if (!tg_check(refs ? "refs-alloc" : "uffd-alloc", hot && cold,
                  "malloc failed"))
        return tg_done();
    write_pages(cold, COLD_SIZE, 'c');
    write_pages(hot, HOT_SIZE, 'h'); /* written once; read from now on */
    snprintf(name, sizeof name, "%s-cold-started-slow", sampler);
    tg_check(name, dyn_pages_in(cold, COLD_SIZE, slow, why, sizeof why),
             "cold array after its first touch: %s", why);
    bool cold_stayed;
    bool hot_fast = read_loop(hot, cold, fast, slow,
                              refs ? DEADLINE_S : CONTROL_S, refs,
                              &cold_stayed, why, sizeof why);
    if (refs) {
        tg_check("refs-hot-on-fast", hot_fast,
                 "after %d s of reads: hot array %p: %s", DEADLINE_S,
                 (void *)hot, why);
        tg_check("refs-cold-on-slow",
                 dyn_pages_in(cold, COLD_SIZE, slow, why, sizeof why),
                 "cold array %p: %s", (void *)cold, why);
        tg_check("refs-cold-stayed-slow", cold_stayed,
                 "the cold array left the slow nodes at some point");
    } else {
        tg_check("uffd-hot-stays-slow", !hot_fast,
                 "the uffd sampler, which sees writes only, got a read-only "
                 "array onto the fast tier in %d s: this test no longer "
                 "shows that refs sees reads", CONTROL_S);
    }
    return tg_done();
}

/* The log names the sampler the profiler chose. */
static void check_log_sampler(const char *path, const char *sampler)
{
    FILE *f = fopen(path, "re");
    char line[1024], want[64], check[64];
    snprintf(want, sizeof want, "sampling with %s", sampler);
    snprintf(check, sizeof check, "%s-log-sampler", sampler);
    bool found = false;
    while (f && fgets(line, sizeof line, f)) {
        found |= strstr(line, want) != NULL;
        if (strstr(line, "online: ") || strstr(line, "sampler"))
            tg_info("%s log: %s", sampler, line);
    }
    tg_check(check, found, "%s: no \"%s\" line%s", path, want,
             f ? "" : " (no log)");
    if (f)
        fclose(f);
}

static void run_with(const char *sampler, const char *preload,
                     unsigned slowest)
{
    char deftier[64], samp[64], log[128], logvar[160], check[64];
    snprintf(deftier, sizeof deftier, "TIERMEM_DEFAULT_TIER=%u", slowest);
    snprintf(samp, sizeof samp, "TIERMEM_PROFILE_SAMPLER=%s", sampler);
    snprintf(log, sizeof log, WORKDIR "/%s.log", sampler);
    snprintf(logvar, sizeof logvar, "TIERMEM_LOG_FILE=%s", log);
    snprintf(check, sizeof check, "%s-run", sampler);
    const char *env[] = {
        preload, "TIERMEM_POLICY=online", "TIERMEM_POLICY_EVERY=2",
        "TIERMEM_POLICY_CAPACITY=" CAPACITY, "TIERMEM_POLICY_BUDGET=0",
        deftier, samp, "TIERMEM_PROFILE_INTERVAL=50ms", "TIERMEM_LOG=info",
        logvar,
    };
    int st = dyn_run_self(sampler, "-", env, sizeof env / sizeof env[0],
                          check, "the run ", CHILD_DEADLINE_S);
    (void)dyn_child_ok(check, st);
    check_log_sampler(log, sampler);
}

int main(int argc, char **argv)
{
    tg_begin("dyn_reads");
    if (argc == 3 && (strcmp(argv[1], "refs") == 0 ||
                      strcmp(argv[1], "uffd") == 0))
        return child_main(argv[1]);
    unsigned nodes = tg_node_count();
    char preload[600];
    if (!dyn_preload_var(nodes, preload, sizeof preload))
        return tg_done();
    dyn_tiers_t t;
    if (!dyn_check_tiers(nodes, &t))
        return tg_done();
    const char *const old[] = {WORKDIR "/refs.log", WORKDIR "/uffd.log",
                               NULL};
    if (!dyn_workdir(WORKDIR, NULL, old))
        return tg_done();
    run_with("refs", preload, (unsigned)(t.n - 1));
    run_with("uffd", preload, (unsigned)(t.n - 1));
    return tg_done();
}
