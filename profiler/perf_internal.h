/*
 * perf_internal.h -- what perf_event.c (naming and encoding the event of a
 * perf sampler kind) offers sampler_perf.c (the sampler proper: open,
 * collect, close, fork).
 *
 * Private to those two files, and to perf_pmu.c's functions (the last
 * section), which they call; nothing here is part of profiler.h.  The
 * interface takes a kind and an attr, never the sampler's state.

 * Private to those two files; nothing here is part of profiler.h.  The
 * interface takes a kind and an attr, never the sampler's state.  The last
 * section is perf_budget.c's: the CPUs that get a ring and the rings'
 * size, also for sampler_perf.c.
 */
#ifndef TM_PERF_INTERNAL_H
#define TM_PERF_INTERNAL_H

#include <linux/perf_event.h>
#include <limits.h>

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profiler.h"

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
    double worst_rate[PERF_MAX_EVENTS]; /* events/s on one busy core, at
                                           most (0: unknown), to size rings */
    bool ibs_swfilt;         /* the IBS PMU filters exclude_kernel (6.14) */
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
    bool system_wide;             /* events per CPU with pid -1 */
    size_t watermark;             /* wake-up bytes, from the ring plan */
    char plan_why[200];           /* why the rings were cut, or are 0 */
    perf_wake_t wake;             /* the rings' watermarks, as one fd */
} perf_state_t;

/* The rings' table: one per CPU this process may run on
 * (perf_cpus_for_rings), none mapped yet.  0, or -1 (logged). */
int perf_rings_init(perf_state_t *st);
/* Open the events of every thread on every ring's CPU (system_wide: one
 * per CPU for every task), and map the rings.  0, or -1 with errno (the very first open's failure is not
 * logged: the caller words it as "unavailable"). */
int perf_open_events(perf_state_t *st);

/* ---- perf_pmu.c: a PMU's sysfs format fields, the IBS op setup, and the
 * cause of a failed first perf_event_open.  Pure functions of a sysfs
 * directory, a release string, an errno and host facts, so that they are
 * tested on machines without a PMU. */

/* One field of <pmu_dir>/format/<name>: which attr word and which bits. */
typedef struct perf_format_field {
    bool present;  /* the file exists and parsed */
    uint8_t word;  /* 0 config, 1 config1, 2 config2 */
    uint64_t mask; /* the field's bits in that word */
} perf_format_field_t;

/* Read and parse <pmu_dir>/format/<name> ("config:19", "config2:0",
 * "config:0-7,32-35").  0 with f->present when found; 0 with !f->present
 * when the file (or pmu_dir) does not exist; -1 with errno otherwise, and
 * f absent: EINVAL for a name that is not a plain file name, for text that
 * is not a format (unknown word, bit > 63, hi < lo, junk, more than a
 * line) and for a file that is not a regular one; else open's or read's
 * errno. */
int perf_format_read(const char *pmu_dir, const char *name,
                     perf_format_field_t *f);

/* Set every bit of f in its attr word (no-op when !f->present): what a
 * one-bit flag means; a wider field gets its all-ones value. */
void perf_format_set(struct perf_event_attr *attr,
                     const perf_format_field_t *f);

/* The IBS op PMU's period: a multiple of 16 (the kernel refuses one with
 * any of the low 4 bits set), at least 0x90 (the op PMU's min_period in
 * kernels since early 2025, which refuse less; older ones took 16, so 0x90
 * suits both), at most the
 * 27-bit count of IbsOpMaxCnt and its extension (Zen 2 on; larger periods
 * the kernel would split in software anyway).
 *
 * The default, 2^18 dispatched ops: at ~3e9 ops/s per core that is ~11k
 * samples/s per CPU, a tenth of the kernel's default throttle
 * (perf_event_max_sample_rate, 100000/s), so the kernel never throttles
 * us at the default; a third or so are memory ops with an address, ~4k/s,
 * and a 100 ms interval's ~1100 samples fit the default 64-page ring. */
#define PERF_IBS_MIN_PERIOD 0x90ull
#define PERF_IBS_MAX_PERIOD 0x7FFFFF0ull
#define PERF_IBS_DEFAULT_PERIOD (1ull << 18)

/* want rounded to the nearest multiple of 16 (halves up) and clamped to
 * [PERF_IBS_MIN_PERIOD, PERF_IBS_MAX_PERIOD]; 0 gives the default. */
uint64_t perf_ibs_round_period(uint64_t want);

/* What perf_ibs_configure chose. */
typedef struct perf_ibs_setup {
    bool cnt_ctl;        /* the period counts dispatched ops, not cycles */
    bool swfilt;         /* the kernel filters exclude_kernel (6.14) */
    bool l3missonly;     /* only ops that missed L3 (Zen 4) */
    uint64_t period;     /* as set in attr->sample_period */
    bool period_changed; /* a period asked for was rounded or clamped */
} perf_ibs_setup_t;

/* Set up attr (whose type the caller has set to the ibs_op PMU's) from
 * the format fields of pmu_dir: cnt_ctl and swfilt whenever the PMU names
 * them, l3missonly only when want_l3miss and named; sample_period from
 * perf_ibs_round_period(want_period), freq 0.  Bits are ORed into attr,
 * never cleared.  0; or -1 with the errno of the first format file that
 * could not be read or is malformed (a flag wider than one bit counts):
 * that field is then left unset, the others are set all the same, and out
 * says what was set -- a sampler may still open what the PMU accepts. */
int perf_ibs_configure(const char *pmu_dir, uint64_t want_period,
                       bool want_l3miss, struct perf_event_attr *attr,
                       perf_ibs_setup_t *out);

/* What the period counts, for the profile header: "ops" or "cycles". */
const char *perf_ibs_counter_name(const perf_ibs_setup_t *s);

/* What decides whether perf_event_open may succeed here. */
typedef struct perf_host_facts {
    int kernel_major, kernel_minor; /* -1 when unknown */
    int paranoid;    /* kernel.perf_event_paranoid; INT_MIN when unknown */
    bool privileged; /* CAP_PERFMON or CAP_SYS_ADMIN in the effective set */
} perf_host_facts_t;

/* The facts of this host: uname(2), /proc/sys/kernel/perf_event_paranoid,
 * capget(2). */
void perf_host_facts_read(perf_host_facts_t *h);

/* Major and minor of a release ("6.1.0-57-amd64", "5.14.0-427.el9.x86_64"):
 * 0, or -1 (errno EINVAL) when it does not start with digits.digits. */
int perf_kernel_release_parse(const char *release, int *major, int *minor);

/* perf_event_paranoid from its text ("2\n", "-1"): INT_MIN for anything
 * but an optionally signed decimal int and one optional newline. */
int perf_paranoid_parse(const char *text);

/* perf_paranoid_parse of the file at path; INT_MIN when missing,
 * unreadable, not a regular file or longer than an int's line. */
int perf_paranoid_read(const char *path);
/* The kernel's perf_event_paranoid, for perf_paranoid_read. */
#define PERF_PARANOID_PATH "/proc/sys/kernel/perf_event_paranoid"
/* Is capability cap (CAP_PERFMON 38, CAP_IPC_LOCK 14, ...) in this
 * thread's effective set?  capget, no libcap; false when it cannot tell. */
bool perf_cap_effective(unsigned cap);

/* Room for any perf_open_cause sentence. */
#define PERF_CAUSE_LEN 384

/* One sentence naming why the first perf_event_open of kind's event
 * failed with err, from the errno and the host's facts (swfilt_available:
 * the ibs_op PMU has a swfilt format field); written into buf (len bytes,
 * truncated to fit) and returned ("" when len is 0). */
const char *perf_open_cause(prof_sampler_kind_t kind, int err,
                            const perf_host_facts_t *h,
                            bool swfilt_available, char *buf, size_t len);

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
