/*
 * options_lists.c -- the list settings of the sites' rows: TIERMEM_WRAPPERS
 * (functions that only wrap malloc) and TIERMEM_SKIP_OBJECTS (objects whose
 * frames are never a site's).  Comma-separated names; a leading '+' adds
 * them to the default list; a bad name or too many gets one warning and the
 * default list.  Split from options.c for size: its rows call these.
 *
 * No allocation: the preload library parses its settings while it is
 * itself the process's malloc.
 */
#include "config.h"

#include <string.h>

#include "options_lists.h"

static const char default_wrappers[][TM_WRAPPER_NAME_MAX] = {
    DEFAULT_WRAPPERS};
static const char default_skip_objects[][TM_WRAPPER_NAME_MAX] = {
    DEFAULT_SKIP_OBJECTS};
_Static_assert(sizeof default_wrappers / sizeof default_wrappers[0] ==
                   NDEFAULT_WRAPPERS, "NDEFAULT_WRAPPERS");
_Static_assert(sizeof default_skip_objects / sizeof default_skip_objects[0] ==
                   NDEFAULT_SKIP_OBJECTS, "NDEFAULT_SKIP_OBJECTS");

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

/* Object base-name prefixes: "libstdc++.so", "ld-linux-x86-64". */
static bool object_char(char c)
{
    return wrapper_char(c) || c == '+' || c == '-';
}

/* Parse the comma-separated list after any '+'.  On error, *bad and *badlen
 * say which name is wrong (*badlen 0: the list is too long). */
static bool wrapper_parse(const char *p, wrapper_list_t *l, const char **bad,
                          size_t *badlen, bool (*char_ok)(char))
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
            ok = char_ok(s[i]);
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

/* A list setting's value into l: "+a,b" is the default list and these,
 * "a,b" these only.  As wrapper_parse. */
static bool list_parse(const char *value, const char (*defaults)[TM_WRAPPER_NAME_MAX],
                       size_t ndefaults, wrapper_list_t *l, const char **bad,
                       size_t *badlen, bool (*char_ok)(char))
{
    memset(l, 0, sizeof *l); /* unused names stay zero: copied whole */
    if (*value == '+') {
        for (size_t i = 0; i < ndefaults; i++)
            wrapper_add(l, defaults[i], strlen(defaults[i]));
        value++;
    }
    return wrapper_parse(value, l, bad, badlen, char_ok);
}

void parse_wrappers(const setting_t *row, const char *var,
                           const char *value, void *owner, char *const *env)
{
    options_t *out = owner;
    const char *bad;
    size_t badlen;
    (void)row, (void)env;
    wrapper_list_t l;
    shown_t s, b;
    if (list_parse(value, default_wrappers, NDEFAULT_WRAPPERS, &l, &bad,
                   &badlen, wrapper_char)) {
        out->nwrappers = l.n;
        memcpy(out->wrappers, l.names, sizeof l.names);
        /* the names given: a missing one is worth a warning, a missing
         * default (hypre's, in a program without hypre) is not */
        out->wrappers_named = 0;
        for (unsigned i = 0; i < l.n; i++) {
            bool dflt = false;
            for (size_t k = 0; k < NDEFAULT_WRAPPERS && !dflt; k++)
                dflt = strcmp(l.names[i], default_wrappers[k]) == 0;
            if (!dflt)
                out->wrappers_named |= (uint32_t)1 << i;
        }
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

void parse_skip_objects(const setting_t *row, const char *var,
                               const char *value, void *owner,
                               char *const *env)
{
    options_t *out = owner;
    const char *bad;
    size_t badlen;
    (void)row, (void)env;
    wrapper_list_t l;
    shown_t s;
    if (list_parse(value, default_skip_objects, NDEFAULT_SKIP_OBJECTS, &l,
                   &bad, &badlen, object_char)) {
        out->nskip_objects = l.n;
        memcpy(out->skip_objects, l.names, sizeof l.names);
    } else {
        log_warn("%s=%s is not a list of at most %d object names (1-%d of "
                 "A-Z a-z 0-9 _ . $ : + -); using the default list", var,
                 log_shown(&s, value), TM_MAX_WRAPPERS,
                 TM_WRAPPER_NAME_MAX - 1);
    }
}

