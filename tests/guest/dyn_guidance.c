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
#include "guest.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MIB (1024UL * 1024)
#define HOT_SIZE (64 * MIB)
#define COLD_SIZE (64 * MIB)
#define ID7_SIZE (16 * MIB)
#define TIERED_SIZE (16 * MIB)
#define PLAIN_SIZE (16 * MIB)
#define EXPLICIT_ID 7
#define DEFAULT_PRELOAD "/usr/lib/tiermem/libtiermem-preload.so"
#define WORKDIR "/tmp/dyn_guidance"
#define CHILD_DEADLINE_S 120

extern char **environ;

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

/* One function per site, global so -rdynamic exports it and the site table
 * names it.  Each writes its own marker after the call: the bodies differ
 * (no identical-code folding) and malloc is not a tail call, so the return
 * address, frame 0 of the key, is inside the function. */
__attribute__((noinline)) void *alloc_hot(void)
{
    unsigned char *p = malloc(HOT_SIZE);
    if (p)
        p[0] = 'H';
    return p;
}

__attribute__((noinline)) void *alloc_cold(void)
{
    unsigned char *p = malloc(COLD_SIZE);
    if (p)
        p[0] = 'C';
    return p;
}

__attribute__((noinline)) void *alloc_tiered(void)
{
    unsigned char *p = malloc(TIERED_SIZE);
    if (p)
        p[0] = 'T';
    return p;
}

__attribute__((noinline)) void *alloc_plain(void)
{
    unsigned char *p = malloc(PLAIN_SIZE);
    if (p)
        p[0] = 'P';
    return p;
}

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
    uint64_t tiers[TG_MAX_NODES];
    int nt = tg_parse_tiers(tg_env_str("TM_EXPECT_TIERS", ""), tiers,
                            TG_MAX_NODES);
    if (nt <= 0) {
        nt = (int)nodes;
        for (unsigned i = 0; i < nodes; i++)
            tiers[i] = 1ULL << i;
    }
    e->mask[S_HOT] = 1ULL << 0;
    e->mask[S_COLD] = 1ULL << 1;
    e->mask[S_ID7] = 1ULL << 1;
    e->mask[S_TIERED] = tiers[nt - 1];
    e->mask[S_PLAIN] = tiers[0];
    e->slowest_tier = (unsigned)(nt - 1);
}

/* Every page of [p, p+len) on a node of mask; why explains otherwise. */
static bool pages_in(void *p, size_t len, uint64_t mask, char *why, size_t wl)
{
    tg_where_t w;
    if (tg_where(p, len, -1, &w) != 0) {
        snprintf(why, wl, "move_pages failed: %s", strerror(errno));
        return false;
    }
    size_t in = 0;
    for (unsigned n = 0; n < TG_MAX_NODES && n < 64; n++)
        if (mask >> n & 1)
            in += w.on_node[n];
    if (in == w.pages)
        return true;
    char m[64];
    int o = snprintf(why, wl, "%zu of %zu pages on nodes %s;", in, w.pages,
                     tg_mask_str(mask, m, sizeof m));
    for (unsigned n = 0; n < TG_MAX_NODES && o > 0 && (size_t)o < wl; n++)
        if (w.on_node[n])
            o += snprintf(why + o, wl - (size_t)o, " node%u=%zu", n,
                          w.on_node[n]);
    if (o > 0 && (size_t)o < wl)
        snprintf(why + o, wl - (size_t)o, " absent=%zu busy=%zu err=%zu",
                 w.not_present, w.busy, w.other_errors);
    return false;
}

/* ------------------------------------------------------------ children */

/* The child's half: "learn" only allocates; "check" touches and checks. */
static int child_main(const char *mode, const char *info_path, unsigned nodes)
{
    void *sym = dlsym(RTLD_DEFAULT, "sh_alloc");
    memcpy(&sh_alloc_p, &sym, sizeof sym);
    arena_of_fn arena_of;
    sym = dlsym(RTLD_DEFAULT, "tm_arena_of");
    memcpy(&arena_of, &sym, sizeof sym);
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
        for (int i = 0; i < NSITES; i++) {
            char name[64], why[512], m[64];
            snprintf(name, sizeof name, "%s-on-node%s", site_name[i],
                     tg_mask_str(e.mask[i], m, sizeof m));
            tg_check(name, pages_in(blk[i], site_size[i], e.mask[i], why,
                                    sizeof why),
                     "%s (%zu bytes at %p): %s",
                     site_fn[i] ? site_fn[i] : "sh_alloc(7)", site_size[i],
                     blk[i], why);
        }
    }
    for (int i = 0; i < NSITES; i++)
        free(blk[i]);
    return tg_done();
}

/* Run this program again with mode and extra environment; returns its wait
 * status, or -1 (reported) when it could not be run or was stuck. */
static int run_child(const char *mode, const char *info,
                     const char *const *extra, size_t nextra)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + nextra + 1, sizeof *env);
    if (!env)
        return -1;
    size_t k = 0;
    /* The tiermem settings are ours; a TM_GUEST_ENV value would not be. */
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
            strncmp(environ[i], "TIERMEM_GUIDANCE=", 17) != 0 &&
            strncmp(environ[i], "TIERMEM_OUTPUT_DIR=", 19) != 0 &&
            strncmp(environ[i], "TIERMEM_LOG_FILE=", 17) != 0)
            env[k++] = environ[i];
    for (size_t i = 0; i < nextra; i++)
        env[k++] = (char *)extra[i];
    env[k] = NULL;

    char shown[900] = "";
    for (size_t i = 0, o = 0; i < nextra && o < sizeof shown; i++)
        o += (size_t)snprintf(shown + o, sizeof shown - o, "%s ", extra[i]);
    tg_info("%s run: %sdyn_guidance %s %s", mode, shown, mode, info);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {"dyn_guidance", (char *)mode, (char *)info, NULL};
        execve("/proc/self/exe", argv, env);
        printf("TMTEST FAIL dyn_guidance/%s-exec: execve: %s\n", mode,
               strerror(errno));
        fflush(stdout);
        _exit(127);
    }
    free(env);
    if (pid < 0) {
        tg_check(mode, false, "fork: %s", strerror(errno));
        return -1;
    }
    /* A stuck child is killed here, so the parent still reports. */
    int status;
    for (int waited = 0;; waited++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            tg_check(mode, false, "waitpid: %s", strerror(errno));
            return -1;
        }
        if (waited >= CHILD_DEADLINE_S * 20) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            tg_check(mode, false, "the %s run did not end in %d s (killed)",
                     mode, CHILD_DEADLINE_S);
            return -1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return status;
}

/* The run ended normally: exit 0, or 1 with its FAIL lines already out. */
static bool child_ok(const char *check, int status)
{
    if (status == -1)
        return false;
    if (WIFEXITED(status) && WEXITSTATUS(status) <= 1)
        return tg_check(check, WEXITSTATUS(status) == 0,
                        "the run reported failures (above)");
    if (WIFSIGNALED(status))
        return tg_check(check, false,
                        "the run was killed by signal %d (%s): the preload "
                        "library crashed or was OOM-killed",
                        WTERMSIG(status), strsignal(WTERMSIG(status)));
    return tg_check(check, false, "the run exited with status %d",
                    WEXITSTATUS(status));
}

/* ------------------------------------------------------------ site table */

typedef struct found {
    bool have;
    uint64_t key;
    unsigned arena;
    unsigned long long peak;
} found_t;

typedef struct table {
    found_t site[NSITES];
    uint64_t arena_nodes[NSITES]; /* the site's arena's node mask */
    char why[256];
} table_t;

/* Parse the site table the one run in dir wrote
 * (tiermem-sites.dyn_guidance.<pid>.txt). */
static bool read_table(const char *dir, table_t *t)
{
    memset(t, 0, sizeof *t);
    char path[600] = "";
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "tiermem-sites.dyn_guidance.", 27) == 0 &&
            n > 4 && strcmp(de->d_name + n - 4, ".txt") == 0)
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    }
    if (d)
        closedir(d);
    if (!path[0]) {
        snprintf(t->why, sizeof t->why, "no site table in %s", dir);
        return false;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(t->why, sizeof t->why, "%s: %s", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    /* the site whose frame lines follow */
    unsigned cur_arena = 0;
    unsigned long long cur_key = 0, cur_peak = 0;
    while (getline(&line, &cap, f) > 0) {
        unsigned idx, arena, fno;
        unsigned long long key, allocs, frees, live, peak, bytes, nodes;
        int id = -1, off = 0;
        char obj[512], fn[256];
        if (sscanf(line,
                   "site %u key %llx arena %u allocs %llu frees %llu live "
                   "%llu peak %llu bytes %llu%n",
                   &idx, &key, &arena, &allocs, &frees, &live, &peak, &bytes,
                   &off) == 8) {
            cur_key = key;
            cur_arena = arena;
            cur_peak = peak;
            if (sscanf(line + off, " id %d", &id) == 1 && id == EXPLICIT_ID)
                t->site[S_ID7] = (found_t){true, key, arena, peak};
            continue;
        }
        if (sscanf(line, "frame %u %511s %*s %255s", &fno, obj, fn) == 3) {
            if (fno != 0)
                continue;
            fn[strcspn(fn, "+")] = '\0';
            for (int i = 0; i < NSITES; i++)
                if (site_fn[i] && strcmp(fn, site_fn[i]) == 0)
                    t->site[i] = (found_t){true, cur_key, cur_arena, cur_peak};
            continue;
        }
        if (sscanf(line, "arena %u kind %*s nodes %llx", &arena, &nodes) == 2)
            for (int i = 0; i < NSITES; i++)
                if (t->site[i].have && t->site[i].arena == arena)
                    t->arena_nodes[i] = nodes;
    }
    free(line);
    fclose(f);
    bool all = true;
    int o = snprintf(t->why, sizeof t->why, "%s: missing", path);
    for (int i = 0; i < NSITES; i++)
        if (!t->site[i].have) {
            all = false;
            if (o > 0 && (size_t)o < sizeof t->why)
                o += snprintf(t->why + o, sizeof t->why - (size_t)o, " %s",
                              site_name[i]);
        }
    return all;
}

static void show_table(const char *what, const table_t *t)
{
    for (int i = 0; i < NSITES; i++)
        tg_info("%s: %-6s key 0x%016llx arena %u peak %llu nodes %#llx", what,
                site_name[i], (unsigned long long)t->site[i].key,
                t->site[i].arena, t->site[i].peak,
                (unsigned long long)t->arena_nodes[i]);
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

/* A small file, line by line, as diagnostics. */
static void show_file(const char *what, const char *path, unsigned max)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        tg_info("%s: %s: %s", what, path, strerror(errno));
        return;
    }
    char line[1024];
    for (unsigned n = 0; n < max && fgets(line, sizeof line, f); n++) {
        line[strcspn(line, "\n")] = '\0';
        tg_info("%s: %s", what, line);
    }
    fclose(f);
}

static unsigned long main_addr(const char *info)
{
    FILE *f = fopen(info, "re");
    unsigned long a = 0;
    if (f) {
        void *p = NULL;
        if (fscanf(f, "main %p", &p) == 1)
            a = (unsigned long)(uintptr_t)p;
        fclose(f);
    }
    return a;
}

/* ------------------------------------------------------------ parent */

int main(int argc, char **argv)
{
    tg_begin("dyn_guidance");
    unsigned nodes = tg_node_count();
    if (argc == 3)
        return child_main(argv[1], argv[2], nodes);

    if (nodes < 2) {
        tg_skip("all", "needs two nodes, the guest has %u", nodes);
        return tg_done();
    }
    const char *lib = tg_env_str("TM_PRELOAD_LIB", DEFAULT_PRELOAD);
    if (!tg_check("preload-lib", access(lib, R_OK) == 0, "%s: %s", lib,
                  strerror(errno)))
        return tg_done();

    /* ASLR on, so equal keys mean (object, offset) frames, not luck. */
    long aslr = tg_read_ull("/proc/sys/kernel/randomize_va_space");
    tg_check("aslr-on", aslr >= 1, "randomize_va_space is %ld", aslr);

    if ((mkdir(WORKDIR, 0755) != 0 && errno != EEXIST) ||
        (mkdir(WORKDIR "/learn", 0755) != 0 && errno != EEXIST) ||
        (mkdir(WORKDIR "/check", 0755) != 0 && errno != EEXIST)) {
        tg_check("workdir", false, "mkdir under %s: %s", WORKDIR,
                 strerror(errno));
        return tg_done();
    }

    /* 1. learn the keys */
    char preload[600];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
    const char *learn_env[] = {preload, "TIERMEM_OUTPUT_DIR=" WORKDIR "/learn",
                               "TIERMEM_LOG_FILE=" WORKDIR "/learn.log"};
    int st = run_child("learn", WORKDIR "/learn.info", learn_env, 3);
    if (!child_ok("learn-run", st))
        return tg_done();
    table_t learn;
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

    show_file("guidance", gpath, 20);

    /* 3. the guided run: its own placement checks, then ours */
    char gvar[600];
    snprintf(gvar, sizeof gvar, "TIERMEM_GUIDANCE=%s", gpath);
    const char *check_env[] = {preload, gvar,
                               "TIERMEM_OUTPUT_DIR=" WORKDIR "/check",
                               "TIERMEM_LOG_FILE=" WORKDIR "/check.log"};
    unlink(WORKDIR "/check.log");
    st = run_child("check", WORKDIR "/check.info", check_env, 4);
    if (!child_ok("check-run", st))
        return tg_done();

    table_t chk;
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
            if (chk.arena_nodes[i] != e.mask[i]) {
                nodes_ok = false;
                if (o >= 0 && (size_t)o < sizeof why)
                    o += snprintf(why + o, sizeof why - (size_t)o,
                                  " %s arena %u nodes %#llx (want %#llx)",
                                  site_name[i], chk.site[i].arena,
                                  (unsigned long long)chk.arena_nodes[i],
                                  (unsigned long long)e.mask[i]);
            }
        tg_check("table-arena-nodes", nodes_ok, "%s", why);
    }

    unsigned long m1 = main_addr(WORKDIR "/learn.info");
    unsigned long m2 = main_addr(WORKDIR "/check.info");
    tg_check("aslr-moved", m1 && m2 && m1 != m2,
             "the executable was at %#lx in the learning run and %#lx in the "
             "checked one: keys were not tested across different addresses",
             m1, m2);

    /* 4. the malformed line was reported by number, and did not stop the
     * rules after it (the placement checks above) */
    char needle[600], first[1024];
    snprintf(needle, sizeof needle, "%s:%u:", gpath, bad_line);
    show_file("check log", WORKDIR "/check.log", 20);
    tg_check("malformed-line-logged",
             file_has(WORKDIR "/check.log", needle, first, sizeof first),
             "no \"%s\" in %s/check.log (first line: \"%s\")", needle,
             WORKDIR, first);
    return tg_done();
}
