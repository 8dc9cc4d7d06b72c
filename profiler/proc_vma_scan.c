/*
 * proc_vma_scan.c -- /proc/self/smaps and /proc/self/numa_maps, one VMA at
 * a time, without allocating.
 *
 * Both files can be tens of megabytes for a big process (smaps prints some
 * twenty lines per VMA), so they are read in pieces into a caller's buffer
 * and parsed line by line as the pieces come; a line split between two
 * pieces is carried over in a small line buffer.  Only what the samplers
 * need is kept: the VMA's range and its Referenced bytes (smaps), or its
 * pages per node (numa_maps, anonymous VMAs only).
 *
 * Hostile text.  The kernel writes these files, but a file name is the
 * user's: smaps escapes a newline in a path, numa_maps prints a path as is,
 * spaces and all, so "file=/tmp/x N0=999" would read as a node count.
 * Records with a file are therefore skipped in numa_maps (an arena's VMAs
 * are anonymous), and every header and number is checked: a malformed line
 * is counted and ignored.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "refs_internal.h"

void vma_scan_init(vma_scan_t *s, vma_scan_kind_t kind, vma_record_fn emit,
                   void *ctx)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->emit = emit;
    s->ctx = ctx;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A lower-case hex number at *p (the kernel's %lx), at most 16 digits. */
static bool parse_hex(const char **p, const char *end, uintptr_t *out)
{
    const char *q = *p;
    uint64_t v = 0;
    int n = 0;
    for (; q < end && hex_digit(*q) >= 0; q++, n++) {
        if (n == 16)
            return false;
        v = v << 4 | (uint64_t)hex_digit(*q);
    }
    if (n == 0)
        return false;
    *p = q;
    *out = (uintptr_t)v;
    return true;
}

static bool parse_dec(const char **p, const char *end, uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (q == *p)
        return false;
    *p = q;
    *out = v;
    return true;
}

static void emit_open_record(vma_scan_t *s)
{
    if (s->open) {
        s->open = false;
        s->records++;
        s->emit(s->ctx, &s->cur);
    }
}

/* ---------------------------------------------------------------- smaps */

/* "lo-hi perms offset dev inode [path]" */
static bool smaps_header(vma_scan_t *s, const char *p, const char *end)
{
    uintptr_t lo, hi;
    if (!parse_hex(&p, end, &lo) || p == end || *p != '-')
        return false;
    p++;
    if (!parse_hex(&p, end, &hi) || p == end || *p != ' ' || hi <= lo)
        return false;
    emit_open_record(s);
    memset(&s->cur, 0, sizeof s->cur);
    s->cur.lo = lo;
    s->cur.hi = hi;
    s->open = true;
    return true;
}

/* "Key:     123 kB" for the keys kept: Rss, Referenced, AnonHugePages. */
static bool smaps_key(vma_scan_t *s, const char *p, const char *end)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {{"Rss:", offsetof(vma_record_t, resident)},
                {"Referenced:", offsetof(vma_record_t, referenced)},
                {"AnonHugePages:", offsetof(vma_record_t, anon_huge)}};
    size_t k = 0, klen = 0;
    for (; k < sizeof keys / sizeof keys[0]; k++) {
        klen = strlen(keys[k].key);
        if ((size_t)(end - p) >= klen && memcmp(p, keys[k].key, klen) == 0)
            break;
    }
    if (k == sizeof keys / sizeof keys[0])
        return true; /* another key: not ours to check */
    p += klen;
    while (p < end && *p == ' ')
        p++;
    uint64_t kb;
    if (!s->open || !parse_dec(&p, end, &kb) || kb > (UINT64_MAX >> 10) ||
        end - p != 3 || memcmp(p, " kB", 3) != 0)
        return false;
    uint64_t bytes = kb << 10;
    memcpy((char *)&s->cur + keys[k].off, &bytes, sizeof bytes);
    s->keys += k == 1;
    return true;
}

static void smaps_line(vma_scan_t *s, const char *p, const char *end)
{
    bool ok;
    if (p < end && hex_digit(*p) >= 0) {
        ok = smaps_header(s, p, end);
        if (!ok) /* the keys that follow belong to no VMA we know */
            emit_open_record(s);
    } else if (p < end && *p >= 'A' && *p <= 'Z')
        ok = s->cut ? false : smaps_key(s, p, end);
    else
        ok = false;
    if (!ok)
        s->malformed++;
}

/* ------------------------------------------------------------- numa_maps */

static bool numa_token(vma_record_t *r, const char *t, const char *end)
{
    uint64_t v;
    if (t < end && *t == 'N' && t + 1 < end && t[1] >= '0' && t[1] <= '9') {
        const char *p = t + 1;
        if (!parse_dec(&p, end, &v) || p == end || *p != '=' ||
            v >= TM_MAX_NODES)
            return false;
        unsigned node = (unsigned)v;
        p++;
        if (!parse_dec(&p, end, &v) || p != end)
            return false;
        r->node_pages[node] = v;
        r->has_nodes = true;
        return true;
    }
    static const char kps[] = "kernelpagesize_kB=";
    size_t klen = sizeof kps - 1;
    if ((size_t)(end - t) > klen && memcmp(t, kps, klen) == 0) {
        const char *p = t + klen;
        if (!parse_dec(&p, end, &v) || p != end || v == 0 ||
            v > (1u << 30))
            return false;
        r->page_size = v << 10;
    }
    return true; /* other keys (anon=, dirty=, ...) are not needed */
}

/* "lo policy [file=...|heap|stack] key=value ..." */
static void numa_maps_line(vma_scan_t *s, const char *p, const char *end)
{
    vma_record_t *r = &s->cur;
    memset(r, 0, sizeof *r);
    if (s->cut || !parse_hex(&p, end, &r->lo) || p == end || *p != ' ') {
        s->malformed++;
        return;
    }
    bool first = true, ok = true;
    while (p < end && ok) {
        while (p < end && *p == ' ')
            p++;
        const char *t = p;
        while (p < end && *p != ' ')
            p++;
        if (t == p)
            break;
        if (first) { /* the policy: "default", "bind:0-1", ... */
            first = false;
            continue;
        }
        if ((size_t)(p - t) >= 5 && memcmp(t, "file=", 5) == 0)
            return; /* file-backed: never an arena's, and not parseable */
        ok = numa_token(r, t, p);
    }
    if (!ok || r->page_size == 0) {
        s->malformed++;
        return;
    }
    s->records++;
    s->emit(s->ctx, r);
}

/* ---------------------------------------------------------------- lines */

static void scan_line(vma_scan_t *s)
{
    const char *p = s->line, *end = s->line + s->len;
    if (s->kind == VMA_SCAN_SMAPS)
        smaps_line(s, p, end);
    else
        numa_maps_line(s, p, end);
    s->len = 0;
    s->cut = false;
}

void vma_scan_feed(vma_scan_t *s, const char *text, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        size_t room = sizeof s->line - s->len;
        size_t keep = n < room ? n : room;
        memcpy(s->line + s->len, text, keep);
        s->len += keep;
        if (keep < n)
            s->cut = true;
        if (nl == NULL)
            return;
        scan_line(s);
        text = nl + 1;
        len -= n + 1;
    }
}

void vma_scan_finish(vma_scan_t *s)
{
    if (s->len > 0 || s->cut)
        scan_line(s);
    if (s->kind == VMA_SCAN_SMAPS)
        emit_open_record(s);
}

/* read(2), not pread: a seq_file asked for any offset but the next one
 * regenerates everything before it. */
int vma_scan_fd(vma_scan_t *s, int fd, char *buf, size_t bufsize)
{
    if (lseek(fd, 0, SEEK_SET) != 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, bufsize);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        vma_scan_feed(s, buf, (size_t)n);
    }
    vma_scan_finish(s);
    return 0;
}
