/*
 * guest_arena_node.c -- an arena created on node N has all its pages on N.
 *
 * For every node of the guest: a TM_MODE_BIND arena on that node, a mix of
 * small, large and 2 MiB-aligned allocations, every page touched; then
 * move_pages must report every page of every allocation on N, and
 * tm_arena_residency must agree.
 */
#include "guest.h"

#include <tiermem.h>

static const size_t sizes[] = {
    100, 3 * 4096, 64 << 10, 1 << 20, (3 << 20) + 123, 8 << 20,
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void one_node(unsigned node)
{
    char check[64], why[512] = "";
    tm_placement_t pl = tm_placement_node(TM_MODE_BIND, node);
    tm_arena_t *a = tm_arena_create(&pl);
    snprintf(check, sizeof check, "node%u-create", node);
    if (!tg_check(check, a != NULL, "tm_arena_create(BIND, node %u): %s", node,
                  strerror(errno)))
        return;

    void *p[NSIZES + 1];
    size_t len[NSIZES + 1];
    bool ok = true;
    for (size_t i = 0; i < NSIZES; i++) {
        len[i] = sizes[i];
        p[i] = tm_arena_malloc(a, sizes[i]);
        if (!p[i]) {
            ok = false;
            snprintf(why, sizeof why, "tm_arena_malloc(%zu): %s", sizes[i],
                     strerror(errno));
            break;
        }
        tg_touch(p[i], len[i], (unsigned char)(i + 1));
    }
    if (ok) {
        len[NSIZES] = 4 << 20;
        p[NSIZES] = tm_arena_aligned_alloc(a, 2 << 20, len[NSIZES]);
        if (!p[NSIZES] || (uintptr_t)p[NSIZES] % (2 << 20) != 0) {
            ok = false;
            snprintf(why, sizeof why, "tm_arena_aligned_alloc(2M, 4M) = %p: %s",
                     p[NSIZES], strerror(errno));
        } else {
            tg_touch(p[NSIZES], len[NSIZES], 0x5a);
        }
    }
    snprintf(check, sizeof check, "node%u-alloc", node);
    if (!tg_check(check, ok, "%s", why)) {
        (void)tm_arena_destroy(a);
        return;
    }

    /* Every page of every allocation on the node. */
    ok = true;
    for (size_t i = 0; i <= NSIZES && ok; i++) {
        char w[400];
        if (!tg_all_on_node(p[i], len[i], (int)node, w, sizeof w)) {
            ok = false;
            snprintf(why, sizeof why, "allocation %zu (%zu bytes at %p): %s",
                     i, len[i], p[i], w);
        }
    }
    snprintf(check, sizeof check, "node%u-pages", node);
    tg_check(check, ok, "%s", why);

    /* The owning arena is found from any address inside. */
    ok = true;
    for (size_t i = 0; i <= NSIZES; i++)
        if (tm_arena_of(p[i]) != a || tm_arena_of((char *)p[i] + len[i] - 1) != a)
            ok = false;
    snprintf(check, sizeof check, "node%u-arena-of", node);
    tg_check(check, ok, "tm_arena_of did not name the arena for every allocation");

    /* tiermem's own residency figures agree with move_pages. */
    tm_residency_t r;
    snprintf(check, sizeof check, "node%u-residency", node);
    if (tm_arena_residency(a, 0, &r) != 0) {
        tg_check(check, false, "tm_arena_residency: %s", strerror(errno));
    } else {
        size_t want = 0;
        for (size_t i = 0; i <= NSIZES; i++)
            want += len[i];
        tg_check(check,
                 r.stride == 1 && r.bytes_resident >= want - (8 << 10) &&
                     r.node_bytes[node] == r.bytes_resident,
                 "stride %zu, resident %zu (allocated %zu), on node %u: %zu",
                 r.stride, r.bytes_resident, want, node, r.node_bytes[node]);
    }

    for (size_t i = 0; i <= NSIZES; i++)
        tm_free(p[i]);
    snprintf(check, sizeof check, "node%u-destroy", node);
    tg_check(check, tm_arena_destroy(a) == 0, "tm_arena_destroy: %s",
             strerror(errno));
}

int main(void)
{
    tg_begin("arena_node");
    unsigned nodes = tg_node_count();
    if (!tg_check("nodes", nodes >= 2, "only %u node(s) in the guest", nodes))
        return tg_done();
    for (unsigned n = 0; n < nodes; n++)
        one_node(n);

    tm_stats_t st;
    tm_stats_get(&st);
    tg_check("stats", st.hook_alloc_failures == 0 && st.mbind_failures == 0,
             "hook_alloc_failures %llu, mbind_failures %llu",
             (unsigned long long)st.hook_alloc_failures,
             (unsigned long long)st.mbind_failures);
    return tg_done();
}
