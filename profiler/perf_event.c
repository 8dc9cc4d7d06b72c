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
#include <fcntl.h>
/* the kernel's header first: libpfm4's then leaves its own copy of the
 * perf_event_attr definitions out */
#include <linux/perf_event.h>
#include <perfmon/pfmlib_perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perf_internal.h"

/* Loads per sample for pebs.  A prime, so the sample points do not alias
 * with loop strides; at ~1e9 loads/s per core it gives ~50k samples/s, the
 * kernel's default max sample rate is 100k/s, and the ~5000 samples of a
 * 100 ms interval (40-byte records) fit the default 64-page ring. */
#define PERF_PEBS_PERIOD 20011
/* Ops per IBS sample; IBS periods are multiples of 16.  Only memory ops
 * carry an address, roughly a third of them. */
#define PERF_IBS_PERIOD 65536

/* ---------------------------------------------------------------- kinds */

const char *perf_kind_name(prof_sampler_kind_t k)
{
    switch (k) {
    case PROF_SAMPLER_PEBS:
        return "pebs";
    case PROF_SAMPLER_IBS:
        return "ibs";
    case PROF_SAMPLER_FAULTS:
        return "faults";
    default:
        return "perf";
    }
}

/* What the period of kind's default event counts, for the profile. */
const char *perf_kind_counter(prof_sampler_kind_t k)
{
    switch (k) {
    case PROF_SAMPLER_PEBS:
        return "loads";
    case PROF_SAMPLER_IBS:
        return "ops";
    case PROF_SAMPLER_FAULTS:
        return "page-faults";
    default:
        return "events";
    }
}

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
    int fd = open("/sys/bus/event_source/devices/ibs_op/type",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (close(fd) != 0)
        log_debug("profiler: close of ibs_op/type failed: errno %d", errno);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    return end == buf || v < 0 ? -1 : (int)v;
}

/* The event for kind: encoding plus the name logged.  0, or -1 after
 * setting errno (the caller logs the one warning). */
int perf_event_for_kind(prof_sampler_kind_t kind, const prof_options_t *o,
                        struct perf_event_attr *attr, char *name,
                        size_t name_size)
{
    const char *want = o->event[0] != '\0' ? o->event : NULL;
    switch (kind) {
    case PROF_SAMPLER_FAULTS:
        snprintf(name, name_size, "page-faults");
        attr->type = PERF_TYPE_SOFTWARE;
        attr->config = PERF_COUNT_SW_PAGE_FAULTS;
        attr->sample_period = o->period ? o->period : 1;
        return 0;
    case PROF_SAMPLER_PEBS: {
        const char *names[] = {want ? want : "MEM_INST_RETIRED:ALL_LOADS",
                               want ? NULL : "MEM_UOPS_RETIRED:ALL_LOADS"};
        snprintf(name, name_size, "%s", names[0]);
        for (size_t i = 0; i < 2 && names[i] != NULL; i++)
            if (perf_encode_pfm(names[i], attr) == 0) {
                snprintf(name, name_size, "%s", names[i]);
                attr->sample_period = o->period ? o->period
                                                : PERF_PEBS_PERIOD;
                return 0;
            }
        if (want != NULL)
            return -1;
        /* libpfm4 names the PMU from CPUID and may not know this core (or
         * mistake it for another vendor's): the all-loads event has had
         * the same code, event 0xd0 umask 0x81, on every Intel core since
         * Sandy Bridge, so ask the kernel for it raw.  perf_event_open
         * then decides, which is the probe that counts. */
        snprintf(name, name_size, "raw 0x81d0 (all loads)");
        memset(attr, 0, sizeof *attr);
        attr->type = PERF_TYPE_RAW;
        attr->config = 0x81d0;
        attr->sample_period = o->period ? o->period : PERF_PEBS_PERIOD;
        return 0;
    }
    case PROF_SAMPLER_IBS: {
        snprintf(name, name_size, "%s", want ? want : "ibs_op");
        int type = want ? 0 : perf_ibs_type();
        if (want != NULL ? perf_encode_pfm(want, attr) != 0 : type < 0) {
            errno = ENOENT;
            return -1;
        }
        if (want == NULL) {
            attr->type = (uint32_t)type;
            attr->config = 0;
        }
        attr->sample_period = o->period ? o->period : PERF_IBS_PERIOD;
        return 0;
    }
    default:
        snprintf(name, name_size, "(none)");
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
