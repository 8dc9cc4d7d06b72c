/*
 * bench_policy_workloads.h -- the replay workloads of bench_policy: items
 * (sites or arenas) with sizes, phases with a probability distribution of
 * accesses over the items, and runs of sampled accesses drawn from them.
 *
 * A workload's optimum is known because its distributions are: for each
 * phase, the best set of items in a capacity is a 0/1 knapsack over the
 * phase's samples.  Everything is generated from a seed, so two runs with
 * the same options print the same figures.
 */
#ifndef TM_BENCH_POLICY_WORKLOADS_H
#define TM_BENCH_POLICY_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

#define WL_MIB ((uint64_t)1 << 20)

typedef enum workload_kind {
    WL_STATIC = 0,     /* one Zipf distribution for the whole run */
    WL_PHASES,         /* 4 phases, each with its own (overlapping) hot set */
    WL_SMALL_VS_BIG,   /* many small dense items vs one big, hotter one */
    WL_NKINDS
} workload_kind_t;

typedef struct workload {
    const char *name;
    const char *what;     /* one line for the table's title */
    size_t n;             /* items: ids 1..n in the intervals */
    uint64_t *bytes;      /* [n]; whole MiB, so knapsack's table is exact */
    uint64_t footprint;   /* sum of bytes */
    unsigned nphases;
    double *prob;         /* [nphases * n]: phase p's probabilities */
} workload_t;

/* One run: per interval, the samples each item received. */
typedef struct replay {
    unsigned nintervals;
    size_t n;
    unsigned nphases;
    uint32_t *count;      /* [nintervals * n] */
    uint64_t total;       /* all samples */
} replay_t;

/* Build workload `kind` from seed (dies on no memory). */
void workload_make(workload_kind_t kind, uint64_t seed, workload_t *w);
void workload_free(workload_t *w);

/* Draw `samples` sampled accesses per interval for nintervals intervals;
 * the phases split the intervals into equal runs (the last takes the
 * remainder).  Dies on no memory. */
void replay_make(const workload_t *w, unsigned nintervals, unsigned samples,
                 uint64_t seed, replay_t *r);
void replay_free(replay_t *r);

/* Phase p's intervals are [replay_phase_start(r, p), ..start(r, p + 1)). */
unsigned replay_phase_start(const replay_t *r, unsigned phase);
unsigned replay_phase_of(const replay_t *r, unsigned interval);

static inline const uint32_t *replay_row(const replay_t *r, unsigned k)
{
    return r->count + (size_t)k * r->n;
}

#endif /* TM_BENCH_POLICY_WORKLOADS_H */
