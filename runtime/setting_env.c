/*
 * setting_env.c -- the helpers every layer's settings share: find a
 * variable in an environment array, parse the value types the runtime's
 * own parsers (parse.c) do not cover, and warn once about a bad value.
 *
 * The profiler's and the policy's settings are read by their own layers
 * (profiler_options.c, policy_options.c), with the same rule as the
 * runtime's: a bad value gets one warning naming the variable, the value
 * and the default kept, and never stops the program.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime.h"

const char *tm_env_value(char *const *env, const char *name)
{
    size_t len = strlen(name);
    for (; env != NULL && *env != NULL; env++)
        if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
            return *env + len + 1;
    return NULL;
}

void tm_setting_bad(const char *name, const char *value, const char *want,
                    const char *dflt)
{
    /* the value as it may appear in one log line: printable, 64 bytes */
    char shown[68];
    size_t i = 0;
    for (; value[i] != '\0' && i < 64; i++)
        shown[i] = value[i] >= 0x20 && value[i] < 0x7f ? value[i] : '?';
    shown[i] = '\0';
    tm_log_warn("%s=%s%s is not %s; using %s", name, shown,
                value[i] ? "..." : "", want, dflt);
}

bool tm_parse_bool(const char *s, bool *out)
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
bool tm_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool tm_parse_duration_ns(const char *s, uint64_t *out)
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
    if (!tm_parse_ulong(digits, 0, 999999999999ul, &v))
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(s + n, units[i].unit) == 0) {
            *out = (uint64_t)v * units[i].ns;
            return true;
        }
    return false;
}
