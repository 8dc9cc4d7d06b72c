/*
 * profiler_options.c -- the profiler's settings, read from the environment.
 *
 *   TIERMEM_PROFILE                 1|on|yes|true enables profiling (off)
 *   TIERMEM_PROFILE_SAMPLER         auto|pebs|ibs|faults|uffd|replay|none
 *   TIERMEM_PROFILE_INTERVAL        100ms; units ns, us, ms, s (bare: ms)
 *   TIERMEM_PROFILE_HALFLIFE        heat half-life in intervals (4)
 *   TIERMEM_PROFILE_EVENT           libpfm4 event name for pebs/ibs
 *   TIERMEM_PROFILE_PERIOD          events per sample (sampler default)
 *   TIERMEM_PROFILE_RING_PAGES      perf ring data pages, power of 2 (64)
 *   TIERMEM_PROFILE_UFFD_PAGES      pages write-protected per interval
 *   TIERMEM_PROFILE_RESIDENCY_EVERY residency every N intervals (10; 0 off)
 *   TIERMEM_PROFILE_RESIDENCY_PAGES pages queried per arena at most (1024)
 *   TIERMEM_PROFILE_REPLAY          trace file for the replay sampler
 *   TIERMEM_PROFILE_CLOCK           wall|trace (wall)
 *   TIERMEM_PROFILE_FILE            profile path; %r %p %e expanded
 *
 * Like the runtime's settings: a bad value gets one warning naming the
 * variable, the value and the default kept, and never stops the program.
 * A set-user-ID or set-group-ID program ignores the paths, and
 * TIERMEM_PROFILE itself: it would write a file where its caller says.
 * The names are also listed in settings/options.c so its unknown-setting
 * check knows them.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "profiler.h"

#define DEFAULT_INTERVAL_NS (100ull * 1000 * 1000)
/* Measured (doc/profiler-uffd.md): this many write faults per 100 ms
 * interval keep a program that writes everywhere within 2%. */
#define DEFAULT_UFFD_PAGES 16

static const char *const sampler_names[] = {
    [PROF_SAMPLER_AUTO] = "auto",     [PROF_SAMPLER_PEBS] = "pebs",
    [PROF_SAMPLER_IBS] = "ibs",       [PROF_SAMPLER_FAULTS] = "faults",
    [PROF_SAMPLER_UFFD] = "uffd",     [PROF_SAMPLER_REPLAY] = "replay",
    [PROF_SAMPLER_NONE] = "none",
};
#define NSAMPLERS (sizeof sampler_names / sizeof sampler_names[0])

const char *prof_sampler_name(prof_sampler_kind_t k)
{
    return (unsigned)k < NSAMPLERS ? sampler_names[k] : "?";
}

void prof_options_defaults(prof_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->sampler = PROF_SAMPLER_AUTO;
    o->interval_ns = DEFAULT_INTERVAL_NS;
    o->halflife = 4.0;
    o->ring_pages = 64;
    o->uffd_pages = DEFAULT_UFFD_PAGES;
    o->residency_every = 10;
    o->residency_pages = 1024;
}

static void parse_numbers(char *const *env, prof_options_t *o)
{
    const char *v;
    unsigned long n;
    if ((v = env_value(env, "TIERMEM_PROFILE_INTERVAL")) != NULL && *v) {
        uint64_t ns;
        if (parse_duration_ns(v, &ns) && ns >= 1000000 &&
            ns <= 3600ull * 1000000000)
            o->interval_ns = ns;
        else
            setting_bad("TIERMEM_PROFILE_INTERVAL", v,
                           "a duration from 1ms to 1h (e.g. 100ms, 1s)",
                           "100ms");
    }
    if ((v = env_value(env, "TIERMEM_PROFILE_HALFLIFE")) != NULL && *v &&
        !parse_double(v, 0.01, 1e6, &o->halflife))
        setting_bad("TIERMEM_PROFILE_HALFLIFE", v,
                       "a number of intervals from 0.01 to 1e6", "4");
    if ((v = env_value(env, "TIERMEM_PROFILE_PERIOD")) != NULL && *v) {
        if (parse_ulong(v, 1, 1ul << 40, &n))
            o->period = n;
        else
            setting_bad("TIERMEM_PROFILE_PERIOD", v,
                           "a number of events >= 1", "the sampler's default");
    }
    if ((v = env_value(env, "TIERMEM_PROFILE_RING_PAGES")) != NULL && *v) {
        if (parse_ulong(v, 1, 1ul << 16, &n) && (n & (n - 1)) == 0)
            o->ring_pages = (unsigned)n;
        else
            setting_bad("TIERMEM_PROFILE_RING_PAGES", v,
                           "a power of two from 1 to 65536", "64");
    }
    if ((v = env_value(env, "TIERMEM_PROFILE_UFFD_PAGES")) != NULL && *v) {
        if (parse_ulong(v, 1, 1ul << 20, &n))
            o->uffd_pages = (unsigned)n;
        else
            setting_bad("TIERMEM_PROFILE_UFFD_PAGES", v,
                           "a page count from 1", "16");
    }
    if ((v = env_value(env, "TIERMEM_PROFILE_RESIDENCY_EVERY")) != NULL &&
        *v) {
        if (parse_ulong(v, 0, 1ul << 20, &n))
            o->residency_every = (unsigned)n;
        else
            setting_bad("TIERMEM_PROFILE_RESIDENCY_EVERY", v,
                           "a number of intervals (0 = never)", "10");
    }
    if ((v = env_value(env, "TIERMEM_PROFILE_RESIDENCY_PAGES")) != NULL &&
        *v) {
        if (parse_ulong(v, 1, 1ul << 30, &n))
            o->residency_pages = n;
        else
            setting_bad("TIERMEM_PROFILE_RESIDENCY_PAGES", v,
                           "a page count from 1", "1024");
    }
}

static void copy_setting(const char *name, const char *v, const char *want,
                         char *dst, size_t size)
{
    size_t len = strlen(v);
    if (len < size) {
        memcpy(dst, v, len + 1);
        return;
    }
    setting_bad(name, v, want, "none");
    dst[0] = '\0';
}

/* libpfm4 event strings ("MEM_LOAD_RETIRED.L3_MISS:u", "ibs_op",
 * "pmu::event:umask=0x1") use only these: anything else is refused here,
 * so the samplers that name the event in their messages never print a
 * stranger's bytes. */
static bool event_name_ok(const char *v)
{
    for (; *v != '\0'; v++) {
        char c = *v;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || strchr("_.:=,/+-", c) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

static void parse_event(const char *v, prof_options_t *o)
{
    if (event_name_ok(v))
        copy_setting("TIERMEM_PROFILE_EVENT", v,
                     "an event name that fits (127 bytes)", o->event,
                     sizeof o->event);
    else
        setting_bad("TIERMEM_PROFILE_EVENT", v,
                       "a libpfm4 event name (A-Z a-z 0-9 _ . : = , / + -)",
                       "the sampler's default");
}

/* A profile is a file written where the environment says (or into the
 * current directory): not for a set-user-ID or set-group-ID program. */
static void refuse_profile_if_secure(prof_options_t *o)
{
    if (!o->enabled || !secure_process())
        return;
    log_warn("TIERMEM_PROFILE is ignored: a set-user-ID or set-group-ID "
                "program writes no profile");
    o->enabled = false;
}

static void parse_profile_file(const char *v, prof_options_t *o)
{
    char exe[256] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : (exe[0] ? exe : "unknown");
    if (!expand_path(v, runtime_options.rank, (long)getpid(), base, o->file,
                        sizeof o->file)) {
        setting_bad("TIERMEM_PROFILE_FILE", v,
                       "a path that fits, with only %r, %p, %e and %%",
                       "the default name");
        o->file[0] = '\0';
    }
}

void prof_options_parse(char *const *env, prof_options_t *o)
{
    prof_options_defaults(o);
    const char *v;
    if ((v = env_value(env, "TIERMEM_PROFILE")) != NULL && *v &&
        !parse_bool(v, &o->enabled))
        setting_bad("TIERMEM_PROFILE", v,
                       "1, on, yes, true, 0, off, no or false", "off");
    if ((v = env_value(env, "TIERMEM_PROFILE_SAMPLER")) != NULL && *v) {
        int k = parse_enum(v, sampler_names, NSAMPLERS);
        if (k >= 0)
            o->sampler = (prof_sampler_kind_t)k;
        else
            setting_bad("TIERMEM_PROFILE_SAMPLER", v,
                           "one of auto, pebs, ibs, faults, uffd, replay, none",
                           "auto");
    }
    refuse_profile_if_secure(o);
    parse_numbers(env, o);
    if ((v = env_value(env, "TIERMEM_PROFILE_EVENT")) != NULL && *v)
        parse_event(v, o);
    if ((v = env_value(env, "TIERMEM_PROFILE_REPLAY")) != NULL && *v &&
        !path_setting_refused("TIERMEM_PROFILE_REPLAY", v))
        copy_setting("TIERMEM_PROFILE_REPLAY", v, "a path that fits",
                     o->replay, sizeof o->replay);
    if ((v = env_value(env, "TIERMEM_PROFILE_CLOCK")) != NULL && *v) {
        static const char *const clocks[] = {"wall", "trace"};
        int k = parse_enum(v, clocks, 2);
        if (k >= 0)
            o->trace_clock = k == 1;
        else
            setting_bad("TIERMEM_PROFILE_CLOCK", v, "wall or trace", "wall");
    }
    if ((v = env_value(env, "TIERMEM_PROFILE_FILE")) != NULL && *v &&
        !path_setting_refused("TIERMEM_PROFILE_FILE", v))
        parse_profile_file(v, o);
    if (o->sampler == PROF_SAMPLER_REPLAY && o->replay[0] == '\0') {
        log_warn("TIERMEM_PROFILE_SAMPLER=replay needs "
                    "TIERMEM_PROFILE_REPLAY (a trace file); using none");
        o->sampler = PROF_SAMPLER_NONE;
    }
    if (o->trace_clock && o->sampler != PROF_SAMPLER_REPLAY) {
        log_warn("TIERMEM_PROFILE_CLOCK=trace applies to the replay "
                    "sampler only; using wall");
        o->trace_clock = false;
    }
}
