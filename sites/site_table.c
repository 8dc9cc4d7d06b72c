/*
 * site_table.c -- the table of sites: key -> site, and index -> site.
 *
 * A site is a 64-bit key: the hash of a call stack (stack.c) or of an
 * explicit id passed to sh_alloc.  Sites live in a fixed table sized by
 * TIERMEM_MAX_SITES, in metadata memory, and are never removed: an index
 * stays valid for the life of the process.  The key -> site index is an
 * open-addressing hash that readers probe without locks (slots only ever
 * go from empty to filled).  Past TIERMEM_MAX_SITES new stacks are counted
 * as site 0, logged once.
 *
 * The bottom of the sites layer: the arenas of sites (site.c), their
 * counters, reclaim and the reports all find sites here, and this file
 * calls none of them.
 */
#include "config.h"

#include "sites.h"

site_t *site_table_sites;             /* [runtime_options.max_sites] */
_Atomic uint32_t site_table_count;
_Atomic(site_t *) sites_unsited;

/* key hash -> site, [slot_mask + 1].  A slot is filled once: key first,
 * then the site pointer with release; readers load the pointer with
 * acquire and then compare the key.  Keys past the site limit map to site
 * 0, so they too are found without the lock, up to a quarter of the table
 * more. */
typedef struct site_slot {
    _Atomic uint64_t key;
    _Atomic(site_t *) site;
} site_slot_t;
static site_slot_t *slots;
static size_t slots_used;
static size_t slot_mask;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool sites_full_logged;

#define sites site_table_sites
#define nsites site_table_count

uint64_t site_explicit_key(int id)
{
    /* A separate key space from stack keys: a fixed tag mixed with the id. */
    uint64_t h = 0x5349434d00000000ull ^ (uint32_t)id; /* "SICM" */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return (h ^ (h >> 33)) & SITE_KEY_MASK; /* never a compiler id */
}


static size_t slot_of(uint64_t key) { return (size_t)(key ^ key >> 29) & slot_mask; }

static site_t *probe(uint64_t key, size_t *free_slot)
{
    for (size_t i = slot_of(key);; i = (i + 1) & slot_mask) {
        site_t *s = atomic_load_explicit(&slots[i].site, memory_order_acquire);
        if (s == NULL) {
            *free_slot = i;
            return NULL;
        }
        if (atomic_load_explicit(&slots[i].key, memory_order_relaxed) == key)
            return s;
    }
}

/* Caller holds table_lock.  The table has 4 slots per site: at most 3/4
 * are ever used, so a probe always ends. */
static void slot_fill(size_t slot, uint64_t key, site_t *s)
{
    if (slots_used + 1 > (slot_mask + 1) / 4 * 3)
        return; /* only past the site limit: such keys take the lock */
    slots_used++;
    atomic_store_explicit(&slots[slot].key, key, memory_order_relaxed);
    atomic_store_explicit(&slots[slot].site, s, memory_order_release);
}

static site_t *site_new(uint64_t key, int explicit_id,
                        const stack_trace_t *trace, size_t slot)
{
    uint32_t n = atomic_load_explicit(&nsites, memory_order_relaxed);
    if (n >= runtime_options.max_sites) {
        if (!atomic_exchange(&sites_full_logged, true))
            log_warn("site limit reached (TIERMEM_MAX_SITES %u): further "
                        "call stacks are counted as site 0",
                        runtime_options.max_sites);
        slot_fill(slot, key, &sites[SITE_UNSITED]);
        return &sites[SITE_UNSITED];
    }
    site_t *s = &sites[n];
    s->key = key;
    s->explicit_id = explicit_id;
    s->index = n;
    /* Stack and explicit keys have bit 63 clear, so the key alone tells a
     * compiler site. */
    s->kind = explicit_id >= 0   ? SITE_KIND_EXPLICIT
              : cc_id_valid(key) ? SITE_KIND_CC
                                 : SITE_KIND_STACK;
    pthread_mutex_init(&s->lock, NULL);
    if (trace != NULL)
        s->trace = *trace;
    atomic_store_explicit(&nsites, n + 1, memory_order_release);
    slot_fill(slot, key, s);
    return s;
}

site_t *site_find(uint64_t key, int explicit_id, const stack_trace_t *trace)
{
    size_t slot;
    site_t *s = probe(key, &slot);
    if (TM_LIKELY(s != NULL))
        return s;
    pthread_mutex_lock(&table_lock);
    s = probe(key, &slot);
    if (s == NULL)
        s = site_new(key, explicit_id, trace, slot);
    pthread_mutex_unlock(&table_lock);
    return s;
}

bool site_table_init(void)
{
    size_t nslots = 1;
    while (nslots < 4 * (size_t)runtime_options.max_sites)
        nslots <<= 1;
    sites = meta_alloc(runtime_options.max_sites * sizeof *sites);
    slots = meta_alloc(nslots * sizeof *slots);
    if (sites == NULL || slots == NULL) {
        log_error("sites: cannot map the site table (%u sites)",
                     runtime_options.max_sites);
        return false;
    }
    slot_mask = nslots - 1;
    size_t unused;
    site_t *zero = site_new(0, -1, NULL, (probe(0, &unused), unused));
    return zero == &sites[0];
}

void site_table_prefork(void) { pthread_mutex_lock(&table_lock); }
void site_table_postfork_parent(void) { pthread_mutex_unlock(&table_lock); }

void site_table_postfork_child(void)
{
    pthread_mutex_init(&table_lock, NULL);
    uint32_t n = atomic_load(&nsites);
    for (uint32_t i = 0; i < n; i++)
        pthread_mutex_init(&sites[i].lock, NULL);
}
