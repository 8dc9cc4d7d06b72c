/*
 * test_policy.c -- the policy's settings and its start-up: TIERMEM_POLICY*
 * parsing (each bad value: one warning, the default kept), the online
 * configuration built from the tiers, the start from the environment on
 * this one-node machine, and the online policy moving REAL arenas through
 * the profiler, the replay sampler and tm_arena_migrate.
 *
 * This machine has one NUMA node, so the end-to-end run uses a topology of
 * two tiers that are both node 0: a move is then a real mbind of the
 * arena's extents (observable as the arena's placement mode: BIND where it
 * was created, PREFERRED once the policy moved it) that leaves the pages
 * where they are.  The guest rig checks where pages really go
 * (tests/guest/dyn_policy.c).  A thread allocates and frees in both arenas
 * all along, so the sanitizer builds see migration race with allocation.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"
#include "../tm_test.h"
#include "../observe.h"

#define MiB ((uint64_t)1 << 20)

static char dir[] = "/tmp/tm_test_policy.XXXXXX";

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---------------------------------------------------------------- settings */

static void test_defaults(void)
{
    policy_options_t o;
    char *none[] = {NULL};
    log_reset(TM_LOG_INFO);
    policy_options_parse(none, &o);
    CHECK(o.kind == POLICY_NONE && o.every == 4 && o.ncap == 0);
    CHECK(o.headroom == 0.05 && o.hysteresis == 1.5 && o.min_stay == 2);
    CHECK(o.budget_bytes_per_s == 256.0 * 1024 * 1024);
    CHECK(o.move_cost_ns_per_byte == 0.5);
    CHECK(log_count("warning", NULL) == 0);
}

static void test_good_values(void)
{
    char *env[] = {"TIERMEM_POLICY=online", "TIERMEM_POLICY_EVERY=7",
                   "TIERMEM_POLICY_CAPACITY=64M,25%,auto",
                   "TIERMEM_POLICY_HEADROOM=20%", "TIERMEM_POLICY_BUDGET=1G",
                   "TIERMEM_POLICY_HYSTERESIS=2.5",
                   "TIERMEM_POLICY_MIN_STAY=0", "TIERMEM_POLICY_MOVE_COST=0",
                   NULL};
    policy_options_t o;
    log_reset(TM_LOG_INFO);
    policy_options_parse(env, &o);
    CHECK(o.kind == POLICY_ONLINE && o.every == 7);
    CHECK(o.ncap == 3);
    CHECK(o.cap[0].kind == GUIDE_CAP_BYTES && o.cap[0].bytes == 64 * MiB);
    CHECK(o.cap[1].kind == GUIDE_CAP_PERCENT && o.cap[1].percent == 25.0);
    CHECK(o.cap[2].kind == GUIDE_CAP_AUTO);
    CHECK(o.headroom > 0.1999 && o.headroom < 0.2001);
    CHECK(o.budget_bytes_per_s == 1024.0 * MiB);
    CHECK(o.hysteresis == 2.5 && o.min_stay == 0);
    CHECK(o.move_cost_ns_per_byte == 0.0);
    CHECK(log_count("warning", NULL) == 0);

    char *frac[] = {"TIERMEM_POLICY_HEADROOM=0.25", "TIERMEM_POLICY=NONE",
                    "TIERMEM_POLICY_BUDGET=0", NULL};
    policy_options_parse(frac, &o);
    CHECK(o.headroom == 0.25 && o.kind == POLICY_NONE);
    CHECK(o.budget_bytes_per_s == 0.0);
}

/* Each bad value: exactly one warning naming it, and the default. */
static void test_bad_values(void)
{
    static const struct {
        const char *entry, *name;
    } bad[] = {
        {"TIERMEM_POLICY=offline", "TIERMEM_POLICY="},
        {"TIERMEM_POLICY_EVERY=0", "TIERMEM_POLICY_EVERY="},
        {"TIERMEM_POLICY_EVERY=4x", "TIERMEM_POLICY_EVERY="},
        {"TIERMEM_POLICY_CAPACITY=12Q", "TIERMEM_POLICY_CAPACITY="},
        {"TIERMEM_POLICY_CAPACITY=64M,,1G", "TIERMEM_POLICY_CAPACITY="},
        {"TIERMEM_POLICY_CAPACITY=150%", "TIERMEM_POLICY_CAPACITY="},
        {"TIERMEM_POLICY_HEADROOM=95%", "TIERMEM_POLICY_HEADROOM="},
        {"TIERMEM_POLICY_HEADROOM=-0.1", "TIERMEM_POLICY_HEADROOM="},
        {"TIERMEM_POLICY_BUDGET=fast", "TIERMEM_POLICY_BUDGET="},
        {"TIERMEM_POLICY_HYSTERESIS=0.5", "TIERMEM_POLICY_HYSTERESIS="},
        {"TIERMEM_POLICY_MIN_STAY=-1", "TIERMEM_POLICY_MIN_STAY="},
        {"TIERMEM_POLICY_MOVE_COST=nan", "TIERMEM_POLICY_MOVE_COST="},
    };
    policy_options_t dflt, o;
    char *none[] = {NULL};
    policy_options_parse(none, &dflt);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *env[] = {(char *)bad[i].entry, NULL};
        log_reset(TM_LOG_INFO);
        policy_options_parse(env, &o);
        CHECK_MSG(log_count("warning", NULL) == 1 &&
                      log_count("warning", bad[i].name, "using", NULL) == 1,
                  "%s: %s", bad[i].entry, log_text());
        CHECK_MSG(memcmp(&o, &dflt, sizeof o) == 0, "%s changed a setting",
                  bad[i].entry);
    }
}

static void test_local_ranks(void)
{
    char *none[] = {NULL};
    char *ompi[] = {"OMPI_COMM_WORLD_LOCAL_SIZE=4", NULL};
    char *hydra[] = {"MPI_LOCALNRANKS=3", NULL};
    char *junk[] = {"OMPI_COMM_WORLD_LOCAL_SIZE=0", "MPI_LOCALNRANKS=x",
                    "MV2_COMM_WORLD_LOCAL_SIZE=2", NULL};
    CHECK(settings_local_ranks(none) == 1);
    CHECK(settings_local_ranks(ompi) == 4);
    CHECK(settings_local_ranks(hydra) == 3);
    CHECK(settings_local_ranks(junk) == 2);
}

/* ---------------------------------------------------------------- config */

/* Three tiers: HBM node 1 (8 GiB), DRAM node 0 (64 GiB), CXL node 2. */
static void topology_3(tm_topology_t *t, bool hmat)
{
    memset(t, 0, sizeof *t);
    t->nnodes = 3;
    for (unsigned i = 0; i < 3; i++)
        t->nodes[i].id = i;
    t->ntiers = 3;
    t->tiers[0].nodes = 1u << 1;
    t->tiers[0].capacity_bytes = 8192 * MiB;
    t->tiers[1].nodes = 1u << 0;
    t->tiers[1].capacity_bytes = 65536 * MiB;
    t->tiers[2].nodes = 1u << 2;
    t->tiers[2].capacity_bytes = 131072 * MiB;
    if (hmat) {
        t->nodes[1].read_latency_ns = 90;
        t->nodes[0].read_latency_ns = 110;
        t->nodes[2].read_latency_ns = 350;
    }
}

static void test_online_config(void)
{
    tm_topology_t t;
    topology_3(&t, true);
    policy_options_t po;
    char *env[] = {"TIERMEM_POLICY_CAPACITY=1G", "TIERMEM_POLICY_EVERY=3",
                   "TIERMEM_POLICY_MOVE_COST=0.25", NULL};
    policy_options_parse(env, &po);
    online_config_t c;
    REQUIRE_VOID(policy_online_config(&po, &t, 50000000ull, 4, &c) == 0);
    CHECK(c.ntiers == 3 && c.every == 3 && c.interval_ns == 50000000ull);
    CHECK(c.cap[0] == 1024 * MiB);       /* as given */
    CHECK(c.cap[1] == 65536 * MiB / 4);  /* auto: the tier over 4 ranks */
    CHECK(c.benefit_per_access == 260.0); /* 350 - 90 ns */
    CHECK(c.cost_per_byte == 0.25);
    CHECK(c.initial_tier == 2 && c.topology == &t);
    online_t *o = online_new(&c);
    CHECK(o != NULL);
    online_delete(o);

    char *pct[] = {"TIERMEM_POLICY_CAPACITY=50%,10%", NULL};
    policy_options_parse(pct, &po);
    topology_3(&t, false);
    REQUIRE_VOID(policy_online_config(&po, &t, 100000000ull, 1, &c) == 0);
    CHECK(c.cap[0] == 4096 * MiB && c.cap[1] == 6553 * MiB + 614 * 1024 +
                                                    409);
    CHECK(c.benefit_per_access == 100.0); /* no HMAT: the default gap */

    t.ntiers = 1;
    errno = 0;
    CHECK(policy_online_config(&po, &t, 100000000ull, 1, &c) == -1 &&
          errno == ENODEV);
}

/* ---------------------------------------------------------------- start */

/* This machine has one tier: TIERMEM_POLICY=online says so and starts
 * nothing, unless TIERMEM_PROFILE asks for a profile too. */
static void test_start_one_tier(void)
{
    REQUIRE_VOID(setenv("TIERMEM_POLICY", "online", 1) == 0);
    log_reset(TM_LOG_INFO);
    policy_start_from_env();
    CHECK(!profiler_running());
    CHECK_MSG(log_count("info", "one memory tier", NULL) == 1, "%s",
              log_text());

    char file[TM_PATH_MAX];
    snprintf(file, sizeof file, "%s/one-tier.txt", dir);
    REQUIRE_VOID(setenv("TIERMEM_PROFILE", "1", 1) == 0);
    REQUIRE_VOID(setenv("TIERMEM_PROFILE_FILE", file, 1) == 0);
    REQUIRE_VOID(setenv("TIERMEM_PROFILE_SAMPLER", "none", 1) == 0);
    policy_start_from_env();
    CHECK(profiler_running());
    CHECK(strcmp(profiler_profile_path(), file) == 0);
    profiler_stop();
    struct stat st;
    CHECK(stat(file, &st) == 0);
    unsetenv("TIERMEM_POLICY");
    unsetenv("TIERMEM_PROFILE");
    unsetenv("TIERMEM_PROFILE_FILE");
    unsetenv("TIERMEM_PROFILE_SAMPLER");
}

/* The profiler without a file: intervals reach the hook, no file. */
static _Atomic unsigned nofile_calls;
static void count_hook(const prof_interval_t *iv, void *ctx)
{
    (void)iv;
    (void)ctx;
    atomic_fetch_add(&nofile_calls, 1);
}

static void test_no_file(void)
{
    prof_options_t o;
    prof_options_defaults(&o);
    o.enabled = true;
    o.no_file = true;
    o.sampler = PROF_SAMPLER_NONE;
    o.interval_ns = 5 * 1000000ull;
    char cwd[TM_PATH_MAX];
    REQUIRE_VOID(getcwd(cwd, sizeof cwd) != NULL);
    REQUIRE_VOID(chdir(dir) == 0); /* where a default name would land */
    profiler_set_interval_hook(count_hook, NULL);
    REQUIRE_VOID(profiler_start(&o) == 0);
    CHECK(strcmp(profiler_profile_path(), "") == 0);
    for (int i = 0; i < 2000 && nofile_calls < 3; i++)
        sleep_ms(5);
    profiler_stop();
    profiler_set_interval_hook(NULL, NULL);
    CHECK(nofile_calls >= 3);
    unsigned files = 0;
    char cmd[TM_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tiermem-profile", dir);
    FILE *p = popen(cmd, "r");
    if (p != NULL) {
        if (fscanf(p, "%u", &files) != 1)
            files = 99;
        pclose(p);
    }
    CHECK_MSG(files == 0, "%u profile files", files);
    CHECK(chdir(cwd) == 0);
}

/* ---------------------------------------------------------------- moves */

typedef struct e2e {
    online_t *online;
    _Atomic unsigned intervals;
    _Atomic bool stop;
    tm_arena_t *arena[2];
} e2e_t;

static void e2e_hook(const prof_interval_t *iv, void *ctx)
{
    e2e_t *e = ctx;
    online_step(e->online, iv);
    atomic_fetch_add(&e->intervals, 1);
}

/* Small blocks in both arenas, allocated and freed until told to stop:
 * the arenas' extents change while the policy moves them. */
static void *churn(void *arg)
{
    e2e_t *e = arg;
    void *held[64] = {0};
    for (unsigned i = 0; !atomic_load(&e->stop); i++) {
        unsigned k = i % 64;
        tm_free(held[k]);
        held[k] = tm_arena_malloc(e->arena[i % 2], 64 + (i * 7919) % 40000);
        if (held[k] != NULL)
            memset(held[k], (int)i, 64);
    }
    for (unsigned k = 0; k < 64; k++)
        tm_free(held[k]);
    return NULL;
}

/* 10 ms intervals of trace time: arena A hot for 6 intervals, then B for
 * 16 (long enough for B's heat to pass A's decayed heat by the hysteresis
 * factor). */
static bool write_trace(const char *path, unsigned a, unsigned b)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    fprintf(f, "tiermem-trace 1\n");
    for (unsigned k = 0; k < 22; k++)
        fprintf(f, "%u.5 arena %u %u 1000\n", k * 10, k < 6 ? a : b,
                (k * 4096) % (1u << 20));
    return fclose(f) == 0;
}

static void test_moves_real_arenas(void)
{
    tm_topology_t topo;
    memset(&topo, 0, sizeof topo);
    topo.nnodes = 1;
    topo.ntiers = 2;
    topo.tiers[0].nodes = topo.tiers[1].nodes = 1;
    static e2e_t e;
    tm_placement_t bind0 = tm_placement_node(TM_MODE_BIND, 0);
    e.arena[0] = tm_arena_create(&bind0);
    e.arena[1] = tm_arena_create(&bind0);
    REQUIRE_VOID(e.arena[0] != NULL && e.arena[1] != NULL);
    void *blk[2];
    for (int i = 0; i < 2; i++) {
        blk[i] = tm_arena_malloc(e.arena[i], 4 * MiB);
        REQUIRE_VOID(blk[i] != NULL);
        memset(blk[i], 1, 4 * MiB);
    }
    unsigned a = tm_arena_id(e.arena[0]), b = tm_arena_id(e.arena[1]);

    online_config_t cfg;
    online_config_default(&cfg);
    cfg.every = 2;
    cfg.interval_ns = 10 * 1000000ull;
    cfg.cap[0] = 6 * MiB;   /* less 5%: one 4 MiB arena fits, not two */
    cfg.min_stay = 1;
    cfg.topology = &topo;   /* both start on tier 0 (placement node 0) */
    e.online = online_new(&cfg);
    REQUIRE_VOID(e.online != NULL);

    char trace[TM_PATH_MAX];
    snprintf(trace, sizeof trace, "%s/trace.txt", dir);
    REQUIRE_VOID(write_trace(trace, a, b));
    prof_options_t o;
    prof_options_defaults(&o);
    o.enabled = true;
    o.no_file = true;
    o.sampler = PROF_SAMPLER_REPLAY;
    o.trace_clock = true;
    o.interval_ns = cfg.interval_ns;
    o.residency_every = 1;
    snprintf(o.replay, sizeof o.replay, "%s", trace);

    uint64_t migrations0 = atomic_load(&arena_migrations);
    pthread_t th;
    REQUIRE_VOID(pthread_create(&th, NULL, churn, &e) == 0);
    profiler_set_interval_hook(e2e_hook, &e);
    log_reset(TM_LOG_INFO);
    CHECK(profiler_start(&o) == 0);
    for (int i = 0; i < 4000 && atomic_load(&e.intervals) < 22; i++)
        sleep_ms(5);
    profiler_stop();
    profiler_set_interval_hook(NULL, NULL);
    atomic_store(&e.stop, true);
    pthread_join(th, NULL);

    CHECK_MSG(atomic_load(&e.intervals) >= 22, "%u intervals",
              atomic_load(&e.intervals));
    online_stats_t st;
    online_get_stats(e.online, &st);
    /* B demoted first (both started on tier 0, over capacity), then the
     * phase change: A demoted, B promoted.  The runtime's own arenas
     * (site 0's small objects) have no heat and are demoted too. */
    char a_is[48], b_is[48];
    snprintf(a_is, sizeof a_is, "online: arena %u (", a);
    snprintf(b_is, sizeof b_is, "online: arena %u (", b);
    CHECK_MSG(log_count("info", b_is, "tier 0 -> 1", NULL) == 1 &&
                  log_count("info", a_is, "tier 0 -> 1", NULL) == 1 &&
                  log_count("info", b_is, "tier 1 -> 0", NULL) == 1 &&
                  log_count("info", a_is, NULL) == 1 &&
                  log_count("info", b_is, NULL) == 2,
              "%s", log_text());
    CHECK(st.failures == 0 && st.promotions == 1);
    CHECK(online_tier_of(e.online, a) == 1 && online_tier_of(e.online, b) == 0);
    CHECK(atomic_load(&arena_migrations) - migrations0 == st.moves);
    /* the real arenas were rebound: created BIND, moved PREFERRED */
    CHECK(tm_arena_placement(e.arena[0]).mode == TM_MODE_PREFERRED);
    CHECK(tm_arena_placement(e.arena[1]).mode == TM_MODE_PREFERRED);
    for (int i = 0; i < 2; i++) {
        CHECK(((unsigned char *)blk[i])[4 * MiB - 1] == 1);
        tm_free(blk[i]);
    }
    online_delete(e.online);
    CHECK(tm_arena_destroy(e.arena[0]) == 0);
    CHECK(tm_arena_destroy(e.arena[1]) == 0);
}

int main(void)
{
    REQUIRE(mkdtemp(dir) != NULL);
    REQUIRE(log_open());
    runtime_init();
    test_defaults();
    test_good_values();
    test_bad_values();
    test_local_ranks();
    test_online_config();
    test_start_one_tier();
    test_no_file();
    test_moves_real_arenas();
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tm_test_done(__FILE__);
}
