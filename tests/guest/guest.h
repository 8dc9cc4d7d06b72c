/*
 * guest.h -- helpers shared by the guest tests of the multi-node QEMU rig.
 *
 * A guest test is one statically linked program, tests/guest/guest_*.c,
 * that runs as root inside a QEMU guest whose NUMA topology run-rig.sh
 * chose.  It reports every check it makes as one line on stdout:
 *
 *     TMTEST PASS <test>/<check>
 *     TMTEST FAIL <test>/<check>: <reason>
 *     TMTEST SKIP <test>/<check>: <reason>
 *
 * and exits 0 when nothing failed, 1 otherwise.  The guest's /init prints
 * a FAIL line for a test that died some other way (signal, timeout).
 *
 * The topology is described to the tests through the environment, which
 * the guest's /init sets from the kernel command line (see run-rig.sh):
 *
 *     TM_TOPO          topology number (1, 2, 3)
 *     TM_NODES         number of NUMA nodes the guest should have
 *     TM_CPU_NODE      the node with the CPUs (always 0 here)
 *     TM_HMAT          1 when the firmware has an HMAT
 *     TM_EXPECT_TIERS  the expected tier order, "1;0;2" (';' between tiers,
 *                      ',' between the nodes of one tier)
 *     TM_SMALL_NODE    a CPU-less node made deliberately small, or unset
 *
 * Everything here checks placement through move_pages(2) status queries:
 * the observed state, never timing.
 */
#ifndef TM_GUEST_H
#define TM_GUEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <numaif.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define TG_PAGE 4096UL
#define TG_MAX_NODES 64

static const char *tg_test_name = "guest";
static unsigned tg_npass, tg_nfail, tg_nskip;

/* On a crash, print "TMCRASH <pc> ..." lines (the faulting instruction,
 * then a backtrace) that run-rig.sh turns into function names and lines
 * with addr2line on the unstripped binary, then die of the same signal. */
static inline void tg_put_hex(char *buf, size_t *o, uintptr_t v)
{
    char tmp[2 + 16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    buf[(*o)++] = '0';
    buf[(*o)++] = 'x';
    while (n)
        buf[(*o)++] = tmp[--n];
}

static void tg_crash_handler(int sig, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;
    char line[160];
    size_t o = 0;
    const char *hdr = "TMCRASH signal ";
    memcpy(line, hdr, strlen(hdr));
    o = strlen(hdr);
    line[o++] = (char)('0' + sig / 10);
    line[o++] = (char)('0' + sig % 10);
    memcpy(line + o, " addr ", 6);
    o += 6;
    tg_put_hex(line, &o, (uintptr_t)si->si_addr);
    memcpy(line + o, " pc ", 4);
    o += 4;
#if defined(__x86_64__)
    tg_put_hex(line, &o, (uintptr_t)uc->uc_mcontext.gregs[REG_RIP]);
#else
    (void)uc;
    tg_put_hex(line, &o, 0);
#endif
    line[o++] = '\n';
    ssize_t w = write(STDOUT_FILENO, line, o);
    (void)w;
    void *frames[32];
    int n = backtrace(frames, 32);
    for (int i = 0; i < n; i++) {
        o = 0;
        memcpy(line, "TMCRASH frame ", 14);
        o = 14;
        tg_put_hex(line, &o, (uintptr_t)frames[i]);
        line[o++] = '\n';
        w = write(STDOUT_FILENO, line, o);
        (void)w;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static inline void tg_begin(const char *name)
{
    tg_test_name = name;
    /* Warm up backtrace() (its first call may load and allocate). */
    void *warm[2];
    (void)backtrace(warm, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = tg_crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            perror("sigaction");
    /* The console is a serial line: keep the lines whole and in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IOLBF, 0);
}

static inline void tg_vreport(const char *kind, const char *check,
                              const char *fmt, va_list ap)
{
    char why[512] = "";
    if (fmt)
        vsnprintf(why, sizeof why, fmt, ap);
    /* One write per line, so kernel or thread output can't split it. */
    printf("TMTEST %s %s/%s%s%s\n", kind, tg_test_name, check,
           why[0] ? ": " : "", why);
    fflush(stdout);
}

/* Record one check.  fmt explains a failure (ignored on success). */
__attribute__((format(printf, 3, 4))) static inline bool
tg_check(const char *check, bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ok) {
        tg_npass++;
        tg_vreport("PASS", check, NULL, ap);
    } else {
        tg_nfail++;
        tg_vreport("FAIL", check, fmt, ap);
    }
    va_end(ap);
    return ok;
}

__attribute__((format(printf, 2, 3))) static inline void
tg_skip(const char *check, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tg_nskip++;
    tg_vreport("SKIP", check, fmt, ap);
    va_end(ap);
}

/* Free-form diagnostics: prefixed so the host parser ignores them. */
__attribute__((format(printf, 1, 2))) static inline void
tg_info(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("  [%s] %s\n", tg_test_name, buf);
    fflush(stdout);
}

static inline int tg_done(void)
{
    tg_info("%u passed, %u failed, %u skipped", tg_npass, tg_nfail, tg_nskip);
    return tg_nfail ? 1 : 0;
}

/* ------------------------------------------------------------------ env */

static inline long tg_env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end)
        return dflt;
    return v;
}

static inline const char *tg_env_str(const char *name, const char *dflt)
{
    const char *s = getenv(name);
    return (s && *s) ? s : dflt;
}

/* Parse a tier list like "1;0;2" or "0,2;1" (';' between tiers, ',' between
 * the nodes of a tier) into node masks.  Returns the number of tiers, or -1
 * when the string is malformed. */
static inline int tg_parse_tiers(const char *s, uint64_t *masks, int max)
{
    int n = 0;
    uint64_t cur = 0;
    bool have_digit = false;
    unsigned node = 0;
    for (const char *p = s;; p++) {
        if (*p >= '0' && *p <= '9') {
            node = node * 10 + (unsigned)(*p - '0');
            have_digit = true;
            if (node >= 64)
                return -1;
            continue;
        }
        if (*p != ',' && *p != ';' && *p != '\0')
            return -1;
        if (!have_digit)
            return -1;
        cur |= 1ULL << node;
        node = 0;
        have_digit = false;
        if (*p == ',')
            continue;
        if (n == max)
            return -1;
        masks[n++] = cur;
        cur = 0;
        if (*p == '\0')
            return n;
    }
}

/* "0,2" for a node mask. */
static inline const char *tg_mask_str(uint64_t mask, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (unsigned n = 0; n < 64 && o < len; n++)
        if (mask >> n & 1) {
            int w = snprintf(buf + o, len - o, "%s%u", o ? "," : "", n);
            if (w < 0)
                break;
            o += (size_t)w;
        }
    return buf;
}

/* ------------------------------------------------------------------ sysfs */

/* Read a small file into buf (NUL-terminated, trailing newline removed).
 * Returns 0, or -1 with errno. */
static inline int tg_read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    int saved = errno;
    if (close(fd) != 0 && n >= 0)
        return -1;
    if (n < 0) {
        errno = saved;
        return -1;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 0;
}

/* An unsigned number from a sysfs file; -1 when the file can't be read. */
static inline long long tg_read_ull(const char *path)
{
    char buf[64];
    if (tg_read_file(path, buf, sizeof buf) != 0)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf)
        return -1;
    return (long long)v;
}

static inline bool tg_node_exists(unsigned node)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%u", node);
    return access(path, F_OK) == 0;
}

/* Number of online nodes (node0..nodeN-1 must all exist here). */
static inline unsigned tg_node_count(void)
{
    unsigned n = 0;
    while (n < TG_MAX_NODES && tg_node_exists(n))
        n++;
    return n;
}

static inline bool tg_node_has_cpus(unsigned node)
{
    char path[128], buf[256];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%u/cpulist",
             node);
    if (tg_read_file(path, buf, sizeof buf) != 0)
        return false;
    return buf[0] != '\0';
}

/* A "Node N <key>: <value> kB" line of the node's meminfo, in bytes; -1 if
 * absent. */
static inline long long tg_node_meminfo(unsigned node, const char *key)
{
    char path[128], line[256];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%u/meminfo",
             node);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long long v = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        unsigned n;
        int off = 0;
        if (sscanf(line, "Node %u %n", &n, &off) != 1 || off == 0)
            continue;
        const char *p = line + off;
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            v = strtoll(p + klen + 1, NULL, 10) * 1024;
            break;
        }
    }
    if (fclose(f) != 0)
        return -1;
    return v;
}

/* ------------------------------------------------------------------ pages */

/* Write one byte in every page of [p, p+len) so every page is resident. */
static inline void tg_touch(void *p, size_t len, unsigned char value)
{
    volatile unsigned char *c = p;
    for (size_t off = 0; off < len; off += TG_PAGE)
        c[off] = value;
    if (len)
        c[len - 1] = value;
}

/* move_pages(2) status queries for the n page-aligned addresses pages[]:
 * status[i] is page i's node id, or -errno.  Pages that report -EBUSY (a
 * huge page in the middle of a migration) are asked again, up to
 * `busy_retries` times, 10 ms apart.  It allocates nothing, so a program
 * under tiermem's preload library can ask without adding allocations (and
 * arenas) of its own.  Returns 0, or -1 with errno when move_pages itself
 * failed. */
static inline int tg_query_pages(void **pages, int *status, size_t n,
                                 unsigned busy_retries)
{
    const size_t batch = 4096;
    for (size_t i = 0; i < n; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        if (move_pages(0, m, pages + i, NULL, status + i, 0) != 0)
            return -1;
    }
    for (unsigned r = 0; r < busy_retries; r++) {
        size_t busy = 0;
        for (size_t i = 0; i < n; i++) {
            if (status[i] != -EBUSY)
                continue;
            busy++;
            if (move_pages(0, 1, pages + i, NULL, status + i, 0) != 0)
                status[i] = -errno;
        }
        if (!busy)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    return 0;
}

/* Where the pages of [p, p+len) are: one status per page (tg_query_pages).
 * Returns a malloc'ed status array of len/4096 (rounded up) entries, or
 * NULL with errno when move_pages itself failed. */
static inline int *tg_page_status(void *p, size_t len, unsigned busy_retries)
{
    uintptr_t start = (uintptr_t)p & ~(TG_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + len + TG_PAGE - 1) & ~(TG_PAGE - 1);
    size_t n = (end - start) / TG_PAGE;
    int *status = calloc(n ? n : 1, sizeof *status);
    void **pages = calloc(n ? n : 1, sizeof *pages);
    if (!status || !pages) {
        free(status);
        free(pages);
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        pages[i] = (void *)(start + i * TG_PAGE);
    if (tg_query_pages(pages, status, n, busy_retries) != 0) {
        int saved = errno;
        free(status);
        free(pages);
        errno = saved;
        return NULL;
    }
    free(pages);
    return status;
}

/* Summary of where a range's pages are. */
typedef struct tg_where {
    size_t pages;                    /* pages examined */
    size_t on_node[TG_MAX_NODES];    /* pages per node */
    size_t not_present;              /* -ENOENT or -EFAULT: not resident */
    size_t busy;                     /* still -EBUSY after the retries */
    size_t other_errors;             /* any other negative status */
    int first_error;                 /* first negative status, 0 if none */
    void *first_off;                 /* first page not on `node` (tg_on_node) */
    int first_off_status;
} tg_where_t;

/* Fill *w for [p, p+len); first_off is the first page whose status is not
 * `node` (pass -1 to not look).  Returns 0, or -1 with errno. */
static inline int tg_where(void *p, size_t len, int node, tg_where_t *w)
{
    memset(w, 0, sizeof *w);
    int *st = tg_page_status(p, len, 20);
    if (!st)
        return -1;
    uintptr_t start = (uintptr_t)p & ~(TG_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + len + TG_PAGE - 1) & ~(TG_PAGE - 1);
    w->pages = (end - start) / TG_PAGE;
    for (size_t i = 0; i < w->pages; i++) {
        int s = st[i];
        if (s >= 0 && s < TG_MAX_NODES)
            w->on_node[s]++;
        else if (s == -ENOENT || s == -EFAULT) /* 6.1: -EFAULT for a
                                                   zapped anonymous pte */
            w->not_present++;
        else if (s == -EBUSY)
            w->busy++;
        else
            w->other_errors++;
        if (s < 0 && !w->first_error)
            w->first_error = s;
        if (node >= 0 && s != node && !w->first_off) {
            w->first_off = (void *)(start + i * TG_PAGE);
            w->first_off_status = s;
        }
    }
    free(st);
    return 0;
}

/* True when every page of [p, p+len) is resident on `node`.  On false,
 * `why` (if not NULL) explains what was seen. */
static inline bool tg_all_on_node(void *p, size_t len, int node, char *why,
                                  size_t whylen)
{
    tg_where_t w;
    if (tg_where(p, len, node, &w) != 0) {
        if (why)
            snprintf(why, whylen, "move_pages failed: %s", strerror(errno));
        return false;
    }
    if (w.on_node[node] == w.pages)
        return true;
    if (why) {
        int o = snprintf(why, whylen, "%zu of %zu pages on node %d;",
                         w.on_node[node], w.pages, node);
        for (int n = 0; n < TG_MAX_NODES && o > 0 && (size_t)o < whylen; n++)
            if (n != node && w.on_node[n])
                o += snprintf(why + o, whylen - o, " node%d=%zu", n,
                              w.on_node[n]);
        if (o > 0 && (size_t)o < whylen)
            snprintf(why + o, whylen - o,
                     " absent=%zu busy=%zu err=%zu; first off-node page %p "
                     "status %d",
                     w.not_present, w.busy, w.other_errors, w.first_off,
                     w.first_off_status);
    }
    return false;
}

/* ------------------------------------------------------------------ THP */

/* The THP mode in brackets of /sys/kernel/mm/transparent_hugepage/enabled
 * ("always", "madvise", "never"), or "unavailable". */
static inline const char *tg_thp_mode(char *buf, size_t len)
{
    char raw[128];
    if (tg_read_file("/sys/kernel/mm/transparent_hugepage/enabled", raw,
                     sizeof raw) != 0) {
        snprintf(buf, len, "unavailable");
        return buf;
    }
    const char *l = strchr(raw, '['), *r = l ? strchr(l, ']') : NULL;
    if (!l || !r) {
        snprintf(buf, len, "unavailable");
        return buf;
    }
    snprintf(buf, len, "%.*s", (int)(r - l - 1), l + 1);
    return buf;
}

/* Pages of [p, p+len) that are part of a transparent huge page, from
 * /proc/self/pagemap (PFN, root only) and /proc/kpageflags (KPF_THP, bit 22).
 * Returns -1 with errno when the files can't be read. */
static inline long tg_thp_pages(void *p, size_t len)
{
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0)
        return -1;
    int kf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
    if (kf < 0) {
        int saved = errno;
        (void)close(pm); /* read-only: nothing to lose */
        errno = saved;
        return -1;
    }
    long thp = 0;
    uintptr_t start = (uintptr_t)p & ~(TG_PAGE - 1);
    for (uintptr_t a = start; a < (uintptr_t)p + len; a += TG_PAGE) {
        uint64_t ent, flags;
        if (pread(pm, &ent, sizeof ent, (off_t)(a / TG_PAGE * 8)) !=
            (ssize_t)sizeof ent) {
            thp = -1;
            break;
        }
        if (!(ent & (1ULL << 63)))
            continue; /* not present */
        uint64_t pfn = ent & ((1ULL << 55) - 1);
        if (pfn == 0) {
            errno = EPERM; /* PFNs hidden: not root */
            thp = -1;
            break;
        }
        if (pread(kf, &flags, sizeof flags, (off_t)(pfn * 8)) !=
            (ssize_t)sizeof flags) {
            thp = -1;
            break;
        }
        if (flags & (1ULL << 22))
            thp++;
    }
    int saved = errno;
    int c1 = close(pm), c2 = close(kf);
    if (c1 != 0 || c2 != 0)
        return -1;
    errno = saved;
    return thp;
}

#endif
