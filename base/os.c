/*
 * os.c -- every system call that maps, binds, moves or unmaps memory.
 *
 * The calls go through a table (os_ops_t) so tests can inject failures
 * and odd results: a misaligned mmap, EFAULT from mbind, ENOMEM from mmap.
 *
 * os_map_aligned is where the seed defect was (doc/design.md, "The
 * exact aligned mapping").  It maps exactly what it returns: the head
 * before the aligned address and the tail after aligned + size are
 * unmapped byte for byte, so the caller can bind, track and later unmap
 * [aligned, aligned + size) without touching a hole.
 */
#include "config.h"

#include <errno.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MPOL_PREFERRED_MANY
#define MPOL_PREFERRED_MANY 5
#endif

/* ---------------------------------------------------------------- ops */

static void *real_mmap(void *addr, size_t len, int prot, int flags, int fd,
                       off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

static long real_mbind(void *addr, unsigned long len, int mode,
                       const unsigned long *nodemask, unsigned long maxnode,
                       unsigned flags)
{
    return mbind(addr, len, mode, nodemask, maxnode, flags);
}

static long real_move_pages(int pid, unsigned long count, void **pages,
                            const int *nodes, int *status, int flags)
{
    return move_pages(pid, count, pages, nodes, status, flags);
}

static const os_ops_t os_real = {
    .mmap = real_mmap,
    .munmap = munmap,
    .mbind = real_mbind,
    .move_pages = real_move_pages,
    .madvise = madvise,
};

/* The calls in use: the real ones, or a copy of a test's table. */
static os_ops_t os_injected;
static const os_ops_t *os_ops = &os_real;

os_ops_t os_set_ops(const os_ops_t *ops)
{
    os_ops_t old = *os_ops;
    if (ops != NULL) {
        os_injected = *ops;
        os_ops = &os_injected;
    } else {
        os_ops = &os_real;
    }
    return old;
}

const os_ops_t *os_real_ops(void) { return &os_real; }

size_t os_page_size(void)
{
    static size_t page;
    if (TM_UNLIKELY(page == 0)) {
        long p = sysconf(_SC_PAGESIZE);
        page = p > 0 ? (size_t)p : 4096;
    }
    return page;
}

/* ---------------------------------------------------------------- mapping */

static void *map_anonymous(void *hint, size_t size, int extra_flags)
{
    void *p = os_ops->mmap(hint, size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int os_unmap(void *addr, size_t size)
{
    if (size == 0)
        return 0;
    if (os_ops->munmap(addr, size) != 0) {
        log_error("munmap(%p, %zu) failed: errno %d", addr, size, errno);
        return -1;
    }
    return 0;
}

/* Unmap the parts of [base, base + mapped) outside [keep, keep + size).
 * If the head cannot be unmapped the whole mapping is given back, so the
 * caller never holds bytes it does not track. */
static void *trim_to(char *base, size_t mapped, char *keep, size_t size)
{
    size_t head = (size_t)(keep - base);
    size_t tail = mapped - head - size;
    debug_assert(keep >= base && head + size <= mapped);
    if (os_unmap(base, head) != 0)
        goto fail;
    if (os_unmap(keep + size, tail) != 0) {
        base = keep; /* the head is gone already */
        mapped = size + tail;
        goto fail;
    }
    return keep;
fail:;
    int err = errno;
    if (os_unmap(base, mapped) != 0)
        log_error("[%p, +%zu) stays mapped and untracked: it could be "
                     "neither trimmed nor unmapped", (void *)base, mapped);
    errno = err;
    return NULL;
}

void *os_map_aligned(size_t size, size_t alignment)
{
    size_t page = os_page_size();
    if (size == 0 || size % page != 0 ||
        (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (alignment < page)
        alignment = page;
    char *p = map_anonymous(NULL, size, 0);
    if (p == NULL)
        return NULL;
    if (((uintptr_t)p & (alignment - 1)) == 0)
        return p;

    /* Misaligned: give it back and map enough to contain an aligned run. */
    if (os_unmap(p, size) != 0) {
        /* Only vm.max_map_count exhaustion makes this fail; say so loudly,
         * since these bytes now belong to nobody. */
        log_error("[%p, +%zu) stays mapped and untracked: the misaligned "
                     "mapping could not be given back", (void *)p, size);
        return NULL;
    }
    if (size + alignment < size) {
        errno = ENOMEM;
        return NULL;
    }
    size_t mapped = size + alignment;
    char *base = map_anonymous(NULL, mapped, 0);
    if (base == NULL)
        return NULL;
    /* Round up; an already aligned base gives a head of 0, never alignment. */
    char *aligned =
        (char *)(((uintptr_t)base + alignment - 1) & ~(uintptr_t)(alignment - 1));
    return trim_to(base, mapped, aligned, size);
}

void *os_map_near(void *hint, size_t size)
{
    if (size == 0 || size % os_page_size() != 0) {
        errno = EINVAL;
        return NULL;
    }
    return map_anonymous(hint, size, 0);
}

void *os_map_fixed(void *addr, size_t size)
{
    char *p = map_anonymous(addr, size, MAP_FIXED_NOREPLACE);
    if (p == NULL)
        return NULL;
    if (p != addr) {
        /* Kernels before 4.17 treat the flag as a hint. */
        (void)os_unmap(p, size);
        errno = EEXIST;
        return NULL;
    }
    return p;
}

/* ---------------------------------------------------------------- binding */

bool placement_valid(const tm_placement_t *pl)
{
    if (pl == NULL || pl->nodes == 0)
        return false;
    return pl->mode == TM_MODE_BIND || pl->mode == TM_MODE_PREFERRED ||
           pl->mode == TM_MODE_INTERLEAVE;
}

static int lowest_node(uint64_t nodes) { return __builtin_ctzll(nodes); }

int os_bind(void *addr, size_t size, const tm_placement_t *pl,
               unsigned flags)
{
    unsigned long mask[(TM_MAX_NODES + 63) / 64] = {(unsigned long)pl->nodes};
    int mode;
    switch (pl->mode) {
    case TM_MODE_BIND: mode = MPOL_BIND; break;
    case TM_MODE_INTERLEAVE: mode = MPOL_INTERLEAVE; break;
    case TM_MODE_PREFERRED:
        mode = (pl->nodes & (pl->nodes - 1)) ? MPOL_PREFERRED_MANY
                                             : MPOL_PREFERRED;
        break;
    default: errno = EINVAL; return -1;
    }
    /* maxnode counts bits and the kernel ignores the last one: pass +1. */
    long rc = os_ops->mbind(addr, size, mode, mask, TM_MAX_NODES + 1, flags);
    if (rc != 0 && errno == EINVAL && mode == MPOL_PREFERRED_MANY) {
        /* Kernels before 5.15: prefer the lowest node of the set. */
        unsigned long one[1] = {1UL << lowest_node(pl->nodes)};
        rc = os_ops->mbind(addr, size, MPOL_PREFERRED, one, TM_MAX_NODES + 1,
                          flags);
    }
    return rc == 0 ? 0 : -1;
}

long os_move_pages(unsigned long count, void **pages, const int *nodes,
                      int *status)
{
    return os_ops->move_pages(0, count, pages, nodes, status,
                             nodes ? MPOL_MF_MOVE : 0);
}

int os_madvise(void *addr, size_t size, int advice)
{
    return os_ops->madvise(addr, size, advice);
}
