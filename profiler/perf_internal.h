/*
 * perf_internal.h -- what perf_event.c (naming and encoding the event of a
 * perf sampler kind) offers sampler_perf.c (the sampler proper: open,
 * collect, close, fork).
 *
 * Private to those two files; nothing here is part of profiler.h.  The
 * interface takes a kind and an attr, never the sampler's state.  The last
 * section is perf_budget.c's: the CPUs that get a ring and the rings'
 * size, also for sampler_perf.c.
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

/* ---- perf_budget.c: which CPUs get a ring, and how big the rings may be
 * within the kernel's locked-memory accounting.  Pure functions of
 * injected facts, plus the readers of those facts. */

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
 * CPU 0 when neither can.  At least 1 and at most max (0 when max is 0
 * or cpus NULL). */
size_t perf_cpus_for_rings(int *cpus, size_t max);

/* What the kernel's perf_mmap() checks a ring against (kernel/events/
 * core.c), and the sample-rate cap. */
typedef struct perf_lock_facts {
    uint64_t mlock_kb;        /* kernel.perf_event_mlock_kb, per CPU */
    uint64_t memlock_limit;   /* RLIMIT_MEMLOCK soft, bytes; UINT64_MAX:
                                 unlimited */
    bool ipc_lock;            /* CAP_IPC_LOCK effective, in the initial
                                 user namespace */
    int paranoid;             /* kernel.perf_event_paranoid; INT_MIN:
                                 unknown */
    size_t online_cpus;       /* num_online_cpus(), at least 1 */
    uint64_t max_sample_rate; /* kernel.perf_event_max_sample_rate, /s */
    size_t page_size;
} perf_lock_facts_t;

/* Read the facts; whatever cannot be read gets the kernel's default or,
 * for permissions, the stricter answer.  Never fails. */
void perf_lock_facts_read(perf_lock_facts_t *f);

typedef struct perf_ring_plan_in {
    uint64_t period;          /* events per sample */
    double events_per_s;      /* worst-case event rate on one CPU */
    size_t record_bytes;      /* bytes of one sample record */
    uint64_t interval_ns;     /* the longest time between two drains */
    size_t nrings;            /* rings this process maps, one per CPU */
    unsigned local_ranks;     /* processes of this job on the host, each
                                 planning the same way; 0 counts as 1 */
    unsigned want_pages;      /* TIERMEM_PROFILE_RING_PAGES; 0: sized
                                 here */
} perf_ring_plan_in_t;

typedef struct perf_ring_plan {
    size_t nrings;            /* as planned for (in->nrings) */
    size_t ring_pages;        /* data pages per ring, a power of two;
                                 0: not even 1 page fits (do not map) */
    size_t watermark_bytes;   /* attr.wakeup_watermark (watermark = 1) */
    double samples_per_s;     /* expected per ring, after the kernel's cap */
    uint64_t need_pages;      /* per process, header pages included */
    uint64_t budget_pages;    /* per process; UINT64_MAX: no kernel limit */
    char why[200];            /* set when ring_pages < what was needed or
                                 asked for; else "" */
} perf_ring_plan_t;

/* Size the rings of one process: 0 (out filled; out->ring_pages may be
 * 0), or -1 with errno EINVAL (NULL, nrings 0, a page size that is not a
 * power of two of at least 1 KiB). */
int perf_ring_plan(const perf_ring_plan_in_t *in, const perf_lock_facts_t *f,
                   perf_ring_plan_t *out);

/* The plan as one log line, into buf (always NUL-terminated); buf. */
const char *perf_ring_plan_format(const perf_ring_plan_t *p, char *buf,
                                  size_t size);

#endif
