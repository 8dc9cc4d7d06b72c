/*
 * test_tiers.c -- tier discovery from sysfs.
 *
 * Each case builds a fake /sys/devices/system/node tree in a mkdtemp()
 * directory, in the exact formats the kernel writes (meminfo lines, SLIT
 * rows, the HMAT access0/initiators attributes QEMU's hmat-lb produces),
 * and checks the tier masks tm_topology_discover_at derives from it.
 * Warnings are captured through log_configure so the test can count
 * them.  The real machine's topology is checked for consistency only.
 */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "sites.h"
#include "tiermem.h"
#include "../tm_test.h"

static char root[64];
static int log_fd = -1;

/* ------------------------------------------------------------------ */
/* Building fake sysfs trees                                            */
/* ------------------------------------------------------------------ */

/* mkdir -p of every directory above path. */
static int make_parents(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static void put(const char *dir, const char *rel, const char *fmt, ...)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = NULL;
    if (make_parents(path) == 0)
        f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot create %s: %s", path, strerror(errno));
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    CHECK(fclose(f) == 0);
}

typedef struct fake_node {
    unsigned id;
    const char *cpulist;        /* "0-1\n", or "\n" for a CPU-less node */
    unsigned long total_kb, free_kb;
    const char *distance;       /* the SLIT row, e.g. "10 20\n"; NULL: none */
    unsigned lat_ns, bw_mbps;   /* HMAT access0 attributes; 0: no access0 */
} fake_node_t;

/* Node meminfo as drivers/base/node.c prints it (first lines and last). */
static void put_meminfo(const char *dir, const fake_node_t *n)
{
    char rel[64];
    snprintf(rel, sizeof rel, "node%u/meminfo", n->id);
    put(dir, rel,
        "Node %u MemTotal:       %8lu kB\n"
        "Node %u MemFree:        %8lu kB\n"
        "Node %u MemUsed:        %8lu kB\n"
        "Node %u SwapCached:     %8lu kB\n"
        "Node %u Active(anon):   %8lu kB\n"
        "Node %u HugePages_Total: %5u\n"
        "Node %u HugePages_Free:  %5u\n",
        n->id, n->total_kb, n->id, n->free_kb, n->id, n->total_kb - n->free_kb,
        n->id, 0ul, n->id, 1528ul, n->id, 0u, n->id, 0u);
}

static void put_node(const char *dir, const fake_node_t *n)
{
    char rel[96];
    snprintf(rel, sizeof rel, "node%u/cpulist", n->id);
    put(dir, rel, "%s", n->cpulist);
    put_meminfo(dir, n);
    if (n->distance) {
        snprintf(rel, sizeof rel, "node%u/distance", n->id);
        put(dir, rel, "%s", n->distance);
    }
    if (n->lat_ns) {
        static const char *const attr[] = {"read_latency", "write_latency",
                                           "read_bandwidth", "write_bandwidth"};
        for (unsigned i = 0; i < 4; i++) {
            snprintf(rel, sizeof rel, "node%u/access0/initiators/%s", n->id,
                     attr[i]);
            put(dir, rel, "%u\n", i < 2 ? n->lat_ns : n->bw_mbps);
        }
    }
}

/* A tree root/name with an "online" file (NULL: none) and these nodes. */
static const char *make_tree(char *dir, size_t size, const char *name,
                             const char *online, const fake_node_t *nodes,
                             unsigned n)
{
    snprintf(dir, size, "%s/%s", root, name);
    CHECK(mkdir(dir, 0755) == 0);
    if (online)
        put(dir, "online", "%s", online);
    for (unsigned i = 0; i < n; i++)
        put_node(dir, &nodes[i]);
    return dir;
}

/* ------------------------------------------------------------------ */
/* Checking                                                             */
/* ------------------------------------------------------------------ */

/* Start capturing warnings afresh. */
static void log_reset(void)
{
    CHECK(ftruncate(log_fd, 0) == 0);
    CHECK(lseek(log_fd, 0, SEEK_SET) == 0);
}

/* Warning lines captured since log_reset() that contain needle; echo
 * shows them in the test's output. */
static unsigned log_count(const char *needle, bool echo)
{
    char buf[8192];
    ssize_t len = pread(log_fd, buf, sizeof buf - 1, 0);
    CHECK(len >= 0);
    if (len < 0)
        return 0;
    buf[len] = '\0';
    unsigned count = 0;
    for (char *line = buf; *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(line, "warning") && strstr(line, needle)) {
            count++;
            if (echo)
                printf("  captured: %s\n", line);
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return count;
}

static void check_tiers(const char *what, const tm_topology_t *t,
                        const char *source, const uint64_t *masks, unsigned n)
{
    CHECK_MSG(strcmp(t->source, source) == 0, "%s: source %s, want %s", what,
              t->source, source);
    CHECK_MSG(t->ntiers == n, "%s: %u tiers, want %u", what, t->ntiers, n);
    for (unsigned i = 0; i < n && i < t->ntiers; i++)
        CHECK_MSG(t->tiers[i].nodes == masks[i],
                  "%s: tier %u = %#llx, want %#llx", what, i,
                  (unsigned long long)t->tiers[i].nodes,
                  (unsigned long long)masks[i]);
}

/* Every node in exactly one tier, no tier empty, no stray bits. */
static void check_partition(const char *what, const tm_topology_t *t)
{
    uint64_t all = 0, seen = 0;
    for (unsigned i = 0; i < t->nnodes; i++)
        all |= (uint64_t)1 << t->nodes[i].id;
    for (unsigned k = 0; k < t->ntiers; k++) {
        CHECK_MSG(t->tiers[k].nodes != 0, "%s: tier %u empty", what, k);
        CHECK_MSG((seen & t->tiers[k].nodes) == 0, "%s: tier %u overlaps",
                  what, k);
        seen |= t->tiers[k].nodes;
    }
    CHECK_MSG(seen == all, "%s: tiers cover %#llx, nodes are %#llx", what,
              (unsigned long long)seen, (unsigned long long)all);
}

/* ------------------------------------------------------------------ */
/* Cases                                                                */
/* ------------------------------------------------------------------ */

static void test_single(void)
{
    /* The real machine's node0, verbatim formats. */
    const fake_node_t n0 = {0, "0-1\n", 4942040, 3991080, "10\n", 0, 0};
    char dir[256];
    tm_topology_t t;
    make_tree(dir, sizeof dir, "single", "0\n", &n0, 1);
    log_reset();
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("single", &t, "single", (uint64_t[]){0x1}, 1);
    CHECK(t.nnodes == 1);
    CHECK(t.nodes[0].id == 0);
    CHECK(t.nodes[0].has_cpus);
    CHECK(t.nodes[0].distance == 10);
    CHECK(t.nodes[0].capacity_bytes == 4942040ull * 1024);
    CHECK(t.nodes[0].free_bytes == 3991080ull * 1024);
    CHECK(t.nodes[0].read_latency_ns == 0);
    CHECK(t.tiers[0].capacity_bytes == 4942040ull * 1024);
    CHECK(t.tiers[0].free_bytes == 3991080ull * 1024);
    CHECK(log_count("", false) == 0);
}

static const fake_node_t dist2[] = {
    {0, "0-1\n", 4000000, 3000000, "10 20\n", 0, 0},
    {1, "\n", 8000000, 7000000, "20 10\n", 0, 0},
};

static void test_distance(void)
{
    char dir[256];
    tm_topology_t t;
    make_tree(dir, sizeof dir, "dist2", "0-1\n", dist2, 2);
    log_reset();
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("distance", &t, "distance", (uint64_t[]){0x1, 0x2}, 2);
    CHECK(t.nnodes == 2);
    CHECK(t.nodes[0].has_cpus && !t.nodes[1].has_cpus);
    CHECK(t.nodes[0].distance == 10);
    CHECK(t.nodes[1].distance == 20);
    CHECK(t.tiers[1].capacity_bytes == 8000000ull * 1024);
    CHECK(t.tiers[1].free_bytes == 7000000ull * 1024);
    CHECK(log_count("", false) == 0);
}

/* Three nodes, two CPU-less ones at the same distance: one tier, whose
 * capacity is the sum of both; no "online" file, so the nodeN dirs count. */
static void test_distance_sum(void)
{
    const fake_node_t n[] = {
        {0, "0-3\n", 1000000, 900000, "10 20 20\n", 0, 0},
        {1, "\n", 2000000, 1500000, "20 10 20\n", 0, 0},
        {2, "\n", 3000000, 2500000, "20 20 10\n", 0, 0},
    };
    char dir[256];
    tm_topology_t t;
    make_tree(dir, sizeof dir, "dist3", NULL, n, 3);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("distance sum", &t, "distance", (uint64_t[]){0x1, 0x6}, 2);
    CHECK(t.nnodes == 3);
    CHECK(t.tiers[0].capacity_bytes == 1000000ull * 1024);
    CHECK(t.tiers[1].capacity_bytes == 5000000ull * 1024);
    CHECK(t.tiers[1].free_bytes == 4000000ull * 1024);
    check_partition("distance sum", &t);
}

/* online "0,2": distance columns are the online nodes, so the second
 * column of "10 30" is node 2, not node 1. */
static void test_distance_columns(void)
{
    const fake_node_t n[] = {
        {0, "0\n", 1000, 500, "10 30\n", 0, 0},
        {2, "\n", 1000, 500, "30 10\n", 0, 0},
    };
    char dir[256];
    tm_topology_t t;
    make_tree(dir, sizeof dir, "holes", "0,2\n", n, 2);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("holes", &t, "distance", (uint64_t[]){0x1, 0x4}, 2);
    CHECK(t.nnodes == 2 && t.nodes[1].id == 2);
    CHECK(t.nodes[1].distance == 30);
}

/* base/text.c's one '\r' rule in the sysfs files: a CRLF tree reads as
 * its LF twin (test_distance_columns); the node list itself treats '\r'
 * as a byte, not a blank. */
static void test_crlf_tree(void)
{
    const fake_node_t n[] = {
        {0, "0\r\n", 1000, 500, "10 30\r\n", 0, 0},
        {2, "\r\n", 1000, 500, "30 10\r\n", 0, 0},
    };
    char dir[256];
    tm_topology_t t;
    make_tree(dir, sizeof dir, "crlf", "0,2\r\n", n, 2);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("crlf", &t, "distance", (uint64_t[]){0x1, 0x4}, 2);
    CHECK(t.nnodes == 2 && t.nodes[1].id == 2 && t.nodes[1].distance == 30);
    CHECK(t.nodes[0].has_cpus && !t.nodes[1].has_cpus);
    CHECK(t.nodes[0].capacity_bytes == 1000 * 1024);

    unsigned ids[8], k = 99;
    static const char *const good[] = {"0-2,5", " 1 - 3 ,\t5 ", "", " "};
    static const unsigned count[] = {4, 4, 0, 0};
    for (unsigned i = 0; i < 4; i++)
        CHECK_MSG(node_list_parse(good[i], good[i] + strlen(good[i]), ids, 8,
                                  &k) && k == count[i],
                  "\"%s\": %u ids", good[i], k);
    static const char *const bad[] = {"0-1\r", "1,\r2", "1,", ",1", "3-1",
                                      "1-2-3", "1 2", "4294967296", "-1",
                                      "0-8"};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(!node_list_parse(bad[i], bad[i] + strlen(bad[i]), ids, 8,
                                   &k), "\"%s\" accepted", bad[i]);
    CHECK(node_list_parse("4294967295", "4294967295" + 10, ids, 8, &k) &&
          k == 1 && ids[0] == 4294967295u);
}

/* (a) DRAM with CPUs, slower CPU-less memory. */
static const fake_node_t hmat_a[] = {
    {0, "0-1\n", 4000000, 3000000, "10 20\n", 100, 20000},
    {1, "\n", 8000000, 8000000, "20 10\n", 300, 5000},
};

/* (b) DRAM with CPUs, faster HBM-like and slower CXL-like CPU-less nodes.
 * The SLIT says [0],[1,2]: only HMAT gives [1],[0],[2]. */
static const fake_node_t hmat_b[] = {
    {0, "0-1\n", 4000000, 3000000, "10 20 20\n", 100, 20000},
    {1, "\n", 1000000, 1000000, "20 10 20\n", 80, 80000},
    {2, "\n", 16000000, 16000000, "20 20 10\n", 400, 4000},
};

static void test_hmat(void)
{
    char dir[256];
    tm_topology_t t;
    make_tree(dir, sizeof dir, "hmat_a", "0-1\n", hmat_a, 2);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("hmat a", &t, "hmat", (uint64_t[]){0x1, 0x2}, 2);
    CHECK(t.nodes[1].read_latency_ns == 300);
    CHECK(t.nodes[1].write_latency_ns == 300);
    CHECK(t.nodes[1].read_bandwidth_mbps == 5000);
    CHECK(t.nodes[1].write_bandwidth_mbps == 5000);

    make_tree(dir, sizeof dir, "hmat_b", "0-2\n", hmat_b, 3);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("hmat b", &t, "hmat", (uint64_t[]){0x2, 0x1, 0x4}, 3);
    CHECK(t.tiers[1].capacity_bytes == 4000000ull * 1024);
    check_partition("hmat b", &t);
}

/* Scores within 5% share a tier; one node without HMAT means distances. */
static void test_hmat_grouping(void)
{
    const fake_node_t close3[] = {
        {0, "0\n", 1000, 1000, "10 20 20\n", 100, 20000},
        {1, "\n", 1000, 1000, "20 10 20\n", 300, 5000},
        {2, "\n", 1000, 1000, "20 20 10\n", 306, 5000}, /* +1.7% score */
    };
    char dir[256];
    tm_topology_t t;
    make_tree(dir, sizeof dir, "hmat_close", "0-2\n", close3, 3);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("hmat close", &t, "hmat", (uint64_t[]){0x1, 0x6}, 2);

    /* Bandwidth counts as much as latency: equal latency at a quarter of
     * the bandwidth is slower; slightly worse latency at four times the
     * bandwidth is faster. */
    const fake_node_t bw3[] = {
        {0, "0\n", 1000, 1000, "10 20 20 20\n", 100, 20000}, /* 1.0 */
        {1, "\n", 1000, 1000, "20 10 20 20\n", 100, 5000},   /* 2.5 */
        {2, "\n", 1000, 1000, "20 20 10 20\n", 120, 80000}, /* 0.725 */
        {3, "\n", 1000, 1000, "20 20 20 10\n", 200, 20000}, /* 1.5 */
    };
    make_tree(dir, sizeof dir, "hmat_bw", "0-3\n", bw3, 4);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("hmat bandwidth", &t, "hmat",
                (uint64_t[]){0x4, 0x1, 0x8, 0x2}, 4);

    /* Scores are relative to the CPU node, not to the lowest latency:
     * relative to node 1 the order would be [1],[0],[2]. */
    const fake_node_t ref[] = {
        {0, "0\n", 1000, 1000, "10 20 20\n", 100, 10000}, /* 1.0 */
        {1, "\n", 1000, 1000, "20 10 20\n", 50, 2500},    /* 2.25 */
        {2, "\n", 1000, 1000, "20 20 10\n", 200, 40000},  /* 1.125 */
    };
    make_tree(dir, sizeof dir, "hmat_ref", "0-2\n", ref, 3);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("hmat reference", &t, "hmat", (uint64_t[]){0x1, 0x4, 0x2}, 3);

    const fake_node_t partial[] = {
        {0, "0\n", 1000, 1000, "10 20 30\n", 100, 20000},
        {1, "\n", 1000, 1000, "20 10 20\n", 80, 80000},
        {2, "\n", 1000, 1000, "30 20 10\n", 0, 0}, /* no access0 */
    };
    make_tree(dir, sizeof dir, "hmat_partial", "0-2\n", partial, 3);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    check_tiers("hmat partial", &t, "distance",
                (uint64_t[]){0x1, 0x2, 0x4}, 3);
}

static void test_env(void)
{
    char d2[256], d3[256];
    tm_topology_t t;
    snprintf(d2, sizeof d2, "%s/dist2", root);  /* built by test_distance */
    snprintf(d3, sizeof d3, "%s/hmat_b", root); /* built by test_hmat */

    CHECK(setenv("TIERMEM_TIERS", "1;0", 1) == 0);
    log_reset();
    CHECK(tm_topology_discover_at(d2, &t) == 0);
    check_tiers("env 1;0", &t, "env", (uint64_t[]){0x2, 0x1}, 2);
    CHECK(t.tiers[0].capacity_bytes == 8000000ull * 1024);
    CHECK(log_count("", false) == 0);

    CHECK(setenv("TIERMEM_TIERS", " 0 , 2 ; 1 ", 1) == 0);
    CHECK(tm_topology_discover_at(d3, &t) == 0);
    check_tiers("env 0,2;1", &t, "env", (uint64_t[]){0x5, 0x2}, 2);

    CHECK(setenv("TIERMEM_TIERS", "0-1", 1) == 0);
    CHECK(tm_topology_discover_at(d2, &t) == 0);
    check_tiers("env 0-1", &t, "env", (uint64_t[]){0x3}, 1);

    /* Unnamed nodes become the last tier, with one warning. */
    CHECK(setenv("TIERMEM_TIERS", "2;0", 1) == 0);
    log_reset();
    CHECK(tm_topology_discover_at(d3, &t) == 0);
    check_tiers("env 2;0", &t, "env", (uint64_t[]){0x4, 0x1, 0x2}, 3);
    CHECK(log_count("TIERMEM_TIERS=\"2;0\"", true) == 1);

    /* Bad values: one warning naming the variable and the value, and the
     * automatic order (HMAT here) instead. */
    static const char *const bad[] = {"0;;x", "x", "0;5", "0;0", "2-0",
                                      "0;1;", "64", "0,", "0-5000"};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char needle[64];
        CHECK(setenv("TIERMEM_TIERS", bad[i], 1) == 0);
        log_reset();
        CHECK(tm_topology_discover_at(d3, &t) == 0);
        check_tiers(bad[i], &t, "hmat", (uint64_t[]){0x2, 0x1, 0x4}, 3);
        snprintf(needle, sizeof needle, "TIERMEM_TIERS=\"%s\"", bad[i]);
        CHECK_MSG(log_count(needle, true) == 1, "%s: want one warning", bad[i]);
        CHECK(log_count("automatic", false) == 1);
    }

    /* Empty means unset. */
    CHECK(setenv("TIERMEM_TIERS", "", 1) == 0);
    log_reset();
    CHECK(tm_topology_discover_at(d2, &t) == 0);
    check_tiers("env empty", &t, "distance", (uint64_t[]){0x1, 0x2}, 2);
    CHECK(log_count("", false) == 0);
    CHECK(unsetenv("TIERMEM_TIERS") == 0);
}

static void test_errors(void)
{
    char dir[256];
    tm_topology_t t;

    /* Node ids past the mask are skipped with one warning. */
    const fake_node_t big[] = {
        {0, "0\n", 1000, 1000, "10 20 20\n", 0, 0},
        {64, "\n", 1000, 1000, "20 10 20\n", 0, 0},
        {70, "\n", 1000, 1000, "20 20 10\n", 0, 0},
    };
    make_tree(dir, sizeof dir, "big", "0,64,70\n", big, 3);
    log_reset();
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    CHECK(t.nnodes == 1);
    check_tiers("big ids", &t, "single", (uint64_t[]){0x1}, 1);
    CHECK(log_count("node 64", true) == 1);

    /* No such directory; a directory without nodes. */
    snprintf(dir, sizeof dir, "%s/missing", root);
    errno = 0;
    CHECK(tm_topology_discover_at(dir, &t) == -1 && errno == ENOENT);
    make_tree(dir, sizeof dir, "empty", NULL, NULL, 0);
    errno = 0;
    CHECK(tm_topology_discover_at(dir, &t) == -1 && errno == ENOENT);
    make_tree(dir, sizeof dir, "empty_online", "\n", NULL, 0);
    errno = 0;
    CHECK(tm_topology_discover_at(dir, &t) == -1 && errno == ENOENT);
    errno = 0;
    CHECK(tm_topology_discover_at(NULL, &t) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(tm_topology_discover_at(root, NULL) == -1 && errno == EINVAL);
}

static void test_placement(void)
{
    char dir[256];
    tm_topology_t t;
    tm_placement_t p = {0, 0};
    snprintf(dir, sizeof dir, "%s/hmat_b", root);
    CHECK(tm_topology_discover_at(dir, &t) == 0);
    CHECK(tm_topology_tier_placement(&t, 0, TM_MODE_BIND, &p) == 0);
    CHECK(p.mode == TM_MODE_BIND && p.nodes == 0x2);
    CHECK(tm_topology_tier_placement(&t, 2, TM_MODE_INTERLEAVE, &p) == 0);
    CHECK(p.mode == TM_MODE_INTERLEAVE && p.nodes == 0x4);
    CHECK(tm_topology_tier_placement(&t, 1, TM_MODE_PREFERRED, &p) == 0);
    CHECK(p.mode == TM_MODE_PREFERRED && p.nodes == 0x1);

    errno = 0;
    CHECK(tm_topology_tier_placement(&t, 3, TM_MODE_BIND, &p) == -1 &&
          errno == EINVAL);
    errno = 0;
    CHECK(tm_topology_tier_placement(&t, 0, (tm_mode_t)0, &p) == -1 &&
          errno == EINVAL);
    errno = 0;
    CHECK(tm_topology_tier_placement(&t, 0, (tm_mode_t)99, &p) == -1 &&
          errno == EINVAL);
    errno = 0;
    CHECK(tm_topology_tier_placement(NULL, 0, TM_MODE_BIND, &p) == -1 &&
          errno == EINVAL);
    errno = 0;
    CHECK(tm_topology_tier_placement(&t, 0, TM_MODE_BIND, NULL) == -1 &&
          errno == EINVAL);
    CHECK(p.mode == TM_MODE_PREFERRED && p.nodes == 0x1); /* untouched */
}

static void test_real_machine(void)
{
    tm_topology_t t;
    if (access("/sys/devices/system/node", F_OK) != 0) {
        tm_test_skip("this machine's nodes", "no /sys/devices/system/node: "
                     "a kernel without NUMA");
        errno = 0;
        CHECK(tm_topology_discover(&t) == -1 && errno != 0);
        return;
    }
    CHECK(tm_topology_discover(&t) == 0);
    CHECK(t.nnodes >= 1);
    CHECK(t.ntiers >= 1);
    check_partition("real", &t);
    bool cpus = false;
    for (unsigned i = 0; i < t.nnodes; i++)
        cpus |= t.nodes[i].has_cpus;
    CHECK(cpus);
    CHECK(t.tiers[0].capacity_bytes > 0);
    printf("real machine: %u node(s), %u tier(s) by %s\n", t.nnodes,
           t.ntiers, t.source);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(void)
{
    unsetenv("TIERMEM_TIERS"); /* the cases below set it themselves */
    snprintf(root, sizeof root, "/tmp/tm_tiers_XXXXXX");
    bool made = mkdtemp(root) != NULL; /* REQUIRE evaluates twice */
    REQUIRE(made);
    char log_path[128];
    snprintf(log_path, sizeof log_path, "%s/log", root);
    log_fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(log_fd >= 0);
    /* Discovery starts the runtime, which configures logging once from
     * TIERMEM_LOG; start it first so the capture below stays in place. */
    runtime_init();
    log_configure(TM_LOG_WARN, log_fd);

    test_single();
    test_distance();
    test_distance_sum();
    test_distance_columns();
    test_crlf_tree();
    test_hmat();
    test_hmat_grouping();
    test_env();
    test_errors();
    test_placement();
    test_real_machine();

    log_configure(TM_LOG_WARN, -1);
    CHECK(close(log_fd) == 0);
    CHECK(nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
    CHECK(access(root, F_OK) != 0);
    return tm_test_done(__FILE__);
}
