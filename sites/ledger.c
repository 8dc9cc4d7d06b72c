/*
 * ledger.c -- the owning site of each block in a shared arena.
 *
 * Why: when several sites share an arena (per-thread layout, big/small's
 * small arena, sites past the arena limit), a free only tells us the arena;
 * the ledger tells us the site, so per-site live and peak bytes stay exact.
 * Blocks of site 0 (small and unsited allocations) are never recorded: a
 * block with no entry is site 0's, which keeps the most frequent
 * allocations out of the ledger entirely.
 *
 * Layout: 64 shards chosen by pointer hash, each an open-addressing table
 * (linear probing, tombstones) behind its own mutex, grown by rehashing
 * into meta_alloc memory at half load.
 */
#include "config.h"

#include <string.h>

#include "sites.h"

#define LEDGER_SHARDS 64
#define LEDGER_INITIAL 1024 /* slots per shard, power of two */
#define SLOT_EMPTY ((uintptr_t)0)
#define SLOT_TOMB ((uintptr_t)1)

typedef struct ledger_slot {
    uintptr_t ptr;
    uint32_t site;
} ledger_slot_t;

typedef struct ledger_shard {
    pthread_mutex_t lock;
    size_t cap, used; /* used counts tombstones too */
    ledger_slot_t *slot;
    char pad[64];
} ledger_shard_t;

static ledger_shard_t shards[LEDGER_SHARDS] = {
    [0 ... LEDGER_SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER}};
static _Atomic bool grow_failed_logged;

static uint64_t ptr_hash(uintptr_t p)
{
    uint64_t h = (uint64_t)p * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

static ledger_shard_t *shard_of(uintptr_t p)
{
    return &shards[ptr_hash(p) >> 58];
}

static void slot_put(ledger_slot_t *tab, size_t cap, uintptr_t p, uint32_t s)
{
    size_t i = ptr_hash(p) & (cap - 1);
    while (tab[i].ptr > SLOT_TOMB && tab[i].ptr != p)
        i = (i + 1) & (cap - 1);
    tab[i].ptr = p;
    tab[i].site = s;
}

/* Rehash into a table twice as large (or as large, to drop tombstones). */
static bool shard_grow(ledger_shard_t *sh)
{
    size_t live = 0;
    for (size_t i = 0; i < sh->cap; i++)
        live += sh->slot[i].ptr > SLOT_TOMB;
    size_t cap = sh->cap ? sh->cap : LEDGER_INITIAL;
    while (live * 2 >= cap)
        cap *= 2;
    ledger_slot_t *tab = meta_alloc(cap * sizeof *tab);
    if (tab == NULL) {
        if (!atomic_exchange(&grow_failed_logged, true))
            log_error("ledger: no memory to grow a shard to %zu slots; "
                         "some blocks will be counted as site 0's", cap);
        return false;
    }
    for (size_t i = 0; i < sh->cap; i++)
        if (sh->slot[i].ptr > SLOT_TOMB)
            slot_put(tab, cap, sh->slot[i].ptr, sh->slot[i].site);
    if (sh->slot)
        meta_free(sh->slot, sh->cap * sizeof *sh->slot);
    sh->slot = tab;
    sh->cap = cap;
    sh->used = live;
    return true;
}

void ledger_insert(const void *ptr, uint32_t site)
{
    uintptr_t p = (uintptr_t)ptr;
    ledger_shard_t *sh = shard_of(p);
    pthread_mutex_lock(&sh->lock);
    if ((sh->used + 1) * 2 > sh->cap && !shard_grow(sh)) {
        pthread_mutex_unlock(&sh->lock);
        return;
    }
    size_t i = ptr_hash(p) & (sh->cap - 1);
    while (sh->slot[i].ptr > SLOT_TOMB && sh->slot[i].ptr != p)
        i = (i + 1) & (sh->cap - 1);
    if (sh->slot[i].ptr == SLOT_EMPTY)
        sh->used++;
    sh->slot[i].ptr = p;
    sh->slot[i].site = site;
    pthread_mutex_unlock(&sh->lock);
}

uint32_t ledger_remove(const void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    ledger_shard_t *sh = shard_of(p);
    uint32_t site = SITE_UNSITED;
    pthread_mutex_lock(&sh->lock);
    if (sh->cap != 0) {
        size_t i = ptr_hash(p) & (sh->cap - 1);
        for (; sh->slot[i].ptr != SLOT_EMPTY; i = (i + 1) & (sh->cap - 1)) {
            if (sh->slot[i].ptr == p) {
                site = sh->slot[i].site;
                sh->slot[i].ptr = SLOT_TOMB;
                break;
            }
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return site;
}

void ledger_prefork(void)
{
    for (int i = 0; i < LEDGER_SHARDS; i++)
        pthread_mutex_lock(&shards[i].lock);
}

void ledger_postfork_parent(void)
{
    for (int i = LEDGER_SHARDS - 1; i >= 0; i--)
        pthread_mutex_unlock(&shards[i].lock);
}

void ledger_postfork_child(void)
{
    for (int i = 0; i < LEDGER_SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
}
