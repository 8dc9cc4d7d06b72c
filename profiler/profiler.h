/*
 * profiler.h -- what the profiler layer offers to the layers above it.
 *
 * The profiler watches a running program.  Samplers turn memory accesses
 * into sample addresses; attribution turns each address into an arena
 * (through the extent map) and each arena into its sites; once per interval
 * the profiling thread closes an interval, writes it to the profile file
 * and hands it to whoever registered for it (the policy).
 *
 *   sampler_perf.c      pebs / ibs / faults through perf_event_open
 *   perf_event.c        naming and encoding their events (libpfm4, sysfs)
 *   perf_ring.c         reading a perf mmap ring buffer
 *   sampler_refs.c      accessed bits through clear_refs and smaps
 *   proc_vma_scan.c     its reader of /proc/self/smaps and numa_maps
 *   vma_owner.c         which arena a VMA's figures belong to
 *   sampler_uffd.c      userfaultfd write-protect sampling (no PMU needed)
 *   uffd_service.c      its fault-service thread
 *   sampler_replay.c    samples from a trace file
 *   residency_sampler.c resident bytes per arena and node (move_pages)
 *   attribution.c       address -> arena -> site, per-interval rows, heat
 *   profile_write.c     the profile file, one interval at a time
 *   profile_read.c      the reader the tools and the policy use
 *   profile_parse.c     the reader's line parser
 *   profiler_options.c  TIERMEM_PROFILE* settings
 *   profiler.c          the thread: timer, lifecycle, fork, exit
 *   sampler_choose.c    the sampler asked for, and its fall-backs
 *   profile_name.c      the name a profile is written under
 *   profiler_fds.c      lost descriptors, and the RLIMIT_NOFILE rule
 *
 * The rule for code that runs on the profiling thread or on a sampler's own
 * thread: no malloc and no stdio.  Memory comes from meta_alloc, output
 * goes through write(2).  Two reasons.  In the preload library malloc is
 * tiermem itself, and the profiler's blocks would show up in the profile.
 * And the userfaultfd sampler write-protects arena pages: a profiler thread
 * that wrote into an arena block would wait on a fault only it can resolve.
 * (profile_read.c is the exception: it runs in tools and in the policy's
 * offline pass, never on the profiling thread, and uses malloc.)
 */
#ifndef TM_PROFILER_H
#define TM_PROFILER_H

#include <math.h>

#include "sites.h"

/* ================================================================ settings
 * profiler_options.c.  All read once from the environment; a bad value
 * gets one warning naming the variable and the default kept. */

typedef enum prof_sampler_kind {
    PROF_SAMPLER_AUTO = 0, /* pebs/ibs if perf_event_open works, else refs,
                              else uffd */
    PROF_SAMPLER_PEBS,     /* Intel: precise load samples with addresses */
    PROF_SAMPLER_IBS,      /* AMD: IBS op samples with addresses */
    PROF_SAMPLER_FAULTS,   /* software page-fault events: first touches only;
                              exercises the perf path where no PMU exists */
    PROF_SAMPLER_REFS,     /* accessed bits (clear_refs, smaps): reads and
                              writes, per arena, no PMU, no privilege */
    PROF_SAMPLER_UFFD,     /* userfaultfd write-protect: writes only */
    PROF_SAMPLER_REPLAY,   /* a trace file */
    PROF_SAMPLER_NONE,     /* residency and allocation counters only */
} prof_sampler_kind_t;

typedef enum {
    PROF_SYSTEM_WIDE_AUTO, /* ibs only, where per-process is refused */
    PROF_SYSTEM_WIDE_ON,
    PROF_SYSTEM_WIDE_OFF,
} prof_system_wide_t;

typedef struct prof_options {
    bool enabled;                /* TIERMEM_PROFILE=1|on|yes|true */
    prof_sampler_kind_t sampler; /* TIERMEM_PROFILE_SAMPLER (default auto) */
    uint64_t interval_ns;        /* TIERMEM_PROFILE_INTERVAL (default 100ms) */
    double halflife;             /* TIERMEM_PROFILE_HALFLIFE: heat half-life
                                    in intervals (default 4) */
    char event[128];             /* TIERMEM_PROFILE_EVENT: libpfm4 event
                                    name; "" = the sampler's default */
    uint64_t period;             /* TIERMEM_PROFILE_PERIOD: events per sample
                                    (0 = the sampler's default) */
    unsigned ring_pages;         /* TIERMEM_PROFILE_RING_PAGES: data pages of
                                    each perf ring, a power of two; 0 =
                                    sized (perf_ring_plan) */
    int system_wide;             /* TIERMEM_PROFILE_SYSTEM_WIDE:
                                    prof_system_wide_t */
    bool l3_miss_only;           /* TIERMEM_PROFILE_L3_MISS_ONLY (ibs) */
    unsigned uffd_pages;         /* TIERMEM_PROFILE_UFFD_PAGES: pages write-
                                    protected per interval, over all arenas;
                                    0 = scaled with resident memory */
    double refs_cost;            /* TIERMEM_PROFILE_REFS_COST: percent of one
                                    core the refs sampler's scans may use */
    unsigned residency_every;    /* TIERMEM_PROFILE_RESIDENCY_EVERY: measure
                                    residency every N intervals; 0 = never */
    size_t residency_pages;      /* TIERMEM_PROFILE_RESIDENCY_PAGES: pages
                                    queried per arena at most */
    char replay[TM_PATH_MAX];    /* TIERMEM_PROFILE_REPLAY: trace file */
    bool trace_clock;            /* TIERMEM_PROFILE_CLOCK=trace: intervals
                                    follow the trace's times, back to back,
                                    not the wall clock (replay only) */
    char file[TM_PATH_MAX];      /* TIERMEM_PROFILE_FILE (%r %p %e expanded);
                                    "" = tiermem-profile.<exe>.<pid|rankN>.txt
                                    in TIERMEM_OUTPUT_DIR, or "." */
    bool no_file;                /* write no profile: intervals go to the
                                    interval hook only (the online policy
                                    without TIERMEM_PROFILE) */
} prof_options_t;

void prof_options_defaults(prof_options_t *o);
/* Fill o from an environment array (like environ); never fails. */
void prof_options_parse(char *const *env, prof_options_t *o);
/* The name a sampler kind has in settings and in profiles ("uffd", ...). */
const char *prof_sampler_name(prof_sampler_kind_t k);

/* ================================================================ samples
 * A sampler delivers sample addresses into a sink.  Attribution is the
 * usual sink (attrib_sink); tests plug in their own. */

typedef struct prof_sink {
    /* weight: how many samples this one stands for (1 for most samplers).
     * May be called from any thread, concurrently.  Samplers never deliver
     * address 0; a record without an address is not a sample. */
    void (*sample)(void *ctx, uintptr_t addr, uint32_t weight);
    /* n samples the sampler knows it lost (ring overrun, throttling). */
    void (*lost)(void *ctx, uint64_t n);
    void *ctx;
} prof_sink_t;

/* What a sampler saw over the whole run, beyond the samples it delivered:
 * written once, before the trailer, by the samplers that count it (perf). */
typedef struct prof_sampler_totals {
    uint64_t samples;    /* delivered */
    uint64_t no_addr;    /* sample records without a data address */
    uint64_t foreign;    /* records of another process, dropped */
    uint64_t kernel;     /* records at kernel addresses, dropped */
    uint64_t lost;       /* records the kernel reported lost */
    uint64_t throttles;  /* times the kernel throttled the event */
} prof_sampler_totals_t;

typedef struct sampler sampler_t;

typedef struct sampler_ops {
    /* Start sampling into sink.  0, or -1 with errno after logging one line
     * that says why (the profiler then falls back to another sampler). */
    int (*open)(sampler_t *s, const prof_options_t *o, const prof_sink_t *sink);
    /* On the profiling thread, at the end of each interval; t_end_ns is the
     * interval's end in the profiler's clock (ns since profiling started,
     * or trace time with the trace clock).  Deliver everything sampled up
     * to then. */
    void (*collect)(sampler_t *s, uint64_t t_end_ns);
    /* Trace clock only: true once every sample has been delivered.  NULL
     * means "never". */
    bool (*done)(sampler_t *s);
    /* Stop and release everything (after a last collect).  No thread of
     * the program may be left waiting on the sampler. */
    void (*close)(sampler_t *s);
    /* In a forked child: close the descriptors the child inherited, with no
     * ioctl and no unmapping that could touch the parent's sampling (the
     * events and the userfaultfd are shared with the parent until the
     * child closes them).  Async-signal-safe calls only. */
    void (*fork_child)(sampler_t *s);
    /* Optional (NULL: collect alone).  A descriptor that turns readable
     * when the sampler holds data that should not wait for the interval's
     * end (perf: a ring past its wake-up watermark), or -1 (none now).
     * The profiling thread polls it with its timer and calls drain. */
    int (*wake_fd)(sampler_t *s);
    /* Deliver what is ready, within the current interval. */
    void (*drain)(sampler_t *s);
} sampler_ops_t;

struct sampler {
    const sampler_ops_t *ops;
    const char *name;   /* what the profile calls it: "pebs", "uffd", ... */
    prof_sink_t sink;   /* set by open */
    void *state;        /* the backend's own, in meta_alloc memory */
    double accesses_per_sample; /* memory accesses one sample of weight 1
                                   stands for, as far as the backend can
                                   tell (set by open; 0 = unknown) */
    char detail[224];   /* event, period and what it counts, for the
                           profile's sampler_detail line ("" = none) */
    bool has_totals;    /* the backend keeps totals (kept past close) */
    prof_sampler_totals_t totals;
};

/* The backends.  sampler_perf serves pebs, ibs and faults (o->sampler says
 * which; auto tries pebs or ibs by CPU vendor). */
extern const sampler_ops_t sampler_perf_ops;
extern const sampler_ops_t sampler_uffd_ops;
extern const sampler_ops_t sampler_refs_ops;
extern const sampler_ops_t sampler_replay_ops;

/* ================================================================ perf ring
 * perf_ring.c: the records of a perf_event mmap ring buffer, read without
 * allocating.  Separate from perf_event_open so tests can feed it
 * synthetic rings. */

/* One mmap'd ring; several events may write into it (PERF_EVENT_IOC_SET_
 * OUTPUT: the perf sampler shares one ring per CPU among all its events). */
typedef struct perf_ring {
    void *base;        /* the mmap: one metadata page, then data_size bytes */
    size_t data_size;  /* a power of two */
    uint64_t sample_type; /* the attr's sample_type: which fields follow */
    uint32_t owner_pid;   /* with PERF_SAMPLE_TID: samples of any other
                             process are dropped (0 = keep every pid) */
    bool user_only;       /* drop kernel addresses (the event could not
                             exclude the kernel: IBS before swfilt) */
} perf_ring_t;

typedef struct perf_ring_counts {
    uint64_t samples;   /* PERF_RECORD_SAMPLE records delivered */
    uint64_t no_addr;   /* sample records without a data address (a
                           non-memory op, an event that is not a data-
                           address event, IBS before 6.1) */
    uint64_t foreign;   /* sample records of another process (a forked
                           child where inherit_thread was refused) */
    uint64_t kernel;    /* sample records at kernel addresses, dropped */
    uint64_t lost;      /* sum of PERF_RECORD_LOST / LOST_SAMPLES counts */
    uint64_t throttles; /* PERF_RECORD_THROTTLE records */
    uint64_t unthrottles;
    uint64_t other;     /* records of other types, skipped */
    uint64_t malformed; /* records too short or too long: rest of the ring
                           skipped */
} perf_ring_counts_t;

/* Read every record between data_tail and data_head, deliver each sample's
 * address to the sink (unless it has none, is another process's or is a
 * kernel address, per the ring's filters), count the rest into *counts,
 * then publish the new data_tail.  Records that wrap around the end of the data area are
 * reassembled.  Returns the number of samples delivered. */
uint64_t perf_ring_drain(perf_ring_t *ring, const prof_sink_t *sink,
                         perf_ring_counts_t *counts);

/* ================================================================ attribution
 * attribution.c: address -> arena (extent map) -> sites, per interval. */

/* One arena in one interval. */
typedef struct prof_arena_row {
    unsigned id;               /* 1..TM_MAX_ARENAS */
    uint64_t serial;           /* the arena's serial, never reused, so
                                  readers can tell a new arena in a reused
                                  id (0 in a version 1 profile: unknown) */
    uint8_t kind;              /* arena_kind_t */
    uint32_t owner_site;       /* ARENA_SITE: the owner's site index */
    tm_placement_t placement;  /* the arena's placement now */
    uint64_t samples;          /* samples attributed this interval */
    double heat;               /* decayed samples per interval (EWMA) */
    uint64_t mapped;           /* bytes of the arena's extents */
    tm_alloc_stats_t stats;    /* cumulative; site arenas: the site's */
    bool resident_valid;       /* residency was measured this interval */
    uint64_t resident;         /* resident bytes (scaled when sampled) */
} prof_arena_row_t;

/* Resident bytes of one arena on one node (only nodes with bytes). */
typedef struct prof_residency_row {
    unsigned arena;
    unsigned node;
    uint64_t bytes;
} prof_residency_row_t;

/* One site in one interval. */
typedef struct prof_site_row {
    uint32_t index;           /* the run's site index (0 = unsited) */
    uint64_t key;             /* stable across runs: what guidance names */
    int32_t explicit_id;      /* -1 for a stack site */
    unsigned arena;           /* its arena now; 0 = none or per thread */
    uint64_t samples;         /* this interval */
    double heat;
    bool estimated;           /* samples apportioned from a shared arena by
                                 live bytes, not measured for this site */
    tm_alloc_stats_t stats;   /* cumulative */
} prof_site_row_t;

typedef struct prof_interval {
    uint64_t seq;             /* 1, 2, ... */
    uint64_t t_start_ns, t_end_ns; /* profiler clock */
    uint64_t samples;         /* all samples delivered this interval */
    uint64_t unattributed;    /* samples at addresses no arena owns */
    uint64_t lost;            /* samples the sampler reported lost */
    double accesses_per_sample; /* memory accesses one sample of weight 1
                                 stands for, by the sampler's estimate;
                                 set by the profiler on the intervals it
                                 delivers, 0 when unknown (no sampler, or
                                 read from a profile, which does not
                                 record it) */
    size_t narenas;
    prof_arena_row_t *arenas;       /* ascending id */
    size_t nresidency;
    prof_residency_row_t *residency; /* ascending (arena, node) */
    size_t nsites;
    prof_site_row_t *sites;         /* ascending index */
} prof_interval_t;

/* Heat: h' = h * d + samples * (1 - d), with d = 2^(-1/halflife).  Both
 * are here, inline, so that attribution (which computes heat) and the
 * reader (which recomputes it from the samples) share one definition and
 * the reader's tools need nothing else of the profiler.  d is 0 (heat is
 * the last interval's samples) for a half-life that is not positive or NaN. */
static inline double prof_heat_decay(double halflife)
{
    if (!(halflife > 0)) /* also NaN */
        return 0.0;
    return exp2(-1.0 / halflife);
}
static inline double prof_heat_update(double heat, uint64_t samples,
                                      double decay)
{
    return heat * decay + (double)samples * (1.0 - decay);
}

typedef struct attrib attrib_t;

attrib_t *attrib_new(double halflife);
void attrib_delete(attrib_t *a);
/* A sink that counts into a. */
prof_sink_t attrib_sink(attrib_t *a);
/* Count weight samples at addr (lock-free, any thread).  Returns the
 * arena id, 0 for an address no arena owns. */
unsigned attrib_sample(attrib_t *a, uintptr_t addr, uint32_t weight);
void attrib_lost(attrib_t *a, uint64_t n);
/* Residency of an arena measured this interval (profiling thread). */
void attrib_residency(attrib_t *a, unsigned arena, const tm_residency_t *r);
/* Close the interval: rows for every live arena and every site, heat
 * updated, counters reset.  The result lives in a and stays valid until
 * the next attrib_close.  NULL only if metadata memory ran out. */
const prof_interval_t *attrib_close(attrib_t *a, uint64_t t_start_ns,
                                    uint64_t t_end_ns);

/* ================================================================ residency
 * residency_sampler.c: resident bytes of every arena, per node, sampled
 * with move_pages (at most max_pages pages per arena). */
void residency_sample_all(attrib_t *a, size_t max_pages);

/* ================================================================ profile file
 * profile_write.c and profile_read.c; the format is doc/profile-format.md. */

/* 3 adds the optional sampler_detail and sampler_totals lines. */
#define PROF_FORMAT_VERSION 3

typedef struct prof_node {
    unsigned id;
    unsigned tier;       /* index in the topology, 0 = fastest */
    uint64_t capacity;   /* bytes */
} prof_node_t;

typedef struct prof_header {
    char exe[256];
    long pid;
    int rank;            /* -1 without MPI */
    char sampler[32];    /* the sampler actually used */
    char sampler_detail[224]; /* its event, period and what the period
                                 counts (perf samplers; "" = none) */
    uint64_t interval_ns;
    double halflife;
    uint64_t start_unix_ms;
    unsigned nnodes;
    prof_node_t nodes[TM_MAX_NODES];
} prof_header_t;

typedef struct prof_writer prof_writer_t;

/* Create path.partial and write the header.  NULL + errno; EEXIST when
 * path.partial exists (another writer, or a crashed run's), which is never
 * touched. */
prof_writer_t *profile_writer_open(const char *path, const prof_header_t *h);
/* Append one interval, whole, with one write(2) per buffer-full; each
 * interval ends with its own end line, so a crash leaves every earlier
 * interval readable.  Rows whose samples are 0 and whose other fields are
 * what the writer last wrote for that arena or site may be left out; the
 * reader counts them into heat (which decays) and the totals, but returns
 * only the rows written.  0 or -1 + errno (logged). */
int profile_writer_interval(prof_writer_t *w, const prof_interval_t *iv);
/* The sampler's totals, written by profile_writer_finish before the
 * trailer (no line when never called). */
void profile_writer_set_totals(prof_writer_t *w,
                               const prof_sampler_totals_t *t);
/* Write the trailer, fsync, rename path.partial to path, free w. */
int profile_writer_finish(prof_writer_t *w);
/* Close without finishing (a fork child): the file is left as it is. */
void profile_writer_abandon(prof_writer_t *w);

typedef struct profile {
    prof_header_t header;
    bool complete;        /* the trailer is there: the run ended normally */
    bool has_sampler_totals; /* a sampler_totals line (version 3) */
    prof_sampler_totals_t sampler_totals;
    size_t nintervals;    /* complete intervals only */
    /* Each interval holds the rows as written (see profile_writer_interval),
     * with heat recomputed from the samples. */
    prof_interval_t *intervals;
    /* Every site seen, with totals over the whole profile. */
    size_t nsites;
    struct prof_site_total {
        uint32_t index;
        uint64_t key;
        int32_t explicit_id;
        unsigned arena;      /* last arena */
        uint64_t samples;    /* sum over intervals */
        tm_alloc_stats_t stats; /* last seen (peak = highest) */
    } *sites;
    size_t narenas;
    struct prof_arena_total {
        unsigned id;
        uint8_t kind;
        uint64_t samples;
        uint64_t peak_mapped;
        uint64_t last_resident;
    } *arenas;
} profile_t;

/* Read a profile (a finished one or a .partial left by a crash).  0, or -1
 * with errno and one logged line "path:line: what is wrong".  A torn last
 * interval is dropped, not an error. */
int profile_read(const char *path, profile_t *out);
int profile_parse(const char *text, size_t len, const char *name,
                  profile_t *out);
void profile_free(profile_t *p);

/* ================================================================ the thread
 * profiler.c */

/* Called on the profiling thread after each interval has been written. */
typedef void (*prof_interval_fn)(const prof_interval_t *iv, void *ctx);
/* Set before profiler_start (the library's start-up wires the policy). */
void profiler_set_interval_hook(prof_interval_fn fn, void *ctx);

/* Start the profiling thread with these settings.  0, or -1 with errno
 * (already running, no thread, no profile file). */
int profiler_start(const prof_options_t *o);
/* Close the last interval, finish the profile, join the thread.  Safe to
 * call when not running. */
void profiler_stop(void);
/* profiler_stop for the moment before exec: gives up (the profile stays
 * .partial) rather than wait if a start or stop is under way. */
void profiler_before_exec(void);
bool profiler_running(void);
/* The sampler in use ("uffd", "pebs", ...), or "" when not running. */
const char *profiler_sampler_name(void);
/* The profile file being written ("" when none). */
const char *profiler_profile_path(void);

/* Descriptors.  Every descriptor the profiler keeps (its timerfd and
 * eventfd, the profile, the samplers' userfaultfd, eventfds and perf
 * events) is taken with fd_own and checked with fd_is_ours before
 * it is used.  One that is no longer ours (the program closed it, e.g.
 * with closefrom, and may have opened a file of its own at its number) is
 * never read, written, ioctl'd or closed again: its user reports it here,
 * which logs one warning per run and makes the profiling thread stop,
 * leaving the profile .partial.  Any thread that may log may call it (not
 * the uffd service thread).  profiler_fds.c. */
void prof_fd_lost(int fd, const char *what);
/* Has a descriptor been reported lost since profiling started? */
bool prof_fd_any_lost(void);
/* A new run: nothing lost yet. */
void prof_fd_reset(void);
/* The profiler starts only if, once its own descriptors are open, at
 * least this many remain free below the soft RLIMIT_NOFILE for the
 * program (doc/profiler.md, "Descriptors"). */
#define PROF_FD_MARGIN 64
/* Are PROF_FD_MARGIN descriptors left to the program after `ours` more are
 * opened?  false after one warning, with errno EMFILE. */
bool prof_fd_room(long ours);

/* The longest profile path: the output directory, the exe's name, a tag. */
#define PROF_PATH_MAX (TM_PATH_MAX + 320)
/* profile_name.c: o->file, or tiermem-profile.<exe>.<pid|rankN>.txt in
 * the output directory, into path; false if it does not fit. */
bool profile_name_choose(const prof_options_t *o, char *path, size_t size);
/* The profile's writer under path, or when that name is taken under
 * NAME.<pid>.txt, then under a random name; path is updated.  NULL +
 * errno when none could be created.  Nothing existing is overwritten. */
prof_writer_t *profile_name_open_unique(char *path, size_t size,
                                        const prof_header_t *h);

#endif /* TM_PROFILER_H */
