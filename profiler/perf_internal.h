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

/* What the period of kind's default event counts: "loads", "ops", ... */
const char *perf_kind_counter(prof_sampler_kind_t k);

/* What auto means on this CPU: pebs on Intel, ibs on AMD, else
 * PROF_SAMPLER_AUTO (none of ours). */
prof_sampler_kind_t perf_kind_from_cpu(void);

/* Encode kind's event (o->event, or the kind's default) into attr, with
 * its sample period, and write the name to log into name (name_size
 * bytes).  0, or -1 after setting errno (ENOENT: libpfm4 or sysfs does not
 * know the event; EINVAL: not a perf kind); name is set either way. */
int perf_event_for_kind(prof_sampler_kind_t kind, const prof_options_t *o,
                        struct perf_event_attr *attr, char *name,
                        size_t name_size);

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

#endif
