/*
 * online_internal.h -- what the online policy's two files share: the
 * policy's state (its arena map, tables and full tiers) and the small
 * rules both the choosing (online.c) and the moving (online_move.c) read.
 * Not a layer header: only those two files include it.
 */
#ifndef TIERMEM_POLICY_ONLINE_INTERNAL_H
#define TIERMEM_POLICY_ONLINE_INTERNAL_H

#include "policy.h"

#define ONLINE_NONE 0xffu   /* tier byte: arena not known */

typedef struct online_arena {
    uint64_t serial;        /* new serial in a reused id: forget the old */
    uint64_t seen_seq;      /* interval seq it was last in */
    uint64_t bytes;         /* what it occupies: see online_bytes */
    uint64_t resident;      /* the last resident bytes measured */
    uint64_t mapped_then;   /* its mapped bytes at that measurement */
    bool measured;          /* resident is known */
    double heat;
    uint64_t moved_at;      /* decision number of its last move */
    uint8_t tier;           /* the policy's map; ONLINE_NONE if unknown */
    uint8_t target;         /* this decision's choice */
} online_arena_t;

struct online {
    online_config_t cfg;
    uint64_t steps, last_seq;
    double sampler_accesses_per_sample; /* the last interval's (0: unknown) */
    online_stats_t stats;
    double credit;          /* migration bytes the budget allows now */
    uint64_t wanted;        /* the largest move the budget put off last */
    online_arena_t *arena;  /* [TM_MAX_ARENAS + 1] */
    unsigned *order;        /* [TM_MAX_ARENAS]: ids being ranked */
    double *score;          /* [TM_MAX_ARENAS + 1]: sort keys by id */
    /* What a tier can hold, by the kernel, since a move into it failed
     * with ENOMEM or found no room, until decision full_until[t]
     * (online_mark_full in online_move.c). */
    uint64_t full_bytes[TM_MAX_NODES], full_until[TM_MAX_NODES];
    bool room_warned[TM_MAX_NODES]; /* "no room" said once as a warning */
};

/* Decisions a tier that refused a move counts as full: long enough that a
 * failing promotion is not retried every decision, short enough that
 * memory freed by others is used again (10 s at the defaults). */
#define ONLINE_FULL_DECISIONS 25

static inline bool online_live(const online_t *o, unsigned id)
{
    const online_arena_t *a = &o->arena[id];
    return a->tier != ONLINE_NONE && a->seen_seq == o->last_seq;
}

/* ---------------------------------------------------------------- ranking */

/* Shell sort of ids by score descending, id ascending on ties: no malloc,
 * deterministic, fast enough for 4095 ids. */
void online_sort(unsigned *ids, size_t n, const double *score);

static inline double online_density(const online_arena_t *a)
{
    return a->heat / (double)(a->bytes ? a->bytes : 1);
}

static inline uint64_t online_usable(const online_t *o, unsigned tier)
{
    uint64_t u = (uint64_t)((double)o->cfg.cap[tier] * (1.0 - o->cfg.headroom));
    if (o->full_until[tier] > o->stats.decisions && o->full_bytes[tier] < u)
        u = o->full_bytes[tier];
    return u;
}

/* online_move.c: migrate the difference between each live arena's tier
 * and the target online_choose gave it (demotions first). */
void online_apply(online_t *o);

#endif
