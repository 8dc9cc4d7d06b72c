/*
 * perf_internal.h -- what perf_event.c (naming and encoding the event of a
 * perf sampler kind) offers sampler_perf.c (the sampler proper: open,
 * collect, close, fork).
 *
 * Private to those two files; nothing here is part of profiler.h.  The
 * interface takes a kind and an attr, never the sampler's state.  The last
 * section is perf_budget.c's: the CPUs that get a ring, also for
 * sampler_perf.c.
 */
#ifndef TM_PERF_INTERNAL_H
#define TM_PERF_INTERNAL_H

#include <linux/perf_event.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profiler.h"

/* "pebs", "ibs", "faults"; "perf" for any other kind. */
const char *perf_kind_name(prof_sampler_kind_t k);

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

/* ---- perf_budget.c: which CPUs get a ring. */

/* CPU numbers a list may name: [0, PERF_CPU_ID_LIMIT). */
#define PERF_CPU_ID_LIMIT (1 << 20)
/* The most CPUs an affinity mask is read for (a 1 KiB mask). */
#define PERF_AFFINITY_MAX_CPUS 8192

/* The kernel's CPU list format ("0-3,8,10-11\n") into cpus[0..max): the
 * count written (cpus NULL: only counted, up to max).  Items must be
 * strictly ascending, as the kernel writes them; at the first item that is
 * not (junk, a reversed or overlapping range, a number >=
 * PERF_CPU_ID_LIMIT) parsing stops and the CPUs before it are kept.
 * Stops at '\n' or NUL; never writes past max. */
size_t perf_cpu_list_parse(const char *text, int *cpus, size_t max);

/* The CPUs of online[0..n) that are in mask (mask_size bytes, as for
 * CPU_ISSET_S), into out[0..max); the count.  out may be online itself. */
size_t perf_cpus_intersect(const int *online, size_t n,
                           const cpu_set_t *mask, size_t mask_size,
                           int *out, size_t max);

/* The CPUs to map a ring on: the online ones in this process's affinity
 * mask (its main thread's); all online ones when the mask cannot be read;
 * CPU 0 when neither can.  At least 1, at most max (max >= 1). */
size_t perf_cpus_for_rings(int *cpus, size_t max);

#endif
