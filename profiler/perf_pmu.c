/*
 * perf_pmu.c -- what sysfs and the host say about a PMU sampler before
 * and after its first perf_event_open: the PMU's format fields, the IBS op
 * PMU's setup (its flags and period), and the one sentence that names why
 * a first open failed.
 *
 * Everything here is a function of text (a sysfs directory, a kernel
 * release string, an errno and a few host facts), so that it is tested on
 * machines without a PMU -- which is most of them: VMs and containers,
 * where perf_event_open of any hardware event fails with ENOENT.  Every
 * file is read into a fixed buffer and parsed as hostile: a format file
 * of any size or content, a FIFO or a link to /dev/zero in its place, is
 * an error, never a hang or an overrun.
 *
 * No malloc, no stdio streams; logs only through log_debug.  Calls no
 * other file of the perf samplers, so that perf_event.c and
 * sampler_perf.c may call it without forming a cycle.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "perf_internal.h"

/* A format file holds a line like "config:0-7,32-35\n"; anything longer
 * than this is not one. */
#define PERF_FORMAT_TEXT_MAX 256
/* The longest format name we accept ("l3missonly" is 10). */
#define PERF_FORMAT_NAME_MAX 64

/* ---------------------------------------------------------------- format */

/* A file name, not a path: no '/', not "." or "..", not empty. */
static bool perf_format_name_ok(const char *name)
{
    size_t n = strnlen(name, PERF_FORMAT_NAME_MAX);
    return n > 0 && n < PERF_FORMAT_NAME_MAX && strchr(name, '/') == NULL &&
           strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* "config", "config1", "config2" at *p, followed by ':'; advances *p past
 * the ':'.  -1 for any other word (config3 of Linux 6.3 included: the
 * attr we build has no field we set for it). */
static int perf_format_word(const char **p, uint8_t *word)
{
    static const char *const words[] = {"config:", "config1:", "config2:"};
    for (uint8_t w = 0; w < 3; w++) {
        size_t n = strlen(words[w]);
        if (strncmp(*p, words[w], n) == 0) {
            *p += n;
            *word = w;
            return 0;
        }
    }
    return -1;
}

/* A bit number 0..63 at *p (decimal, at least one digit); advances *p. */
static int perf_format_bit(const char **p, unsigned *bit)
{
    const char *s = *p;
    unsigned v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned)(*s - '0');
        if (v > 63)
            return -1; /* also stops long digit strings early */
    }
    *p = s;
    *bit = v;
    return 0;
}

/* Parse "word:lo[-hi][,lo[-hi]]...\n?" into f.  0, or -1 (malformed). */
static int perf_format_parse(const char *text, perf_format_field_t *f)
{
    const char *p = text;
    uint8_t word;
    uint64_t mask = 0;
    if (perf_format_word(&p, &word) != 0)
        return -1;
    for (;;) {
        unsigned lo, hi;
        if (perf_format_bit(&p, &lo) != 0)
            return -1;
        hi = lo;
        if (*p == '-' && (p++, perf_format_bit(&p, &hi) != 0 || hi < lo))
            return -1;
        /* bits lo..hi, without a shift by 64 */
        mask |= (~(uint64_t)0 >> (63 - hi)) & (~(uint64_t)0 << lo);
        if (*p != ',')
            break;
        p++;
    }
    if (*p == '\n')
        p++;
    if (*p != '\0')
        return -1;
    f->present = true;
    f->word = word;
    f->mask = mask;
    return 0;
}

int perf_format_read(const char *pmu_dir, const char *name,
                     perf_format_field_t *f)
{
    memset(f, 0, sizeof *f);
    if (!perf_format_name_ok(name)) {
        errno = EINVAL;
        return -1;
    }
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/format/%s", pmu_dir, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char text[PERF_FORMAT_TEXT_MAX];
    if (read_small_file(path, text, sizeof text) < 0) {
        if (errno == ENOENT)
            return 0; /* this PMU (or kernel) has no such field */
        log_debug("profiler: reading %s failed: errno %d (%s)", path, errno,
                  strerror(errno));
        return -1;
    }
    if (perf_format_parse(text, f) != 0) {
        memset(f, 0, sizeof *f);
        log_debug("profiler: %s is not a format field", path);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

void perf_format_set(struct perf_event_attr *attr,
                     const perf_format_field_t *f)
{
    if (!f->present)
        return;
    switch (f->word) {
    case 0:
        attr->config |= f->mask;
        break;
    case 1:
        attr->config1 |= f->mask;
        break;
    case 2:
        attr->config2 |= f->mask;
        break;
    default:
        break; /* perf_format_read never makes one */
    }
}

/* ---------------------------------------------------------------- ibs */

uint64_t perf_ibs_round_period(uint64_t want)
{
    if (want == 0)
        return PERF_IBS_DEFAULT_PERIOD;
    if (want >= PERF_IBS_MAX_PERIOD)
        return PERF_IBS_MAX_PERIOD; /* before + 8 can overflow */
    uint64_t p = (want + 8) & ~(uint64_t)15; /* nearest; halves go up */
    return p < PERF_IBS_MIN_PERIOD ? PERF_IBS_MIN_PERIOD : p;
}

/* Read a one-bit flag `name` of the PMU into *f: absent is fine, a field
 * wider than one bit is malformed for a flag.  0, or -1 with errno (and
 * *f absent). */
static int perf_ibs_flag(const char *pmu_dir, const char *name,
                         perf_format_field_t *f)
{
    if (perf_format_read(pmu_dir, name, f) != 0)
        return -1;
    if (f->present && __builtin_popcountll(f->mask) != 1) {
        log_debug("profiler: %s/format/%s is %d bits wide, not a flag",
                  pmu_dir, name, __builtin_popcountll(f->mask));
        memset(f, 0, sizeof *f);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int perf_ibs_configure(const char *pmu_dir, uint64_t want_period,
                       bool want_l3miss, struct perf_event_attr *attr,
                       perf_ibs_setup_t *out)
{
    static const char *const names[] = {"cnt_ctl", "swfilt", "l3missonly"};
    perf_format_field_t f[3];
    int err = 0;
    for (size_t i = 0; i < 3; i++)
        if (perf_ibs_flag(pmu_dir, names[i], &f[i]) != 0 && err == 0)
            err = errno; /* report the first; go on with the others */
    memset(out, 0, sizeof *out);
    /* cnt_ctl: the period counts dispatched ops, so each op has the same
     * chance to be tagged; counting cycles favours the ops that follow a
     * stall, which skews which addresses are seen. */
    out->cnt_ctl = f[0].present;
    /* swfilt: the kernel drops kernel samples itself, which is what lets
     * IBS accept exclude_kernel at all (Linux 6.14). */
    out->swfilt = f[1].present;
    out->l3missonly = want_l3miss && f[2].present;
    perf_format_set(attr, &f[0]);
    perf_format_set(attr, &f[1]);
    if (out->l3missonly)
        perf_format_set(attr, &f[2]);
    out->period = perf_ibs_round_period(want_period);
    out->period_changed = want_period != 0 && out->period != want_period;
    attr->freq = 0;
    attr->sample_period = out->period;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

const char *perf_ibs_counter_name(const perf_ibs_setup_t *s)
{
    return s->cnt_ctl ? "ops" : "cycles";
}

/* ---------------------------------------------------------------- host */

/* A non-negative decimal int at *p, at least one digit; advances *p. */
static int perf_parse_uint(const char **p, int *out)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v > INT_MAX)
            return -1;
    }
    *p = s;
    *out = (int)v;
    return 0;
}

int perf_kernel_release_parse(const char *release, int *major, int *minor)
{
    const char *p = release;
    int ma, mi;
    if (perf_parse_uint(&p, &ma) != 0 || *p++ != '.' ||
        perf_parse_uint(&p, &mi) != 0) {
        errno = EINVAL;
        return -1;
    }
    /* "6.1.0-57-amd64", "5.14.0-427.el9.x86_64", "6.18.44-fc-v1300": what
     * follows the minor is the distribution's business */
    *major = ma;
    *minor = mi;
    return 0;
}

int perf_paranoid_parse(const char *text)
{
    const char *p = text;
    bool neg = *p == '-';
    int v;
    if (neg)
        p++;
    if (perf_parse_uint(&p, &v) != 0)
        return INT_MIN;
    if (*p == '\n')
        p++;
    return *p == '\0' ? (neg ? -v : v) : INT_MIN;
}

int perf_paranoid_read(const char *path)
{
    char text[32];
    if (read_small_file(path, text, sizeof text) < 0)
        return INT_MIN;
    return perf_paranoid_parse(text);
}

bool perf_cap_effective(unsigned cap)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (cap >= 32 * _LINUX_CAPABILITY_U32S_3)
        return false;
    if (syscall(SYS_capget, &hdr, data) != 0) {
        log_debug("profiler: capget failed: errno %d", errno);
        return false;
    }
    return (data[cap / 32].effective >> (cap % 32)) & 1;
}

/* CAP_PERFMON (Linux 5.8) or CAP_SYS_ADMIN in our effective set. */
static bool perf_privileged(void)
{
    const unsigned perfmon = 38, sys_admin = 21;
    return perf_cap_effective(perfmon) || perf_cap_effective(sys_admin);
}

void perf_host_facts_read(perf_host_facts_t *h)
{
    struct utsname u;
    h->kernel_major = h->kernel_minor = -1;
    if (uname(&u) != 0 ||
        perf_kernel_release_parse(u.release, &h->kernel_major,
                                  &h->kernel_minor) != 0) {
        h->kernel_major = h->kernel_minor = -1;
        log_debug("profiler: the kernel release is not X.Y...");
    }
    h->paranoid = perf_paranoid_read(PERF_PARANOID_PATH);
    h->privileged = perf_privileged();
}

/* ---------------------------------------------------------------- cause */

/* Is the kernel known, and older than major.minor? */
static bool perf_kernel_before(const perf_host_facts_t *h, int major,
                               int minor)
{
    if (h->kernel_major < 0 || h->kernel_minor < 0)
        return false;
    return h->kernel_major < major ||
           (h->kernel_major == major && h->kernel_minor < minor);
}

/* "6.1", or "unknown", into buf. */
static const char *perf_kernel_text(const perf_host_facts_t *h, char *buf,
                                    size_t len)
{
    if (h->kernel_major < 0 || h->kernel_minor < 0)
        snprintf(buf, len, "unknown");
    else
        snprintf(buf, len, "%d.%d", h->kernel_major, h->kernel_minor);
    return buf;
}

/* EACCES or EPERM: which policy refused. */
static void perf_cause_denied(const char *kn, int err,
                              const perf_host_facts_t *h,
                              bool ibs_needs_kernel, const char *kv,
                              char *buf, size_t len)
{
    const char *en = err == EPERM ? "EPERM" : "EACCES";
    char pv[48];
    if (h->paranoid == INT_MIN)
        snprintf(pv, sizeof pv, "perf_event_paranoid (unreadable)");
    else
        snprintf(pv, sizeof pv, "perf_event_paranoid=%d", h->paranoid);
    if (ibs_needs_kernel && !h->privileged &&
        (h->paranoid >= 2 || h->paranoid == INT_MIN))
        snprintf(buf, len, "IBS on this kernel (%s) cannot exclude kernel "
                 "samples (no swfilt format; Linux 6.14 filters them in "
                 "software), and %s forbids kernel samples to unprivileged "
                 "processes above 1: lower it to 1 or give the process "
                 "CAP_PERFMON", kv, pv);
    else if (!h->privileged && h->paranoid > 2)
        snprintf(buf, len, "perf_event_paranoid is %d: above 2 (a "
                 "Debian/Ubuntu patch) it forbids every perf event to "
                 "unprivileged processes; %s sampling needs it at 2 or "
                 "below (user-space samples of the process's own threads) "
                 "or CAP_PERFMON", h->paranoid, kn);
    else if (!h->privileged && h->paranoid == INT_MIN)
        snprintf(buf, len, "perf_event_open of the %s event was refused "
                 "(%s) and perf_event_paranoid cannot be read: it must be "
                 "2 or below, or the process needs CAP_PERFMON", kn, en);
    else
        snprintf(buf, len, "perf_event_open of the %s event was refused "
                 "(%s) although %s allows it: a seccomp filter (a "
                 "container's), a security module (SELinux, AppArmor) or "
                 "kernel lockdown forbids perf events here", kn, en,
                 h->privileged ? "CAP_PERFMON" : "perf_event_paranoid");
}

const char *perf_open_cause(prof_sampler_kind_t kind, int err,
                            const perf_host_facts_t *h,
                            bool swfilt_available, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return "";
    const char *kn = prof_sampler_name(kind);
    bool pmu = kind == PROF_SAMPLER_PEBS || kind == PROF_SAMPLER_IBS;
    bool ibs = kind == PROF_SAMPLER_IBS;
    char kv[24];
    perf_kernel_text(h, kv, sizeof kv);
    switch (err) {
    case ENOENT:
        if (pmu) {
            snprintf(buf, len, "no hardware PMU here: the kernel knows no "
                     "%s event (ENOENT), as in most VMs and containers, "
                     "whose hypervisor exposes no %s", kn,
                     ibs ? "IBS" : "PMU");
            return buf;
        }
        break;
    case EINVAL:
        if (ibs && perf_kernel_before(h, 6, 2))
            snprintf(buf, len, "the IBS PMU cannot follow a single process "
                     "before Linux 6.2 (this kernel: %s); a privileged "
                     "process (CAP_PERFMON, or perf_event_paranoid 0 or below) "
                     "can sample system-wide instead",
                     kv);
        else
            snprintf(buf, len, "the kernel (%s) rejected the %s event's "
                     "attributes (EINVAL): this PMU does not support the "
                     "event, its period or one of its filters", kv, kn);
        return buf;
    case EACCES:
    case EPERM:
        perf_cause_denied(kn, err, h,
                          ibs && !swfilt_available &&
                              !perf_kernel_before(h, 6, 2),
                          kv, buf, len);
        return buf;
    case EOPNOTSUPP:
        snprintf(buf, len, "the %s PMU cannot sample here (EOPNOTSUPP): it "
                 "has no overflow interrupt, as is common for a VM's "
                 "virtual PMU, which counts but does not sample", kn);
        return buf;
    case EBUSY:
        snprintf(buf, len, "the %s PMU's counters are taken by another user "
                 "(EBUSY): the NMI watchdog, another perf session or the "
                 "hypervisor", kn);
        return buf;
    case EMFILE:
    case ENFILE:
        snprintf(buf, len, "out of file descriptors (%s): %s sampling opens "
                 "one event per thread per CPU; raise %s", err == EMFILE
                 ? "EMFILE" : "ENFILE", kn, err == EMFILE
                 ? "the process's RLIMIT_NOFILE (ulimit -n)"
                 : "the system's fs.file-max");
        return buf;
    case ENODATA:
        snprintf(buf, len, "the kernel wants the mem-loads-aux event as the "
                 "group leader of a load-latency event (ENODATA), as on "
                 "Intel Sapphire Rapids and later");
        return buf;
    case E2BIG:
        snprintf(buf, len, "the kernel (%s) is older than the "
                 "perf_event_attr tiermem was built with (E2BIG)", kv);
        return buf;
    case ENODEV:
        snprintf(buf, len, "the CPU lacks a feature the %s event needs "
                 "(ENODEV)", kn);
        return buf;
    default:
        break;
    }
    snprintf(buf, len, "perf_event_open of the %s event failed: errno %d "
             "(%s)", kn, err, strerror(err));
    return buf;
}
