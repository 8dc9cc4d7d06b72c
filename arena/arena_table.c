/*
 * arena_table.c -- the table of live arenas, indexed by arena id, and the
 * walks over it.
 *
 * The id (1..TM_MAX_ARENAS) is what the extent map stores per page, so
 * "which arena owns this pointer" is a map lookup and a read here.  The
 * table is the bottom of the arena layer: the caches (tcache.c,
 * front_cache.c), the block check and the arena's life (arena.c) all read
 * it, and it calls none of them.
 *
 * A slot is reserved before jemalloc creates the arena (jemalloc maps the
 * arena's own metadata through the hooks while it creates it, and the
 * hooks need the id), and published once the arena is whole.
 */
#include "config.h"

#include "arena.h"

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
_Atomic(tm_arena_t *) arena_table[TM_MAX_ARENAS + 1];
static bool slot_taken[TM_MAX_ARENAS + 1];
/* Walkers of the table (the profiler and the policy, both on the profiling
 * thread) hold this; destroy holds it while it frees an arena, so an arena
 * a walker found stays valid until arena_walk_end.  A mutex, not a rwlock:
 * there is one walker at a time anyway, and a fork child can release a
 * mutex its forking thread took, which glibc's rwlock does not allow (the
 * child's thread has a new id, so its unlock counts as a reader's). */
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool walking __attribute__((tls_model("initial-exec")));

unsigned arena_slot_reserve(void)
{
    unsigned id = 0;
    pthread_mutex_lock(&table_lock);
    for (unsigned i = 1; i <= TM_MAX_ARENAS; i++) {
        if (!slot_taken[i]) {
            slot_taken[i] = true;
            id = i;
            break;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return id;
}

void arena_slot_publish(unsigned id, tm_arena_t *a)
{
    debug_assert(id >= 1 && id <= TM_MAX_ARENAS && slot_taken[id]);
    atomic_store_explicit(&arena_table[id], a, memory_order_release);
}

void arena_slot_release(unsigned id)
{
    pthread_mutex_lock(&table_lock);
    atomic_store_explicit(&arena_table[id], NULL, memory_order_release);
    slot_taken[id] = false;
    pthread_mutex_unlock(&table_lock);
}

/* ---------------------------------------------------------------- walks */

void arena_walk_begin(void)
{
    /* a nested begin would wait for ever on walk_lock, which it holds */
    debug_assert_rule(!walking, "arena walks do not nest");
    pthread_mutex_lock(&walk_lock);
    walking = true;
}

void arena_walk_end(void)
{
    debug_assert_rule(walking, "an arena walk ends on the thread that began it");
    walking = false;
    pthread_mutex_unlock(&walk_lock);
}

bool arena_walking_here(void) { return walking; }

void arena_walkers_exclude(void)
{
    debug_assert_rule(!walking, "a walker does not destroy arenas");
    pthread_mutex_lock(&walk_lock);
}

void arena_walkers_admit(void) { pthread_mutex_unlock(&walk_lock); }

/* ---------------------------------------------------------------- fork */

/* Lock order: walk, then table (destroy holds walk while it releases a
 * slot). */
void arena_table_prefork(void)
{
    pthread_mutex_lock(&walk_lock);
    pthread_mutex_lock(&table_lock);
}

void arena_table_postfork_parent(void)
{
    pthread_mutex_unlock(&table_lock);
    pthread_mutex_unlock(&walk_lock);
}

void arena_table_postfork_child(void)
{
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = atomic_load(&arena_table[id]);
        if (a != NULL)
            hook_arena_fork_child(&a->hooked);
    }
    pthread_mutex_unlock(&table_lock);
    /* the forking thread took it in prefork, and is the one thread left */
    pthread_mutex_unlock(&walk_lock);
}
