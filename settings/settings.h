/*
 * settings.h -- the runtime's settings (environment variables) and the
 * guidance file, as the rest of the runtime sees them.
 *
 * Included by runtime.h; the runtime layer's one public header stays
 * runtime.h.  options.c reads the environment once at start-up; guidance.c
 * parses guidance files.  Both are pure parsers over memory the caller owns
 * or meta_alloc memory: they never allocate through malloc, because the
 * preload library calls them while it is itself the process's malloc.
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

/* Expand %r (rank, or "0" with no rank), %p (pid), %e (executable's base
 * name) and %% in pattern into out (size outsz).  False if it does not fit
 * or a % is followed by anything else. */
bool expand_path(const char *pattern, int rank, long pid, const char *exe,
                    char *out, size_t outsz);

#endif /* TM_SETTINGS_H */
