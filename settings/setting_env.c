/*
 * setting_env.c -- the helpers every layer's settings share: find a
 * variable in an environment array, parse the value types the runtime's
 * own parsers (parse.c) do not cover, and warn once about a bad value.
 *
 * The profiler's and the policy's settings are read by their own layers
 * (profiler_options.c, policy_options.c), with the same rule as the
 * runtime's: a bad value gets one warning naming the variable, the value
 * (through log_shown) and the default kept, and never stops the program.
 * In a set-user-ID or set-group-ID process the settings that name paths
 * are ignored, as secure_getenv would (path_setting_refused).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>

#include "settings.h"

const char *env_value(char *const *env, const char *name)
{
    size_t len = strlen(name);
    for (; env != NULL && *env != NULL; env++)
        if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
            return *env + len + 1;
    return NULL;
}

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

bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "on", "yes", "true"};
    static const char *const no[] = {"0", "off", "no", "false"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

/* strtod follows LC_NUMERIC: settings are read at start-up, before the
 * program's main can have set a locale, so "0.1" means what it says. */
bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool parse_duration_ns(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000000},
                 {"s", 1000000000}, {"", 1000000}};
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 12)
        return false;
    char digits[16];
    memcpy(digits, s, n);
    digits[n] = '\0';
    unsigned long v;
    if (!parse_ulong(digits, 0, 999999999999ul, &v))
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(s + n, units[i].unit) == 0) {
            *out = (uint64_t)v * units[i].ns;
            return true;
        }
    return false;
}
