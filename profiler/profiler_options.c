/*
 * profiler_options.c -- the profiler's settings, read from the environment.
 *
 * The rows below (TIERMEM_PROFILE and TIERMEM_PROFILE_*) are the profiler's
 * part of the settings registry: settings/setting_env.c parses them into a
 * prof_options_t, and tools/tiermem_settings.c prints them into
 * doc/configuration.md.  Like the runtime's settings: a bad value gets one
 * warning naming the variable, the value and the default kept, and never
 * stops the program.  A set-user-ID or set-group-ID program ignores the
 * paths, and TIERMEM_PROFILE itself: it would write a file where its caller
 * says.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "profiler.h"

#define DEFAULT_INTERVAL_NS (100ull * 1000 * 1000)
/* 0: the uffd sampler scales its budget with resident memory, within its
 * cost cap (sampler_uffd.c, doc/profiler-uffd.md). */
#define DEFAULT_UFFD_PAGES 0

static const char *const sampler_names[] = {
    [PROF_SAMPLER_AUTO] = "auto",     [PROF_SAMPLER_PEBS] = "pebs",
    [PROF_SAMPLER_IBS] = "ibs",       [PROF_SAMPLER_FAULTS] = "faults",
    [PROF_SAMPLER_REFS] = "refs",
    [PROF_SAMPLER_UFFD] = "uffd",     [PROF_SAMPLER_REPLAY] = "replay",
    [PROF_SAMPLER_NONE] = "none",
};
#define NSAMPLERS (sizeof sampler_names / sizeof sampler_names[0])

static const char *const system_wide_names[] = {
    [PROF_SYSTEM_WIDE_AUTO] = "auto", [PROF_SYSTEM_WIDE_ON] = "on",
    [PROF_SYSTEM_WIDE_OFF] = "off"};

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
    o->ring_pages = 0; /* sized by perf_ring_plan */
    o->uffd_pages = DEFAULT_UFFD_PAGES;
    o->refs_cost = 2.0;
    o->residency_every = 10;
    o->residency_pages = 1024;
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

static void parse_event(const setting_t *row, const char *var,
                        const char *v, void *owner, char *const *env)
{
    prof_options_t *o = owner;
    (void)row, (void)var, (void)env;
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

/* The set-user-ID refusal came first (setting_apply: a SETTING_PATH). */
static void parse_profile_file(const setting_t *row, const char *var,
                               const char *v, void *owner, char *const *env)
{
    prof_options_t *o = owner;
    (void)row, (void)var, (void)env;
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

/* ---------------------------------------------------------------- the rows */

#define FIELD(f, kind) .field = (kind), .offset = offsetof(prof_options_t, f), \
                       .size = sizeof(((prof_options_t *)0)->f)

static const char *const clock_names[] = {"wall", "trace"};

enum { ROW_PROFILE, ROW_SAMPLER, ROW_FIRST_NUMBER };

static const setting_t profiler_rows[] = {
    [ROW_PROFILE] =
    {.name = "TIERMEM_PROFILE", .type = SETTING_BOOL, FIELD(enabled, FIELD_BOOL),
     .dflt = "off", .want = "1, on, yes, true, 0, off, no or false",
     .values_doc = "`1`, `on`, `yes`, `true` / `0`, `off`, `no`, `false`",
     .doc = "start the profiling thread when the library loads"},
    [ROW_SAMPLER] =
    {.name = "TIERMEM_PROFILE_SAMPLER", .type = SETTING_ENUM,
     .names = sampler_names, .nnames = NSAMPLERS, FIELD(sampler, FIELD_INT),
     .dflt = "auto",
     .want = "one of auto, pebs, ibs, faults, refs, uffd, replay, none",
     .values_doc = "`auto`, `pebs`, `ibs`, `faults`, `refs`, `uffd`, "
                   "`replay`, `none`",
     .dflt_doc = "`auto`",
     .doc = "how accesses are sampled. `auto`: `pebs` or `ibs` by CPU "
            "vendor if `perf_event_open` accepts the event, else `refs` "
            "(accessed bits, doc/profiler-refs.md), else `uffd`, else "
            "`none`, with one info line naming the sampler chosen. A "
            "sampler asked for by name that cannot open says why in a "
            "warning and falls back the same way"},
    {.name = "TIERMEM_PROFILE_INTERVAL", .type = SETTING_DURATION,
     .min = 1000000, .max = 3600ull * 1000000000, FIELD(interval_ns, FIELD_U64),
     .dflt = "100ms", .want = "a duration from 1ms to 1h (e.g. 100ms, 1s)",
     .values_doc = "a duration, 1 ms to 1 h: `250ms`, `1s`, `500us`; a bare "
                   "number is ms",
     .dflt_doc = "`100ms`",
     .doc = "one interval: one timer wake-up, one profile record"},
    {.name = "TIERMEM_PROFILE_HALFLIFE", .type = SETTING_DOUBLE, .lo = 0.01,
     .hi = 1e6, FIELD(halflife, FIELD_DOUBLE), .dflt = "4",
     .want = "a number of intervals from 0.01 to 1e6",
     .values_doc = "intervals, 0.01 to 10^6",
     .doc = "half-life of the decayed heat (EWMA)"},
    {.name = "TIERMEM_PROFILE_EVENT", .type = SETTING_STRING,
     FIELD(event, FIELD_CHARS), .shown = "the sampler's default",
     .values_doc = "a libpfm4 event name: 1 to 127 of `A-Z a-z 0-9 _ . : = "
                   ", / + -`",
     .dflt_doc = "per sampler",
     .doc = "the hardware event for `pebs`/`ibs` (doc/profiler-perf.md)",
     .parse = parse_event},
    {.name = "TIERMEM_PROFILE_PERIOD", .type = SETTING_UINT, .min = 1,
     .max = 1ull << 40, FIELD(period, FIELD_U64),
     .shown = "the sampler's default", .want = "a number of events >= 1",
     .values_doc = "events per sample, from 1", .dflt_doc = "per sampler",
     .doc = "sampling period of the perf samplers"},
    {.name = "TIERMEM_PROFILE_RING_PAGES", .type = SETTING_UINT,
     .flags = SETTING_POW2, .min = 0, .max = 1ull << 16,
     FIELD(ring_pages, FIELD_UINT), .dflt = "0",
     .want = "0 (sized) or a power of two from 1 to 65536",
     .values_doc = "`0`, or a power of two, 1 to 65536",
     .dflt_doc = "`0`: one interval of samples at the event's highest "
                 "rate, 8 to 512 pages, within the locked-memory budget",
     .doc = "data pages of each perf ring buffer (one per CPU the process "
            "may run on). The rings are locked memory, shared among the "
            "MPI ranks of a host (doc/profiler-perf.md)"},
    {.name = "TIERMEM_PROFILE_SYSTEM_WIDE", .type = SETTING_ENUM,
     .names = system_wide_names, .nnames = 3,
     FIELD(system_wide, FIELD_INT), .dflt = "auto",
     .want = "auto, on or off", .values_doc = "`auto`, `on`, `off`",
     .dflt_doc = "`auto`",
     .doc = "perf events per CPU for every task (pid -1), keeping this "
            "process's samples by pid, instead of per thread. `auto`: only "
            "for `ibs` where the kernel refuses it per process (Linux "
            "before 6.2) and the process may (CAP_PERFMON, or "
            "perf_event_paranoid 0 or less)"},
    {.name = "TIERMEM_PROFILE_L3_MISS_ONLY", .type = SETTING_BOOL,
     FIELD(l3_miss_only, FIELD_BOOL), .dflt = "off",
     .want = "1, on, yes, true, 0, off, no or false",
     .values_doc = "`1`, `on`, `yes`, `true` / `0`, `off`, `no`, `false`",
     .doc = "`ibs` only: sample only ops that missed the L3 cache, where "
            "the PMU has `l3missonly` (Zen 4 and later)"},
    {.name = "TIERMEM_PROFILE_UFFD_PAGES", .type = SETTING_UINT, .min = 0,
     .max = 1ull << 20, FIELD(uffd_pages, FIELD_UINT), .dflt = "0",
     .want = "a page count (0 = scaled)",
     .values_doc = "pages, from 1; `0`: one per 2 MiB of resident arena "
                   "memory, at least 16, within the cost cap",
     .dflt_doc = "`0` (scaled)",
     .doc = "pages write-protected per interval by the `uffd` sampler, over "
            "all arenas (doc/profiler-uffd.md)"},
    {.name = "TIERMEM_PROFILE_REFS_COST", .type = SETTING_DOUBLE, .lo = 0.1,
     .hi = 50, FIELD(refs_cost, FIELD_DOUBLE), .dflt = "2",
     .want = "a percentage of one core from 0.1 to 50",
     .values_doc = "percent of one core, 0.1 to 50",
     .doc = "CPU time the `refs` sampler's scans may take; it lengthens "
            "its window to stay under it (doc/profiler-refs.md)"},
    {.name = "TIERMEM_PROFILE_RESIDENCY_EVERY", .type = SETTING_UINT,
     .min = 0, .max = 1ull << 20, FIELD(residency_every, FIELD_UINT),
     .dflt = "10", .want = "a number of intervals (0 = never)",
     .values_doc = "intervals; 0 = never",
     .doc = "how often resident bytes per arena and node are measured (the "
            "last interval always is)"},
    {.name = "TIERMEM_PROFILE_RESIDENCY_PAGES", .type = SETTING_UINT,
     .min = 1, .max = 1ull << 30, FIELD(residency_pages, FIELD_SIZE),
     .dflt = "1024", .want = "a page count from 1",
     .values_doc = "pages, from 1",
     .doc = "pages queried per arena at most; bigger arenas are sampled at "
            "a stride"},
    {.name = "TIERMEM_PROFILE_REPLAY", .type = SETTING_PATH,
     FIELD(replay, FIELD_CHARS), .shown = "none", .want = "a path that fits",
     .values_doc = "a trace file, a regular file (a FIFO or device: one "
                   "warning, ignored)",
     .dflt_doc = "none",
     .doc = "the trace the `replay` sampler reads (doc/profiler-replay.md); "
            "`replay` without it becomes `none`, with a warning"},
    {.name = "TIERMEM_PROFILE_CLOCK", .type = SETTING_ENUM,
     .names = clock_names, .nnames = 2, FIELD(trace_clock, FIELD_BOOL),
     .dflt = "wall", .want = "wall or trace",
     .values_doc = "`wall`, `trace`", .dflt_doc = "`wall`",
     .doc = "`trace`: replay intervals follow the trace's own times, back "
            "to back; a gap of more than 1024 intervals with no sample is "
            "shortened to 1024 (doc/profiler-replay.md)"},
    {.name = "TIERMEM_PROFILE_FILE", .type = SETTING_PATH,
     FIELD(file, FIELD_CHARS), .shown = "the default name",
     .values_doc = "a path; `%r`, `%p`, `%e`, `%%` expanded",
     .dflt_doc = "`tiermem-profile.<exe>.<pid or rankN>.txt` in "
                 "`TIERMEM_OUTPUT_DIR`, else in the current directory",
     .doc = "where the profile goes (`doc/profile-format.md`)",
     .parse = parse_profile_file},
};
#define NROWS (sizeof profiler_rows / sizeof profiler_rows[0])

static void table_defaults(void *owner)
{
    prof_options_defaults(owner);
}

static const setting_table_t profiler_table = {
    .layer = "profiler", .order = 30, .rows = profiler_rows, .nrows = NROWS,
    .owner_size = sizeof(prof_options_t), .defaults = table_defaults,
};
SETTINGS_REGISTER(profiler_table);

void prof_options_parse(char *const *env, prof_options_t *o)
{
    prof_options_defaults(o);
    setting_parse(env, &profiler_rows[ROW_PROFILE], o);
    setting_parse(env, &profiler_rows[ROW_SAMPLER], o);
    refuse_profile_if_secure(o); /* before the other rows' warnings */
    for (size_t i = ROW_FIRST_NUMBER; i < NROWS; i++)
        setting_parse(env, &profiler_rows[i], o);
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
