/*
 * residency_numa_maps.c -- resident bytes per arena and node, exactly, from
 * /proc/self/numa_maps.
 *
 * numa_maps prints, for every VMA, its pages on each node ("N0=123"); the
 * kernel walks the page tables of the whole process to do it, about 5 ms
 * per GiB of 4 KiB pages and 0.1 ms per GiB of huge pages (bench_refs).
 * The move_pages walk costs about 160 ns per page queried, so it is the
 * cheaper one only while it samples few pages; residency_sampler.c picks
 * whichever costs less for this process now.
 *
 * numa_maps gives each VMA's start only, so /proc/self/maps is read first
 * for the ends (same VMAs, same order).  A VMA counts for an arena only
 * when all its bytes are that arena's data (vma_owner.c); an arena with a
 * VMA shared with anything else is left to the move_pages walk.
 *
 * Runs on the profiling thread: metadata memory, no stdio.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "refs_internal.h"

#define NM_BUFSIZE ((size_t)64 << 10)

typedef struct nm_vma {
    uintptr_t lo, hi;
} nm_vma_t;

typedef struct nm_state {
    char *buf;
    nm_vma_t *vmas;        /* from maps, ascending */
    size_t nvmas, vmas_cap, next;
    bool grow_failed;
    vma_owners_t owners;
    tm_residency_t *res;   /* [TM_MAX_ARENAS + 1], 544 bytes each */
    uint32_t *stamp;       /* [TM_MAX_ARENAS + 1]: the pass that last
                              zeroed res[id] (see nm_res) */
    uint32_t pass;
    residency_source_t *source; /* the caller's, per arena */
} nm_state_t;

static nm_state_t nm; /* the profiling thread's */

static bool nm_init(void)
{
    if (nm.buf != NULL)
        return true;
    nm.buf = meta_alloc(NM_BUFSIZE);
    nm.res = meta_alloc((TM_MAX_ARENAS + 1) * sizeof nm.res[0]);
    nm.stamp = meta_alloc((TM_MAX_ARENAS + 1) * sizeof nm.stamp[0]);
    if (nm.buf && nm.res && nm.stamp)
        return true;
    if (nm.buf)
        meta_free(nm.buf, NM_BUFSIZE);
    if (nm.res)
        meta_free(nm.res, (TM_MAX_ARENAS + 1) * sizeof nm.res[0]);
    if (nm.stamp)
        meta_free(nm.stamp, (TM_MAX_ARENAS + 1) * sizeof nm.stamp[0]);
    nm.buf = NULL;
    nm.res = NULL;
    nm.stamp = NULL;
    return false;
}

/* Arena id's figures for this pass, zeroed the first time the pass asks.
 * The table is sized for every possible arena (2.1 MiB); zeroing it whole
 * each pass made all of it resident, on the profiling thread's node --
 * the CPU's, the fast tier in the guest benchmark, where those 544 pages
 * were what the second hot array lacked.  Now only the pages of arenas
 * the pass sees are touched. */
static tm_residency_t *nm_res(unsigned id)
{
    if (nm.stamp[id] != nm.pass) {
        memset(&nm.res[id], 0, sizeof nm.res[id]);
        nm.stamp[id] = nm.pass;
    }
    return &nm.res[id];
}

static void nm_keep_vma(void *ctx, const vma_record_t *r)
{
    (void)ctx;
    if (nm.nvmas == nm.vmas_cap) {
        size_t cap = nm.vmas_cap ? 2 * nm.vmas_cap : 1024;
        nm_vma_t *v = meta_alloc(cap * sizeof *v);
        if (v == NULL) {
            nm.grow_failed = true;
            return;
        }
        if (nm.nvmas)
            memcpy(v, nm.vmas, nm.nvmas * sizeof *v);
        if (nm.vmas)
            meta_free(nm.vmas, nm.vmas_cap * sizeof *v);
        nm.vmas = v;
        nm.vmas_cap = cap;
    }
    nm.vmas[nm.nvmas++] = (nm_vma_t){r->lo, r->hi};
}

/* The end of the VMA starting at lo (VMAs come in ascending order). */
static uintptr_t nm_vma_end(uintptr_t lo)
{
    while (nm.next < nm.nvmas && nm.vmas[nm.next].lo < lo)
        nm.next++;
    if (nm.next < nm.nvmas && nm.vmas[nm.next].lo == lo)
        return nm.vmas[nm.next].hi;
    return 0; /* changed between the two reads */
}

static void nm_note_arena(void *ctx, unsigned arena, const vma_amount_t *share,
                          uintptr_t addr)
{
    (void)share, (void)addr;
    unsigned *sole = ctx;
    *sole = *sole == 0 ? arena : UINT32_MAX;
}

static void nm_take_record(void *ctx, const vma_record_t *r)
{
    (void)ctx;
    uintptr_t hi = nm_vma_end(r->lo);
    if (hi == 0 || !r->has_nodes)
        return;
    unsigned sole = 0;
    uint64_t blurred = nm.owners.blurred_vmas, dropped = nm.owners.dropped_vmas;
    vma_owners_credit(&nm.owners, r->lo, hi, &(vma_amount_t){1, 1},
                      nm_note_arena, &sole);
    bool shared = nm.owners.blurred_vmas != blurred ||
                  nm.owners.dropped_vmas != dropped || sole == UINT32_MAX;
    if (sole == 0 || sole > TM_MAX_ARENAS) {
        /* not ours, or several arenas: those go to the move_pages walk */
        if (shared)
            for (size_t i = 0; i < nm.owners.n; i++)
                if (nm.owners.ranges[i].start < hi &&
                    nm.owners.ranges[i].end > r->lo &&
                    nm.owners.ranges[i].arena != 0)
                    nm.source[nm.owners.ranges[i].arena] = RESIDENCY_WALK;
        return;
    }
    if (shared) {
        nm.source[sole] = RESIDENCY_WALK;
        return;
    }
    if (nm.source[sole] == RESIDENCY_WALK)
        return;
    nm.source[sole] = RESIDENCY_NUMA_MAPS;
    tm_residency_t *res = nm_res(sole);
    for (unsigned n = 0; n < TM_MAX_NODES; n++) {
        uint64_t b = r->node_pages[n] * r->page_size;
        res->node_bytes[n] += b;
        res->bytes_resident += b;
    }
}

static int nm_read(const char *path, vma_scan_kind_t kind, vma_record_fn fn)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    vma_scan_t scan;
    vma_scan_init(&scan, kind, fn, NULL);
    int rc = vma_scan_fd(&scan, fd, nm.buf, NM_BUFSIZE);
    int err = errno;
    (void)close(fd);
    errno = err;
    return rc;
}

int residency_numa_maps(attrib_t *at, residency_source_t *source)
{
    if (!nm_init()) {
        errno = ENOMEM;
        return -1;
    }
    nm.nvmas = nm.next = 0;
    nm.grow_failed = false;
    nm.source = source;
    if (++nm.pass == 0) /* after 2^32 passes: no stale stamp may match */
        memset(nm.stamp, 0xff, (TM_MAX_ARENAS + 1) * sizeof nm.stamp[0]);
    /* maps (the ends), then the owners (after: extents only grow while
     * their arena lives, so every VMA read lies inside them), then
     * numa_maps.  A VMA that changed between the two reads is skipped. */
    if (nm_read("/proc/self/maps", VMA_SCAN_SMAPS, nm_keep_vma) != 0 ||
        nm.grow_failed)
        return -1;
    if (vma_owners_load(&nm.owners) != 0)
        return -1;
    if (nm_read("/proc/self/numa_maps", VMA_SCAN_NUMA_MAPS,
                nm_take_record) != 0)
        return -1;
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++)
        if (source[id] == RESIDENCY_NUMA_MAPS) {
            tm_residency_t *res = nm_res(id);
            res->stride = 1;
            attrib_residency(at, id, res);
        }
    return 0;
}

size_t residency_numa_maps_table_resident(void)
{
    if (nm.res == NULL)
        return 0;
    size_t page = os_page_size();
    uintptr_t lo = (uintptr_t)nm.res & ~(page - 1);
    uintptr_t hi = (uintptr_t)(nm.res + TM_MAX_ARENAS + 1);
    unsigned char vec[1024];
    size_t n = (hi - lo + page - 1) / page, resident = 0;
    if (n > sizeof vec || mincore((void *)lo, n * page, vec) != 0)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        resident += vec[i] & 1;
    return resident * page;
}
