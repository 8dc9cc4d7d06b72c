/*
 * policy_options.c -- the policy's settings, read from the environment.
 *
 *   TIERMEM_POLICY             none|online (none)
 *   TIERMEM_POLICY_EVERY       profiler intervals per decision (4)
 *   TIERMEM_POLICY_CAPACITY    per fast tier, fastest first, comma-separated:
 *                              bytes (64M), N% of the tier, or auto (auto)
 *   TIERMEM_POLICY_HEADROOM    share of each fast tier kept free: 0.05 or 5%
 *   TIERMEM_POLICY_BUDGET      migration bytes per second, 0 = no limit (256M)
 *   TIERMEM_POLICY_HYSTERESIS  a newcomer's edge over an incumbent (1.5)
 *   TIERMEM_POLICY_MIN_STAY    decisions a moved arena stays put (2)
 *   TIERMEM_POLICY_MOVE_COST   ns per byte moved, for cost/benefit; 0 = off
 *                              (0.5)
 *
 * As everywhere in tiermem: a bad value gets one warning naming the
 * variable, the value and the default kept.  settings/options.c lists these
 * names too, so its unknown-setting check knows them.
 */
#include "config.h"

#include <string.h>

#include "policy.h"

/* 256 MiB/s: on current hardware page migration runs at 2-4 GB/s per
 * thread, so this keeps the profiling thread's migration work under about
 * a tenth of its time, while a 1 GiB arena still moves within seconds. */
#define DEFAULT_BUDGET (256.0 * 1024 * 1024)
/* ns per byte: 2 GB/s, a conservative page-migration rate. */
#define DEFAULT_MOVE_COST 0.5

void policy_options_defaults(policy_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->kind = POLICY_NONE;
    o->every = 4;
    o->ncap = 0; /* every fast tier: auto */
    /* 5%: bench/bench_policy measured 10% costing up to 0.08 of the
     * oracle's hits on small fast tiers; growth past it spills to the
     * next node (fast tiers are PREFERRED), it does not fail */
    o->headroom = 0.05;
    o->budget_bytes_per_s = DEFAULT_BUDGET;
    o->hysteresis = 1.5;
    o->min_stay = 2;
    o->move_cost_ns_per_byte = DEFAULT_MOVE_COST;
}

/* "0.1" or "10%". */
static bool parse_fraction(const char *v, double max, double *out)
{
    size_t len = strlen(v);
    if (len > 1 && len < 32 && v[len - 1] == '%') {
        char num[32];
        memcpy(num, v, len - 1);
        num[len - 1] = '\0';
        double pct;
        if (!parse_double(num, 0.0, max * 100.0, &pct))
            return false;
        *out = pct / 100.0;
        return true;
    }
    return parse_double(v, 0.0, max, out);
}

static void parse_capacity(const char *v, policy_options_t *o)
{
    guide_capacity_t c[TM_MAX_NODES];
    int n = guide_capacity_parse(v, c, TM_MAX_NODES - 1);
    if (n <= 0) {
        setting_bad("TIERMEM_POLICY_CAPACITY", v,
                       "a list of sizes (64M), percents of the tier (50%) "
                       "or auto, one per fast tier", "auto");
        return;
    }
    memcpy(o->cap, c, (size_t)n * sizeof c[0]);
    o->ncap = (unsigned)n;
}

static void parse_moves(char *const *env, policy_options_t *o)
{
    const char *v;
    size_t bytes;
    if ((v = env_value(env, "TIERMEM_POLICY_BUDGET")) != NULL && *v) {
        if (parse_size(v, &bytes))
            o->budget_bytes_per_s = (double)bytes;
        else
            setting_bad("TIERMEM_POLICY_BUDGET", v,
                           "bytes per second (256M; 0 = no limit)", "256M");
    }
    if ((v = env_value(env, "TIERMEM_POLICY_HYSTERESIS")) != NULL && *v &&
        !parse_double(v, 1.0, 1000.0, &o->hysteresis))
        setting_bad("TIERMEM_POLICY_HYSTERESIS", v,
                       "a factor from 1 to 1000", "1.5");
    if ((v = env_value(env, "TIERMEM_POLICY_MOVE_COST")) != NULL && *v &&
        !parse_double(v, 0.0, 1e6, &o->move_cost_ns_per_byte))
        setting_bad("TIERMEM_POLICY_MOVE_COST", v,
                       "nanoseconds per byte moved, 0 or more (0 = no "
                       "cost/benefit test)", "0.5");
}

void policy_options_parse(char *const *env, policy_options_t *o)
{
    static const char *const kinds[] = {[POLICY_NONE] = "none",
                                        [POLICY_ONLINE] = "online"};
    policy_options_defaults(o);
    const char *v;
    unsigned long n;
    if ((v = env_value(env, "TIERMEM_POLICY")) != NULL && *v) {
        int k = parse_enum(v, kinds, 2);
        if (k >= 0)
            o->kind = (policy_kind_t)k;
        else
            setting_bad("TIERMEM_POLICY", v, "none or online", "none");
    }
    if ((v = env_value(env, "TIERMEM_POLICY_EVERY")) != NULL && *v) {
        if (parse_ulong(v, 1, 1000, &n))
            o->every = (unsigned)n;
        else
            setting_bad("TIERMEM_POLICY_EVERY", v,
                           "a number of intervals from 1 to 1000", "4");
    }
    if ((v = env_value(env, "TIERMEM_POLICY_CAPACITY")) != NULL && *v)
        parse_capacity(v, o);
    if ((v = env_value(env, "TIERMEM_POLICY_HEADROOM")) != NULL && *v &&
        !parse_fraction(v, 0.9, &o->headroom))
        setting_bad("TIERMEM_POLICY_HEADROOM", v,
                       "a share from 0 to 0.9 (0.05 or 5%)", "0.05");
    if ((v = env_value(env, "TIERMEM_POLICY_MIN_STAY")) != NULL && *v) {
        if (parse_ulong(v, 0, 1000, &n))
            o->min_stay = (unsigned)n;
        else
            setting_bad("TIERMEM_POLICY_MIN_STAY", v,
                           "a number of decisions from 0 to 1000", "2");
    }
    parse_moves(env, o);
}
