/*
 * uffd_internal.h -- the userfaultfd sampler's state, shared by
 * sampler_uffd.c (the sampler proper: open, collect, close) and
 * uffd_service.c (the fault-service thread, its ioctls, its error
 * recording and the round drain handshake).
 *
 * Private to those two files; nothing here is part of profiler.h.
 */
#ifndef TM_UFFD_INTERNAL_H
#define TM_UFFD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profiler.h"

/* ---------------------------------------------------------------- state */

/* What the service thread can fail at; logged by the profiling thread. */
enum { UFFD_ERR_POLL, UFFD_ERR_READ, UFFD_ERR_RELEASE, UFFD_ERR_GAVE_UP,
       UFFD_ERR_KINDS };

typedef struct uffd_reg {
    uintptr_t start; /* 0 = free slot */
    size_t len;
} uffd_reg_t;

typedef struct uffd_state {
    /* All four taken with fd_own; the service thread checks them after
     * each wake-up, collect before each batch of ioctls. */
    owned_fd_t uffd;
    owned_fd_t stop;        /* eventfd: the service thread should exit */
    owned_fd_t sync, ack;   /* eventfds: drain request and its answer */
    _Atomic bool stopping;     /* the service thread should exit (also
                                  when stop is no longer ours to write) */
    _Atomic bool fd_lost;      /* the service thread found one not ours */
    bool dead;                 /* shut down after a lost descriptor */
    bool thread_started;
    pthread_t thread;
    prof_sink_t sink;
    size_t page;
    unsigned budget;           /* pages protected this round */
    unsigned fixed_budget;     /* TIERMEM_PROFILE_UFFD_PAGES; 0: scaled */
    unsigned protect_cap;      /* most pages a round may protect */
    double fault_cap;          /* most faults a round may cause */
    double hit_rate;           /* share of protected pages written, recent */
    double resident_share;     /* share of picks found resident, recent */
    bool resident_measured;    /* resident_share is a measurement */
    uint64_t picks, picks_resident; /* this round's, for resident_share */
    uint64_t faults_before;    /* faults at the start of the last round */
    uint64_t seed;             /* where this process's offsets start */
    _Atomic uint32_t weight;   /* this round's stride S */
    uint64_t round;            /* rounds collected: moves the offset */
    _Atomic uint64_t sync_req, sync_done; /* round numbers of the handshake */
    /* The pages protected in the last collect, un-protected by the next,
     * and their 2 MiB blocks (a hash set, 0 = free). */
    uintptr_t *pages, *blocks;
    size_t npages, cap, nblock_slots;
    size_t npages_last;        /* protected by the round before */
    /* Ranges registered with the uffd: regs[cur] as of the last collect;
     * each collect carries over the ranges still there into the other. */
    uffd_reg_t *regs[2];
    unsigned reg_cur;
    size_t reg_count;
    /* Counters (profiling thread only, except the atomics). */
    uint64_t vanished;         /* ioctls on ranges that were gone */
    uint64_t registrations, sync_timeouts;
    bool warned_register, warned_protect, warned_full, warned_sync;
    _Atomic uint64_t faults;   /* write faults served */
    _Atomic bool service_dead;
    _Atomic uint64_t err_count[UFFD_ERR_KINDS];
    _Atomic int err_first[UFFD_ERR_KINDS];
    uint64_t err_logged[UFFD_ERR_KINDS];
} uffd_state_t;

/* ---------------------------------------------------------------- picks */

/* Round r's offset in [0, stride): a random start plus r steps of about
 * stride / phi, the step made coprime to the stride.  Stride consecutive
 * rounds visit every offset exactly once, and any run of n rounds is spread
 * evenly over the stride (the golden-ratio sequence, which the three-
 * distance theorem keeps within gaps of at most three sizes).  Not
 * round % stride: that sweeps from each stride's start, so a run shorter
 * than the stride never probes past its first pages. */
static inline uint64_t uffd_round_offset(uint64_t seed, uint64_t round,
                                         uint64_t stride)
{
    if (stride <= 1)
        return 0;
    uint64_t step = (uint64_t)((double)stride * 0.6180339887498949);
    for (;; step++) { /* a few tries at most: coprimes are dense */
        uint64_t a = stride, b = step % stride;
        while (b != 0) {
            uint64_t t = a % b;
            a = b;
            b = t;
        }
        if (a == 1)
            break;
    }
    /* stride < 2^32 (sampler_uffd.c caps it), so this cannot overflow */
    return (seed % stride + (round % stride) * (step % stride)) % stride;
}

/* ---------------------------------------------------------------- ioctls */

/* Write-protect (on) or un-protect one range of a registered mapping. */
int uffd_protect(int uffd, uintptr_t start, size_t len, bool on);
/* Is err the error of a range that is no longer (or not yet) registered? */
bool uffd_vanished_error(int err);

/* ---------------------------------------------------------------- service */

/* Profiling thread: log what the service thread recorded since the last
 * report (a warning the first time per kind, debug after). */
void uffd_report_errors(uffd_state_t *st);
/* Start the fault-service thread (all signals blocked); -1 with errno. */
int uffd_service_start(uffd_state_t *st);
/* Stop it once it served every pending fault; a no-op if never started. */
void uffd_service_stop(uffd_state_t *st);
/* Have it serve every message queued now; false if it did not answer in
 * time (or gave up): then nothing is protected this round. */
bool uffd_service_sync_wait(uffd_state_t *st);

#endif
