/*
 * tm_probe.h -- ask the preload library, if it is loaded, whether pointers
 * came from a tiermem arena.
 *
 * The real-program tests run each program twice, with and without
 * LD_PRELOAD, and compare their stdout byte for byte.  So the programs must
 * not link against tiermem: they look tm_arena_of up with dlsym at run time,
 * and everything they say about it goes to stderr on lines that start with
 * "tmtest-arena:", which run.sh strips before comparing and then checks on
 * its own.  When the symbol is absent (plain run) every check is a no-op.
 *
 * Shared by the C and the C++ programs; everything is static inline so each
 * program has its own counters.
 */
#ifndef TM_PROBE_H
#define TM_PROBE_H

#include <dlfcn.h>
#include <stdio.h>

typedef void *(*tm_probe_fn)(const void *);

static tm_probe_fn tm_probe_arena_of;
static unsigned long tm_probe_inside, tm_probe_outside, tm_probe_bad;

/* Look the symbol up once, before any check.  RTLD_DEFAULT searches the
 * preloaded library too, since it is in the global scope. */
static inline void tm_probe_init(void)
{
    void *sym = dlsym(RTLD_DEFAULT, "tm_arena_of");
    /* POSIX guarantees a data pointer from dlsym converts to a function
     * pointer; copy the bits so neither C nor C++ warns about the cast. */
    __builtin_memcpy(&tm_probe_arena_of, &sym, sizeof sym);
}

/* p came from malloc/new/...: under the preload it must be in an arena. */
static inline void tm_probe_inside_arena(const void *p, const char *what)
{
    if (!tm_probe_arena_of || !p)
        return;
    tm_probe_inside++;
    if (!tm_probe_arena_of(p)) {
        tm_probe_bad++;
        fprintf(stderr, "tmtest-arena: %s: %p is not in a tiermem arena\n",
                what, p);
    }
}

/* p is stack, static or mmap memory: tm_arena_of must say no. */
static inline void tm_probe_outside_arena(const void *p, const char *what)
{
    if (!tm_probe_arena_of)
        return;
    tm_probe_outside++;
    if (tm_probe_arena_of(p)) {
        tm_probe_bad++;
        fprintf(stderr, "tmtest-arena: %s: %p is in a tiermem arena\n", what,
                p);
    }
}

/* One summary line for run.sh; returns nonzero if any check failed. */
static inline int tm_probe_report(void)
{
    if (!tm_probe_arena_of) {
        fprintf(stderr, "tmtest-arena: tm_arena_of absent\n");
        return 0;
    }
    fprintf(stderr,
            "tmtest-arena: checked %lu heap pointers and %lu others, "
            "%lu wrong\n",
            tm_probe_inside, tm_probe_outside, tm_probe_bad);
    return tm_probe_bad != 0;
}

#endif /* TM_PROBE_H */
