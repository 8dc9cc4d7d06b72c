/*
 * test_guide.c -- profiles -> guidance (policy/guide.c).
 *
 * Two rank profiles, written by hand in the profile format, share sites:
 * a hot small one (A), a cold big one (B), an explicit id (12), one only
 * rank 1 has (C) and the unsited site 0.  The merge must sum samples and
 * keep the largest per-rank peak, and the footprint is the most live at
 * once; placement at known capacities (bytes, percent of the footprint,
 * the header's tier size, three tiers) must
 * give the placement worked out by hand; the formatted guidance must be
 * accepted by the runtime's parser with exactly those rules, `id` lines
 * for explicit ids and nothing for site 0.
 */
#include "config.h"

#include <unistd.h>

#include "sites.h"
#include "sites.h"
#include "policy.h"
#include "../tm_test.h"

#define KA 0x00000000000000aaULL
#define KB 0x00000000000000bbULL
#define KC 0x00000000000000ccULL
#define MiB (1024ULL * 1024)
#define KiB 1024ULL

/* rank 0: A 900 samples (500 + 400), peak 1 MiB; B 100, peak 8 MiB;
 * id 12: 50, peak 2 MiB; site 0: 30.  Tier 0 is nodes 0 and 2: 5 MiB. */
static const char rank0[] =
    "tiermem-profile 2\n"
    "exe app\npid 100\nrank 0\nsampler uffd\ninterval_ns 100000000\n"
    "halflife 4\nstart_unix_ms 1700000000000\n"
    "node 0 0 4194304\nnode 1 1 68719476736\nnode 2 0 1048576\n"
    "interval 1 0 100000000 600 0 0\n"
    "sitedef 3 0x00000000000000aa -1\n"
    "site 3 0 500 0 1 0 1048576 1048576 1048576\n"
    "sitedef 5 0x00000000000000bb -1\n"
    "site 5 0 100 0 1 0 8388608 8388608 8388608\n"
    "end 1\n"
    "interval 2 100000000 200000000 480 0 0\n"
    "sitedef 0 0x0000000000000000 -1\n"
    "site 0 0 30 1 9 0 4096 4096 4096\n"
    "site 3 0 400 0 1 0 1048576 1048576 1048576\n"
    "sitedef 7 0x1234567812345678 12\n"
    "site 7 0 50 0 1 0 2097152 2097152 2097152\n"
    "end 2\n"
    "complete 2\n";

/* rank 1: A 600, peak 2 MiB; B 50, peak 6 MiB; C 10, peak 512 KiB (other
 * indices than rank 0's: keys, not indices, join ranks). */
static const char rank1[] =
    "tiermem-profile 2\n"
    "exe app\npid 101\nrank 1\nsampler uffd\ninterval_ns 100000000\n"
    "halflife 4\nstart_unix_ms 1700000000000\n"
    "node 0 0 4194304\nnode 1 1 68719476736\nnode 2 0 1048576\n"
    "interval 1 0 100000000 660 0 0\n"
    "sitedef 1 0x00000000000000cc -1\n"
    "site 1 0 10 0 1 0 524288 524288 524288\n"
    "sitedef 2 0x00000000000000bb -1\n"
    "site 2 0 50 0 1 0 6291456 6291456 6291456\n"
    "sitedef 4 0x00000000000000aa -1\n"
    "site 4 0 600 0 2 0 2097152 2097152 2097152\n"
    "end 1\n"
    "complete 1\n";

static bool load(guide_t *g, const char *text, const char *name,
                 uint64_t first, uint64_t last)
{
    profile_t p;
    if (profile_parse(text, strlen(text), name, &p) != 0)
        return false;
    int rc = guide_add_profile(g, &p, first, last);
    profile_free(&p);
    return rc == 0;
}

static bool load_both(guide_t *g)
{
    memset(g, 0, sizeof *g);
    return load(g, rank0, "rank0", 0, UINT64_MAX) &&
           load(g, rank1, "rank1", 0, UINT64_MAX);
}

static const guide_site_t *find(const guide_t *g, bool by_id, uint64_t key)
{
    for (size_t i = 0; i < g->nsites; i++)
        if (g->sites[i].by_id == by_id && g->sites[i].key == key)
            return &g->sites[i];
    return NULL;
}

/* tier of a site, 99 if missing */
static unsigned tier(const guide_t *g, bool by_id, uint64_t key)
{
    const guide_site_t *s = find(g, by_id, key);
    return s ? s->tier : 99;
}

static void test_merge(void)
{
    guide_t g;
    REQUIRE_VOID(load_both(&g));
    CHECK(g.nprofiles == 2);
    CHECK(g.nsites == 4);
    const guide_site_t *a = find(&g, false, KA), *b = find(&g, false, KB),
                       *c = find(&g, false, KC), *e = find(&g, true, 12);
    REQUIRE_VOID(a && b && c && e);
    CHECK(a->accesses == 1500 && a->bytes == 2 * MiB);
    CHECK(b->accesses == 150 && b->bytes == 8 * MiB);
    CHECK(c->accesses == 10 && c->bytes == 512 * KiB);
    CHECK(e->accesses == 50 && e->bytes == 2 * MiB);
    CHECK(find(&g, false, 0) == NULL);
    CHECK(find(&g, false, 0x1234567812345678ULL) == NULL);
    CHECK(g.unsited == 30);
    CHECK(g.accesses == 1710);
    CHECK(g.footprint == 12 * MiB + 512 * KiB);
    /* live at once: rank 0's interval 2, A 1 MiB + B 8 MiB + id 12 2 MiB
     * (B has no row there: as it was); rank 1 peaks at 8.5 MiB */
    CHECK_MSG(g.footprint_peak == 11 * MiB, "peak %llu",
              (unsigned long long)g.footprint_peak);
    CHECK(g.ntiers_seen == 2);
    CHECK(g.tier_capacity[0] == 5 * MiB);
    CHECK(g.tier_capacity[1] == 64ULL * 1024 * MiB);
    guide_free(&g);

    /* interval 2 only: A 400 + rank 1's 600 (one interval, seq 1, out of
     * range): A 400, B 0, id 12 50 */
    memset(&g, 0, sizeof g);
    REQUIRE_VOID(load(&g, rank0, "rank0", 2, 2));
    CHECK(find(&g, false, KA)->accesses == 400);
    CHECK(find(&g, false, KB)->accesses == 0);
    CHECK(find(&g, true, 12)->accesses == 50);
    CHECK(find(&g, false, KB)->bytes == 8 * MiB);
    CHECK(g.unsited == 30);
    guide_free(&g);
}

static void test_capacity_parse(void)
{
    guide_capacity_t c[8];
    CHECK(guide_capacity_parse("64M,12.5%,auto", c, 8) == 3);
    CHECK(c[0].kind == GUIDE_CAP_BYTES && c[0].bytes == 64 * MiB);
    CHECK(c[1].kind == GUIDE_CAP_PERCENT && c[1].percent == 12.5);
    CHECK(c[2].kind == GUIDE_CAP_AUTO);
    CHECK(guide_capacity_parse("4096", c, 8) == 1 && c[0].bytes == 4096);
    static const char *const bad[] = {"", "1x", "101%", "-5%", "%", "a,,b",
                                      "64M,", ",64M", "auto,zz", "1,2,3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        CHECK_MSG(guide_capacity_parse(bad[i], c, 2) == -1 && errno == EINVAL,
                  "'%s' accepted", bad[i]);
    }
}

/* Place the two ranks' sites with capacity spec on policy. */
static bool place(guide_t *g, const char *spec, place_policy_t policy,
                  unsigned *ntiers, uint64_t *cap)
{
    guide_capacity_t c[8];
    int n = guide_capacity_parse(spec, c, 8);
    if (n < 0 || !load_both(g))
        return false;
    *ntiers = guide_capacities(g, c, (unsigned)n, cap, 8);
    place_limits_t lim = {.max_cells = 1u << 20, .max_seconds = 5};
    return guide_place(g, policy, cap, *ntiers, &lim, NULL) >= 0;
}

static void test_placement(void)
{
    guide_t g;
    uint64_t cap[8];
    unsigned nt;
    /* 3 MiB: A (2 MiB) + C (512 KiB) beat A + anything else that fits */
    for (int p = PLACE_HOTSET; p <= PLACE_KNAPSACK; p++) {
        REQUIRE_VOID(place(&g, "3M", (place_policy_t)p, &nt, cap));
        CHECK(nt == 2 && cap[0] == 3 * MiB && cap[1] == UINT64_MAX);
        CHECK_MSG(tier(&g, false, KA) == 0 && tier(&g, false, KC) == 0 &&
                      tier(&g, false, KB) == 1 && tier(&g, true, 12) == 1,
                  "policy %s", place_policy_name((place_policy_t)p));
        guide_free(&g);
    }
    /* a share of the peak live bytes (11 MiB), not of the sum of the
     * sites' peaks (12.5 MiB): 25% is 2.75 MiB, A + C fit, id 12 not */
    REQUIRE_VOID(place(&g, "25%", PLACE_KNAPSACK, &nt, cap));
    CHECK(cap[0] == 11 * MiB / 4);
    CHECK(tier(&g, false, KA) == 0 && tier(&g, false, KC) == 0 &&
          tier(&g, false, KB) == 1 && tier(&g, true, 12) == 1);
    guide_free(&g);
    /* auto: tier 0 is 5 MiB: A, id 12 and C; B (8 MiB) cannot fit */
    REQUIRE_VOID(place(&g, "auto", PLACE_KNAPSACK, &nt, cap));
    CHECK(nt == 2 && cap[0] == 5 * MiB);
    CHECK(tier(&g, false, KA) == 0 && tier(&g, true, 12) == 0 &&
          tier(&g, false, KC) == 0 && tier(&g, false, KB) == 1);
    guide_free(&g);
    /* three tiers of 2 MiB, 2 MiB, the rest: A, then id 12, then B, C */
    REQUIRE_VOID(place(&g, "2M,2M", PLACE_KNAPSACK, &nt, cap));
    CHECK(nt == 3);
    CHECK(tier(&g, false, KA) == 0 && tier(&g, true, 12) == 1 &&
          tier(&g, false, KB) == 2 && tier(&g, false, KC) == 2);
    guide_free(&g);
}

static void test_one_tier(void)
{
    /* a header with one tier: auto gives one tier, which takes all */
    char text[sizeof rank1];
    memcpy(text, rank1, sizeof rank1);
    char *n = strstr(text, "node 1 1 68719476736");
    REQUIRE_VOID(n != NULL);
    memcpy(n, "node 1 0", 8); /* node 1 now in tier 0 */
    guide_t g;
    memset(&g, 0, sizeof g);
    REQUIRE_VOID(load(&g, text, "one", 0, UINT64_MAX));
    guide_capacity_t c = {.kind = GUIDE_CAP_AUTO};
    uint64_t cap[4];
    CHECK(guide_capacities(&g, &c, 1, cap, 4) == 1);
    CHECK(guide_place(&g, PLACE_KNAPSACK, cap, 1, NULL, NULL) == 660.0);
    for (size_t i = 0; i < g.nsites; i++)
        CHECK(g.sites[i].tier == 0);
    guide_free(&g);
}

static void test_format_parses(void)
{
    guide_t g;
    uint64_t cap[8];
    unsigned nt;
    REQUIRE_VOID(place(&g, "3M", PLACE_KNAPSACK, &nt, cap));
    size_t len;
    char *text = guide_format(&g, "made by test_guide\nsecond line", &len);
    REQUIRE_VOID(text != NULL);
    CHECK(strlen(text) == len);
    static const char head[] = "# made by test_guide\n# second line\n"
                               "tiermem-guidance 1\n";
    CHECK(strncmp(text, head, sizeof head - 1) == 0);
    CHECK(strstr(text, "id 12 tier 1") != NULL);
    CHECK(strstr(text, "key 0x00000000000000aa tier 0") != NULL);
    CHECK(strstr(text, "key 0x0000000000000000") == NULL);
    CHECK(strstr(text, "1234567812345678") == NULL);
    guidance_t r;
    memset(&r, 0, sizeof r);
    CHECK(guidance_parse(text, len, "guide", &r) == 4);
    CHECK(r.rejected == 0);
    static const struct { bool by_id; uint64_t key; unsigned tier; } want[] = {
        {false, KA, 0}, {false, KC, 0}, {false, KB, 1}, {true, 12, 1}};
    for (size_t i = 0; i < 4; i++) {
        const guidance_rule_t *x = guidance_find(&r, want[i].by_id,
                                                       want[i].key);
        CHECK(x != NULL && x->target.kind == TM_TARGET_TIER &&
              x->target.index == want[i].tier &&
              x->target.mode == TM_MODE_PREFERRED);
    }
    CHECK(guidance_find(&r, false, 0) == NULL);
    CHECK(guidance_find(&r, false, 12) == NULL);
    guidance_free(&r);
    free(text);
    guide_free(&g);

    /* no sites: a header only, still a valid file */
    memset(&g, 0, sizeof g);
    text = guide_format(&g, NULL, &len);
    REQUIRE_VOID(text != NULL);
    CHECK(strcmp(text, "tiermem-guidance 1\n") == 0);
    memset(&r, 0, sizeof r);
    CHECK(guidance_parse(text, len, "empty", &r) == 0);
    guidance_free(&r);
    free(text);
}

int main(void)
{
    log_configure(TM_LOG_ERROR, 2);
    test_merge();
    test_capacity_parse();
    test_placement();
    test_one_tier();
    test_format_parses();
    return tm_test_done("test_guide");
}
