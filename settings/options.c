/*
 * options.c -- the runtime's settings, read from the environment once.
 *
 * Every TIERMEM_* variable, and the SICM SH_* name it stands for, is parsed
 * here into runtime_options; doc/configuration.md lists them all.  A bad value
 * never stops the program: it gets one warning that names the variable, the
 * value and the default kept.  A TIERMEM_* name that tiermem does not know
 * gets a warning too, because a mistyped name would otherwise do nothing
 * silently.
 *
 * This file runs inside the preload library while that library is the
 * process's malloc, possibly before it has finished initialising, so nothing
 * here allocates: values are copied into the fixed buffers of runtime_options,
 * messages are formatted into stack buffers by log_at, and the executable's
 * name comes from readlink into a stack buffer.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base.h"
#include "settings.h"

/* ---------------------------------------------------------------- defaults */

#define DEFAULT_STACK_DEPTH 2
#define DEFAULT_SMALL_SIZE 4096
#define DEFAULT_BIG_SMALL_THRESHOLD ((size_t)4 << 20)
#define DEFAULT_MAX_ARENAS 1024
#define DEFAULT_MAX_SITES 65536
#define MAX_NODE_OR_TIER 63 /* node masks are 64 bits (tiermem.h) */
#define MAX_ARENAS_LIMIT 4000 /* below jemalloc's 4095, leaving it room */
#define MIN_SITES 16
#define MAX_SITES_LIMIT 1048576

/*
 * Functions that only wrap malloc: a stack walk skips them, so the site is
 * their caller, not the wrapper.  hypre 2.2x allocates through these
 * (src/utilities/memory.c; its hypre_TAlloc/CTAlloc/TReAlloc macros expand
 * to them), and glibc's strdup family calls malloc for every caller.
 */
#define DEFAULT_WRAPPERS                                                      \
    "hypre_MAlloc", "hypre_CAlloc", "hypre_ReAlloc", "hypre_ReAlloc_v2",      \
        "_hypre_MAlloc", "Mem_dhMalloc", "hypre_mymalloc", "hypre_idx_malloc", \
        "hypre_fp_malloc", "strdup", "strndup", "__strdup", "__strndup"

static const char default_wrappers[][TM_WRAPPER_NAME_MAX] = {
    DEFAULT_WRAPPERS};
#define NDEFAULT_WRAPPERS                                                     \
    (sizeof default_wrappers / sizeof default_wrappers[0])

/* A static initialiser, so runtime_options holds the defaults before any code
 * runs: the preload library may need them before options_load. */
#define OPTIONS_DEFAULTS                                                      \
    {                                                                         \
        .layout = TM_LAYOUT_PER_SITE,                                         \
        .stack_depth = DEFAULT_STACK_DEPTH,                                   \
        .nwrappers = NDEFAULT_WRAPPERS,                                       \
        .wrappers = {DEFAULT_WRAPPERS},                                       \
        .default_target = {.kind = TM_TARGET_TIER,                            \
                           .index = 0,                                        \
                           .mode = TM_MODE_PREFERRED},                        \
        .small_size = DEFAULT_SMALL_SIZE,                                     \
        .big_small_threshold = DEFAULT_BIG_SMALL_THRESHOLD,                   \
        .max_arenas = DEFAULT_MAX_ARENAS,                                     \
        .max_sites = DEFAULT_MAX_SITES,                                       \
        .guidance = "",                                                       \
        .output_dir = "",                                                     \
        .rank = -1,                                                           \
    }

static const options_t options_defaults = OPTIONS_DEFAULTS;
options_t runtime_options = OPTIONS_DEFAULTS;

void options_set_defaults(options_t *out)
{
    *out = options_defaults;
}

/* ---------------------------------------------------------------- the environment */

enum setting_id {
    S_LAYOUT,
    S_STACK_DEPTH,
    S_WRAPPERS,
    S_DEFAULT_TIER,
    S_DEFAULT_NODE,
    S_MODE,
    S_SMALL_SIZE,
    S_BIG_SMALL_THRESHOLD,
    S_MAX_ARENAS,
    S_MAX_SITES,
    S_GUIDANCE,
    S_OUTPUT_DIR,
    S_NSETTINGS
};

typedef struct setting {
    const char *name;    /* tiermem's name */
    const char *alias;   /* SICM's name for the same thing, or NULL */
    bool empty_is_value; /* "" means "none", not "unset" */
} setting_t;

static const setting_t settings[S_NSETTINGS] = {
    [S_LAYOUT] = {"TIERMEM_LAYOUT", "SH_ARENA_LAYOUT", false},
    [S_STACK_DEPTH] = {"TIERMEM_STACK_DEPTH", NULL, false},
    [S_WRAPPERS] = {"TIERMEM_WRAPPERS", NULL, true},
    [S_DEFAULT_TIER] = {"TIERMEM_DEFAULT_TIER", NULL, false},
    [S_DEFAULT_NODE] = {"TIERMEM_DEFAULT_NODE", "SH_DEFAULT_NODE", false},
    [S_MODE] = {"TIERMEM_MODE", NULL, false},
    [S_SMALL_SIZE] = {"TIERMEM_SMALL_SIZE", NULL, false},
    [S_BIG_SMALL_THRESHOLD] = {"TIERMEM_BIG_SMALL_THRESHOLD",
                               "SH_BIG_SMALL_THRESHOLD", false},
    [S_MAX_ARENAS] = {"TIERMEM_MAX_ARENAS", "SH_MAX_ARENAS", false},
    [S_MAX_SITES] = {"TIERMEM_MAX_SITES", "SH_MAX_SITES", false},
    [S_GUIDANCE] = {"TIERMEM_GUIDANCE", "SH_GUIDANCE_FILE", true},
    [S_OUTPUT_DIR] = {"TIERMEM_OUTPUT_DIR", NULL, true},
};

/* TIERMEM_ names that other files read: known, so never "unknown". */
static const char *const read_elsewhere[] = {
    "TIERMEM_LOG",      /* runtime_init.c */
    "TIERMEM_LOG_FILE", /* runtime_init.c */
    "TIERMEM_TIERS",    /* tiers.c */
    /* the profiler layer's own (profiler/profiler_options.c) */
    "TIERMEM_PROFILE", "TIERMEM_PROFILE_SAMPLER", "TIERMEM_PROFILE_INTERVAL",
    "TIERMEM_PROFILE_HALFLIFE", "TIERMEM_PROFILE_EVENT",
    "TIERMEM_PROFILE_PERIOD", "TIERMEM_PROFILE_RING_PAGES",
    "TIERMEM_PROFILE_UFFD_PAGES", "TIERMEM_PROFILE_RESIDENCY_EVERY",
    "TIERMEM_PROFILE_RESIDENCY_PAGES", "TIERMEM_PROFILE_REPLAY",
    "TIERMEM_PROFILE_CLOCK", "TIERMEM_PROFILE_FILE",
    /* the policy layer's own (policy/policy_options.c) */
    "TIERMEM_POLICY", "TIERMEM_POLICY_EVERY", "TIERMEM_POLICY_CAPACITY",
    "TIERMEM_POLICY_HEADROOM", "TIERMEM_POLICY_BUDGET",
    "TIERMEM_POLICY_HYSTERESIS", "TIERMEM_POLICY_MIN_STAY",
    "TIERMEM_POLICY_MOVE_COST",
};

/* Where MPI launchers put the rank, in the order they are tried. */
static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK",
                                        "PMIX_RANK", "SLURM_PROCID"};
#define NRANK_VARS (sizeof rank_vars / sizeof rank_vars[0])

/* The environment entries this file cares about, found in one pass. */
typedef struct env_view {
    const char *value[S_NSETTINGS][2]; /* [0] tiermem's name, [1] SICM's */
    const char *rank[NRANK_VARS];
} env_view_t;

static bool name_is(const char *entry, size_t len, const char *name)
{
    return name != NULL && strlen(name) == len &&
           memcmp(entry, name, len) == 0;
}

/* The first entry wins, as with getenv. */
static void keep_first(const char **slot, const char *value)
{
    if (*slot == NULL)
        *slot = value;
}

static bool match_setting(env_view_t *v, const char *entry, size_t len,
                          const char *value)
{
    for (int i = 0; i < S_NSETTINGS; i++) {
        for (int which = 0; which < 2; which++) {
            const char *name = which ? settings[i].alias : settings[i].name;
            if (!name_is(entry, len, name))
                continue;
            /* An empty number means "unset", as for TIERMEM_LOG. */
            if (*value != '\0' || settings[i].empty_is_value)
                keep_first(&v->value[i][which], value);
            return true;
        }
    }
    return false;
}

static bool match_other(env_view_t *v, const char *entry, size_t len,
                        const char *value)
{
    for (size_t i = 0; i < NRANK_VARS; i++)
        if (name_is(entry, len, rank_vars[i])) {
            if (*value != '\0')
                keep_first(&v->rank[i], value);
            return true;
        }
    for (size_t i = 0; i < sizeof read_elsewhere / sizeof *read_elsewhere;
         i++)
        if (name_is(entry, len, read_elsewhere[i]))
            return true;
    return false;
}

/* A name tiermem does not use: TIERMEM_ ones are likely typos; SICM has
 * many SH_ settings tiermem has no use for, so those are only noted. */
static void unknown_name(const char *entry, size_t len)
{
    shown_t s;
    if (len >= 8 && memcmp(entry, "TIERMEM_", 8) == 0)
        log_warn("unknown setting %s ignored (see doc/configuration.md)",
                    log_shown_n(&s, entry, len));
    else if (len >= 3 && memcmp(entry, "SH_", 3) == 0)
        log_info("SICM setting %s has no tiermem equivalent; ignored",
                    log_shown_n(&s, entry, len));
}

static void collect(char *const *env, env_view_t *v)
{
    memset(v, 0, sizeof *v);
    for (; *env != NULL; env++) {
        const char *entry = *env, *eq = strchr(entry, '=');
        if (eq == NULL || eq == entry)
            continue;
        size_t len = (size_t)(eq - entry);
        if (!match_setting(v, entry, len, eq + 1) &&
            !match_other(v, entry, len, eq + 1))
            unknown_name(entry, len);
    }
}

/* The value in force for a setting: tiermem's name beats SICM's. */
static bool pick(const env_view_t *v, int i, const char **var,
                 const char **value)
{
    const char *tm = v->value[i][0], *sh = v->value[i][1];
    if (tm != NULL && sh != NULL) {
        shown_t a, b;
        log_info("%s=%s is ignored: %s=%s is set and wins",
                    settings[i].alias, log_shown(&a, sh), settings[i].name,
                    log_shown(&b, tm));
    }
    *var = tm != NULL ? settings[i].name : settings[i].alias;
    *value = tm != NULL ? tm : sh;
    return *value != NULL;
}

/* ---------------------------------------------------------------- settings */

static const char *const layout_names[] = {"per-site", "per-thread",
                                           "big-small"};
static const char *const mode_names[] = {"preferred", "bind", "interleave"};
static const tm_mode_t mode_values[] = {TM_MODE_PREFERRED, TM_MODE_BIND,
                                        TM_MODE_INTERLEAVE};

/*
 * SICM's SH_ARENA_LAYOUT names, across its versions.  Only the first three
 * mean exactly what a tiermem layout means; the other exclusive (per-thread)
 * ones also split threads by device or site, which tiermem's per-thread
 * layout does not, so they are approximated and the user is told.
 */
static const struct sicm_layout {
    const char *name;
    layout_t layout;
    bool exact;
} sicm_layouts[] = {
    {"SHARED_SITE_ARENAS", TM_LAYOUT_PER_SITE, true},
    {"EXCLUSIVE_ARENAS", TM_LAYOUT_PER_THREAD, true},
    {"EXCLUSIVE_ONE_ARENA", TM_LAYOUT_PER_THREAD, true},
    {"BIG_SMALL_ARENAS", TM_LAYOUT_BIG_SMALL, true},
    {"EXCLUSIVE_SITE_ARENAS", TM_LAYOUT_PER_THREAD, false},
    {"EXCLUSIVE_DEVICE_ARENAS", TM_LAYOUT_PER_THREAD, false},
    {"EXCLUSIVE_TWO_DEVICE_ARENAS", TM_LAYOUT_PER_THREAD, false},
    {"EXCLUSIVE_FOUR_DEVICE_ARENAS", TM_LAYOUT_PER_THREAD, false},
    {"EXCLUSIVE_TWO_ARENAS", TM_LAYOUT_PER_THREAD, false},
    {"EXCLUSIVE_FOUR_ARENAS", TM_LAYOUT_PER_THREAD, false},
    {"EXCLUSIVE_EIGHT_ARENAS", TM_LAYOUT_PER_THREAD, false},
    {"EXCLUSIVE_COMPRESS_ARENAS", TM_LAYOUT_PER_THREAD, false},
};

static void set_sicm_layout(const char *value, options_t *out)
{
    shown_t s;
    for (size_t i = 0; i < sizeof sicm_layouts / sizeof *sicm_layouts; i++) {
        const struct sicm_layout *l = &sicm_layouts[i];
        if (strcasecmp(value, l->name) != 0)
            continue;
        out->layout = l->layout;
        if (!l->exact)
            log_info("SH_ARENA_LAYOUT=%s has no exact tiermem "
                        "equivalent; using %s", l->name,
                        layout_names[l->layout]);
        return;
    }
    log_warn("SH_ARENA_LAYOUT=%s is not a SICM layout tiermem maps "
                "(SHARED_SITE_ARENAS, EXCLUSIVE_*ARENAS, BIG_SMALL_ARENAS); "
                "using per-site", log_shown(&s, value));
}

static void set_layout(const env_view_t *v, options_t *out)
{
    const char *var, *value;
    if (!pick(v, S_LAYOUT, &var, &value))
        return;
    if (var == settings[S_LAYOUT].alias) {
        set_sicm_layout(value, out);
        return;
    }
    int i = parse_enum(value, layout_names, 3);
    shown_t s;
    if (i >= 0)
        out->layout = (layout_t)i;
    else
        log_warn("%s=%s is not one of per-site, per-thread, big-small; "
                    "using per-site", var, log_shown(&s, value));
}

/* A whole number in [min, max] into *out, or one warning and the default. */
static void set_number(const env_view_t *v, int id, unsigned long min,
                       unsigned long max, unsigned *out)
{
    const char *var, *value;
    unsigned long n;
    if (!pick(v, id, &var, &value))
        return;
    shown_t s;
    if (parse_ulong(value, min, max, &n))
        *out = (unsigned)n;
    else
        log_warn("%s=%s is not a whole number from %lu to %lu; using %u",
                    var, log_shown(&s, value), min, max, *out);
}

/* A size of at least min bytes, or one warning and the default. */
static void set_size(const env_view_t *v, int id, size_t min, size_t *out)
{
    const char *var, *value;
    size_t n;
    if (!pick(v, id, &var, &value))
        return;
    shown_t s;
    if (parse_size(value, &n) && n >= min)
        *out = n;
    else
        log_warn("%s=%s is not a size%s such as 4096, 64K or 2M; "
                    "using %zu", var, log_shown(&s, value),
                    min > 0 ? " above 0" : "", *out);
}

/* ---------------------------------------------------------------- wrappers */

static bool wrapper_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '$' || c == ':';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

typedef struct wrapper_list {
    unsigned n;
    char names[TM_MAX_WRAPPERS][TM_WRAPPER_NAME_MAX];
} wrapper_list_t;

/* Add [s, s + len) unless it is already there (a repeat is harmless). */
static bool wrapper_add(wrapper_list_t *l, const char *s, size_t len)
{
    for (unsigned i = 0; i < l->n; i++)
        if (strlen(l->names[i]) == len && memcmp(l->names[i], s, len) == 0)
            return true;
    if (l->n == TM_MAX_WRAPPERS)
        return false;
    memcpy(l->names[l->n], s, len);
    l->names[l->n][len] = '\0';
    l->n++;
    return true;
}

/* Parse the comma-separated list after any '+'.  On error, *bad and *badlen
 * say which name is wrong (*badlen 0: the list is too long). */
static bool wrapper_parse(const char *p, wrapper_list_t *l, const char **bad,
                          size_t *badlen)
{
    for (;;) {
        while (is_blank(*p))
            p++;
        const char *s = p;
        while (*p != '\0' && *p != ',')
            p++;
        size_t len = (size_t)(p - s);
        while (len > 0 && is_blank(s[len - 1]))
            len--;
        bool ok = len < TM_WRAPPER_NAME_MAX;
        for (size_t i = 0; ok && i < len; i++)
            ok = wrapper_char(s[i]);
        *bad = s;
        *badlen = len;
        if (!ok)
            return false;
        if (len > 0 && !wrapper_add(l, s, len)) {
            *badlen = 0;
            return false;
        }
        if (*p == '\0')
            return true;
        p++; /* the comma; empty items between commas are skipped */
    }
}

static void set_wrappers(const env_view_t *v, options_t *out)
{
    const char *var, *value, *bad;
    size_t badlen;
    if (!pick(v, S_WRAPPERS, &var, &value))
        return;
    wrapper_list_t l = {.n = 0};
    const char *p = value;
    if (*p == '+') { /* "+name,...": the default list and these */
        for (size_t i = 0; i < NDEFAULT_WRAPPERS; i++)
            wrapper_add(&l, default_wrappers[i], strlen(default_wrappers[i]));
        p++;
    }
    shown_t s, b;
    if (wrapper_parse(p, &l, &bad, &badlen)) {
        out->nwrappers = l.n;
        memcpy(out->wrappers, l.names, sizeof l.names);
    } else if (badlen == 0) {
        log_warn("%s=%s names more than %d functions; using the default "
                    "list", var, log_shown(&s, value), TM_MAX_WRAPPERS);
    } else {
        char name[TM_WRAPPER_NAME_MAX + 1];
        size_t n = badlen < TM_WRAPPER_NAME_MAX ? badlen : TM_WRAPPER_NAME_MAX;
        memcpy(name, bad, n);
        name[n] = '\0';
        log_warn("%s=%s: \"%s\" is not a function name (1-%d of A-Z a-z "
                    "0-9 _ . $ :); using the default list", var,
                    log_shown(&s, value), log_shown(&b, name),
                    TM_WRAPPER_NAME_MAX - 1);
    }
}

/* ---------------------------------------------------------------- target */

static void describe_target(const target_t *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s %u", t->kind == TM_TARGET_NODE ? "node" : "tier",
             t->index);
}

static void set_target(const env_view_t *v, options_t *out)
{
    target_t *t = &out->default_target;
    const char *var, *value;
    unsigned long n;
    shown_t s;
    char was[32];
    if (pick(v, S_DEFAULT_TIER, &var, &value)) {
        if (parse_ulong(value, 0, MAX_NODE_OR_TIER, &n))
            t->index = (unsigned)n;
        else
            log_warn("%s=%s is not a tier index from 0 to %d; using "
                        "tier %u", var, log_shown(&s, value),
                        MAX_NODE_OR_TIER, t->index);
    }
    if (pick(v, S_DEFAULT_NODE, &var, &value)) {
        describe_target(t, was, sizeof was);
        if (!parse_ulong(value, 0, MAX_NODE_OR_TIER, &n)) {
            log_warn("%s=%s is not a node number from 0 to %d; using %s",
                        var, log_shown(&s, value), MAX_NODE_OR_TIER, was);
        } else {
            if (v->value[S_DEFAULT_TIER][0] != NULL)
                log_info("%s=%lu overrides TIERMEM_DEFAULT_TIER (%s)",
                            var, n, was);
            t->kind = TM_TARGET_NODE;
            t->index = (unsigned)n;
        }
    }
    if (pick(v, S_MODE, &var, &value)) {
        int i = parse_enum(value, mode_names, 3);
        if (i >= 0)
            t->mode = mode_values[i];
        else
            log_warn("%s=%s is not one of preferred, bind, interleave; "
                        "using preferred", var, log_shown(&s, value));
    }
}

/* ---------------------------------------------------------------- rank, paths */

static void set_rank(const env_view_t *v, options_t *out)
{
    for (size_t i = 0; i < NRANK_VARS; i++) {
        unsigned long n;
        shown_t s;
        if (v->rank[i] == NULL)
            continue;
        if (parse_ulong(v->rank[i], 0, INT_MAX, &n)) {
            out->rank = (int)n;
            return;
        }
        log_warn("%s=%s is not an MPI rank (0 to %d); ignored",
                    rank_vars[i], log_shown(&s, v->rank[i]), INT_MAX);
    }
}

/* The executable's base name into buf; false (and "unknown") if
 * /proc/self/exe cannot be read. */
static bool exe_name(char *buf, size_t n)
{
    char path[4096];
    ssize_t len = readlink("/proc/self/exe", path, sizeof path);
    if (len < 0 || (size_t)len >= sizeof path) {
        log_warn("readlink(/proc/self/exe) failed (errno %d); %%e in "
                    "TIERMEM_GUIDANCE expands to \"unknown\"",
                    len < 0 ? errno : ENAMETOOLONG);
        snprintf(buf, n, "unknown");
        return false;
    }
    path[len] = '\0';
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t len_base = strlen(base); /* at most NAME_MAX: buf holds it */
    if (len_base >= n)
        len_base = n - 1;
    memcpy(buf, base, len_base);
    buf[len_base] = '\0';
    return true;
}

/* Does the pattern use %e (and so need readlink)? */
static bool uses_exe(const char *p)
{
    for (; *p != '\0'; p++)
        if (*p == '%') {
            if (p[1] == 'e')
                return true;
            if (p[1] == '\0')
                return false;
            p++; /* skip the escaped character, e.g. "%%e" is literal */
        }
    return false;
}

/* The first % directive that expand_path rejects, or NULL. */
static const char *bad_percent(const char *p)
{
    for (; *p != '\0'; p++)
        if (*p == '%') {
            if (p[1] != 'r' && p[1] != 'p' && p[1] != 'e' && p[1] != '%')
                return p;
            p++;
        }
    return NULL;
}

static void set_guidance(const env_view_t *v, options_t *out)
{
    const char *var, *value;
    if (!pick(v, S_GUIDANCE, &var, &value) || *value == '\0' ||
        path_setting_refused(var, value))
        return;
    char exe[256] = "unknown";
    if (uses_exe(value))
        exe_name(exe, sizeof exe);
    if (expand_path(value, out->rank, (long)getpid(), exe, out->guidance,
                       sizeof out->guidance))
        return;
    shown_t s;
    const char *bad = bad_percent(value);
    if (bad != NULL && bad[1] == '\0')
        log_warn("%s=%s ends in a lone %%; no guidance used", var,
                    log_shown(&s, value));
    else if (bad != NULL)
        log_warn("%s=%s: %%%c is not one of %%r %%p %%e %%%%; no guidance "
                    "used", var, log_shown(&s, value),
                    bad[1] >= 0x20 && bad[1] < 0x7f ? bad[1] : '?');
    else
        log_warn("%s=%s is longer than %d bytes once expanded; no "
                    "guidance used", var, log_shown(&s, value),
                    TM_PATH_MAX - 1);
}

static void set_output_dir(const env_view_t *v, options_t *out)
{
    const char *var, *value;
    if (!pick(v, S_OUTPUT_DIR, &var, &value) ||
        (*value != '\0' && path_setting_refused(var, value)))
        return;
    size_t len = strlen(value);
    shown_t s;
    if (len < sizeof out->output_dir)
        memcpy(out->output_dir, value, len + 1);
    else
        log_warn("%s=%s is longer than %d bytes; writing nothing", var,
                    log_shown(&s, value), TM_PATH_MAX - 1);
}

/* ---------------------------------------------------------------- entry points */

void options_parse(char *const *env, options_t *out)
{
    env_view_t v;
    options_set_defaults(out);
    if (env == NULL)
        return;
    collect(env, &v);
    set_layout(&v, out);
    set_number(&v, S_STACK_DEPTH, 1, TM_MAX_STACK_DEPTH, &out->stack_depth);
    set_wrappers(&v, out);
    set_target(&v, out);
    set_size(&v, S_SMALL_SIZE, 0, &out->small_size);
    set_size(&v, S_BIG_SMALL_THRESHOLD, 1, &out->big_small_threshold);
    set_number(&v, S_MAX_ARENAS, 1, MAX_ARENAS_LIMIT, &out->max_arenas);
    set_number(&v, S_MAX_SITES, MIN_SITES, MAX_SITES_LIMIT,
               &out->max_sites);
    set_rank(&v, out); /* before the guidance path, which may use %r */
    set_guidance(&v, out);
    set_output_dir(&v, out);
}

void options_load(void)
{
    options_parse(environ, &runtime_options);
}
