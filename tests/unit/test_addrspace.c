/*
 * test_addrspace.c -- empty sites' arenas give their address space back.
 *
 * The pattern of issue 12 defect 5: phases that each allocate PHASE bytes
 * from a new site and free all of it.  Each site has its own arena, and an
 * arena keeps its address space while it lives, so without reclaim the
 * address space grows by a phase per phase, and under RLIMIT_AS the second
 * phase gets NULL.  Checked here:
 *   1. under an RLIMIT_AS that leaves room for about one phase and a half
 *      beyond what the process maps after a first phase, six phases from
 *      six new sites all succeed (a failed mapping reclaims the empty
 *      arenas and retries);
 *   2. without a limit, VmSize and tiermem's mapped bytes stay within a few
 *      phases over twelve phases (new sites reclaim idle empty arenas);
 *   3. threads allocating and freeing from a few sites while another
 *      reclaims again and again: every block keeps its contents, every
 *      site ends empty.
 * Under ASan and TSan RLIMIT_AS counts shadow memory, so part 1 is skipped
 * there and part 2 checks tiermem's own mapped bytes only.
 */
#include "config.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sites.h"
#include "../tm_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif
#define SANITIZED (TEST_ASAN || TM_TEST_TSAN)

#define MIB ((size_t)1 << 20)
#define PHASE (96 * MIB) /* above SITE_RECLAIM_IDLE_MIN */
#define BLOCK MIB
#define NBLOCKS (PHASE / BLOCK)

static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

static size_t tm_mapped(void)
{
    tm_stats_t st;
    tm_stats_get(&st);
    return st.bytes_mapped;
}

/* One phase: PHASE bytes from site `id`, each block touched, then freed.
 * Returns how many blocks were NULL; *peak gets the highest VmSize. */
static unsigned phase(int id, size_t *peak)
{
    static void *blk[NBLOCKS];
    unsigned failed = 0;
    for (size_t i = 0; i < NBLOCKS; i++) {
        blk[i] = tm_site_malloc(id, BLOCK);
        if (blk[i] == NULL)
            failed++;
        else
            memset(blk[i], (int)i, 4096);
    }
    size_t v = vm_size();
    if (peak && v > *peak)
        *peak = v;
    for (size_t i = 0; i < NBLOCKS; i++)
        tm_free(blk[i]);
    return failed;
}

static void test_under_limit(void)
{
    size_t before = vm_size();
    REQUIRE_VOID(before != 0);
    size_t peak = before;
    REQUIRE_VOID(phase(100, &peak) == 0);
    size_t one = peak - before; /* what one phase adds at its peak */
    struct rlimit old;
    REQUIRE_VOID(getrlimit(RLIMIT_AS, &old) == 0);
    size_t limit = vm_size() + one / 2 + 16 * MIB;
    struct rlimit lim = {limit, old.rlim_max};
    REQUIRE_VOID(setrlimit(RLIMIT_AS, &lim) == 0);
    unsigned failed[6];
    for (int p = 0; p < 6; p++)
        failed[p] = phase(101 + p, NULL);
    size_t after = vm_size();
    REQUIRE_VOID(setrlimit(RLIMIT_AS, &old) == 0);
    for (int p = 0; p < 6; p++)
        CHECK_MSG(failed[p] == 0,
                  "phase %d under RLIMIT_AS %zu MiB (a phase adds %zu MiB): "
                  "%u of %zu blocks NULL", p + 1, limit / MIB, one / MIB,
                  failed[p], (size_t)NBLOCKS);
    CHECK(after <= limit);
    printf("under RLIMIT_AS %zu MiB: 6 phases of %zu MiB, VmSize %zu MiB\n",
           limit / MIB, PHASE / MIB, after / MIB);
}

static void test_bounded(void)
{
    size_t v0 = vm_size(), m0 = tm_mapped();
    size_t vpeak = v0, mpeak = m0;
    size_t peak = v0;
    REQUIRE_VOID(phase(200, &peak) == 0);
    size_t one = peak - v0;
    for (int p = 1; p < 12; p++) {
        CHECK(phase(200 + p, &vpeak) == 0);
        size_t m = tm_mapped();
        mpeak = m > mpeak ? m : mpeak;
    }
    /* Idle arenas go at the second new site after they empty: about two
     * phases' worth stays mapped, never twelve. */
    CHECK_MSG(mpeak <= m0 + 4 * PHASE,
              "tiermem mapped %zu MiB over 12 phases of %zu MiB (was %zu)",
              mpeak / MIB, PHASE / MIB, m0 / MIB);
    if (!SANITIZED)
        CHECK_MSG(vpeak <= v0 + 4 * one,
                  "VmSize peaked at %zu MiB over 12 phases (start %zu MiB, "
                  "a phase adds %zu MiB)", vpeak / MIB, v0 / MIB, one / MIB);
    printf("12 phases without a limit: VmSize %zu -> peak %zu MiB, tiermem "
           "mapped %zu -> peak %zu MiB\n", v0 / MIB, vpeak / MIB, m0 / MIB,
           mpeak / MIB);
}

/* ------------------------------------------------------------ threads */

#define THREADS 4
#define ROUNDS 400
static _Atomic bool stop;
static _Atomic unsigned corrupt;

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        int id = 300 + (int)((seed + (unsigned)r) % 6);
        size_t size = 4096 << (r % 6);
        unsigned char *p = tm_site_malloc(id, size);
        if (p == NULL)
            continue;
        memset(p, (int)(seed + r) & 0xff, size);
        unsigned char *q = tm_site_realloc(id, p, size * 2);
        if (q != NULL)
            p = q;
        for (size_t i = 0; i < size; i += 512)
            if (p[i] != ((seed + r) & 0xff))
                atomic_fetch_add(&corrupt, 1);
        tm_free(p);
    }
    return NULL;
}

static void *reclaimer(void *arg)
{
    size_t *bytes = arg;
    while (!atomic_load(&stop))
        *bytes += site_arenas_reclaim(false, NULL);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[THREADS], r;
    size_t reclaimed = 0;
    REQUIRE_VOID(pthread_create(&r, NULL, reclaimer, &reclaimed) == 0);
    for (uintptr_t i = 0; i < THREADS; i++)
        REQUIRE_VOID(pthread_create(&t[i], NULL, churn, (void *)i) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop, true);
    pthread_join(r, NULL);
    CHECK(atomic_load(&corrupt) == 0);
    unsigned n = tm_site_count();
    for (unsigned i = 1; i < n; i++) {
        tm_site_info_t info;
        if (tm_site_info(i, &info) == 0)
            CHECK_MSG(info.stats.live == 0, "site %u: %llu bytes live", i,
                      (unsigned long long)info.stats.live);
    }
    /* everything is free now: every site arena can go */
    size_t left = site_arenas_reclaim(false, NULL);
    printf("threads: %zu MiB reclaimed while they ran, %zu MiB after\n",
           reclaimed / MIB, left / MIB);
    CHECK(reclaimed + left > 0);
}

int main(void)
{
    /* one arena per site, whatever the environment says */
    unsetenv("TIERMEM_LAYOUT");
    unsetenv("SH_ARENA_LAYOUT");
    if (SANITIZED)
        tm_test_skip("under RLIMIT_AS", "a sanitizer's shadow memory counts "
                     "against the limit");
    else
        test_under_limit();
    test_bounded();
    test_threads();
    return tm_test_done(__FILE__);
}
