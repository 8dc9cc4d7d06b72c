/*
 * guest_migrate.c -- tm_arena_migrate moves every page, and later
 * allocations follow the arena to its new node.
 *
 * For every CPU-less node K (node 1, and node 2 in topology 3):
 *   - a TM_MODE_BIND arena on node 0 gets small and large allocations plus a
 *     2 MiB-aligned region advised MADV_HUGEPAGE before it is touched, so it
 *     is backed by transparent huge pages where the kernel has them;
 *   - migrate 0 -> K: every page of every allocation (huge pages included)
 *     must be on K, the report must show no failure;
 *   - allocations made after the migration land on K;
 *   - migrate K -> 0: everything, old and new, is back on 0, and new
 *     allocations land on 0;
 *   - a THP with a purged 4 KiB page (as jemalloc's MADV_DONTNEED purge
 *     leaves it), at its head or in its middle, still moves entirely: see
 *     purged_thp().
 * Placement is checked with move_pages, retrying pages that report EBUSY.
 */
#include "guest.h"

#include <tiermem.h>

#define MAX_ALLOCS 160
#define THP_LEN (8UL << 20)

typedef struct allocs {
    void *p[MAX_ALLOCS];
    size_t len[MAX_ALLOCS];
    unsigned char fill[MAX_ALLOCS];
    unsigned n;
} allocs_t;

static bool thp_usable;
static unsigned migrate_calls; /* tm_arena_migrate calls made here */

static bool add(allocs_t *al, tm_arena_t *a, size_t align, size_t len,
                bool huge, char *why, size_t whylen)
{
    if (al->n == MAX_ALLOCS) {
        snprintf(why, whylen, "test bug: too many allocations");
        return false;
    }
    void *p = align ? tm_arena_aligned_alloc(a, align, len)
                    : tm_arena_malloc(a, len);
    if (!p) {
        snprintf(why, whylen, "allocating %zu bytes (alignment %zu): %s", len,
                 align, strerror(errno));
        return false;
    }
    if (align && (uintptr_t)p % align != 0) {
        snprintf(why, whylen, "%p is not aligned to %zu", p, align);
        return false;
    }
    if (huge && madvise(p, len, MADV_HUGEPAGE) != 0 && thp_usable) {
        snprintf(why, whylen, "madvise(MADV_HUGEPAGE): %s", strerror(errno));
        return false;
    }
    unsigned char fill = (unsigned char)(0x11 + al->n);
    tg_touch(p, len, fill);
    al->p[al->n] = p;
    al->len[al->n] = len;
    al->fill[al->n] = fill;
    al->n++;
    return true;
}

/* A batch of allocations: small ones, a few MiB-sized ones, one THP region. */
static bool add_batch(allocs_t *al, tm_arena_t *a, char *why, size_t whylen)
{
    for (int i = 0; i < 48; i++)
        if (!add(al, a, 0, (size_t)(64 << 10) + (size_t)i * 100, false, why,
                 whylen))
            return false;
    for (int i = 0; i < 16; i++)
        if (!add(al, a, 0, 200 + (size_t)i * 8, false, why, whylen))
            return false;
    /* Read, never written: its pages map the shared zero page, which is
     * neither resident in the arena nor something to move. */
    volatile unsigned char *ro = tm_arena_malloc(a, 4 << 20);
    if (ro == NULL) {
        snprintf(why, whylen, "allocating the read-only region: %s",
                 strerror(errno));
        return false;
    }
    unsigned sum = 0;
    for (size_t off = 0; off < (4 << 20); off += 4096)
        sum += ro[off];
    if (sum != 0) {
        snprintf(why, whylen, "fresh memory is not zero");
        return false;
    }
    if (!add(al, a, 0, 3 << 20, false, why, whylen) ||
        !add(al, a, 64 << 10, (1 << 20) + 4096, false, why, whylen) ||
        !add(al, a, 2 << 20, THP_LEN, true, why, whylen))
        return false;
    return true;
}

/* Every page of every allocation on `node`, and the contents intact. */
static bool all_on(const allocs_t *al, int node, char *why, size_t whylen)
{
    for (unsigned i = 0; i < al->n; i++) {
        char w[400];
        if (!tg_all_on_node(al->p[i], al->len[i], node, w, sizeof w)) {
            snprintf(why, whylen, "allocation %u (%zu bytes at %p): %s", i,
                     al->len[i], al->p[i], w);
            return false;
        }
        const volatile unsigned char *c = al->p[i];
        for (size_t off = 0; off < al->len[i]; off += TG_PAGE)
            if (c[off] != al->fill[i]) {
                snprintf(why, whylen,
                         "allocation %u: byte %zu is %#x, not %#x after the "
                         "migration",
                         i, off, c[off], al->fill[i]);
                return false;
            }
    }
    return true;
}

/* all_on for the allocations from index `first` on (the newest ones). */
static bool all_on_from(const allocs_t *al, unsigned first, int node,
                        char *why, size_t whylen)
{
    allocs_t fresh = {.n = 0};
    for (unsigned i = first; i < al->n; i++) {
        fresh.p[fresh.n] = al->p[i];
        fresh.len[fresh.n] = al->len[i];
        fresh.fill[fresh.n++] = al->fill[i];
    }
    return all_on(&fresh, node, why, whylen);
}

static long thp_pages_of_last(const allocs_t *al)
{
    /* The THP region is the last allocation of each batch. */
    for (unsigned i = al->n; i-- > 0;)
        if (al->len[i] == THP_LEN)
            return tg_thp_pages(al->p[i], al->len[i]);
    return -1;
}

static void migrate_check(tm_arena_t *a, const allocs_t *al, unsigned to,
                          const char *check)
{
    char why[600] = "";
    tm_migrate_report_t rep;
    tm_placement_t pl = tm_placement_node(TM_MODE_BIND, to);
    /* what the report must say: the resident bytes, and those not on `to` */
    tm_residency_t before;
    bool have_before = tm_arena_residency(a, 0, &before) == 0;
    migrate_calls++;
    int rc = tm_arena_migrate(a, &pl, &rep);
    int err = errno;
    tg_info("%s: rc %d, extents %zu (failed %zu), mapped %zu, resident %zu, "
            "moved %zu, pages failed %zu, busy retries %zu, error %d",
            check, rc, rep.extents, rep.extents_failed, rep.bytes_mapped,
            rep.bytes_resident, rep.bytes_moved, rep.pages_failed,
            rep.busy_retries, rep.error);
    bool ok = rc == 0 && rep.extents_failed == 0 && rep.pages_failed == 0;
    if (!ok) {
        snprintf(why, sizeof why,
                 "tm_arena_migrate to node %u returned %d (%s): %zu extents "
                 "failed, %zu pages failed, first failure %p errno %d",
                 to, rc, strerror(err), rep.extents_failed, rep.pages_failed,
                 rep.nfailures ? rep.failures[0].addr : NULL,
                 rep.nfailures ? rep.failures[0].error : 0);
    } else {
        ok = all_on(al, (int)to, why, sizeof why);
    }
    if (ok && tm_arena_placement(a).nodes != 1ULL << to) {
        ok = false;
        snprintf(why, sizeof why, "tm_arena_placement says nodes %#llx",
                 (unsigned long long)tm_arena_placement(a).nodes);
    }
    tg_check(check, ok, "%s", why);

    /* The report's accounting is exact: nothing else touched the arena. */
    char acheck[80];
    snprintf(acheck, sizeof acheck, "%s-report", check);
    size_t off = have_before ? before.bytes_resident - before.node_bytes[to] : 0;
    tg_check(acheck,
             have_before && rep.bytes_resident == before.bytes_resident &&
                 rep.bytes_moved == off && rep.bytes_mapped == before.bytes_mapped,
             "report: resident %zu moved %zu mapped %zu; residency before: "
             "resident %zu, %zu off node %u, mapped %zu",
             rep.bytes_resident, rep.bytes_moved, rep.bytes_mapped,
             before.bytes_resident, off, to, before.bytes_mapped);

    /* tiermem's own residency view must agree: everything on `to`. */
    char rcheck[80];
    snprintf(rcheck, sizeof rcheck, "%s-residency", check);
    tm_residency_t r;
    if (tm_arena_residency(a, 0, &r) != 0)
        tg_check(rcheck, false, "tm_arena_residency: %s", strerror(errno));
    else
        tg_check(rcheck, r.bytes_resident > 0 && r.node_bytes[to] == r.bytes_resident,
                 "resident %zu bytes, %zu of them on node %u", r.bytes_resident,
                 r.node_bytes[to], to);
}

static void round_trip(unsigned far)
{
    char check[80], why[600] = "";
    allocs_t *al = calloc(1, sizeof *al);
    if (!al) {
        tg_check("calloc", false, "out of memory");
        return;
    }
    tm_placement_t pl0 = tm_placement_node(TM_MODE_BIND, 0);
    tm_arena_t *a = tm_arena_create(&pl0);
    snprintf(check, sizeof check, "node%u-create", far);
    if (!tg_check(check, a != NULL, "tm_arena_create: %s", strerror(errno))) {
        free(al);
        return;
    }

    /* Start on node 0. */
    bool ok = add_batch(al, a, why, sizeof why);
    if (ok)
        ok = all_on(al, 0, why, sizeof why);
    snprintf(check, sizeof check, "node%u-start-on-0", far);
    tg_check(check, ok, "%s", why);
    long thp_before = thp_pages_of_last(al);
    tg_info("THP region: %ld of %lu pages in huge pages before migrating",
            thp_before, THP_LEN / TG_PAGE);
    snprintf(check, sizeof check, "node%u-thp-backed", far);
    if (thp_usable)
        tg_check(check, thp_before > 0,
                 "the 2 MiB-aligned MADV_HUGEPAGE region has no huge page "
                 "(kpageflags: %ld)",
                 thp_before);
    else
        tg_skip(check, "transparent huge pages are not available here");

    /* 0 -> far: every page, huge ones included. */
    snprintf(check, sizeof check, "migrate-0-to-%u", far);
    migrate_check(a, al, far, check);
    tg_info("THP region: %ld huge-page-backed pages after 0 -> %u",
            thp_pages_of_last(al), far);

    /* New allocations land on the new node. */
    unsigned first_new = al->n;
    ok = add_batch(al, a, why, sizeof why);
    ok = ok && all_on_from(al, first_new, (int)far, why, sizeof why);
    snprintf(check, sizeof check, "new-allocs-on-%u", far);
    tg_check(check, ok, "%s", why);

    /* far -> 0: old and new allocations come back. */
    snprintf(check, sizeof check, "migrate-%u-to-0", far);
    migrate_check(a, al, 0, check);

    first_new = al->n;
    ok = add(al, a, 0, 5 << 20, false, why, sizeof why) &&
         add(al, a, 0, 333, false, why, sizeof why) &&
         add(al, a, 2 << 20, 4 << 20, true, why, sizeof why);
    ok = ok && all_on_from(al, first_new, 0, why, sizeof why);
    snprintf(check, sizeof check, "new-allocs-back-on-0-from-%u", far);
    tg_check(check, ok, "%s", why);

    for (unsigned i = 0; i < al->n; i++)
        tm_free(al->p[i]);
    snprintf(check, sizeof check, "node%u-destroy", far);
    tg_check(check, tm_arena_destroy(a) == 0, "tm_arena_destroy: %s",
             strerror(errno));
    free(al);
}

/* jemalloc purges free pages with MADV_DONTNEED, which turns a transparent
 * huge page into a PTE-mapped one with a hole.  Two cases, measured on the
 * guest's 6.1 kernel with raw mbind(MPOL_MF_MOVE | MPOL_MF_STRICT):
 *   - head purged (the THP's first 4 KiB): the kernel decides whether the
 *     folio is shared from its first page's mapcount, now 0, and silently
 *     skips the other 511 pages; mbind returns 0;
 *   - a page in the middle purged: the folio moves, but mbind returns EIO
 *     (each later subpage fails to isolate the folio already isolated).
 * Either way every page still mapped must end on the target, three times
 * over (0 -> far -> 0 -> far). */
static void purged_thp(unsigned far, bool head)
{
    char check[80], why[600] = "";
    snprintf(check, sizeof check, "migrate-thp-%s-purged-0-to-%u",
             head ? "head" : "middle", far);
    if (!thp_usable) {
        tg_skip(check, "transparent huge pages are not available here");
        return;
    }
    tm_placement_t pl0 = tm_placement_node(TM_MODE_BIND, 0);
    tm_arena_t *a = tm_arena_create(&pl0);
    if (!a) {
        tg_check(check, false, "tm_arena_create: %s", strerror(errno));
        return;
    }
    const size_t len = 2UL << 20;
    char *p = tm_arena_aligned_alloc(a, 2UL << 20, len);
    bool ok = p != NULL;
    if (!ok)
        snprintf(why, sizeof why, "tm_arena_aligned_alloc: %s",
                 strerror(errno));
    if (ok && madvise(p, len, MADV_HUGEPAGE) != 0) {
        ok = false;
        snprintf(why, sizeof why, "madvise(MADV_HUGEPAGE): %s",
                 strerror(errno));
    }
    long thp = 0, thp_purged = 0;
    if (ok) {
        tg_touch(p, len, 0x77);
        thp = tg_thp_pages(p, len);
        char *hole = head ? p : p + 8 * TG_PAGE;
        if (madvise(hole, TG_PAGE, MADV_DONTNEED) != 0) {
            ok = false;
            snprintf(why, sizeof why, "madvise(MADV_DONTNEED): %s",
                     strerror(errno));
        }
        thp_purged = tg_thp_pages(p, len);
    }
    const unsigned hops[3] = {far, 0, far};
    for (unsigned h = 0; ok && h < 3; h++) {
        unsigned to = hops[h];
        tm_migrate_report_t rep;
        tm_placement_t plt = tm_placement_node(TM_MODE_BIND, to);
        migrate_calls++;
        int rc = tm_arena_migrate(a, &plt, &rep);
        tg_where_t w;
        if (tg_where(p, len, (int)to, &w) != 0) {
            ok = false;
            snprintf(why, sizeof why, "move_pages: %s", strerror(errno));
            break;
        }
        tg_info("THP with its %s page purged (%ld of %zu pages huge, %ld "
                "after the purge), migration %u to node %u: rc %d, pages "
                "failed %zu; %zu pages on node %u, %zu elsewhere, %zu absent",
                head ? "first" : "9th", thp, w.pages, thp_purged, h + 1, to,
                rc, rep.pages_failed, w.on_node[to], to,
                w.pages - w.on_node[to] - w.not_present, w.not_present);
        ok = w.on_node[to] + w.not_present == w.pages && w.not_present == 1;
        if (!ok)
            snprintf(why, sizeof why,
                     "migration %u to node %u returned %d (pages_failed %zu) "
                     "but only %zu of the %zu mapped pages are on node %u "
                     "(first off-node page %p, status %d)",
                     h + 1, to, rc, rep.pages_failed, w.on_node[to],
                     w.pages - w.not_present, to, w.first_off,
                     w.first_off_status);
    }
    tg_check(check, ok, "%s", why);
    tm_free(p);
    if (tm_arena_destroy(a) != 0)
        tg_check(check, false, "tm_arena_destroy: %s", strerror(errno));
}

int main(void)
{
    tg_begin("migrate");
    char mode[32];
    tg_thp_mode(mode, sizeof mode);
    thp_usable = strcmp(mode, "always") == 0 || strcmp(mode, "madvise") == 0;
    tg_info("transparent huge pages: %s%s", mode,
            thp_usable ? "" : " (THP unavailable: the huge-page checks are "
                              "skipped, the rest still runs)");

    unsigned nodes = tg_node_count();
    if (!tg_check("nodes", nodes >= 2, "only %u node(s) in the guest", nodes))
        return tg_done();
    tm_stats_t before, after;
    tm_stats_get(&before);
    for (unsigned n = 1; n < nodes; n++)
        if (!tg_node_has_cpus(n)) {
            round_trip(n);
            purged_thp(n, true);
            purged_thp(n, false);
        }
    tm_stats_get(&after);
    tg_check("stats",
             after.hook_alloc_failures == 0 && after.mbind_failures == 0 &&
                 after.migrations - before.migrations == migrate_calls &&
                 after.migrate_failures == before.migrate_failures,
             "hook_alloc_failures %llu, mbind_failures %llu, migrations %llu "
             "(expected %u), migrate_failures %llu",
             (unsigned long long)after.hook_alloc_failures,
             (unsigned long long)after.mbind_failures,
             (unsigned long long)(after.migrations - before.migrations),
             migrate_calls,
             (unsigned long long)(after.migrate_failures -
                                  before.migrate_failures));
    return tg_done();
}
