/*
 * perf_internal.h -- what perf_event.c (naming and encoding the event of a
 * perf sampler kind) offers sampler_perf.c (the sampler proper: open,
 * collect, close, fork).
 *
 * Private to those two files, and to perf_pmu.c's functions (the last
 * section), which they call; nothing here is part of profiler.h.  The
 * interface takes a kind and an attr, never the sampler's state.
 */
#ifndef TM_PERF_INTERNAL_H
#define TM_PERF_INTERNAL_H

#include <linux/perf_event.h>
#include <limits.h>
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

/* Room for any perf_open_cause sentence. */
#define PERF_CAUSE_LEN 384

/* One sentence naming why the first perf_event_open of kind's event
 * failed with err, from the errno and the host's facts (swfilt_available:
 * the ibs_op PMU has a swfilt format field); written into buf (len bytes,
 * truncated to fit) and returned ("" when len is 0). */
const char *perf_open_cause(prof_sampler_kind_t kind, int err,
                            const perf_host_facts_t *h,
                            bool swfilt_available, char *buf, size_t len);

#endif
