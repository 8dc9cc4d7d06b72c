/*
 * placement_ref.h -- the former thermos, kept as the reference for
 * test_placement.c: a rescan of the chosen list per item that does not
 * fit, O(n^2).  policy/place_thermos.c must decide exactly as it does.
 * Two tiers only; the reference's own sort, fill and "never worse than
 * hotset", as policy/placement.c had them.
 */
#ifndef TM_PLACEMENT_REF_H
#define TM_PLACEMENT_REF_H

#include <stdio.h>
#include <stdlib.h>

#include "policy.h"

typedef struct ref_ent {
    size_t idx;
    uint64_t bytes;
    double acc, density;
} ref_ent_t;

static int ref_ent_cmp(const void *a, const void *b)
{
    const ref_ent_t *x = a, *y = b;
    if (x->density != y->density)
        return x->density > y->density ? -1 : 1;
    if (x->acc != y->acc)
        return x->acc > y->acc ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static void ref_fill(const ref_ent_t *e, size_t m, uint64_t cap,
                     uint64_t used, unsigned char *pick)
{
    for (size_t k = 0; k < m; k++)
        if (!pick[k] && e[k].bytes <= cap - used) {
            pick[k] = 1;
            used += e[k].bytes;
        }
}

static double ref_sum(const ref_ent_t *e, size_t m, const unsigned char *pick)
{
    double s = 0;
    for (size_t k = 0; k < m; k++)
        if (pick[k])
            s += e[k].acc;
    return s;
}

static bool ref_displace(const ref_ent_t *e, size_t k, uint64_t cap,
                         uint64_t *used, size_t *sel, size_t *ns,
                         size_t *evict)
{
    uint64_t need = e[k].bytes - (cap - *used), freed = 0;
    double lost = 0;
    size_t ne = 0;
    for (size_t j = *ns; j-- > 0 && freed < need;) {
        const ref_ent_t *s = &e[sel[j]];
        if (s->bytes >= e[k].bytes)
            continue;
        freed += s->bytes;
        lost += s->acc;
        evict[ne++] = j;
        if (lost >= e[k].acc)
            return false;
    }
    if (freed < need)
        return false;
    size_t w = 0, x = ne;
    for (size_t j = 0; j < *ns; j++) {
        if (x > 0 && evict[x - 1] == j) {
            x--;
            continue;
        }
        sel[w++] = sel[j];
    }
    *ns = w;
    *used -= freed;
    sel[(*ns)++] = k;
    *used += e[k].bytes;
    return true;
}

/* Two tiers, the former thermos on tier 0 (never worse than hotset). */
static double ref_thermos(const place_item_t *it, size_t n, uint64_t cap,
                          unsigned *tier)
{
    ref_ent_t *e = malloc((n + 1) * sizeof(*e));
    size_t *sel = malloc(2 * (n + 1) * sizeof(*sel));
    unsigned char *pick = calloc(n + 1, 1), *hot = calloc(n + 1, 1);
    size_t m = 0, ns = 0;
    double free_acc = 0;
    if (!e || !sel || !pick || !hot) {
        fprintf(stderr, "ref_thermos: out of memory for %zu items\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        tier[i] = 1;
        if (it[i].bytes == 0) {
            tier[i] = 0;
            free_acc += it[i].accesses;
        } else if (it[i].accesses > 0 && it[i].bytes <= cap) {
            e[m++] = (ref_ent_t){i, it[i].bytes, it[i].accesses,
                                 it[i].accesses / (double)it[i].bytes};
        }
    }
    qsort(e, m, sizeof(*e), ref_ent_cmp);
    uint64_t used = 0;
    for (size_t k = 0; k < m; k++) {
        if (e[k].bytes <= cap - used) {
            sel[ns++] = k;
            used += e[k].bytes;
        } else if (e[k].bytes <= cap) {
            ref_displace(e, k, cap, &used, sel, &ns, sel + n + 1);
        }
    }
    for (size_t j = 0; j < ns; j++)
        pick[sel[j]] = 1;
    ref_fill(e, m, cap, used, pick);
    ref_fill(e, m, cap, 0, hot);
    double got = ref_sum(e, m, pick), h = ref_sum(e, m, hot);
    const unsigned char *best = h > got ? hot : pick;
    for (size_t k = 0; k < m; k++)
        if (best[k])
            tier[e[k].idx] = 0;
    free(e);
    free(sel);
    free(pick);
    free(hot);
    return (h > got ? h : got) + free_acc;
}

#endif /* TM_PLACEMENT_REF_H */
