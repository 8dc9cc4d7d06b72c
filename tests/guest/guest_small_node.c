/*
 * guest_small_node.c -- a slow-tier node that is too small for what is put
 * on it.  Runs where run-rig.sh made one node deliberately small
 * (TM_SMALL_NODE: node 2, 128 MiB, in topology 3); skipped elsewhere.
 *
 * TM_MODE_BIND on the small node, 2x its capacity touched.  Linux allocates
 * lazily: mmap and mbind succeed, and it is the page faults past the node's
 * capacity that fail, where the kernel OOM-kills the process (the fault
 * cannot return NULL to anyone).  So the overfilling runs in a forked child
 * that is the OOM killer's preferred victim (oom_score_adj 1000; the parent
 * sets -1000).  Passes when the child either got NULL from tiermem (a clean
 * failure, exit status 3) or was killed by SIGKILL/SIGBUS, and the parent
 * and the guest live on; after it the node must hold pages again.
 *
 * TM_MODE_PREFERRED on the small node, 2x its capacity touched: succeeds,
 * the node is filled, and the excess lands on node 0 (the nearest node with
 * CPUs: run-rig.sh sets the SLIT so node 0 is the small node's fallback).
 */
#include "guest.h"

#include <signal.h>
#include <sys/wait.h>
#include <tiermem.h>

#define CHUNK (4UL << 20)
#define CHILD_GOT_NULL 3
#define CHILD_OVERFILLED 4

static int set_oom_score_adj(int v)
{
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%d", v);
    ssize_t w = write(fd, buf, (size_t)n);
    int saved = errno;
    if (close(fd) != 0 || w != n) {
        errno = w != n ? saved : errno;
        return -1;
    }
    return 0;
}

/* The child: BIND arena on the small node, fill 2x its capacity. */
static void overfill_child(unsigned node, size_t total)
{
    if (set_oom_score_adj(1000) != 0)
        _exit(10);
    tm_placement_t pl = tm_placement_node(TM_MODE_BIND, node);
    tm_arena_t *a = tm_arena_create(&pl);
    if (!a)
        _exit(11);
    for (size_t done = 0; done < total; done += CHUNK) {
        void *p = tm_arena_malloc(a, CHUNK);
        if (!p) {
            printf("  [small_node] child: tm_arena_malloc returned NULL after "
                   "%zu MiB (%s)\n", done >> 20, strerror(errno));
            fflush(stdout);
            _exit(CHILD_GOT_NULL);
        }
        tg_touch(p, CHUNK, 0xcc); /* the fault that cannot be satisfied */
    }
    _exit(CHILD_OVERFILLED);
}

static void bind_overfill(unsigned node, size_t capacity)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        tg_check("bind-overfill", false, "fork: %s", strerror(errno));
        return;
    }
    if (pid == 0)
        overfill_child(node, 2 * capacity);
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (r != pid) {
        tg_check("bind-overfill", false, "waitpid: %s", strerror(errno));
        return;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        tg_info("BIND child touching %zu MiB on node %u (%zu MiB) was killed "
                "by signal %d (%s)",
                (2 * capacity) >> 20, node, capacity >> 20, sig, strsignal(sig));
        tg_check("bind-overfill", sig == SIGKILL || sig == SIGBUS,
                 "the child died by signal %d (%s), expected SIGKILL (OOM) or "
                 "SIGBUS", sig, strsignal(sig));
    } else {
        int code = WEXITSTATUS(status);
        tg_info("BIND child exited with status %d", code);
        tg_check("bind-overfill", code == CHILD_GOT_NULL,
                 "the child exited with status %d: %s", code,
                 code == CHILD_OVERFILLED
                     ? "it placed 2x the node's capacity under MPOL_BIND"
                     : code == 11 ? "tm_arena_create failed"
                                  : "it could not set up");
    }

    /* The parent is alive (it is running this); the node takes pages again. */
    char why[400] = "";
    tm_placement_t pl = tm_placement_node(TM_MODE_BIND, node);
    tm_arena_t *a = tm_arena_create(&pl);
    bool ok = a != NULL;
    if (!ok)
        snprintf(why, sizeof why, "tm_arena_create: %s", strerror(errno));
    void *p = ok ? tm_arena_malloc(a, CHUNK) : NULL;
    if (ok && !p) {
        ok = false;
        snprintf(why, sizeof why, "tm_arena_malloc: %s", strerror(errno));
    }
    if (ok) {
        tg_touch(p, CHUNK, 1);
        ok = tg_all_on_node(p, CHUNK, (int)node, why, sizeof why);
        tm_free(p);
    }
    if (a && tm_arena_destroy(a) != 0 && ok) {
        ok = false;
        snprintf(why, sizeof why, "tm_arena_destroy: %s", strerror(errno));
    }
    tg_check("bind-after-overfill", ok, "%s", why);
}

static void preferred_overfill(unsigned node, size_t capacity, unsigned fallback)
{
    char why[600] = "";
    size_t total = 2 * capacity, n = total / CHUNK;
    void **chunks = calloc(n, sizeof *chunks);
    tm_placement_t pl = tm_placement_node(TM_MODE_PREFERRED, node);
    tm_arena_t *a = tm_arena_create(&pl);
    bool ok = chunks && a;
    if (!ok)
        snprintf(why, sizeof why, "setup: %s", strerror(errno));
    for (size_t i = 0; ok && i < n; i++) {
        chunks[i] = tm_arena_malloc(a, CHUNK);
        if (!chunks[i]) {
            ok = false;
            snprintf(why, sizeof why, "tm_arena_malloc failed after %zu MiB: %s",
                     i * CHUNK >> 20, strerror(errno));
            break;
        }
        tg_touch(chunks[i], CHUNK, (unsigned char)i);
    }
    tg_check("preferred-alloc-2x", ok, "%s", why);

    if (ok) {
        size_t on_small = 0, on_fallback = 0, elsewhere = 0, absent = 0,
               pages = 0;
        for (size_t i = 0; i < n && ok; i++) {
            tg_where_t w;
            if (tg_where(chunks[i], CHUNK, -1, &w) != 0) {
                ok = false;
                snprintf(why, sizeof why, "move_pages: %s", strerror(errno));
                break;
            }
            pages += w.pages;
            on_small += w.on_node[node];
            on_fallback += w.on_node[fallback];
            absent += w.pages - w.on_node[node] - w.on_node[fallback];
            for (unsigned k = 0; k < TG_MAX_NODES; k++)
                if (k != node && k != fallback)
                    elsewhere += w.on_node[k];
        }
        tg_info("PREFERRED node %u, %zu MiB touched: %zu MiB on node %u, %zu "
                "MiB on node %u, %zu MiB elsewhere, %zu pages not on a node",
                node, total >> 20, on_small * TG_PAGE >> 20, node,
                on_fallback * TG_PAGE >> 20, fallback,
                elsewhere * TG_PAGE >> 20, absent - elsewhere);
        /* The node is filled (most of its capacity; the kernel keeps a
         * reserve) and nothing beyond its capacity is on it; the excess is
         * on the fallback node, nothing is lost. */
        size_t cap_pages = capacity / TG_PAGE;
        if (ok)
            tg_check("preferred-fills-node",
                     on_small <= cap_pages && on_small >= cap_pages / 2,
                     "%zu pages on node %u, capacity %zu pages", on_small,
                     node, cap_pages);
        if (ok)
            tg_check("preferred-excess-on-node0",
                     on_small + on_fallback == pages &&
                         on_fallback >= pages - cap_pages,
                     "of %zu pages: %zu on node %u, %zu on node %u, %zu "
                     "elsewhere or absent",
                     pages, on_small, node, on_fallback, fallback,
                     pages - on_small - on_fallback);
        else
            tg_check("preferred-placement", false, "%s", why);
    }
    for (size_t i = 0; chunks && i < n; i++)
        tm_free(chunks[i]);
    if (a && tm_arena_destroy(a) != 0)
        tg_check("preferred-destroy", false, "tm_arena_destroy: %s",
                 strerror(errno));
    free(chunks);
}

int main(void)
{
    tg_begin("small_node");
    long small = tg_env_long("TM_SMALL_NODE", -1);
    if (small < 0) {
        tg_skip("bind-overfill", "this topology has no deliberately small node");
        tg_skip("preferred-overfill", "this topology has no deliberately small node");
        return tg_done();
    }
    unsigned node = (unsigned)small;
    unsigned fallback = (unsigned)tg_env_long("TM_CPU_NODE", 0);
    long long cap = tg_node_meminfo(node, "MemTotal");
    long long fb_free = tg_node_meminfo(fallback, "MemFree");
    if (!tg_check("setup", cap > 0 && fb_free > 0,
                  "cannot read node %u / node %u meminfo", node, fallback))
        return tg_done();
    tg_info("node %u: MemTotal %lld MiB, MemFree %lld MiB; node %u MemFree %lld "
            "MiB",
            node, cap >> 20, tg_node_meminfo(node, "MemFree") >> 20, fallback,
            fb_free >> 20);
    /* The parent must survive whatever the OOM killer does. */
    tg_check("oom-protect-parent", set_oom_score_adj(-1000) == 0,
             "oom_score_adj: %s", strerror(errno));

    bind_overfill(node, (size_t)cap);
    if (!tg_check("room-for-excess", fb_free > cap + (64LL << 20),
                  "node %u has only %lld MiB free for a %lld MiB excess",
                  fallback, fb_free >> 20, cap >> 20))
        return tg_done();
    preferred_overfill(node, (size_t)cap, fallback);
    return tg_done();
}
