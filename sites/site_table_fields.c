/*
 * site_table_fields.c -- what the site table reader takes as data in its
 * free-text fields (object paths, symbol names, compiler sites' strings).
 *
 * One file for both sides: the writer (site_report.c, inside the traced
 * process) writes "?" for a field these rules refuse, so it never writes a
 * table the reader (site_table_read.c, in the tools) refuses.  Nothing
 * here allocates.
 */
#include "config.h"

#include <string.h>

#include "sites.h"
/* A byte of an object path: letters, digits, ._+,@%=:~/- and UTF-8.
 * Real objects need no more, and without quotes, $, `, ;, globs and
 * the like a path stays data in whatever script reads the table next. */
static bool path_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c >= 0x80 ||
           strchr("._+,@%=:~/-", c) != NULL;
}

/* "?" (no object), "[exe]" (the runtime could not read /proc/self/exe), or
 * a path shorter than OBJECT_PATH_MAX.  Relative paths are what the loader
 * reports for dlopen("./libx.so") and for the vDSO ("linux-vdso.so.1"):
 * the runtime writes them, so they are data too.  They never start with
 * '-' or '@', so nothing reading the table next can take one for an option
 * or a response file. */
object_problem_t site_table_object_problem(const char *path, size_t *bad)
{
    *bad = 0;
    if (strcmp(path, "?") == 0 || strcmp(path, "[exe]") == 0)
        return OBJECT_OK;
    if (path[0] == '-' || path[0] == '@')
        return OBJECT_LEADING;
    size_t n = 0;
    for (; path[n] != '\0'; n++)
        if (!path_byte((unsigned char)path[n])) {
            *bad = n;
            return OBJECT_BAD_BYTE;
        }
    return n >= OBJECT_PATH_MAX ? OBJECT_TOO_LONG : OBJECT_OK;
}

bool site_table_object_ok(const char *path)
{
    size_t bad;
    return site_table_object_problem(path, &bad) == OBJECT_OK;
}

/* A byte of a symbol as the dynamic symbol table holds it (mangled). */
static bool symbol_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != '\0' && strchr("_.$@", c) != NULL);
}

/* "?" or a symbol as dladdr names it, optionally +0xOFFSET. */
bool site_table_function_ok(const char *fn)
{
    if (strcmp(fn, "?") == 0)
        return true;
    size_t n = 0;
    while (symbol_byte(fn[n]))
        n++;
    const char *tail = fn + n; /* "", or "+0x" and hex digits */
    bool hex_tail = strncmp(tail, "+0x", 3) == 0 && tail[3] != '\0' &&
                    tail[3 + strspn(tail + 3, "0123456789abcdef")] == '\0';
    return n > 0 && n <= SITE_TABLE_SYMBOL_MAX && (*tail == '\0' || hex_tail);
}

/* A compiler site's wrapper chain: symbol names joined by '>', outermost
 * wrapper first, as the pass writes it ("grid_alloc>xmalloc>malloc"); "-"
 * when the call is not through a wrapper. */
bool site_table_chain_ok(const char *chain)
{
    if (strcmp(chain, "?") == 0 || strcmp(chain, "-") == 0)
        return true;
    size_t n = 0;
    while (symbol_byte(chain[n]) ||
           (chain[n] == '>' && n > 0 && chain[n - 1] != '>'))
        n++;
    return n > 0 && n <= SITE_TABLE_SYMBOL_MAX && chain[n] == '\0';
}
