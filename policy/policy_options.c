/*
 * policy_options.c -- the policy's settings, read from the environment.
 *
 * The rows below (TIERMEM_POLICY and TIERMEM_POLICY_*) are the policy's
 * part of the settings registry: settings/setting_env.c parses them into a
 * policy_options_t, and tools/tiermem_settings.c prints them into
 * doc/configuration.md.  As everywhere in tiermem: a bad value gets one
 * warning naming the variable, the value and the default kept.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
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

static void parse_capacity(const setting_t *row, const char *var,
                           const char *v, void *owner, char *const *env)
{
    policy_options_t *o = owner;
    (void)var, (void)env;
    guide_capacity_t c[TM_MAX_NODES];
    int n = guide_capacity_parse(v, c, TM_MAX_NODES - 1);
    if (n <= 0) {
        setting_bad(row->name, v, row->want, row->shown);
        return;
    }
    memcpy(o->cap, c, (size_t)n * sizeof c[0]);
    o->ncap = (unsigned)n;
}

/* ---------------------------------------------------------------- the rows */

#define FIELD(f, kind) .field = (kind),                                      \
                       .offset = offsetof(policy_options_t, f),              \
                       .size = sizeof(((policy_options_t *)0)->f)

static const char *const kind_names[] = {[POLICY_NONE] = "none",
                                         [POLICY_ONLINE] = "online"};

static const setting_t policy_rows[] = {
    {.name = "TIERMEM_POLICY", .type = SETTING_ENUM, .names = kind_names,
     .nnames = 2, FIELD(kind, FIELD_INT), .dflt = "none",
     .want = "none or online", .values_doc = "`none`, `online`",
     .dflt_doc = "`none`",
     .doc = "`online`: move arenas between tiers while the program runs. It "
            "starts the profiling thread (the `TIERMEM_PROFILE_*` settings "
            "apply), and writes a profile only if `TIERMEM_PROFILE` asks. "
            "With one tier it logs that there is nothing to move and starts "
            "nothing"},
    {.name = "TIERMEM_POLICY_EVERY", .type = SETTING_UINT, .min = 1,
     .max = 1000, FIELD(every, FIELD_UINT), .dflt = "4",
     .want = "a number of intervals from 1 to 1000",
     .values_doc = "intervals, 1 to 1000",
     .doc = "profiler intervals between two decisions"},
    {.name = "TIERMEM_POLICY_CAPACITY", .type = SETTING_LIST,
     .shown = "auto",
     .want = "a list of sizes (64M), percents of the tier (50%) or auto, "
             "one per fast tier",
     .values_doc = "per fast tier, fastest first, comma-separated: bytes "
                   "(`64M`, `1G`), `N%` of the tier's size, or `auto`",
     .dflt_doc = "`auto`",
     .doc = "the bytes of each fast tier this process may fill. `auto`: the "
            "tier's size divided by the MPI ranks on this host "
            "(`OMPI_COMM_WORLD_LOCAL_SIZE`, `MPI_LOCALNRANKS`, "
            "`MV2_COMM_WORLD_LOCAL_SIZE`); tiers past the list are `auto`",
     .parse = parse_capacity},
    {.name = "TIERMEM_POLICY_HEADROOM", .type = SETTING_FRACTION, .lo = 0.0,
     .hi = 0.9, FIELD(headroom, FIELD_DOUBLE), .dflt = "0.05",
     .want = "a share from 0 to 0.9 (0.05 or 5%)",
     .values_doc = "a share, 0 to 0.9: `0.05` or `5%`",
     .doc = "part of each fast tier's capacity left free, for arenas that "
            "grow between decisions"},
    {.name = "TIERMEM_POLICY_MIN_STAY", .type = SETTING_UINT, .min = 0,
     .max = 1000, FIELD(min_stay, FIELD_UINT), .dflt = "2",
     .want = "a number of decisions from 0 to 1000",
     .values_doc = "decisions, 0 to 1000",
     .doc = "decisions a moved arena stays where it was put"},
    {.name = "TIERMEM_POLICY_BUDGET", .type = SETTING_SIZE, .min = 0,
     .max = SIZE_MAX, FIELD(budget_bytes_per_s, FIELD_DOUBLE),
     .dflt = "256M", .want = "bytes per second (256M; 0 = no limit)",
     .values_doc = "bytes per second (`256M`); 0 = no limit",
     .dflt_doc = "`256M`",
     .doc = "migration budget. A move the budget cannot pay for yet is "
            "saved up for, and holds back the moves after it"},
    {.name = "TIERMEM_POLICY_HYSTERESIS", .type = SETTING_DOUBLE, .lo = 1.0,
     .hi = 1000.0, FIELD(hysteresis, FIELD_DOUBLE), .dflt = "1.5",
     .want = "a factor from 1 to 1000", .values_doc = "a factor, 1 to 1000",
     .doc = "how much denser a newcomer must be than an arena already on a "
            "tier to take its place"},
    {.name = "TIERMEM_POLICY_MOVE_COST", .type = SETTING_DOUBLE, .lo = 0.0,
     .hi = 1e6, FIELD(move_cost_ns_per_byte, FIELD_DOUBLE), .dflt = "0.5",
     .want = "nanoseconds per byte moved, 0 or more (0 = no cost/benefit "
             "test)",
     .values_doc = "ns per byte moved, 0 or more",
     .doc = "the cost side of the cost/benefit test (0 turns the test off); "
            "the benefit side is the accesses expected over the arena's "
            "stay times the latency the fast tier saves (HMAT, else 100 ns)"},
};

static void table_defaults(void *owner)
{
    policy_options_defaults(owner);
}

static const setting_table_t policy_table = {
    .layer = "policy", .order = 40, .rows = policy_rows,
    .nrows = sizeof policy_rows / sizeof policy_rows[0],
    .owner_size = sizeof(policy_options_t), .defaults = table_defaults,
};
SETTINGS_REGISTER(policy_table);

/* In the order of the rows: the order the warnings come in. */
void policy_options_parse(char *const *env, policy_options_t *o)
{
    policy_options_defaults(o);
    settings_parse_table(env, &policy_table, o);
}
