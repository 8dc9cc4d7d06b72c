/*
 * alloc_override.c -- the C allocation functions of an unmodified program,
 * taken over through LD_PRELOAD (libtiermem-preload.so only).
 *
 * Every function hands its own return address to the site layer, which
 * turns the call stack above it into a site.  Behaviour follows glibc where
 * programs can tell the difference: malloc(0) returns a unique block,
 * every block is 16-byte aligned, realloc(p, 0) frees p and returns NULL,
 * posix_memalign reports EINVAL for an alignment that is not a power of two
 * multiple of sizeof(void *), memalign and aligned_alloc round an odd
 * alignment up to a power of two, pvalloc rounds the size up to whole
 * pages.  Pointers tiermem did not hand out, and pointers into a block
 * (block_check.c), are ignored by free (logged once) instead of crashing
 * the program.  glibc's statistics calls are in alloc_stats_override.c.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "sites.h"

#define OVERRIDE __attribute__((visibility("default")))
#define CALLER __builtin_return_address(0)

static size_t page_size(void)
{
    static _Atomic size_t cached;
    size_t p = atomic_load_explicit(&cached, memory_order_relaxed);
    if (p == 0) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&cached, p, memory_order_relaxed);
    }
    return p;
}


OVERRIDE void *malloc(size_t size)
{
    return site_malloc(CALLER, -1, site_min_block(size));
}

OVERRIDE void free(void *ptr) { site_free(ptr); }

OVERRIDE void *calloc(size_t n, size_t size)
{
    size_t total;
    if (!__builtin_mul_overflow(n, size, &total) && total < SITE_MIN_BLOCK)
        return site_calloc(CALLER, -1, 1, SITE_MIN_BLOCK);
    return site_calloc(CALLER, -1, n, size);
}

OVERRIDE void *realloc(void *ptr, size_t size)
{
    /* size 0 keeps glibc's meaning (free, return NULL) */
    return site_realloc(CALLER, -1, ptr, size ? site_min_block(size) : 0);
}

OVERRIDE void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return site_realloc(CALLER, -1, ptr, total ? site_min_block(total) : 0);
}

OVERRIDE int posix_memalign(void **out, size_t align, size_t size)
{
    if (!site_posix_align_ok(align))
        return EINVAL;
    int saved = errno; /* posix_memalign reports through its result only */
    void *p = site_aligned(CALLER, -1, align, size);
    if (p == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

/* memalign, and glibc 2.36's aligned_alloc, which is memalign: any
 * alignment is rounded up to a power of two. */
static inline void *memalign_at(const void *caller, size_t align, size_t size)
{
    size_t a = site_memalign_align(align);
    if (a == 0) {
        errno = EINVAL;
        return NULL;
    }
    return site_aligned(caller, -1, a, size);
}

OVERRIDE void *memalign(size_t align, size_t size)
{
    return memalign_at(CALLER, align, size);
}

OVERRIDE void *aligned_alloc(size_t align, size_t size)
{
    return memalign_at(CALLER, align, size);
}

OVERRIDE void *valloc(size_t size)
{
    return site_aligned(CALLER, -1, page_size(), size);
}

OVERRIDE void *pvalloc(size_t size)
{
    size_t page = page_size(), rounded;
    if (__builtin_add_overflow(size, page - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    rounded &= ~(page - 1);
    return site_aligned(CALLER, -1, page, rounded ? rounded : page);
}

OVERRIDE size_t malloc_usable_size(void *ptr) { return site_usable_size(ptr); }

/* Start when the library is loaded, before main, so the first allocation of
 * a thread does not pay for it and start-up messages come early. */
__attribute__((constructor)) static void override_init(void)
{
    (void)sites_ready();
}
