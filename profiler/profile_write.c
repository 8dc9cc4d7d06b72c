/*
 * profile_write.c -- the profile file, written one interval at a time.
 *
 * Runs on the profiling thread, so it never calls malloc or stdio: lines
 * are formatted with snprintf into a meta_alloc buffer and written with
 * write(2) when the buffer fills and at the end of every interval.  The
 * file is path.partial until profile_writer_finish renames it, so a file
 * named `path` is always a finished run; an existing path.partial is never
 * overwritten (EEXIST).  Numbers are written the same in every locale.  Rows that say nothing new (no
 * samples, every other field as last written) are left out; the writer
 * keeps what it last wrote per arena and per site to know.  The format is
 * doc/profile-format.md.
 *
 * The descriptor is taken with fd_own and checked before every write:
 * a program that closed it (closefrom) may have opened its own file at
 * that number, and a profile line must never land there.  A lost
 * descriptor ends the profile where it is, .partial, whole intervals
 * only, and is reported once (prof_fd_lost).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "profiler.h"

#define PW_BUF_SIZE ((size_t)64 << 10)
/* Longest text one pw_line call formats (the header: under 500 bytes);
 * the buffer is flushed before a line when less than this is left. */
#define PW_LINE_MAX 1024
#define PW_SITES_MIN 256

/* What the file last said about an arena: the omission rule compares
 * against it. */
typedef struct pw_arena_last {
    bool written;
    uint64_t serial;    /* a new arena in the id is always written */
    uint8_t kind;
    uint32_t owner_site;
    tm_placement_t placement;
    uint64_t mapped;
    tm_alloc_stats_t stats;
} pw_arena_last_t;

typedef struct pw_site_last {
    bool defined;   /* a definition line has been written */
    bool written;   /* a row has been written */
    uint64_t key;
    int32_t explicit_id;
    unsigned arena;
    bool estimated;
    tm_alloc_stats_t stats;
} pw_site_last_t;

struct prof_writer {
    int fd;                 /* own.fd once owned */
    owned_fd_t own;
    bool broken;            /* a write failed: the file ends torn */
    bool lost;              /* the descriptor is no longer ours */
    uint64_t last_seq;
    uint64_t nintervals;
    char path[TM_PATH_MAX];
    char partial[TM_PATH_MAX + 16];
    char *buf;              /* PW_BUF_SIZE bytes */
    size_t used;
    pw_arena_last_t *arenas; /* TM_MAX_ARENAS + 1, by id */
    pw_site_last_t *sites;  /* by site index */
    size_t nsites_cap;
    bool has_totals;        /* profile_writer_set_totals was called */
    prof_sampler_totals_t totals;
};

/* ---------------------------------------------------------------- output */

/* Is the descriptor still ours?  If not: the profile ends here, and the
 * loss is reported (once per run, by prof_fd_lost). */
static bool pw_fd_ours(prof_writer_t *w)
{
    if (fd_is_ours(&w->own))
        return true;
    if (!w->lost) {
        w->lost = true;
        prof_fd_lost(w->own.fd, "the profile being written");
        fd_forget(&w->own);
        w->fd = -1;
    }
    w->broken = true;
    errno = EBADF;
    return false;
}

/* Write all of [p, p + n), through short writes and EINTR. */
static int pw_write_all(prof_writer_t *w, const char *p, size_t n)
{
    while (n > 0) {
        if (!pw_fd_ours(w))
            return -1;
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            log_error("profile %s: write of %zu bytes to fd %d failed "
                         "(errno %d); the profile ends here", w->partial, n,
                         w->fd, e);
            w->broken = true;
            errno = e;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int pw_flush(prof_writer_t *w)
{
    int rc = pw_write_all(w, w->buf, w->used);
    w->used = 0;
    return rc;
}

/* Append one formatted line; flushes first when the buffer is nearly full.
 * Lines are bounded by construction (numbers and a 256-byte exe). */
__attribute__((format(printf, 2, 3)))
static int pw_line(prof_writer_t *w, const char *fmt, ...)
{
    if (w->broken) {
        errno = EIO; /* logged when it broke */
        return -1;
    }
    if (PW_BUF_SIZE - w->used < PW_LINE_MAX && pw_flush(w) != 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->buf + w->used, PW_BUF_SIZE - w->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= PW_BUF_SIZE - w->used) {
        log_error("profile %s: a line did not fit the buffer",
                     w->partial);
        errno = EOVERFLOW;
        return -1;
    }
    w->used += (size_t)n;
    return 0;
}

/* ---------------------------------------------------------------- names */

static const char *pw_kind_name(uint8_t kind)
{
    switch (kind) {
    case ARENA_USER: return "user";
    case ARENA_SITE: return "site";
    case ARENA_SHARED: return "shared";
    default: return NULL;
    }
}

static const char *pw_mode_name(int mode)
{
    switch (mode) {
    case 0: return "none";
    case TM_MODE_BIND: return "bind";
    case TM_MODE_PREFERRED: return "preferred";
    case TM_MODE_INTERLEAVE: return "interleave";
    default: return NULL;
    }
}

/* Copy a name into dst as one token: blanks and control characters become
 * '_' (or '?' when keep_blanks), so a line always stays one line. */
static void pw_sanitize(char *dst, size_t cap, const char *src,
                        bool keep_blanks)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c == 0x7f)
            c = '?';
        else if (c == ' ' && !keep_blanks)
            c = '_';
        dst[i] = (char)c;
    }
    dst[i] = '\0';
}

/* ---------------------------------------------------------------- open */

/* The halflife as %.17g but with a '.' whatever LC_NUMERIC the application
 * set: the locale's decimal separator (a ',' or several bytes) becomes
 * '.'.  h is finite (checked), so the text is sign, digits, separator,
 * digits and an exponent. */
static void pw_format_double(char *dst, size_t cap, double h)
{
    char raw[64];
    snprintf(raw, sizeof raw, "%.17g", h);
    size_t j = 0;
    bool sep = false;
    for (size_t i = 0; raw[i] != '\0' && j + 1 < cap; i++) {
        char c = raw[i];
        bool plain = (c >= '0' && c <= '9') || c == '-' || c == '+' ||
                     c == 'e' || c == 'E';
        if (plain)
            dst[j++] = c;
        else if (!sep)
            dst[j++] = '.';
        sep = !plain;
    }
    dst[j] = '\0';
}

static int pw_header(prof_writer_t *w, const prof_header_t *h)
{
    char exe[sizeof h->exe], sampler[sizeof h->sampler];
    char detail[sizeof h->sampler_detail];
    char exe_src[sizeof h->exe], sampler_src[sizeof h->sampler];
    char detail_src[sizeof h->sampler_detail];
    memcpy(exe_src, h->exe, sizeof exe_src);
    exe_src[sizeof exe_src - 1] = '\0';
    memcpy(sampler_src, h->sampler, sizeof sampler_src);
    sampler_src[sizeof sampler_src - 1] = '\0';
    memcpy(detail_src, h->sampler_detail, sizeof detail_src);
    detail_src[sizeof detail_src - 1] = '\0';
    pw_sanitize(exe, sizeof exe, exe_src, true);
    pw_sanitize(sampler, sizeof sampler, sampler_src, false);
    pw_sanitize(detail, sizeof detail, detail_src, true);
    char halflife[64];
    pw_format_double(halflife, sizeof halflife, h->halflife);
    /* The header's fixed lines fit the buffer at once: one call. */
    if (pw_line(w,
                "tiermem-profile %d\nexe %s\npid %ld\nrank %d\nsampler %s\n"
                "interval_ns %" PRIu64 "\nhalflife %s\n"
                "start_unix_ms %" PRIu64 "\n",
                PROF_FORMAT_VERSION, exe, h->pid, h->rank,
                sampler[0] ? sampler : "-", h->interval_ns, halflife,
                h->start_unix_ms) != 0)
        return -1;
    if (detail[0] != '\0' && pw_line(w, "sampler_detail %s\n", detail) != 0)
        return -1;
    for (unsigned i = 0; i < h->nnodes; i++)
        if (pw_line(w, "node %u %u %" PRIu64 "\n", h->nodes[i].id,
                    h->nodes[i].tier, h->nodes[i].capacity) != 0)
            return -1;
    return pw_flush(w);
}

static bool pw_header_valid(const char *path, const prof_header_t *h)
{
    const char *why = NULL;
    if (h->nnodes > TM_MAX_NODES)
        why = "more nodes than TM_MAX_NODES";
    else if (!isfinite(h->halflife))
        why = "halflife is not a finite number";
    for (unsigned i = 0; why == NULL && i < h->nnodes; i++)
        if (h->nodes[i].id >= TM_MAX_NODES)
            why = "a node id is past TM_MAX_NODES";
    if (why != NULL)
        log_error("profile %s: bad header: %s", path, why);
    return why == NULL;
}

static void pw_release(prof_writer_t *w)
{
    (void)fd_release(&w->own); /* only if still ours */
    if (w->buf != NULL)
        meta_free(w->buf, PW_BUF_SIZE);
    if (w->arenas != NULL)
        meta_free(w->arenas, (TM_MAX_ARENAS + 1) * sizeof *w->arenas);
    if (w->sites != NULL)
        meta_free(w->sites, w->nsites_cap * sizeof *w->sites);
    meta_free(w, sizeof *w);
}

prof_writer_t *profile_writer_open(const char *path, const prof_header_t *h)
{
    if (path == NULL || h == NULL || strlen(path) >= TM_PATH_MAX ||
        !pw_header_valid(path ? path : "(null)", h)) {
        errno = path != NULL && strlen(path) >= TM_PATH_MAX ? ENAMETOOLONG
                                                              : EINVAL;
        return NULL;
    }
    prof_writer_t *w = meta_alloc(sizeof *w);
    if (w == NULL) {
        log_error("profile %s: no metadata memory for the writer "
                     "(errno %d)", path, errno);
        return NULL;
    }
    w->fd = w->own.fd = -1;
    memcpy(w->path, path, strlen(path) + 1);
    snprintf(w->partial, sizeof w->partial, "%s.partial", path);
    w->buf = meta_alloc(PW_BUF_SIZE);
    w->arenas = meta_alloc((TM_MAX_ARENAS + 1) * sizeof *w->arenas);
    if (w->buf == NULL || w->arenas == NULL) {
        int e = errno;
        log_error("profile %s: no metadata memory for the writer "
                     "(errno %d)", path, e);
        pw_release(w);
        errno = e;
        return NULL;
    }
    /* O_EXCL: an existing .partial is a live writer of the same name (an MPI
     * rank's fork+exec child inherits the rank) or a crashed run's
     * leftover; neither is overwritten.  The caller retries with another
     * name on EEXIST.  file_create never follows a planted link. */
    w->fd = file_create(w->partial, 0644);
    if (w->fd < 0) {
        int e = errno;
        if (e == EEXIST)
            log_info("profile %s: exists (another writer or a crashed "
                        "run's leftover); not overwritten", w->partial);
        else
            log_error("profile %s: cannot create it (errno %d)",
                         w->partial, e);
        pw_release(w);
        errno = e;
        return NULL;
    }
    w->fd = fd_own(w->fd, &w->own);
    if (w->fd < 0) {
        int e = errno;
        log_error("profile %s: keeping its descriptor failed (errno %d)",
                     w->partial, e);
        (void)unlink(w->partial); /* empty, and ours: O_EXCL made it */
        pw_release(w);
        errno = e;
        return NULL;
    }
    if (pw_header(w, h) != 0) {
        int e = errno;
        pw_release(w);
        errno = e;
        return NULL;
    }
    return w;
}

/* ---------------------------------------------------------------- intervals */

/* Rows must be what the reader accepts: ascending, in range, known names.
 * Checked before anything is written, so a bad interval leaves no trace. */
static const char *pw_interval_invalid(const prof_writer_t *w,
                                       const prof_interval_t *iv)
{
    if (iv->seq <= w->last_seq)
        return "sequence number not above the last one";
    if (iv->t_end_ns < iv->t_start_ns)
        return "interval ends before it starts";
    for (size_t i = 0; i < iv->narenas; i++) {
        const prof_arena_row_t *r = &iv->arenas[i];
        if (r->id == 0 || r->id > TM_MAX_ARENAS ||
            (i > 0 && r->id <= iv->arenas[i - 1].id))
            return "arena ids not ascending in 1..TM_MAX_ARENAS";
        if (pw_kind_name(r->kind) == NULL ||
            pw_mode_name((int)r->placement.mode) == NULL)
            return "arena with an unknown kind or placement mode";
    }
    for (size_t i = 0; i < iv->nresidency; i++) {
        const prof_residency_row_t *r = &iv->residency[i];
        const prof_residency_row_t *p = &iv->residency[i > 0 ? i - 1 : 0];
        if (r->arena == 0 || r->arena > TM_MAX_ARENAS ||
            r->node >= TM_MAX_NODES ||
            (i > 0 && (r->arena < p->arena ||
                       (r->arena == p->arena && r->node <= p->node))))
            return "residency rows not ascending by (arena, node)";
    }
    for (size_t i = 0; i < iv->nsites; i++) {
        const prof_site_row_t *r = &iv->sites[i];
        if ((i > 0 && r->index <= iv->sites[i - 1].index) ||
            r->arena > TM_MAX_ARENAS || r->explicit_id < -1)
            return "site rows not ascending, or a bad arena or id";
    }
    return NULL;
}

static bool pw_stats_equal(const tm_alloc_stats_t *a,
                           const tm_alloc_stats_t *b)
{
    return a->allocs == b->allocs && a->frees == b->frees &&
           a->bytes == b->bytes && a->live == b->live && a->peak == b->peak;
}

static bool pw_arena_unchanged(const pw_arena_last_t *l,
                               const prof_arena_row_t *r)
{
    return l->written && l->serial == r->serial && r->samples == 0 &&
           !r->resident_valid && l->kind == r->kind && l->owner_site == r->owner_site &&
           l->placement.mode == r->placement.mode &&
           l->placement.nodes == r->placement.nodes &&
           l->mapped == r->mapped && pw_stats_equal(&l->stats, &r->stats);
}

static int pw_arena_row(prof_writer_t *w, const prof_arena_row_t *r)
{
    pw_arena_last_t *l = &w->arenas[r->id];
    if (pw_arena_unchanged(l, r))
        return 0;
    char resident[24] = "-";
    if (r->resident_valid)
        snprintf(resident, sizeof resident, "%" PRIu64, r->resident);
    const tm_alloc_stats_t *s = &r->stats;
    int rc = pw_line(w,
                     "arena %u %s %" PRIu32 " %s 0x%" PRIx64 " %" PRIu64
                     " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                     " %" PRIu64 " %" PRIu64 " %s %" PRIu64 "\n",
                     r->id, pw_kind_name(r->kind), r->owner_site,
                     pw_mode_name((int)r->placement.mode), r->placement.nodes,
                     r->samples, r->mapped, s->allocs, s->frees, s->bytes,
                     s->live, s->peak, resident, r->serial);
    *l = (pw_arena_last_t){.written = true, .serial = r->serial,
                           .kind = r->kind,
                           .owner_site = r->owner_site,
                           .placement = r->placement, .mapped = r->mapped,
                           .stats = r->stats};
    return rc;
}

/* Make room for site index `index` in the last-written table. */
static int pw_sites_reserve(prof_writer_t *w, uint32_t index)
{
    if (index < w->nsites_cap)
        return 0;
    size_t cap = w->nsites_cap ? w->nsites_cap : PW_SITES_MIN;
    while (cap <= index)
        cap *= 2;
    if (cap > SIZE_MAX / sizeof *w->sites) {
        log_error("profile %s: site index %" PRIu32 " is too large",
                     w->partial, index);
        return -1;
    }
    pw_site_last_t *n = meta_alloc(cap * sizeof *n);
    if (n == NULL) {
        log_error("profile %s: no metadata memory for %zu sites "
                     "(errno %d)", w->partial, cap, errno);
        return -1;
    }
    if (w->sites != NULL) {
        memcpy(n, w->sites, w->nsites_cap * sizeof *n);
        meta_free(w->sites, w->nsites_cap * sizeof *n);
    }
    w->sites = n;
    w->nsites_cap = cap;
    return 0;
}

/* The table has room for r->index (profile_writer_interval reserved it). */
static int pw_site_row(prof_writer_t *w, const prof_site_row_t *r)
{
    pw_site_last_t *l = &w->sites[r->index];
    if (!l->defined || l->key != r->key || l->explicit_id != r->explicit_id) {
        if (pw_line(w, "sitedef %" PRIu32 " 0x%016" PRIx64 " %" PRId32 "\n",
                    r->index, r->key, r->explicit_id) != 0)
            return -1;
        l->defined = true;
        l->written = false; /* a new identity: always write its row */
        l->key = r->key;
        l->explicit_id = r->explicit_id;
    }
    if (l->written && r->samples == 0 && l->arena == r->arena &&
        l->estimated == r->estimated && pw_stats_equal(&l->stats, &r->stats))
        return 0;
    const tm_alloc_stats_t *s = &r->stats;
    int rc = pw_line(w,
                     "site %" PRIu32 " %u %" PRIu64 " %d %" PRIu64 " %" PRIu64
                     " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                     r->index, r->arena, r->samples, r->estimated ? 1 : 0,
                     s->allocs, s->frees, s->bytes, s->live, s->peak);
    l->written = true;
    l->arena = r->arena;
    l->estimated = r->estimated;
    l->stats = r->stats;
    return rc;
}

static int pw_interval_body(prof_writer_t *w, const prof_interval_t *iv)
{
    if (pw_line(w,
                "interval %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                " %" PRIu64 " %" PRIu64 "\n",
                iv->seq, iv->t_start_ns, iv->t_end_ns, iv->samples,
                iv->unattributed, iv->lost) != 0)
        return -1;
    for (size_t i = 0; i < iv->narenas; i++)
        if (pw_arena_row(w, &iv->arenas[i]) != 0)
            return -1;
    for (size_t i = 0; i < iv->nresidency; i++) {
        const prof_residency_row_t *r = &iv->residency[i];
        if (pw_line(w, "resident %u %u %" PRIu64 "\n", r->arena, r->node,
                    r->bytes) != 0)
            return -1;
    }
    for (size_t i = 0; i < iv->nsites; i++)
        if (pw_site_row(w, &iv->sites[i]) != 0)
            return -1;
    if (pw_line(w, "end %" PRIu64 "\n", iv->seq) != 0)
        return -1;
    return pw_flush(w);
}

int profile_writer_interval(prof_writer_t *w, const prof_interval_t *iv)
{
    if (w == NULL || iv == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (w->broken) {
        errno = EIO; /* logged when it broke */
        return -1;
    }
    const char *why = pw_interval_invalid(w, iv);
    if (why != NULL) {
        log_error("profile %s: interval %" PRIu64 " not written: %s",
                     w->partial, iv->seq, why);
        errno = EINVAL;
        return -1;
    }
    /* Room for the highest site index first: running out of memory then
     * refuses the interval instead of tearing it. */
    if (iv->nsites > 0 &&
        pw_sites_reserve(w, iv->sites[iv->nsites - 1].index) != 0) {
        errno = ENOMEM;
        return -1;
    }
    if (pw_interval_body(w, iv) != 0) {
        /* Part of it may be in the file: nothing may follow it. */
        int e = errno;
        w->broken = true;
        errno = e;
        return -1;
    }
    w->last_seq = iv->seq;
    w->nintervals++;
    return 0;
}

/* ---------------------------------------------------------------- finish */

/* The rename is only durable once the directory is on disk too. */
static void pw_sync_dir(const char *path)
{
    char dir[TM_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path + (slash == path)),
                 path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        log_warn("profile %s: fsync of directory %s failed (errno %d)",
                    path, dir, errno);
    if (fd >= 0)
        close(fd);
}

void profile_writer_set_totals(prof_writer_t *w,
                               const prof_sampler_totals_t *t)
{
    if (w == NULL || t == NULL)
        return;
    w->totals = *t;
    w->has_totals = true;
}

/* The sampler_totals line, when the sampler gave totals; 0 or -1. */
static int pw_totals(prof_writer_t *w)
{
    const prof_sampler_totals_t *t = &w->totals;
    if (!w->has_totals)
        return 0;
    return pw_line(w,
                   "sampler_totals %" PRIu64 " %" PRIu64 " %" PRIu64
                   " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                   t->samples, t->no_addr, t->foreign, t->kernel, t->lost,
                   t->throttles);
}

int profile_writer_finish(prof_writer_t *w)
{
    if (w == NULL) {
        errno = EINVAL;
        return -1;
    }
    int rc = -1, e = EIO;
    if (!w->broken && pw_totals(w) == 0 &&
        pw_line(w, "complete %" PRIu64 "\n", w->nintervals) == 0 &&
        pw_flush(w) == 0) {
        if (!pw_fd_ours(w)) {
            e = EBADF;
        } else if (fsync(w->fd) != 0) {
            e = errno;
            log_error("profile %s: fsync of fd %d failed (errno %d)",
                         w->partial, w->fd, e);
        } else if (rename(w->partial, w->path) != 0) {
            e = errno;
            log_error("profile %s: rename to %s failed (errno %d)",
                         w->partial, w->path, e);
        } else {
            pw_sync_dir(w->path);
            rc = 0;
        }
    } else if (!w->broken) {
        e = errno;
    } else if (w->lost) {
        log_info("profile %s: left as it is (its descriptor was lost)",
                    w->partial);
    } else {
        log_warn("profile %s: not finished, an earlier write failed; "
                    "left as it is", w->partial);
    }
    pw_release(w);
    if (rc != 0)
        errno = e;
    return rc;
}

void profile_writer_abandon(prof_writer_t *w)
{
    if (w != NULL)
        pw_release(w); /* the buffer is empty between intervals */
}
