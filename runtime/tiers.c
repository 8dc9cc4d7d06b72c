/*
 * tiers.c -- memory tiers: which NUMA nodes are fast and which are slow.
 *
 * A tier is a set of NUMA nodes of (nearly) equal speed; tiers are ordered
 * fastest first.  Everything is read from the sysfs node directory
 * (/sys/devices/system/node):
 *
 *   online                          the node ids (else the nodeN dirs)
 *   nodeN/cpulist                   non-empty = the node has CPUs
 *   nodeN/meminfo                   "Node N MemTotal:  123 kB", MemFree
 *   nodeN/distance                  the SLIT row of N, one column per
 *                                   online node in ascending id order
 *   nodeN/access0/initiators/       HMAT: {read,write}_latency (ns) and
 *                                   {read,write}_bandwidth (MB/s) seen
 *                                   from the nearest CPU initiator
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
 * A tier's capacity and free bytes are the sums over its nodes.  Nodes with
 * ids >= TM_MAX_NODES cannot be expressed in a node mask and are skipped
 * (one warning).  This runs once at init: it uses stack buffers and
 * open/read instead of stdio, so it never allocates except for opendir()
 * when the "online" file is missing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hooks.h"

#define SYSFS_NODE_DIR "/sys/devices/system/node"
#define TIERS_ENV "TIERMEM_TIERS"

/* The kernel's largest MAX_NUMNODES (NODES_SHIFT 10): more ids than this in
 * "online" would be a corrupt file, not a machine. */
#define SYSFS_MAX_IDS 1024

/* sysfs attributes are at most a page; 8 KiB also covers a distance row of
 * 1024 nodes and the node meminfo with room to spare. */
#define SYSFS_BUF 8192

/* Nodes whose HMAT scores are within this many percent share a tier. */
#define HMAT_TIER_PCT 5
/* Fixed-point unit of an HMAT score: integer arithmetic keeps the result
 * exact and the library free of libm. */
#define HMAT_SCORE_ONE 1000000ull

/* ------------------------------------------------------------------ */
/* Small parsing and file helpers                                       */
/* ------------------------------------------------------------------ */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && is_space(*p))
        p++;
    return p;
}

/* Parse a decimal unsigned at *p (no sign, no overflow). */
static bool parse_uint(const char **p, const char *end, unsigned *out)
{
    const char *s = *p;
    unsigned long long v = 0;
    if (s >= end || *s < '0' || *s > '9')
        return false;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned)(*s - '0');
        if (v > UINT_MAX)
            return false;
        s++;
    }
    *p = s;
    *out = (unsigned)v;
    return true;
}

/* Parse a kernel-style list "0-2,5" in [s, end) into ids.  Blanks around
 * numbers are allowed (users type TIERMEM_TIERS by hand).  Returns false
 * on a syntax error, a reversed range or more than max ids. */
static bool parse_list(const char *s, const char *end, unsigned *ids,
                       unsigned max, unsigned *n)
{
    *n = 0;
    s = skip_space(s, end);
    if (s == end)
        return true; /* an empty list is valid; callers decide what it means */
    for (;;) {
        unsigned lo, hi;
        s = skip_space(s, end);
        if (!parse_uint(&s, end, &lo))
            return false;
        hi = lo;
        s = skip_space(s, end);
        if (s < end && *s == '-') {
            s = skip_space(s + 1, end);
            if (!parse_uint(&s, end, &hi) || hi < lo)
                return false;
            s = skip_space(s, end);
        }
        if (hi - lo >= max - *n)
            return false;
        for (unsigned id = lo;; id++) {
            ids[(*n)++] = id;
            if (id == hi)
                break; /* not "id <= hi": hi may be UINT_MAX */
        }
        if (s == end)
            return true;
        if (*s != ',')
            return false;
        s++;
    }
}

/* Read a whole (small) file into buf, NUL-terminated.  Returns the length
 * or -1 with errno.  A file larger than buf is truncated, which only loses
 * meminfo lines or distance columns we would not use anyway. */
static ssize_t read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len < size - 1) {
        ssize_t r = read(fd, buf + len, size - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            close(fd);
            errno = err;
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd); /* read-only: nothing a failed close could lose */
    return (ssize_t)len;
}

/* Read dir/nodeN/name.  Missing attributes are normal (no HMAT, old
 * kernels), so failures are only logged at debug level. */
static ssize_t read_node_attr(const char *dir, unsigned id, const char *name,
                              char *buf, size_t size)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/node%u/%s", dir, id, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    ssize_t len = read_text(path, buf, size);
    if (len < 0)
        tm_log_debug("tiers: cannot read %s: %s", path, strerror(errno));
    return len;
}

/* One unsigned attribute; 0 (= unknown) when absent or unparsable. */
static unsigned read_node_uint(const char *dir, unsigned id, const char *name)
{
    char buf[64];
    ssize_t len = read_node_attr(dir, id, name, buf, sizeof buf);
    if (len < 0)
        return 0;
    const char *p = skip_space(buf, buf + len);
    const char *end = buf + len;
    unsigned v;
    if (!parse_uint(&p, end, &v) || skip_space(p, end) != end)
        return 0;
    return v;
}

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
/* Which nodes exist                                                    */
/* ------------------------------------------------------------------ */

static void sort_ids(unsigned *ids, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        unsigned v = ids[i], j = i;
        for (; j > 0 && ids[j - 1] > v; j--)
            ids[j] = ids[j - 1];
        ids[j] = v;
    }
}

/* Without an "online" file (odd containers, hand-made trees) the nodeN
 * directories are the next best list. */
static int scan_node_dirs(const char *dir, unsigned *ids, unsigned *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    *n = 0;
    int err = 0;
    while (*n < SYSFS_MAX_IDS) {
        errno = 0; /* readdir returns NULL both at the end and on error */
        struct dirent *e = readdir(d);
        if (!e) {
            err = errno;
            break;
        }
        const char *p = e->d_name;
        const char *end = p + strlen(p);
        unsigned id;
        if (strncmp(p, "node", 4) != 0)
            continue;
        p += 4;
        if (parse_uint(&p, end, &id) && p == end)
            ids[(*n)++] = id;
    }
    closedir(d);
    if (err) {
        errno = err;
        return -1;
    }
    sort_ids(ids, *n);
    return 0;
}

/* All node ids, ascending: the order of the columns of a distance row. */
static int list_node_ids(const char *dir, unsigned *ids, unsigned *n)
{
    char path[PATH_MAX], buf[SYSFS_BUF];
    int len = snprintf(path, sizeof path, "%s/online", dir);
    if (len < 0 || (size_t)len >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    ssize_t got = read_text(path, buf, sizeof buf);
    if (got < 0) {
        tm_log_debug("tiers: cannot read %s (%s); scanning %s", path,
                     strerror(errno), dir);
        return scan_node_dirs(dir, ids, n);
    }
    if (!parse_list(buf, buf + got, ids, SYSFS_MAX_IDS, n)) {
        tm_log_warn("tiers: cannot parse %s (\"%.64s\"); scanning %s", path,
                    buf, dir);
        return scan_node_dirs(dir, ids, n);
    }
    sort_ids(ids, *n);
    return 0;
}

/* Keep the ids a 64-bit mask can hold, ascending and without duplicates. */
static void add_nodes(tm_topology_t *t, const unsigned *ids, unsigned n)
{
    unsigned skipped = 0, first_skipped = 0;
    for (unsigned i = 0; i < n; i++) {
        if (ids[i] >= TM_MAX_NODES) {
            if (skipped++ == 0)
                first_skipped = ids[i];
            continue;
        }
        if (t->nnodes > 0 && t->nodes[t->nnodes - 1].id == ids[i])
            continue;
        t->nodes[t->nnodes++].id = ids[i];
    }
    if (skipped)
        tm_log_warn("tiers: ignoring %u NUMA node(s) from node %u up: "
                    "tiermem supports nodes 0..%d only",
                    skipped, first_skipped, TM_MAX_NODES - 1);
}

/* ------------------------------------------------------------------ */
/* Per-node facts                                                       */
/* ------------------------------------------------------------------ */

static void read_cpus(const char *dir, tm_node_info_t *node)
{
    char buf[SYSFS_BUF];
    ssize_t len = read_node_attr(dir, node->id, "cpulist", buf, sizeof buf);
    /* A CPU-less node's cpulist is a lone newline. */
    node->has_cpus = len > 0 && skip_space(buf, buf + len) != buf + len;
}

static void read_meminfo(const char *dir, tm_node_info_t *node)
{
    char buf[SYSFS_BUF];
    ssize_t len = read_node_attr(dir, node->id, "meminfo", buf, sizeof buf);
    if (len < 0)
        return;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        unsigned id;
        char key[32];
        unsigned long long kb;
        if (sscanf(line, "Node %u %31[^:]: %llu kB", &id, key, &kb) == 3) {
            if (strcmp(key, "MemTotal") == 0)
                node->capacity_bytes = (uint64_t)kb * 1024;
            else if (strcmp(key, "MemFree") == 0)
                node->free_bytes = (uint64_t)kb * 1024;
        }
        line = nl ? nl + 1 : NULL;
    }
}

static void read_hmat(const char *dir, tm_node_info_t *node)
{
    const char *a = "access0/initiators/";
    char name[64];
    snprintf(name, sizeof name, "%sread_latency", a);
    node->read_latency_ns = read_node_uint(dir, node->id, name);
    snprintf(name, sizeof name, "%swrite_latency", a);
    node->write_latency_ns = read_node_uint(dir, node->id, name);
    snprintf(name, sizeof name, "%sread_bandwidth", a);
    node->read_bandwidth_mbps = read_node_uint(dir, node->id, name);
    snprintf(name, sizeof name, "%swrite_bandwidth", a);
    node->write_bandwidth_mbps = read_node_uint(dir, node->id, name);
}

static tm_node_info_t *find_node(tm_topology_t *t, unsigned id)
{
    for (unsigned i = 0; i < t->nnodes; i++)
        if (t->nodes[i].id == id)
            return &t->nodes[i];
    return NULL;
}

/* Fold the SLIT row of `from` into every node's distance: the smallest
 * distance from any initiator wins.  Columns follow the online ids. */
static void fold_distance_row(const char *dir, tm_topology_t *t,
                              unsigned from, const unsigned *ids, unsigned n)
{
    char buf[SYSFS_BUF];
    ssize_t len = read_node_attr(dir, from, "distance", buf, sizeof buf);
    if (len < 0)
        return;
    const char *p = buf, *end = buf + len;
    for (unsigned col = 0; col < n; col++) {
        unsigned d;
        p = skip_space(p, end);
        if (!parse_uint(&p, end, &d))
            return;
        tm_node_info_t *to = ids[col] < TM_MAX_NODES ? find_node(t, ids[col])
                                                     : NULL;
        if (to && d > 0 && (to->distance == 0 || d < to->distance))
            to->distance = d;
    }
}

/* Initiators are the nodes with CPUs; with none at all (a hand-made tree)
 * every node is its own initiator, so all get their local distance. */
static void read_distances(const char *dir, tm_topology_t *t,
                           const unsigned *ids, unsigned n)
{
    bool any_cpus = false;
    for (unsigned i = 0; i < t->nnodes; i++)
        any_cpus |= t->nodes[i].has_cpus;
    for (unsigned i = 0; i < t->nnodes; i++)
        if (t->nodes[i].has_cpus || !any_cpus)
            fold_distance_row(dir, t, t->nodes[i].id, ids, n);
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
        tm_log_debug("tiers: node %u HMAT score %llu/%llu", n->id,
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
        if (!parse_list(seg, end, ids, SYSFS_MAX_IDS, &n)) {
            snprintf(why, whylen, "cannot parse tier \"%.*s\"",
                     (int)(end - seg), seg);
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
        format_mask(present & ~named, list, sizeof list);
        tm_log_warn("%s=\"%s\" does not name node(s) %s; they form the "
                    "last tier", TIERS_ENV, s, list);
        t->tiers[t->ntiers++].nodes = present & ~named;
    }
    return true;
}

static bool order_from_env(tm_topology_t *t)
{
    const char *s = getenv(TIERS_ENV);
    if (!s || !*s)
        return false;
    char why[128];
    if (parse_env_tiers(t, s, why, sizeof why))
        return true;
    tm_log_warn("%s=\"%s\" is not usable (%s); using the automatic tier "
                "order instead", TIERS_ENV, s, why);
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
    if (tm_log_level() < TM_LOG_INFO)
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
    tm_log_info("tiers: %u node(s), %u tier(s) by %s, fastest first:%s",
                t->nnodes, t->ntiers, t->source, buf);
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */
/* ------------------------------------------------------------------ */

int tm_topology_discover_at(const char *sysfs_node_dir, tm_topology_t *out)
{
    if (!sysfs_node_dir || !out) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    unsigned ids[SYSFS_MAX_IDS], n = 0;
    if (list_node_ids(sysfs_node_dir, ids, &n) < 0)
        return -1;
    add_nodes(out, ids, n);
    if (out->nnodes == 0) {
        tm_log_debug("tiers: no usable NUMA node under %s", sysfs_node_dir);
        errno = ENOENT;
        return -1;
    }
    for (unsigned i = 0; i < out->nnodes; i++) {
        read_cpus(sysfs_node_dir, &out->nodes[i]);
        read_meminfo(sysfs_node_dir, &out->nodes[i]);
        read_hmat(sysfs_node_dir, &out->nodes[i]);
    }
    read_distances(sysfs_node_dir, out, ids, n);
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
