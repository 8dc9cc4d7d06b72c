/*
 * meta_alloc.c -- memory for tiermem's own bookkeeping.
 *
 * Extent records and hash tables are created inside jemalloc's extent hooks,
 * where allocating through jemalloc could deadlock, and inside malloc
 * interposition, where it would recurse.  So metadata comes from here:
 * power-of-two size classes carved from mmap'd chunks, with one free list per
 * class; anything larger than a class gets its own mapping.
 *
 * Small blocks are recycled, never returned to the OS: metadata is small and
 * bounded by the number of live extents.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"

#define META_MIN_SHIFT 5                 /* 32 bytes */
#define META_MAX_SHIFT 14                /* 16 KiB */
#define META_CLASSES (META_MAX_SHIFT - META_MIN_SHIFT + 1)
#define META_CHUNK (256u * 1024u)

typedef struct meta_free_node { struct meta_free_node *next; } meta_free_node_t;

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static meta_free_node_t *meta_free_lists[META_CLASSES];
static char *meta_bump, *meta_bump_end;
_Atomic uint64_t meta_bytes_mapped;

static unsigned size_class(size_t size)
{
    unsigned shift = META_MIN_SHIFT;
    while (((size_t)1 << shift) < size)
        shift++;
    return shift - META_MIN_SHIFT;
}

/* Metadata mappings are not bound: they are tiny and shared by all arenas.
 *
 * Nor are they ever backed by transparent huge pages.  Our tables (the
 * site table, its slots, the policy's per-arena rows) are sized for the
 * most a process may need and touched sparsely; neighbouring chunks merge
 * into one VMA.  Under THP "always" (RHEL's default) one byte touched made
 * a whole 2 MiB resident: some 40 MiB per process on the development host,
 * all of it on the CPU's node, which is the fast tier that tiermem is
 * there to save (measured: doc/benchmarks.md, bigger-hot).  EINVAL only
 * means a kernel without THP. */
static void *meta_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        log_error("metadata mmap of %zu bytes failed: errno %d", size,
                     errno);
        return NULL;
    }
    if (madvise(p, size, MADV_NOHUGEPAGE) != 0 && errno != EINVAL)
        log_debug("metadata madvise(MADV_NOHUGEPAGE) of %zu bytes at %p "
                  "failed: errno %d", size, p, errno);
    atomic_fetch_add(&meta_bytes_mapped, size);
    return p;
}

/* Caller holds meta_lock.  Blocks are the powers of two of the classes. */
static void *carve(size_t block)
{
    debug_assert(block >= ((size_t)1 << META_MIN_SHIFT) &&
              block <= ((size_t)1 << META_MAX_SHIFT) &&
              (block & (block - 1)) == 0);
    if (meta_bump == NULL || (size_t)(meta_bump_end - meta_bump) < block) {
        char *chunk = meta_map(META_CHUNK);
        if (chunk == NULL)
            return NULL;
        meta_bump = chunk;
        meta_bump_end = chunk + META_CHUNK;
    }
    void *p = meta_bump;
    meta_bump += block;
    return p;
}

void *meta_alloc(size_t size)
{
    if (size == 0)
        size = 1;
    if (size > ((size_t)1 << META_MAX_SHIFT)) {
        size_t page = os_page_size();
        return meta_map((size + page - 1) & ~(page - 1)); /* zeroed */
    }
    unsigned cls = size_class(size);
    size_t block = (size_t)1 << (cls + META_MIN_SHIFT);
    pthread_mutex_lock(&meta_lock);
    void *p = meta_free_lists[cls];
    if (p != NULL)
        meta_free_lists[cls] = meta_free_lists[cls]->next;
    else
        p = carve(block);
    pthread_mutex_unlock(&meta_lock);
    if (p != NULL)
        memset(p, 0, block);
    else
        errno = ENOMEM;
    return p;
}

void meta_fork_child(void)
{
    pthread_mutex_init(&meta_lock, NULL);
}

void meta_free(void *ptr, size_t size)
{
    if (ptr == NULL)
        return;
    if (size == 0)
        size = 1;
    if (size > ((size_t)1 << META_MAX_SHIFT)) {
        size_t page = os_page_size();
        size_t len = (size + page - 1) & ~(page - 1);
        if (munmap(ptr, len) != 0)
            log_error("metadata munmap(%p, %zu) failed: errno %d", ptr,
                         size, errno);
        else
            atomic_fetch_sub(&meta_bytes_mapped, len);
        return;
    }
    unsigned cls = size_class(size);
    meta_free_node_t *block = ptr;
    pthread_mutex_lock(&meta_lock);
    block->next = meta_free_lists[cls];
    meta_free_lists[cls] = block;
    pthread_mutex_unlock(&meta_lock);
}
