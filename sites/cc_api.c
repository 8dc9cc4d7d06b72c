/*
 * cc_api.c -- the entry points a compiler-instrumented program calls: the
 * LLVM pass rewrites malloc(n) into tm_cc_malloc(ID, n), new T into
 * tm_cc_new(ID, sizeof(T)), and so on, with ID the site's compiler id
 * (bits 63..62 = 10) described by the object's .note.tiermem.
 *
 * Each behaves as the standard function does where a program can tell
 * (glibc's rules, as the preload library keeps them: 16-byte minimum
 * blocks, realloc(p, 0) frees, posix_memalign's EINVAL, memalign's rounding
 * of an odd alignment, new's new_handler then bad_alloc), but the site is
 * the id: no stack walk.  Blocks are freed by the ordinary free/delete
 * (or tm_free): the arena of any block is found from its address.
 *
 * The C++ ones are C functions too (extern "C" in tiermem.h), throwing
 * through sites/cxx_new.c, so libtiermem.so needs no libstdc++.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "sites.h"


void *tm_cc_malloc(uint64_t id, size_t size)
{
    return site_cc_malloc(id, site_min_block(size));
}

void *tm_cc_calloc(uint64_t id, size_t n, size_t size)
{
    size_t total;
    if (!__builtin_mul_overflow(n, size, &total) && total < SITE_MIN_BLOCK)
        return site_cc_calloc(id, 1, SITE_MIN_BLOCK);
    return site_cc_calloc(id, n, size);
}

void *tm_cc_realloc(uint64_t id, void *ptr, size_t size)
{
    /* size 0 keeps glibc's meaning (free, return NULL) */
    return site_cc_realloc(id, ptr, size ? site_min_block(size) : 0);
}

void *tm_cc_reallocarray(uint64_t id, void *ptr, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return site_cc_realloc(id, ptr, total ? site_min_block(total) : 0);
}

int tm_cc_posix_memalign(uint64_t id, void **p, size_t align, size_t size)
{
    if (p == NULL || !site_posix_align_ok(align))
        return EINVAL;
    int saved = errno; /* posix_memalign reports through its result only */
    void *q = site_cc_aligned(id, align, size);
    if (q == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *p = q;
    return 0;
}

/* memalign, and glibc's aligned_alloc (which is memalign): an alignment
 * that is not a power of two is rounded up; one past the largest fails. */
static void *memalign_cc(uint64_t id, size_t align, size_t size)
{
    size_t a = site_memalign_align(align);
    if (a == 0) {
        errno = EINVAL;
        return NULL;
    }
    return site_cc_aligned(id, a, size);
}

void *tm_cc_aligned_alloc(uint64_t id, size_t align, size_t size)
{
    return memalign_cc(id, align, size);
}

void *tm_cc_memalign(uint64_t id, size_t align, size_t size)
{
    return memalign_cc(id, align, size);
}

void *tm_cc_valloc(uint64_t id, size_t size)
{
    return site_cc_aligned(id, os_page_size(), size);
}

char *tm_cc_strdup(uint64_t id, const char *s)
{
    size_t n = strlen(s);
    char *p = site_cc_malloc(id, site_min_block(n + 1));
    if (p != NULL)
        memcpy(p, s, n + 1);
    return p;
}

char *tm_cc_strndup(uint64_t id, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = site_cc_malloc(id, site_min_block(len + 1));
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* The pass brackets a call of a language runtime's allocating entry point
 * (flang's _FortranAAllocatableAllocate) with tm_cc_next_site(id) and
 * tm_cc_next_site(0): the first allocation the thread makes through the
 * replaced malloc in between (the preload library's, linked by
 * tiermem-fortran) takes the id as its site.  Without the replaced malloc
 * nothing takes it, and the 0 after the call clears it. */
void tm_cc_next_site(uint64_t id) { site_cc_next(cc_id_valid(id) ? id : 0); }

/* The pass brackets a call of an allocation wrapper defined in another
 * file (one TIERMEM_CC_WRAPPERS names: hypre_CAlloc, xmalloc) with
 *   prev = tm_cc_wrap_enter(id); wrapper(...); tm_cc_wrap_leave(prev);
 * and every allocation the thread makes in between, tm_cc_* or through
 * the replaced malloc, takes the id.  A context already set stays (a
 * wrapper calling a wrapper: the outermost call wins); an invalid id sets
 * none. */
uint64_t tm_cc_wrap_enter(uint64_t id) { return site_cc_wrap_enter(id); }

void tm_cc_wrap_leave(uint64_t prev)
{
    site_cc_wrap_leave(cc_id_valid(prev) ? prev : 0);
}

/* ------------------------------------------------------------ C++ */

/* align 0: new's own 16 bytes.  The standard's loop on failure: the
 * new_handler, then a retry, until one succeeds; with no handler
 * cxx_new_handler_or_throw throws bad_alloc.  An alignment above 16 that
 * is not a power of two (no valid std::align_val_t) fails as ENOMEM would. */
static void *new_cc(uint64_t id, size_t size, size_t align, bool nothrow)
{
    for (;;) {
        void *p = align > SITE_MIN_BLOCK
                      ? site_cc_aligned(id, align, size)
                      : site_cc_malloc(id, site_min_block(size));
        if (TM_LIKELY(p != NULL) || nothrow)
            return p;
        cxx_new_handler_or_throw(size);
    }
}

void *tm_cc_new(uint64_t id, size_t size) { return new_cc(id, size, 0, false); }
void *tm_cc_new_array(uint64_t id, size_t size)
{
    return new_cc(id, size, 0, false);
}
void *tm_cc_new_nothrow(uint64_t id, size_t size)
{
    return new_cc(id, size, 0, true);
}
void *tm_cc_new_array_nothrow(uint64_t id, size_t size)
{
    return new_cc(id, size, 0, true);
}
void *tm_cc_new_aligned(uint64_t id, size_t size, size_t align)
{
    return new_cc(id, size, align, false);
}
void *tm_cc_new_array_aligned(uint64_t id, size_t size, size_t align)
{
    return new_cc(id, size, align, false);
}
void *tm_cc_new_aligned_nothrow(uint64_t id, size_t size, size_t align)
{
    return new_cc(id, size, align, true);
}
void *tm_cc_new_array_aligned_nothrow(uint64_t id, size_t size, size_t align)
{
    return new_cc(id, size, align, true);
}
