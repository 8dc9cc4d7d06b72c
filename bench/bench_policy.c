/*
 * bench_policy.c -- the placement policies' quality: of the sampled
 * accesses of a replayed run, what fraction each policy puts in the fast
 * tier, as a ratio to the oracle (the optimum placement of each phase,
 * known offline), and how many bytes the online policy migrates for it.
 *
 * Workloads (bench_policy_workloads.c): a static Zipf set, four phases
 * with moving hot sets, many small hot items against one big one.  Fast
 * tier from 1/32 to 1/2 of the footprint.
 *
 * - oracle: per phase, knapsack (exact: sizes are whole MiB) on the phase's
 *   samples in the evaluated run; its hits summed over phases.  For phase
 *   workloads, also the best static placement: knapsack on the run's
 *   totals, the best any placement made once can do.
 * - offline (hotset, thermos, knapsack): placed once, from a profile run
 *   of the same workload with another seed (sampling noise only); static
 *   over the evaluated run, nothing migrated (placed at allocation).
 * - online: policy/online.c from online_config_default, fed one interval
 *   at a time with rows built as the profiler builds them (heat with the
 *   profiler's default half-life).  Every item starts on the slow tier; the
 *   samples of interval k hit the fast tier if the item is on tier 0 in the
 *   map left by the decision at the end of interval k - 1.  Warm-up = the
 *   first 2 decisions (2 * every intervals), left out of "after warm-up".
 *
 * Not a test: it prints ratios measured side by side in one run and marks
 * the targets met or MISSED (>= 0.95 offline, >= 0.85 online after
 * warm-up), and exits 0 whatever the figures.
 */
#include "config.h"

#include <math.h>
#include <stdbool.h>

#include "policy.h"
#include "bench_util.h"
#include "bench_policy_workloads.h"

#define INTERVAL_NS 100000000ull   /* the profiler's default, for budgets */
#define RECOVER_AT 0.85            /* per-interval ratio after a change */
#define WARMUP_DECISIONS 2
#define NPOLICIES 3                /* hotset, thermos, knapsack */

static const unsigned cap_div[] = {32, 16, 8, 4, 2};
#define NCAPS (sizeof(cap_div) / sizeof(cap_div[0]))

typedef struct opts {
    uint64_t seed;
    unsigned intervals, samples, every;
    bool quick;
    double headroom, hysteresis;  /* < 0: online_config_default's */
} opts_t;

/* What one (workload, capacity) measured. */
typedef struct row {
    double oracle_frac;           /* oracle hits / all samples */
    double offline[NPOLICIES];    /* / oracle */
    double best_static;           /* best static / oracle */
    double knap_static;           /* offline knapsack / best static */
    double online, online_all;    /* / oracle: after warm-up, all */
    uint64_t moved;               /* bytes, unlimited budget */
    double budget_online;         /* / oracle after warm-up, finite budget */
    uint64_t budget_moved;
    double recover;               /* median intervals to RECOVER_AT */
} row_t;

/* Minima over the whole run, for the closing summary. */
typedef struct summary {
    double knap_min, online_min;
    char knap_where[64], online_where[64];
    bool inexact;                 /* some oracle knapsack was not exact */
} summary_t;

/* ---------------------------------------------------------------- usage */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_policy [--quick] [--seed N] [--intervals N] "
            "[--samples N] [--every N]\n"
            "                    [--headroom F] [--hysteresis F]\n"
            "  --intervals N  intervals per run (default 256; --quick 128)\n"
            "  --samples N    sampled accesses per interval (default 4000;"
            " --quick 1000)\n"
            "  --every N      intervals per online decision (default 4)\n"
            "  --headroom F, --hysteresis F  override the online defaults "
            "(to study them)\n");
}

static BENCH_NORETURN BENCH_PRINTF(1, 2) void bad_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("bench_policy: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

/* "--name V" or "--name=V": V if argv[*i] is `name`, else NULL. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc)
        bad_usage("%s needs a value", name);
    return argv[++*i];
}

static unsigned parse_uint(const char *opt, const char *s, unsigned lo,
                           unsigned hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
        bad_usage("%s: want an integer in %u..%u, not '%s'", opt, lo, hi, s);
    return (unsigned)v;
}

static double parse_real(const char *opt, const char *s, double lo,
                         double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        bad_usage("%s: want a number in %g..%g, not '%s'", opt, lo, hi, s);
    return v;
}

static void parse_opts(int argc, char **argv, opts_t *o)
{
    const char *v;
    *o = (opts_t){.seed = 1, .every = 4, .headroom = -1, .hysteresis = -1};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--quick") == 0) {
            o->quick = true;
        } else if ((v = opt_value(argc, argv, &i, "--seed"))) {
            o->seed = parse_uint("--seed", v, 0, 4000000000u);
        } else if ((v = opt_value(argc, argv, &i, "--intervals"))) {
            o->intervals = parse_uint("--intervals", v, 16, 100000);
        } else if ((v = opt_value(argc, argv, &i, "--samples"))) {
            o->samples = parse_uint("--samples", v, 10, 10000000);
        } else if ((v = opt_value(argc, argv, &i, "--every"))) {
            o->every = parse_uint("--every", v, 1, 64);
        } else if ((v = opt_value(argc, argv, &i, "--headroom"))) {
            o->headroom = parse_real("--headroom", v, 0.0, 0.9);
        } else if ((v = opt_value(argc, argv, &i, "--hysteresis"))) {
            o->hysteresis = parse_real("--hysteresis", v, 1.0, 100.0);
        } else {
            bad_usage("unknown option '%s'", argv[i]);
        }
    }
    if (!o->intervals)
        o->intervals = o->quick ? 128 : 256;
    if (!o->samples)
        o->samples = o->quick ? 1000 : 4000;
    /* Each of the 4 phases must hold the warm-up and a few decisions. */
    if (o->intervals < 16 * o->every)
        bad_usage("--intervals must be at least 16 x --every (%u)",
                  16 * o->every);
}

/* ---------------------------------------------------------------- static */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        die_errno(errno, "calloc %zu x %zu", n, size);
    return p;
}

/* Samples per item over intervals [a, b). */
static void totals(const replay_t *r, unsigned a, unsigned b, double *acc)
{
    for (size_t i = 0; i < r->n; i++)
        acc[i] = 0;
    for (unsigned k = a; k < b; k++)
        for (size_t i = 0; i < r->n; i++)
            acc[i] += replay_row(r, k)[i];
}

/* Hits of interval k with the tier map `tier`. */
static uint64_t interval_hits(const replay_t *r, unsigned k,
                              const unsigned *tier)
{
    uint64_t h = 0;
    for (size_t i = 0; i < r->n; i++)
        if (tier[i] == 0)
            h += replay_row(r, k)[i];
    return h;
}

/* Place items with accesses acc[] into a fast tier of cap bytes. */
static void place(place_policy_t p, const workload_t *w, const double *acc,
                  uint64_t cap, unsigned *tier, summary_t *sum)
{
    place_item_t *it = xcalloc(w->n, sizeof(*it));
    uint64_t caps[2] = {cap, 0};
    bool exact = true;
    for (size_t i = 0; i < w->n; i++)
        it[i] = (place_item_t){i + 1, w->bytes[i], acc[i]};
    if (place_items(p, it, w->n, caps, 2, NULL, tier, &exact) < 0)
        die_errno(errno, "place_items %s", place_policy_name(p));
    if (p == PLACE_KNAPSACK && !exact)
        sum->inexact = true;
    free(it);
}

/* The oracle: per phase, knapsack on that phase's samples; oracle[k] is
 * its hits in interval k.  Returns the best static placement's hits. */
static uint64_t oracle(const workload_t *w, const replay_t *r, uint64_t cap,
                       uint64_t *oracle_iv, summary_t *sum)
{
    double *acc = xcalloc(w->n, sizeof(*acc));
    unsigned *tier = xcalloc(w->n, sizeof(*tier));
    for (unsigned ph = 0; ph < r->nphases; ph++) {
        unsigned a = replay_phase_start(r, ph), b = replay_phase_start(r, ph + 1);
        totals(r, a, b, acc);
        place(PLACE_KNAPSACK, w, acc, cap, tier, sum);
        for (unsigned k = a; k < b; k++)
            oracle_iv[k] = interval_hits(r, k, tier);
    }
    totals(r, 0, r->nintervals, acc);
    place(PLACE_KNAPSACK, w, acc, cap, tier, sum);
    uint64_t best = 0;
    for (unsigned k = 0; k < r->nintervals; k++)
        best += interval_hits(r, k, tier);
    free(acc);
    free(tier);
    return best;
}

static uint64_t sum_range(const uint64_t *v, unsigned a, unsigned b)
{
    uint64_t s = 0;
    for (unsigned k = a; k < b; k++)
        s += v[k];
    return s;
}

static double ratio(uint64_t num, uint64_t den)
{
    return den ? (double)num / (double)den : 1.0;
}

/* Offline: each policy places the profile run's totals once. */
static void offline(const workload_t *w, const replay_t *run,
                    const replay_t *profile, uint64_t cap, uint64_t oracle_hits,
                    uint64_t static_hits, row_t *row, summary_t *sum)
{
    double *acc = xcalloc(w->n, sizeof(*acc));
    unsigned *tier = xcalloc(w->n, sizeof(*tier));
    totals(profile, 0, profile->nintervals, acc);
    for (int p = 0; p < NPOLICIES; p++) {
        place((place_policy_t)p, w, acc, cap, tier, sum);
        uint64_t h = 0;
        for (unsigned k = 0; k < run->nintervals; k++)
            h += interval_hits(run, k, tier);
        row->offline[p] = ratio(h, oracle_hits);
        if (p == PLACE_KNAPSACK)
            row->knap_static = ratio(h, static_hits);
    }
    free(acc);
    free(tier);
}

/* ---------------------------------------------------------------- online */

/* The simulated memory: the tier each item is on, moved by the policy. */
typedef struct sim {
    const workload_t *w;
    unsigned *tier;
    uint64_t moved;
} sim_t;

static int sim_migrate(void *ctx, unsigned id, unsigned tier)
{
    sim_t *s = ctx;
    if (id == 0 || id > s->w->n) {
        errno = ENOENT;
        return -1;
    }
    if (s->tier[id - 1] != tier)
        s->moved += s->w->bytes[id - 1];
    s->tier[id - 1] = tier;
    return 0;
}

/* Replay run through the online policy; hits[k] = interval k's hits. */
static uint64_t run_online(const opts_t *o, const workload_t *w,
                           const replay_t *run, uint64_t cap, double budget,
                           uint64_t *hits)
{
    prof_options_t po;
    prof_options_defaults(&po);
    double decay = prof_heat_decay(po.halflife);
    sim_t s = {w, xcalloc(w->n, sizeof(unsigned)), 0};
    prof_arena_row_t *rows = xcalloc(w->n, sizeof(*rows));
    double *heat = xcalloc(w->n, sizeof(*heat));
    online_config_t cfg;
    online_config_default(&cfg);
    cfg.every = o->every;
    cfg.interval_ns = INTERVAL_NS;
    cfg.cap[0] = cap;
    cfg.budget_bytes_per_s = budget;
    if (o->headroom >= 0)
        cfg.headroom = o->headroom;
    if (o->hysteresis >= 1)
        cfg.hysteresis = o->hysteresis;
    cfg.migrate = sim_migrate;
    cfg.migrate_ctx = &s;
    for (size_t i = 0; i < w->n; i++)
        s.tier[i] = cfg.initial_tier;
    online_t *pol = online_new(&cfg);
    if (pol == NULL)
        die_errno(errno, "online_new");
    for (unsigned k = 0; k < run->nintervals; k++) {
        const uint32_t *c = replay_row(run, k);
        prof_interval_t iv = {.seq = k + 1, .t_start_ns = k * INTERVAL_NS,
                              .t_end_ns = (k + 1) * INTERVAL_NS,
                              .narenas = w->n, .arenas = rows};
        hits[k] = interval_hits(run, k, s.tier);  /* before this decision */
        for (size_t i = 0; i < w->n; i++) {
            heat[i] = prof_heat_update(heat[i], c[i], decay);
            rows[i] = (prof_arena_row_t){.id = (unsigned)i + 1,
                                         .serial = i + 1, .samples = c[i],
                                         .heat = heat[i],
                                         .mapped = w->bytes[i]};
            iv.samples += c[i];
        }
        online_step(pol, &iv);
    }
    online_delete(pol);
    free(s.tier);
    free(rows);
    free(heat);
    return s.moved;
}

/* Median over phase changes of the intervals of the new phase spent below
 * RECOVER_AT of its oracle before the first at or above it (a phase that
 * never gets there counts its whole length). */
static double recovery(const replay_t *r, const uint64_t *hits,
                       const uint64_t *oracle_iv)
{
    double v[8];
    unsigned n = 0;
    for (unsigned ph = 1; ph < r->nphases && n < 8; ph++) {
        unsigned a = replay_phase_start(r, ph), b = replay_phase_start(r, ph + 1);
        unsigned k = a;
        while (k < b && (double)hits[k] < RECOVER_AT * (double)oracle_iv[k])
            k++;
        v[n++] = k - a;
    }
    return n ? bench_median(v, n) : 0.0;
}

/* ---------------------------------------------------------------- rows */

static void measure(const opts_t *o, const workload_t *w, const replay_t *run,
                    const replay_t *profile, unsigned div, row_t *row,
                    summary_t *sum)
{
    unsigned T = run->nintervals, warm = WARMUP_DECISIONS * o->every;
    uint64_t cap = w->footprint / div;
    uint64_t *oracle_iv = xcalloc(T, sizeof(uint64_t));
    uint64_t *hits = xcalloc(T, sizeof(uint64_t));
    uint64_t static_hits = oracle(w, run, cap, oracle_iv, sum);
    uint64_t oracle_hits = sum_range(oracle_iv, 0, T);
    uint64_t oracle_warm = sum_range(oracle_iv, warm, T);

    row->oracle_frac = ratio(oracle_hits, run->total);
    row->best_static = ratio(static_hits, oracle_hits);
    offline(w, run, profile, cap, oracle_hits, static_hits, row, sum);

    row->moved = run_online(o, w, run, cap, 0.0, hits);
    row->online = ratio(sum_range(hits, warm, T), oracle_warm);
    row->online_all = ratio(sum_range(hits, 0, T), oracle_hits);
    row->recover = recovery(run, hits, oracle_iv);

    /* A finite budget: one decision may move 1/8 of the footprint. */
    double per_s = (double)w->footprint / 8.0 /
                   ((double)o->every * (double)INTERVAL_NS / 1e9);
    row->budget_moved = run_online(o, w, run, cap, per_s, hits);
    row->budget_online = ratio(sum_range(hits, warm, T), oracle_warm);
    free(oracle_iv);
    free(hits);
}

static void note_min(double v, double *min, char *where, size_t len,
                     const workload_t *w, unsigned div)
{
    if (v < *min) {
        *min = v;
        snprintf(where, len, "%s at 1/%u", w->name, div);
    }
}

static void print_head(const opts_t *o, const workload_t *w)
{
    bool multi = w->nphases > 1;
    double per_s = (double)w->footprint / 8.0 /
                   ((double)o->every * (double)INTERVAL_NS / 1e9);
    printf("== %s: %s\n", w->name, w->what);
    printf("   footprint %.0f MiB; budget column: %.0f MiB/s "
           "(1/8 of the footprint per decision)\n",
           (double)w->footprint / WL_MIB, per_s / WL_MIB);
    printf("%-5s %7s | %-24s%s | %-32s | %-20s%s\n", "", "oracle",
           "offline / oracle", multi ? "  static knapsack" : "",
           "online / oracle", "online, budget", multi ? " | recover" : "");
    printf("%-5s %7s | %7s %7s %8s%s | %8s %7s %9s %5s | %8s %6s %4s%s\n",
           "cap", "hits", "hotset", "thermos", "knapsack",
           multi ? " /oracle  /static" : "", "after-wu", "incl-wu", "moved MiB",
           "x fp", "after-wu", "MiB", "x fp", multi ? " | intervals" : "");
}

static void print_row(const workload_t *w, unsigned div, const row_t *r)
{
    bool multi = w->nphases > 1;
    double fp = (double)w->footprint;
    printf("1/%-3u %6.1f%% | %7.3f %7.3f %8.3f", div, 100 * r->oracle_frac,
           r->offline[PLACE_HOTSET], r->offline[PLACE_THERMOS],
           r->offline[PLACE_KNAPSACK]);
    if (multi)
        printf(" %7.3f %8.3f", r->best_static, r->knap_static);
    printf(" | %8.3f %7.3f %9.0f %5.2f | %8.3f %6.0f %4.2f", r->online,
           r->online_all, (double)r->moved / WL_MIB, (double)r->moved / fp,
           r->budget_online, (double)r->budget_moved / WL_MIB,
           (double)r->budget_moved / fp);
    if (multi)
        printf(" | %9.1f", r->recover);
    printf("\n");
}

static void bench_workload(const opts_t *o, workload_kind_t kind,
                           summary_t *sum)
{
    workload_t w;
    replay_t run, profile;
    workload_make(kind, o->seed, &w);
    /* Same distributions, independent samples: the evaluated run and the
     * profile the offline policies learn from. */
    replay_make(&w, o->intervals, o->samples, o->seed * 2 + 1, &run);
    replay_make(&w, o->intervals, o->samples, o->seed * 2 + 2, &profile);
    print_head(o, &w);
    for (size_t c = 0; c < NCAPS; c++) {
        row_t row;
        memset(&row, 0, sizeof(row));
        measure(o, &w, &run, &profile, cap_div[c], &row, sum);
        print_row(&w, cap_div[c], &row);
        /* The offline target reads against the best static placement for
         * phase workloads: no placement made once can do better. */
        note_min(w.nphases > 1 ? row.knap_static : row.offline[PLACE_KNAPSACK],
                 &sum->knap_min, sum->knap_where, sizeof(sum->knap_where),
                 &w, cap_div[c]);
        note_min(row.online, &sum->online_min, sum->online_where,
                 sizeof(sum->online_where), &w, cap_div[c]);
    }
    printf("\n");
    replay_free(&run);
    replay_free(&profile);
    workload_free(&w);
}

int main(int argc, char **argv)
{
    opts_t o;
    summary_t sum = {.knap_min = INFINITY, .online_min = INFINITY};
    parse_opts(argc, argv, &o);
    uint64_t t0 = bench_now_ns();
    online_config_t def;
    online_config_default(&def);
    printf("bench_policy: seed %llu, %u intervals x %u samples, online "
           "decision every %u intervals (warm-up: the first %u intervals), "
           "headroom %.2f, hysteresis %.2f\n\n",
           (unsigned long long)o.seed, o.intervals, o.samples, o.every,
           WARMUP_DECISIONS * o.every,
           o.headroom >= 0 ? o.headroom : def.headroom,
           o.hysteresis >= 1 ? o.hysteresis : def.hysteresis);
    for (int k = 0; k < WL_NKINDS; k++)
        bench_workload(&o, (workload_kind_t)k, &sum);
    printf("target offline knapsack >= 0.95 (of the oracle; of the best "
           "static placement for phases): min %.3f (%s): %s\n",
           sum.knap_min, sum.knap_where,
           sum.knap_min >= 0.95 ? "met" : "MISSED");
    printf("target online after warm-up >= 0.85 of the oracle: "
           "min %.3f (%s): %s\n",
           sum.online_min, sum.online_where,
           sum.online_min >= 0.85 ? "met" : "MISSED");
    if (sum.inexact)
        printf("note: some knapsack placements were not exact (coarse table)\n");
    printf("(%.2f s)\n", (double)(bench_now_ns() - t0) / 1e9);
    return 0;
}
