/*
 * test_online.c -- the online policy's decisions, from synthetic interval
 * sequences, with an injected migrate callback that records every call
 * (and keeps its own tier map, to check capacity at every single move).
 */
#include "config.h"

#include "policy.h"
#include "../tm_test.h"

#define MiB ((uint64_t)1 << 20)
#define KiB ((uint64_t)1 << 10)
#define NMAX 16
#define CALLS 4096

/* The synthetic program: arenas 1..n with heat and bytes we set. */
typedef struct sim {
    unsigned n;
    double heat[NMAX + 1];
    uint64_t bytes[NMAX + 1];
    uint64_t nodes[NMAX + 1];  /* the row's placement (0: none) */
    uint64_t mapped[NMAX + 1]; /* 0: twice bytes */
    bool unmeasured;           /* rows without residency */
    double accesses_per_sample; /* what the intervals carry (0: unknown) */
    prof_arena_row_t rows[NMAX];
    uint64_t seq;
} sim_t;

/* What the policy asked for. */
typedef struct rec {
    const sim_t *sim;
    const online_config_t *cfg;
    unsigned ncalls;
    unsigned id[CALLS], tier[CALLS];
    uint64_t seq[CALLS];       /* the interval being stepped */
    int from[CALLS];
    unsigned tier_of[NMAX + 1]; /* the recorder's own map */
    unsigned fail_id, fail_left;
    int fail_errno;            /* 0: EIO */
    bool overfilled;
    uint64_t node_free;        /* test_room: tier 0's node, empty */
    uint64_t middle_free;      /* tier 1's, in three tiers (0: unknown) */
    unsigned room_calls;
} rec_t;

/* Tier 0 is one node of node_free bytes: its room is what the arenas the
 * recorder put there leave.  Other tiers: unknown. */
static int rec_room(void *ctx, unsigned tier, uint64_t *bytes)
{
    rec_t *r = ctx;
    r->room_calls++;
    uint64_t node = tier == 0 ? r->node_free : tier == 1 ? r->middle_free : 0;
    if (node == 0)
        return -1;
    uint64_t used = 0;
    for (unsigned i = 1; i <= r->sim->n; i++)
        if (r->tier_of[i] == tier)
            used += r->sim->bytes[i];
    *bytes = used < node ? node - used : 0;
    return 0;
}

static int rec_migrate(void *ctx, unsigned id, unsigned tier)
{
    rec_t *r = ctx;
    if (id == r->fail_id && r->fail_left > 0) {
        r->fail_left--;
        errno = r->fail_errno ? r->fail_errno : EIO;
        return -1;
    }
    if (r->ncalls < CALLS) {
        r->id[r->ncalls] = id;
        r->tier[r->ncalls] = tier;
        r->seq[r->ncalls] = r->sim->seq;
        r->from[r->ncalls] = (int)r->tier_of[id];
        r->ncalls++;
    }
    r->tier_of[id] = tier;
    /* A move never takes its destination past capacity (growth of arenas
     * already there is not a move's doing, so only the destination). */
    if (tier + 1 < r->cfg->ntiers) {
        uint64_t sum = 0;
        for (unsigned i = 1; i <= r->sim->n; i++)
            if (r->tier_of[i] == tier)
                sum += r->sim->bytes[i];
        if ((double)sum > (double)r->cfg->cap[tier] * (1.0 - r->cfg->headroom))
            r->overfilled = true;
    }
    return 0;
}

static void sim_step(online_t *o, sim_t *s)
{
    prof_interval_t iv;
    memset(&iv, 0, sizeof(iv));
    iv.seq = ++s->seq;
    iv.accesses_per_sample = s->accesses_per_sample;
    for (unsigned i = 0; i < s->n; i++) {
        memset(&s->rows[i], 0, sizeof(s->rows[i]));
        s->rows[i].id = i + 1;
        s->rows[i].serial = i + 1;
        s->rows[i].heat = s->heat[i + 1];
        s->rows[i].mapped = s->mapped[i + 1] ? s->mapped[i + 1]
                                             : s->bytes[i + 1] * 2;
        s->rows[i].resident_valid = !s->unmeasured;
        s->rows[i].resident = s->bytes[i + 1];
        s->rows[i].placement.mode = TM_MODE_BIND;
        s->rows[i].placement.nodes = s->nodes[i + 1];
    }
    iv.narenas = s->n;
    iv.arenas = s->rows;
    online_step(o, &iv);
}

/* 4 arenas of 1 MiB, fast tier fits two (2.5 MiB less 5%). */
static void prepare(online_config_t *cfg, sim_t *s, rec_t *r)
{
    memset(s, 0, sizeof(*s));
    memset(r, 0, sizeof(*r));
    online_config_default(cfg);
    cfg->every = 2;
    cfg->interval_ns = 100000000ull;
    cfg->cap[0] = 5 * MiB / 2;
    cfg->migrate = rec_migrate;
    cfg->migrate_ctx = r;
    s->n = 4;
    for (unsigned i = 1; i <= 4; i++)
        s->bytes[i] = MiB;
    r->sim = s;
    r->cfg = cfg;
    for (unsigned i = 0; i <= NMAX; i++)
        r->tier_of[i] = cfg->ntiers - 1;
}

static online_t *setup(online_config_t *cfg, sim_t *s, rec_t *r)
{
    prepare(cfg, s, r);
    return online_new(cfg);
}

static void decide(online_t *o, sim_t *s, unsigned every)
{
    for (unsigned k = 0; k < every; k++)
        sim_step(o, s);
}

/* In every interval's calls, no demotion after a promotion. */
static bool demotions_first(const rec_t *r)
{
    for (unsigned i = 1; i < r->ncalls; i++)
        if (r->seq[i] == r->seq[i - 1] &&
            (int)r->tier[i - 1] < r->from[i - 1] &&
            (int)r->tier[i] > r->from[i])
            return false;
    return true;
}

static void test_converge_and_phase(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o = setup(&cfg, &s, &r);
    REQUIRE_VOID(o);
    s.heat[1] = s.heat[2] = 100;
    s.heat[3] = s.heat[4] = 1;
    CHECK(online_tier_of(o, 1) == -1); /* not seen yet */
    sim_step(o, &s);
    CHECK(r.ncalls == 0);              /* no decision before `every` */
    sim_step(o, &s);
    CHECK(online_tier_of(o, 1) == 0 && online_tier_of(o, 2) == 0);
    CHECK(online_tier_of(o, 3) == 1 && online_tier_of(o, 4) == 1);
    CHECK(r.ncalls == 2);
    CHECK(online_tier_bytes(o, 0) == 2 * MiB);

    /* Phase change: C, D become hot. */
    s.heat[1] = s.heat[2] = 1;
    s.heat[3] = s.heat[4] = 100;
    unsigned d;
    for (d = 0; d < 5; d++) {
        decide(o, &s, cfg.every);
        if (online_tier_of(o, 3) == 0 && online_tier_of(o, 4) == 0)
            break;
    }
    CHECK_MSG(d < 3, "fast set became C,D after %u decisions", d + 1);
    CHECK(online_tier_of(o, 1) == 1 && online_tier_of(o, 2) == 1);
    CHECK(r.ncalls == 6);
    CHECK(demotions_first(&r));
    CHECK(!r.overfilled);
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK(st.moves == 6 && st.demotions == 2 && st.promotions == 4);
    CHECK(st.bytes_migrated == 6 * MiB && st.failures == 0);
    online_delete(o);
}

static void test_hysteresis(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o;
    prepare(&cfg, &s, &r);
    s.n = 2;
    cfg.cap[0] = 3 * MiB / 2; /* fits one */
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    unsigned seed = 7;
    for (unsigned d = 0; d < 50; d++) {
        for (unsigned i = 1; i <= 2; i++) {
            seed = seed * 1103515245u + 12345u;
            s.heat[i] = 100.0 + (double)((seed >> 16) % 21) - 10.0;
        }
        decide(o, &s, cfg.every);
    }
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK_MSG(st.moves <= 2, "%llu moves over 50 jittering decisions",
              (unsigned long long)st.moves);
    CHECK(online_tier_bytes(o, 0) == MiB);
    online_delete(o);
}

static void test_budget(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o;
    prepare(&cfg, &s, &r);
    s.n = 8;
    for (unsigned i = 1; i <= 8; i++) {
        s.bytes[i] = MiB;
        s.heat[i] = i <= 4 ? 100.0 + i : 1.0;
    }
    cfg.cap[0] = 9 * MiB / 2;                 /* fits four */
    cfg.budget_bytes_per_s = 7.5 * (double)MiB; /* 1.5 MiB a decision */
    uint64_t budget = 3 * MiB / 2;
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    bool within = true;
    online_stats_t st;
    for (unsigned d = 0; d < 40; d++) {
        if (d == 10)
            for (unsigned i = 1; i <= 8; i++)
                s.heat[i] = i > 4 ? 100.0 + i : 1.0;
        decide(o, &s, cfg.every);
        online_get_stats(o, &st);
        if (st.last_bytes > budget)
            within = false;
    }
    CHECK(within);
    CHECK(st.skipped_budget > 0);
    for (unsigned i = 5; i <= 8; i++)
        CHECK(online_tier_of(o, i) == 0);
    CHECK(demotions_first(&r));
    CHECK(!r.overfilled);
    online_delete(o);
}

/* Random heats and sizes over three tiers: no tier ever overfills. */
static void test_never_overfill(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o;
    prepare(&cfg, &s, &r);
    cfg.ntiers = 3;
    cfg.initial_tier = 2;
    cfg.cap[0] = 3 * MiB;
    cfg.cap[1] = 5 * MiB;
    cfg.min_stay = 1;
    cfg.hysteresis = 1.0;
    for (unsigned i = 0; i <= NMAX; i++)
        r.tier_of[i] = 2;
    s.n = NMAX;
    unsigned seed = 42;
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    unsigned decisions = (unsigned)(200 * tm_test_scale());
    if (decisions < 20)
        decisions = 20;
    bool ok = true;
    for (unsigned d = 0; d < decisions; d++) {
        for (unsigned i = 1; i <= NMAX; i++) {
            seed = seed * 1103515245u + 12345u;
            s.heat[i] = (double)((seed >> 16) % 1000);
            if (d % 10 == 0) {
                seed = seed * 1103515245u + 12345u;
                s.bytes[i] = 64 * KiB + ((seed >> 16) % 2048) * KiB;
            }
        }
        decide(o, &s, cfg.every);
        double usable = 1.0 - cfg.headroom;
        if ((double)online_tier_bytes(o, 0) > usable * (double)cfg.cap[0] ||
            (double)online_tier_bytes(o, 1) > usable * (double)cfg.cap[1]) {
            if (ok)
                fprintf(stderr, "decision %u: tier 0 %llu tier 1 %llu\n", d,
                        (unsigned long long)online_tier_bytes(o, 0),
                        (unsigned long long)online_tier_bytes(o, 1));
            ok = false;
        }
    }
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK(ok);
    CHECK(st.moves > 0);
    CHECK(!r.overfilled);
    CHECK(st.demotions > 0 && st.promotions > 0);
    online_delete(o);
}

static void test_failure_retry(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o = setup(&cfg, &s, &r);
    REQUIRE_VOID(o);
    s.heat[1] = s.heat[2] = 100;
    s.heat[3] = s.heat[4] = 1;
    r.fail_id = 1;
    r.fail_left = 1;
    decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 1);    /* failed: map unchanged */
    CHECK(online_tier_of(o, 2) == 0);
    CHECK(online_tier_bytes(o, 0) == MiB);
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK(st.failures == 1 && st.moves == 1);
    decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 0);    /* retried */
    online_get_stats(o, &st);
    CHECK(st.failures == 1 && st.moves == 2);
    online_delete(o);
}

/* A promotion the kernel refuses with ENOMEM (the tier's nodes are full,
 * whatever the configured capacity says): the arena is moved back where
 * the policy has it, and the tier counts as full for ONLINE_FULL_DECISIONS
 * (25) decisions -- no retry every decision -- then is tried again. */
static bool promoted(const rec_t *r, unsigned id, unsigned from_call)
{
    for (unsigned i = from_call; i < r->ncalls; i++)
        if (r->id[i] == id && r->tier[i] == 0)
            return true;
    return false;
}

static void test_tier_full(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o = setup(&cfg, &s, &r);
    REQUIRE_VOID(o);
    s.heat[1] = s.heat[2] = 100;
    s.heat[3] = s.heat[4] = 1;
    r.fail_id = 2;
    r.fail_left = 1;
    r.fail_errno = ENOMEM;
    decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 0 && online_tier_of(o, 2) == 1);
    /* the failed arena was sent back to its tier (the recorder saw it) */
    CHECK(r.ncalls == 2 && r.id[1] == 2 && r.tier[1] == 1);
    unsigned mark = r.ncalls;
    for (int d = 0; d < 23; d++)
        decide(o, &s, cfg.every);
    CHECK_MSG(!promoted(&r, 2, mark), "arena 2 retried while tier 0 counts "
              "as full");
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK(st.failures == 1);
    for (int d = 0; d < 4; d++)
        decide(o, &s, cfg.every);
    CHECK(promoted(&r, 2, mark) && online_tier_of(o, 2) == 0);
    online_delete(o);
}

/* Tiers of one node each: tier i is node i. */
static void topology_chain(tm_topology_t *topo, unsigned ntiers)
{
    memset(topo, 0, sizeof *topo);
    topo->ntiers = ntiers;
    for (unsigned i = 0; i < ntiers; i++)
        topo->tiers[i].nodes = 1ull << i;
}

static int rec_room_unknown(void *ctx, unsigned tier, uint64_t *bytes)
{
    (void)tier;
    (void)bytes;
    ((rec_t *)ctx)->room_calls++;
    return -1;
}

/* A promotion the tier's nodes have no room for is not tried at all: no
 * partial move, no way back; the tier counts as holding what it holds and
 * the room left, so a smaller arena that fits still goes, and the big one
 * waits ONLINE_FULL_DECISIONS decisions before it is asked about again. */
static void test_room(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    prepare(&cfg, &s, &r);
    cfg.cap[0] = 8 * MiB;       /* the configured capacity holds them all */
    cfg.room = rec_room;
    cfg.room_ctx = &r;
    r.node_free = 3 * MiB / 2;  /* the node does not */
    s.bytes[3] = s.bytes[4] = MiB / 4;
    s.heat[3] = 50;             /* densest: first */
    s.heat[1] = s.heat[2] = 100;
    s.heat[4] = 20;             /* least dense: after the refusal */
    online_t *o = online_new(&cfg);
    REQUIRE_VOID(o);
    decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 3) == 0 && online_tier_of(o, 4) == 0);
    CHECK((online_tier_of(o, 1) == 0) != (online_tier_of(o, 2) == 0));
    unsigned refused = online_tier_of(o, 1) == 0 ? 2 : 1;
    CHECK_MSG(!promoted(&r, refused, 0), "arena %u was moved without room",
              refused);
    CHECK(r.ncalls == 3);       /* three moves, none of them back */
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK(st.skipped_room == 1 && st.failures == 0);
    CHECK(!r.overfilled);
    unsigned calls = r.room_calls;
    for (int d = 0; d < 23; d++)
        decide(o, &s, cfg.every);
    CHECK_MSG(r.room_calls == calls, "the full tier was asked %u more times",
              r.room_calls - calls);
    online_get_stats(o, &st);
    CHECK(st.skipped_room == 1 && st.moves == 3);
    r.node_free = 4 * MiB;      /* others freed the node */
    unsigned mark = r.ncalls;
    for (int d = 0; d < 4; d++)
        decide(o, &s, cfg.every);
    CHECK(promoted(&r, refused, mark) && online_tier_of(o, refused) == 0);
    online_delete(o);

    /* Control: the same program and node, the room unknown (the zone
     * table unreadable): every arena goes in the first decision, as
     * before the check existed. */
    prepare(&cfg, &s, &r);
    cfg.cap[0] = 8 * MiB;
    cfg.room = rec_room_unknown;
    cfg.room_ctx = &r;
    s.bytes[3] = s.bytes[4] = MiB / 4;
    s.heat[1] = s.heat[2] = s.heat[3] = s.heat[4] = 100;
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    decide(o, &s, cfg.every);
    online_get_stats(o, &st);
    CHECK(st.skipped_room == 0 && st.moves == 4 && r.room_calls == 1);
    online_delete(o);
}

/* The room is read once, before the round; a demotion out of the tier in
 * the same round adds its bytes (the kernel's zone table may not show
 * freed pages at once), so a hotter arena can take a colder one's place
 * on a node too full for both. */
static void test_room_after_demotion(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    prepare(&cfg, &s, &r);
    s.n = 2;
    s.bytes[1] = MiB / 2;        /* on tier 0, lukewarm */
    s.bytes[2] = MiB;            /* slow, hot */
    s.nodes[1] = 1;              /* placed on node 0 = tier 0 */
    s.nodes[2] = 2;
    s.heat[1] = 1;
    s.heat[2] = 100;
    cfg.cap[0] = 5 * MiB / 4;    /* one of them */
    tm_topology_t topo;
    topology_chain(&topo, 2);
    cfg.topology = &topo;
    cfg.room = rec_room;
    cfg.room_ctx = &r;
    r.tier_of[1] = 0;
    r.node_free = 5 * MiB / 4;   /* room 0.75 MiB with arena 1 there */
    online_t *o = online_new(&cfg);
    REQUIRE_VOID(o);
    decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 1 && online_tier_of(o, 2) == 0);
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK(st.skipped_room == 0 && st.moves == 2 && r.room_calls == 1);
    CHECK(demotions_first(&r));
    online_delete(o);
}

/* Three tiers: a demotion out of the fast tier into a middle tier whose
 * nodes have no room goes on to the slowest tier, rather than into an
 * ENOMEM and a way back. */
static void test_room_middle_tier(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    prepare(&cfg, &s, &r);
    cfg.ntiers = 3;
    cfg.cap[0] = 5 * MiB / 4;    /* one arena */
    cfg.cap[1] = 8 * MiB;        /* configured for both... */
    cfg.room = rec_room;
    cfg.room_ctx = &r;
    r.node_free = 8 * MiB;
    r.middle_free = 1;           /* ...but its nodes are full */
    s.n = 2;
    s.bytes[1] = s.bytes[2] = MiB;
    s.nodes[1] = 1;              /* arena 1 on tier 0, lukewarm */
    s.nodes[2] = 4;              /* arena 2 on tier 2, hot */
    s.heat[1] = 1;
    s.heat[2] = 100;
    tm_topology_t topo;
    topology_chain(&topo, 3);
    cfg.topology = &topo;
    for (unsigned i = 0; i <= NMAX; i++)
        r.tier_of[i] = 2;
    r.tier_of[1] = 0;
    online_t *o = online_new(&cfg);
    REQUIRE_VOID(o);
    decide(o, &s, cfg.every);
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK_MSG(online_tier_of(o, 1) == 2, "arena 1 on tier %d",
              online_tier_of(o, 1));
    CHECK(online_tier_of(o, 2) == 0);
    CHECK(st.failures == 0 && st.moves == 2);
    online_delete(o);
}

/* Before the sampler's first window every arena reads as cold: with no
 * heat anywhere a decision moves nothing (the fast tier's arenas are not
 * sent down to come back at the next one).  Once anything has heat, a
 * cold arena on the fast tier goes down as usual. */
static void test_no_heat_no_moves(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    prepare(&cfg, &s, &r);
    s.n = 2;
    s.nodes[1] = s.nodes[2] = 1; /* both placed on tier 0 */
    tm_topology_t topo;
    topology_chain(&topo, 2);
    cfg.topology = &topo;
    r.tier_of[1] = r.tier_of[2] = 0;
    online_t *o = online_new(&cfg);
    REQUIRE_VOID(o);
    for (int d = 0; d < 3; d++)
        decide(o, &s, cfg.every);
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK_MSG(r.ncalls == 0, "%u moves on no evidence", r.ncalls);
    CHECK(st.skipped_no_heat == 3);
    CHECK(online_tier_of(o, 1) == 0 && online_tier_of(o, 2) == 0);
    s.heat[2] = 10;              /* the sampler sees arena 2, not 1 */
    decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 1 && online_tier_of(o, 2) == 0);
    online_delete(o);
}

static void test_cost_benefit(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o;
    prepare(&cfg, &s, &r);
    s.n = 2;
    s.bytes[1] = 4 * MiB;   /* hot but huge: 100*2*2 = 400 < 4 MiB*1e-3 */
    s.heat[1] = 100;
    s.bytes[2] = 16 * KiB;  /* 50*4 = 200 > 16.4 */
    s.heat[2] = 50;
    cfg.cap[0] = 16 * MiB;
    cfg.cost_per_byte = 1e-3;
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    for (unsigned d = 0; d < 5; d++)
        decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 1);
    CHECK(online_tier_of(o, 2) == 0);
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK(st.skipped_cost >= 5 && st.moves == 1);
    online_delete(o);

    /* The sampler's figure, carried by the intervals: one sample stands
     * for 100 accesses, 100*100*2*2 = 40000 > 4 MiB*1e-3, the huge one
     * pays for its move. */
    s.accesses_per_sample = 100;
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 0 && online_tier_of(o, 2) == 0);
    online_delete(o);
    s.accesses_per_sample = 0;

    /* Control: free moves, the huge one goes too. */
    cfg.cost_per_byte = 0;
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 0 && online_tier_of(o, 2) == 0);
    online_delete(o);
}

/* An arena bigger than one decision's budget moves once the budget has
 * saved up for it, and holds back the smaller moves after it meanwhile. */
static void test_budget_carry(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o;
    prepare(&cfg, &s, &r);
    s.n = 2;
    s.bytes[1] = 4 * MiB;       /* the hottest per byte: promoted first */
    s.heat[1] = 1000;
    s.bytes[2] = MiB / 2;
    s.heat[2] = 10;
    cfg.cap[0] = 16 * MiB;
    cfg.budget_bytes_per_s = 5.0 * (double)MiB; /* 1 MiB a decision */
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    unsigned big_at = 0, small_at = 0;
    uint64_t most = 0;
    for (unsigned d = 1; d <= 8; d++) {
        decide(o, &s, cfg.every);
        online_stats_t st;
        online_get_stats(o, &st);
        if (st.last_bytes > most)
            most = st.last_bytes;
        if (!big_at && online_tier_of(o, 1) == 0)
            big_at = d;
        if (!small_at && online_tier_of(o, 2) == 0)
            small_at = d;
    }
    CHECK_MSG(big_at == 4, "the 4 MiB arena moved at decision %u", big_at);
    CHECK_MSG(small_at == 5, "the small arena moved at decision %u "
              "(held back behind the big one until then)", small_at);
    CHECK(most == 4 * MiB);
    online_delete(o);

    /* Idle decisions bank nothing: after 10 with nothing to move, a
     * phase change moves one decision's worth (1 MiB), not more. */
    s.n = 4;
    for (unsigned i = 1; i <= 4; i++) {
        s.bytes[i] = MiB / 2;
        s.heat[i] = i <= 2 ? 100 : 1;
    }
    cfg.cap[0] = MiB + MiB / 4; /* fits two (less 5%: 1.19 MiB) */
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    for (unsigned d = 0; d < 12; d++)
        decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 1) == 0 && online_tier_of(o, 2) == 0);
    s.heat[1] = s.heat[2] = 1;
    s.heat[3] = s.heat[4] = 100;
    decide(o, &s, cfg.every);
    online_stats_t st;
    online_get_stats(o, &st);
    CHECK_MSG(st.last_bytes <= MiB, "%llu bytes after idle decisions",
              (unsigned long long)st.last_bytes);
    for (unsigned d = 0; d < 6; d++)
        decide(o, &s, cfg.every);
    CHECK(online_tier_of(o, 3) == 0 && online_tier_of(o, 4) == 0);
    online_delete(o);
}

/* Small dense arenas fill the fast tier first; a big one that takes
 * more accesses than they do together displaces them.  One that takes
 * fewer does not. */
static void test_displacement(void)
{
    for (int bigger = 1; bigger >= 0; bigger--) {
        online_config_t cfg;
        sim_t s;
        rec_t r;
        online_t *o;
        prepare(&cfg, &s, &r);
        s.n = 4;
        for (unsigned i = 1; i <= 3; i++) {
            s.bytes[i] = 2 * MiB;  /* 10 per MiB, 60 together */
            s.heat[i] = 20;
        }
        s.bytes[4] = 8 * MiB;      /* 8.75 or 6.25 per MiB */
        s.heat[4] = bigger ? 70 : 50;
        cfg.cap[0] = 10 * MiB;     /* 9.5 usable: the three, or the big */
        o = online_new(&cfg);
        REQUIRE_VOID(o);
        for (unsigned d = 0; d < 3; d++)
            decide(o, &s, cfg.every);
        bool big_fast = online_tier_of(o, 4) == 0;
        unsigned small_fast = 0;
        for (unsigned i = 1; i <= 3; i++)
            small_fast += online_tier_of(o, i) == 0;
        CHECK_MSG(bigger ? big_fast && small_fast == 0
                         : !big_fast && small_fast == 3,
                  "big heat %g: big on tier %d, %u small ones on tier 0",
                  s.heat[4], online_tier_of(o, 4), small_fast);
        CHECK(!r.overfilled);
        online_delete(o);
    }
}

/* Between residency measurements an arena occupies its last resident
 * bytes plus what it mapped since, never more than it maps. */
static void test_bytes_between_measurements(void)
{
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o;
    prepare(&cfg, &s, &r);
    cfg.every = 1000; /* watch the map only */
    cfg.initial_tier = 1;
    s.n = 1;
    s.mapped[1] = 8 * MiB;
    s.unmeasured = true;
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    sim_step(o, &s);
    CHECK(online_tier_bytes(o, 1) == 8 * MiB);  /* never measured: mapped */
    s.unmeasured = false;
    s.bytes[1] = 2 * MiB;
    sim_step(o, &s);
    CHECK(online_tier_bytes(o, 1) == 2 * MiB);  /* measured */
    s.unmeasured = true;
    sim_step(o, &s);
    CHECK(online_tier_bytes(o, 1) == 2 * MiB);  /* still: not mapped's 8 */
    s.mapped[1] = 9 * MiB;
    sim_step(o, &s);
    CHECK(online_tier_bytes(o, 1) == 3 * MiB);  /* + 1 MiB mapped since */
    s.mapped[1] = MiB + MiB / 2;  /* extents unmapped since */
    sim_step(o, &s);
    CHECK(online_tier_bytes(o, 1) == MiB + MiB / 2); /* capped at mapped */
    online_delete(o);
}

/* With a topology, an arena first seen is on the tier its placement's
 * nodes are in; a placement spanning tiers, or none, is initial_tier. */
static void test_first_tier(void)
{
    tm_topology_t topo;
    memset(&topo, 0, sizeof topo);
    topo.nnodes = 3;
    for (unsigned i = 0; i < 3; i++)
        topo.nodes[i].id = i;
    topo.ntiers = 3;
    topo.tiers[0].nodes = 1u << 1; /* HBM node 1 is the fastest */
    topo.tiers[1].nodes = 1u << 0;
    topo.tiers[2].nodes = 1u << 2;
    online_config_t cfg;
    sim_t s;
    rec_t r;
    online_t *o;
    prepare(&cfg, &s, &r);
    cfg.ntiers = 3;
    cfg.initial_tier = 2;
    cfg.cap[0] = cfg.cap[1] = 64 * MiB;
    cfg.topology = &topo;
    cfg.every = 1000; /* watch the map only */
    s.n = 5;
    s.nodes[1] = 1u << 1;
    s.nodes[2] = 1u << 0;
    s.nodes[3] = 1u << 2;
    s.nodes[4] = (1u << 0) | (1u << 2);
    s.nodes[5] = 0;
    o = online_new(&cfg);
    REQUIRE_VOID(o);
    sim_step(o, &s);
    CHECK(online_tier_of(o, 1) == 0);
    CHECK(online_tier_of(o, 2) == 1);
    CHECK(online_tier_of(o, 3) == 2);
    CHECK(online_tier_of(o, 4) == 2);
    CHECK(online_tier_of(o, 5) == 2);
    CHECK(online_tier_bytes(o, 0) == MiB && online_tier_bytes(o, 1) == MiB);
    online_delete(o);
}

static void test_config(void)
{
    online_config_t cfg;
    online_config_default(&cfg);
    cfg.every = 0;
    errno = 0;
    CHECK(online_new(&cfg) == NULL && errno == EINVAL);
    online_config_default(&cfg);
    cfg.initial_tier = 2;
    CHECK(online_new(&cfg) == NULL && errno == EINVAL);
    online_config_default(&cfg);
    cfg.headroom = 1.0;
    CHECK(online_new(&cfg) == NULL && errno == EINVAL);
}

int main(void)
{
    test_config();
    test_converge_and_phase();
    test_hysteresis();
    test_budget();
    test_never_overfill();
    test_failure_retry();
    test_tier_full();
    test_room();
    test_room_after_demotion();
    test_no_heat_no_moves();
    test_room_middle_tier();
    test_cost_benefit();
    test_budget_carry();
    test_first_tier();
    test_bytes_between_measurements();
    test_displacement();
    return tm_test_done("test_online");
}
