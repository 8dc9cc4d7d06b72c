/*
 * front_cache.c -- small free blocks kept per (thread, arena), in front of
 * jemalloc.
 *
 * Why: jemalloc's fast path is for mallocx(size, 0).  With MALLOCX_ARENA and
 * MALLOCX_TCACHE flags every call takes its general path, which costs about
 * a quarter more (bench/bench_alloc).  Most allocations in real programs are
 * small and short-lived, so tiermem keeps a few freed blocks of each small
 * size class per (thread, arena) and hands them straight back: the fast path
 * is a table lookup and a pop.  Refills and spills go through the explicit
 * tcache of the same (thread, arena), a batch at a time.
 *
 * Bins hold at most 4 KiB of blocks each (32 slots for classes up to 128 B,
 * 4 for 1 KiB), so a cache pins at most ~80 KiB however it is used.
 */
#include "config.h"

#include <errno.h>

#include "arena.h"

uint8_t front_class_of[FRONT_MAX_SIZE / 8 + 1];
uint32_t front_class_size[FRONT_MAX_CLASSES];
unsigned front_nclasses;

#define FRONT_BIN_BYTES 4096

void front_cache_init_classes(void)
{
    unsigned n = 0;
    for (size_t k = 0; k <= FRONT_MAX_SIZE / 8; k++) {
        size_t cls = nallocx(k ? k * 8 : 1, 0);
        if (n == 0 || front_class_size[n - 1] != cls) {
            if (n == FRONT_MAX_CLASSES || cls > FRONT_MAX_SIZE || cls == 0) {
                /* A jemalloc built with other size classes: a table that
                 * does not fit would hand out blocks too small, so run
                 * without front caches instead. */
                log_warn("jemalloc's size classes up to %d bytes do not "
                            "fit the front cache; running without it",
                            FRONT_MAX_SIZE);
                front_nclasses = 0;
                return;
            }
            front_class_size[n++] = (uint32_t)cls;
        }
        front_class_of[k] = (uint8_t)(n - 1);
    }
    front_nclasses = n;
}

front_cache_t *front_cache_new(void)
{
    if (front_nclasses == 0)
        return NULL; /* disabled: see front_cache_init_classes */
    front_cache_t *fc = meta_alloc(sizeof *fc);
    if (fc == NULL)
        return NULL;
    for (unsigned c = 0; c < front_nclasses; c++) {
        uint32_t cap = FRONT_BIN_BYTES / front_class_size[c];
        fc->bin[c].cap = cap < 4 ? 4 : cap > FRONT_MAX_SLOTS ? FRONT_MAX_SLOTS
                                                             : cap;
    }
    return fc;
}

void front_cache_delete(front_cache_t *fc)
{
    if (fc == NULL)
        return;
    for (unsigned c = 0; c < front_nclasses; c++)
        for (uint32_t i = 0; i < fc->bin[c].count; i++)
            dallocx(fc->bin[c].slot[i], MALLOCX_TCACHE_NONE);
    meta_free(fc, sizeof *fc);
}

/* Fill half the bin and return one more block; NULL + ENOMEM if jemalloc
 * has none. */
void *front_cache_refill(front_bin_t *bin, size_t class_size, int flags)
{
    /* called when the bin is empty; cap fits the slot array */
    debug_assert(bin->count == 0 && bin->cap <= FRONT_MAX_SLOTS);
    uint32_t want = bin->cap / 2;
    while (bin->count < want) {
        void *p = mallocx(class_size, flags);
        if (p == NULL)
            break;
        bin->slot[bin->count++] = p;
    }
    void *p = mallocx(class_size, flags);
    if (p == NULL)
        errno = ENOMEM;
    return p;
}

/* Give the older half of a full bin back to the tcache. */
void front_cache_spill(front_bin_t *bin, int free_flags)
{
    debug_assert(bin->count <= bin->cap && bin->cap <= FRONT_MAX_SLOTS);
    uint32_t half = bin->count / 2;
    for (uint32_t i = 0; i < half; i++)
        dallocx(bin->slot[i], free_flags);
    for (uint32_t i = half; i < bin->count; i++)
        bin->slot[i - half] = bin->slot[i];
    bin->count -= half;
}
