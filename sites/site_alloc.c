/*
 * site_alloc.c -- allocation by site: the code under sh_* and the malloc
 * interposition.
 *
 * The path of one allocation: pick the site (an explicit id, site 0 for a
 * request below TIERMEM_SMALL_SIZE, else the stack key), the site's arena
 * for this layout, allocate there, account the usable size.  A free finds
 * the arena through the extent map, and the site through the arena (or the
 * ledger, for shared arenas).
 *
 * Two situations never reach a site:
 *   - allocations during tiermem's own start-up, and before it: they come
 *     from a static bootstrap buffer and are never freed (see boot_*);
 *   - allocations made while this thread is already inside the site logic
 *     (the unwinder and dladdr may allocate): they go to site 0's arena
 *     without a stack walk.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "sites.h"

/* ------------------------------------------------------------ bootstrap */

#define BOOT_SIZE (1u << 20)
#define BOOT_HEADER 16

static _Alignas(64) char boot_buf[BOOT_SIZE];
static _Atomic size_t boot_used;

static bool boot_owns(const void *p)
{
    return (const char *)p >= boot_buf && (const char *)p < boot_buf + BOOT_SIZE;
}

/* Bump allocation with a size header; align is a power of two >= 16. */
static void *boot_alloc(size_t size, size_t align)
{
    if (align < BOOT_HEADER)
        align = BOOT_HEADER;
    size_t old = atomic_load(&boot_used), start, end;
    do {
        start = (old + BOOT_HEADER + align - 1) & ~(align - 1);
        if (size > BOOT_SIZE || start + size > BOOT_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
        end = start + size;
    } while (!atomic_compare_exchange_weak(&boot_used, &old, end));
    memcpy(boot_buf + start - sizeof(size_t), &size, sizeof size);
    return boot_buf + start; /* static storage: already zeroed */
}

static size_t boot_size(const void *p)
{
    size_t size;
    memcpy(&size, (const char *)p - sizeof(size_t), sizeof size);
    return size;
}

/* ------------------------------------------------------------ re-entry */

static __thread int in_site_logic __attribute__((tls_model("initial-exec")));

/* Who names the site of an allocation: a compiler id (cc != 0), an
 * explicit id (id >= 0), else the caller's stack. */
typedef struct who {
    const void *caller;
    int id;
    uint64_t cc;
} who_t;

/* The site of this allocation. */
static site_t *site_pick(who_t w, size_t size)
{
    if (w.cc != 0) { /* no stack walk, no hashing: the id is the key */
        in_site_logic++; /* a first sight may scan the objects' notes */
        site_t *s = cc_site(w.cc);
        in_site_logic--;
        return s ? s : site_get(SITE_UNSITED);
    }
    if (w.id >= 0)
        return w.id == 0 ? site_get(SITE_UNSITED)
                         : site_find(site_explicit_key(w.id), w.id, NULL);
    if (size < runtime_options.small_size || in_site_logic)
        return site_get(SITE_UNSITED);
    in_site_logic++;
    stack_trace_t trace;
    uint64_t key = stack_key(w.caller, runtime_options.stack_depth, &trace);
    site_t *s = site_find(key, -1, &trace);
    in_site_logic--;
    return s;
}

/* A compiler id that is not one (bits 63..62 not 10) cannot be a key, or it
 * could land on a stack site: such calls count as site 0's, as sh_alloc's
 * id 0 does. */
static who_t cc_who(uint64_t id)
{
    return cc_id_valid(id) ? (who_t){NULL, -1, id} : (who_t){NULL, 0, 0};
}

static tm_arena_t *arena_pick(site_t *s)
{
    in_site_logic++; /* creating an arena may log, unwind...: no recursion */
    tm_arena_t *a = site_arena(s);
    in_site_logic--;
    return a;
}

static size_t usable_of(void *p, size_t size)
{
    size_t usable = size <= FRONT_MAX_SIZE ? front_usable_size(size) : 0;
    return usable ? usable : sallocx(p, 0);
}

/* ------------------------------------------------------------ entry points */

/* The most frequent call of all: a small malloc of an unmodified program.
 * Site 0's arena is fixed once start-up is done (except per thread), so
 * it needs no site or layout logic.  NULL if it does not apply. */
static inline tm_arena_t *small_arena(int site_id, size_t size)
{
    if (site_id >= 0 || size >= runtime_options.small_size ||
        runtime_options.layout == TM_LAYOUT_PER_THREAD)
        return NULL;
    site_t *s0 = atomic_load_explicit(&sites_unsited, memory_order_acquire);
    return s0 ? atomic_load_explicit(&s0->arena, memory_order_acquire) : NULL;
}

static void *pick_malloc(who_t w, size_t size);

/* A thread's compiler ids for allocations that carry none themselves:
 *
 * next: announced for the thread's next allocation by tm_cc_next_site.
 *   The pass brackets calls of flang's runtime entry points
 *   (_FortranAAllocatableAllocate...), which malloc inside an
 *   uninstrumented library, with it.  The first interposed allocation
 *   takes it (so the runtime's own allocations inside the site logic
 *   never see it): one-shot.
 * wrap: the wrapper context, set by tm_cc_wrap_enter around a call of an
 *   allocation wrapper defined in another file (TIERMEM_CC_WRAPPERS) and
 *   restored by tm_cc_wrap_leave: scoped.  Every allocation of the thread
 *   while it is set takes it, the tm_cc_* ones instead of their own id
 *   (the outermost caller wins) and the interposed ones (a wrapper in an
 *   uninstrumented library) instead of their stack, except those the
 *   runtime makes inside the site logic.
 *
 * One struct, so the interposed fast path tests both in one cache line. */
static __thread struct {
    uint64_t next;
    uint64_t wrap;
} cc_ctx __attribute__((tls_model("initial-exec")));

void site_cc_next(uint64_t id) { cc_ctx.next = id; }

uint64_t site_cc_wrap_enter(uint64_t id)
{
    uint64_t prev = cc_ctx.wrap;
    if (prev == 0 && cc_id_valid(id))
        cc_ctx.wrap = id;
    return prev;
}

void site_cc_wrap_leave(uint64_t prev) { cc_ctx.wrap = prev; }

/* A tm_cc_* allocation's id: the wrapper context's, if any. */
static inline who_t cc_who_ctx(uint64_t id)
{
    uint64_t wrap = cc_ctx.wrap;
    return cc_who(TM_UNLIKELY(wrap != 0) ? wrap : id);
}

static inline bool cc_announced(int site_id)
{
    return TM_UNLIKELY((cc_ctx.next | cc_ctx.wrap) != 0) && site_id < 0;
}

/* Who names a stack-keyed allocation: the announced id, taken (the
 * wrapper context, if any, wins over it), else the wrapper context, else
 * the stack. */
static who_t stack_who(const void *caller, int site_id)
{
    if (cc_announced(site_id)) {
        uint64_t id = cc_ctx.next;
        if (id != 0) {
            cc_ctx.next = 0;
            return cc_who_ctx(id);
        }
        if (!in_site_logic)
            return cc_who(cc_ctx.wrap);
    }
    return (who_t){caller, site_id, 0};
}

void *site_malloc(const void *caller, int site_id, size_t size)
{
    if (cc_announced(site_id)) /* even a small one: the id's site */
        return pick_malloc(stack_who(caller, site_id), size);
    tm_arena_t *fast = small_arena(site_id, size);
    if (TM_LIKELY(fast != NULL)) {
        void *p = tm_arena_malloc(fast, size);
        if (TM_LIKELY(p != NULL))
            site0_add(usable_of(p, size ? size : 1));
        return p;
    }
    return pick_malloc((who_t){caller, site_id, 0}, size);
}

static void *pick_malloc(who_t w, size_t size)
{
    if (TM_UNLIKELY(!sites_ready()))
        return boot_alloc(size ? size : 1, 16);
    site_t *s = site_pick(w, size);
    tm_arena_t *a = arena_pick(s);
    if (TM_UNLIKELY(a == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = tm_arena_malloc(a, size);
    if (TM_LIKELY(p != NULL))
        site_account_alloc(s, a, p, usable_of(p, size ? size : 1));
    else
        arena_hazard_clear(); /* arena_pick set it; accounting clears it */
    return p;
}

static void *pick_calloc(who_t w, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (TM_UNLIKELY(!sites_ready()))
        return boot_alloc(total ? total : 1, 16);
    site_t *s = site_pick(w, total);
    tm_arena_t *a = arena_pick(s);
    if (TM_UNLIKELY(a == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = tm_arena_calloc(a, n, size);
    if (TM_LIKELY(p != NULL))
        site_account_alloc(s, a, p, usable_of(p, total ? total : 1));
    else
        arena_hazard_clear();
    return p;
}

static void *pick_aligned(who_t w, size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (TM_UNLIKELY(!sites_ready()))
        return boot_alloc(size ? size : 1, align);
    site_t *s = site_pick(w, size);
    tm_arena_t *a = arena_pick(s);
    if (TM_UNLIKELY(a == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = tm_arena_aligned_alloc(a, align, size);
    if (TM_LIKELY(p != NULL))
        site_account_alloc(s, a, p, sallocx(p, 0));
    else
        arena_hazard_clear();
    return p;
}

/* The arena of ptr, or NULL for a bootstrap or foreign pointer. */
static tm_arena_t *owner_of(const void *ptr, unsigned *id)
{
    *id = extent_map_lookup(ptr);
    return *id ? arena_by_id(*id) : NULL;
}

/* The arena layer's one free path, which accounts a site's block through
 * the arena's free observer (site_account_free). */
void site_free(void *ptr)
{
    if (ptr == NULL || boot_owns(ptr))
        return;
    arena_free(ptr, "free");
}

size_t site_usable_size(const void *ptr)
{
    if (ptr == NULL)
        return 0;
    if (boot_owns(ptr))
        return boot_size(ptr);
    unsigned id;
    size_t usable;
    if (owner_of(ptr, &id) == NULL)
        return 0;
    if (TM_UNLIKELY(!block_is_start(ptr, id, &usable))) {
        block_report_interior(ptr, id, "malloc_usable_size");
        return 0;
    }
    return usable;
}

/* Move a block to a new one of `size` bytes from the site's arena. */
static void *realloc_move(who_t w, void *ptr, size_t old, size_t size)
{
    void *q = w.cc ? pick_malloc(w, size) : site_malloc(w.caller, w.id, size);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, old < size ? old : size);
    site_free(ptr);
    return q;
}

static void *pick_realloc(who_t w, void *ptr, size_t size)
{
    if (ptr == NULL)
        return w.cc ? pick_malloc(w, size) : site_malloc(w.caller, w.id, size);
    if (size == 0) { /* as glibc: realloc(p, 0) frees p, returns NULL */
        site_free(ptr);
        return NULL;
    }
    if (boot_owns(ptr))
        return realloc_move(w, ptr, boot_size(ptr), size);
    if (TM_UNLIKELY(!sites_ready()))
        return realloc_move(w, ptr, tm_usable_size(ptr), size);
    unsigned id;
    tm_arena_t *old_arena = owner_of(ptr, &id);
    if (TM_UNLIKELY(old_arena == NULL)) {
        block_report_foreign(ptr, "realloc");
        errno = ENOMEM;
        return NULL;
    }
    size_t old;
    if (TM_UNLIKELY(!block_is_start(ptr, id, &old))) {
        block_report_interior(ptr, id, "realloc");
        errno = ENOMEM;
        return NULL;
    }
    site_t *s = site_pick(w, size);
    tm_arena_t *a = arena_pick(s);
    if (TM_UNLIKELY(a == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    if (a != old_arena)
        return realloc_move(w, ptr, old, size);
    site_account_free(a, ptr, old);
    void *q = tm_arena_realloc(a, ptr, size);
    if (q == NULL) { /* the old block is untouched and still live */
        site_account_alloc(s, a, ptr, old);
        return NULL;
    }
    site_account_alloc(s, a, q, sallocx(q, 0));
    return q;
}

/* ------------------------------------------------------------ by name */

void *site_calloc(const void *caller, int site_id, size_t n, size_t size)
{
    return pick_calloc(stack_who(caller, site_id), n, size);
}

void *site_aligned(const void *caller, int site_id, size_t align, size_t size)
{
    return pick_aligned(stack_who(caller, site_id), align, size);
}

void *site_realloc(const void *caller, int site_id, void *ptr, size_t size)
{
    return pick_realloc(stack_who(caller, site_id), ptr, size);
}

void *site_cc_malloc(uint64_t id, size_t size)
{
    return pick_malloc(cc_who_ctx(id), size);
}

void *site_cc_calloc(uint64_t id, size_t n, size_t size)
{
    return pick_calloc(cc_who_ctx(id), n, size);
}

void *site_cc_realloc(uint64_t id, void *ptr, size_t size)
{
    return pick_realloc(cc_who_ctx(id), ptr, size);
}

void *site_cc_aligned(uint64_t id, size_t align, size_t size)
{
    return pick_aligned(cc_who_ctx(id), align, size);
}
