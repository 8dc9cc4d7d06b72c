/*
 * node_sysfs.c -- reading the NUMA nodes from the sysfs node tree.
 *
 * Turns a sysfs node directory (/sys/devices/system/node) into the node
 * array of a tm_topology_t; tiers.c orders the nodes into tiers.  The files
 * read:
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
 * A node's distance is its SLIT distance from the nearest node with CPUs.
 * Nodes with ids >= TM_MAX_NODES cannot be expressed in a node mask and are
 * skipped (one warning).  This runs once at init: it uses stack buffers and
 * open/read instead of stdio, so it never allocates except for opendir()
 * when the "online" file is missing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"

/* sysfs attributes are at most a page; 8 KiB also covers a distance row of
 * 1024 nodes and the node meminfo with room to spare. */
#define SYSFS_BUF 8192

/* ------------------------------------------------------------------ */
/* Lines and numbers (base/text.c) and small files                      */
/* ------------------------------------------------------------------ */

/* A sysfs attribute is one line: the first line of the file, its '\n'
 * and a '\r' before it dropped (base.h's line rule). */
static text_span_t first_line(const char *buf, size_t len)
{
    text_lines_t it;
    text_span_t line;
    text_lines_init(&it, buf, len);
    return text_next_line(&it, &line) ? line : span_make(buf, 0);
}

/* One number of a node list: decimal, blanks around it allowed. */
static bool list_id(text_span_t s, unsigned *out)
{
    uint64_t v;
    if (!text_dec_u64(span_trim(s), UINT_MAX, &v))
        return false;
    *out = (unsigned)v;
    return true;
}

/* Parse a kernel-style list "0-2,5" in [s, end) into ids.  Blanks (' ',
 * '\t') around numbers are allowed (users type TIERMEM_TIERS by hand).
 * Returns false on a syntax error, a reversed range or more than max
 * ids. */
bool node_list_parse(const char *s, const char *end, unsigned *ids,
                     unsigned max, unsigned *n)
{
    text_span_t rest = span_make(s, (size_t)(end - s));
    *n = 0;
    if (text_is_blank_line(rest))
        return true; /* an empty list is valid; callers decide what it means */
    for (;;) {
        text_span_t item = span_cut_at(rest, ',');
        text_span_t lo_s = span_cut_at(item, '-');
        unsigned lo, hi;
        if (!list_id(lo_s, &lo))
            return false;
        hi = lo;
        if (lo_s.n < item.n) { /* "lo-hi" */
            text_span_t hi_s = span_make(item.p + lo_s.n + 1,
                                         item.n - lo_s.n - 1);
            if (!list_id(hi_s, &hi) || hi < lo)
                return false;
        }
        if (hi - lo >= max - *n)
            return false;
        for (unsigned id = lo;; id++) {
            ids[(*n)++] = id;
            if (id == hi)
                break; /* not "id <= hi": hi may be UINT_MAX */
        }
        if (item.n == rest.n)
            return true;
        rest = span_make(item.p + item.n + 1, rest.n - item.n - 1);
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
        log_debug("tiers: cannot read %s: %s", path, strerror(errno));
    return len;
}

/* One unsigned attribute; 0 (= unknown) when absent or unparsable. */
static unsigned read_node_uint(const char *dir, unsigned id, const char *name)
{
    char buf[64];
    ssize_t len = read_node_attr(dir, id, name, buf, sizeof buf);
    unsigned v;
    if (len < 0 || !list_id(first_line(buf, (size_t)len), &v))
        return 0;
    return v;
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
        text_span_t name = span_of(e->d_name);
        uint64_t id;
        if (span_starts(name, "node") &&
            text_dec_u64(span_make(name.p + 4, name.n - 4), UINT_MAX, &id))
            ids[(*n)++] = (unsigned)id;
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
        log_debug("tiers: cannot read %s (%s); scanning %s", path,
                     strerror(errno), dir);
        return scan_node_dirs(dir, ids, n);
    }
    text_span_t list = first_line(buf, (size_t)got);
    if (!node_list_parse(list.p, list.p + list.n, ids, SYSFS_MAX_IDS, n)) {
        log_warn("tiers: cannot parse %s (\"%.64s\"); scanning %s", path,
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
        log_warn("tiers: ignoring %u NUMA node(s) from node %u up: "
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
    node->has_cpus =
        len > 0 && !text_is_blank_line(first_line(buf, (size_t)len));
}

/* "Node N MemTotal:  123 kB" and "Node N MemFree: ..." lines. */
static void read_meminfo(const char *dir, tm_node_info_t *node)
{
    char buf[SYSFS_BUF];
    text_lines_t it;
    text_span_t line;
    ssize_t len = read_node_attr(dir, node->id, "meminfo", buf, sizeof buf);
    if (len < 0)
        return;
    text_lines_init(&it, buf, (size_t)len);
    while (text_next_line(&it, &line)) {
        text_span_t f[4];
        uint64_t id, kb;
        if (text_fields(line, f, 4) < 4 || !span_eq(f[0], "Node") ||
            !text_dec_u64(f[1], UINT_MAX, &id) ||
            !text_dec_u64(f[3], UINT64_MAX / 1024, &kb))
            continue;
        if (span_eq(f[2], "MemTotal:"))
            node->capacity_bytes = kb * 1024;
        else if (span_eq(f[2], "MemFree:"))
            node->free_bytes = kb * 1024;
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
    text_span_t rest = first_line(buf, (size_t)len);
    for (unsigned col = 0; col < n; col++) {
        text_span_t field;
        unsigned d;
        if (text_fields(rest, &field, 1) == 0 || !list_id(field, &d))
            return;
        rest = span_make(field.p + field.n,
                         (size_t)(rest.p + rest.n - (field.p + field.n)));
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
/* The whole tree                                                       */
/* ------------------------------------------------------------------ */

int node_sysfs_read(const char *dir, tm_topology_t *t)
{
    unsigned ids[SYSFS_MAX_IDS], n = 0;
    if (list_node_ids(dir, ids, &n) < 0)
        return -1;
    add_nodes(t, ids, n);
    if (t->nnodes == 0) {
        log_debug("tiers: no usable NUMA node under %s", dir);
        errno = ENOENT;
        return -1;
    }
    for (unsigned i = 0; i < t->nnodes; i++) {
        read_cpus(dir, &t->nodes[i]);
        read_meminfo(dir, &t->nodes[i]);
        read_hmat(dir, &t->nodes[i]);
    }
    read_distances(dir, t, ids, n);
    return 0;
}
