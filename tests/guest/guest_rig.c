/*
 * guest_rig.c -- checks the rig itself, without tiermem: the guest has the
 * nodes run-rig.sh asked QEMU for, the CPU-less nodes are CPU-less, the HMAT
 * numbers reached sysfs when the topology has an HMAT, and raw mbind +
 * move_pages place and move pages on every node.  When this fails, the
 * other guest tests' failures say nothing about tiermem.
 */
#include "guest.h"

static const char *const attrs[] = {"read_latency", "write_latency",
                                    "read_bandwidth", "write_bandwidth"};

static void check_nodes(void)
{
    unsigned want = (unsigned)tg_env_long("TM_NODES", 0);
    unsigned cpu_node = (unsigned)tg_env_long("TM_CPU_NODE", 0);
    unsigned have = tg_node_count();
    tg_check("node-count", want == 0 || have == want,
             "the guest has %u nodes, the topology asked for %u", have, want);
    for (unsigned n = 0; n < have; n++) {
        char name[64], cpus[256] = "", path[128];
        snprintf(path, sizeof path, "/sys/devices/system/node/node%u/cpulist",
                 n);
        if (tg_read_file(path, cpus, sizeof cpus) != 0)
            snprintf(cpus, sizeof cpus, "?");
        long long total = tg_node_meminfo(n, "MemTotal");
        long long freeb = tg_node_meminfo(n, "MemFree");
        char dist[128] = "";
        snprintf(path, sizeof path, "/sys/devices/system/node/node%u/distance",
                 n);
        if (tg_read_file(path, dist, sizeof dist) != 0)
            snprintf(dist, sizeof dist, "?");
        tg_info("node%u: cpus [%s] MemTotal %lld MiB MemFree %lld MiB "
                "distances [%s]",
                n, cpus, total >> 20, freeb >> 20, dist);
        snprintf(name, sizeof name, "node%u-cpus", n);
        bool expect_cpus = n == cpu_node;
        tg_check(name, tg_node_has_cpus(n) == expect_cpus,
                 "node %u cpulist is \"%s\", expected %s", n, cpus,
                 expect_cpus ? "CPUs" : "no CPUs");
        snprintf(name, sizeof name, "node%u-memory", n);
        tg_check(name, total > 0, "node %u reports MemTotal %lld", n, total);
    }
    long small = tg_env_long("TM_SMALL_NODE", -1);
    if (small >= 0) {
        long long total = tg_node_meminfo((unsigned)small, "MemTotal");
        tg_check("small-node", total > 0 && total <= (160LL << 20),
                 "node %ld was meant to be small but has MemTotal %lld", small,
                 total);
    }
}

static void check_hmat(void)
{
    bool hmat = tg_env_long("TM_HMAT", 0) != 0;
    unsigned have = tg_node_count();
    for (unsigned n = 0; n < have; n++) {
        char line[256];
        int o = snprintf(line, sizeof line, "node%u access0:", n);
        bool all = true;
        for (size_t a = 0; a < sizeof attrs / sizeof attrs[0]; a++) {
            char path[160];
            snprintf(path, sizeof path,
                     "/sys/devices/system/node/node%u/access0/initiators/%s",
                     n, attrs[a]);
            long long v = tg_read_ull(path);
            if (v <= 0)
                all = false;
            if (o > 0 && (size_t)o < sizeof line)
                o += snprintf(line + o, sizeof line - o, " %s=%lld", attrs[a],
                              v);
        }
        tg_info("%s", line);
        if (hmat) {
            char name[64];
            snprintf(name, sizeof name, "hmat-node%u", n);
            tg_check(name, all,
                     "HMAT is on but node %u lacks access0 attributes: %s", n,
                     line);
        }
    }
    if (!hmat)
        tg_skip("hmat", "this topology has no HMAT");
}

/* Raw mbind + move_pages on every node: the kernel side works. */
static void check_raw_placement(void)
{
    unsigned have = tg_node_count();
    const size_t len = 4UL << 20;
    for (unsigned n = 0; n < have; n++) {
        char name[64], why[512] = "";
        unsigned to = (n + 1) % have;
        snprintf(name, sizeof name, "raw-bind-node%u", n);
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            tg_check(name, false, "mmap: %s", strerror(errno));
            continue;
        }
        unsigned long mask = 1UL << n;
        bool ok = mbind(p, len, MPOL_BIND, &mask, sizeof mask * 8, 0) == 0;
        if (!ok)
            snprintf(why, sizeof why, "mbind: %s", strerror(errno));
        if (ok) {
            tg_touch(p, len, 1);
            ok = tg_all_on_node(p, len, (int)n, why, sizeof why);
        }
        tg_check(name, ok, "%s", why);

        /* Move it to the next node with MPOL_MF_MOVE, as tiermem does. */
        snprintf(name, sizeof name, "raw-move-node%u-to-%u", n, to);
        unsigned long tomask = 1UL << to;
        ok = mbind(p, len, MPOL_BIND, &tomask, sizeof tomask * 8,
                   MPOL_MF_MOVE) == 0;
        if (!ok)
            snprintf(why, sizeof why, "mbind(MPOL_MF_MOVE): %s",
                     strerror(errno));
        else
            ok = tg_all_on_node(p, len, (int)to, why, sizeof why);
        tg_check(name, ok, "%s", why);
        if (munmap(p, len) != 0)
            tg_check("munmap", false, "munmap: %s", strerror(errno));
    }
}

int main(void)
{
    tg_begin("rig");
    char thp[32];
    tg_info("topology %ld, THP %s", tg_env_long("TM_TOPO", 0),
            tg_thp_mode(thp, sizeof thp));
    check_nodes();
    check_hmat();
    check_raw_placement();
    return tg_done();
}
