/*
 * settings.h -- what the settings layer offers: the registry of every
 * layer's settings (environment variables), the one parser over it, the
 * typed value parsers, and the sites' own values (runtime_options).
 *
 * Each layer describes its settings as rows (setting_t) registered in the
 * file that reads them; setting_env.c parses them, settings_init.c reads
 * the log's rows first and then the rest, once per process.  Nothing here
 * allocates through malloc, because the preload library parses its
 * settings while it is itself the process's malloc.
 */
#ifndef TM_SETTINGS_H
#define TM_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

/* ---------------------------------------------------------------- values */

typedef enum site_layout {
    TM_LAYOUT_PER_SITE = 0,   /* one arena per site, shared by all threads */
    TM_LAYOUT_PER_THREAD,     /* one arena per thread */
    TM_LAYOUT_BIG_SMALL,      /* own arena once a site's bytes pass a
                                 threshold; small sites share one */
} layout_t;

#define TM_MAX_STACK_DEPTH 16
#define TM_MAX_WRAPPERS 32
#define TM_WRAPPER_NAME_MAX 64
#define TM_PATH_MAX 1024

/* Where an arena goes when nothing else says: a tier (index into the
 * discovered topology, 0 = fastest) or one node, with a mode. */
typedef struct place_target {
    enum { TM_TARGET_TIER = 0, TM_TARGET_NODE } kind;
    unsigned index;   /* tier index or node id */
    tm_mode_t mode;   /* TM_MODE_PREFERRED unless configured */
} target_t;

typedef struct runtime_options {
    layout_t layout;          /* TIERMEM_LAYOUT / SH_ARENA_LAYOUT */
    unsigned stack_depth;        /* TIERMEM_STACK_DEPTH: 1..16, default 2 */
    unsigned nwrappers;          /* TIERMEM_WRAPPERS: comma-separated names */
    char wrappers[TM_MAX_WRAPPERS][TM_WRAPPER_NAME_MAX];
    uint32_t wrappers_named;     /* bit i: wrappers[i] was named in the
                                    setting, not one of the defaults */
    unsigned nskip_objects;      /* TIERMEM_SKIP_OBJECTS: base-name prefixes */
    char skip_objects[TM_MAX_WRAPPERS][TM_WRAPPER_NAME_MAX];
    target_t default_target;  /* TIERMEM_DEFAULT_TIER | TIERMEM_DEFAULT_NODE
                                    (SH_DEFAULT_NODE), TIERMEM_MODE */
    size_t small_size;           /* TIERMEM_SMALL_SIZE: requests below this skip
                                    site lookup (0 = never skip) */
    size_t big_small_threshold;  /* TIERMEM_BIG_SMALL_THRESHOLD
                                    (SH_BIG_SMALL_THRESHOLD) */
    unsigned max_arenas;         /* TIERMEM_MAX_ARENAS (SH_MAX_ARENAS) */
    unsigned max_sites;          /* TIERMEM_MAX_SITES (SH_MAX_SITES) */
    char guidance[TM_PATH_MAX];  /* TIERMEM_GUIDANCE, %r/%p/%e expanded; "" = none */
    char output_dir[TM_PATH_MAX];/* TIERMEM_OUTPUT_DIR; "" = write nothing */
    int rank;                    /* MPI rank from OMPI_COMM_WORLD_RANK, PMI_RANK,
                                    PMIX_RANK, SLURM_PROCID; -1 if none */
} options_t;

/* The settings in force; filled by options_load, defaults before. */
extern options_t runtime_options;

/* Fill `out` from an environment (NULL-terminated "NAME=value" array, like
 * environ).  Every bad value logs one warning naming the variable, the value
 * and the default used, and the default is kept.  Never fails. */
void options_parse(char *const *env, options_t *out);

/* options_parse(environ, &runtime_options).  Called once by settings_init. */
void options_load(void);

/* settings_init.c: once per process, idempotent and thread-safe: the log
 * (TIERMEM_LOG, TIERMEM_LOG_FILE), then options_load.  Every entry point
 * that may be the process's first tiermem call runs it, through the layer
 * start-up above (runtime_init). */
void settings_init(void);

/* The defaults, for tests and documentation. */
void options_set_defaults(options_t *out);

/* ---------------------------------------------------------------- parsers
 * The typed parsers under the settings, exposed for tests and fuzzing.  Each
 * takes the whole value and returns false if any of it is not valid. */

/* "4096", "64K", "2M", "1G", "1T" (binary units, case-insensitive, optional
 * trailing B/iB); overflow is invalid. */
bool parse_size(const char *s, size_t *out);
/* Decimal, within [min, max]. */
bool parse_ulong(const char *s, unsigned long min, unsigned long max,
                    unsigned long *out);
/* One of names[0..n) case-insensitively; returns its index or -1. */
int parse_enum(const char *s, const char *const *names, size_t n);

/* ---------------------------------------------------------------- registry
 * Every setting is one row (setting_t) in one table per layer; each layer
 * registers its table in the file that reads the values (SETTINGS_REGISTER),
 * and setting_env.c is the one parser: lookup with the alias rules, the
 * bad-value warning, the set-user-ID refusal of paths, the unknown-name
 * warning.  The same rows print the documentation (tools/tiermem_settings.c
 * generates doc/configuration.md's tables), so docs and code cannot drift.
 */

typedef enum setting_type {
    SETTING_BOOL,      /* parse_bool */
    SETTING_UINT,      /* parse_ulong within [min, max] */
    SETTING_SIZE,      /* parse_size within [min, max] */
    SETTING_DURATION,  /* parse_duration_ns within [min, max] ns */
    SETTING_DOUBLE,    /* parse_double within [lo, hi] */
    SETTING_FRACTION,  /* "0.05" or "5%", within [lo, hi] */
    SETTING_ENUM,      /* one of names[] (case-insensitive) */
    SETTING_STRING,    /* copied into a char array */
    SETTING_PATH,      /* a string; refused in AT_SECURE processes */
    SETTING_LIST,      /* a list the row's own parse callback reads */
} setting_type_t;

/* How the parsed value is stored at owner + offset. */
typedef enum setting_field {
    FIELD_NONE,    /* the row has no field: its reader asks setting_getenv */
    FIELD_BOOL,    /* bool */
    FIELD_UINT,    /* unsigned */
    FIELD_INT,     /* int or an enum type */
    FIELD_SIZE,    /* size_t */
    FIELD_U64,     /* uint64_t */
    FIELD_DOUBLE,  /* double */
    FIELD_CHARS,   /* char[size] */
} setting_field_t;

#define SETTING_EMPTY_IS_VALUE 1u /* "" means "none", not "unset" */
#define SETTING_POW2 2u           /* SETTING_UINT: a power of two only */

typedef struct setting setting_t;
/* A row's own parser: value is the text under var (the name or the alias)
 * in env; it stores into owner and warns itself about a bad value. */
typedef void (*setting_parse_fn)(const setting_t *s, const char *var,
                                 const char *value, void *owner,
                                 char *const *env);

struct setting {
    const char *name;        /* TIERMEM_... */
    const char *alias;       /* SICM's SH_... name for it, or NULL */
    setting_type_t type;
    unsigned flags;          /* SETTING_* */
    unsigned long long min, max; /* UINT, SIZE, DURATION (ns) */
    double lo, hi;           /* DOUBLE, FRACTION */
    const char *const *names;/* ENUM: the words, index = value ... */
    unsigned nnames;
    const int *values;       /* ... unless this maps them (or NULL) */
    setting_field_t field;
    size_t offset, size;     /* where in the owner's struct */
    const char *dflt;        /* the default as text that parses, under this
                                row's rules, to the default value; NULL
                                when no text does ("unset") */
    const char *shown;       /* "using SHOWN" in warnings; NULL: dflt */
    const char *want;        /* "NAME=value is not WANT; using SHOWN" */
    const char *values_doc;  /* documentation: the values column */
    const char *dflt_doc;    /* documentation: the default; NULL: shown */
    const char *doc;         /* documentation: one line, what it does */
    setting_parse_fn parse;        /* instead of the generic parse */
    setting_parse_fn parse_alias;  /* for a value under the alias */
};

typedef struct setting_table {
    const char *layer;       /* "log", "tiers", "sites", "profiler", ... */
    unsigned order;          /* the documentation's order, lowest first */
    const setting_t *rows;
    size_t nrows;
    size_t owner_size;       /* the struct the rows write into; 0: none */
    void (*defaults)(void *owner);
} setting_table_t;

/* Register a table: a pointer to it in the tm_settings section, walked
 * through the linker's __start_/__stop_ symbols.  Pointers, not the tables
 * themselves: the compiler may pad or over-align big objects, never a
 * pointer.  A user-named section is also left alone by ASan's redzones. */
#define SETTINGS_REGISTER(table)                                           \
    static const setting_table_t *const table##_registered                 \
        __attribute__((used, section("tm_settings"))) = &(table)

/* The registered tables in documentation order into out[0..max); returns
 * how many there are.  A static program has the tables of the objects it
 * links: a layer's rows live in the file that reads them. */
size_t settings_tables(const setting_table_t **out, size_t max);
/* The row named name (its TIERMEM_ name or its alias), or NULL. */
const setting_t *setting_find(const char *name, size_t len);
/* The value in force for s in env, with the alias rules: the first entry
 * wins, as with getenv; "" counts as unset unless SETTING_EMPTY_IS_VALUE;
 * the TIERMEM_ name beats the alias (an info message says so).  *var (if
 * not NULL) is the name the value came under.  NULL if unset. */
const char *setting_lookup(char *const *env, const setting_t *s,
                           const char **var);
/* setting_lookup(environ, s, NULL), for readers outside start-up. */
const char *setting_getenv(const setting_t *s);
/* Parse value (under var) into owner by s's rules; a bad value gets one
 * warning and leaves the field as it was (the default). */
void setting_apply(const setting_t *s, const char *var, const char *value,
                   void *owner, char *const *env);
/* setting_lookup then setting_apply, for one row or a whole table. */
void setting_parse(char *const *env, const setting_t *s, void *owner);
void settings_parse_table(char *const *env, const setting_table_t *t,
                          void *owner);
/* One warning per TIERMEM_ name in env that no registered row knows (a
 * mistyped name would otherwise do nothing silently); SH_ names tiermem
 * has no use for are only noted, at info level. */
void settings_check_names(char *const *env);

/* setting_env.c: what every layer's settings share. */
/* The value of NAME in env (NULL-terminated "NAME=value" array), or NULL. */
const char *env_value(char *const *env, const char *name);
/* One warning: "NAME=value is not WANT; using DFLT" (value made printable). */
void setting_bad(const char *name, const char *value, const char *want,
                    const char *dflt);
/* Is this a set-user-ID/set-group-ID (AT_SECURE) process?  Its settings
 * that name paths are ignored, as secure_getenv would. */
bool secure_process(void);
/* For tests: 1 or 0 pretends, -1 asks the kernel again. */
void secure_process_override(int secure);
/* A path setting that is set (value != NULL) in a secure process: one
 * warning naming it, and true: the caller ignores it. */
bool path_setting_refused(const char *name, const char *value);
/* 1|on|yes|true and 0|off|no|false, case-insensitively. */
bool parse_bool(const char *s, bool *out);
/* A finite number within [lo, hi], all of s. */
bool parse_double(const char *s, double lo, double hi, double *out);
/* "250ms", "1s", "500us", "100ns"; a bare number is milliseconds. */
bool parse_duration_ns(const char *s, uint64_t *out);
/* A share within [lo, hi]: "0.05", or "5%" for the same. */
bool parse_fraction(const char *s, double lo, double hi, double *out);

/* MPI ranks on this host, from the launcher's variables (1 if none, or if
 * the value is not a number from 1 to 2^20): the policy shares each fast
 * tier among them, the perf sampler the locked memory of its rings. */
unsigned settings_local_ranks(char *const *env);

/* Expand %r (rank, or "0" with no rank), %p (pid), %e (executable's base
 * name) and %% in pattern into out (size outsz).  False if it does not fit
 * or a % is followed by anything else. */
bool expand_path(const char *pattern, int rank, long pid, const char *exe,
                    char *out, size_t outsz);

#endif /* TM_SETTINGS_H */
