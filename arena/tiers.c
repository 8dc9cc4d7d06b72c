/*
 * tiers.c -- memory tiers: which NUMA nodes are fast and which are slow.
 *
 * A tier is a set of NUMA nodes of (nearly) equal speed; tiers are ordered
 * fastest first.  The nodes, with their CPUs, memory, HMAT attributes and
 * SLIT distance, come from the sysfs node directory (/sys/devices/system/
 * node) through node_sysfs.c.
 *
 * The order, first rule that applies:
 *
 *   1. "env": TIERMEM_TIERS, e.g. "0;1" or "0,2;1" or "0-1;2": ';'
 *      separates tiers, fastest first; ',' separates nodes; "a-b" is a
 *      range.  Nodes it does not name form one more, last tier (one
 *      warning).  A malformed value, or one naming a node that does not
 *      exist or naming a node twice, is rejected with one warning and the
 *      automatic order below is used instead.
 *   2. "hmat": every node has HMAT read latency and read bandwidth.  Each
 *      node gets a score in the spirit of Linux's memory-tier "abstract
 *      distance", relative to a reference node R (the lowest-latency node
 *      with CPUs; the lowest-latency node if no node has CPUs):
 *          score = (lat / lat_R + bw_R / bw) / 2
 *      Lower is faster.  Sorted by score, a node joins the current tier
 *      when its score is within 5% of the tier's first (lowest) score.
 *   3. "distance": more than one node.  Nodes are sorted by their SLIT
 *      distance from the nearest node with CPUs (a CPU node's own local
 *      distance, normally 10, so CPU nodes come first); equal distance is
 *      one tier.  A node whose distance cannot be read sorts last.
 *   4. "single": one node, one tier.
 *
 * A tier's capacity and free bytes are the sums over its nodes.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define SYSFS_NODE_DIR "/sys/devices/system/node"
#define TIERS_ENV "TIERMEM_TIERS"

/* TIERMEM_TIERS is read when the topology is discovered, not at start-up:
 * its value only means something against the nodes found.  The row is here
 * so the setting is known (and documented) with the code that reads it. */
static const setting_t tiers_rows[] = {
    {.name = TIERS_ENV, .type = SETTING_LIST,
     .values_doc = "e.g. `0;1` or `1;0,2` or `0-1;2`",
     .dflt_doc = "automatic",
     .doc = "the tier order by hand: `;` separates tiers (fastest first), "
            "`,` separates nodes, `a-b` is a range"},
};
static const setting_table_t tiers_table = {
    .layer = "tiers", .order = 10, .rows = tiers_rows,
    .nrows = sizeof tiers_rows / sizeof tiers_rows[0],
};
SETTINGS_REGISTER(tiers_table);

/* Nodes whose HMAT scores are within this many percent share a tier. */
#define HMAT_TIER_PCT 5
/* Fixed-point unit of an HMAT score: integer arithmetic keeps the result
 * exact and the library free of libm. */
#define HMAT_SCORE_ONE 1000000ull

/* ------------------------------------------------------------------ */
/* Node masks                                                           */
/* ------------------------------------------------------------------ */

static uint64_t bit(unsigned node)
{
    return (uint64_t)1 << node;
}

/* "0,2,5" for logs. */
static void format_mask(uint64_t mask, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned n = 0; n < TM_MAX_NODES && len < size; n++) {
        if (!(mask & bit(n)))
            continue;
        int w = snprintf(buf + len, size - len, "%s%u", len ? "," : "", n);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

/* ------------------------------------------------------------------ */
/* Orders                                                               */
/* ------------------------------------------------------------------ */

/* Sort node indices by key (stable, so ties stay in id order) and cut a
 * new tier whenever a key exceeds the tier's first key by more than pct. */
static void group_by_key(tm_topology_t *t, const uint64_t *key, unsigned pct)
{
    unsigned order[TM_MAX_NODES];
    for (unsigned i = 0; i < t->nnodes; i++) {
        unsigned j = i;
        for (; j > 0 && key[order[j - 1]] > key[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    t->ntiers = 0;
    uint64_t first = 0;
    for (unsigned k = 0; k < t->nnodes; k++) {
        uint64_t v = key[order[k]];
        if (t->ntiers == 0 || v * 100 > first * (100 + pct)) {
            first = v;
            t->tiers[t->ntiers++].nodes = 0;
        }
        t->tiers[t->ntiers - 1].nodes |= bit(t->nodes[order[k]].id);
    }
}

static bool have_hmat(const tm_topology_t *t)
{
    for (unsigned i = 0; i < t->nnodes; i++)
        if (!t->nodes[i].read_latency_ns || !t->nodes[i].read_bandwidth_mbps)
            return false;
    return true;
}

/* The node the scores are relative to: the fastest DRAM next to a CPU.
 * Ties on latency go to the higher bandwidth. */
static const tm_node_info_t *hmat_reference(const tm_topology_t *t)
{
    const tm_node_info_t *ref = NULL;
    for (int pass = 0; pass < 2 && !ref; pass++) {
        for (unsigned i = 0; i < t->nnodes; i++) {
            const tm_node_info_t *n = &t->nodes[i];
            if (pass == 0 && !n->has_cpus)
                continue;
            if (!ref || n->read_latency_ns < ref->read_latency_ns ||
                (n->read_latency_ns == ref->read_latency_ns &&
                 n->read_bandwidth_mbps > ref->read_bandwidth_mbps))
                ref = n;
        }
    }
    return ref;
}

static void order_by_hmat(tm_topology_t *t)
{
    const tm_node_info_t *ref = hmat_reference(t);
    uint64_t key[TM_MAX_NODES];
    for (unsigned i = 0; i < t->nnodes; i++) {
        const tm_node_info_t *n = &t->nodes[i];
        /* Latency and bandwidth fit in 32 bits, the unit in 20: no overflow. */
        uint64_t lat = n->read_latency_ns * HMAT_SCORE_ONE /
                       ref->read_latency_ns;
        uint64_t bw = ref->read_bandwidth_mbps * HMAT_SCORE_ONE /
                      n->read_bandwidth_mbps;
        key[i] = (lat + bw) / 2;
        log_debug("tiers: node %u HMAT score %llu/%llu", n->id,
                     (unsigned long long)key[i], HMAT_SCORE_ONE);
    }
    group_by_key(t, key, HMAT_TIER_PCT);
}

static void order_by_distance(tm_topology_t *t)
{
    uint64_t key[TM_MAX_NODES];
    for (unsigned i = 0; i < t->nnodes; i++)
        key[i] = t->nodes[i].distance ? t->nodes[i].distance : UINT_MAX;
    group_by_key(t, key, 0);
}

/* Parse TIERMEM_TIERS into t->tiers.  On failure writes why into `why`
 * and leaves the tiers to the automatic order. */
static bool parse_env_tiers(tm_topology_t *t, const char *s, char *why,
                            size_t whylen)
{
    uint64_t present = 0, named = 0;
    for (unsigned i = 0; i < t->nnodes; i++)
        present |= bit(t->nodes[i].id);
    t->ntiers = 0;
    for (const char *seg = s;;) {
        const char *end = strchr(seg, ';');
        if (!end)
            end = seg + strlen(seg);
        unsigned ids[SYSFS_MAX_IDS], n;
        if (!node_list_parse(seg, end, ids, SYSFS_MAX_IDS, &n)) {
            shown_t shown;
            snprintf(why, whylen, "cannot parse tier \"%s\"",
                     log_shown_n(&shown, seg, (size_t)(end - seg)));
            return false;
        }
        if (n == 0) {
            snprintf(why, whylen, "tier %u is empty", t->ntiers + 1);
            return false;
        }
        uint64_t mask = 0;
        for (unsigned k = 0; k < n; k++) {
            if (ids[k] >= TM_MAX_NODES || !(present & bit(ids[k]))) {
                snprintf(why, whylen, "node %u does not exist", ids[k]);
                return false;
            }
            if ((named | mask) & bit(ids[k])) {
                snprintf(why, whylen, "node %u is named twice", ids[k]);
                return false;
            }
            mask |= bit(ids[k]);
        }
        named |= mask;
        t->tiers[t->ntiers++].nodes = mask; /* <= 64: nodes are distinct */
        if (*end == '\0')
            break;
        seg = end + 1;
    }
    if (present & ~named) {
        char list[256];
        shown_t shown;
        format_mask(present & ~named, list, sizeof list);
        log_warn("%s=\"%s\" does not name node(s) %s; they form the "
                    "last tier", TIERS_ENV, log_shown(&shown, s), list);
        t->tiers[t->ntiers++].nodes = present & ~named;
    }
    return true;
}

static bool order_from_env(tm_topology_t *t)
{
    const char *s = setting_getenv(&tiers_rows[0]);
    if (!s)
        return false;
    char why[128];
    shown_t shown;
    if (parse_env_tiers(t, s, why, sizeof why))
        return true;
    log_warn("%s=\"%s\" is not usable (%s); using the automatic tier "
                "order instead", TIERS_ENV, log_shown(&shown, s), why);
    t->ntiers = 0;
    return false;
}

static void order_tiers(tm_topology_t *t)
{
    const char *source;
    if (order_from_env(t)) {
        source = "env";
    } else if (t->nnodes == 1) {
        source = "single";
        t->ntiers = 1;
        t->tiers[0].nodes = bit(t->nodes[0].id);
    } else if (have_hmat(t)) {
        source = "hmat";
        order_by_hmat(t);
    } else {
        source = "distance";
        order_by_distance(t);
    }
    snprintf(t->source, sizeof t->source, "%s", source);
}

static void sum_tiers(tm_topology_t *t)
{
    for (unsigned k = 0; k < t->ntiers; k++) {
        tm_tier_t *tier = &t->tiers[k];
        tier->capacity_bytes = tier->free_bytes = 0;
        for (unsigned i = 0; i < t->nnodes; i++) {
            if (!(tier->nodes & bit(t->nodes[i].id)))
                continue;
            tier->capacity_bytes += t->nodes[i].capacity_bytes;
            tier->free_bytes += t->nodes[i].free_bytes;
        }
    }
}

static void log_tiers(const tm_topology_t *t)
{
    if (log_current_level() < TM_LOG_INFO)
        return;
    char buf[768];
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned k = 0; k < t->ntiers && len < sizeof buf; k++) {
        char list[256];
        format_mask(t->tiers[k].nodes, list, sizeof list);
        int w = snprintf(buf + len, sizeof buf - len, " [%s]", list);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    log_info("tiers: %u node(s), %u tier(s) by %s, fastest first:%s",
                t->nnodes, t->ntiers, t->source, buf);
}

/* ------------------------------------------------------------------ */
/* The process's tiers                                                  */
/* ------------------------------------------------------------------ */

/* Discovered once, by topology_load when the sites start, and read-only
 * after: placements, the profile header and the online policy read it. */
static tm_topology_t process_topology;

int topology_load(void)
{
    return tm_topology_discover(&process_topology);
}

const tm_topology_t *topology_get(void)
{
    return &process_topology;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */
/* ------------------------------------------------------------------ */

int tm_topology_discover_at(const char *sysfs_node_dir, tm_topology_t *out)
{
    settings_init(); /* TIERMEM_LOG, if this is the first tiermem call */
    if (!sysfs_node_dir || !out) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (node_sysfs_read(sysfs_node_dir, out) < 0)
        return -1;
    order_tiers(out);
    sum_tiers(out);
    log_tiers(out);
    return 0;
}

int tm_topology_discover(tm_topology_t *out)
{
    return tm_topology_discover_at(SYSFS_NODE_DIR, out);
}

int tm_topology_tier_placement(const tm_topology_t *topo, unsigned tier,
                               tm_mode_t mode, tm_placement_t *out)
{
    if (!topo || !out || tier >= topo->ntiers ||
        topo->tiers[tier].nodes == 0) {
        errno = EINVAL;
        return -1;
    }
    switch (mode) {
    case TM_MODE_BIND:
    case TM_MODE_PREFERRED:
    case TM_MODE_INTERLEAVE:
        break;
    default:
        errno = EINVAL;
        return -1;
    }
    out->mode = mode;
    out->nodes = topo->tiers[tier].nodes;
    return 0;
}
