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
#include "guest.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MIB (1024UL * 1024)
#define ARRAY_SIZE (24 * MIB)
#define CAPACITY "32M"        /* fits one array and not two */
#define PROFILE_INTERVALS 40  /* whole intervals the profiled run waits for */
#define PROFILE_WAIT_S 60     /* at most this long (a bound, not a check) */
#define DEFAULT_PRELOAD "/usr/lib/tiermem/libtiermem-preload.so"
#define DEFAULT_GUIDE "/usr/bin/tiermem-guide"
#define WORKDIR "/tmp/dyn_guide"
#define PROFILE WORKDIR "/prof.txt"
#define GUIDANCE WORKDIR "/guidance.txt"
#define CHILD_DEADLINE_S 100
#define TOOL_DEADLINE_S 60

extern char **environ;

/* ------------------------------------------------------------ the sites */

enum { S_HOT, S_COLD, NSITES };
static const char *const site_fn[NSITES] = {"alloc_hot", "alloc_cold"};
static const char *const site_name[NSITES] = {"hot", "cold"};

/* One function per site, global so -rdynamic exports it and the site table
 * names it; each writes its own marker after the call, so the bodies differ
 * and malloc is not a tail call (frame 0 of the key is in the function). */
__attribute__((noinline)) void *alloc_hot(void)
{
    unsigned char *p = malloc(ARRAY_SIZE);
    if (p)
        p[0] = 'H';
    return p;
}

__attribute__((noinline)) void *alloc_cold(void)
{
    unsigned char *p = malloc(ARRAY_SIZE);
    if (p)
        p[0] = 'C';
    return p;
}

/* Both runs allocate through here, so both sites have the same stacks. */
__attribute__((noinline)) static void workload(void *blk[NSITES])
{
    blk[S_HOT] = alloc_hot();
    blk[S_COLD] = alloc_cold();
}

/* ------------------------------------------------------------ topology */

typedef struct tiers {
    uint64_t mask[TG_MAX_NODES];
    int n;
} tiers_t;

/* The tier order the rig's topology implies (TM_EXPECT_TIERS); without it,
 * nodes in id order. */
static void expected_tiers(unsigned nodes, tiers_t *t)
{
    t->n = tg_parse_tiers(tg_env_str("TM_EXPECT_TIERS", ""), t->mask,
                          TG_MAX_NODES);
    if (t->n <= 0) {
        t->n = (int)nodes;
        for (unsigned i = 0; i < nodes; i++)
            t->mask[i] = 1ULL << i;
    }
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
    for (unsigned n = 0; n < 64; n++)
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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
    void *sym = dlsym(RTLD_DEFAULT, "tm_arena_of");
    void *(*arena_of)(const void *);
    memcpy(&arena_of, &sym, sizeof sym);
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
        tiers_t t;
        expected_tiers(tg_node_count(), &t);
        uint64_t want[NSITES] = {t.mask[0], t.mask[t.n - 1]};
        for (int i = 0; i < NSITES; i++) {
            char m[64], why[512];
            snprintf(name, sizeof name, "%s-on-node%s", site_name[i],
                     tg_mask_str(want[i], m, sizeof m));
            tg_check(name, pages_in(blk[i], ARRAY_SIZE, want[i], why,
                                    sizeof why),
                     "%s (%lu bytes at %p): %s", site_fn[i], ARRAY_SIZE,
                     blk[i], why);
        }
    } else {
        /* Keep writing the hot array until the profile has the intervals
         * (observed in its .partial); the deadline only bounds the wait. */
        volatile unsigned char *hot = blk[S_HOT];
        double t0 = now_s(), next_look = t0;
        long have = 0;
        unsigned long passes = 0;
        for (unsigned char v = 1;; v++, passes++) {
            for (size_t off = 0; off < ARRAY_SIZE; off += TG_PAGE)
                hot[off] = v;
            double t = now_s();
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

/* ------------------------------------------------------------ processes */

/* Wait for pid at most deadline_s seconds (then kill it).  Returns its wait
 * status, or -1 after reporting under check. */
static int wait_child(pid_t pid, const char *check, int deadline_s)
{
    int status;
    for (int waited = 0;; waited++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR) {
            tg_check(check, false, "waitpid: %s", strerror(errno));
            return -1;
        }
        if (waited >= deadline_s * 20) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            tg_check(check, false, "did not end in %d s (killed)",
                     deadline_s);
            return -1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The environment, minus LD_PRELOAD and every variable extra sets, plus
 * extra.  NULL on ENOMEM. */
static char **child_env(const char *const *extra, size_t nextra)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + nextra + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool drop = strncmp(environ[i], "LD_PRELOAD=", 11) == 0;
        for (size_t j = 0; j < nextra && !drop; j++) {
            size_t l = strcspn(extra[j], "=") + 1;
            drop = strncmp(environ[i], extra[j], l) == 0;
        }
        if (!drop)
            env[k++] = environ[i];
    }
    for (size_t i = 0; i < nextra; i++)
        env[k++] = (char *)extra[i];
    env[k] = NULL;
    return env;
}

/* Run this program again as `dyn_guide MODE INFO` with extra environment;
 * its wait status, or -1 (reported). */
static int run_child(const char *mode, const char *info,
                     const char *const *extra, size_t nextra)
{
    char check[64];
    snprintf(check, sizeof check, "%s-run", mode);
    char **env = child_env(extra, nextra);
    if (!env) {
        tg_check(check, false, "environment: %s", strerror(ENOMEM));
        return -1;
    }
    char shown[1200] = "";
    for (size_t i = 0, o = 0; i < nextra && o < sizeof shown; i++)
        o += (size_t)snprintf(shown + o, sizeof shown - o, "%s ", extra[i]);
    tg_info("%s run: %sdyn_guide %s %s", mode, shown, mode, info);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {"dyn_guide", (char *)mode, (char *)info, NULL};
        execve("/proc/self/exe", argv, env);
        printf("TMTEST FAIL dyn_guide/%s-exec: execve: %s\n", mode,
               strerror(errno));
        fflush(stdout);
        _exit(127);
    }
    int saved = errno;
    free(env);
    if (pid < 0) {
        tg_check(check, false, "fork: %s", strerror(saved));
        return -1;
    }
    return wait_child(pid, check, CHILD_DEADLINE_S);
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

/* ------------------------------------------------------------ files */

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

typedef struct table {
    bool have[NSITES];
    uint64_t key[NSITES];
    char why[700];
} table_t;

/* The keys of the two sites, from the site table one run wrote in dir
 * (tiermem-sites.dyn_guide.<pid>.txt), found by the function of frame 0. */
static bool read_table(const char *dir, table_t *t)
{
    memset(t, 0, sizeof *t);
    char path[600] = "";
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(t->why, sizeof t->why, "opendir %s: %s", dir,
                 strerror(errno));
        return false;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "tiermem-sites.dyn_guide.", 24) == 0 &&
            n > 4 && strcmp(de->d_name + n - 4, ".txt") == 0)
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    }
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
    char line[1024];
    unsigned long long cur_key = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned idx, fno;
        unsigned long long key;
        char obj[512], fn[256];
        if (sscanf(line, "site %u key %llx", &idx, &key) == 2) {
            cur_key = key;
            continue;
        }
        if (sscanf(line, "frame %u %511s %*s %255s", &fno, obj, fn) == 3 &&
            fno == 0) {
            fn[strcspn(fn, "+")] = '\0';
            for (int i = 0; i < NSITES; i++)
                if (strcmp(fn, site_fn[i]) == 0) {
                    t->have[i] = true;
                    t->key[i] = cur_key;
                }
        }
    }
    fclose(f);
    snprintf(t->why, sizeof t->why, "%s: no site with frame 0 in%s%s", path,
             t->have[S_HOT] ? "" : " alloc_hot",
             t->have[S_COLD] ? "" : " alloc_cold");
    return t->have[S_HOT] && t->have[S_COLD];
}

typedef struct profile_facts {
    bool final_exists, partial_left;
    long intervals;        /* "end" lines */
    long complete;         /* the trailer's count, -1 if none */
    bool trailer_last;     /* the trailer is the last line */
    char sampler[32];
    uint64_t samples[NSITES]; /* summed site rows, by key */
} profile_facts_t;

/* What the profile says, read as text (the format: doc/profile-format.md). */
static bool read_profile(const char *path, const table_t *keys,
                         profile_facts_t *p, char *why, size_t wl)
{
    memset(p, 0, sizeof *p);
    p->complete = -1;
    char partial[600];
    snprintf(partial, sizeof partial, "%s.partial", path);
    p->partial_left = access(partial, F_OK) == 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, wl, "%s: %s%s", path, strerror(errno),
                 p->partial_left ? " (only the .partial exists)" : "");
        return false;
    }
    p->final_exists = true;
    char line[1024];
    /* site index -> which of ours (by its sitedef key); few sites here */
    enum { MAXIDX = 4096 };
    static signed char which[MAXIDX];
    memset(which, -1, sizeof which);
    while (fgets(line, sizeof line, f)) {
        unsigned long long a, b, c;
        long long id;
        char word[32];
        p->trailer_last = false;
        if (sscanf(line, "end %llu", &a) == 1) {
            p->intervals++;
        } else if (sscanf(line, "complete %llu", &a) == 1) {
            p->complete = (long)a;
            p->trailer_last = true;
        } else if (sscanf(line, "sampler %31s", word) == 1) {
            snprintf(p->sampler, sizeof p->sampler, "%s", word);
        } else if (sscanf(line, "sitedef %llu %llx %lld", &a, &b, &id) == 3) {
            if (a < MAXIDX)
                for (int i = 0; i < NSITES; i++)
                    if (keys->have[i] && b == keys->key[i])
                        which[a] = (signed char)i;
        } else if (sscanf(line, "site %llu %llu %llu", &a, &b, &c) == 3) {
            if (a < MAXIDX && which[a] >= 0)
                p->samples[(int)which[a]] += c;
        }
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        snprintf(why, wl, "reading %s failed", path);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ the tool */

/* Run tiermem-guide (without the preload library), stdout and stderr into
 * out; its wait status, or -1 (reported under check). */
static int run_tool(const char *tool, char *const argv[], const char *out,
                    const char *check)
{
    char **env = child_env(NULL, 0);
    if (!env) {
        tg_check(check, false, "environment: %s", strerror(ENOMEM));
        return -1;
    }
    char shown[1200] = "";
    for (size_t i = 0, o = 0; argv[i] && o < sizeof shown; i++)
        o += (size_t)snprintf(shown + o, sizeof shown - o, "%s ", argv[i]);
    tg_info("guide: %s> %s", shown, out);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
            dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        execve(tool, argv, env);
        dprintf(STDERR_FILENO, "execve %s: %s\n", tool, strerror(errno));
        _exit(127);
    }
    int saved = errno;
    free(env);
    if (pid < 0) {
        tg_check(check, false, "fork: %s", strerror(saved));
        return -1;
    }
    return wait_child(pid, check, TOOL_DEADLINE_S);
}

typedef struct rules {
    unsigned ntier0;          /* rules naming tier 0 */
    bool tier0_hot;           /* one of them is the hot key */
    bool other_tier0;         /* one of them is another site */
    char other[80];           /* the first other site on tier 0 */
    long tier[NSITES];        /* the tier of each site's rule, -1 if none */
    unsigned nrules;
} rules_t;

static bool read_guidance(const char *path, const table_t *keys, rules_t *r,
                          char *why, size_t wl)
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
            if (is_key && key == keys->key[i])
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
    if (nodes < 2) {
        tg_skip("all", "needs two nodes, the guest has %u", nodes);
        return tg_done();
    }
    const char *lib = tg_env_str("TM_PRELOAD_LIB", DEFAULT_PRELOAD);
    if (!tg_check("preload-lib", access(lib, R_OK) == 0, "%s: %s", lib,
                  strerror(errno)))
        return tg_done();
    const char *tool = tg_env_str("TM_GUIDE_TOOL", DEFAULT_GUIDE);
    if (!tg_check("guide-tool", access(tool, X_OK) == 0,
                  "%s: %s (run-rig.sh puts BUILD_DIR/tiermem-guide there)",
                  tool, strerror(errno)))
        return tg_done();

    tiers_t t;
    expected_tiers(nodes, &t);
    if (!tg_check("tiers", t.n >= 2, "TM_EXPECT_TIERS \"%s\" gives %d tiers",
                  tg_env_str("TM_EXPECT_TIERS", ""), t.n))
        return tg_done();
    unsigned slowest = (unsigned)(t.n - 1);
    char fm[64], sm[64];
    tg_info("fastest tier 0: nodes %s; slowest tier %u: nodes %s",
            tg_mask_str(t.mask[0], fm, sizeof fm), slowest,
            tg_mask_str(t.mask[slowest], sm, sizeof sm));

    if ((mkdir(WORKDIR, 0755) != 0 && errno != EEXIST) ||
        (mkdir(WORKDIR "/profile", 0755) != 0 && errno != EEXIST) ||
        (mkdir(WORKDIR "/place", 0755) != 0 && errno != EEXIST)) {
        tg_check("workdir", false, "mkdir under %s: %s", WORKDIR,
                 strerror(errno));
        return tg_done();
    }
    /* Leftovers of an earlier run by hand would be read as this one's. */
    const char *old[] = {PROFILE, PROFILE ".partial", GUIDANCE,
                         WORKDIR "/profile.log", WORKDIR "/place.log"};
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        if (unlink(old[i]) != 0 && errno != ENOENT)
            tg_info("unlink %s: %s", old[i], strerror(errno));

    char preload[600];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);

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
    int st = run_child("profile", WORKDIR "/profile.info", prof_env,
                       sizeof prof_env / sizeof prof_env[0]);
    bool run_ok = child_ok("profile-run", st);
    show_file("profile log", WORKDIR "/profile.log", 20);
    if (!run_ok)
        return tg_done();

    table_t learn;
    bool ok = read_table(WORKDIR "/profile", &learn);
    tg_info("profile run: hot key %#llx, cold key %#llx",
            (unsigned long long)learn.key[S_HOT],
            (unsigned long long)learn.key[S_COLD]);
    if (!tg_check("profile-sites", ok, "%s", learn.why))
        return tg_done();
    tg_check("profile-keys-distinct", learn.key[S_HOT] != learn.key[S_COLD],
             "both sites have key %#llx",
             (unsigned long long)learn.key[S_HOT]);

    profile_facts_t pf;
    char why[700];
    ok = read_profile(PROFILE, &learn, &pf, why, sizeof why);
    if (!tg_check("profile-read", ok, "%s", why))
        return tg_done();
    tg_info("profile: %ld intervals, trailer %ld, sampler %s, hot site %llu "
            "samples, cold site %llu samples", pf.intervals, pf.complete,
            pf.sampler[0] ? pf.sampler : "?",
            (unsigned long long)pf.samples[S_HOT],
            (unsigned long long)pf.samples[S_COLD]);
    tg_check("profile-complete",
             !pf.partial_left && pf.trailer_last &&
                 pf.complete == pf.intervals &&
                 pf.intervals >= PROFILE_INTERVALS,
             "%s.partial %s; trailer \"complete %ld\"%s; %ld whole "
             "intervals (want >= %d)", PROFILE,
             pf.partial_left ? "left behind" : "gone", pf.complete,
             pf.trailer_last ? " is the last line" : " is not the last line",
             pf.intervals, PROFILE_INTERVALS);
    tg_check("profile-sampler-uffd", strcmp(pf.sampler, "uffd") == 0,
             "the profile says sampler \"%s\" (uffd unavailable? see the "
             "log above)", pf.sampler);

    /* 2. the tool */
    char capacity[64];
    int co = snprintf(capacity, sizeof capacity, "%s",
                      tg_env_str("TM_DYN_GUIDE_CAPACITY", CAPACITY));
    for (unsigned i = 1; i < slowest && co > 0 && (size_t)co < sizeof capacity;
         i++)
        co += snprintf(capacity + co, sizeof capacity - (size_t)co, ",0");
    char *targv[] = {(char *)"tiermem-guide", (char *)"--capacity", capacity,
                     (char *)"-o", (char *)GUIDANCE, (char *)PROFILE, NULL};
    st = run_tool(tool, targv, WORKDIR "/guide.out", "guide-run");
    show_file("guide output", WORKDIR "/guide.out", 20);
    show_file("guidance", GUIDANCE, 20);
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
             (unsigned long long)learn.key[S_HOT],
             r.tier0_hot ? "is one of them" : "is not among them",
             r.other_tier0 ? "another on tier 0: " : "no other on tier 0",
             r.other);
    tg_check("guidance-cold-slowest", r.tier[S_COLD] == (long)slowest,
             "the cold key %#llx has %s%ld, want tier %u",
             (unsigned long long)learn.key[S_COLD],
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
    st = run_child("place", WORKDIR "/place.info", place_env,
                   sizeof place_env / sizeof place_env[0]);
    run_ok = child_ok("place-run", st);
    show_file("place log", WORKDIR "/place.log", 20);
    if (!run_ok && st == -1)
        return tg_done();

    table_t chk;
    ok = read_table(WORKDIR "/place", &chk);
    tg_info("place run: hot key %#llx, cold key %#llx",
            (unsigned long long)chk.key[S_HOT],
            (unsigned long long)chk.key[S_COLD]);
    if (tg_check("place-sites", ok, "%s", chk.why))
        tg_check("keys-stable",
                 chk.key[S_HOT] == learn.key[S_HOT] &&
                     chk.key[S_COLD] == learn.key[S_COLD],
                 "hot %#llx then %#llx, cold %#llx then %#llx",
                 (unsigned long long)learn.key[S_HOT],
                 (unsigned long long)chk.key[S_HOT],
                 (unsigned long long)learn.key[S_COLD],
                 (unsigned long long)chk.key[S_COLD]);
    unsigned long m1 = main_addr(WORKDIR "/profile.info");
    unsigned long m2 = main_addr(WORKDIR "/place.info");
    tg_check("aslr-moved", m1 && m2 && m1 != m2,
             "the executable was at %#lx in the profiled run and %#lx in the "
             "guided one: keys were not tested across different addresses",
             m1, m2);
    return tg_done();
}
