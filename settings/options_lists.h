/*
 * options_lists.h -- the two list settings of the sites' rows
 * (TIERMEM_WRAPPERS, TIERMEM_SKIP_OBJECTS): their defaults, for
 * options.c's static initialiser and its rows, and their parsers
 * (options_lists.c).  Private to those two files.
 */
#ifndef TM_OPTIONS_LISTS_H
#define TM_OPTIONS_LISTS_H

#include "settings.h"

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

/* The same list as the row's default text (test_options checks that it
 * parses to the default). */
#define DEFAULT_WRAPPERS_TEXT                                                 \
    "hypre_MAlloc,hypre_CAlloc,hypre_ReAlloc,hypre_ReAlloc_v2,"               \
    "_hypre_MAlloc,Mem_dhMalloc,hypre_mymalloc,hypre_idx_malloc,"             \
    "hypre_fp_malloc,strdup,strndup,__strdup,__strndup"


/*
 * Shared objects whose frames are never a site's: the site is the first
 * frame outside them.  libc and the loader allocate for their callers
 * (strdup, fopen, dlopen); the language runtimes likewise (libstdc++'s
 * containers, libgfortran's I/O buffers, libgomp's outlined regions), and
 * libnuma is tiermem's own dependency, whose load-time allocations are no
 * site of the program's.  Base-name prefixes.
 */
#define DEFAULT_SKIP_OBJECTS                                                  \
    "libc.so", "libc-", "ld-linux", "libstdc++.so", "libgfortran.so",         \
        "libgomp.so", "libgcc_s.so", "libquadmath.so", "libnuma.so"
#define DEFAULT_SKIP_OBJECTS_TEXT                                             \
    "libc.so,libc-,ld-linux,libstdc++.so,libgfortran.so,libgomp.so,"          \
    "libgcc_s.so,libquadmath.so,libnuma.so"

/* Counts of the two default lists (the initialiser needs constants). */
#define NDEFAULT_WRAPPERS 13
#define NDEFAULT_SKIP_OBJECTS 9

/* The rows' parse callbacks (setting_parse_fn). */
void parse_wrappers(const setting_t *row, const char *var, const char *value,
                    void *owner, char *const *env);
void parse_skip_objects(const setting_t *row, const char *var,
                        const char *value, void *owner, char *const *env);

#endif /* TM_OPTIONS_LISTS_H */
