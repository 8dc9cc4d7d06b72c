/*
 * dyn_guide.c -- offline guidance, end to end: a profiled run, then
 * `tiermem-guide` on its profile, then a guided run whose pages land where
 * the tool said, under the LD_PRELOAD library, checked with move_pages.
 *
 * A DYNAMIC guest test (dyn_*.c): it does not link tiermem.  The parent
 * runs itself twice under LD_PRELOAD=$TM_PRELOAD_LIB and runs the tool in
 * between:
 *
 *   1. "profile": TIERMEM_PROFILE=1 with the uffd sampler, 50 ms
 *      intervals, TIERMEM_PROFILE_FILE in the work directory and a site
 *      table (TIERMEM_OUTPUT_DIR).  Two 24 MiB arrays from two allocation
 *      sites (alloc_hot, alloc_cold: noinline, exported with -rdynamic, so
 *      the site table names them).  The cold array is written once, at the
 *      start; the hot array once per page per pass, pass after pass, until
 *      the profile being written (its .partial) holds PROFILE_INTERVALS
 *      whole intervals.  Checks: the run ends cleanly; the profile exists
 *      under its final name (no .partial left), ends with a "complete N"
 *      trailer matching its intervals, and was sampled by uffd; the site
 *      table names both sites.
 *   2. `tiermem-guide --capacity 32M[,0...] -o guidance.txt prof.txt` in
 *      the guest (/usr/bin/tiermem-guide, put there by run-rig.sh): 32 MiB
 *      for tier 0 fits the hot array but not both; the middle tiers of
 *      topology 3 get capacity 0, so whatever is not on tier 0 goes to the
 *      slowest tier.  Checks: the tool exits 0; the guidance's tier 0 rules
 *      name exactly the hot site's key; the cold site's rule names the
 *      slowest tier.
 *   3. "place": TIERMEM_GUIDANCE=guidance.txt and TIERMEM_DEFAULT_TIER set
 *      to the slowest tier (unguided sites go slow); the same two sites,
 *      every page touched.  Checks (in the child, move_pages): every page
 *      of the hot array is on the fastest tier's node(s), every page of the
 *      cold array on the slowest tier's.  The parent then checks that the
 *      second run's site table has the same keys as the first while the
 *      executable's base moved (ASLR): the hot site was found by its stable
 *      stack key, not by luck.
 *
 * Tiers come from TM_EXPECT_TIERS (topology 3: HBM node 1 is tier 0, the
 * small CXL node 2 the slowest).  On a guest with one node it skips.
 * Knob (TM_GUEST_ENV), to see the test fail on purpose:
 * TM_DYN_GUIDE_CAPACITY=16M (tier 0's capacity for the tool).
 * Files stay in the guest's /tmp/dyn_guide/ and are shown as diagnostics.
 */
#include "dyn.h"

#define ARRAY_SIZE (24 * DYN_MIB)
#define CAPACITY "32M"        /* fits one array and not two */
#define PROFILE_INTERVALS 40  /* whole intervals the profiled run waits for */
#define PROFILE_WAIT_S 60     /* at most this long (a bound, not a check) */
#define DEFAULT_GUIDE "/usr/bin/tiermem-guide"
#define WORKDIR "/tmp/dyn_guide"
#define PROFILE WORKDIR "/prof.txt"
#define GUIDANCE WORKDIR "/guidance.txt"
#define CHILD_DEADLINE_S 100
#define TOOL_DEADLINE_S 60

/* ------------------------------------------------------------ the sites */

enum { S_HOT, S_COLD, NSITES };
static const char *const site_fn[NSITES] = {"alloc_hot", "alloc_cold"};
static const char *const site_name[NSITES] = {"hot", "cold"};

/* One function per site (DYN_SITE_FN). */
DYN_SITE_FN(alloc_hot, ARRAY_SIZE, 'H')
DYN_SITE_FN(alloc_cold, ARRAY_SIZE, 'C')

/* Both runs allocate through here, so both sites have the same stacks. */
__attribute__((noinline)) static void workload(void *blk[NSITES])
{
    blk[S_HOT] = alloc_hot();
    blk[S_COLD] = alloc_cold();
}

/* ------------------------------------------------------------ children */

/* Whole intervals in the profile being written: its "end N" lines.  No
 * stdio and no malloc: a buffer tiermem allocated and the kernel wrote
 * would be sampled, and its site would compete with the hot one. */
static long partial_intervals(const char *path)
{
    static char buf[64 * 1024];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long ends = 0;
    bool bol = true;   /* at the beginning of a line */
    char prev[4] = ""; /* "end " may straddle two reads */
    size_t np = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (np < 4 && (bol || np > 0)) {
                prev[np++] = c;
                if (np == 4 && memcmp(prev, "end ", 4) == 0)
                    ends++;
            }
            bol = c == '\n';
            if (bol)
                np = 0;
        }
    }
    (void)close(fd); /* read-only */
    return n < 0 ? -1 : ends;
}

/* The child's half.  "profile": allocate, write cold once and hot until
 * the profile has enough intervals.  "place": allocate, touch, check. */
static int child_main(const char *mode, const char *info_path)
{
    /* stdout's buffer in .bss, not from tiermem: see partial_intervals. */
    static char outbuf[4096];
    setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf);
    bool place = strcmp(mode, "place") == 0;
    char name[64];
    void *(*arena_of)(const void *);
    dyn_sym("tm_arena_of", &arena_of);
    if (!arena_of) {
        snprintf(name, sizeof name, "%s-preloaded", mode);
        tg_check(name, false, "tm_arena_of not found: is %s preloaded?",
                 tg_env_str("LD_PRELOAD", "(LD_PRELOAD unset)"));
        return tg_done();
    }

    void *blk[NSITES];
    workload(blk);

    /* Where this run's executable is: the parent compares the two runs. */
    int fd = open(info_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        char line[64];
        int l = snprintf(line, sizeof line, "main %p\n", (void *)&child_main);
        if (write(fd, line, (size_t)l) != l || close(fd) != 0)
            tg_info("writing %s: %s", info_path, strerror(errno));
    } else {
        tg_info("creating %s: %s", info_path, strerror(errno));
    }

    snprintf(name, sizeof name, "%s-alloc", mode);
    if (!tg_check(name,
                  blk[S_HOT] && blk[S_COLD] && arena_of(blk[S_HOT]) &&
                      arena_of(blk[S_COLD]) &&
                      arena_of(blk[S_HOT]) != arena_of(blk[S_COLD]),
                  "hot %p (arena %p), cold %p (arena %p): NULL, outside "
                  "tiermem's arenas, or one arena for both sites",
                  blk[S_HOT], blk[S_HOT] ? arena_of(blk[S_HOT]) : NULL,
                  blk[S_COLD], blk[S_COLD] ? arena_of(blk[S_COLD]) : NULL))
        return tg_done();

    tg_touch(blk[S_COLD], ARRAY_SIZE, 'c');
    tg_touch(blk[S_HOT], ARRAY_SIZE, 'h');

    if (place) {
        dyn_tiers_t t;
        dyn_expected_tiers(tg_node_count(), &t);
        uint64_t want[NSITES] = {t.mask[0], t.mask[t.n - 1]};
        for (int i = 0; i < NSITES; i++)
            dyn_check_pages(site_name[i], site_fn[i], blk[i], ARRAY_SIZE,
                            want[i]);
    } else {
        /* Keep writing the hot array until the profile has the intervals
         * (observed in its .partial); the deadline only bounds the wait. */
        volatile unsigned char *hot = blk[S_HOT];
        double t0 = dyn_now_s(), next_look = t0;
        long have = 0;
        unsigned long passes = 0;
        for (unsigned char v = 1;; v++, passes++) {
            for (size_t off = 0; off < ARRAY_SIZE; off += TG_PAGE)
                hot[off] = v;
            double t = dyn_now_s();
            if (t < next_look)
                continue;
            next_look = t + 0.25;
            have = partial_intervals(PROFILE ".partial");
            if (have >= PROFILE_INTERVALS || t - t0 > PROFILE_WAIT_S)
                break;
        }
        tg_info("profile run: %lu passes over the hot array, %ld whole "
                "intervals in %s.partial", passes, have, PROFILE);
        tg_check("profile-intervals", have >= PROFILE_INTERVALS,
                 "%s.partial holds %ld whole intervals after %d s, want %d "
                 "(-1: unreadable: %s)", PROFILE, have, PROFILE_WAIT_S,
                 PROFILE_INTERVALS, have < 0 ? strerror(errno) : "-");
    }
    for (int i = 0; i < NSITES; i++)
        free(blk[i]);
    return tg_done();
}

/* ------------------------------------------------------------ files */

/* The keys of the two sites, from the site table one run wrote in dir,
 * found by the function of frame 0; false (t->why says) unless it has
 * both. */
static bool read_table(const char *dir, dyn_table_t *t)
{
    if (!dyn_read_table(dir, site_fn, NSITES, -1, t))
        return false;
    snprintf(t->why, sizeof t->why, "%s: no site with frame 0 in%s%s",
             t->path, t->site[S_HOT].have ? "" : " alloc_hot",
             t->site[S_COLD].have ? "" : " alloc_cold");
    return t->site[S_HOT].have && t->site[S_COLD].have;
}

/* What the profile says (dyn_read_profile), and the samples of the two
 * sites, found by key. */
typedef struct profile_facts {
    dyn_profile_t d;
    const dyn_table_t *keys;
    uint64_t samples[NSITES]; /* summed site rows, by key */
    /* site index -> which of ours (by its sitedef key); few sites here */
    signed char which[4096];
} profile_facts_t;

static void count_samples(const char *line, void *ctx)
{
    profile_facts_t *p = ctx;
    unsigned long long a, b, c;
    long long id;
    if (sscanf(line, "sitedef %llu %llx %lld", &a, &b, &id) == 3) {
        if (a < sizeof p->which)
            for (int i = 0; i < NSITES; i++)
                if (p->keys->site[i].have && b == p->keys->site[i].key)
                    p->which[a] = (signed char)i;
    } else if (sscanf(line, "site %llu %llu %llu", &a, &b, &c) == 3) {
        if (a < sizeof p->which && p->which[a] >= 0)
            p->samples[(int)p->which[a]] += c;
    }
}

static bool read_profile(const char *path, const dyn_table_t *keys,
                         profile_facts_t *p, char *why, size_t wl)
{
    memset(p, 0, sizeof *p);
    p->keys = keys;
    memset(p->which, -1, sizeof p->which);
    return dyn_read_profile(path, &p->d, count_samples, p, why, wl);
}

/* ------------------------------------------------------------ the tool */

typedef struct rules {
    unsigned ntier0;          /* rules naming tier 0 */
    bool tier0_hot;           /* one of them is the hot key */
    bool other_tier0;         /* one of them is another site */
    char other[80];           /* the first other site on tier 0 */
    long tier[NSITES];        /* the tier of each site's rule, -1 if none */
    unsigned nrules;
} rules_t;

static bool read_guidance(const char *path, const dyn_table_t *keys,
                          rules_t *r, char *why, size_t wl)
{
    memset(r, 0, sizeof *r);
    r->tier[S_HOT] = r->tier[S_COLD] = -1;
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, wl, "%s: %s", path, strerror(errno));
        return false;
    }
    char line[1024];
    bool header = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long long key;
        unsigned tier;
        char sel[8];
        if (strncmp(line, "tiermem-guidance 1", 18) == 0) {
            header = true;
            continue;
        }
        if (sscanf(line, "%7s %llx tier %u", sel, &key, &tier) != 3)
            continue;
        r->nrules++;
        bool is_key = strcmp(sel, "key") == 0;
        int site = -1;
        for (int i = 0; i < NSITES; i++)
            if (is_key && key == keys->site[i].key)
                site = i;
        if (site >= 0)
            r->tier[site] = tier;
        if (tier != 0)
            continue;
        r->ntier0++;
        if (site == S_HOT) {
            r->tier0_hot = true;
        } else if (!r->other_tier0) {
            r->other_tier0 = true;
            snprintf(r->other, sizeof r->other, "%s %#llx", sel, key);
        }
    }
    fclose(f);
    if (!header) {
        snprintf(why, wl, "%s has no \"tiermem-guidance 1\" header", path);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ parent */

int main(int argc, char **argv)
{
    tg_begin("dyn_guide");
    if (argc == 3)
        return child_main(argv[1], argv[2]);

    unsigned nodes = tg_node_count();
    char preload[600];
    if (!dyn_preload_var(nodes, preload, sizeof preload))
        return tg_done();
    const char *tool = tg_env_str("TM_GUIDE_TOOL", DEFAULT_GUIDE);
    if (!tg_check("guide-tool", access(tool, X_OK) == 0,
                  "%s: %s (run-rig.sh puts BUILD_DIR/tiermem-guide there)",
                  tool, strerror(errno)))
        return tg_done();

    dyn_tiers_t t;
    if (!dyn_check_tiers(nodes, &t))
        return tg_done();
    unsigned slowest = (unsigned)(t.n - 1);

    const char *const subs[] = {WORKDIR "/profile", WORKDIR "/place", NULL};
    const char *const old[] = {PROFILE, PROFILE ".partial", GUIDANCE,
                               WORKDIR "/profile.log", WORKDIR "/place.log",
                               NULL};
    if (!dyn_workdir(WORKDIR, subs, old))
        return tg_done();

    /* 1. the profiled run */
    const char *prof_env[] = {
        preload,
        "TIERMEM_PROFILE=1",
        "TIERMEM_PROFILE_SAMPLER=uffd",
        "TIERMEM_PROFILE_INTERVAL=50ms",
        "TIERMEM_PROFILE_FILE=" PROFILE,
        "TIERMEM_OUTPUT_DIR=" WORKDIR "/profile",
        "TIERMEM_LOG_FILE=" WORKDIR "/profile.log",
    };
    int st = dyn_run_self("profile", WORKDIR "/profile.info", prof_env,
                          sizeof prof_env / sizeof prof_env[0],
                          "profile-run", NULL, CHILD_DEADLINE_S);
    bool run_ok = dyn_child_ok("profile-run", st);
    dyn_show_file("profile log", WORKDIR "/profile.log", 20);
    if (!run_ok)
        return tg_done();

    dyn_table_t learn;
    bool ok = read_table(WORKDIR "/profile", &learn);
    uint64_t hot = learn.site[S_HOT].key, cold = learn.site[S_COLD].key;
    tg_info("profile run: hot key %#llx, cold key %#llx",
            (unsigned long long)hot, (unsigned long long)cold);
    if (!tg_check("profile-sites", ok, "%s", learn.why))
        return tg_done();
    tg_check("profile-keys-distinct", hot != cold,
             "both sites have key %#llx", (unsigned long long)hot);

    profile_facts_t pf;
    char why[700];
    ok = read_profile(PROFILE, &learn, &pf, why, sizeof why);
    if (!tg_check("profile-read", ok, "%s", why))
        return tg_done();
    tg_info("profile: %ld intervals, trailer %ld, sampler %s, hot site %llu "
            "samples, cold site %llu samples", pf.d.intervals, pf.d.complete,
            pf.d.sampler[0] ? pf.d.sampler : "?",
            (unsigned long long)pf.samples[S_HOT],
            (unsigned long long)pf.samples[S_COLD]);
    dyn_check_profile(PROFILE, &pf.d, PROFILE_INTERVALS,
                      " (uffd unavailable? see the log above)");

    /* 2. the tool */
    char capacity[64];
    int co = snprintf(capacity, sizeof capacity, "%s",
                      tg_env_str("TM_DYN_GUIDE_CAPACITY", CAPACITY));
    for (unsigned i = 1; i < slowest && co > 0 && (size_t)co < sizeof capacity;
         i++)
        co += snprintf(capacity + co, sizeof capacity - (size_t)co, ",0");
    char *targv[] = {(char *)"tiermem-guide", (char *)"--capacity", capacity,
                     (char *)"-o", (char *)GUIDANCE, (char *)PROFILE, NULL};
    st = dyn_run(&(dyn_run_t){.label = "guide", .path = tool, .argv = targv,
                              .out = WORKDIR "/guide.out",
                              .check = "guide-run",
                              .deadline_s = TOOL_DEADLINE_S});
    dyn_show_file("guide output", WORKDIR "/guide.out", 20);
    dyn_show_file("guidance", GUIDANCE, 20);
    if (st == -1)
        return tg_done();
    if (!tg_check("guide-run", WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "%s exited with status %d%s (its output is above)", tool,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                  WIFSIGNALED(st) ? ", killed by a signal" : ""))
        return tg_done();
    rules_t r;
    ok = read_guidance(GUIDANCE, &learn, &r, why, sizeof why);
    if (!tg_check("guidance-read", ok, "%s", why))
        return tg_done();
    tg_check("guidance-hot-tier0", r.tier0_hot && r.ntier0 == 1,
             "%u tier 0 rules; the hot key %#llx %s; %s%s", r.ntier0,
             (unsigned long long)hot,
             r.tier0_hot ? "is one of them" : "is not among them",
             r.other_tier0 ? "another on tier 0: " : "no other on tier 0",
             r.other);
    tg_check("guidance-cold-slowest", r.tier[S_COLD] == (long)slowest,
             "the cold key %#llx has %s%ld, want tier %u",
             (unsigned long long)cold,
             r.tier[S_COLD] < 0 ? "no rule " : "tier ", r.tier[S_COLD],
             slowest);

    /* 3. the guided run */
    char gvar[600], dvar[64];
    snprintf(gvar, sizeof gvar, "TIERMEM_GUIDANCE=%s", GUIDANCE);
    snprintf(dvar, sizeof dvar, "TIERMEM_DEFAULT_TIER=%u", slowest);
    const char *place_env[] = {
        preload, gvar, dvar,
        "TIERMEM_OUTPUT_DIR=" WORKDIR "/place",
        "TIERMEM_LOG_FILE=" WORKDIR "/place.log",
    };
    st = dyn_run_self("place", WORKDIR "/place.info", place_env,
                      sizeof place_env / sizeof place_env[0], "place-run",
                      NULL, CHILD_DEADLINE_S);
    run_ok = dyn_child_ok("place-run", st);
    dyn_show_file("place log", WORKDIR "/place.log", 20);
    if (!run_ok && st == -1)
        return tg_done();

    dyn_table_t chk;
    ok = read_table(WORKDIR "/place", &chk);
    uint64_t hot2 = chk.site[S_HOT].key, cold2 = chk.site[S_COLD].key;
    tg_info("place run: hot key %#llx, cold key %#llx",
            (unsigned long long)hot2, (unsigned long long)cold2);
    if (tg_check("place-sites", ok, "%s", chk.why))
        tg_check("keys-stable", hot2 == hot && cold2 == cold,
                 "hot %#llx then %#llx, cold %#llx then %#llx",
                 (unsigned long long)hot, (unsigned long long)hot2,
                 (unsigned long long)cold, (unsigned long long)cold2);
    dyn_check_aslr_moved(WORKDIR "/profile.info", "profiled",
                         WORKDIR "/place.info", "guided");
    return tg_done();
}
