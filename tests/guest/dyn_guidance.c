/*
 * dyn_guidance.c -- a guidance file puts a chosen site's arena on the chosen
 * node, under the LD_PRELOAD library, checked with move_pages.
 *
 * A DYNAMIC guest test (dyn_*.c): it does not link tiermem.  It runs itself
 * twice under LD_PRELOAD=$TM_PRELOAD_LIB, as an unmodified program would be:
 *
 *   1. "learn": the allocations below, untouched, with TIERMEM_OUTPUT_DIR
 *      set; the parent reads the site table written at exit and finds each
 *      site by the function in its first frame (the program is linked with
 *      -rdynamic so dladdr names them) and the sh_alloc site by its id;
 *   2. the parent writes a guidance file from those keys, with one
 *      malformed line in the middle (rules after it must still apply);
 *   3. "check": the same allocations with TIERMEM_GUIDANCE set, every page
 *      touched; the child checks with move_pages where every page is.  The
 *      parent then checks that the keys of both runs are equal (ASLR is on,
 *      and the executable's base must have moved), that the second site
 *      table gives the guided arenas the guided nodes, and that the log
 *      names the malformed line as "file:LINE:".
 *
 * The sites and their rules:
 *   alloc_hot    64 MiB  key -> node 0
 *   alloc_cold   64 MiB  key -> node 1
 *   sh_alloc(7)  16 MiB  id 7 -> node 1 bind
 *   alloc_tiered 16 MiB  key -> the slowest tier, bind (node 2 in topology 3)
 *   alloc_plain  16 MiB  no rule: the default, tier 0 preferred (node 0, or
 *                        node 1 in topology 3, where HBM node 1 is tier 0)
 * Each block is one large allocation, so its pages are its arena's own.
 */
#include "dyn.h"

#define HOT_SIZE (64 * DYN_MIB)
#define COLD_SIZE (64 * DYN_MIB)
#define ID7_SIZE (16 * DYN_MIB)
#define TIERED_SIZE (16 * DYN_MIB)
#define PLAIN_SIZE (16 * DYN_MIB)
#define EXPLICIT_ID 7
#define WORKDIR "/tmp/dyn_guidance"
#define CHILD_DEADLINE_S 120

/* ------------------------------------------------------------ the sites */

enum { S_HOT, S_COLD, S_ID7, S_TIERED, S_PLAIN, NSITES };
static const char *const site_fn[NSITES] = {
    "alloc_hot", "alloc_cold", NULL, "alloc_tiered", "alloc_plain",
};
static const char *const site_name[NSITES] = {
    "hot", "cold", "id7", "tiered", "plain",
};
static const size_t site_size[NSITES] = {
    HOT_SIZE, COLD_SIZE, ID7_SIZE, TIERED_SIZE, PLAIN_SIZE,
};

typedef void *(*sh_alloc_fn)(int, size_t);
typedef void *(*arena_of_fn)(const void *);
static sh_alloc_fn sh_alloc_p;

/* One function per site (DYN_SITE_FN); sh_alloc's has its own. */
DYN_SITE_FN(alloc_hot, HOT_SIZE, 'H')
DYN_SITE_FN(alloc_cold, COLD_SIZE, 'C')
DYN_SITE_FN(alloc_tiered, TIERED_SIZE, 'T')
DYN_SITE_FN(alloc_plain, PLAIN_SIZE, 'P')

__attribute__((noinline)) void *alloc_by_id(void)
{
    unsigned char *p = sh_alloc_p(EXPLICIT_ID, ID7_SIZE);
    if (p)
        p[0] = '7';
    return p;
}

/* Both runs allocate through here, so every site has the same stack. */
__attribute__((noinline)) static void workload(void *blk[NSITES])
{
    blk[S_HOT] = alloc_hot();
    blk[S_COLD] = alloc_cold();
    blk[S_ID7] = alloc_by_id();
    blk[S_TIERED] = alloc_tiered();
    blk[S_PLAIN] = alloc_plain();
}

/* ------------------------------------------------------------ topology */

typedef struct expect {
    uint64_t mask[NSITES];  /* nodes each block's pages may be on */
    unsigned slowest_tier;  /* index for the tier rule */
} expect_t;

/* The expected nodes, from TM_EXPECT_TIERS (the tier order the rig's
 * topology implies); without it, nodes in id order. */
static void expected_nodes(unsigned nodes, expect_t *e)
{
    dyn_tiers_t t;
    dyn_expected_tiers(nodes, &t);
    e->mask[S_HOT] = 1ULL << 0;
    e->mask[S_COLD] = 1ULL << 1;
    e->mask[S_ID7] = 1ULL << 1;
    e->mask[S_TIERED] = t.mask[t.n - 1];
    e->mask[S_PLAIN] = t.mask[0];
    e->slowest_tier = (unsigned)(t.n - 1);
}

/* ------------------------------------------------------------ children */

/* The child's half: "learn" only allocates; "check" touches and checks. */
static int child_main(const char *mode, const char *info_path, unsigned nodes)
{
    arena_of_fn arena_of;
    dyn_sym("sh_alloc", &sh_alloc_p);
    dyn_sym("tm_arena_of", &arena_of);
    bool check = strcmp(mode, "check") == 0;
    if (!sh_alloc_p || !arena_of) {
        tg_check(check ? "check-preloaded" : "learn-preloaded", false,
                 "sh_alloc/tm_arena_of not found: is %s preloaded? (%s)",
                 tg_env_str("LD_PRELOAD", "(LD_PRELOAD unset)"), dlerror());
        return tg_done();
    }

    void *blk[NSITES];
    workload(blk);

    /* Where this run's executable is: the parent compares the two runs. */
    FILE *f = fopen(info_path, "we");
    if (f) {
        fprintf(f, "main %p\n", (void *)&child_main);
        if (fclose(f) != 0)
            tg_info("writing %s: %s", info_path, strerror(errno));
    }

    bool all = true;
    for (int i = 0; i < NSITES; i++)
        all = all && blk[i] && arena_of(blk[i]) != NULL;
    tg_check(check ? "check-alloc" : "learn-alloc", all,
             "a block is NULL or outside tiermem's arenas: hot %p cold %p "
             "id7 %p tiered %p plain %p", blk[0], blk[1], blk[2], blk[3],
             blk[4]);

    if (check && all) {
        expect_t e;
        expected_nodes(nodes, &e);
        for (int i = 0; i < NSITES; i++)
            tg_touch(blk[i], site_size[i], (unsigned char)(i + 1));
        for (int i = 0; i < NSITES; i++)
            dyn_check_pages(site_name[i],
                            site_fn[i] ? site_fn[i] : "sh_alloc(7)", blk[i],
                            site_size[i], e.mask[i]);
    }
    for (int i = 0; i < NSITES; i++)
        free(blk[i]);
    return tg_done();
}

/* ------------------------------------------------------------ site table */

/* The sites of the table one run wrote in dir (dyn_read_table); false
 * (t->why says) unless it has all of them. */
static bool read_table(const char *dir, dyn_table_t *t)
{
    return dyn_read_table_all(dir, site_fn, site_name, NSITES, EXPLICIT_ID, t);
}

static void show_table(const char *what, const dyn_table_t *t)
{
    for (int i = 0; i < NSITES; i++)
        tg_info("%s: %-6s key 0x%016llx arena %u peak %llu nodes %#llx", what,
                site_name[i], (unsigned long long)t->site[i].key,
                t->site[i].arena, t->site[i].peak,
                (unsigned long long)t->site[i].nodes);
}

static bool file_has(const char *path, const char *needle, char *first,
                     size_t fl)
{
    FILE *f = fopen(path, "re");
    first[0] = '\0';
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        if (!first[0])
            snprintf(first, fl, "%s", line);
        found = strstr(line, needle) != NULL;
    }
    fclose(f);
    first[strcspn(first, "\n")] = '\0';
    return found;
}

/* ------------------------------------------------------------ parent */

int main(int argc, char **argv)
{
    tg_begin("dyn_guidance");
    unsigned nodes = tg_node_count();
    if (argc == 3)
        return child_main(argv[1], argv[2], nodes);

    char preload[600];
    if (!dyn_preload_var(nodes, preload, sizeof preload))
        return tg_done();

    /* ASLR on, so equal keys mean (object, offset) frames, not luck. */
    long aslr = tg_read_ull("/proc/sys/kernel/randomize_va_space");
    tg_check("aslr-on", aslr >= 1, "randomize_va_space is %ld", aslr);

    const char *const subs[] = {WORKDIR "/learn", WORKDIR "/check", NULL};
    if (!dyn_workdir(WORKDIR, subs, NULL))
        return tg_done();
    /* The runs' tiermem settings are ours: theirs replace what the
     * environment has, and the learning run must not get a guidance file
     * from TM_GUEST_ENV. */
    unsetenv("TIERMEM_GUIDANCE");

    /* 1. learn the keys */
    const char *learn_env[] = {preload, "TIERMEM_OUTPUT_DIR=" WORKDIR "/learn",
                               "TIERMEM_LOG_FILE=" WORKDIR "/learn.log"};
    int st = dyn_run_self("learn", WORKDIR "/learn.info", learn_env, 3,
                          "learn", "the learn run ", CHILD_DEADLINE_S);
    if (!dyn_child_ok("learn-run", st))
        return tg_done();
    dyn_table_t learn;
    bool ok = read_table(WORKDIR "/learn", &learn);
    show_table("learn", &learn);
    if (!tg_check("learn-sites", ok, "%s", learn.why))
        return tg_done();
    bool distinct = true;
    for (int i = 0; i < NSITES; i++)
        for (int j = i + 1; j < NSITES; j++)
            distinct = distinct && learn.site[i].key != learn.site[j].key;
    tg_check("learn-keys-distinct", distinct,
             "two of the five sites share a key (see the keys above)");

    /* 2. the guidance file, a malformed line before the rules that must
     * still apply after it */
    expect_t e;
    expected_nodes(nodes, &e);
    const char *gpath = WORKDIR "/guidance.txt";
    FILE *g = fopen(gpath, "we");
    if (!g) {
        tg_check("guidance-write", false, "%s: %s", gpath, strerror(errno));
        return tg_done();
    }
    /* The malformed line is line 4: the log must name it so. */
    const unsigned bad_line = 4;
    fprintf(g, "tiermem-guidance 1\n");
    fprintf(g, "# dyn_guidance: keys from the learning run\n");
    fprintf(g, "key 0x%016llx node 0\n",
            (unsigned long long)learn.site[S_HOT].key);
    fprintf(g, "key zz node 1\n");
    fprintf(g, "key 0x%016llx node 1\n",
            (unsigned long long)learn.site[S_COLD].key);
    fprintf(g, "id %d node 1 bind\n", EXPLICIT_ID);
    fprintf(g, "key 0x%016llx tier %u bind\n",
            (unsigned long long)learn.site[S_TIERED].key, e.slowest_tier);
    if (!tg_check("guidance-write", fclose(g) == 0, "%s: %s", gpath,
                  strerror(errno)))
        return tg_done();

    dyn_show_file("guidance", gpath, 20);

    /* 3. the guided run: its own placement checks, then ours */
    char gvar[600];
    snprintf(gvar, sizeof gvar, "TIERMEM_GUIDANCE=%s", gpath);
    const char *check_env[] = {preload, gvar,
                               "TIERMEM_OUTPUT_DIR=" WORKDIR "/check",
                               "TIERMEM_LOG_FILE=" WORKDIR "/check.log"};
    unlink(WORKDIR "/check.log");
    st = dyn_run_self("check", WORKDIR "/check.info", check_env, 4, "check",
                      "the check run ", CHILD_DEADLINE_S);
    if (!dyn_child_ok("check-run", st))
        return tg_done();

    dyn_table_t chk;
    ok = read_table(WORKDIR "/check", &chk);
    show_table("check", &chk);
    if (tg_check("check-sites", ok, "%s", chk.why)) {
        bool same = true;
        char why[512] = "";
        int o = 0;
        for (int i = 0; i < NSITES; i++)
            if (chk.site[i].key != learn.site[i].key) {
                same = false;
                if (o >= 0 && (size_t)o < sizeof why)
                    o += snprintf(why + o, sizeof why - (size_t)o,
                                  " %s %#llx then %#llx", site_name[i],
                                  (unsigned long long)learn.site[i].key,
                                  (unsigned long long)chk.site[i].key);
            }
        tg_check("keys-stable", same, "keys changed between runs:%s", why);

        /* What the library says it did agrees with where the pages are. */
        bool nodes_ok = true;
        o = 0;
        why[0] = '\0';
        for (int i = 0; i < NSITES; i++)
            if (chk.site[i].nodes != e.mask[i]) {
                nodes_ok = false;
                if (o >= 0 && (size_t)o < sizeof why)
                    o += snprintf(why + o, sizeof why - (size_t)o,
                                  " %s arena %u nodes %#llx (want %#llx)",
                                  site_name[i], chk.site[i].arena,
                                  (unsigned long long)chk.site[i].nodes,
                                  (unsigned long long)e.mask[i]);
            }
        tg_check("table-arena-nodes", nodes_ok, "%s", why);
    }

    dyn_check_aslr_moved(WORKDIR "/learn.info", "learning",
                         WORKDIR "/check.info", "checked");

    /* 4. the malformed line was reported by number, and did not stop the
     * rules after it (the placement checks above) */
    char needle[600], first[1024];
    snprintf(needle, sizeof needle, "%s:%u:", gpath, bad_line);
    dyn_show_file("check log", WORKDIR "/check.log", 20);
    tg_check("malformed-line-logged",
             file_has(WORKDIR "/check.log", needle, first, sizeof first),
             "no \"%s\" in %s/check.log (first line: \"%s\")", needle,
             WORKDIR, first);
    return tg_done();
}
