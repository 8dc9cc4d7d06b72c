/*
 * options_util.h -- what the settings tests share: parsing a made-up
 * environment.
 */
#ifndef TM_OPTIONS_UTIL_H
#define TM_OPTIONS_UTIL_H

#include <stdarg.h>

#include "settings.h"

/* Parse an environment given as NULL-terminated "NAME=value" arguments. */
static inline void parse(options_t *o, ...)
{
    char *env[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, o);
    for (char *s; n < 63 && (s = va_arg(ap, char *)) != NULL;)
        env[n++] = s;
    va_end(ap);
    env[n] = NULL;
    options_parse(env, o);
}

#endif /* TM_OPTIONS_UTIL_H */
