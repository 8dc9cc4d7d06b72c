/*
 * bench_numa_vs_kernel_parent.h -- the parent half of bench_numa_vs_kernel.c
 * (included once, by it): the kernel's knobs, the balloon, one child per
 * (workload, contender), the guest-wide /proc/vmstat deltas, the table.
 */
#ifndef BENCH_NUMA_VS_KERNEL_PARENT_H
#define BENCH_NUMA_VS_KERNEL_PARENT_H

#define SYSCTL_NB "/proc/sys/kernel/numa_balancing"
#define TIERING_DIR "/sys/devices/virtual/memory_tiering"

typedef struct row {
    char workload[16], contender[24];
    char res[400];  /* the child's key=value line, or "" */
    char note[200]; /* why there is no run, or "" */
    long long mig_bytes, numa_migrated;
} row_t;

static row_t rows[MAX_RUNS];
static int nrows;
static char preload_var[600];
static const char *topo;
static unsigned ntiers; /* the topology's tiers: to-mid only past 2 */

/* ------------------------------------------------------------ kernel */

static long long vmstat(const char *key)
{
    FILE *f = fopen("/proc/vmstat", "re");
    char name[64];
    long long v, found = -1;
    if (!f)
        return -1;
    while (fscanf(f, "%63s %lld", name, &v) == 2)
        if (!strcmp(name, key))
            found = v;
    fclose(f);
    return found;
}

static bool write_sysctl(const char *path, const char *value, char *why,
                         size_t wl)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : write(fd, value, strlen(value));
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && n >= 0) {
        n = -1;
        e = errno;
    }
    if (n != (ssize_t)strlen(value)) {
        snprintf(why, wl, "write %s to %s: %s", value, path, strerror(e));
        return false;
    }
    return true;
}

/* A sysfs node list ("0-1,3") as a mask. */
static uint64_t parse_nodelist(const char *s)
{
    uint64_t m = 0;
    while (*s >= '0' && *s <= '9') {
        char *e;
        unsigned long a = strtoul(s, &e, 10), b = a;
        if (*e == '-')
            b = strtoul(e + 1, &e, 10);
        for (unsigned long n = a; n <= b && n < 64; n++)
            m |= 1ULL << n;
        s = *e == ',' ? e + 1 : e;
    }
    return m;
}

/* Does the kernel put node a and node b in different memory tiers?  False
 * with why otherwise. */
static bool kernel_tiers_differ(unsigned a, unsigned b, char *why, size_t wl)
{
    DIR *d = opendir(TIERING_DIR);
    if (!d) {
        snprintf(why, wl, "no %s: %s", TIERING_DIR, strerror(errno));
        return false;
    }
    int ta = -1, tb = -1, ntiers = 0;
    char seen[300] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "memory_tier", 11))
            continue;
        char path[600], buf[128];
        snprintf(path, sizeof path, TIERING_DIR "/%s/nodelist", e->d_name);
        if (tg_read_file(path, buf, sizeof buf) != 0)
            continue;
        buf[strcspn(buf, "\n")] = '\0';
        uint64_t m = parse_nodelist(buf);
        size_t o = strlen(seen);
        snprintf(seen + o, sizeof seen - o, "%s%.40s: %.40s", o ? ", " : "",
                 e->d_name, buf);
        if (m >> a & 1)
            ta = ntiers;
        if (m >> b & 1)
            tb = ntiers;
        ntiers++;
    }
    closedir(d);
    if (ta >= 0 && tb >= 0 && ta != tb)
        return true;
    snprintf(why, wl, "the kernel has nodes %u and %u in one memory tier (%s)",
             a, b, seen[0] ? seen : "no memory_tier");
    return false;
}

/* ------------------------------------------------------------ balloon */

#define BALLOON_CHUNKS 4

typedef struct balloon {
    void *p[TG_MAX_NODES][BALLOON_CHUNKS];
    size_t len[TG_MAX_NODES][BALLOON_CHUNKS];
} balloon_t;

/* One zone of /proc/zoneinfo, in pages. */
typedef struct zone_wm {
    long long free, boost, low, protect;
} zone_wm_t;

/* What a user page can still get from a zone: its free pages above its low
 * watermark (the one the kernel's migration targets and page faults
 * allocate against, without its temporary boost) and above the reserve it
 * keeps from movable allocations (lowmem_reserve, the last "protection"
 * figure).  With THP on, khugepaged raises min_free_kbytes to tens of MiB
 * in a 1 GiB guest, so the watermarks are far from negligible. */
static long long zone_usable(const zone_wm_t *z)
{
    long long u = z->free - (z->low - z->boost) - z->protect;
    return u > 0 ? u * (long long)TG_PAGE : 0;
}

/* Bytes of node a user page can get now (the sum over its zones). */
static long long node_usable(unsigned node)
{
    FILE *f = fopen("/proc/zoneinfo", "re");
    char line[512];
    long long bytes = 0, v;
    unsigned n;
    bool ours = false, have = false;
    zone_wm_t z = {0};
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        char name[32];
        if (sscanf(line, "Node %u, zone %31s", &n, name) == 2) {
            if (have)
                bytes += zone_usable(&z);
            ours = n == node;
            have = false;
            memset(&z, 0, sizeof z);
        } else if (!ours) {
            continue;
        } else if (!have && sscanf(line, " pages free %lld", &v) == 1) {
            z.free = v;
            have = true;
        } else if (sscanf(line, " boost %lld", &v) == 1) {
            z.boost = v;
        } else if (sscanf(line, " low %lld", &v) == 1) {
            z.low = v;
        } else if (strstr(line, "protection: (")) {
            const char *last = strrchr(line, ',');
            z.protect = strtoll(last ? last + 1 : strchr(line, '(') + 1,
                                NULL, 10);
        }
    }
    if (have)
        bytes += zone_usable(&z);
    fclose(f);
    return bytes;
}

/* Pin len bytes on node: mmap, mbind(MPOL_BIND), mlock.  NULL (said why)
 * on failure. */
static void *pin_on_node(unsigned node, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        tg_info("balloon node %u: mmap %zu: %s", node, len, strerror(errno));
        return NULL;
    }
    unsigned long mask = 1UL << node;
    if (mbind(p, len, MPOL_BIND, &mask, TG_MAX_NODES, 0) != 0 ||
        mlock(p, len) != 0) {
        tg_info("balloon node %u: mbind/mlock %zu bytes: %s", node, len,
                strerror(errno));
        munmap(p, len);
        return NULL;
    }
    return p;
}

/* Fill node with pinned pages of our own down to BALLOON_FREE bytes that a
 * user page can get, so that every contender finds the same free fast
 * memory.  MemFree moves while the kernel settles (per-CPU lists, reclaim
 * of what the previous runs left), so it measures again and tops up. */
static void balloon_fill(balloon_t *b, unsigned node)
{
    long long usable0 = node_usable(node), usable = usable0;
    size_t total = 0;
    for (int i = 0; i < BALLOON_CHUNKS; i++) {
        if (usable <= (long long)BALLOON_FREE + (long long)(2 * MIB))
            break;
        size_t len = (size_t)(usable - (long long)BALLOON_FREE) &
                     ~(TG_PAGE - 1);
        if (!(b->p[node][i] = pin_on_node(node, len)))
            break;
        b->len[node][i] = len;
        total += len;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        usable = node_usable(node);
    }
    tg_info("balloon node %u: %zu MiB pinned, usable %lld -> %lld MiB "
            "(MemFree %lld MiB: the rest is under the zones' low watermarks "
            "or lowmem_reserve)", node, total / MIB, usable0 / (long long)MIB,
            usable / (long long)MIB,
            tg_node_meminfo(node, "MemFree") / (long long)MIB);
}

static void balloon_free(balloon_t *b)
{
    for (unsigned n = 0; n < TG_MAX_NODES; n++)
        for (int i = 0; i < BALLOON_CHUNKS; i++)
            if (b->p[n][i] && munmap(b->p[n][i], b->len[n][i]) != 0)
                tg_info("balloon node %u: munmap: %s", n, strerror(errno));
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------ runs */

/* A warning about the sampler in a short run under the library: it does
 * not know this sampler (yet) and fell back to another one. */
static bool sampler_usable(const char *s, char *why, size_t wl)
{
    char env[4][160], log[128];
    snprintf(log, sizeof log, WORKDIR "/probe-%s.log", s);
    snprintf(env[0], sizeof env[0], "TIERMEM_PROFILE_SAMPLER=%s", s);
    snprintf(env[1], sizeof env[1], "TIERMEM_LOG_FILE=%s", log);
    const char *extra[] = {preload_var, "TIERMEM_POLICY=online",
                           "TIERMEM_LOG=warn", env[0], env[1]};
    char *argv[] = {"bench_numa_vs_kernel", "probe", NULL};
    unlink(log);
    int st = dyn_run(&(dyn_run_t){.label = "probe", .path = "/proc/self/exe",
                                  .argv = argv, .extra = extra, .nextra = 5,
                                  .check = "probe", .exec_check = "probe",
                                  .what = "the probe ", .deadline_s = 30});
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, wl, "probe run failed (status %d)", st);
        return false;
    }
    FILE *f = fopen(log, "re");
    char line[512];
    bool ok = true;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "SAMPLER") || strstr(line, "sampler")) {
            line[strcspn(line, "\n")] = '\0';
            tg_info("sampler %s: the library warned: %s", s, line);
            snprintf(why, wl, "pending (sampler not landed)");
            ok = false;
        }
    if (f)
        fclose(f);
    return ok;
}

/* Where tiermem's site 0 (blocks under TIERMEM_SMALL_SIZE: the program's
 * stdio buffers, small structures) starts.  The other contenders
 * first-touch only the arrays on the slowest node, so their small blocks
 * live on the CPU's node; a guidance file puts tiermem's there too
 * (TM_BENCH_SITE0=slowest: on the slowest tier with the arrays, as
 * TIERMEM_DEFAULT_TIER alone would). */
static char site0_guidance[64];

static void site0_guidance_write(unsigned cpu_node)
{
    if (!strcmp(tg_env_str("TM_BENCH_SITE0", "cpu-node"), "slowest"))
        return;
    char text[64];
    int n = snprintf(text, sizeof text, "tiermem-guidance 1\nkey 0 node %u\n",
                     cpu_node);
    const char *path = WORKDIR "/site0.guidance";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok) {
        tg_check("site0-guidance", false, "%s: %s", path, strerror(errno));
        return;
    }
    snprintf(site0_guidance, sizeof site0_guidance, "%s", path);
}

static void run_one(row_t *r, const char *w, const char *c, int slowest_tier)
{
    char id[160], res[128], log[128], why[300];
    snprintf(id, sizeof id, "topo=%s workload=%s contender=%s", topo, w, c);
    snprintf(res, sizeof res, WORKDIR "/%s-%s.res", w, c);
    snprintf(log, sizeof log, WORKDIR "/%s-%s.log", w, c);
    const char *nb = !strcmp(c, "kernel-nb1")   ? "1"
                     : !strcmp(c, "kernel-nb2") ? "2"
                                                : NULL;
    bool tm = strncmp(c, "tiermem-", 8) == 0;
    char env[6][160];
    const char *extra[10];
    size_t ne = 0;
    if (tm) {
        snprintf(env[0], sizeof env[0], "TIERMEM_PROFILE_SAMPLER=%s", c + 8);
        snprintf(env[1], sizeof env[1], "TIERMEM_DEFAULT_TIER=%d",
                 slowest_tier);
        snprintf(env[2], sizeof env[2], "TIERMEM_POLICY_CAPACITY=%s",
                 strcmp(w, "bigger-hot") ? CAP_SMALL : CAP_BIG);
        snprintf(env[3], sizeof env[3], "TIERMEM_LOG_FILE=%s", log);
        /* TM_BENCH_TIERMEM_LOG=info shows the policy's moves in the log */
        snprintf(env[4], sizeof env[4], "TIERMEM_LOG=%s",
                 tg_env_str("TM_BENCH_TIERMEM_LOG", "warn"));
        const char *fixed[] = {preload_var, "TIERMEM_POLICY=online",
                               "TIERMEM_POLICY_BUDGET=" BUDGET,
                               "TIERMEM_PROFILE_INTERVAL=" INTERVAL,
                               env[4]};
        for (size_t i = 0; i < 5; i++)
            extra[ne++] = fixed[i];
        for (size_t i = 0; i < 4; i++)
            extra[ne++] = env[i];
        if (site0_guidance[0]) {
            snprintf(env[5], sizeof env[5], "TIERMEM_GUIDANCE=%s",
                     site0_guidance);
            extra[ne++] = env[5];
        }
        unlink(log);
    }
    unlink(res);
    if (nb && !write_sysctl(SYSCTL_NB, nb, why, sizeof why)) {
        snprintf(r->note, sizeof r->note, "n/a (%.190s)", why);
        return;
    }
    if (!strcmp(w, "bigger-hot"))
        for (unsigned n = 0; n < TG_MAX_NODES && tg_node_exists(n); n++)
            tg_info("%s: node %u usable %lld MiB (MemFree %lld MiB)", c, n,
                    node_usable(n) / (long long)MIB,
                    tg_node_meminfo(n, "MemFree") / (long long)MIB);
    long long m0 = vmstat("pgmigrate_success"), n0 = vmstat("numa_pages_migrated");
    char *argv[] = {"bench_numa_vs_kernel", "child", (char *)w, (char *)c, id,
                    res, NULL};
    int secs = (int)tg_env_long("TM_BENCH_SECONDS", 15);
    /* No transparent huge pages in the child from its first instruction:
     * the flag is inherited by fork and kept across exec, so what a
     * preloaded library maps before main (tiermem's first small-block
     * extent) is in 4 KiB pages like everything else. */
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
        tg_info("PR_SET_THP_DISABLE: %s", strerror(errno));
    int st = dyn_run(&(dyn_run_t){.label = c, .path = "/proc/self/exe",
                                  .argv = argv, .extra = extra, .nextra = ne,
                                  .check = "run", .exec_check = "run-exec",
                                  .what = "the run ",
                                  .deadline_s = secs + 120});
    long long m1 = vmstat("pgmigrate_success"), n1 = vmstat("numa_pages_migrated");
    (void)prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
    if (nb && !write_sysctl(SYSCTL_NB, "0", why, sizeof why))
        tg_check("restore-numa-balancing", false, "%s", why);
    r->mig_bytes = m0 >= 0 && m1 >= 0 ? (m1 - m0) * (long long)TG_PAGE : -1;
    r->numa_migrated = n0 >= 0 && n1 >= 0 ? n1 - n0 : -1;
    if (tm)
        dyn_show_file("log", log,
                      strcmp(tg_env_str("TM_BENCH_TIERMEM_LOG", "warn"),
                             "warn") ? 400 : 8);
    if (tg_read_file(res, r->res, sizeof r->res) != 0 || st == -1 ||
        !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(r->note, sizeof r->note, "failed (wait status %#x)", st);
        r->res[0] = '\0';
        tg_check("run", false, "%s: the child failed (wait status %#x)", id,
                 st);
        return;
    }
    r->res[strcspn(r->res, "\n")] = '\0';
    printf("BENCH %s %s migrated_bytes=%lld numa_pages_migrated=%lld\n", id,
           r->res, r->mig_bytes, r->numa_migrated);
}

/* ------------------------------------------------------------ table */

static double res_get(const row_t *r, const char *key)
{
    char pat[40];
    snprintf(pat, sizeof pat, " %s=", key);
    char line[420];
    snprintf(line, sizeof line, " %s", r->res);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static void fmt_t95(double v, char *b, size_t n)
{
    if (v < 0)
        snprintf(b, n, "never");
    else
        snprintf(b, n, "%.0f s", v);
}

static void print_table(void)
{
    printf("BENCHTABLE topology %s, %s s per run; MiB = 2^20 bytes\n", topo,
           tg_env_str("TM_BENCH_SECONDS", "15"));
    printf("BENCHTABLE %-10s %-13s %8s %6s %-15s %-11s %-13s %7s %6s %8s "
           "%5s\n", "workload", "contender", "hot@fast", "hot-up", "t95",
           "cold@fast", "migrated MiB", "to-fast", "to-mid", "hot-prec",
           "gap");
    for (int i = 0; i < nrows; i++) {
        const row_t *r = &rows[i];
        if (!r->res[0]) {
            printf("BENCHTABLE %-10s %-13s %s\n", r->workload, r->contender,
                   r->note);
            continue;
        }
        char t95[32], a[16], b[16], cold[32], mig[32], prec[16], mid[16];
        if (!strcmp(r->workload, "phase")) {
            fmt_t95(res_get(r, "t95"), a, sizeof a);
            fmt_t95(res_get(r, "t95b"), b, sizeof b);
            snprintf(t95, sizeof t95, "A %.8s,B %.8s", a, b);
        } else {
            fmt_t95(res_get(r, "t95"), t95, sizeof t95);
        }
        snprintf(cold, sizeof cold, "%.1f/%.1f",
                 res_get(r, "cold_fast_end") * TG_PAGE / MIB,
                 res_get(r, "cold_fast_max") * TG_PAGE / MIB);
        snprintf(mig, sizeof mig, "%.1f/%.1f", (double)r->mig_bytes / MIB,
                 r->numa_migrated < 0 ? -1.0
                                      : (double)r->numa_migrated * TG_PAGE / MIB);
        if (!strcmp(r->workload, "bigger-hot"))
            snprintf(prec, sizeof prec, "%.2f", res_get(r, "best_prec"));
        else
            snprintf(prec, sizeof prec, "-");
        if (ntiers > 2)
            snprintf(mid, sizeof mid, "%.1f",
                     res_get(r, "to_mid") * TG_PAGE / MIB);
        else
            snprintf(mid, sizeof mid, "-");
        printf("BENCHTABLE %-10s %-13s %8.2f %6.2f %-15s %-11s %-13s %7.1f "
               "%6s %8s %4.1fs\n", r->workload, r->contender,
               res_get(r, "hot_fast"), res_get(r, "hot_up"), t95, cold, mig,
               res_get(r, "to_fast") * TG_PAGE / MIB, mid, prec,
               res_get(r, "max_gap_s"));
    }
}

/* ------------------------------------------------------------ main */

static bool in_list(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)); p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == ',') &&
            (p[n] == ' ' || p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

static int parent_main(void)
{
    tg_begin("bench_numa_vs_kernel");
    unsigned nodes = tg_node_count();
    if (!dyn_preload_var(nodes, preload_var, sizeof preload_var))
        return tg_done();
    dyn_tiers_t t;
    if (!dyn_check_tiers(nodes, &t))
        return tg_done();
    topo = tg_env_str("TM_TOPO", "?");
    ntiers = (unsigned)t.n;
    unsigned cpu = (unsigned)tg_env_long("TM_CPU_NODE", 0), slow = 0;
    while (!(t.mask[t.n - 1] >> slow & 1))
        slow++;
    if (mkdir(WORKDIR, 0755) != 0 && errno != EEXIST) {
        tg_check("workdir", false, "mkdir %s: %s", WORKDIR, strerror(errno));
        return tg_done();
    }
    site0_guidance_write(cpu);
    const char *workloads = tg_env_str("TM_BENCH_WORKLOADS", all_workloads);
    const char *samplers = tg_env_str("TM_BENCH_SAMPLERS", "refs uffd");
    char contenders[256];
    snprintf(contenders, sizeof contenders, "first-touch kernel-nb1 kernel-nb2");
    char sampler_note[8][200] = {{0}}, snames[8][32];
    int ns = 0;
    for (const char *p = samplers; *p && ns < 8;) {
        int len = (int)strcspn(p, " ,");
        if (len > 0 && len < 32) {
            snprintf(snames[ns], sizeof snames[ns], "%.*s", len, p);
            size_t o = strlen(contenders);
            snprintf(contenders + o, sizeof contenders - o, " tiermem-%s",
                     snames[ns]);
            if (!sampler_usable(snames[ns], sampler_note[ns],
                                sizeof sampler_note[ns]))
                tg_info("sampler %s: %s", snames[ns], sampler_note[ns]);
            ns++;
        }
        p += len + (p[len] != '\0');
    }
    const char *only = tg_env_str("TM_BENCH_CONTENDERS", contenders);
    char nb2_why[400] = "", nb_why[200] = "";
    bool nb2 = kernel_tiers_differ(cpu, slow, nb2_why, sizeof nb2_why);
    if (access(SYSCTL_NB, W_OK) != 0)
        snprintf(nb_why, sizeof nb_why, "%s: %s", SYSCTL_NB, strerror(errno));
    char fm[64];
    tg_info("topology %s: fast tier nodes %s, slowest node %u, CPU node %u; "
            "%s s per run; tiermem: TIERMEM_POLICY=online "
            "TIERMEM_DEFAULT_TIER=%d TIERMEM_POLICY_BUDGET=" BUDGET
            " TIERMEM_PROFILE_INTERVAL=" INTERVAL " TIERMEM_POLICY_CAPACITY="
            CAP_SMALL " (" CAP_BIG " for bigger-hot), TIERMEM_POLICY_EVERY "
            "default, site 0 on %s; kernel-nb2: %s", topo,
            tg_mask_str(t.mask[0], fm, sizeof fm), slow, cpu,
            tg_env_str("TM_BENCH_SECONDS", "15"), t.n - 1,
            site0_guidance[0] ? "the CPU node (guidance)" : "the slowest tier",
            nb2 ? "available" : nb2_why);
    balloon_t bal = {0};
    for (const char *w = workloads; *w;) {
        int wl = (int)strcspn(w, " ,");
        char wn[16];
        snprintf(wn, sizeof wn, "%.*s", wl, w);
        w += wl + (w[wl] != '\0');
        arr_t tmp[MAX_ARR];
        if (wl == 0 || workload_arrays(wn, tmp) < 0) {
            tg_info("unknown workload '%s' ignored", wn);
            continue;
        }
        for (const char *c = contenders; *c && nrows < MAX_RUNS;) {
            int cl = (int)strcspn(c, " ");
            row_t *r = &rows[nrows];
            memset(r, 0, sizeof *r);
            snprintf(r->workload, sizeof r->workload, "%s", wn);
            snprintf(r->contender, sizeof r->contender, "%.*s", cl, c);
            c += cl + (c[cl] == ' ');
            if (!in_list(only, r->contender))
                continue;
            nrows++;
            if (!strncmp(r->contender, "kernel-", 7) && nb_why[0])
                snprintf(r->note, sizeof r->note, "n/a (%s)", nb_why);
            else if (!strcmp(r->contender, "kernel-nb2") && !nb2)
                snprintf(r->note, sizeof r->note, "n/a (%s)", nb2_why);
            for (int s = 0; s < ns; s++)
                if (!strcmp(r->contender + 8, snames[s]) &&
                    !strncmp(r->contender, "tiermem-", 8) && sampler_note[s][0])
                    snprintf(r->note, sizeof r->note, "%.190s", sampler_note[s]);
            if (r->note[0]) {
                printf("BENCH topo=%s workload=%s contender=%s none=\"%s\"\n",
                       topo, wn, r->contender, r->note);
                continue;
            }
            /* the balloon is made again before each run: what the last
             * run left (slab, per-CPU lists) changes the free memory */
            for (unsigned n = 0; n < nodes && !strcmp(wn, "bigger-hot"); n++)
                if ((t.mask[0] >> n & 1) || n == cpu)
                    balloon_fill(&bal, n);
            run_one(r, wn, r->contender, t.n - 1);
            balloon_free(&bal);
        }
    }
    print_table();
    tg_check("ran", nrows > 0, "no run (TM_BENCH_WORKLOADS, TM_BENCH_CONTENDERS)");
    return tg_done();
}

#endif
