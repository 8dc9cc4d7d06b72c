/*
 * alloc_override_cxx.c -- C++ operator new and delete, every variant
 * (plain, array, nothrow, sized, aligned), for libtiermem-preload.so.
 *
 * Written in C under their Itanium-ABI (x86-64) names, so the preload
 * library does not pull libstdc++ into C programs.  A throwing new that
 * fails calls the program's new_handler and retries, as the standard
 * requires; with no handler it throws std::bad_alloc through libstdc++'s
 * own helper (sites/cxx_new.c, shared with the compiler's tm_cc_new*).
 */
#include "config.h"

#include "sites.h"

#define OVERRIDE __attribute__((visibility("default")))
#define CALLER __builtin_return_address(0)
#define NEW_ALIGN 16 /* __STDCPP_DEFAULT_NEW_ALIGNMENT__ on x86-64 */

/* The standard's loop: the new_handler, then a retry, until one succeeds
 * or there is no handler (bad_alloc; sites/cxx_new.c). */
static void *new_failed(const void *caller, size_t size, size_t align)
{
    for (;;) {
        cxx_new_handler_or_throw(size);
        void *p = align > NEW_ALIGN ? site_aligned(caller, -1, align, size)
                                    : site_malloc(caller, -1, size);
        if (p != NULL)
            return p;
    }
}

static void *new_plain(const void *caller, size_t size)
{
    if (size < NEW_ALIGN) /* new guarantees 16-byte alignment */
        size = NEW_ALIGN;
    void *p = site_malloc(caller, -1, size);
    return TM_LIKELY(p != NULL) ? p : new_failed(caller, size, 0);
}

static void *new_aligned(const void *caller, size_t size, size_t align)
{
    void *p = site_aligned(caller, -1, align, size);
    return TM_LIKELY(p != NULL) ? p : new_failed(caller, size, align);
}

/* operator new(size_t), new[](size_t) */
OVERRIDE void *_Znwm(size_t n) { return new_plain(CALLER, n); }
OVERRIDE void *_Znam(size_t n) { return new_plain(CALLER, n); }

/* operator new(size_t, const std::nothrow_t &), and new[] */
OVERRIDE void *_ZnwmRKSt9nothrow_t(size_t n, const void *tag)
{
    (void)tag;
    return site_malloc(CALLER, -1, n < NEW_ALIGN ? NEW_ALIGN : n);
}
OVERRIDE void *_ZnamRKSt9nothrow_t(size_t n, const void *tag)
{
    (void)tag;
    return site_malloc(CALLER, -1, n < NEW_ALIGN ? NEW_ALIGN : n);
}

/* operator new(size_t, std::align_val_t), and new[] */
OVERRIDE void *_ZnwmSt11align_val_t(size_t n, size_t al)
{
    return new_aligned(CALLER, n, al);
}
OVERRIDE void *_ZnamSt11align_val_t(size_t n, size_t al)
{
    return new_aligned(CALLER, n, al);
}

/* operator new(size_t, std::align_val_t, const std::nothrow_t &), new[] */
OVERRIDE void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al,
                                                   const void *tag)
{
    (void)tag;
    return site_aligned(CALLER, -1, al, n);
}
OVERRIDE void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al,
                                                   const void *tag)
{
    (void)tag;
    return site_aligned(CALLER, -1, al, n);
}

/* Every delete: the arena knows the block's size and alignment, so the
 * size and alignment arguments are only hints and are not trusted. */
OVERRIDE void _ZdlPv(void *p) { site_free(p); }
OVERRIDE void _ZdaPv(void *p) { site_free(p); }
OVERRIDE void _ZdlPvm(void *p, size_t n) { (void)n; site_free(p); }
OVERRIDE void _ZdaPvm(void *p, size_t n) { (void)n; site_free(p); }
OVERRIDE void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; site_free(p); }
OVERRIDE void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; site_free(p); }
OVERRIDE void _ZdlPvSt11align_val_t(void *p, size_t al) { (void)al; site_free(p); }
OVERRIDE void _ZdaPvSt11align_val_t(void *p, size_t al) { (void)al; site_free(p); }
OVERRIDE void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al)
{
    (void)n;
    (void)al;
    site_free(p);
}
OVERRIDE void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al)
{
    (void)n;
    (void)al;
    site_free(p);
}
OVERRIDE void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al,
                                                  const void *t)
{
    (void)al;
    (void)t;
    site_free(p);
}
OVERRIDE void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al,
                                                  const void *t)
{
    (void)al;
    (void)t;
    site_free(p);
}
