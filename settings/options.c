/*
 * options.c -- the runtime's settings (sites, layouts, guidance), read from
 * the environment once.
 *
 * The rows below describe each TIERMEM_* variable and the SICM SH_* name it
 * stands for; setting_env.c's one parser reads them into runtime_options,
 * with the odd ones (SICM layouts, wrappers, the default node, the paths)
 * through this file's callbacks.  The same rows generate the tables of
 * doc/configuration.md (tools/tiermem_settings.c).  A bad value never stops
 * the program: it gets one warning that names the variable, the value and
 * the default kept.  options_parse also checks every name against all the
 * registered rows: a TIERMEM_* name that tiermem does not know gets a
 * warning, because a mistyped name would otherwise do nothing silently.
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
#include <stddef.h>
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

#include "options_lists.h"

/* A static initialiser, so runtime_options holds the defaults before any code
 * runs: the preload library may need them before options_load. */
#define OPTIONS_DEFAULTS                                                      \
    {                                                                         \
        .layout = TM_LAYOUT_PER_SITE,                                         \
        .stack_depth = DEFAULT_STACK_DEPTH,                                   \
        .nwrappers = NDEFAULT_WRAPPERS,                                       \
        .wrappers = {DEFAULT_WRAPPERS},                                       \
        .nskip_objects = NDEFAULT_SKIP_OBJECTS,                               \
        .skip_objects = {DEFAULT_SKIP_OBJECTS},                               \
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

/* Where MPI launchers put the rank, in the order they are tried.  Not
 * tiermem's settings (no rows): the launcher sets them. */
static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK",
                                        "PMIX_RANK", "SLURM_PROCID"};
#define NRANK_VARS (sizeof rank_vars / sizeof rank_vars[0])

/* Where MPI launchers put the number of ranks on this host. */
static const char *const local_size_vars[] = {
    "OMPI_COMM_WORLD_LOCAL_SIZE", /* Open MPI */
    "MPI_LOCALNRANKS",            /* MPICH's Hydra */
    "MV2_COMM_WORLD_LOCAL_SIZE",  /* MVAPICH2 */
};

unsigned settings_local_ranks(char *const *env)
{
    for (size_t i = 0; i < sizeof local_size_vars / sizeof *local_size_vars;
         i++) {
        const char *v = env_value(env, local_size_vars[i]);
        unsigned long n;
        if (v != NULL && parse_ulong(v, 1, 1u << 20, &n))
            return (unsigned)n;
    }
    return 1;
}

/* ---------------------------------------------------------------- settings */

static const char *const layout_names[] = {"per-site", "per-thread",
                                           "big-small"};
static const char *const mode_names[] = {"preferred", "bind", "interleave"};
static const int mode_values[] = {TM_MODE_PREFERRED, TM_MODE_BIND,
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

/* TIERMEM_LAYOUT's value under its alias: SICM's names, not tiermem's. */
static void parse_sicm_layout(const setting_t *row, const char *var,
                              const char *value, void *owner,
                              char *const *env)
{
    options_t *out = owner;
    shown_t s;
    (void)row, (void)var, (void)env;
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

/* ---------------------------------------------------------------- target */

static void describe_target(const target_t *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s %u", t->kind == TM_TARGET_NODE ? "node" : "tier",
             t->index);
}

static const setting_t *find_row(const char *name);

/* A node instead of a tier: the bad-value warning names the target kept,
 * which TIERMEM_DEFAULT_TIER (parsed before) may have changed. */
static void parse_default_node(const setting_t *row, const char *var,
                               const char *value, void *owner,
                               char *const *env)
{
    target_t *t = &((options_t *)owner)->default_target;
    unsigned long n;
    shown_t s;
    char was[32];
    (void)row;
    describe_target(t, was, sizeof was);
    if (!parse_ulong(value, 0, MAX_NODE_OR_TIER, &n)) {
        log_warn("%s=%s is not a node number from 0 to %d; using %s", var,
                    log_shown(&s, value), MAX_NODE_OR_TIER, was);
        return;
    }
    if (setting_lookup(env, find_row("TIERMEM_DEFAULT_TIER"), NULL) != NULL)
        log_info("%s=%lu overrides TIERMEM_DEFAULT_TIER (%s)", var, n, was);
    t->kind = TM_TARGET_NODE;
    t->index = (unsigned)n;
}

/* ---------------------------------------------------------------- rank, paths */

static void set_rank(char *const *env, options_t *out)
{
    for (size_t i = 0; i < NRANK_VARS; i++) {
        unsigned long n;
        shown_t s;
        const char *v = env_value(env, rank_vars[i]);
        if (v == NULL || *v == '\0')
            continue;
        if (parse_ulong(v, 0, INT_MAX, &n)) {
            out->rank = (int)n;
            return;
        }
        log_warn("%s=%s is not an MPI rank (0 to %d); ignored",
                    rank_vars[i], log_shown(&s, v), INT_MAX);
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

/* The set-user-ID refusal came first (setting_apply: a SETTING_PATH). */
static void parse_guidance(const setting_t *row, const char *var,
                           const char *value, void *owner, char *const *env)
{
    options_t *out = owner;
    (void)row, (void)env;
    if (*value == '\0')
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

static void parse_output_dir(const setting_t *row, const char *var,
                             const char *value, void *owner,
                             char *const *env)
{
    options_t *out = owner;
    (void)row, (void)env;
    size_t len = strlen(value);
    shown_t s;
    if (len < sizeof out->output_dir)
        memcpy(out->output_dir, value, len + 1);
    else
        log_warn("%s=%s is longer than %d bytes; writing nothing", var,
                    log_shown(&s, value), TM_PATH_MAX - 1);
}

/* ---------------------------------------------------------------- the rows */

#define FIELD(f, kind) .field = (kind), .offset = offsetof(options_t, f),   \
                       .size = sizeof(((options_t *)0)->f)

/* In parse order: TIERMEM_DEFAULT_TIER before TIERMEM_DEFAULT_NODE, whose
 * warning names the tier kept. */
static const setting_t runtime_rows[] = {
    {.name = "TIERMEM_LAYOUT", .alias = "SH_ARENA_LAYOUT",
     .type = SETTING_ENUM, .names = layout_names, .nnames = 3,
     FIELD(layout, FIELD_INT), .dflt = "per-site",
     .want = "one of per-site, per-thread, big-small",
     .values_doc = "`per-site`, `per-thread`, `big-small` (see "
                   "`doc/sites.md`); under `SH_ARENA_LAYOUT`, SICM's names",
     .dflt_doc = "`per-site`",
     .doc = "which arenas a site's blocks come from",
     .parse_alias = parse_sicm_layout},
    {.name = "TIERMEM_STACK_DEPTH", .type = SETTING_UINT, .min = 1,
     .max = TM_MAX_STACK_DEPTH, FIELD(stack_depth, FIELD_UINT), .dflt = "2",
     .want = "a whole number from 1 to 16", .values_doc = "1 to 16",
     .doc = "frames in a site's key"},
    {.name = "TIERMEM_WRAPPERS", .type = SETTING_LIST,
     .flags = SETTING_EMPTY_IS_VALUE,
     .dflt = DEFAULT_WRAPPERS_TEXT, .shown = "the default list",
     .values_doc = "function names, comma-separated: each 1 to 63 of "
                   "`A-Z a-z 0-9 _ . $ :`, at most 32 in all. Empty: no "
                   "wrappers. A leading `+` adds the names to the default "
                   "list",
     .dflt_doc = "`hypre_MAlloc`, `hypre_CAlloc`, `hypre_ReAlloc`, "
                 "`hypre_ReAlloc_v2`, `_hypre_MAlloc` (what hypre 2.26's "
                 "libHYPRE.so exports), `Mem_dhMalloc` (Euclid), "
                 "`hypre_mymalloc`, `hypre_idx_malloc`, `hypre_fp_malloc` "
                 "(PILUT), `strdup`, `strndup`, `__strdup`, `__strndup`",
     .doc = "functions that only wrap malloc: the site is their caller. A "
            "bad name: a warning naming it, and the default list",
     .parse = parse_wrappers},
    {.name = "TIERMEM_SKIP_OBJECTS", .type = SETTING_LIST,
     .flags = SETTING_EMPTY_IS_VALUE,
     .dflt = DEFAULT_SKIP_OBJECTS_TEXT, .shown = "the default list",
     .values_doc = "object base-name prefixes, comma-separated: each 1 to "
                   "63 of `A-Z a-z 0-9 _ . $ : + -`, at most 32. Empty: "
                   "none. A leading `+` adds them to the default list",
     .dflt_doc = "`libc.so`, `libc-`, `ld-linux` (libc, the loader), "
                 "`libstdc++.so`, `libgfortran.so`, `libgomp.so`, "
                 "`libgcc_s.so`, `libquadmath.so` (language runtimes), "
                 "`libnuma.so` (tiermem's own)",
     .doc = "shared objects whose frames are never a site's: the site is "
            "the first frame outside them; an allocation with no frame "
            "outside them counts as site 0",
     .parse = parse_skip_objects},
    {.name = "TIERMEM_DEFAULT_TIER", .type = SETTING_UINT, .min = 0,
     .max = MAX_NODE_OR_TIER, FIELD(default_target.index, FIELD_UINT),
     .dflt = "0", .shown = "tier 0", .want = "a tier index from 0 to 63",
     .values_doc = "0 (fastest) to 63", .dflt_doc = "0",
     .doc = "the tier for sites without guidance"},
    {.name = "TIERMEM_DEFAULT_NODE", .alias = "SH_DEFAULT_NODE",
     .type = SETTING_UINT, .min = 0, .max = MAX_NODE_OR_TIER,
     .shown = "the tier", .values_doc = "0 to 63", .dflt_doc = "unset",
     .doc = "a NUMA node for sites without guidance, instead of a tier; "
            "it wins over `TIERMEM_DEFAULT_TIER`",
     .parse = parse_default_node},
    {.name = "TIERMEM_MODE", .type = SETTING_ENUM, .names = mode_names,
     .nnames = 3, .values = mode_values, FIELD(default_target.mode, FIELD_INT),
     .dflt = "preferred", .want = "one of preferred, bind, interleave",
     .values_doc = "`preferred`, `bind`, `interleave`",
     .dflt_doc = "`preferred`", .doc = "the policy for that default"},
    {.name = "TIERMEM_SMALL_SIZE", .type = SETTING_SIZE, .min = 0,
     .max = SIZE_MAX, FIELD(small_size, FIELD_SIZE), .dflt = "4096",
     .want = "a size such as 4096, 64K or 2M", .values_doc = "a size",
     .doc = "smaller requests skip the site lookup and go to site 0; 0: "
            "every request gets a site"},
    {.name = "TIERMEM_BIG_SMALL_THRESHOLD", .alias = "SH_BIG_SMALL_THRESHOLD",
     .type = SETTING_SIZE, .min = 1, .max = SIZE_MAX,
     FIELD(big_small_threshold, FIELD_SIZE), .dflt = "4M",
     .shown = "4194304", .want = "a size above 0 such as 4096, 64K or 2M",
     .values_doc = "a size above 0", .dflt_doc = "4M (4194304)",
     .doc = "the peak live bytes that give a site its own arena in the "
            "`big-small` layout"},
    {.name = "TIERMEM_MAX_ARENAS", .alias = "SH_MAX_ARENAS",
     .type = SETTING_UINT, .min = 1, .max = MAX_ARENAS_LIMIT,
     FIELD(max_arenas, FIELD_UINT), .dflt = "1024",
     .want = "a whole number from 1 to 4000", .values_doc = "1 to 4000",
     .doc = "arenas for sites and threads"},
    {.name = "TIERMEM_MAX_SITES", .alias = "SH_MAX_SITES",
     .type = SETTING_UINT, .min = MIN_SITES, .max = MAX_SITES_LIMIT,
     FIELD(max_sites, FIELD_UINT), .dflt = "65536",
     .want = "a whole number from 16 to 1048576",
     .values_doc = "16 to 1048576", .doc = "sites tracked"},
    {.name = "TIERMEM_GUIDANCE", .alias = "SH_GUIDANCE_FILE",
     .type = SETTING_PATH, .flags = SETTING_EMPTY_IS_VALUE,
     FIELD(guidance, FIELD_CHARS), .dflt = "", .shown = "no guidance",
     .values_doc = "a path to a regular file; `%r` rank, `%p` pid, `%e` "
                   "executable name, `%%` (see `doc/guidance.md`)",
     .dflt_doc = "none",
     .doc = "the guidance file; a bad value: a warning, no guidance",
     .parse = parse_guidance},
    {.name = "TIERMEM_OUTPUT_DIR", .type = SETTING_PATH,
     .flags = SETTING_EMPTY_IS_VALUE, FIELD(output_dir, FIELD_CHARS),
     .dflt = "", .shown = "writing nothing",
     .values_doc = "a directory, up to 1023 bytes, not expanded",
     .dflt_doc = "none: nothing written",
     .doc = "where the site table is written at exit",
     .parse = parse_output_dir},
};

static void table_defaults(void *owner)
{
    options_set_defaults(owner);
}

static const setting_table_t runtime_table = {
    .layer = "sites", .order = 20, .rows = runtime_rows,
    .nrows = sizeof runtime_rows / sizeof runtime_rows[0],
    .owner_size = sizeof(options_t), .defaults = table_defaults,
};
SETTINGS_REGISTER(runtime_table);

static const setting_t *find_row(const char *name)
{
    for (size_t i = 0; i < runtime_table.nrows; i++)
        if (strcmp(runtime_rows[i].name, name) == 0)
            return &runtime_rows[i];
    return NULL; /* not reached: the names are this file's */
}

/* ---------------------------------------------------------------- entry points */

void options_parse(char *const *env, options_t *out)
{
    options_set_defaults(out);
    if (env == NULL)
        return;
    settings_check_names(env);
    set_rank(env, out); /* before the guidance path, which may use %r */
    settings_parse_table(env, &runtime_table, out);
}

void options_load(void)
{
    options_parse(environ, &runtime_options);
}
