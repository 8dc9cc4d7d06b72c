/*
 * policy_start.c -- turning the policy settings into a running online
 * policy: capacities from the tiers, the cost/benefit weights, and the
 * profiler started with the policy as its interval hook.
 *
 * The online policy needs the profiler's intervals, so TIERMEM_POLICY=online
 * starts the profiling thread even without TIERMEM_PROFILE; a profile file
 * is then written only if TIERMEM_PROFILE asks for one.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "policy.h"

extern char **environ;

/* With no HMAT latencies, what one access saved by the fast tier is
 * taken to be worth: the order of the gap between local DRAM and CXL or
 * Optane memory. */
#define DEFAULT_ACCESS_GAIN_NS 100.0

/* One fast tier's capacity: the setting, or the tier's share per rank. */
static uint64_t tier_capacity(const policy_options_t *po,
                              const tm_topology_t *topo, unsigned tier,
                              unsigned ranks)
{
    uint64_t size = topo->tiers[tier].capacity_bytes;
    const guide_capacity_t *c = tier < po->ncap ? &po->cap[tier] : NULL;
    if (c != NULL && c->kind == GUIDE_CAP_BYTES)
        return c->bytes;
    if (c != NULL && c->kind == GUIDE_CAP_PERCENT)
        return (uint64_t)floor((double)size * c->percent / 100.0);
    return size / (ranks ? ranks : 1);
}

/* ns one access saves by being on the fastest tier rather than the
 * slowest, from the nodes' HMAT read latencies when both are known. */
static double access_gain_ns(const tm_topology_t *topo)
{
    unsigned fast = 0, slow = 0;
    for (unsigned i = 0; i < topo->nnodes; i++) {
        uint64_t bit = 1ull << topo->nodes[i].id;
        unsigned lat = topo->nodes[i].read_latency_ns;
        if ((topo->tiers[0].nodes & bit) && lat > fast)
            fast = lat;
        if ((topo->tiers[topo->ntiers - 1].nodes & bit) &&
            (slow == 0 || lat < slow))
            slow = lat;
    }
    if (fast != 0 && slow > fast)
        return (double)(slow - fast);
    return DEFAULT_ACCESS_GAIN_NS;
}

int policy_online_config(const policy_options_t *po, const tm_topology_t *topo,
                         uint64_t interval_ns, unsigned local_ranks,
                         online_config_t *out)
{
    if (topo->ntiers < 2 || topo->ntiers > TM_MAX_NODES) {
        errno = ENODEV;
        return -1;
    }
    online_config_default(out);
    out->every = po->every;
    out->interval_ns = interval_ns;
    out->ntiers = topo->ntiers;
    for (unsigned t = 0; t + 1 < topo->ntiers; t++)
        out->cap[t] = tier_capacity(po, topo, t, local_ranks);
    out->headroom = po->headroom;
    out->budget_bytes_per_s = po->budget_bytes_per_s;
    out->hysteresis = po->hysteresis;
    out->min_stay = po->min_stay;
    out->benefit_per_access = access_gain_ns(topo);
    out->cost_per_byte = po->move_cost_ns_per_byte;
    out->initial_tier = topo->ntiers - 1;
    out->topology = topo;
    return 0;
}

/* The online policy as the profiler's hook; false if it cannot run. */
static bool online_wire(const policy_options_t *po, const prof_options_t *pr)
{
    (void)sites_ready(); /* the tiers are discovered with the sites */
    online_config_t cfg;
    if (policy_online_config(po, topology_get(), pr->interval_ns,
                             settings_local_ranks(environ), &cfg) != 0) {
        log_info("policy: one memory tier here: the online policy has "
                    "nothing to move");
        return false;
    }
    online_t *o = online_new(&cfg);
    if (o == NULL) {
        log_error("policy: the online policy could not start: errno %d",
                     errno);
        return false;
    }
    /* never freed: the profiler calls the hook until the very end of the
     * process (its last interval is closed at exit) */
    profiler_set_interval_hook(online_interval_hook, o);
    log_info("policy: online, a decision every %u intervals, tier 0 "
                "capacity %llu bytes (headroom %.0f%%), budget %.0f B/s",
                cfg.every, (unsigned long long)cfg.cap[0],
                cfg.headroom * 100.0, cfg.budget_bytes_per_s);
    return true;
}

void policy_start_from_env(void)
{
    runtime_init();
    prof_options_t *pr = meta_alloc(sizeof *pr);
    if (pr == NULL)
        return;
    prof_options_parse(environ, pr);
    policy_options_t po;
    policy_options_parse(environ, &po);
    bool online = po.kind == POLICY_ONLINE && online_wire(&po, pr);
    if (online && !pr->enabled) {
        pr->enabled = true;
        pr->no_file = true;
    }
    if (pr->enabled && profiler_start(pr) != 0 && online)
        log_error("policy: the profiler did not start (errno %d): the "
                     "online policy is off", errno);
    else if (online && strcmp(profiler_sampler_name(), "none") == 0)
        log_warn("policy: no access sampler runs: the online policy sees "
                    "no heat and will move nothing");
    meta_free(pr, sizeof *pr);
}
