/*
 * tiermem_profile.c -- the `tiermem-profile` tool: a summary of profiles.
 *
 *   tiermem-profile [--top N] [--intervals] FILE...
 *
 * For each file: the header (program, pid or rank, sampler, intervals,
 * complete or not), the top sites by samples, and the arenas with their
 * samples, peak mapped bytes and resident bytes per node as last measured.
 * Exit status: 0, 1 if a file could not be read, 2 for bad usage.  A tool,
 * not library code: stdio and malloc are fine here.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiler.h"

typedef struct tool_opts {
    unsigned long top;
    bool intervals;
} tool_opts_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: tiermem-profile [--top N] [--intervals] FILE...\n"
               "  --top N      show the N sites and arenas with most samples "
               "(default 10)\n"
               "  --intervals  one line per interval\n");
}

static double percent(uint64_t part, uint64_t all)
{
    return all ? 100.0 * (double)part / (double)all : 0.0;
}

/* The reader refuses a profile whose intervals' samples add up past 2^64
 * - 1; the sum saturates all the same, so no input prints a wrapped one. */
static uint64_t total_samples(const profile_t *p)
{
    uint64_t n = 0;
    for (size_t i = 0; i < p->nintervals; i++)
        n = sat_add_u64(n, p->intervals[i].samples);
    return n;
}

/* A header field from the file, control characters shown as '?': a
 * hostile profile must not drive the terminal. */
static const char *printable(const char *src)
{
    static char out[256];
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < sizeof out; i++)
        out[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
    out[i] = '\0';
    return out;
}

static void print_header(const char *path, const profile_t *p)
{
    const prof_header_t *h = &p->header;
    printf("%s\n", path);
    printf("  exe %s  ", h->exe);
    if (h->rank >= 0)
        printf("rank %d pid %ld\n", h->rank, h->pid);
    else
        printf("pid %ld\n", h->pid);
    printf("  sampler %s  interval %.3f ms  halflife %g intervals\n",
           h->sampler[0] ? h->sampler : "-", (double)h->interval_ns / 1e6,
           h->halflife);
    if (h->sampler_detail[0] != '\0')
        printf("  sampler detail: %s\n", printable(h->sampler_detail));
    printf("  intervals %zu  %s\n", p->nintervals,
           p->complete ? "complete" : "incomplete (no trailer: the run did "
                                      "not finish)");
    for (unsigned i = 0; i < h->nnodes; i++)
        printf("  node %u tier %u capacity %" PRIu64 "\n", h->nodes[i].id,
               h->nodes[i].tier, h->nodes[i].capacity);
    printf("  samples %" PRIu64 "\n", total_samples(p));
    const prof_sampler_totals_t *t = &p->sampler_totals;
    if (p->has_sampler_totals)
        printf("  sampler totals: %" PRIu64 " delivered, %" PRIu64
               " without an address, %" PRIu64 " of other processes, %"
               PRIu64 " kernel, %" PRIu64 " lost, %" PRIu64 " throttles\n",
               t->samples, t->no_addr, t->foreign, t->kernel, t->lost,
               t->throttles);
}

static int by_site_samples(const void *a, const void *b)
{
    const struct prof_site_total *x = a, *y = b;
    if (x->samples != y->samples)
        return x->samples < y->samples ? 1 : -1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_arena_samples(const void *a, const void *b)
{
    const struct prof_arena_total *x = a, *y = b;
    if (x->samples != y->samples)
        return x->samples < y->samples ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int print_sites(const profile_t *p, unsigned long top)
{
    struct prof_site_total *s = malloc((p->nsites + 1) * sizeof *s);
    if (s == NULL)
        return -1;
    memcpy(s, p->sites, p->nsites * sizeof *s);
    qsort(s, p->nsites, sizeof *s, by_site_samples);
    uint64_t all = total_samples(p);
    printf("  top sites (%zu in all)\n", p->nsites);
    printf("    %-18s %8s %12s %7s %14s %6s\n", "key", "id", "samples", "%",
           "peak bytes", "arena");
    for (size_t i = 0; i < p->nsites && i < top; i++)
        printf("    0x%016" PRIx64 " %8" PRId32 " %12" PRIu64 " %6.2f%% "
               "%14" PRIu64 " %6u\n",
               s[i].key, s[i].explicit_id, s[i].samples,
               percent(s[i].samples, all), s[i].stats.peak, s[i].arena);
    free(s);
    return 0;
}

/* Did any interval measure the residency of arena id? */
static bool resident_measured(const profile_t *p, unsigned id)
{
    for (size_t i = 0; i < p->nintervals; i++)
        for (size_t k = 0; k < p->intervals[i].narenas; k++)
            if (p->intervals[i].arenas[k].id == id &&
                p->intervals[i].arenas[k].resident_valid)
                return true;
    return false;
}

/* The residency rows of the last interval that measured arena id. */
static void print_residency(const profile_t *p, unsigned id)
{
    for (size_t i = p->nintervals; i-- > 0;) {
        const prof_interval_t *iv = &p->intervals[i];
        bool any = false;
        for (size_t k = 0; k < iv->nresidency; k++)
            if (iv->residency[k].arena == id) {
                printf("%s%u:%" PRIu64, any ? " " : "  node ",
                       iv->residency[k].node, iv->residency[k].bytes);
                any = true;
            }
        for (size_t k = 0; !any && k < iv->narenas; k++)
            any = iv->arenas[k].id == id && iv->arenas[k].resident_valid;
        if (any)
            return; /* measured here (maybe nothing resident) */
    }
}

static int print_arenas(const profile_t *p, unsigned long top)
{
    static const char *const kinds[] = {"user", "site", "shared"};
    struct prof_arena_total *a = malloc((p->narenas + 1) * sizeof *a);
    if (a == NULL)
        return -1;
    memcpy(a, p->arenas, p->narenas * sizeof *a);
    qsort(a, p->narenas, sizeof *a, by_arena_samples);
    uint64_t all = total_samples(p);
    printf("  arenas (%zu in all)\n", p->narenas);
    printf("    %5s %-6s %12s %7s %14s %14s\n", "arena", "kind", "samples",
           "%", "peak mapped", "resident");
    for (size_t i = 0; i < p->narenas && i < top; i++) {
        char resident[24] = "-";
        if (resident_measured(p, a[i].id))
            snprintf(resident, sizeof resident, "%" PRIu64,
                     a[i].last_resident);
        printf("    %5u %-6s %12" PRIu64 " %6.2f%% %14" PRIu64 " %14s",
               a[i].id, a[i].kind < 3 ? kinds[a[i].kind] : "?", a[i].samples,
               percent(a[i].samples, all), a[i].peak_mapped, resident);
        print_residency(p, a[i].id);
        putchar('\n');
    }
    free(a);
    return 0;
}

static void print_intervals(const profile_t *p)
{
    printf("  %8s %12s %12s %10s %10s\n", "seq", "t_end ms", "samples",
           "top arena", "samples");
    for (size_t i = 0; i < p->nintervals; i++) {
        const prof_interval_t *iv = &p->intervals[i];
        const prof_arena_row_t *top = NULL;
        for (size_t k = 0; k < iv->narenas; k++)
            if (iv->arenas[k].samples > 0 &&
                (top == NULL || iv->arenas[k].samples > top->samples))
                top = &iv->arenas[k];
        printf("  %8" PRIu64 " %12.3f %12" PRIu64, iv->seq,
               (double)iv->t_end_ns / 1e6, iv->samples);
        if (top != NULL)
            printf(" %10u %10" PRIu64 "\n", top->id, top->samples);
        else
            printf(" %10s %10s\n", "-", "-");
    }
}

static int summarize(const char *path, const tool_opts_t *o)
{
    profile_t p;
    if (profile_read(path, &p) != 0) {
        fprintf(stderr, "tiermem-profile: %s: cannot read it (%s)\n", path,
                strerror(errno));
        return 1;
    }
    print_header(path, &p);
    int rc = print_sites(&p, o->top) | print_arenas(&p, o->top);
    if (o->intervals)
        print_intervals(&p);
    profile_free(&p);
    if (rc != 0)
        fprintf(stderr, "tiermem-profile: %s: out of memory\n", path);
    return rc != 0;
}

int main(int argc, char **argv)
{
    tool_opts_t o = {.top = 10};
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        char *end;
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--intervals") == 0) {
            o.intervals = true;
        } else if (strcmp(argv[i], "--top") == 0 && i + 1 < argc) {
            errno = 0;
            o.top = strtoul(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || argv[i][0] == '\0' ||
                argv[i][0] == '-') {
                fprintf(stderr, "tiermem-profile: bad --top \"%s\"\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tiermem-profile: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i == argc) {
        usage(stderr);
        return 2;
    }
    int status = 0;
    for (bool first = true; i < argc; i++, first = false) {
        if (!first)
            putchar('\n');
        status |= summarize(argv[i], &o);
    }
    return status;
}
