/*
 * setting_env.c -- the one settings parser, for every layer's rows.
 *
 * Each layer describes its settings as rows of a table (settings.h:
 * setting_t) and registers the table in the file that reads the values
 * (SETTINGS_REGISTER).  This file finds a row's value in an environment
 * array with the alias rules, parses it by the row's type into the owner's
 * struct, and gives a bad value its one warning naming the variable, the
 * value (through log_shown) and the default kept: a bad value never stops
 * the program.  In a set-user-ID or set-group-ID process the settings that
 * name paths are ignored, as secure_getenv would (path_setting_refused).
 * A TIERMEM_ name that no registered row knows gets a warning too.
 *
 * Like options.c, nothing here allocates: the preload library parses its
 * settings while it is itself the process's malloc.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "settings.h"

const char *env_value(char *const *env, const char *name)
{
    size_t len = strlen(name);
    for (; env != NULL && *env != NULL; env++)
        if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
            return *env + len + 1;
    return NULL;
}

/* ---------------------------------------------------------------- registry */

/* The linker defines these around the tm_settings section when some object
 * put something there; weak, so a program with no rows still links. */
extern const setting_table_t *const __start_tm_settings[]
    __attribute__((weak, visibility("hidden")));
extern const setting_table_t *const __stop_tm_settings[]
    __attribute__((weak, visibility("hidden")));

size_t settings_tables(const setting_table_t **out, size_t max)
{
    size_t n = 0;
    if (__start_tm_settings == NULL || __stop_tm_settings == NULL)
        return 0;
    for (const setting_table_t *const *p = __start_tm_settings;
         p < __stop_tm_settings; p++, n++)
        if (n < max)
            out[n] = *p;
    /* the link order is arbitrary: sort by order (a handful of tables) */
    for (size_t i = 1; i < n && i < max; i++)
        for (size_t j = i; j > 0 && out[j - 1]->order > out[j]->order; j--) {
            const setting_table_t *t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static bool name_is(const char *entry, size_t len, const char *name)
{
    return name != NULL && strlen(name) == len &&
           memcmp(entry, name, len) == 0;
}

const setting_t *setting_find(const char *name, size_t len)
{
    if (__start_tm_settings == NULL || __stop_tm_settings == NULL)
        return NULL;
    for (const setting_table_t *const *p = __start_tm_settings;
         p < __stop_tm_settings; p++)
        for (size_t i = 0; i < (*p)->nrows; i++) {
            const setting_t *s = &(*p)->rows[i];
            if (name_is(name, len, s->name) || name_is(name, len, s->alias))
                return s;
        }
    return NULL;
}

void settings_check_names(char *const *env)
{
    for (; env != NULL && *env != NULL; env++) {
        const char *entry = *env, *eq = strchr(entry, '=');
        shown_t s;
        if (eq == NULL || eq == entry)
            continue;
        size_t len = (size_t)(eq - entry);
        if (setting_find(entry, len) != NULL)
            continue;
        /* TIERMEM_CC_*: the compiler wrappers' and the pass's settings
         * (doc/compiler.md), read at build time; a build's environment
         * often reaches the programs it runs (tests, configure checks) */
        if (len > 11 && memcmp(entry, "TIERMEM_CC_", 11) == 0)
            continue;
        /* TIERMEM_ ones are likely typos; SICM has many SH_ settings
         * tiermem has no use for, so those are only noted. */
        if (len >= 8 && memcmp(entry, "TIERMEM_", 8) == 0)
            log_warn("unknown setting %s ignored (see doc/configuration.md)",
                        log_shown_n(&s, entry, len));
        else if (len >= 3 && memcmp(entry, "SH_", 3) == 0)
            log_info("SICM setting %s has no tiermem equivalent; ignored",
                        log_shown_n(&s, entry, len));
    }
}

/* ---------------------------------------------------------------- lookup */

/* The first entry under name that counts as set. */
static const char *first_value(char *const *env, const char *name,
                               bool empty_is_value)
{
    if (name == NULL)
        return NULL;
    size_t len = strlen(name);
    for (; env != NULL && *env != NULL; env++)
        if (strncmp(*env, name, len) == 0 && (*env)[len] == '=') {
            const char *v = *env + len + 1;
            /* An empty number means "unset", as for TIERMEM_LOG. */
            if (*v != '\0' || empty_is_value)
                return v;
        }
    return NULL;
}

const char *setting_lookup(char *const *env, const setting_t *s,
                           const char **var)
{
    bool empty_ok = (s->flags & SETTING_EMPTY_IS_VALUE) != 0;
    const char *tm = first_value(env, s->name, empty_ok);
    const char *sh = first_value(env, s->alias, empty_ok);
    if (tm != NULL && sh != NULL) {
        shown_t a, b;
        log_info("%s=%s is ignored: %s=%s is set and wins", s->alias,
                    log_shown(&a, sh), s->name, log_shown(&b, tm));
    }
    if (var != NULL)
        *var = tm != NULL ? s->name : s->alias;
    return tm != NULL ? tm : sh;
}

const char *setting_getenv(const setting_t *s)
{
    return setting_lookup(environ, s, NULL);
}

/* ---------------------------------------------------------------- parse */

static void store_number(const setting_t *s, void *owner, uint64_t u,
                         double d)
{
    char *at = (char *)owner + s->offset;
    switch (s->field) {
    case FIELD_BOOL: *(bool *)(void *)at = u != 0; break;
    case FIELD_UINT: *(unsigned *)(void *)at = (unsigned)u; break;
    case FIELD_INT: *(int *)(void *)at = (int)u; break;
    case FIELD_SIZE: *(size_t *)(void *)at = (size_t)u; break;
    case FIELD_U64: *(uint64_t *)(void *)at = u; break;
    case FIELD_DOUBLE: *(double *)(void *)at = d; break;
    case FIELD_NONE: case FIELD_CHARS: break;
    }
}

/* A string row: copied whole, or (too long) one warning and "". */
static bool store_string(const setting_t *s, void *owner, const char *value)
{
    char *at = (char *)owner + s->offset;
    size_t len = strlen(value);
    if (s->field != FIELD_CHARS || s->size == 0)
        return true;
    if (len < s->size) {
        memcpy(at, value, len + 1);
        return true;
    }
    at[0] = '\0';
    return false;
}

/* The generic parse by type; false: value is bad. */
static bool parse_typed(const setting_t *s, const char *value, void *owner)
{
    unsigned long n;
    size_t z;
    uint64_t ns;
    double d;
    bool b;
    int k;
    switch (s->type) {
    case SETTING_BOOL:
        return parse_bool(value, &b) && (store_number(s, owner, b, b), true);
    case SETTING_UINT:
        if (!parse_ulong(value, (unsigned long)s->min, (unsigned long)s->max,
                         &n) ||
            ((s->flags & SETTING_POW2) && (n & (n - 1)) != 0))
            return false;
        return store_number(s, owner, n, (double)n), true;
    case SETTING_SIZE:
        if (!parse_size(value, &z) || z < s->min || z > s->max)
            return false;
        return store_number(s, owner, z, (double)z), true;
    case SETTING_DURATION:
        if (!parse_duration_ns(value, &ns) || ns < s->min || ns > s->max)
            return false;
        return store_number(s, owner, ns, (double)ns), true;
    case SETTING_DOUBLE:
        return parse_double(value, s->lo, s->hi, &d) &&
               (store_number(s, owner, 0, d), true);
    case SETTING_FRACTION:
        return parse_fraction(value, s->lo, s->hi, &d) &&
               (store_number(s, owner, 0, d), true);
    case SETTING_ENUM:
        k = parse_enum(value, s->names, s->nnames);
        if (k < 0)
            return false;
        k = s->values != NULL ? s->values[k] : k;
        return store_number(s, owner, (uint64_t)k, k), true;
    case SETTING_STRING:
    case SETTING_PATH:
        return store_string(s, owner, value);
    case SETTING_LIST:
        return true; /* read by its owner, not at start-up */
    }
    return true;
}

void setting_apply(const setting_t *s, const char *var, const char *value,
                   void *owner, char *const *env)
{
    if (s->type == SETTING_PATH && *value != '\0' &&
        path_setting_refused(var, value))
        return;
    if (s->parse_alias != NULL && var == s->alias) {
        s->parse_alias(s, var, value, owner, env);
        return;
    }
    if (s->parse != NULL) {
        s->parse(s, var, value, owner, env);
        return;
    }
    if (!parse_typed(s, value, owner))
        setting_bad(var, value, s->want, s->shown ? s->shown : s->dflt);
}

void setting_parse(char *const *env, const setting_t *s, void *owner)
{
    const char *var, *value = setting_lookup(env, s, &var);
    if (value != NULL)
        setting_apply(s, var, value, owner, env);
}

void settings_parse_table(char *const *env, const setting_table_t *t,
                          void *owner)
{
    for (size_t i = 0; i < t->nrows; i++)
        setting_parse(env, &t->rows[i], owner);
}

/* ---------------------------------------------------------------- warnings */

void setting_bad(const char *name, const char *value, const char *want,
                    const char *dflt)
{
    shown_t s;
    log_warn("%s=%s is not %s; using %s", name, log_shown(&s, value),
                want, dflt);
}

/* ---------------------------------------------------------------- secure */

static _Atomic int secure_override = -1;

void secure_process_override(int secure)
{
    atomic_store(&secure_override, secure < 0 ? -1 : secure != 0);
}

/* AT_SECURE is what glibc's secure_getenv asks: set for set-user-ID and
 * set-group-ID programs and those with file capabilities, whose
 * environment comes from a less privileged user. */
bool secure_process(void)
{
    int o = atomic_load(&secure_override);
    if (o >= 0)
        return o != 0;
    return getauxval(AT_SECURE) != 0;
}

bool path_setting_refused(const char *name, const char *value)
{
    if (value == NULL || !secure_process())
        return false;
    log_warn("%s is ignored: a set-user-ID or set-group-ID program takes "
                "no paths from the environment", name);
    return true;
}

