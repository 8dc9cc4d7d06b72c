/*
 * perf_event.c -- the event of a perf sampler kind: its name, and its
 * encoding into a perf_event_attr through libpfm4 and sysfs.
 *
 * pebs: the all-loads event by its libpfm4 name, else raw 0x81d0; ibs: the
 * ibs_op PMU's type from sysfs; faults: the software page-fault event.  An
 * event named in TIERMEM_PROFILE_EVENT (pebs, ibs) is encoded by libpfm4
 * alone.
 *
 * Encoding says nothing of availability: libpfm4 recognises a PMU from
 * CPUID even on machines (VMs, containers) where perf_event_open of any
 * hardware event fails with ENOENT, so sampler_perf.c lets perf_event_open
 * decide.  libpfm4's encoder may allocate, once, in open, before any
 * sample is taken; the faults sampler does not use it.
 */
#include "config.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
/* the kernel's header first: libpfm4's then leaves its own copy of the
 * perf_event_attr definitions out */
#include <linux/perf_event.h>
#include <perfmon/pfmlib_perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perf_internal.h"

/*
 * Default periods.  They keep the sample rate well under the kernel's
 * throttle (perf_event_max_sample_rate, 100k/s per CPU by default, which
 * the kernel lowers node-wide once sampling interrupts take too long) on
 * a core doing 2-3 loads a cycle at 3 GHz, about 6e9 loads/s:
 *  - all loads: 6e9 / 200003 = 30k samples/s at most;
 *  - L3-miss loads: a core's misses are bounded by its memory bandwidth,
 *    a few 1e7/s (20 GB/s / 64 B = 3e8 lines/s for a whole socket), so
 *    5003 gives at most ~20k/s, and most programs far less;
 *  - all stores: about one instruction in ten, 1e9/s at most, so 100003
 *    gives 10k/s.
 * Primes, so sample points do not alias with loop strides.
 */
#define PERF_PEBS_LOAD_PERIOD 200003
#define PERF_PEBS_MISS_PERIOD 5003
#define PERF_PEBS_STORE_PERIOD 100003
/* Ops per IBS sample (IBS periods are multiples of 16): at 3e9 ops/s,
 * 11k samples/s; roughly a third of ops are memory ops with an address. */
#define PERF_IBS_PERIOD PERF_IBS_DEFAULT_PERIOD
#define PERF_IBS_SYSFS "/sys/bus/event_source/devices/ibs_op"

/* The most events of each kind one busy core gives per second, to size
 * the rings for the worst case (perf_budget.c): the figures above. */
#define PERF_RATE_LOADS 6e9
#define PERF_RATE_MISSES 1e8
#define PERF_RATE_STORES 1.5e9
#define PERF_RATE_OPS 3e9
#define PERF_RATE_FAULTS 1e6 /* a page fault costs a microsecond or more */

/* ---------------------------------------------------------------- kinds */

/* auto: pebs on Intel, ibs on AMD, by the CPUID vendor string. */
prof_sampler_kind_t perf_kind_from_cpu(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d) == 0)
        return PROF_SAMPLER_AUTO;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = '\0';
    if (strcmp(vendor, "GenuineIntel") == 0)
        return PROF_SAMPLER_PEBS;
    if (strcmp(vendor, "AuthenticAMD") == 0)
        return PROF_SAMPLER_IBS;
    return PROF_SAMPLER_AUTO;
}

/* ---------------------------------------------------------------- attr */

/*
 * libpfm4 is loaded the first time an event is encoded, not linked: most
 * processes never open a PMU sampler (no PMU in VMs, refs or uffd chosen,
 * no profiler at all), and loading it costs every process ~1 MiB of
 * relocated tables (171 + 97 dirty pages, measured under the preload
 * library) on the CPU's node, which is the fast tier on most machines --
 * per MPI rank.
 */
typedef struct pfm_api {
    int (*initialize)(void);
    const char *(*strerror)(int);
    int (*encode)(const char *, int, pfm_os_t, void *);
} pfm_api_t;

static pfm_api_t pfm;
static pthread_once_t pfm_once = PTHREAD_ONCE_INIT;

static void pfm_load(void)
{
    void *h = dlopen("libpfm.so.4", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        log_info("profiler: libpfm4 cannot be loaded (%s): PMU events are "
                 "encoded from sysfs only", dlerror());
        return;
    }
    pfm_api_t api;
    *(void **)&api.initialize = dlsym(h, "pfm_initialize");
    *(void **)&api.strerror = dlsym(h, "pfm_strerror");
    *(void **)&api.encode = dlsym(h, "pfm_get_os_event_encoding");
    if (api.initialize && api.strerror && api.encode)
        pfm = api;
    else
        log_warn("profiler: libpfm.so.4 lacks the functions tiermem uses");
}

/* Encode a libpfm4 event name into attr; 0 or -1 (errno ENOENT). */
static int perf_encode_pfm(const char *name, struct perf_event_attr *attr)
{
    pthread_once(&pfm_once, pfm_load);
    if (pfm.initialize == NULL) {
        errno = ENOENT;
        return -1;
    }
    int rc = pfm.initialize();
    if (rc != PFM_SUCCESS) {
        log_debug("profiler: pfm_initialize failed: %s", pfm.strerror(rc));
        errno = ENOENT;
        return -1;
    }
    pfm_perf_encode_arg_t arg;
    memset(&arg, 0, sizeof arg);
    arg.attr = attr;
    arg.size = sizeof arg;
    rc = pfm.encode(name, PFM_PLM3, PFM_OS_PERF_EVENT_EXT, &arg);
    if (rc != PFM_SUCCESS) {
        log_debug("profiler: libpfm4 cannot encode %s: %s", name,
                     pfm.strerror(rc));
        errno = ENOENT;
        return -1;
    }
    return 0;
}

/* The ibs_op PMU's perf type from sysfs; -1 when there is none. */
static int perf_ibs_type(void)
{
    char buf[32];
    if (read_small_file(PERF_IBS_SYSFS "/type", buf, sizeof buf) <= 0)
        return -1;
    char *end;
    long v = strtol(buf, &end, 10);
    return end == buf || v < 0 || v > INT_MAX ? -1 : (int)v;
}

/* Append one encoded event to ev; its name joins ev->name. */
static void perf_events_add(perf_events_t *ev, const struct perf_event_attr *a,
                            const char *name, uint64_t period,
                            double worst_rate)
{
    struct perf_event_attr *dst = &ev->attr[ev->n];
    *dst = *a;
    dst->sample_period = period;
    ev->worst_rate[ev->n] = worst_rate;
    size_t used = strlen(ev->name);
    snprintf(ev->name + used, sizeof ev->name - used, "%s%s",
             ev->n ? " + " : "", name);
    ev->n++;
}

/* An Intel event by its libpfm4 names (tried in order), else raw: the
 * codes below have been the same on every Intel core since Haswell, and
 * libpfm4 names the PMU from CPUID, so it may not know this core. */
static void perf_intel_event(perf_events_t *ev, const char *const *names,
                             uint64_t raw, const char *raw_name,
                             uint64_t period, double worst_rate)
{
    struct perf_event_attr a;
    for (size_t i = 0; names[i] != NULL; i++) {
        memset(&a, 0, sizeof a);
        if (perf_encode_pfm(names[i], &a) == 0) {
            perf_events_add(ev, &a, names[i], period, worst_rate);
            return;
        }
    }
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_RAW;
    a.config = raw;
    perf_events_add(ev, &a, raw_name, period, worst_rate);
}

/* pebs: variant 0, last-level-cache-miss loads plus all stores, which is
 * what tier placement changes (an L1 hit costs the same on every tier);
 * variant 1, all loads (cores without the miss event in PEBS).  An event
 * named in TIERMEM_PROFILE_EVENT is the only variant. */
static int perf_pebs_events(const prof_options_t *o, unsigned variant,
                            perf_events_t *ev)
{
    static const char *const miss[] = {"MEM_LOAD_RETIRED:L3_MISS",
                                       "MEM_LOAD_UOPS_RETIRED:L3_MISS", NULL};
    static const char *const stores[] = {"MEM_INST_RETIRED:ALL_STORES",
                                         "MEM_UOPS_RETIRED:ALL_STORES", NULL};
    static const char *const loads[] = {"MEM_INST_RETIRED:ALL_LOADS",
                                        "MEM_UOPS_RETIRED:ALL_LOADS", NULL};
    if (o->event[0] != '\0') {
        snprintf(ev->name, sizeof ev->name, "%s", o->event);
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        if (variant > 0 || perf_encode_pfm(o->event, &a) != 0) {
            errno = ENOENT;
            return -1;
        }
        ev->name[0] = '\0';
        perf_events_add(ev, &a, o->event,
                        o->period ? o->period : PERF_PEBS_LOAD_PERIOD, 0.0);
        ev->counter = "events";
        return 0;
    }
    if (variant == 0) {
        perf_intel_event(ev, miss, 0x20d1, "raw 0x20d1 (L3-miss loads)",
                         o->period ? o->period : PERF_PEBS_MISS_PERIOD,
                         PERF_RATE_MISSES);
        perf_intel_event(ev, stores, 0x82d0, "raw 0x82d0 (all stores)",
                         PERF_PEBS_STORE_PERIOD, PERF_RATE_STORES);
        ev->counter = "l3-miss-loads";
        return 0;
    }
    if (variant == 1) {
        perf_intel_event(ev, loads, 0x81d0, "raw 0x81d0 (all loads)",
                         o->period ? o->period : PERF_PEBS_LOAD_PERIOD,
                         PERF_RATE_LOADS);
        ev->counter = "loads";
        return 0;
    }
    errno = ENOENT;
    return -1;
}

/* ibs: the op PMU from sysfs, its period in ops where the PMU can count
 * them (cnt_ctl) and a multiple of 16, the kernel's own filter of kernel
 * samples where it has one (swfilt); or an event named in
 * TIERMEM_PROFILE_EVENT, encoded by libpfm4 as given. */
static int perf_ibs_events(const prof_options_t *o, unsigned variant,
                           perf_events_t *ev)
{
    const char *want = o->event[0] != '\0' ? o->event : NULL;
    snprintf(ev->name, sizeof ev->name, "%s", want ? want : "ibs_op");
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    int type = want ? 0 : perf_ibs_type();
    if (variant > 0 ||
        (want != NULL ? perf_encode_pfm(want, &a) != 0 : type < 0)) {
        errno = ENOENT;
        return -1;
    }
    ev->name[0] = '\0';
    ev->counter = "ops";
    if (want != NULL) {
        perf_events_add(ev, &a, want, o->period ? o->period : PERF_IBS_PERIOD,
                        PERF_RATE_OPS);
        return 0;
    }
    a.type = (uint32_t)type;
    perf_ibs_setup_t setup;
    if (perf_ibs_configure(PERF_IBS_SYSFS, o->period, o->l3_miss_only, &a,
                           &setup) != 0)
        log_info("profiler: the ibs_op PMU's format files are malformed "
                 "(errno %d): sampling with the fields that parsed", errno);
    if (setup.period_changed)
        log_info("profiler: ibs period %llu rounded to %llu (IBS takes "
                 "multiples of 16, at least %llu)",
                 (unsigned long long)o->period,
                 (unsigned long long)setup.period, PERF_IBS_MIN_PERIOD);
    ev->counter = perf_ibs_counter_name(&setup);
    ev->ibs_swfilt = setup.swfilt;
    perf_events_add(ev, &a, "ibs_op", setup.period, PERF_RATE_OPS);
    return 0;
}

int perf_events_for_kind(prof_sampler_kind_t kind, const prof_options_t *o,
                         unsigned variant, perf_events_t *ev)
{
    memset(ev, 0, sizeof *ev);
    switch (kind) {
    case PROF_SAMPLER_FAULTS: {
        if (variant > 0) {
            errno = ENOENT;
            return -1;
        }
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_PAGE_FAULTS;
        perf_events_add(ev, &a, "page-faults", o->period ? o->period : 1,
                        PERF_RATE_FAULTS);
        ev->counter = "page-faults";
        return 0;
    }
    case PROF_SAMPLER_PEBS:
        return perf_pebs_events(o, variant, ev);
    case PROF_SAMPLER_IBS:
        return perf_ibs_events(o, variant, ev);
    default:
        snprintf(ev->name, sizeof ev->name, "(none)");
        errno = EINVAL;
        return -1;
    }
}

/* The attribute fields we set whatever the event (after the encoding,
 * which may have written the whole attr). */
void perf_attr_common(struct perf_event_attr *attr)
{
    attr->size = sizeof *attr;
    attr->sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                        PERF_SAMPLE_ADDR;
    attr->disabled = 0;
    attr->exclude_kernel = 1;
    attr->exclude_hv = 1;
    attr->inherit = 1;
    attr->inherit_thread = 1;
}
