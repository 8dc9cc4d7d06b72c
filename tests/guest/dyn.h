/*
 * dyn.h -- the harness of the dynamic guest tests (dyn_*.c): a test that
 * runs itself (or a tool) as a child under LD_PRELOAD=$TM_PRELOAD_LIB, as
 * an unmodified program would run, and then judges the files the child and
 * the library left behind.
 *
 * On top of guest.h (tg_* checks, move_pages queries), for the parent:
 * the start (dyn_preload_var, dyn_check_tiers, dyn_workdir), runs with
 * their own environment and a deadline (dyn_run, dyn_run_self,
 * dyn_child_ok), and readers of what the runs wrote (dyn_show_file,
 * dyn_read_table, dyn_read_profile and its checks, dyn_check_aslr_moved);
 * for the child: DYN_SITE_FN (an allocation site), dyn_sym (tiermem's
 * functions, found at run time), dyn_check_pages, dyn_now_s.
 *
 * A dynamic test does not link tiermem: everything here is libc, libdl
 * and libnuma (run-rig.sh links dyn_*.c with -rdynamic -lnuma -ldl).
 */
#ifndef TM_GUEST_DYN_H
#define TM_GUEST_DYN_H

#include "guest.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define DYN_MIB (1024UL * 1024)
#define DYN_PRELOAD "/usr/lib/tiermem/libtiermem-preload.so"
#define DYN_MAX_SITES 8

extern char **environ;

/* ------------------------------------------------------------ the start */

/* "LD_PRELOAD=<the library>" into var, or false after reporting why the
 * test cannot run: a skip on a guest with one node, a failure when the
 * library ($TM_PRELOAD_LIB) is not there. */
static inline bool dyn_preload_var(unsigned nodes, char *var, size_t len)
{
    if (nodes < 2) {
        tg_skip("all", "needs two nodes, the guest has %u", nodes);
        return false;
    }
    const char *lib = tg_env_str("TM_PRELOAD_LIB", DYN_PRELOAD);
    if (!tg_check("preload-lib", access(lib, R_OK) == 0, "%s: %s", lib,
                  strerror(errno)))
        return false;
    snprintf(var, len, "LD_PRELOAD=%s", lib);
    return true;
}

typedef struct dyn_tiers {
    uint64_t mask[TG_MAX_NODES]; /* the nodes of each tier, fastest first */
    int n;
} dyn_tiers_t;

/* The tier order the rig's topology implies (TM_EXPECT_TIERS); without it,
 * nodes in id order. */
static inline void dyn_expected_tiers(unsigned nodes, dyn_tiers_t *t)
{
    t->n = tg_parse_tiers(tg_env_str("TM_EXPECT_TIERS", ""), t->mask,
                          TG_MAX_NODES);
    if (t->n <= 0) {
        t->n = (int)nodes;
        for (unsigned i = 0; i < nodes; i++)
            t->mask[i] = 1ULL << i;
    }
}

/* The expected tiers, checked ("tiers": a fastest and a slowest) and
 * shown. */
static inline bool dyn_check_tiers(unsigned nodes, dyn_tiers_t *t)
{
    dyn_expected_tiers(nodes, t);
    if (!tg_check("tiers", t->n >= 2, "TM_EXPECT_TIERS \"%s\" gives %d tiers",
                  tg_env_str("TM_EXPECT_TIERS", ""), t->n))
        return false;
    char fm[64], sm[64];
    tg_info("fastest tier 0: nodes %s; slowest tier %d: nodes %s",
            tg_mask_str(t->mask[0], fm, sizeof fm), t->n - 1,
            tg_mask_str(t->mask[t->n - 1], sm, sizeof sm));
    return true;
}

/* Make the work directory dir and the directories subs (NULL-terminated,
 * or NULL), then remove the files old (the same) that an earlier run by
 * hand left: they would be read as this run's.  False after reporting a
 * failure as "workdir". */
static inline bool dyn_workdir(const char *dir, const char *const *subs,
                               const char *const *old)
{
    bool made = mkdir(dir, 0755) == 0 || errno == EEXIST;
    for (size_t i = 0; made && subs && subs[i]; i++)
        made = mkdir(subs[i], 0755) == 0 || errno == EEXIST;
    if (!made) {
        tg_check("workdir", false, "mkdir %s%s: %s", subs ? "under " : "",
                 dir, strerror(errno));
        return false;
    }
    for (size_t i = 0; old && old[i]; i++)
        if (unlink(old[i]) != 0 && errno != ENOENT)
            tg_info("unlink %s: %s", old[i], strerror(errno));
    return true;
}

/* ------------------------------------------------------------ the child */

/* A site: `void *NAME(void)` returns malloc(SIZE).  Global, so -rdynamic
 * exports it and the site table names it; noinline, and it writes its own
 * MARK into the block after the call, so the bodies differ (no
 * identical-code folding) and malloc is not a tail call: the return
 * address, frame 0 of the site's key, is inside the function. */
#define DYN_SITE_FN(name, size, mark)                                         \
    __attribute__((noinline)) void *name(void)                                \
    {                                                                         \
        unsigned char *p = malloc(size);                                      \
        if (p)                                                                \
            p[0] = (mark);                                                    \
        return p;                                                             \
    }

/* tiermem's function name into *fnp (a function pointer; NULL when the
 * library is not preloaded). */
static inline void dyn_sym(const char *name, void *fnp)
{
    void *sym = dlsym(RTLD_DEFAULT, name);
    memcpy(fnp, &sym, sizeof sym);
}

static inline double dyn_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every page of [p, p+len) on a node of mask; why explains otherwise. */
static inline bool dyn_pages_in(void *p, size_t len, uint64_t mask, char *why,
                                size_t wl)
{
    tg_where_t w;
    if (tg_where(p, len, -1, &w) != 0) {
        snprintf(why, wl, "move_pages failed: %s", strerror(errno));
        return false;
    }
    size_t in = 0;
    for (unsigned n = 0; n < TG_MAX_NODES; n++)
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

/* Check "SITE-on-nodeNODES": every page of the block [p, p+len) that fn
 * allocated is on a node of mask. */
static inline bool dyn_check_pages(const char *site, const char *fn, void *p,
                                   size_t len, uint64_t mask)
{
    char name[64], why[512], m[64];
    snprintf(name, sizeof name, "%s-on-node%s", site,
             tg_mask_str(mask, m, sizeof m));
    return tg_check(name, dyn_pages_in(p, len, mask, why, sizeof why),
                    "%s (%zu bytes at %p): %s", fn, len, p, why);
}

/* ------------------------------------------------------------ runs */

/* The environment, minus LD_PRELOAD and every variable extra sets, plus
 * extra.  NULL on ENOMEM. */
static inline char **dyn_child_env(const char *const *extra, size_t nextra)
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
            size_t len = strcspn(extra[j], "=") + 1;
            drop = strncmp(environ[i], extra[j], len) == 0;
        }
        if (!drop)
            env[k++] = environ[i];
    }
    for (size_t i = 0; i < nextra; i++)
        env[k++] = (char *)extra[i];
    env[k] = NULL;
    return env;
}

/* Wait for pid at most deadline_s seconds (then kill it).  Returns its wait
 * status, or -1 after reporting under check ("WHAT did not end ..."). */
static inline int dyn_wait(pid_t pid, const char *check, const char *what,
                           int deadline_s)
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
            tg_check(check, false, "%sdid not end in %d s (killed)",
                     what ? what : "", deadline_s);
            return -1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* One run of a program, and how it is reported. */
typedef struct dyn_run {
    const char *label;        /* the "LABEL: ENV ARGV" line shown first */
    const char *path;         /* the program */
    char *const *argv;
    const char *const *extra; /* NAME=VALUE words added to the environment */
    size_t nextra;
    const char *out;          /* its stdout and stderr go there, or NULL */
    const char *check;        /* failing to run or to end is reported here */
    const char *exec_check;   /* without out: the child reports a failed
                                 execve as this check */
    const char *what;         /* "the run ": the deadline message's subject */
    int deadline_s;
} dyn_run_t;

/* Run r->path in the environment without LD_PRELOAD (dyn_child_env); its
 * wait status, or -1 (reported). */
static inline int dyn_run(const dyn_run_t *r)
{
    char **env = dyn_child_env(r->extra, r->nextra);
    if (!env) {
        tg_check(r->check, false, "environment: %s", strerror(ENOMEM));
        return -1;
    }
    char shown[1500] = "";
    size_t o = 0;
    for (size_t i = 0; i < r->nextra && o < sizeof shown; i++)
        o += (size_t)snprintf(shown + o, sizeof shown - o, "%s ", r->extra[i]);
    for (size_t i = 0; r->argv[i] && o < sizeof shown; i++)
        o += (size_t)snprintf(shown + o, sizeof shown - o, "%s%s",
                              i ? " " : "", r->argv[i]);
    tg_info("%s: %s%s%s", r->label, shown, r->out ? " > " : "",
            r->out ? r->out : "");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (r->out) {
            int fd = open(r->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                          0644);
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
                dup2(fd, STDERR_FILENO) < 0)
                _exit(126);
        }
        execve(r->path, r->argv, env);
        if (r->out)
            dprintf(STDERR_FILENO, "execve %s: %s\n", r->path,
                    strerror(errno));
        else
            printf("TMTEST FAIL %s/%s: execve: %s\n", tg_test_name,
                   r->exec_check, strerror(errno));
        fflush(stdout);
        _exit(127);
    }
    int saved = errno;
    free(env);
    if (pid < 0) {
        tg_check(r->check, false, "fork: %s", strerror(saved));
        return -1;
    }
    return dyn_wait(pid, r->check, r->what, r->deadline_s);
}

/* Run this test again as `TEST MODE INFO` (its child's half), shown as
 * "MODE run", a failed execve reported as "MODE-exec", the rest under
 * check; its wait status, or -1 (reported). */
static inline int dyn_run_self(const char *mode, const char *info,
                               const char *const *extra, size_t nextra,
                               const char *check, const char *what,
                               int deadline_s)
{
    char label[64], exec_check[64];
    snprintf(label, sizeof label, "%s run", mode);
    snprintf(exec_check, sizeof exec_check, "%s-exec", mode);
    char *argv[] = {(char *)tg_test_name, (char *)mode, (char *)info, NULL};
    return dyn_run(&(dyn_run_t){.label = label, .path = "/proc/self/exe",
                                .argv = argv, .extra = extra,
                                .nextra = nextra, .check = check,
                                .exec_check = exec_check, .what = what,
                                .deadline_s = deadline_s});
}

/* The run ended normally: exit 0, or 1 with its FAIL lines already out. */
static inline bool dyn_child_ok(const char *check, int status)
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
static inline void dyn_show_file(const char *what, const char *path,
                                 unsigned max)
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

/* The "main %p" line a child wrote to its info file, 0 if none. */
static inline unsigned long dyn_main_addr(const char *info)
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

/* Check "aslr-moved": the executable was elsewhere in the run that wrote
 * info2 (called run2) than in the one that wrote info1 (run1), so keys
 * equal in both were tested across different addresses. */
static inline void dyn_check_aslr_moved(const char *info1, const char *run1,
                                        const char *info2, const char *run2)
{
    unsigned long m1 = dyn_main_addr(info1), m2 = dyn_main_addr(info2);
    tg_check("aslr-moved", m1 && m2 && m1 != m2,
             "the executable was at %#lx in the %s run and %#lx in the %s "
             "one: keys were not tested across different addresses",
             m1, run1, m2, run2);
}

/* One site of a site table, as a test looks for it. */
typedef struct dyn_site {
    bool have;
    uint64_t key;
    unsigned arena;
    unsigned long long peak;
    uint64_t nodes; /* its arena's node mask */
    char kind[16];  /* stack, explicit or cc */
    /* A compiler site's "cc" line (cc_line 0 if none): where the call is. */
    char cc_file[256];
    unsigned cc_line;
} dyn_site_t;

typedef struct dyn_table {
    dyn_site_t site[DYN_MAX_SITES];
    char path[600];
    char why[700];
} dyn_table_t;

/* The site table one run of this test wrote in dir
 * (tiermem-sites.<test>.<pid>.txt): site i is the site whose frame 0 is in
 * the function fn[i], or the compiler site whose "cc" line names fn[i] as
 * the function the call is written in (a program built with tiermem-cc:
 * its sites have no frames), or, for fn[i] NULL, the site with explicit id
 * `id`.
 * False (t->why says) when there is no table to read; which of the n sites
 * it has (have) is the caller's to judge. */
static inline bool dyn_read_table(const char *dir, const char *const *fn,
                                  int n, int id, dyn_table_t *t)
{
    memset(t, 0, sizeof *t);
    char prefix[128];
    int pl = snprintf(prefix, sizeof prefix, "tiermem-sites.%s.",
                      tg_test_name);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(t->why, sizeof t->why, "opendir %s: %s", dir,
                 strerror(errno));
        return false;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, prefix, (size_t)pl) == 0 && l > 4 &&
            strcmp(de->d_name + l - 4, ".txt") == 0)
            snprintf(t->path, sizeof t->path, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (!t->path[0]) {
        snprintf(t->why, sizeof t->why, "no site table in %s", dir);
        return false;
    }
    FILE *f = fopen(t->path, "re");
    if (!f) {
        snprintf(t->why, sizeof t->why, "%s: %s", t->path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    dyn_site_t cur = {0}; /* the site whose frame lines follow */
    while (getline(&line, &cap, f) > 0) {
        unsigned idx, arena, fno;
        unsigned long long key, allocs, frees, live, peak, bytes, nodes;
        int sid = -1, off = 0;
        char obj[512], fname[256];
        if (sscanf(line,
                   "site %u key %llx arena %u allocs %llu frees %llu live "
                   "%llu peak %llu bytes %llu%n",
                   &idx, &key, &arena, &allocs, &frees, &live, &peak, &bytes,
                   &off) == 8) {
            cur = (dyn_site_t){.have = true, .key = key, .arena = arena,
                               .peak = peak};
            /* Format 2 has " kind K" before the explicit site's " id N". */
            int koff = 0;
            if (sscanf(line + off, " kind %15s%n", cur.kind, &koff) == 1)
                off += koff;
            else
                cur.kind[0] = '\0';
            if (id >= 0 && sscanf(line + off, " id %d", &sid) == 1 &&
                sid == id)
                for (int i = 0; i < n; i++)
                    if (!fn[i])
                        t->site[i] = cur;
            continue;
        }
        unsigned ccl;
        if (sscanf(line, "cc %255s %u %*u %255s", cur.cc_file, &ccl, fname) ==
            3) {
            cur.cc_line = ccl;
            for (int i = 0; i < n; i++)
                if (fn[i] && strcmp(fname, fn[i]) == 0)
                    t->site[i] = cur;
            continue;
        }
        if (sscanf(line, "frame %u %511s %*s %255s", &fno, obj, fname) == 3) {
            if (fno != 0)
                continue;
            fname[strcspn(fname, "+")] = '\0';
            for (int i = 0; i < n; i++)
                if (fn[i] && strcmp(fname, fn[i]) == 0)
                    t->site[i] = cur;
            continue;
        }
        if (sscanf(line, "arena %u kind %*s nodes %llx", &arena, &nodes) == 2)
            for (int i = 0; i < n; i++)
                if (t->site[i].have && t->site[i].arena == arena)
                    t->site[i].nodes = nodes;
    }
    free(line);
    fclose(f);
    return true;
}

/* dyn_read_table, true only when all n sites are there; else t->why lists
 * the missing ones by name[i]. */
static inline bool dyn_read_table_all(const char *dir, const char *const *fn,
                                      const char *const *name, int n, int id,
                                      dyn_table_t *t)
{
    if (!dyn_read_table(dir, fn, n, id, t))
        return false;
    bool all = true;
    int o = snprintf(t->why, sizeof t->why, "%s: missing", t->path);
    for (int i = 0; i < n; i++)
        if (!t->site[i].have) {
            all = false;
            if (o > 0 && (size_t)o < sizeof t->why)
                o += snprintf(t->why + o, sizeof t->why - (size_t)o, " %s",
                              name[i]);
        }
    return all;
}

/* What a profile says of itself (doc/profile-format.md). */
typedef struct dyn_profile {
    bool partial_left;  /* PATH.partial is still there */
    long intervals;     /* "end" lines */
    long complete;      /* the trailer's count, -1 if none */
    bool trailer_last;  /* the trailer is the last line */
    char sampler[32];
} dyn_profile_t;

/* Read the profile at path as text: what it says of itself into *p, and
 * every line to each(line, ctx) for the rest.  False (why says) when it
 * cannot be read. */
static inline bool dyn_read_profile(const char *path, dyn_profile_t *p,
                                    void (*each)(const char *, void *),
                                    void *ctx, char *why, size_t wl)
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
    char line[1024], word[32];
    while (fgets(line, sizeof line, f)) {
        unsigned long long x;
        p->trailer_last = false;
        if (sscanf(line, "end %llu", &x) == 1) {
            p->intervals++;
        } else if (sscanf(line, "complete %llu", &x) == 1) {
            p->complete = (long)x;
            p->trailer_last = true;
        } else if (sscanf(line, "sampler %31s", word) == 1) {
            snprintf(p->sampler, sizeof p->sampler, "%s", word);
        }
        each(line, ctx);
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        snprintf(why, wl, "reading %s failed", path);
        return false;
    }
    return true;
}

/* Check "profile-complete" (the profile at path is under its final name,
 * no .partial left, its trailer counts its intervals, at least min of
 * them) and "profile-sampler-uffd" (note: more on a failure). */
static inline void dyn_check_profile(const char *path, const dyn_profile_t *p,
                                     long min, const char *note)
{
    char want[64] = "";
    if (min > 1)
        snprintf(want, sizeof want, " (want >= %ld)", min);
    tg_check("profile-complete",
             !p->partial_left && p->trailer_last &&
                 p->complete == p->intervals && p->intervals >= min,
             "%s.partial %s; trailer \"complete %ld\"%s; %ld whole "
             "intervals%s", path, p->partial_left ? "left behind" : "gone",
             p->complete,
             p->trailer_last ? " is the last line" : " is not the last line",
             p->intervals, want);
    tg_check("profile-sampler-uffd", strcmp(p->sampler, "uffd") == 0,
             "the profile says sampler \"%s\"%s", p->sampler, note);
}

#endif
