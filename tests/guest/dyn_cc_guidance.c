/*
 * dyn_cc_guidance.c -- guidance by compiler id places an instrumented
 * program's blocks on the named nodes, checked with move_pages.
 *
 * A DYNAMIC guest test built with the build's tiermem-cc (run-rig.sh does
 * that for dyn_cc_*.c, and reports a skip when the build has no compiler
 * path): every malloc below becomes tm_cc_malloc(id, size) with an id fixed
 * at compile time, and the binary has libtiermem-preload.so as a NEEDED
 * library (the wrapper links it), so no LD_PRELOAD is set: the runtime is
 * there because the program was built with it.  It runs itself twice:
 *
 *   1. "learn", with TIERMEM_OUTPUT_DIR: the parent reads the site table
 *      and finds each site by its "cc" line, which names the function the
 *      call is written in (from the binary's .note.tiermem: no debug info,
 *      no symbols needed); the table must say "kind cc", the id must carry
 *      the compiler tag (bits 63..62 = 10) and the cc line must name this
 *      file and the line of the call;
 *   2. the parent writes a guidance file with "cc 0x<id> node N bind";
 *   3. "check", with TIERMEM_GUIDANCE: the same allocations, every page
 *      touched, every page's node asked with move_pages (EBUSY asked again)
 *      in the child; the parent checks the ids are the learning run's (they
 *      are compile-time constants: a change would mean the table reports
 *      something else than the notes) and that the second table gives each
 *      guided arena its node.
 *
 *   alloc_near  32 MiB  cc id -> node 0 bind
 *   alloc_far   32 MiB  cc id -> node 1 bind
 *   alloc_free  16 MiB  no rule: the default, tier 0 preferred (node 0, or
 *                       HBM node 1 in topology 3)
 * Each block is one large allocation, so its pages are its arena's own.
 */
#include "dyn.h"

#define NEAR_SIZE (32 * DYN_MIB)
#define FAR_SIZE (32 * DYN_MIB)
#define FREE_SIZE (16 * DYN_MIB)
#define WORKDIR "/tmp/dyn_cc_guidance"
#define CHILD_DEADLINE_S 120
#define CC_TAG_MASK (3ULL << 62)
#define CC_TAG (2ULL << 62)

/* ------------------------------------------------------------ the sites */

/* A compiler site: DYN_SITE_FN (its own mark written into the block, so it
 * is not a wrapper the pass would move the site out of), plus the line of
 * its malloc call: a macro's calls take the line of its use. */
#define CC_SITE_FN(name, size, mark)                                          \
    enum { name##_line = __LINE__ };                                          \
    DYN_SITE_FN(name, size, mark)

CC_SITE_FN(alloc_near, NEAR_SIZE, 'N')
CC_SITE_FN(alloc_far, FAR_SIZE, 'F')
CC_SITE_FN(alloc_free, FREE_SIZE, 'D')

enum { S_NEAR, S_FAR, S_FREE, NSITES };
static const char *const site_fn[NSITES] = {"alloc_near", "alloc_far",
                                            "alloc_free"};
static const char *const site_name[NSITES] = {"near", "far", "default"};
static const size_t site_size[NSITES] = {NEAR_SIZE, FAR_SIZE, FREE_SIZE};
static const unsigned site_line[NSITES] = {alloc_near_line, alloc_far_line,
                                           alloc_free_line};

typedef void *(*arena_of_fn)(const void *);

__attribute__((noinline)) static void workload(void *blk[NSITES])
{
    blk[S_NEAR] = alloc_near();
    blk[S_FAR] = alloc_far();
    blk[S_FREE] = alloc_free();
}

/* The nodes each block's pages may be on: the rules' nodes, and tier 0
 * (TM_EXPECT_TIERS) for the default. */
static void expected_masks(unsigned nodes, uint64_t mask[NSITES])
{
    dyn_tiers_t t;
    dyn_expected_tiers(nodes, &t);
    mask[S_NEAR] = 1ULL << 0;
    mask[S_FAR] = 1ULL << 1;
    mask[S_FREE] = t.mask[0];
}

/* ------------------------------------------------------------ the child */

static int child_main(const char *mode, const char *info_path, unsigned nodes)
{
    bool check = strcmp(mode, "check") == 0;
    /* The runtime is a NEEDED library, not preloaded: the dynamic linker
     * found it through the binary's rpath (or the guest's copy of it). */
    arena_of_fn arena_of;
    dyn_sym("tm_arena_of", &arena_of);
    if (!tg_check(check ? "check-runtime" : "learn-runtime", arena_of != NULL,
                  "tm_arena_of not found: the binary did not load "
                  "libtiermem-preload.so (%s)", dlerror()))
        return tg_done();
    Dl_info di;
    if (!check && dladdr((void *)arena_of, &di) != 0 && di.dli_fname)
        tg_info("runtime loaded from %s", di.dli_fname);

    void *blk[NSITES];
    workload(blk);

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
             "a block is NULL or outside tiermem's arenas: near %p far %p "
             "default %p", blk[0], blk[1], blk[2]);

    if (check && all) {
        uint64_t mask[NSITES];
        expected_masks(nodes, mask);
        for (int i = 0; i < NSITES; i++)
            tg_touch(blk[i], site_size[i], (unsigned char)(i + 1));
        for (int i = 0; i < NSITES; i++)
            dyn_check_pages(site_name[i], site_fn[i], blk[i], site_size[i],
                            mask[i]);
    }
    for (int i = 0; i < NSITES; i++)
        free(blk[i]);
    return tg_done();
}

/* ------------------------------------------------------------ site table */

/* The table one run wrote, with every site found; false (t->why) if not. */
static bool read_table(const char *dir, dyn_table_t *t)
{
    return dyn_read_table_all(dir, site_fn, site_name, NSITES, -1, t);
}

static void show_table(const char *what, const dyn_table_t *t)
{
    for (int i = 0; i < NSITES; i++)
        tg_info("%s: %-7s key 0x%016llx kind %s cc %s:%u arena %u nodes "
                "%#llx", what, site_name[i],
                (unsigned long long)t->site[i].key, t->site[i].kind,
                t->site[i].cc_file, t->site[i].cc_line, t->site[i].arena,
                (unsigned long long)t->site[i].nodes);
}

/* Appends " NAME: WHAT" to why (at *o), for a list of what is wrong. */
__attribute__((format(printf, 4, 5))) static void
why_add(char *why, size_t wl, int *o, const char *fmt, ...)
{
    if (*o < 0 || (size_t)*o >= wl)
        return;
    va_list ap;
    va_start(ap, fmt);
    *o += vsnprintf(why + *o, wl - (size_t)*o, fmt, ap);
    va_end(ap);
}

/* The learning run's table describes compiler sites: kind cc, the tag,
 * this file and the line of each call, distinct ids. */
static void check_learned(const dyn_table_t *t)
{
    char why[512] = "";
    int o = 0;
    for (int i = 0; i < NSITES; i++)
        if (strcmp(t->site[i].kind, "cc") != 0)
            why_add(why, sizeof why, &o, " %s: kind \"%s\"", site_name[i],
                    t->site[i].kind);
    tg_check("kind-cc", why[0] == '\0', "%s", why);

    why[0] = '\0';
    o = 0;
    for (int i = 0; i < NSITES; i++)
        if ((t->site[i].key & CC_TAG_MASK) != CC_TAG)
            why_add(why, sizeof why, &o, " %s: 0x%016llx", site_name[i],
                    (unsigned long long)t->site[i].key);
    tg_check("ids-tagged-10", why[0] == '\0',
             "ids without bits 63..62 = 10:%s", why);

    bool distinct = true;
    for (int i = 0; i < NSITES; i++)
        for (int j = i + 1; j < NSITES; j++)
            distinct = distinct && t->site[i].key != t->site[j].key;
    tg_check("ids-distinct", distinct, "two sites share an id (above)");

    /* The note says where the call is: this file, the line of its use of
     * CC_SITE_FN (a macro's code has the line it is used on). */
    why[0] = '\0';
    o = 0;
    const char *me = "dyn_cc_guidance.c";
    for (int i = 0; i < NSITES; i++) {
        const char *file = t->site[i].cc_file;
        size_t fl = strlen(file), ml = strlen(me);
        bool file_ok = fl >= ml && strcmp(file + fl - ml, me) == 0;
        if (!file_ok || t->site[i].cc_line != site_line[i])
            why_add(why, sizeof why, &o, " %s: %s:%u, want ...%s:%u",
                    site_name[i], file, t->site[i].cc_line, me, site_line[i]);
    }
    tg_check("cc-source", why[0] == '\0', "%s", why);
}

/* ------------------------------------------------------------ parent */

int main(int argc, char **argv)
{
    tg_begin("dyn_cc_guidance");
    unsigned nodes = tg_node_count();
    if (argc == 3)
        return child_main(argv[1], argv[2], nodes);
    if (nodes < 2) {
        tg_skip("all", "needs two nodes, the guest has %u", nodes);
        return tg_done();
    }

    const char *const subs[] = {WORKDIR "/learn", WORKDIR "/check", NULL};
    if (!dyn_workdir(WORKDIR, subs, NULL))
        return tg_done();
    /* The runs' settings are ours (TM_GUEST_ENV must not guide the
     * learning run). */
    unsetenv("TIERMEM_GUIDANCE");

    /* 1. learn the ids */
    const char *learn_env[] = {"TIERMEM_OUTPUT_DIR=" WORKDIR "/learn",
                               "TIERMEM_LOG_FILE=" WORKDIR "/learn.log"};
    int st = dyn_run_self("learn", WORKDIR "/learn.info", learn_env, 2,
                          "learn", "the learn run ", CHILD_DEADLINE_S);
    if (!dyn_child_ok("learn-run", st))
        return tg_done();
    dyn_table_t learn;
    bool ok = read_table(WORKDIR "/learn", &learn);
    show_table("learn", &learn);
    if (!tg_check("learn-sites", ok, "%s", learn.why))
        return tg_done();
    check_learned(&learn);

    /* 2. the guidance file: the ids as "cc" rules, bind */
    const char *gpath = WORKDIR "/guidance.txt";
    FILE *g = fopen(gpath, "we");
    if (!g) {
        tg_check("guidance-write", false, "%s: %s", gpath, strerror(errno));
        return tg_done();
    }
    fprintf(g, "tiermem-guidance 1\n");
    fprintf(g, "# dyn_cc_guidance: compiler ids from the learning run\n");
    fprintf(g, "cc 0x%016llx node 0 bind\n",
            (unsigned long long)learn.site[S_NEAR].key);
    fprintf(g, "cc 0x%016llx node 1 bind\n",
            (unsigned long long)learn.site[S_FAR].key);
    if (!tg_check("guidance-write", fclose(g) == 0, "%s: %s", gpath,
                  strerror(errno)))
        return tg_done();
    dyn_show_file("guidance", gpath, 10);

    /* 3. the guided run checks its pages; then the parent its table */
    char gvar[600];
    snprintf(gvar, sizeof gvar, "TIERMEM_GUIDANCE=%s", gpath);
    const char *check_env[] = {gvar, "TIERMEM_OUTPUT_DIR=" WORKDIR "/check",
                               "TIERMEM_LOG_FILE=" WORKDIR "/check.log"};
    st = dyn_run_self("check", WORKDIR "/check.info", check_env, 3, "check",
                      "the check run ", CHILD_DEADLINE_S);
    if (!dyn_child_ok("check-run", st)) {
        dyn_show_file("check log", WORKDIR "/check.log", 20);
        return tg_done();
    }

    dyn_table_t chk;
    ok = read_table(WORKDIR "/check", &chk);
    show_table("check", &chk);
    if (tg_check("check-sites", ok, "%s", chk.why)) {
        char why[512] = "";
        int o = 0;
        for (int i = 0; i < NSITES; i++)
            if (chk.site[i].key != learn.site[i].key)
                why_add(why, sizeof why, &o, " %s 0x%016llx then 0x%016llx",
                        site_name[i], (unsigned long long)learn.site[i].key,
                        (unsigned long long)chk.site[i].key);
        tg_check("ids-stable", why[0] == '\0', "ids changed between runs:%s",
                 why);

        uint64_t mask[NSITES];
        expected_masks(nodes, mask);
        why[0] = '\0';
        o = 0;
        for (int i = 0; i < NSITES; i++)
            if (chk.site[i].nodes != mask[i])
                why_add(why, sizeof why, &o,
                        " %s arena %u nodes %#llx (want %#llx)", site_name[i],
                        chk.site[i].arena,
                        (unsigned long long)chk.site[i].nodes,
                        (unsigned long long)mask[i]);
        tg_check("table-arena-nodes", why[0] == '\0', "%s", why);
    }
    return tg_done();
}
