/*
 * sh_api.c -- the site entry points programs call by name: tiermem's own
 * tm_site_* functions, and the sh_* names and signatures that programs
 * instrumented for SICM's high-level interface call, so such a program
 * links and runs against tiermem unchanged.
 *
 * SICM's conventions kept here: id 0 means "no particular site"; a negative
 * id is treated the same; sh_alloc(id, 0) returns a unique block.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "sites.h"

#define CALLER __builtin_return_address(0)

_Static_assert((int)SITE_KIND_STACK == (int)TM_SITE_STACK &&
                   (int)SITE_KIND_EXPLICIT == (int)TM_SITE_EXPLICIT &&
                   (int)SITE_KIND_CC == (int)TM_SITE_CC,
               "tm_site_info's kind is the site's own");

static int site_id(int id) { return id > 0 ? id : 0; }

/* ------------------------------------------------------------ tiermem's */

void *tm_site_malloc(int site, size_t size)
{
    return site_malloc(CALLER, site_id(site), size);
}

void *tm_site_calloc(int site, size_t count, size_t size)
{
    return site_calloc(CALLER, site_id(site), count, size);
}

void *tm_site_realloc(int site, void *ptr, size_t size)
{
    return site_realloc(CALLER, site_id(site), ptr, size);
}

void *tm_site_aligned_alloc(int site, size_t alignment, size_t size)
{
    return site_aligned(CALLER, site_id(site), alignment, size);
}

unsigned tm_site_count(void) { return sites_ready() ? site_count() : 0; }

int tm_site_info(unsigned index, tm_site_info_t *out)
{
    site_t *s = sites_ready() ? site_get(index) : NULL;
    if (s == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    tm_arena_t *a = atomic_load(&s->arena);
    *out = (tm_site_info_t){
        .index = s->index,
        .key = s->key,
        .explicit_id = s->explicit_id,
        .arena_id = a ? tm_arena_id(a) : 0,
        .depth = s->trace.depth,
        .kind = (tm_site_kind_t)s->kind,
    };
    stats_snapshot(&s->stats, &out->stats);
    return 0;
}

int tm_sites_write(const char *path)
{
    if (path == NULL || !sites_ready()) {
        errno = EINVAL;
        return -1;
    }
    return site_report_write(path);
}

/* ------------------------------------------------------------ SICM's */

void *sh_alloc(int id, size_t sz)
{
    return site_malloc(CALLER, site_id(id), sz);
}

void *sh_calloc(int id, size_t num, size_t sz)
{
    return site_calloc(CALLER, site_id(id), num, sz);
}

void *sh_realloc(int id, void *ptr, size_t sz)
{
    return site_realloc(CALLER, site_id(id), ptr, sz);
}

void *sh_aligned_alloc(int id, size_t alignment, size_t sz)
{
    return site_aligned(CALLER, site_id(id), alignment, sz);
}

void *sh_memalign(int id, size_t alignment, size_t sz)
{
    return site_aligned(CALLER, site_id(id), alignment, sz);
}

int sh_posix_memalign(int id, void **ptr, size_t alignment,
                                size_t sz)
{
    if (ptr == NULL || alignment < sizeof(void *) ||
        (alignment & (alignment - 1)) != 0)
        return EINVAL;
    void *p = site_aligned(CALLER, site_id(id), alignment, sz);
    if (p == NULL)
        return ENOMEM;
    *ptr = p;
    return 0;
}

char *sh_strdup(int id, const char *s)
{
    size_t n = strlen(s);
    char *p = site_malloc(CALLER, site_id(id), n + 1);
    if (p != NULL)
        memcpy(p, s, n + 1);
    return p;
}

char *sh_strndup(int id, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = site_malloc(CALLER, site_id(id), len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void sh_free(void *ptr) { site_free(ptr); }

void sh_sized_free(void *ptr, size_t size)
{
    (void)size; /* the arena knows the size; a wrong hint must not matter */
    site_free(ptr);
}

/* The compiler pass turns `new (std::nothrow) T` into this call. */
void *sh_alloc_cxx_nothrow(int id, size_t sz, void *nothrow_tag)
{
    (void)nothrow_tag;
    return site_malloc(CALLER, site_id(id), sz);
}
