/*
 * stack.c -- the call stack of an allocation, reduced to a site key.
 *
 * A frame is identified as (object base name, offset in the object), so the
 * key of one call path is the same in every run of a program whatever ASLR
 * does (objects.c).  Frames inside configured wrapper functions (hypre_CAlloc
 * and friends) and inside libc or the dynamic loader are skipped, so the
 * frames that count are the program's real call sites.
 *
 * Cost: classifying a return address (object lookup, and the object's
 * skipped functions, read from its file's symbols when it was first seen)
 * is done once per distinct address and cached in a lock-free table.
 * Depth 1 with an unskipped caller needs no unwinding at all: the entry
 * point hands in its own return address.  Deeper keys walk
 * the stack with libgcc's _Unwind_Backtrace, which reads the DWARF unwind
 * tables every x86-64 object carries (frame pointers are usually absent).
 */
#include "config.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <unwind.h>

#include "sites.h"

/* ------------------------------------------------------------ address cache */

#define IP_CACHE_SIZE 16384 /* power of two */
#define IP_FLAG_VALID 1u
#define IP_FLAG_SKIP 2u     /* wrapper function or system object */
#define IP_NO_OBJECT 0xffffu

typedef struct ip_entry {
    _Atomic uintptr_t ip;
    _Atomic uint64_t value; /* offset << 20 | object << 4 | flags */
} ip_entry_t;

/* The cache is replaced whole when a library is unloaded, because another
 * may then be loaded at the same addresses.  Old tables are leaked: a
 * reader may still be probing one, and dlclose is rare. */
typedef struct ip_table {
    unsigned long long unloads; /* objects_unloads() it was made for */
    ip_entry_t e[IP_CACHE_SIZE];
} ip_table_t;

static _Atomic(ip_table_t *) ip_tables;
static pthread_mutex_t ip_table_lock = PTHREAD_MUTEX_INITIALIZER;

static ip_table_t *ip_table_get(void)
{
    ip_table_t *t = atomic_load_explicit(&ip_tables, memory_order_acquire);
    unsigned long long unloads = objects_unloads();
    if (TM_LIKELY(t != NULL && t->unloads == unloads))
        return t;
    pthread_mutex_lock(&ip_table_lock);
    t = atomic_load(&ip_tables);
    if (t == NULL || t->unloads != unloads) {
        ip_table_t *n = meta_alloc(sizeof *n);
        if (n != NULL) {
            n->unloads = unloads;
            atomic_store_explicit(&ip_tables, n, memory_order_release);
            t = n;
        } else {
            log_error("stack: no memory for the address cache");
        }
    }
    pthread_mutex_unlock(&ip_table_lock);
    return t; /* NULL: classify every address the slow way */
}

typedef struct ip_class {
    unsigned object; /* IP_NO_OBJECT if in no known object */
    uintptr_t offset;
    bool skip;
} ip_class_t;

static size_t ip_slot(uintptr_t ip)
{
    uint64_t h = (uint64_t)ip * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 50) & (IP_CACHE_SIZE - 1);
}

static bool name_is_wrapper(const char *name)
{
    for (unsigned i = 0; i < runtime_options.nwrappers; i++)
        if (strcmp(name, runtime_options.wrappers[i]) == 0)
            return true;
    return false;
}

/* Is ip inside a function a walk skips?  The object's own symbols say
 * which (elf_symbols.c: its wrappers, exported or not, the C++ library's
 * templates, _start).  For an object whose file could not be read only
 * exported wrappers can be told: dladdr1 gives the nearest dynamic symbol
 * and its size, so an address just past a wrapper (in a static function)
 * is not mistaken for it. */
static bool ip_in_skipped_function(uintptr_t ip, const object_info_t *o,
                                   uintptr_t offset)
{
    if (o != NULL && o->symbols) /* offset - 1: one past its call */
        return object_skips(o, offset - 1);
    if (runtime_options.nwrappers == 0)
        return false;
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (dladdr1((void *)(ip - 1), &info, (void **)&sym, RTLD_DL_SYMENT) == 0 ||
        info.dli_sname == NULL || sym == NULL)
        return false;
    uintptr_t start = (uintptr_t)info.dli_saddr;
    if (ip - 1 < start || ip - 1 >= start + sym->st_size)
        return false;
    return name_is_wrapper(info.dli_sname);
}

static ip_class_t ip_classify_slow(uintptr_t ip)
{
    ip_class_t c = {IP_NO_OBJECT, ip, false};
    uintptr_t off;
    const object_info_t *o = NULL;
    int obj = objects_lookup(ip, &off);
    if (obj >= 0 && obj < (int)IP_NO_OBJECT) {
        c.object = (unsigned)obj;
        c.offset = off;
        o = objects_get((unsigned)obj);
        c.skip = o->system;
    }
    if (!c.skip)
        c.skip = ip_in_skipped_function(ip, o, c.offset);
    return c;
}

static ip_class_t ip_decode(uintptr_t ip, uint64_t v)
{
    unsigned object = (unsigned)(v >> 4) & 0xffff;
    /* an address in no object is keyed by itself (its offset is not kept) */
    uintptr_t offset = object == IP_NO_OBJECT ? ip : (uintptr_t)(v >> 20);
    return (ip_class_t){object, offset, (v & IP_FLAG_SKIP) != 0};
}

static ip_class_t ip_classify(uintptr_t ip)
{
    ip_table_t *t = ip_table_get();
    if (TM_UNLIKELY(t == NULL))
        return ip_classify_slow(ip);
    size_t i = ip_slot(ip);
    for (unsigned probe = 0; probe < 8; probe++, i = (i + 1) & (IP_CACHE_SIZE - 1)) {
        ip_entry_t *e = &t->e[i];
        uintptr_t k = atomic_load_explicit(&e->ip, memory_order_acquire);
        if (k == ip) {
            uint64_t v = atomic_load_explicit(&e->value, memory_order_acquire);
            if (v & IP_FLAG_VALID)
                return ip_decode(ip, v);
            break; /* being filled by another thread: compute it ourselves */
        }
        if (k == 0) {
            ip_class_t c = ip_classify_slow(ip);
            uintptr_t expect = 0;
            bool fits = c.object == IP_NO_OBJECT ||
                        c.offset < ((uintptr_t)1 << 44);
            if (fits && atomic_compare_exchange_strong(&e->ip, &expect, ip)) {
                uint64_t off = c.object == IP_NO_OBJECT ? 0 : c.offset;
                uint64_t v = off << 20 | (uint64_t)c.object << 4 |
                             (c.skip ? IP_FLAG_SKIP : 0) | IP_FLAG_VALID;
                atomic_store_explicit(&e->value, v, memory_order_release);
            }
            return c;
        }
    }
    return ip_classify_slow(ip); /* cache full around this slot */
}

/* ------------------------------------------------------------ keys */

static uint64_t key_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 29);
}

static uint64_t frame_key(uint64_t h, const ip_class_t *c)
{
    uint64_t name = c->object == IP_NO_OBJECT
                        ? 0
                        : objects_get(c->object)->name_hash;
    return key_mix(key_mix(h, name), c->offset);
}

static void frame_store(stack_trace_t *t, const ip_class_t *c)
{
    if (t == NULL)
        return;
    stack_frame_t *f = &t->frame[t->depth];
    f->object = c->object == IP_NO_OBJECT ? STACK_NO_OBJECT : c->object;
    f->offset = c->offset;
}

typedef struct walk {
    uintptr_t caller;   /* the entry point's return address */
    bool found;         /* reached the caller's frame */
    unsigned depth, taken, seen;
    uint64_t key;
    stack_trace_t *trace;
} walk_t;

#define WALK_MAX_FRAMES 48

static _Unwind_Reason_Code walk_frame(struct _Unwind_Context *ctx, void *arg)
{
    walk_t *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (ip == 0 || ++w->seen > WALK_MAX_FRAMES)
        return _URC_END_OF_STACK;
    if (!w->found) {
        if (ip != w->caller)
            return _URC_NO_REASON; /* still inside tiermem */
        w->found = true;
    }
    ip_class_t c = ip_classify(ip);
    if (c.skip)
        return _URC_NO_REASON;
    if (w->trace)
        w->trace->depth = w->taken;
    frame_store(w->trace, &c);
    w->key = frame_key(w->key, &c);
    if (++w->taken == w->depth)
        return _URC_END_OF_STACK;
    return _URC_NO_REASON;
}

/* Per thread, so counting costs the hot path no shared cache line. */
static __thread uint64_t key_calls __attribute__((tls_model("initial-exec")));

uint64_t stack_key_calls(void) { return key_calls; }

/* Bit 63 clear: compiler ids (bits 63..62 = 10) are site keys as they are,
 * so no stack may ever hash onto one. */
static uint64_t stack_key_walk(const void *caller, unsigned depth,
                               stack_trace_t *trace);

uint64_t stack_key(const void *caller, unsigned depth, stack_trace_t *trace)
{
    key_calls++;
    return stack_key_walk(caller, depth, trace) & SITE_KEY_MASK;
}

static uint64_t stack_key_walk(const void *caller, unsigned depth,
                               stack_trace_t *trace)
{
    if (depth == 0 || depth > TM_MAX_STACK_DEPTH)
        depth = TM_MAX_STACK_DEPTH;
    if (trace)
        trace->depth = 0;
    uintptr_t ra = (uintptr_t)caller;
    ip_class_t c = ip_classify(ra);
    if (depth == 1 && !c.skip) { /* the cheap path: no unwinding */
        frame_store(trace, &c);
        if (trace)
            trace->depth = 1;
        return frame_key(STACK_KEY_SEED, &c);
    }
    walk_t w = {ra, false, depth, 0, 0, STACK_KEY_SEED, trace};
    _Unwind_Backtrace(walk_frame, &w);
    if (w.taken == 0 && w.found && w.seen < WALK_MAX_FRAMES) {
        /* Every frame up to the stack's end was skipped: an allocation by
         * the loader, a language runtime or tiermem's own dependencies
         * (libnuma while it loads), none of the program's.  Key 0 is site
         * 0's. */
        if (trace)
            trace->depth = 0;
        return 0;
    }
    if (w.taken == 0) {
        /* The caller was never found (an unwinder without tables for some
         * frame) or every frame was skipped: fall back to the caller. */
        frame_store(trace, &c);
        w.taken = 1;
        w.key = frame_key(STACK_KEY_SEED, &c);
    }
    if (trace)
        trace->depth = w.taken;
    return w.key;
}

void stack_warm_up(void)
{
    /* The first _Unwind_Backtrace initialises libgcc's unwinder state;
     * do it at start-up, not inside some thread's first malloc. */
    walk_t w = {0, true, 1, 0, 0, STACK_KEY_SEED, NULL};
    _Unwind_Backtrace(walk_frame, &w);
}

void stack_wrappers_check(void)
{
    uint32_t named = runtime_options.wrappers_named;
    if (named == 0)
        return;
    objects_refresh(); /* every object loaded so far, symbols read */
    uint32_t missing = named & ~elf_wrappers_found();
    for (unsigned i = 0; i < runtime_options.nwrappers; i++)
        if (missing & (uint32_t)1 << i)
            log_warn("TIERMEM_WRAPPERS names %s, which no object loaded so "
                     "far defines (in the symbols tiermem could read): its "
                     "callers' allocations keep it as their site",
                     runtime_options.wrappers[i]);
}
