/*
 * guest_tiers.c -- tm_topology_discover orders the guest's nodes as the
 * firmware describes them.
 *
 * TM_EXPECT_TIERS (from run-rig.sh) is the expected order: "0;1" for
 * topologies 1 (SLIT distances only) and 2 (HMAT), "1;0;2" for topology 3
 * (HMAT: HBM, DRAM, CXL).  Also checked: the source ("distance" without
 * HMAT, "hmat" with it), the per-node facts against sysfs, the tier
 * placements, and that TIERMEM_TIERS overrides the order.
 */
#include "guest.h"

#include <tiermem.h>

static void check_nodes(const tm_topology_t *t, bool hmat)
{
    unsigned have = tg_node_count();
    tg_check("nnodes", t->nnodes == have, "discovered %u nodes, sysfs has %u",
             t->nnodes, have);
    bool ok = true;
    char why[400] = "";
    for (unsigned i = 0; i < t->nnodes && i < have; i++) {
        const tm_node_info_t *n = &t->nodes[i];
        long long total = tg_node_meminfo(n->id, "MemTotal");
        char path[160];
        snprintf(path, sizeof path,
                 "/sys/devices/system/node/node%u/access0/initiators/"
                 "read_latency",
                 n->id);
        long long lat = tg_read_ull(path);
        snprintf(path, sizeof path,
                 "/sys/devices/system/node/node%u/access0/initiators/"
                 "read_bandwidth",
                 n->id);
        long long bw = tg_read_ull(path);
        tg_info("node %u: cpus %d, capacity %llu MiB, free %llu MiB, read "
                "latency %u ns, read bandwidth %u MB/s, distance %u",
                n->id, n->has_cpus, (unsigned long long)(n->capacity_bytes >> 20),
                (unsigned long long)(n->free_bytes >> 20), n->read_latency_ns,
                n->read_bandwidth_mbps, n->distance);
        if (n->id != i || n->has_cpus != tg_node_has_cpus(i) ||
            (long long)n->capacity_bytes != total ||
            n->free_bytes > n->capacity_bytes) {
            ok = false;
            snprintf(why, sizeof why,
                     "node %u: id %u, has_cpus %d, capacity %llu (sysfs "
                     "MemTotal %lld), free %llu",
                     i, n->id, n->has_cpus,
                     (unsigned long long)n->capacity_bytes, total,
                     (unsigned long long)n->free_bytes);
        }
        if (hmat && ((long long)n->read_latency_ns != lat ||
                     (long long)n->read_bandwidth_mbps != bw || lat <= 0)) {
            ok = false;
            snprintf(why, sizeof why,
                     "node %u: HMAT latency %u bandwidth %u, sysfs says %lld "
                     "and %lld",
                     i, n->read_latency_ns, n->read_bandwidth_mbps, lat, bw);
        }
    }
    tg_check("node-facts", ok, "%s", why);
}

static bool same_order(const tm_topology_t *t, const uint64_t *want,
                       int nwant, char *got, size_t gotlen)
{
    size_t o = 0;
    got[0] = '\0';
    for (unsigned i = 0; i < t->ntiers && o < gotlen; i++) {
        char m[128];
        int w = snprintf(got + o, gotlen - o, "%s[%s]", i ? " " : "",
                         tg_mask_str(t->tiers[i].nodes, m, sizeof m));
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if ((int)t->ntiers != nwant)
        return false;
    for (int i = 0; i < nwant; i++)
        if (t->tiers[i].nodes != want[i])
            return false;
    return true;
}

int main(void)
{
    tg_begin("tiers");
    const char *expect = tg_env_str("TM_EXPECT_TIERS", NULL);
    bool hmat = tg_env_long("TM_HMAT", 0) != 0;
    if (!expect) {
        tg_skip("order", "TM_EXPECT_TIERS is not set (not run by run-rig.sh?)");
        return tg_done();
    }
    uint64_t want[TG_MAX_NODES];
    int nwant = tg_parse_tiers(expect, want, TG_MAX_NODES);
    if (!tg_check("expectation", nwant > 0, "cannot parse TM_EXPECT_TIERS=%s",
                  expect))
        return tg_done();

    if (unsetenv("TIERMEM_TIERS") != 0)
        tg_check("unsetenv", false, "%s", strerror(errno));
    tm_topology_t t;
    if (!tg_check("discover", tm_topology_discover(&t) == 0,
                  "tm_topology_discover: %s", strerror(errno)))
        return tg_done();

    char got[256];
    bool ok = same_order(&t, want, nwant, got, sizeof got);
    tg_info("tiers (source %s): %s; expected %s", t.source, got, expect);
    tg_check("order", ok, "tiers %s (source %s), expected %s", got, t.source,
             expect);
    const char *want_source = hmat ? "hmat" : "distance";
    tg_check("source", strcmp(t.source, want_source) == 0,
             "source \"%s\", expected \"%s\"", t.source, want_source);
    check_nodes(&t, hmat);

    /* Tier capacities are the sums over their nodes. */
    ok = true;
    for (unsigned i = 0; i < t.ntiers; i++) {
        uint64_t cap = 0;
        for (unsigned k = 0; k < t.nnodes; k++)
            if (t.tiers[i].nodes >> t.nodes[k].id & 1)
                cap += t.nodes[k].capacity_bytes;
        if (cap != t.tiers[i].capacity_bytes || cap == 0)
            ok = false;
    }
    tg_check("tier-capacity", ok, "a tier's capacity is not the sum of its "
             "nodes'");

    /* The placement of each tier names exactly its nodes. */
    ok = true;
    char why[200] = "";
    for (unsigned i = 0; i < t.ntiers; i++) {
        tm_placement_t pl;
        if (tm_topology_tier_placement(&t, i, TM_MODE_PREFERRED, &pl) != 0 ||
            pl.nodes != t.tiers[i].nodes || pl.mode != TM_MODE_PREFERRED) {
            ok = false;
            snprintf(why, sizeof why, "tier %u: placement nodes %#llx mode %d",
                     i, (unsigned long long)pl.nodes, (int)pl.mode);
        }
    }
    tm_placement_t pl;
    errno = 0;
    if (tm_topology_tier_placement(&t, t.ntiers, TM_MODE_BIND, &pl) == 0 ||
        errno != EINVAL) {
        ok = false;
        snprintf(why, sizeof why, "tier %u (one past the last) was accepted "
                 "(errno %d)", t.ntiers, errno);
    }
    tg_check("tier-placement", ok, "%s", why);

    /* TIERMEM_TIERS overrides the firmware: reverse the expected order. */
    char rev[128] = "";
    size_t o = 0;
    for (int i = nwant - 1; i >= 0 && o < sizeof rev; i--) {
        char m[64];
        int w = snprintf(rev + o, sizeof rev - o, "%s%s",
                         i == nwant - 1 ? "" : ";",
                         tg_mask_str(want[i], m, sizeof m));
        if (w < 0)
            break;
        o += (size_t)w;
    }
    uint64_t rwant[TG_MAX_NODES];
    int nrwant = tg_parse_tiers(rev, rwant, TG_MAX_NODES);
    tm_topology_t e;
    ok = setenv("TIERMEM_TIERS", rev, 1) == 0 && tm_topology_discover(&e) == 0;
    if (ok) {
        ok = same_order(&e, rwant, nrwant, got, sizeof got) &&
             strcmp(e.source, "env") == 0;
        tg_check("env-override", ok, "TIERMEM_TIERS=%s gave %s (source %s)",
                 rev, got, e.source);
    } else {
        tg_check("env-override", false, "TIERMEM_TIERS=%s: %s", rev,
                 strerror(errno));
    }
    if (unsetenv("TIERMEM_TIERS") != 0)
        tg_check("unsetenv", false, "%s", strerror(errno));
    return tg_done();
}
