/*
 * tiermem_guide.c -- the `tiermem-guide` tool: profiles -> a guidance file.
 *
 *   tiermem-guide [--policy hotset|thermos|knapsack] [--capacity C[,C...]]
 *                 [--intervals FIRST-LAST] [-o FILE] PROFILE...
 *
 * Reads the profiles (one per process or MPI rank), merges their sites,
 * places them on tiers within the fast tiers' capacities and writes the
 * guidance (stdout without -o or with -o -); a summary per tier goes to
 * stderr.
 * Exit status: 0; 1 if a profile could not be read or the output not
 * written (no guidance is written then); 2 for bad usage.  A tool, not
 * library code: stdio and malloc are fine here.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "policy.h"

#define GUIDE_MAX_TIERS 64   /* the guidance format's tiers: 0..63 */

typedef struct guide_opts {
    place_policy_t policy;
    guide_capacity_t cap[GUIDE_MAX_TIERS];
    int ncap;
    uint64_t first, last;
    const char *out;
} guide_opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tiermem-guide [--policy hotset|thermos|knapsack] "
            "[--capacity C[,C...]]\n"
            "                     [--intervals FIRST-LAST] [-o FILE] "
            "PROFILE...\n"
            "  --policy P      placement policy (default knapsack)\n"
            "  --capacity C    per fast tier, fastest first: bytes (64M), "
            "N%% of the\n"
            "                  footprint, or auto (the profile's tier size); "
            "default auto\n"
            "  --intervals A-B count samples of intervals A..B only\n"
            "  -o FILE         write the guidance to FILE (default or -: "
            "stdout)\n");
}

static bool parse_range(const char *s, uint64_t *first, uint64_t *last)
{
    char *end;
    errno = 0;
    unsigned long long a = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '-' || s[0] == '-')
        return false;
    const char *b = end + 1;
    unsigned long long z = strtoull(b, &end, 10);
    if (errno != 0 || end == b || *end != '\0' || b[0] == '-' || z < a)
        return false;
    *first = a;
    *last = z;
    return true;
}

/* 0 ok, 2 usage error (reported). */
static int parse_args(int argc, char **argv, guide_opts_t *o)
{
    static const struct option longs[] = {
        {"policy", required_argument, NULL, 'p'},
        {"capacity", required_argument, NULL, 'c'},
        {"intervals", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->policy = PLACE_KNAPSACK;
    o->cap[0].kind = GUIDE_CAP_AUTO;
    o->ncap = 1;
    o->last = UINT64_MAX;
    int c, p;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", longs, NULL)) != -1) {
        switch (c) {
        case 'p':
            if ((p = place_policy_parse(optarg)) < 0) {
                fprintf(stderr, "tiermem-guide: unknown policy '%s'\n",
                        optarg);
                return 2;
            }
            o->policy = (place_policy_t)p;
            break;
        case 'c':
            o->ncap = guide_capacity_parse(optarg, o->cap,
                                           GUIDE_MAX_TIERS - 1);
            if (o->ncap < 0) {
                fprintf(stderr, "tiermem-guide: bad capacity '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'i':
            if (!parse_range(optarg, &o->first, &o->last)) {
                fprintf(stderr, "tiermem-guide: bad interval range '%s' "
                                "(FIRST-LAST)\n", optarg);
                return 2;
            }
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind == argc) {
        usage(stderr);
        return 2;
    }
    return 0;
}

static double percent(uint64_t part, uint64_t all)
{
    return all ? 100.0 * (double)part / (double)all : 0.0;
}

static void print_summary(const guide_t *g, const guide_opts_t *o,
                          const uint64_t *cap, unsigned ntiers, bool exact)
{
    char peak[64] = "unknown";
    if (g->footprint_peak != 0)
        snprintf(peak, sizeof peak, "%" PRIu64 " bytes", g->footprint_peak);
    fprintf(stderr,
            "tiermem-guide: %u profile%s, %zu sites, footprint %s live at "
            "peak (%" PRIu64 " bytes summed over the sites' own peaks), %"
            PRIu64 " samples (+%" PRIu64 " unsited), policy %s%s\n",
            g->nprofiles, g->nprofiles == 1 ? "" : "s", g->nsites, peak,
            g->footprint, g->accesses, g->unsited,
            place_policy_name(o->policy),
            !exact ? " (past its bounds: approximate)" : "");
    for (unsigned t = 0; t < ntiers; t++) {
        size_t sites = 0;
        uint64_t bytes = 0, acc = 0;
        for (size_t i = 0; i < g->nsites; i++)
            if (g->sites[i].tier == t) {
                sites++;
                /* saturating: a hostile profile's sums pass 2^64 */
                bytes = sat_add_u64(bytes, g->sites[i].bytes);
                acc = sat_add_u64(acc, g->sites[i].accesses);
            }
        char capbuf[32] = "the rest";
        if (t + 1 < ntiers)
            snprintf(capbuf, sizeof capbuf, "%" PRIu64, cap[t]);
        fprintf(stderr,
                "  tier %u: capacity %s, %zu sites, %" PRIu64
                " bytes, %.2f%% of accesses\n",
                t, capbuf, sites, bytes, percent(acc, g->accesses));
    }
}

/* ------------------------------------------------------------ the output
 *
 * The output may go into a shared directory (/tmp), and the tool often runs
 * as root: a regular file is written to an exclusively created temporary
 * beside it (unpredictable name, never through a link) and renamed over
 * the final name, which replaces a planted link instead of following it.
 * A FIFO or character device named directly (or through a link owned by us
 * or by root: /dev/stdout, /dev/fd/N) is written in place.  Mode 0666
 * before the umask, as any tool's output file. */

static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n == 0) { /* no progress, and none to come: not a loop */
            errno = EIO;
            return -1;
        }
        if (n > 0) {
            text += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

/* Write a regular file at path: temporary, fsync, rename.  0 or 1. */
static int write_replacing(const char *path, const char *text, size_t len)
{
    size_t tmp_size = strlen(path) + 32;
    char *tmp = malloc(tmp_size);
    int fd = tmp ? file_create_temp(path, tmp, tmp_size, 0666) : -1;
    if (fd < 0) {
        fprintf(stderr, "tiermem-guide: cannot create a temporary file "
                        "beside %s: %s\n", path, strerror(errno));
        free(tmp);
        return 1;
    }
    const char *failed = write_all(fd, text, len) != 0 ? "write"
                         : fsync(fd) != 0              ? "fsync"
                                                       : NULL;
    int e = errno;
    if (close(fd) != 0 && failed == NULL) {
        failed = "close";
        e = errno;
    }
    if (failed == NULL && rename(tmp, path) != 0) {
        failed = "rename";
        e = errno;
    }
    if (failed != NULL) {
        fprintf(stderr, "tiermem-guide: writing %s (%s of %s): %s\n", path,
                failed, tmp, strerror(e));
        (void)unlink(tmp);
    }
    free(tmp);
    return failed ? 1 : 0;
}

/* Write into an existing FIFO or character device.  Opened non-blocking,
 * so a FIFO without a reader fails (ENXIO) instead of waiting forever;
 * then blocking again, so that writes wait for a slow reader. */
static int write_in_place(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    const char *why = NULL;
    if (fd < 0)
        why = errno == ENXIO ? "a FIFO without a reader" : strerror(errno);
    else if (fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
        why = "changed while it was opened";
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 ||
             write_all(fd, text, len) != 0)
        why = strerror(errno);
    if (fd >= 0 && close(fd) != 0 && why == NULL)
        why = strerror(errno);
    if (why != NULL) {
        fprintf(stderr, "tiermem-guide: writing %s: %s\n", path, why);
        return 1;
    }
    return 0;
}

/* path is a symbolic link (lst): follow it only if it is ours or root's
 * (/dev/stdout, /dev/fd/N, a link of our own); one planted by another user
 * is refused, never written through. */
static int write_through_link(const char *path, const struct stat *lst,
                              const char *text, size_t len)
{
    if (lst->st_uid != geteuid() && lst->st_uid != 0) {
        fprintf(stderr, "tiermem-guide: %s is a symbolic link owned by uid "
                        "%ld; not followed\n", path, (long)lst->st_uid);
        return 1;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "tiermem-guide: %s is a symbolic link to nothing "
                        "(%s)\n", path, strerror(errno));
        return 1;
    }
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))
        return write_in_place(path, text, len); /* /dev/fd/N: no real path */
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "tiermem-guide: %s leads to %s\n", path,
                file_kind(st.st_mode));
        return 1;
    }
    char *real = realpath(path, NULL); /* the file itself, no link left */
    if (real == NULL) {
        fprintf(stderr, "tiermem-guide: %s: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = write_replacing(real, text, len);
    free(real);
    return rc;
}

static int write_output(const char *path, const char *text, size_t len)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
            fprintf(stderr, "tiermem-guide: writing stdout: %s\n",
                    strerror(errno));
            return 1;
        }
        return 0;
    }
    struct stat lst;
    if (lstat(path, &lst) != 0) {
        if (errno == ENOENT)
            return write_replacing(path, text, len);
        fprintf(stderr, "tiermem-guide: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (S_ISREG(lst.st_mode))
        return write_replacing(path, text, len);
    if (S_ISLNK(lst.st_mode))
        return write_through_link(path, &lst, text, len);
    if (S_ISFIFO(lst.st_mode) || S_ISCHR(lst.st_mode))
        return write_in_place(path, text, len);
    fprintf(stderr, "tiermem-guide: %s is %s\n", path,
            file_kind(lst.st_mode));
    return 1;
}

/* The guidance file's opening comment: how it was made. */
static void make_comment(char *buf, size_t size, const guide_opts_t *o,
                         int argc, char **argv)
{
    size_t n = (size_t)snprintf(buf, size, "made by tiermem-guide, policy %s,"
                                " from", place_policy_name(o->policy));
    for (int i = optind; i < argc && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, " %s", argv[i]);
}

int main(int argc, char **argv)
{
    guide_opts_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    log_configure(TM_LOG_WARN, 2);
    guide_t g;
    memset(&g, 0, sizeof g);
    for (int i = optind; i < argc; i++) {
        profile_t p;
        if (profile_read(argv[i], &p) != 0) {
            fprintf(stderr, "tiermem-guide: cannot read profile %s: %s\n",
                    argv[i], strerror(errno));
            rc = 1;
            continue;
        }
        if (guide_add_profile(&g, &p, o.first, o.last) != 0) {
            fprintf(stderr, "tiermem-guide: %s: %s\n", argv[i],
                    strerror(errno));
            rc = 1;
        }
        profile_free(&p);
    }
    if (rc != 0) {
        guide_free(&g);
        return rc;
    }
    uint64_t cap[GUIDE_MAX_TIERS];
    unsigned ntiers = guide_capacities(&g, o.cap, (unsigned)o.ncap, cap,
                                       GUIDE_MAX_TIERS);
    bool one_tier_split = g.ntiers_seen == 1 && ntiers > 1;
    if (ntiers == 1)
        fprintf(stderr, "tiermem-guide: one tier only: every site goes to "
                        "tier 0 (give --capacity for the fast tiers)\n");
    else if (one_tier_split)
        fprintf(stderr, "tiermem-guide: the profile%s came from a machine "
                        "with one tier: --capacity splits the sites into %u "
                        "tiers for a machine that has them; on a one-tier "
                        "machine every tier named means its only tier\n",
                g.nprofiles == 1 ? "" : "s", ntiers);
    place_limits_t limits = {.max_cells = (uint64_t)1 << 26,
                             .max_seconds = 10.0};
    bool exact = true;
    if (guide_place(&g, o.policy, cap, ntiers, &limits, &exact) < 0) {
        fprintf(stderr, "tiermem-guide: placement failed: %s\n",
                strerror(errno));
        guide_free(&g);
        return 1;
    }
    print_summary(&g, &o, cap, ntiers, exact);
    char comment[1024];
    make_comment(comment, sizeof comment, &o, argc, argv);
    if (one_tier_split) {
        size_t cl = strlen(comment);
        snprintf(comment + cl, sizeof comment - cl,
                 "\nthe profiles had one tier: on a machine with one tier "
                 "every rule means that tier (a tier past the last is the "
                 "slowest there is)");
    }
    size_t len;
    char *text = guide_format(&g, comment, &len);
    rc = text ? write_output(o.out, text, len) : 1;
    free(text);
    guide_free(&g);
    return rc;
}
