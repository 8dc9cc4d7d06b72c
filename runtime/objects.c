/*
 * objects.c -- which loaded object (executable or shared library) holds a
 * code address, and at what offset from the object's load base.
 *
 * Why: a site key must survive ASLR, so each stack frame is recorded as
 * (object, offset) instead of a raw address.  The loaded objects come from
 * dl_iterate_phdr; their executable segments are kept in a sorted array
 * published through one atomic pointer, so a lookup is a lock-free binary
 * search.  A miss (an address in no known segment) means a library was
 * loaded since the last snapshot: the snapshot is rebuilt under a mutex.
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
#include <string.h>
#include <unistd.h>

#include "runtime.h"

typedef struct segment {
    uintptr_t start, end;   /* [start, end) of an executable PT_LOAD */
    unsigned object;
} segment_t;

typedef struct snapshot {
    size_t count;
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

static void exe_path_load(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    if (n < 0) {
        tm_log_info("objects: readlink /proc/self/exe failed: errno %d", errno);
        n = 0;
    }
    exe_path[n] = '\0';
}

static bool object_is_system(const char *base)
{
    /* libc and the dynamic loader allocate on behalf of their callers
     * (strdup, fopen, qsort, dlopen): the caller is the site. */
    return strncmp(base, "libc.so", 7) == 0 ||
           strncmp(base, "ld-linux", 8) == 0 ||
           strncmp(base, "libc-", 5) == 0;
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
            tm_log_warn("objects: more than %d loaded objects; frames in "
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
    atomic_store_explicit(&object_count, n + 1, memory_order_release);
    return (int)n;
}

typedef struct collect {
    segment_t *seg;
    size_t count, cap;
} collect_t;

static int collect_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    collect_t *c = arg;
    const char *path = info->dlpi_name;
    if (path == NULL || path[0] == '\0')
        path = exe_path[0] ? exe_path : "[exe]";
    int obj = -1;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        if (obj < 0 && (obj = object_intern(path, info->dlpi_addr)) < 0)
            return 0;
        if (c->count == c->cap)
            return 1; /* full: stop; lookups past it miss and retry */
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        c->seg[c->count++] = (segment_t){start, start + ph->p_memsz,
                                         (unsigned)obj};
    }
    return 0;
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

/* Rebuild the snapshot from dl_iterate_phdr.  Caller holds the lock. */
static void snapshot_rebuild(void)
{
    if (exe_path[0] == '\0')
        exe_path_load();
    size_t cap = 4 * OBJECTS_MAX;
    size_t bytes = sizeof(snapshot_t) + cap * sizeof(segment_t);
    snapshot_t *s = tm_meta_alloc(bytes);
    if (s == NULL) {
        tm_log_error("objects: no memory for a %zu-byte snapshot", bytes);
        return;
    }
    collect_t c = {s->seg, 0, cap};
    dl_iterate_phdr(collect_object, &c);
    segments_sort(s->seg, c.count);
    s->count = c.count;
    atomic_store_explicit(&current, s, memory_order_release);
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

int objects_lookup(uintptr_t addr, uintptr_t *offset)
{
    const segment_t *g = snapshot_find(
        atomic_load_explicit(&current, memory_order_acquire), addr);
    if (TM_UNLIKELY(g == NULL)) {
        pthread_mutex_lock(&objects_lock);
        g = snapshot_find(atomic_load(&current), addr);
        if (g == NULL) {
            snapshot_rebuild();
            g = snapshot_find(atomic_load(&current), addr);
        }
        pthread_mutex_unlock(&objects_lock);
        if (g == NULL)
            return -1;
    }
    *offset = addr - objects[g->object].base;
    return (int)g->object;
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
