/*
 * objects.c -- which loaded object (executable or shared library) holds a
 * code address, and at what offset from the object's load base.
 *
 * Why: a site key must survive ASLR, so each stack frame is recorded as
 * (object, offset) instead of a raw address.  The loaded objects come from
 * dl_iterate_phdr; their executable segments are kept in a sorted array
 * published through one atomic pointer, so a lookup is a lock-free binary
 * search.  The snapshot is rebuilt when the loader's generation (its counts
 * of loads and unloads) changes.
 *
 * Objects are never forgotten: a dlclose'd library keeps its record (its
 * index may be named by sites).  Superseded snapshots are leaked on purpose;
 * a reader may still be searching one, and they are few and small.
 *
 * Nothing here calls malloc: it runs inside the preload library's malloc.
 */
#include "config.h"

#include <errno.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "sites.h"

typedef struct segment {
    uintptr_t start, end;   /* [start, end) of an executable PT_LOAD */
    unsigned object;
} segment_t;

typedef struct snapshot {
    size_t count;
    unsigned long long adds, subs; /* the loader's generation it shows */
    segment_t seg[];
} snapshot_t;

static object_info_t objects[OBJECTS_MAX];
static _Atomic unsigned object_count;
static _Atomic(snapshot_t *) current;
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;
static char exe_path[OBJECT_PATH_MAX];
static _Atomic bool full_logged;

/* 64-bit FNV-1a: a stable hash of a name (no per-process seed). */
uint64_t objects_hash_bytes(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    if (h == 0)
        h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static pthread_once_t exe_once = PTHREAD_ONCE_INIT;

static void exe_path_load(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    if (n < 0) {
        log_info("objects: readlink /proc/self/exe failed: errno %d", errno);
        n = 0;
    }
    exe_path[n] = '\0';
}

static int exe_path_once(void)
{
    return pthread_once(&exe_once, exe_path_load);
}

static bool object_is_system(const char *base)
{
    /* libc, the loader and the language runtimes allocate on behalf of
     * their callers (strdup, fopen, dlopen, std::vector, Fortran I/O): the
     * caller is the site (TIERMEM_SKIP_OBJECTS) */
    for (unsigned i = 0; i < runtime_options.nskip_objects; i++) {
        const char *p = runtime_options.skip_objects[i];
        if (strncmp(base, p, strlen(p)) == 0)
            return true;
    }
    return false;
}

/* The record for (path, base), created if new.  Caller holds the lock. */
static int object_intern(const char *path, uintptr_t base)
{
    unsigned n = atomic_load_explicit(&object_count, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
        if (objects[i].base == base && strcmp(objects[i].path, path) == 0)
            return (int)i;
    if (n == OBJECTS_MAX) {
        if (!atomic_exchange(&full_logged, true))
            log_warn("objects: more than %d loaded objects; frames in "
                        "the rest are keyed by address", OBJECTS_MAX);
        return -1;
    }
    object_info_t *o = &objects[n];
    o->base = base;
    size_t len = strlen(path);
    if (len >= sizeof o->path)
        len = sizeof o->path - 1;
    memcpy(o->path, path, len);
    o->path[len] = '\0';
    const char *b = base_name(o->path);
    o->name_hash = objects_hash_bytes(b, strlen(b), 0);
    o->system = object_is_system(b);
    o->symbols = o->symtab = false;
    o->nskip = 0;
    o->skip = NULL;
    if (!o->system) /* libc's frames are skipped whole anyway */
        elf_object_read(o, strcmp(o->path, exe_path) == 0);
    atomic_store_explicit(&object_count, n + 1, memory_order_release);
    return (int)n;
}

/* What one dl_iterate_phdr pass saw, copied out so the objects can be
 * interned after the loader's lock is released. */
typedef struct raw_object {
    uintptr_t base;
    char path[OBJECT_PATH_MAX];
} raw_object_t;

typedef struct collect {
    raw_object_t *obj;   /* [OBJECTS_MAX] */
    unsigned nobj;
    segment_t *seg;      /* .object indexes obj[] until interned */
    size_t count, cap;
} collect_t;

static int collect_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    collect_t *c = arg;
    if (c->nobj == OBJECTS_MAX)
        return 1;
    const char *path = info->dlpi_name;
    if (path == NULL || path[0] == '\0')
        path = exe_path[0] ? exe_path : "[exe]";
    raw_object_t *o = &c->obj[c->nobj];
    bool any = false;
    for (int i = 0; i < info->dlpi_phnum && c->count < c->cap; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        c->seg[c->count++] = (segment_t){start, start + ph->p_memsz, c->nobj};
        any = true;
    }
    if (any) {
        o->base = info->dlpi_addr;
        size_t len = strnlen(path, sizeof o->path - 1);
        memcpy(o->path, path, len);
        o->path[len] = '\0';
        c->nobj++;
    }
    return 0;
}

typedef struct dl_generation {
    unsigned long long adds, subs;
} dl_generation_t;

static int read_generation(struct dl_phdr_info *info, size_t size, void *arg)
{
    dl_generation_t *g = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        g->adds = info->dlpi_adds;
        g->subs = info->dlpi_subs;
    }
    return 1; /* the counters are the same in every entry: one is enough */
}

/* How many objects the loader has ever loaded and unloaded. */
static dl_generation_t dl_generation_now(void)
{
    dl_generation_t g = {0, 0};
    dl_iterate_phdr(read_generation, &g);
    return g;
}

static void segments_sort(segment_t *s, size_t n)
{
    for (size_t i = 1; i < n; i++) { /* insertion sort: n is ~100 */
        segment_t x = s[i];
        size_t j = i;
        for (; j > 0 && s[j - 1].start > x.start; j--)
            s[j] = s[j - 1];
        s[j] = x;
    }
}

/*
 * Rebuild the snapshot.  The loader is walked WITHOUT objects_lock: a
 * thread whose dl_iterate_phdr callback allocates could otherwise wait for
 * our lock while we wait for the loader's.  Superseded snapshots are leaked
 * (readers may still be searching them); rebuilds happen only when the
 * loader's generation changes, i.e. once per dlopen/dlclose.
 */
static void snapshot_rebuild(dl_generation_t gen)
{
    size_t cap = 4 * OBJECTS_MAX;
    size_t seg_bytes = sizeof(snapshot_t) + cap * sizeof(segment_t);
    size_t raw_bytes = OBJECTS_MAX * sizeof(raw_object_t);
    snapshot_t *s = meta_alloc(seg_bytes);
    raw_object_t *raw = meta_alloc(raw_bytes);
    if (s == NULL || raw == NULL) {
        log_error("objects: no memory for a snapshot (%zu bytes)",
                     seg_bytes + raw_bytes);
        if (s)
            meta_free(s, seg_bytes);
        if (raw)
            meta_free(raw, raw_bytes);
        return;
    }
    collect_t c = {raw, 0, s->seg, 0, cap};
    dl_iterate_phdr(collect_object, &c);
    pthread_mutex_lock(&objects_lock);
    snapshot_t *old = atomic_load(&current);
    if (old != NULL && old->adds == gen.adds && old->subs == gen.subs) {
        pthread_mutex_unlock(&objects_lock); /* another thread was first */
        meta_free(s, seg_bytes);
        meta_free(raw, raw_bytes);
        return;
    }
    int index[OBJECTS_MAX];
    for (unsigned i = 0; i < c.nobj; i++)
        index[i] = object_intern(raw[i].path, raw[i].base);
    size_t n = 0;
    for (size_t i = 0; i < c.count; i++) /* drop objects we could not intern */
        if (index[s->seg[i].object] >= 0)
            s->seg[n++] = (segment_t){s->seg[i].start, s->seg[i].end,
                                      (unsigned)index[s->seg[i].object]};
    segments_sort(s->seg, n);
    s->count = n;
    s->adds = gen.adds;
    s->subs = gen.subs;
    atomic_store_explicit(&current, s, memory_order_release);
    pthread_mutex_unlock(&objects_lock);
    meta_free(raw, raw_bytes);
}

static const segment_t *snapshot_find(const snapshot_t *s, uintptr_t addr)
{
    size_t lo = 0, hi = s ? s->count : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr < s->seg[mid].start)
            hi = mid;
        else if (addr >= s->seg[mid].end)
            lo = mid + 1;
        else
            return &s->seg[mid];
    }
    return NULL;
}

/*
 * Called only when the address cache (stack.c) misses, i.e. once per new
 * return address, so it can afford to ask the loader for its generation
 * every time: that catches a library loaded where a dlclose'd one was,
 * which a snapshot hit alone would attribute to the old library.
 */
int objects_lookup(uintptr_t addr, uintptr_t *offset)
{
    const snapshot_t *snap = atomic_load_explicit(&current, memory_order_acquire);
    dl_generation_t gen = dl_generation_now();
    if (TM_UNLIKELY(snap == NULL || snap->adds != gen.adds ||
                    snap->subs != gen.subs)) {
        if (exe_path_once() != 0)
            return -1;
        snapshot_rebuild(gen);
        snap = atomic_load_explicit(&current, memory_order_acquire);
    }
    /* a miss now is code outside every object (JIT, trampolines) */
    const segment_t *g = snapshot_find(snap, addr);
    if (g == NULL)
        return -1;
    *offset = addr - objects[g->object].base;
    return (int)g->object;
}

void objects_refresh(void)
{
    uintptr_t off;
    (void)objects_lookup((uintptr_t)objects_refresh, &off);
}

unsigned long long objects_unloads(void)
{
    const snapshot_t *snap = atomic_load_explicit(&current, memory_order_acquire);
    return snap ? snap->subs : 0;
}

const object_info_t *objects_get(unsigned index)
{
    if (index >= atomic_load_explicit(&object_count, memory_order_acquire))
        return NULL;
    return &objects[index];
}

void objects_prefork(void) { pthread_mutex_lock(&objects_lock); }
void objects_postfork_parent(void) { pthread_mutex_unlock(&objects_lock); }
void objects_postfork_child(void)
{
    pthread_mutex_init(&objects_lock, NULL);
}
