/*
 * dyn_policy.c -- the online policy, end to end: a program with one hot and
 * one cold array, started entirely on the slowest tier, ends with its hot
 * arena on the fastest tier and its cold arena still on the slowest, under
 * the LD_PRELOAD library, checked with move_pages.
 *
 * A DYNAMIC guest test (dyn_*.c): it does not link tiermem.  The parent
 * runs itself once more under LD_PRELOAD=$TM_PRELOAD_LIB with
 *
 *   TIERMEM_POLICY=online  TIERMEM_POLICY_EVERY=2
 *   TIERMEM_POLICY_CAPACITY=36M (tier 0: the hot array fits, both do not)
 *   TIERMEM_POLICY_BUDGET=0 (no limit)  TIERMEM_DEFAULT_TIER=<slowest>
 *   TIERMEM_PROFILE=1  TIERMEM_PROFILE_SAMPLER=uffd
 *   TIERMEM_PROFILE_INTERVAL=50ms  TIERMEM_PROFILE_RESIDENCY_EVERY=1
 *   TIERMEM_PROFILE_FILE=/tmp/dyn_policy/prof.txt
 *   TIERMEM_LOG=info  TIERMEM_LOG_FILE=/tmp/dyn_policy/log.txt
 *
 * The child: two 24 MiB arrays from two allocation sites (alloc_hot,
 * alloc_cold), so two arenas.  It writes every page of each exactly once,
 * then checks where they are, then writes the hot array (one store per
 * page per pass) and never the cold one again; after every pass it asks
 * move_pages where every page of both arrays is, and stops when every hot
 * page is on the fastest tier's node(s) and every cold page on the
 * slowest's, or after DEADLINE_S (a bound on the wait, not a check of
 * speed).  Checks:
 *
 *   started-slow   right after the first touch, every page of both arrays
 *                  is on the slowest tier.  This cannot race with the
 *                  policy: the child disables transparent huge pages
 *                  (prctl PR_SET_THP_DISABLE, so a first touch maps exactly
 *                  the page written) and writes each page once, so until
 *                  this check no write hits a page that was already
 *                  resident; the uffd sampler sees only such writes, so both
 *                  arenas have zero heat, and the policy never chooses an
 *                  arena with zero heat for a faster tier;
 *   hot-on-fast    at the end, every hot page is on the fastest tier;
 *   cold-on-slow   at the end, every cold page is on the slowest tier;
 *   cold-stayed-slow  every observation after every pass had every cold
 *                  page on the slowest tier;
 *   new-{hot,cold}-block-{arena,fast,slow}  then each site allocates a
 *                  new 4 MiB block: it is in the site's arena, and on its
 *                  first touch the hot site's is on the fastest tier (the
 *                  site is known to be hot: its new allocations go straight
 *                  there) and the cold site's on the slowest.
 *
 * The parent, after the child ended (the files say what happened):
 *
 *   log-hot-promoted       the log has an "online: arena <hot> (...) tier
 *                          A -> 0" line;
 *   log-cold-not-promoted  no "online:" line moves the cold arena to any
 *                          tier but the slowest;
 *   profile-complete       the profile exists under its final name, no
 *                          .partial left, trailer count = its intervals;
 *   profile-residency      its last interval (measured at exit) has the hot
 *                          arena's resident bytes on the fastest tier and
 *                          the cold arena's on the slowest (at least 90%
 *                          of an array each, under 10% elsewhere: residency
 *                          is sampled at a stride and scaled);
 *   profile-{hot,cold}-started-slow  the library's own view of the start:
 *                          the arena has intervals whose row places it on
 *                          the slowest tier, and none of them has resident
 *                          bytes elsewhere.  Residency and the policy's
 *                          moves both run on the profiling thread, so such
 *                          a row was measured before any move of the arena.
 *
 * Tiers come from TM_EXPECT_TIERS (topology 3: HBM node 1 is tier 0, the
 * small CXL node 2 the slowest).  On a guest with one node it skips.
 * Knobs (TM_GUEST_ENV), to see the test fail on purpose:
 * TM_DYN_POLICY=none (TIERMEM_POLICY), TM_DYN_POLICY_CAPACITY=16M.
 * Files stay in the guest's /tmp/dyn_policy/; the log's policy lines and
 * the profile's first and last residency rows are shown as diagnostics.
 */
#include "dyn.h"

#include <sys/prctl.h>

#define ARRAY_SIZE (24 * DYN_MIB)
/* pages an array spans (jemalloc may start a large block past a page
 * boundary: one page more) */
#define SPAN_MAX (ARRAY_SIZE / TG_PAGE + 1)
#define CAPACITY "36M"          /* tier 0 for the policy: one array, not two */
#define NEW_BLOCK (4 * DYN_MIB) /* allocated by each site after the move */
#define DEADLINE_S 150          /* the child's wait for the placement */
#define CHILD_DEADLINE_S 200    /* the parent's for the child (init: 240) */
#define WORKDIR "/tmp/dyn_policy"
#define PROFILE WORKDIR "/prof.txt"
#define LOGFILE WORKDIR "/log.txt"
#define INFO WORKDIR "/child.info"

/* ------------------------------------------------------------ the sites */

enum { S_HOT, S_COLD, NSITES };
static const char *const site_name[NSITES] = {"hot", "cold"};

/* One function per site: two stack keys, two arenas.  Each stores its own
 * marker after the call, so malloc is no tail call (frame 0 of the key is
 * in the function) and the bodies differ (no identical-code folding); the
 * marker is not in the array, whose pages stay untouched. */
volatile char dyn_policy_marker;

__attribute__((noinline)) void *alloc_hot(size_t size)
{
    void *p = malloc(size);
    dyn_policy_marker = 'H';
    return p;
}

__attribute__((noinline)) void *alloc_cold(size_t size)
{
    void *p = malloc(size);
    dyn_policy_marker = 'C';
    return p;
}

/* A site's key is its call stack, 2 frames deep by default: the frame in
 * alloc_hot or alloc_cold and the one here.  Every block of the test comes
 * through this one function, so a block allocated later comes from the
 * same site as the array, whoever asks. */
__attribute__((noinline)) static unsigned char *from_site(bool hot,
                                                          size_t size)
{
    unsigned char *p = hot ? alloc_hot(size) : alloc_cold(size);
    dyn_policy_marker = 'S'; /* no tail call: this frame stays */
    return p;
}

/* ------------------------------------------------------------ pages */

/* The pages of [p, p + size): the first at p itself, the others at their
 * page boundaries.  Returns how many (at most SPAN_MAX for ARRAY_SIZE). */
static size_t span_pages(void *p, size_t size, volatile unsigned char **at)
{
    uintptr_t a = (uintptr_t)p, end = a + size;
    size_t n = 0;
    at[n++] = p;
    for (uintptr_t q = (a & ~(TG_PAGE - 1)) + TG_PAGE; q < end; q += TG_PAGE)
        at[n++] = (volatile unsigned char *)q;
    return n;
}

/* One store in every page of the array. */
static void write_pages(volatile unsigned char *const *at, size_t n,
                        unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        *at[i] = v;
}

/* Where the pages of one array are.  The buffers are static, not from
 * malloc: the check must not add allocations (and arenas) of its own. */
typedef struct where {
    size_t pages;                   /* pages queried */
    size_t in;                      /* pages on a node of the mask */
    size_t on[TG_MAX_NODES];
    size_t absent, busy, errors;
} where_t;

static bool where_in(volatile unsigned char *const *at, size_t n,
                     uint64_t mask, where_t *w)
{
    static void *pages[SPAN_MAX];
    static int status[SPAN_MAX];
    memset(w, 0, sizeof *w);
    w->pages = n;
    for (size_t i = 0; i < n; i++)
        pages[i] = (void *)((uintptr_t)at[i] & ~(TG_PAGE - 1));
    if (tg_query_pages(pages, status, n, 20) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        int s = status[i];
        if (s >= 0 && s < TG_MAX_NODES) {
            w->on[s]++;
            if (mask >> s & 1)
                w->in++;
        } else if (s == -ENOENT || s == -EFAULT) {
            w->absent++;
        } else if (s == -EBUSY) {
            w->busy++;
        } else {
            w->errors++;
        }
    }
    return true;
}

static const char *where_str(const where_t *w, char *buf, size_t len)
{
    int o = snprintf(buf, len, "%zu/%zu in", w->in, w->pages);
    for (unsigned n = 0; n < TG_MAX_NODES && o > 0 && (size_t)o < len; n++)
        if (w->on[n])
            o += snprintf(buf + o, len - (size_t)o, " node%u=%zu", n,
                          w->on[n]);
    if (o > 0 && (size_t)o < len && (w->absent || w->busy || w->errors))
        snprintf(buf + o, len - (size_t)o, " absent=%zu busy=%zu err=%zu",
                 w->absent, w->busy, w->errors);
    return buf;
}

/* ------------------------------------------------------------ the child */

/* Once the hot site's arena is on the fast tier, the site's new
 * allocations go there from their first touch (the migration made the
 * fast tier the arena's placement), and the cold site's stay slow. */
static void check_new_blocks(void *(*arena_of)(const void *), void *ah,
                             void *ac, uint64_t fast, uint64_t slow)
{
    static volatile unsigned char *np[SPAN_MAX];
    struct {
        const char *in_arena, *check;
        unsigned char *p;
        void *arena;
        uint64_t want;
    } blk[2] = {{"new-hot-block-arena", "new-hot-block-fast",
                 from_site(true, NEW_BLOCK), ah, fast},
                {"new-cold-block-arena", "new-cold-block-slow",
                 from_site(false, NEW_BLOCK), ac, slow}};
    for (int i = 0; i < 2; i++) {
        char a[256], m[64];
        where_t w;
        if (!tg_check(blk[i].in_arena, blk[i].p && arena_of(blk[i].p) ==
                                                    blk[i].arena,
                      "a new %lu MiB block %p is not in its site's arena",
                      NEW_BLOCK / DYN_MIB, (void *)blk[i].p))
            continue;
        size_t n = span_pages(blk[i].p, NEW_BLOCK, np);
        write_pages(np, n, 'n');
        bool q = where_in(np, n, blk[i].want, &w);
        tg_mask_str(blk[i].want, m, sizeof m);
        tg_check(blk[i].check, q && w.in == n,
                 "%s%s: new block %p: %s, want every page on nodes %s",
                 q ? "" : "move_pages failed: ", q ? "" : strerror(errno),
                 (void *)blk[i].p, q ? where_str(&w, a, sizeof a) : "-", m);
    }
}

static int child_main(void)
{
    /* stdout's buffer in .bss: no allocation of the test's own gets heat */
    static char outbuf[4096];
    setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf);
    dyn_tiers_t t;
    dyn_expected_tiers(tg_node_count(), &t);
    uint64_t fast = t.mask[0], slow = t.mask[t.n - 1];
    char fm[64], sm[64], a[256], b[256];
    tg_mask_str(fast, fm, sizeof fm);
    tg_mask_str(slow, sm, sizeof sm);

    void *(*arena_of)(const void *);
    unsigned (*arena_id)(const void *);
    dyn_sym("tm_arena_of", &arena_of);
    dyn_sym("tm_arena_id", &arena_id);
    if (!tg_check("preloaded", arena_of && arena_id,
                  "tm_arena_of/tm_arena_id not found: is %s preloaded?",
                  tg_env_str("LD_PRELOAD", "(LD_PRELOAD unset)")))
        return tg_done();
    /* A first touch then maps exactly the page written (see started-slow
     * above); set before the arrays exist. */
    if (!tg_check("thp-disable", prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0,
                  "prctl(PR_SET_THP_DISABLE): %s", strerror(errno)))
        return tg_done();

    unsigned char *hot = from_site(true, ARRAY_SIZE);
    unsigned char *cold = from_site(false, ARRAY_SIZE);
    void *ah = hot ? arena_of(hot) : NULL, *ac = cold ? arena_of(cold) : NULL;
    if (!tg_check("alloc", ah && ac && ah != ac,
                  "hot %p (arena %p), cold %p (arena %p): NULL, outside "
                  "tiermem's arenas, or one arena for both sites",
                  (void *)hot, ah, (void *)cold, ac))
        return tg_done();
    unsigned hot_id = arena_id(ah), cold_id = arena_id(ac);
    int fd = open(INFO, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char line[64];
    int l = snprintf(line, sizeof line, "hot %u cold %u\n", hot_id, cold_id);
    if (!tg_check("info", fd >= 0 && write(fd, line, (size_t)l) == l &&
                              close(fd) == 0,
                  "%s: %s", INFO, strerror(errno)))
        return tg_done();
    tg_info("hot array %p arena %u, cold array %p arena %u; fast nodes %s, "
            "slow nodes %s", (void *)hot, hot_id, (void *)cold, cold_id, fm,
            sm);

    /* Every page of each array written exactly once: its first touch. */
    static volatile unsigned char *hp[SPAN_MAX], *cp[SPAN_MAX];
    size_t hn = span_pages(hot, ARRAY_SIZE, hp);
    size_t cn = span_pages(cold, ARRAY_SIZE, cp);
    write_pages(cp, cn, 'c');
    write_pages(hp, hn, 'h');
    where_t wh, wc;
    bool qh = where_in(hp, hn, slow, &wh);
    bool qc = qh && where_in(cp, cn, slow, &wc);
    if (!tg_check("started-slow", qc && wh.in == hn && wc.in == cn,
                  "%s%s: hot %s, cold %s (nodes %s)",
                  qc ? "" : "move_pages failed: ", qc ? "" : strerror(errno),
                  qc ? where_str(&wh, a, sizeof a) : "-",
                  qc ? where_str(&wc, b, sizeof b) : "-", sm))
        return tg_done();

    /* Write the hot array until it is on the fast tier and the cold one on
     * the slow tier. */
    double t0 = dyn_now_s(), last_show = -100;
    unsigned long passes = 0;
    bool done = false, cold_stayed = true, queried = true;
    char first_off[300] = "";
    size_t shown_hot = SIZE_MAX;
    for (unsigned char v = 1; !done; v++) {
        write_pages(hp, hn, v);
        passes++;
        queried = where_in(hp, hn, fast, &wh) && where_in(cp, cn, slow, &wc);
        if (!queried)
            break;
        if (wc.in != cn && cold_stayed) {
            cold_stayed = false;
            snprintf(first_off, sizeof first_off, "after pass %lu (%.1f s): "
                     "cold %s", passes, dyn_now_s() - t0,
                     where_str(&wc, b, sizeof b));
        }
        done = wh.in == hn && wc.in == cn;
        double t = dyn_now_s() - t0;
        if (done || wh.in != shown_hot || t - last_show >= 10) {
            tg_info("%.1f s, pass %lu: hot on fast nodes %s: %s; cold on "
                    "slow nodes %s: %s", t, passes, fm,
                    where_str(&wh, a, sizeof a), sm,
                    where_str(&wc, b, sizeof b));
            shown_hot = wh.in;
            last_show = t;
        }
        if (t > DEADLINE_S)
            break;
    }
    if (!tg_check("query", queried, "move_pages failed: %s", strerror(errno)))
        return tg_done();
    tg_check("hot-on-fast", wh.in == hn,
             "after %lu passes over %d s: hot array %p (arena %u): %s, want "
             "every page on nodes %s", passes, DEADLINE_S, (void *)hot,
             hot_id, where_str(&wh, a, sizeof a), fm);
    tg_check("cold-on-slow", wc.in == cn,
             "cold array %p (arena %u): %s, want every page on nodes %s",
             (void *)cold, cold_id, where_str(&wc, b, sizeof b), sm);
    tg_check("cold-stayed-slow", cold_stayed, "%s", first_off);
    if (wh.in == hn)
        check_new_blocks(arena_of, ah, ac, fast, slow);
    /* The arrays stay allocated: the profile's last residency pass, at
     * exit, shows where they ended. */
    return tg_done();
}

/* ------------------------------------------------------------ the parent */

/* The log's policy lines, and what they did to the two arenas. */
typedef struct moves {
    unsigned hot_to_fast;   /* hot: any tier -> 0 */
    unsigned hot_moves, cold_moves;
    unsigned cold_up;       /* cold: to a tier other than the slowest */
    char cold_line[300];    /* the first such line */
} moves_t;

static bool read_log(const char *path, unsigned hot_id, unsigned cold_id,
                     unsigned slowest, moves_t *m, char *why, size_t wl)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, wl, "%s: %s", path, strerror(errno));
        return false;
    }
    char line[1024];
    unsigned shown = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *o = strstr(line, "online: ");
        if ((o || strstr(line, "policy") || strstr(line, "sampler")) &&
            shown++ < 40)
            tg_info("log: %s", line);
        unsigned id, from, to;
        unsigned long long bytes;
        if (!o || sscanf(o, "online: arena %u (%llu bytes) tier %u -> %u",
                         &id, &bytes, &from, &to) != 4)
            continue;
        if (id == hot_id) {
            m->hot_moves++;
            if (to == 0)
                m->hot_to_fast++;
        }
        if (id == cold_id) {
            m->cold_moves++;
            if (to != slowest && m->cold_up++ == 0)
                snprintf(m->cold_line, sizeof m->cold_line, "%s", o);
        }
    }
    fclose(f);
    return true;
}

/* What the profile says about the two arenas (doc/profile-format.md). */
typedef struct residency {
    uint64_t seq;                 /* interval, 0 if none measured */
    uint64_t on[TG_MAX_NODES];    /* resident bytes per node */
    char nodes[24];               /* the arena row's node mask */
} residency_t;

typedef struct profile_facts {
    dyn_profile_t d;
    residency_t first[NSITES], last[NSITES]; /* first/last measured */
    /* intervals whose row puts the arena on the slow nodes: how many, how
     * many of them have bytes elsewhere (the first such one) */
    unsigned slow_rows[NSITES], slow_rows_off[NSITES];
    residency_t slow_off[NSITES];
    /* while reading: the arenas, the slow nodes, the interval being read */
    const unsigned *ids;
    uint64_t slow, seq;
    residency_t cur[NSITES];
} profile_facts_t;

/* Any resident bytes outside mask. */
static bool bytes_outside(const residency_t *r, uint64_t mask)
{
    for (unsigned n = 0; n < TG_MAX_NODES; n++)
        if (!(mask >> n & 1) && r->on[n])
            return true;
    return false;
}

/* One line of the profile: the two arenas' rows and resident bytes of the
 * interval being read, taken in at its "end" line. */
static void read_residency(const char *line, void *ctx)
{
    profile_facts_t *p = ctx;
    residency_t *cur = p->cur;
    unsigned long long x, y, z;
    char kind[16], mode[16], nodes[24], res[32];
    if (sscanf(line, "interval %llu", &x) == 1) {
        p->seq = x;
        memset(cur, 0, sizeof p->cur);
    } else if (sscanf(line, "arena %llu %15s %llu %15s %23s %llu %llu "
                            "%llu %llu %llu %llu %llu %31s",
                      &x, kind, &y, mode, nodes, &z, &z, &z, &z, &z, &z, &z,
                      res) == 13) {
        for (int i = 0; i < NSITES; i++)
            if (x == p->ids[i] && strcmp(res, "-") != 0) {
                cur[i].seq = p->seq;
                snprintf(cur[i].nodes, sizeof cur[i].nodes, "%s", nodes);
            }
    } else if (sscanf(line, "resident %llu %llu %llu", &x, &y, &z) == 3) {
        for (int i = 0; i < NSITES; i++)
            if (x == p->ids[i] && y < TG_MAX_NODES)
                cur[i].on[y] = z;
    } else if (sscanf(line, "end %llu", &x) == 1) {
        for (int i = 0; i < NSITES; i++)
            if (cur[i].seq) {
                if (!p->first[i].seq)
                    p->first[i] = cur[i];
                p->last[i] = cur[i];
                if (strtoull(cur[i].nodes, NULL, 16) != p->slow)
                    continue;
                p->slow_rows[i]++;
                if (bytes_outside(&cur[i], p->slow) &&
                    p->slow_rows_off[i]++ == 0)
                    p->slow_off[i] = cur[i];
            }
    }
}

static bool read_profile(const char *path, const unsigned ids[NSITES],
                         uint64_t slow, profile_facts_t *p, char *why,
                         size_t wl)
{
    memset(p, 0, sizeof *p);
    p->ids = ids;
    p->slow = slow;
    return dyn_read_profile(path, &p->d, read_residency, p, why, wl);
}

static const char *residency_str(const residency_t *r, char *buf, size_t len)
{
    int o = snprintf(buf, len, "interval %llu, arena nodes %s:",
                     (unsigned long long)r->seq, r->nodes);
    for (unsigned n = 0; n < TG_MAX_NODES && o > 0 && (size_t)o < len; n++)
        if (r->on[n])
            o += snprintf(buf + o, len - (size_t)o, " node%u=%llu", n,
                          (unsigned long long)r->on[n]);
    return buf;
}

/* At least 90% of an array on the mask's nodes, under 10% elsewhere. */
static bool resident_on(const residency_t *r, uint64_t mask)
{
    uint64_t in = 0, out = 0;
    for (unsigned n = 0; n < TG_MAX_NODES; n++)
        if (mask >> n & 1)
            in += r->on[n];
        else
            out += r->on[n];
    return r->seq && in >= ARRAY_SIZE / 10 * 9 && out < ARRAY_SIZE / 10;
}

int main(int argc, char **argv)
{
    tg_begin("dyn_policy");
    if (argc == 2 && strcmp(argv[1], "run") == 0)
        return child_main();

    unsigned nodes = tg_node_count();
    char preload[600];
    if (!dyn_preload_var(nodes, preload, sizeof preload))
        return tg_done();
    dyn_tiers_t t;
    if (!dyn_check_tiers(nodes, &t))
        return tg_done();
    unsigned slowest = (unsigned)(t.n - 1);
    uint64_t fast = t.mask[0], slow = t.mask[slowest];
    char fm[64], sm[64];
    tg_mask_str(fast, fm, sizeof fm);
    tg_mask_str(slow, sm, sizeof sm);

    const char *const old[] = {PROFILE, PROFILE ".partial", LOGFILE, INFO,
                               NULL};
    if (!dyn_workdir(WORKDIR, NULL, old))
        return tg_done();

    char policy[64], capacity[64], deftier[64];
    snprintf(policy, sizeof policy, "TIERMEM_POLICY=%s",
             tg_env_str("TM_DYN_POLICY", "online"));
    snprintf(capacity, sizeof capacity, "TIERMEM_POLICY_CAPACITY=%s",
             tg_env_str("TM_DYN_POLICY_CAPACITY", CAPACITY));
    snprintf(deftier, sizeof deftier, "TIERMEM_DEFAULT_TIER=%u", slowest);
    const char *env[] = {
        preload,
        policy,
        "TIERMEM_POLICY_EVERY=2",
        capacity,
        "TIERMEM_POLICY_BUDGET=0",
        deftier,
        "TIERMEM_PROFILE=1",
        "TIERMEM_PROFILE_SAMPLER=uffd",
        "TIERMEM_PROFILE_INTERVAL=50ms",
        "TIERMEM_PROFILE_RESIDENCY_EVERY=1",
        "TIERMEM_PROFILE_FILE=" PROFILE,
        "TIERMEM_LOG=info",
        "TIERMEM_LOG_FILE=" LOGFILE,
    };
    int st = dyn_run(&(dyn_run_t){.label = "run", .path = "/proc/self/exe",
                                  .argv = (char *[]){"dyn_policy", "run", NULL},
                                  .extra = env,
                                  .nextra = sizeof env / sizeof env[0],
                                  .check = "run", .exec_check = "exec",
                                  .what = "the run ",
                                  .deadline_s = CHILD_DEADLINE_S});
    (void)dyn_child_ok("run", st);

    unsigned ids[NSITES] = {0, 0};
    FILE *f = fopen(INFO, "re");
    bool have_ids = f && fscanf(f, "hot %u cold %u", &ids[S_HOT],
                                &ids[S_COLD]) == 2;
    if (f)
        fclose(f);
    if (!tg_check("arena-ids", have_ids, "%s: %s", INFO,
                  f ? "no \"hot N cold N\" line" : strerror(errno)))
        return tg_done();

    char why[700];
    moves_t m;
    if (tg_check("log-read", read_log(LOGFILE, ids[S_HOT], ids[S_COLD],
                                      slowest, &m, why, sizeof why),
                 "%s", why)) {
        tg_check("log-hot-promoted", m.hot_to_fast > 0,
                 "no \"online: arena %u (...) tier A -> 0\" line in %s (%u "
                 "lines move the hot arena)", ids[S_HOT], LOGFILE,
                 m.hot_moves);
        tg_check("log-cold-not-promoted", m.cold_up == 0,
                 "%u lines move the cold arena %u to a tier other than %u, "
                 "the first: \"%s\"", m.cold_up, ids[S_COLD], slowest,
                 m.cold_line);
    }

    profile_facts_t pf;
    if (!tg_check("profile-read", read_profile(PROFILE, ids, slow, &pf, why,
                                               sizeof why),
                  "%s", why))
        return tg_done();
    tg_info("profile: %ld intervals, trailer %ld, sampler %s",
            pf.d.intervals, pf.d.complete,
            pf.d.sampler[0] ? pf.d.sampler : "?");
    char r1[300], r2[300];
    for (int i = 0; i < NSITES; i++)
        tg_info("profile: %s arena %u: first measured %s; last %s",
                site_name[i], ids[i],
                residency_str(&pf.first[i], r1, sizeof r1),
                residency_str(&pf.last[i], r2, sizeof r2));
    dyn_check_profile(PROFILE, &pf.d, 1, "");
    /* The library's own view of the start: residency and the policy's
     * moves both run on the profiling thread, so a row that puts an arena
     * on the slow nodes was measured before any move of it. */
    for (int i = 0; i < NSITES; i++) {
        char check[64];
        snprintf(check, sizeof check, "profile-%s-started-slow",
                 site_name[i]);
        tg_check(check, pf.slow_rows[i] > 0 && pf.slow_rows_off[i] == 0,
                 "%u of the %u intervals that place arena %u on nodes %s "
                 "have bytes elsewhere; the first: %s", pf.slow_rows_off[i],
                 pf.slow_rows[i], ids[i], sm,
                 residency_str(&pf.slow_off[i], r1, sizeof r1));
    }
    tg_check("profile-residency",
             resident_on(&pf.last[S_HOT], fast) &&
                 resident_on(&pf.last[S_COLD], slow),
             "last residency: hot %s (want nodes %s), cold %s (want nodes "
             "%s)", residency_str(&pf.last[S_HOT], r1, sizeof r1), fm,
             residency_str(&pf.last[S_COLD], r2, sizeof r2), sm);
    return tg_done();
}
