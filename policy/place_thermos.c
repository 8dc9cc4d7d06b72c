/*
 * place_thermos.c -- thermos's displacement without rescans.
 *
 * thermos takes candidates in density order; one that does not fit may
 * evict chosen candidates strictly smaller than itself, coldest per byte
 * first (the chosen ones latest in density order), until they free enough
 * room, if together they have strictly fewer accesses than it.  Rescanning
 * the chosen list for every candidate that does not fit is O(n^2): on a
 * million equal sizes every scan finds nothing smaller and still walks the
 * whole list.
 *
 * Here the chosen set is a segment tree over density positions.  Each node
 * keeps, over its chosen candidates, the smallest and largest size, the
 * bytes and the accesses.  The walk from the coldest end skips a node whose
 * smallest size is too big, takes a node whose largest size is small enough
 * as a whole while it does not yet free enough, and descends otherwise.
 * Two checks come first: a Fenwick tree over size ranks says whether the
 * smaller chosen candidates can free enough at all, and the coldest of them
 * bounds from below the accesses any eviction would lose.  Evictions are
 * one descent each, and a candidate is evicted at most once.
 *
 * The decision is the same as the sequential scan's: the bytes freed are
 * integers (exact), and the accesses lost are compared with a margin far
 * above the rounding of either summation order; within the margin they are
 * summed again in the scan's own order.  A walk can still cost more than a
 * descent when small and large chosen sizes interleave, so the total work
 * is bounded: past the bound, the remaining candidates only go in if they
 * fit (hotset's rule) and the caller is told.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "place_internal.h"

/* Relative margin on accesses lost: summation error is below n * 2^-53
 * (~1e-10 for a million items) in either order. */
#define THERMOS_MARGIN 1e-8
/* Node visits allowed per candidate and tree level, plus a constant: far
 * above what any walk needs unless sizes interleave adversarially. */
#define THERMOS_WORK_PER_LEVEL 16
#define THERMOS_WORK_BASE (UINT64_C(1) << 22)

typedef struct thermos_node {
    uint64_t minb;   /* smallest chosen size; UINT64_MAX when none */
    uint64_t maxb;   /* largest chosen size; 0 when none */
    uint64_t sumb;   /* chosen bytes (<= cap: never overflows) */
    double suma;     /* chosen accesses */
} thermos_node_t;

typedef struct thermos {
    const place_ent_t *ents;
    size_t m, leaves;        /* leaves: a power of two >= m */
    thermos_node_t *node;    /* heap order, root 1 */
    uint64_t *by_size;       /* sizes ascending (for ranks) */
    size_t *rank;            /* position -> its rank by size (0-based) */
    uint64_t *fen;           /* Fenwick over ranks: chosen bytes, 1-based */
    uint64_t work, budget;   /* node visits so far, and the bound */
} thermos_t;

/* One walk: the coldest chosen candidates smaller than bk, until `need`. */
typedef struct thermos_walk {
    uint64_t bk, need, freed;
    double acck, lost;
    size_t cross;            /* the position where freed reached need */
} thermos_walk_t;

static const thermos_node_t thermos_empty = {UINT64_MAX, 0, 0, 0};

static int thermos_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The first rank whose size is >= b: chosen ranks below it are smaller. */
static size_t thermos_rank_below(const thermos_t *t, uint64_t b)
{
    size_t lo = 0, hi = t->m;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->by_size[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void thermos_free(thermos_t *t)
{
    free(t->node);
    free(t->by_size);
    free(t->rank);
    free(t->fen);
}

static int thermos_init(thermos_t *t, const place_ent_t *ents, size_t m)
{
    memset(t, 0, sizeof(*t));
    t->ents = ents;
    t->m = m;
    t->leaves = 1;
    unsigned levels = 1;
    while (t->leaves < m) {
        t->leaves *= 2;
        levels++;
    }
    t->node = malloc(2 * t->leaves * sizeof(*t->node));
    t->by_size = malloc((m ? m : 1) * sizeof(*t->by_size));
    t->rank = malloc((m ? m : 1) * sizeof(*t->rank));
    t->fen = calloc(m + 1, sizeof(*t->fen));
    if (!t->node || !t->by_size || !t->rank || !t->fen) {
        log_warn("placement: thermos tree for %zu items: %s", m,
                    strerror(errno));
        thermos_free(t);
        return -1;
    }
    for (size_t i = 0; i < 2 * t->leaves; i++)
        t->node[i] = thermos_empty;
    for (size_t k = 0; k < m; k++)
        t->by_size[k] = ents[k].bytes;
    qsort(t->by_size, m, sizeof(*t->by_size), thermos_u64_cmp);
    /* Equal sizes share ranks by order of appearance: any distinct rank
     * within the run of equal sizes will do, the sums only ask "< b". */
    size_t *next = calloc(m ? m : 1, sizeof(*next));
    if (!next) {
        thermos_free(t);
        return -1;
    }
    for (size_t k = 0; k < m; k++) {
        size_t r = thermos_rank_below(t, ents[k].bytes);
        t->rank[k] = r + next[r]++;
    }
    free(next);
    t->budget = THERMOS_WORK_BASE +
                (uint64_t)THERMOS_WORK_PER_LEVEL * levels * m;
    return 0;
}

static void thermos_fen_add(thermos_t *t, size_t rank, uint64_t delta)
{
    for (size_t i = rank + 1; i <= t->m; i += i & -i)
        t->fen[i] += delta;   /* modular: -x is a removal, sums stay exact */
}

/* Chosen bytes of ranks [0, r). */
static uint64_t thermos_fen_sum(const thermos_t *t, size_t r)
{
    uint64_t s = 0;
    for (size_t i = r; i > 0; i -= i & -i)
        s += t->fen[i];
    return s;
}

/* Choose (or drop) the candidate at position p. */
static void thermos_set(thermos_t *t, size_t p, bool chosen)
{
    const place_ent_t *e = &t->ents[p];
    size_t i = t->leaves + p;
    t->node[i] = chosen ? (thermos_node_t){e->bytes, e->bytes, e->bytes,
                                           e->acc}
                        : thermos_empty;
    thermos_fen_add(t, t->rank[p], chosen ? e->bytes : (uint64_t)0 - e->bytes);
    for (i /= 2; i >= 1; i /= 2) {
        const thermos_node_t *l = &t->node[2 * i], *r = &t->node[2 * i + 1];
        thermos_node_t *x = &t->node[i];
        x->minb = l->minb < r->minb ? l->minb : r->minb;
        x->maxb = l->maxb > r->maxb ? l->maxb : r->maxb;
        x->sumb = l->sumb + r->sumb;
        x->suma = l->suma + r->suma;
    }
}

/* The latest chosen position before `before` with a size below bk, or
 * SIZE_MAX.  One descent, right subtree first. */
static size_t thermos_last_below(thermos_t *t, size_t node, size_t lo,
                                 size_t hi, uint64_t bk, size_t before)
{
    t->work++;
    if (lo >= before || t->node[node].minb >= bk)
        return SIZE_MAX;
    if (hi - lo == 1)
        return lo;
    size_t mid = lo + (hi - lo) / 2;
    size_t p = thermos_last_below(t, 2 * node + 1, mid, hi, bk, before);
    return p != SIZE_MAX ? p
                         : thermos_last_below(t, 2 * node, lo, mid, bk,
                                              before);
}

/* Walk the smaller chosen candidates from the coldest end.  1: freed
 * reached need at w->cross; -1: the accesses lost are already surely too
 * many; 0: go on (the subtree gave too little). */
static int thermos_walk(thermos_t *t, size_t node, size_t lo, size_t hi,
                        thermos_walk_t *w)
{
    const thermos_node_t *x = &t->node[node];
    t->work++;
    if (x->minb >= w->bk)
        return 0;   /* nothing chosen here is smaller */
    if (hi - lo == 1) {
        w->freed += x->sumb;
        w->lost += x->suma;
        if (w->freed < w->need)
            return 0;
        w->cross = lo;
        return 1;
    }
    if (x->maxb < w->bk && x->sumb < w->need - w->freed) {
        w->freed += x->sumb;   /* all of it, and still not enough */
        w->lost += x->suma;
        return w->lost > w->acck * (1 + THERMOS_MARGIN) ? -1 : 0;
    }
    size_t mid = lo + (hi - lo) / 2;
    int r = thermos_walk(t, 2 * node + 1, mid, hi, w);
    return r ? r : thermos_walk(t, 2 * node, lo, mid, w);
}

/* The accesses lost, summed in the sequential scan's order (coldest
 * first, up to and including the crossing position). */
static double thermos_lost_in_order(thermos_t *t, const thermos_walk_t *w)
{
    double lost = 0;
    size_t p = t->leaves;
    do {
        p = thermos_last_below(t, 1, 0, t->leaves, w->bk, p);
        lost += t->ents[p].acc;
    } while (p != w->cross);
    return lost;
}

/* Whatever is evicted frees at least need bytes, each at least as dense as
 * the coldest smaller chosen candidate (the first the walk meets): if even
 * that many bytes at that density are surely too many accesses, no walk is
 * needed.  On a full tier (need = bk) this settles nearly every candidate
 * whose density differs from the chosen ones' by more than the margin. */
static bool thermos_surely_too_hot(thermos_t *t, const thermos_walk_t *w)
{
    size_t c = thermos_last_below(t, 1, 0, t->leaves, w->bk, t->leaves);
    double floor_lost = t->ents[c].density * (double)w->need;
    return floor_lost > w->acck * (1 + THERMOS_MARGIN);
}

/* Make room for the candidate at k by evicting, or leave everything. */
static bool thermos_displace(thermos_t *t, size_t k, uint64_t cap,
                             uint64_t *used)
{
    const place_ent_t *e = &t->ents[k];
    thermos_walk_t w = {.bk = e->bytes, .need = e->bytes - (cap - *used),
                        .acck = e->acc};
    if (thermos_fen_sum(t, thermos_rank_below(t, e->bytes)) < w.need)
        return false;   /* the smaller ones together free too little */
    if (thermos_surely_too_hot(t, &w))
        return false;
    if (thermos_walk(t, 1, 0, t->leaves, &w) != 1)
        return false;
    double lost = w.lost;
    if (fabs(lost - w.acck) <= THERMOS_MARGIN * fmax(lost, w.acck))
        lost = thermos_lost_in_order(t, &w);   /* too close to call */
    if (lost >= w.acck)
        return false;
    size_t p = t->leaves;
    do {   /* the latest smaller one each time, down to the crossing */
        p = thermos_last_below(t, 1, 0, t->leaves, w.bk, p);
        thermos_set(t, p, false);
        *used -= t->ents[p].bytes;
    } while (p != w.cross);
    thermos_set(t, k, true);
    *used += e->bytes;
    return true;
}

double place_thermos(const place_ent_t *ents, size_t m, uint64_t cap,
                     unsigned char *pick, bool *bounded)
{
    thermos_t t;
    *bounded = true;
    if (thermos_init(&t, ents, m) != 0)
        return -1;
    uint64_t used = 0;
    for (size_t k = 0; k < m; k++) {
        if (ents[k].bytes <= cap - used) {
            thermos_set(&t, k, true);
            used += ents[k].bytes;
        } else if (ents[k].bytes <= cap && *bounded) {
            if (t.work > t.budget) {
                *bounded = false;
                log_warn("placement: thermos past its work bound (%llu "
                            "steps) after %zu of %zu items: the rest by "
                            "hotset's rule", (unsigned long long)t.budget,
                            k, m);
                continue;
            }
            thermos_displace(&t, k, cap, &used);
        }
    }
    for (size_t k = 0; k < m; k++)
        pick[k] = t.node[t.leaves + k].sumb != 0;
    thermos_free(&t);
    place_fill(ents, m, cap, used, pick);
    return place_sum(ents, m, pick);
}
