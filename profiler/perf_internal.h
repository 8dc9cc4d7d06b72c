/*
 * perf_internal.h -- what perf_event.c (naming and encoding the event of a
 * perf sampler kind) offers sampler_perf.c (the sampler proper: open,
 * collect, close, fork).
 *
 * Private to those two files; nothing here is part of profiler.h.  The
 * interface takes a kind and an attr, never the sampler's state.
 */
#ifndef TM_PERF_INTERNAL_H
#define TM_PERF_INTERNAL_H

#include <linux/perf_event.h>
#include <stddef.h>

#include "profiler.h"

/* "pebs", "ibs", "faults"; "perf" for any other kind. */
const char *perf_kind_name(prof_sampler_kind_t k);

/* What auto means on this CPU: pebs on Intel, ibs on AMD, else
 * PROF_SAMPLER_AUTO (none of ours). */
prof_sampler_kind_t perf_kind_from_cpu(void);

/* The attribute fields we set whatever the event, after the encoding. */
void perf_attr_common(struct perf_event_attr *attr);

/* ---- perf_wake.c: one descriptor for every ring's wake-up watermark */

typedef struct perf_wake {
    owned_fd_t ep;   /* the epoll set of the rings' events */
    bool on;
} perf_wake_t;

/* An epoll set of the rings' event fds; 0, or -1 (logged: the rings are
 * then read at interval ends only, and w is off). */
int perf_wake_open(perf_wake_t *w, const int *fds, size_t n);
/* The descriptor to poll, or -1 (off, or lost to the program). */
int perf_wake_fd(perf_wake_t *w);
/* After a wake-up: clear it, and drop events that hung up. */
void perf_wake_consume(perf_wake_t *w);
/* Close the set if it is still ours (also in a fork child: a close is
 * async-signal-safe and does not touch the parent's set). */
void perf_wake_close(perf_wake_t *w);


/* ---- the events a sampler opens per (thread, CPU) (perf_event.c) */

/* pebs samples two events by default: last-level-cache-miss loads and
 * all stores, the accesses tier placement changes. */
#define PERF_MAX_EVENTS 2

typedef struct perf_events {
    size_t n;
    struct perf_event_attr attr[PERF_MAX_EVENTS];
    char name[160];          /* every event, for logs and the profile */
    const char *counter;     /* what attr[0]'s period counts */
} perf_events_t;

/* Variant `variant` of kind's events: 0 the preferred set, 1, 2, ... the
 * fall-backs the sampler tries when perf_event_open refuses the one
 * before (pebs: the miss+store pair, then all loads).  Encoded with their
 * periods; 0, or -1 with errno ENOENT (no such variant, or libpfm4 and
 * sysfs do not know the event: ev->name says which) or EINVAL (not a
 * perf kind). */
int perf_events_for_kind(prof_sampler_kind_t kind, const prof_options_t *o,
                         unsigned variant, perf_events_t *ev);

/* ---- the sampler's state (sampler_perf.c), opened by perf_open.c */

/* Data pages per ring when TIERMEM_PROFILE_RING_PAGES is not set. */
#define PERF_DEFAULT_RING_PAGES 64
#define PERF_MAX_CPUS 1024

/* The ring of one CPU, mapped from the first event opened on it. */
typedef struct perf_cpu_ring {
    int cpu;
    int fd;          /* the event the ring is mapped from; -1 until then */
    owned_fd_t own; /* that event's identity (its fds[] entry's copy) */
    size_t map_len;
    perf_ring_t ring;
} perf_cpu_ring_t;

typedef struct perf_state {
    prof_sampler_kind_t kind;
    pid_t owner;                  /* the process that opened the events */
    perf_events_t ev;             /* as accepted by the first open */
    size_t ring_pages;
    perf_cpu_ring_t *rings;       /* one per online CPU (meta_alloc) */
    size_t nrings;
    owned_fd_t *fds;           /* every event, fds_cap entries */
    size_t nfds, fds_cap;
    size_t nthreads;              /* threads with events */
    uint64_t malformed;           /* ring records skipped as malformed */
    bool throttle_reported, lost_reported, no_addr_reported;
    bool filter_kernel;           /* kernel addresses could not be
                                     excluded (ibs): the rings drop them */
    bool dead;                    /* an event was lost: sampling stopped */
    bool no_encoding;             /* no encoder knew the event */
    perf_wake_t wake;             /* the rings' watermarks, as one fd */
} perf_state_t;

/* Open the events of every thread on every ring's CPU, and map the
 * rings.  0, or -1 with errno (the very first open's failure is not
 * logged: the caller words it as "unavailable"). */
int perf_open_events(perf_state_t *st);

#endif
