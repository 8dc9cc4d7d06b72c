/*
 * guide.c -- profiles -> guidance: the policy's offline pass.
 *
 * Each profile (one per process, one per MPI rank) gives every site its
 * samples and its peak live bytes.  Sites are merged by what guidance names
 * them by (explicit id, else stack key): samples are summed over profiles,
 * because they only rank sites; bytes are the largest peak of any one
 * profile, because guidance is applied per process and so is capacity.
 * The merged sites become place_items, the placement puts them on tiers,
 * and the result is written as a guidance file (doc/guidance.md).
 * Tool-side code: malloc is fine, nothing runs on the profiling thread.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "policy.h"

/* ------------------------------------------------------------ merging */

/* Sums over sites and ranks saturate (sat_add_u64): each profile's
 * totals fit 64 bits, their sums may not, and a wrapped sum ranks a hot
 * site as cold. */

static int guide_site_cmp(const void *a, const void *b)
{
    const guide_site_t *x = a, *y = b;
    if (x->by_id != y->by_id)
        return x->by_id ? 1 : -1;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* Sort s[0..n) and fold equal selectors (sum bytes and accesses: two
 * indices with one key in one process are both live in it).  New count. */
static size_t guide_fold_within(guide_site_t *s, size_t n)
{
    if (n == 0)
        return 0;
    qsort(s, n, sizeof *s, guide_site_cmp);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        if (guide_site_cmp(&s[out], &s[i]) == 0) {
            s[out].bytes = sat_add_u64(s[out].bytes, s[i].bytes);
            s[out].accesses = sat_add_u64(s[out].accesses, s[i].accesses);
        } else {
            s[++out] = s[i];
        }
    }
    return out + 1;
}

/* Merge the sorted local sites into g's sorted ones: bytes max, accesses
 * summed. */
static int guide_merge_sorted(guide_t *g, const guide_site_t *l, size_t nl)
{
    guide_site_t *m = malloc((g->nsites + nl + 1) * sizeof *m);
    if (m == NULL)
        return -1;
    size_t i = 0, j = 0, n = 0;
    while (i < g->nsites || j < nl) {
        int c = i == g->nsites ? 1
                : j == nl      ? -1
                               : guide_site_cmp(&g->sites[i], &l[j]);
        if (c < 0) {
            m[n++] = g->sites[i++];
        } else if (c > 0) {
            m[n++] = l[j++];
        } else {
            m[n] = g->sites[i++];
            if (l[j].bytes > m[n].bytes)
                m[n].bytes = l[j].bytes;
            m[n].accesses = sat_add_u64(m[n].accesses, l[j++].accesses);
            n++;
        }
    }
    free(g->sites);
    g->sites = m;
    g->nsites = n;
    g->footprint = g->accesses = 0;
    for (size_t k = 0; k < n; k++) {
        g->footprint = sat_add_u64(g->footprint, m[k].bytes);
        g->accesses = sat_add_u64(g->accesses, m[k].accesses);
    }
    return 0;
}

static int site_total_by_index(const void *key, const void *elem)
{
    uint32_t idx = *(const uint32_t *)key;
    const struct prof_site_total *t = elem;
    return idx < t->index ? -1 : idx > t->index;
}

/* The totals entry of an interval's site row, or NULL. */
static const struct prof_site_total *site_total_of(const profile_t *p,
                                                   const prof_site_row_t *r)
{
    return bsearch(&r->index, p->sites, p->nsites, sizeof *p->sites,
                   site_total_by_index);
}

/* Samples per site total (parallel to p->sites) from intervals
 * first..last only. */
static void guide_range_samples(const profile_t *p, uint64_t first,
                                uint64_t last, uint64_t *samples)
{
    for (size_t i = 0; i < p->nintervals; i++) {
        const prof_interval_t *iv = &p->intervals[i];
        if (iv->seq < first || iv->seq > last)
            continue;
        for (size_t k = 0; k < iv->nsites; k++) {
            const struct prof_site_total *t = site_total_of(p, &iv->sites[k]);
            if (t != NULL)
                samples[t - p->sites] = sat_add_u64(
                    samples[t - p->sites], iv->sites[k].samples);
        }
    }
}

/* The most bytes the named sites (not site 0) had live at once, at the
 * end of an interval in first..last.  A site without a row in an interval
 * is as it was (the profile's omission rule), so the sum runs over all
 * intervals; only those in the range can be the peak. */
static uint64_t guide_live_peak(const profile_t *p, uint64_t first,
                                uint64_t last)
{
    uint64_t *live = calloc(p->nsites + 1, sizeof *live);
    if (live == NULL)
        return 0; /* the sum of peaks stands in */
    uint64_t sum = 0, peak = 0;
    for (size_t i = 0; i < p->nintervals; i++) {
        const prof_interval_t *iv = &p->intervals[i];
        if (iv->seq > last)
            break;
        for (size_t k = 0; k < iv->nsites; k++) {
            const prof_site_row_t *r = &iv->sites[k];
            const struct prof_site_total *t = site_total_of(p, r);
            if (t == NULL || t->index == 0)
                continue;
            uint64_t *cur = &live[t - p->sites];
            /* the sum of what is live now cannot pass 2^64 honestly; a
             * hostile file saturates instead of wrapping */
            sum = sat_add_u64(sum - *cur, r->stats.live);
            *cur = r->stats.live;
        }
        if (iv->seq >= first && sum > peak)
            peak = sum;
    }
    free(live);
    return peak;
}

static void guide_take_header(guide_t *g, const prof_header_t *h)
{
    for (unsigned i = 0; i < h->nnodes && i < TM_MAX_NODES; i++) {
        unsigned t = h->nodes[i].tier;
        if (t >= TM_MAX_NODES)
            continue;
        g->tier_capacity[t] =
            sat_add_u64(g->tier_capacity[t], h->nodes[i].capacity);
        if (t + 1 > g->ntiers_seen)
            g->ntiers_seen = t + 1;
    }
}

int guide_add_profile(guide_t *g, const profile_t *p, uint64_t first,
                      uint64_t last)
{
    bool ranged = first > 1 || last != UINT64_MAX;
    uint64_t *samples = NULL;
    guide_site_t *l = malloc((p->nsites + 1) * sizeof *l);
    if (l == NULL || (ranged && (samples = calloc(p->nsites + 1,
                                                  sizeof *samples)) == NULL)) {
        free(l);
        errno = ENOMEM;
        return -1;
    }
    if (ranged)
        guide_range_samples(p, first, last, samples);
    size_t n = 0;
    for (size_t i = 0; i < p->nsites; i++) {
        const struct prof_site_total *t = &p->sites[i];
        uint64_t s = ranged ? samples[i] : t->samples;
        /* site 0 collects what no site owns: guidance cannot name it */
        if (t->index == 0 || (t->key == 0 && t->explicit_id < 0)) {
            g->unsited = sat_add_u64(g->unsited, s);
            continue;
        }
        l[n].by_id = t->explicit_id >= 0;
        l[n].key = l[n].by_id ? (uint64_t)t->explicit_id : t->key;
        l[n].bytes = t->stats.peak;
        l[n].accesses = s;
        l[n].tier = 0;
        n++;
    }
    free(samples);
    uint64_t peak = guide_live_peak(p, first, last);
    if (peak > g->footprint_peak)
        g->footprint_peak = peak;
    n = guide_fold_within(l, n);
    int rc = guide_merge_sorted(g, l, n);
    free(l);
    if (rc != 0) {
        errno = ENOMEM;
        return -1;
    }
    if (g->nprofiles++ == 0)
        guide_take_header(g, &p->header);
    return 0;
}

void guide_free(guide_t *g)
{
    free(g->sites);
    memset(g, 0, sizeof *g);
}

/* ------------------------------------------------------------ capacities */

static bool guide_capacity_one(const char *s, guide_capacity_t *c)
{
    memset(c, 0, sizeof *c);
    size_t len = strlen(s);
    if (strcmp(s, "auto") == 0) {
        c->kind = GUIDE_CAP_AUTO;
        return true;
    }
    if (len > 1 && s[len - 1] == '%') {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno != 0 || end != s + len - 1 || !(v >= 0.0 && v <= 100.0) ||
            strchr("0123456789.", s[0]) == NULL)
            return false;
        c->kind = GUIDE_CAP_PERCENT;
        c->percent = v;
        return true;
    }
    size_t bytes;
    if (!parse_size(s, &bytes))
        return false;
    c->kind = GUIDE_CAP_BYTES;
    c->bytes = bytes;
    return true;
}

int guide_capacity_parse(const char *spec, guide_capacity_t *out,
                         unsigned max)
{
    char buf[64];
    unsigned n = 0;
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof buf || n == max)
            goto bad;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (!guide_capacity_one(buf, &out[n++]))
            goto bad;
        if (comma == NULL)
            return (int)n;
        p = comma + 1;
    }
bad:
    errno = EINVAL;
    return -1;
}

unsigned guide_capacities(const guide_t *g, const guide_capacity_t *c,
                          unsigned n, uint64_t *cap, unsigned capmax)
{
    unsigned nfast = n;
    bool all_auto = n == 1 && c[0].kind == GUIDE_CAP_AUTO;
    if (all_auto)
        nfast = g->ntiers_seen > 1 ? g->ntiers_seen - 1 : 0;
    if (nfast + 1 > capmax)
        nfast = capmax - 1;
    for (unsigned i = 0; i < nfast; i++) {
        const guide_capacity_t *ci = all_auto ? &c[0] : &c[i];
        switch (ci->kind) {
        case GUIDE_CAP_BYTES:
            cap[i] = ci->bytes;
            break;
        case GUIDE_CAP_PERCENT: {
            /* a footprint near 2^64 rounds up to 2^64 as a double, which
             * does not convert back */
            uint64_t of = g->footprint_peak ? g->footprint_peak
                                            : g->footprint;
            double c = floor((double)of * ci->percent / 100.0);
            cap[i] = c >= 0x1p64 ? UINT64_MAX : (uint64_t)c;
            break;
        }
        case GUIDE_CAP_AUTO:
            if (i >= g->ntiers_seen)
                log_warn("guide: capacity auto for tier %u, but the "
                            "profile has %u tiers: capacity 0",
                            i, g->ntiers_seen);
            cap[i] = i < TM_MAX_NODES ? g->tier_capacity[i] : 0;
            break;
        }
    }
    cap[nfast] = UINT64_MAX;
    return nfast + 1;
}

/* ------------------------------------------------------------ placement */

double guide_place(guide_t *g, place_policy_t policy, const uint64_t *cap,
                   unsigned ntiers, const place_limits_t *limits,
                   bool *exact)
{
    if (exact != NULL)
        *exact = true;
    g->approximate = false;
    g->placed_by = policy;
    if (ntiers <= 1 || g->nsites == 0) {
        /* one tier: it takes everything */
        for (size_t i = 0; i < g->nsites; i++)
            g->sites[i].tier = 0;
        return ntiers == 0 ? (errno = EINVAL, -1.0) : (double)g->accesses;
    }
    place_item_t *items = malloc(g->nsites * sizeof *items);
    unsigned *tier_of = malloc(g->nsites * sizeof *tier_of);
    double r = -1.0;
    if (items == NULL || tier_of == NULL) {
        errno = ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < g->nsites; i++) {
        items[i].key = g->sites[i].key;
        items[i].bytes = g->sites[i].bytes;
        items[i].accesses = (double)g->sites[i].accesses;
    }
    bool ex = true;
    r = place_items(policy, items, g->nsites, cap, ntiers, limits, tier_of,
                    &ex);
    if (r >= 0)
        for (size_t i = 0; i < g->nsites; i++)
            g->sites[i].tier = tier_of[i];
    g->approximate = r >= 0 && !ex;
    if (g->approximate)
        log_warn("guide: %s on %zu sites went past its bounds: the "
                    "placement is approximate", place_policy_name(policy),
                    g->nsites);
    if (exact != NULL)
        *exact = ex;
out:
    free(items);
    free(tier_of);
    return r;
}

/* ------------------------------------------------------------ output */

/* Tier first, then hottest first: the file reads as a ranking. */
static int guide_line_cmp(const void *a, const void *b)
{
    const guide_site_t *x = *(guide_site_t *const *)a;
    const guide_site_t *y = *(guide_site_t *const *)b;
    if (x->tier != y->tier)
        return x->tier < y->tier ? -1 : 1;
    if (x->accesses != y->accesses)
        return x->accesses > y->accesses ? -1 : 1;
    return guide_site_cmp(x, y);
}

char *guide_format(const guide_t *g, const char *comment, size_t *len)
{
    size_t cl = comment ? strlen(comment) : 0;
    /* a rule line is < 128 bytes; each comment line gains "# " and "\n";
     * 64 for the first line, 64 for the approximate placement's line */
    size_t size = 128 + 4 * cl + 3 + g->nsites * 128;
    char *buf = malloc(size);
    const guide_site_t **order = malloc((g->nsites + 1) * sizeof *order);
    if (buf == NULL || order == NULL) {
        free(buf);
        free(order);
        errno = ENOMEM;
        return NULL;
    }
    size_t n = 0;
    for (const char *p = comment; p != NULL && *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        n += (size_t)snprintf(buf + n, size - n, "# %.*s\n", (int)l, p);
        p += l + (nl != NULL);
    }
    if (g->approximate)
        n += (size_t)snprintf(buf + n, size - n, "# placement approximate: "
                              "%s went past its bounds\n",
                              place_policy_name(g->placed_by));
    n += (size_t)snprintf(buf + n, size - n, "tiermem-guidance 1\n");
    for (size_t i = 0; i < g->nsites; i++)
        order[i] = &g->sites[i];
    qsort(order, g->nsites, sizeof *order, guide_line_cmp);
    for (size_t i = 0; i < g->nsites; i++) {
        const guide_site_t *s = order[i];
        if (s->by_id)
            n += (size_t)snprintf(buf + n, size - n, "id %" PRIu64, s->key);
        else
            n += (size_t)snprintf(buf + n, size - n, "key 0x%016" PRIx64,
                                  s->key);
        n += (size_t)snprintf(buf + n, size - n,
                              " tier %u # %" PRIu64 " samples, %" PRIu64
                              " bytes\n",
                              s->tier, s->accesses, s->bytes);
    }
    free(order);
    if (len != NULL)
        *len = n;
    return buf;
}
