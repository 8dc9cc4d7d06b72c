/*
 * cc_sites.c -- compiler ids -> sites, and what the objects' notes say
 * about each.
 *
 * A compiler-instrumented program calls tm_cc_malloc(id, ...) with a 64-bit
 * id whose bits 63..62 are 10; that id is the site's key as it is (stack
 * and explicit keys keep bit 63 clear, so nothing collides).  The fast
 * path is a direct-mapped cache of site pointers indexed by low bits of the
 * id and verified against the site's full key: no unwinding, no hashing of
 * a stack, no lock.  A miss goes to site_find, which is lock-free for a
 * site already made.
 *
 * Descriptions (file:line:column, function, callee, wrapper chain) come
 * from the .note.tiermem notes of every loaded object (cc_notes.c), read
 * once per object with dl_iterate_phdr and copied into metadata memory (a
 * dlclose'd object's notes go away; its sites stay).  An id first seen
 * undescribed rescans when the loader has loaded objects since the last
 * scan, which is how a dlopen'd library's sites get described.  Nothing
 * here calls malloc: it runs under tm_cc_malloc.
 */
#include "config.h"

#include <link.h>
#include <string.h>

#include "sites.h"

/* ------------------------------------------------------------ the cache */

#define CC_CACHE_SIZE 1024 /* power of two */

static _Atomic(site_t *) cache[CC_CACHE_SIZE];

static size_t cache_slot(uint64_t id)
{
    /* Ids from the pass are hashes or counters: low bits, with the high
     * word folded in so counters in the upper half spread too. */
    return (size_t)(id ^ id >> 32) & (CC_CACHE_SIZE - 1);
}

site_t *cc_site(uint64_t id)
{
    if (!cc_id_valid(id))
        return NULL;
    _Atomic(site_t *) *slot = &cache[cache_slot(id)];
    site_t *s = atomic_load_explicit(slot, memory_order_acquire);
    /* A site's key never changes once it is published. */
    if (TM_LIKELY(s != NULL && s->key == id))
        return s;
    s = site_find(id, -1, NULL);
    if (s->key == id) { /* not site 0, past the site limit */
        (void)cc_describe(id); /* the first sight: find its note now */
        atomic_store_explicit(slot, s, memory_order_release);
    }
    return s;
}

/* ------------------------------------------------------------ descriptions */

#define DESC_FIRST_CAP 256 /* index slots; doubled at half full */
#define DUP_REPORTED_MAX 10

static pthread_mutex_t desc_lock = PTHREAD_MUTEX_INITIALIZER;
static cc_desc_t **index_slots;  /* open addressing by id; metadata */
static size_t index_cap, ndescs;
static unsigned long long scanned_adds; /* dlpi_adds at the last scan */
static bool scanned_once;
static unsigned dup_reported;

/* Objects whose notes were read: (load base, program headers) pairs, so a
 * rescan reads only new objects and warns about a bad note once. */
#define SEEN_MAX 4096
static struct seen { uintptr_t base; const void *phdr; } *seen;
static size_t nseen;
static uint32_t nobjects; /* objects with notes read */

static size_t index_of(uint64_t id, size_t cap)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static cc_desc_t **index_find(uint64_t id)
{
    if (index_slots == NULL)
        return NULL;
    for (size_t i = index_of(id, index_cap);; i = (i + 1) & (index_cap - 1))
        if (index_slots[i] == NULL || index_slots[i]->id == id)
            return &index_slots[i];
}

static bool index_grow(void)
{
    size_t cap = index_cap ? index_cap * 2 : DESC_FIRST_CAP;
    cc_desc_t **slots = meta_alloc(cap * sizeof *slots);
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < index_cap; i++) {
        cc_desc_t *d = index_slots[i];
        if (d == NULL)
            continue;
        size_t j = index_of(d->id, cap);
        while (slots[j] != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = d;
    }
    meta_free(index_slots, index_cap * sizeof *index_slots);
    index_slots = slots;
    index_cap = cap;
    return true;
}

static bool same_text(const cc_desc_t *a, const cc_desc_t *b)
{
    return a->line == b->line && a->column == b->column &&
           strcmp(a->file, b->file) == 0 &&
           strcmp(a->function, b->function) == 0 &&
           strcmp(a->callee, b->callee) == 0 && strcmp(a->chain, b->chain) == 0;
}

/* A copy of d with its strings in one metadata block. */
static cc_desc_t *desc_copy(const cc_desc_t *d)
{
    size_t lf = strlen(d->file) + 1, lfn = strlen(d->function) + 1;
    size_t lc = strlen(d->callee) + 1, lch = strlen(d->chain) + 1;
    size_t size = sizeof(cc_desc_t) + lf + lfn + lc + lch;
    cc_desc_t *c = meta_alloc(size);
    if (c == NULL)
        return NULL;
    char *s = (char *)(c + 1);
    *c = *d;
    c->file = memcpy(s, d->file, lf);
    c->function = memcpy(s += lf, d->function, lfn);
    c->callee = memcpy(s += lfn, d->callee, lc);
    c->chain = memcpy(s + lc, d->chain, lch);
    return c;
}

typedef struct scan {
    const char *object; /* the object being read, for messages */
    uint32_t index;     /* its number among objects with notes */
    bool out_of_memory;
} scan_t;

/* One record of a good note (desc_lock held). */
static void desc_add(const cc_desc_t *d, void *arg)
{
    scan_t *sc = arg;
    cc_desc_t **at = index_find(d->id);
    if (at != NULL && *at != NULL) {
        /* The same inline function compiled into two objects describes
         * one site twice, alike: nothing to say.  Different descriptions
         * of one id are a pass or link problem; the first one stays. */
        if (!same_text(*at, d) && dup_reported++ < DUP_REPORTED_MAX) {
            shown_t obj, f0, f1;
            log_warn("%s: .note.tiermem: compiler site %#llx is described "
                     "as %s:%u, already as %s:%u by an object read before; "
                     "the first description is kept",
                     log_shown(&obj, sc->object), (unsigned long long)d->id,
                     log_shown(&f1, d->file), d->line,
                     log_shown(&f0, (*at)->file), (*at)->line);
        }
        return;
    }
    if ((ndescs + 1) * 2 > index_cap) {
        if (!index_grow()) {
            sc->out_of_memory = true;
            return;
        }
        at = index_find(d->id);
    }
    cc_desc_t *c = desc_copy(d);
    if (c == NULL) {
        sc->out_of_memory = true;
        return;
    }
    c->object = sc->index;
    *at = c;
    ndescs++;
}

static bool seen_before(uintptr_t base, const void *phdr)
{
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].base == base && seen[i].phdr == phdr)
            return true;
    if (seen == NULL)
        seen = meta_alloc(SEEN_MAX * sizeof *seen);
    if (seen != NULL && nseen < SEEN_MAX)
        seen[nseen++] = (struct seen){base, phdr};
    return false;
}

static int scan_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    scan_t *sc = arg;
    (void)size;
    if (info->dlpi_adds > scanned_adds)
        scanned_adds = info->dlpi_adds;
    if (seen_before(info->dlpi_addr, info->dlpi_phdr))
        return 0;
    sc->object = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name
                                                       : "the executable";
    size_t found = 0;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        sc->index = nobjects;
        found += cc_notes_walk((const void *)(info->dlpi_addr + ph->p_vaddr),
                               ph->p_memsz < ph->p_filesz ? ph->p_memsz
                                                          : ph->p_filesz,
                               ph->p_align, sc->object, desc_add, sc);
    }
    if (found > 0)
        nobjects++;
    return 0;
}

static int read_adds(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    *(unsigned long long *)arg = info->dlpi_adds;
    return 1; /* every entry carries the same counts */
}

/* Read the notes of objects not read yet (desc_lock held). */
static void scan_objects(void)
{
    scan_t sc = {0};
    dl_iterate_phdr(scan_object, &sc);
    scanned_once = true;
    if (sc.out_of_memory)
        log_error("compiler sites: no metadata memory for more site "
                  "descriptions; some compiler sites stay undescribed");
}

const cc_desc_t *cc_describe(uint64_t id)
{
    pthread_mutex_lock(&desc_lock);
    cc_desc_t **at = index_find(id);
    if (at == NULL || *at == NULL) {
        unsigned long long adds = 0;
        dl_iterate_phdr(read_adds, &adds);
        if (!scanned_once || adds > scanned_adds) {
            scan_objects();
            at = index_find(id);
        }
    }
    const cc_desc_t *d = at ? *at : NULL;
    pthread_mutex_unlock(&desc_lock);
    return d;
}

void cc_sites_prefork(void) { pthread_mutex_lock(&desc_lock); }
void cc_sites_postfork_parent(void) { pthread_mutex_unlock(&desc_lock); }
void cc_sites_postfork_child(void) { pthread_mutex_init(&desc_lock, NULL); }
