/*
 * mallocheavy.c -- a malloc-heavy multithreaded workload for the preload
 * benchmark (bench/bench_preload.sh).  It is an ordinary program: it links
 * nothing of tiermem, and every allocation goes through plain
 * malloc/calloc/realloc/free, so whatever allocator LD_PRELOAD puts in front
 * of it is what gets measured.
 *
 * What it does, on each of --threads threads (default 2), --scale times:
 *   lists     linked lists of 16-512 B nodes, every 64th node also owning a
 *             4-64 KiB buffer; built, walked, half unlinked and freed, the
 *             survivors gathered into an array grown by realloc, then freed;
 *   hash      a chained hash table of malloc'd string keys (8-120 B) and
 *             32 B entries: insert, look up, delete half, re-insert, free;
 *   hypre     about a million 32-byte list nodes in total (split over the
 *             threads) pushed onto 1024 lists, walked and freed list by list:
 *             what hypre's coarsening does to an allocator;
 *   pipeline  blocks allocated on one thread and freed on the next (a ring
 *             of single-producer single-consumer queues): mostly 16-512 B,
 *             one in 32 of 4-64 KiB.  Remote frees are the case per-thread
 *             caches and per-thread arenas handle worst.
 *
 * Output (stdout): one checksum line computed from the data only (never
 * from addresses or timing), so the outputs of two allocators can be
 * compared byte for byte.  Per-thread checksums are added, so thread
 * scheduling does not change the result.  The time taken goes to stderr.
 *
 * Usage: mallocheavy [--threads T] [--scale S] [--seed N]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#define MAX_THREADS 64

/* Work per thread per --scale unit.  Sized so one run takes about a second
 * under glibc on 2 cores: long enough that process start-up (and the
 * preload library's own initialisation) is a small part of it, short enough
 * to interleave several allocators over many rounds. */
#define LIST_REPS 16
#define LIST_NODES 20000
#define HASH_REPS 4
#define HASH_KEYS 50000
#define HASH_BUCKETS (1u << 14)
#define HYPRE_NODES_TOTAL 1000000u
#define HYPRE_LISTS 1024
#define PIPE_MSGS 200000
#define RING_CAP 1024 /* power of two */

/* Allocation counts, per thread (summed at the end, printed to stderr):
 * how many requests the allocator saw, and how many of them were at least
 * 4096 B, the size from which tiermem's preload library walks the stack by
 * default. */
static __thread uint64_t n_alloc, n_alloc_big;

static void count_alloc(size_t n)
{
    n_alloc++;
    n_alloc_big += n >= 4096;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        die("malloc(%zu) failed", n);
    count_alloc(n);
    return p;
}

/* Order-independent accumulation: threads add their partial sums. */
static inline uint64_t mix(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return v;
}

/* Sum of the bytes of a block, read 8 at a time where possible: reading the
 * memory back is part of what a real program does with it. */
static uint64_t sum_bytes(const unsigned char *p, size_t n)
{
    uint64_t s = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        s += w;
    }
    for (; i < n; i++)
        s += p[i];
    return s;
}

/* Fill with a pattern derived from seed (cheap, and not all zeroes, so the
 * allocator cannot get away with untouched pages). */
static void fill_bytes(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t w = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8, w += 0x632be59bd9b4e019ull)
        memcpy(p + i, &w, 8);
    for (; i < n; i++)
        p[i] = (unsigned char)(w >> (i & 7));
}

/* A big buffer is written at its start and once per page, as most buffers
 * are only partly used; writing all 64 KiB would measure memset. */
static void touch_buffer(unsigned char *p, size_t n, uint64_t seed)
{
    fill_bytes(p, n < 512 ? n : 512, seed);
    for (size_t off = 4096; off < n; off += 4096)
        p[off] = (unsigned char)(seed + off);
}

static uint64_t sum_buffer(const unsigned char *p, size_t n)
{
    uint64_t s = sum_bytes(p, n < 512 ? n : 512);
    for (size_t off = 4096; off < n; off += 4096)
        s += p[off];
    return s;
}

static size_t small_size(bench_rng_t *r) { return 16 + bench_rng_below(r, 497); }
static size_t big_size(bench_rng_t *r) { return 4096 + bench_rng_below(r, 61441); }

/* ------------------------------------------------------------ lists */

typedef struct lnode {
    struct lnode *next;
    unsigned char *buf; /* a 4-64 KiB buffer on every 64th node, else NULL */
    uint32_t size, buf_size;
    unsigned char payload[]; /* size - header bytes */
} lnode_t;

static uint64_t work_lists(bench_rng_t *r)
{
    uint64_t acc = 0;
    for (unsigned rep = 0; rep < LIST_REPS; rep++) {
        lnode_t *head = NULL;
        for (unsigned i = 0; i < LIST_NODES; i++) {
            size_t size = small_size(r);
            if (size < sizeof(lnode_t))
                size = sizeof(lnode_t);
            lnode_t *n = xmalloc(size);
            n->size = (uint32_t)size;
            n->buf = NULL;
            n->buf_size = 0;
            fill_bytes(n->payload, size - sizeof *n, i ^ rep);
            if (i % 64 == 0) {
                n->buf_size = (uint32_t)big_size(r);
                n->buf = xmalloc(n->buf_size);
                touch_buffer(n->buf, n->buf_size, i);
            }
            n->next = head;
            head = n;
        }
        /* Walk it. */
        for (lnode_t *n = head; n; n = n->next) {
            acc += mix(sum_bytes(n->payload, n->size - sizeof *n) + n->size);
            if (n->buf)
                acc += mix(sum_buffer(n->buf, n->buf_size));
        }
        /* Unlink and free every other node: frees interleaved with live
         * neighbours, so the heap fragments as real programs' heaps do. */
        for (lnode_t *n = head; n && n->next; n = n->next) {
            lnode_t *dead = n->next;
            n->next = dead->next;
            free(dead->buf);
            free(dead);
        }
        /* Gather the survivors into an array grown by realloc. */
        size_t cap = 16, count = 0;
        lnode_t **v = xmalloc(cap * sizeof *v);
        for (lnode_t *n = head; n; n = n->next) {
            if (count == cap) {
                cap *= 2;
                lnode_t **nv = realloc(v, cap * sizeof *v);
                if (nv == NULL)
                    die("realloc(%zu) failed", cap * sizeof *v);
                count_alloc(cap * sizeof *v);
                v = nv;
            }
            v[count++] = n;
        }
        acc += mix(count);
        for (size_t i = 0; i < count; i++) {
            free(v[i]->buf);
            free(v[i]);
        }
        free(v);
    }
    return acc;
}

/* ------------------------------------------------------------ hash */

typedef struct hentry {
    struct hentry *next;
    char *key;
    uint64_t hash, value;
} hentry_t; /* 32 bytes */

/* FNV-1a: the hash a small C program would write. */
static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static char *make_key(bench_rng_t *r, size_t *len)
{
    size_t n = 8 + bench_rng_below(r, 113); /* 8..120 bytes with the NUL */
    char *k = xmalloc(n);
    for (size_t i = 0; i + 1 < n; i++)
        k[i] = (char)('a' + bench_rng_below(r, 26));
    k[n - 1] = '\0';
    *len = n - 1;
    return k;
}

static uint64_t work_hash(bench_rng_t *r)
{
    uint64_t acc = 0;
    for (unsigned rep = 0; rep < HASH_REPS; rep++) {
        hentry_t **b = calloc(HASH_BUCKETS, sizeof *b);
        hentry_t **order = xmalloc(HASH_KEYS * sizeof *order);
        if (b == NULL)
            die("calloc failed");
        count_alloc(HASH_BUCKETS * sizeof *b);
        for (unsigned i = 0; i < HASH_KEYS; i++) {
            size_t len;
            hentry_t *e = xmalloc(sizeof *e);
            e->key = make_key(r, &len);
            e->hash = hash_str(e->key, len);
            e->value = i;
            hentry_t **slot = &b[e->hash & (HASH_BUCKETS - 1)];
            e->next = *slot;
            *slot = e;
            order[i] = e;
        }
        /* Look every key up again through a copy of it, as a program
         * looking up a key it just read would. */
        for (unsigned i = 0; i < HASH_KEYS; i += 3) {
            size_t len = strlen(order[i]->key);
            char *copy = xmalloc(len + 1);
            memcpy(copy, order[i]->key, len + 1);
            uint64_t h = hash_str(copy, len);
            for (hentry_t *e = b[h & (HASH_BUCKETS - 1)]; e; e = e->next)
                if (e->hash == h && strcmp(e->key, copy) == 0) {
                    acc += mix(e->value + h);
                    break;
                }
            free(copy);
        }
        /* Delete every other inserted key, then re-insert it under a new
         * key (new sizes: the freed blocks are reused out of order). */
        for (unsigned i = 0; i < HASH_KEYS; i += 2) {
            hentry_t *victim = order[i];
            hentry_t **pp = &b[victim->hash & (HASH_BUCKETS - 1)];
            while (*pp != victim)
                pp = &(*pp)->next;
            *pp = victim->next;
            free(victim->key);
            size_t len;
            victim->key = make_key(r, &len);
            victim->hash = hash_str(victim->key, len);
            pp = &b[victim->hash & (HASH_BUCKETS - 1)];
            victim->next = *pp;
            *pp = victim;
        }
        for (unsigned i = 0; i < HASH_BUCKETS; i++) {
            unsigned chain = 0;
            for (hentry_t *e = b[i], *next; e; e = next) {
                next = e->next;
                acc += mix(e->hash ^ chain++);
                free(e->key);
                free(e);
            }
        }
        free(order);
        free(b);
    }
    return acc;
}

/* ------------------------------------------------------------ hypre */

typedef struct hnode {
    struct hnode *next;
    int32_t i, j;
    double v, w;
} hnode_t; /* 32 bytes: hypre's coarsening list node */

static uint64_t work_hypre(bench_rng_t *r, unsigned nthreads)
{
    hnode_t *lists[HYPRE_LISTS] = {0};
    unsigned n = HYPRE_NODES_TOTAL / nthreads;
    uint64_t acc = 0;
    for (unsigned k = 0; k < n; k++) {
        unsigned l = (unsigned)bench_rng_below(r, HYPRE_LISTS);
        hnode_t *node = xmalloc(sizeof *node);
        node->i = (int32_t)k;
        node->j = (int32_t)l;
        node->v = (double)(k % 1000) * 0.5;
        node->w = 0;
        node->next = lists[l];
        lists[l] = node;
    }
    for (unsigned l = 0; l < HYPRE_LISTS; l++) {
        double s = 0;
        for (hnode_t *node = lists[l], *next; node; node = next) {
            next = node->next;
            s += node->v;
            acc += mix((uint64_t)node->i * HYPRE_LISTS + (uint64_t)node->j);
            free(node);
        }
        acc += (uint64_t)s;
    }
    return acc;
}

/* ------------------------------------------------------------ pipeline */

typedef struct ring {
    _Alignas(64) _Atomic size_t head; /* next slot the consumer reads */
    _Alignas(64) _Atomic size_t tail; /* next slot the producer writes */
    _Alignas(64) void *slot[RING_CAP];
} ring_t;

static ring_t rings[MAX_THREADS]; /* ring t: thread t -> thread t+1 */

static bool ring_push(ring_t *q, void *p)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&q->head, memory_order_acquire) == RING_CAP)
        return false;
    q->slot[t & (RING_CAP - 1)] = p;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

static void *ring_pop(ring_t *q)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&q->tail, memory_order_acquire))
        return NULL;
    void *p = q->slot[h & (RING_CAP - 1)];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return p;
}

typedef struct msg {
    uint32_t size, seq;
    unsigned char payload[];
} msg_t;

static uint64_t consume(msg_t *m)
{
    size_t n = m->size - sizeof *m;
    uint64_t s = m->size > 4096 ? sum_buffer(m->payload, n)
                                : sum_bytes(m->payload, n);
    uint64_t v = mix(s + m->seq);
    free(m);
    return v;
}

static uint64_t work_pipeline(bench_rng_t *r, unsigned id, unsigned nthreads)
{
    ring_t *out = &rings[id], *in = &rings[(id + nthreads - 1) % nthreads];
    unsigned sent = 0, received = 0, idle = 0;
    msg_t *pending = NULL;
    uint64_t acc = 0;
    while (sent < PIPE_MSGS || received < PIPE_MSGS) {
        bool progress = false;
        if (sent < PIPE_MSGS) {
            if (pending == NULL) {
                size_t size = sent % 32 == 31 ? big_size(r) : small_size(r);
                pending = xmalloc(size);
                pending->size = (uint32_t)size;
                pending->seq = sent;
                if (size > 4096)
                    touch_buffer(pending->payload, size - sizeof *pending, sent);
                else
                    fill_bytes(pending->payload, size - sizeof *pending, sent);
            }
            if (ring_push(out, pending)) {
                pending = NULL;
                sent++;
                progress = true;
            }
        }
        /* Drain what has arrived, so neither side waits on a full ring. */
        msg_t *m;
        while ((m = ring_pop(in)) != NULL) {
            acc += consume(m);
            received++;
            progress = true;
        }
        if (progress) {
            idle = 0;
        } else if (++idle < 64) {
            sched_yield(); /* the other thread is busy: give it the CPU */
        } else {
            /* It is not running at all (a loaded machine): sleep instead
             * of spinning, so CPU time stays a measure of the work. */
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
    return acc;
}

/* ------------------------------------------------------------ driver */

typedef struct worker {
    pthread_t thread;
    unsigned id, nthreads, scale;
    uint64_t seed, sum, allocs, allocs_big;
} worker_t;

static pthread_barrier_t pipe_barrier;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    bench_rng_t r = {w->seed * 0x100000001b3ull + w->id};
    uint64_t acc = 0;
    for (unsigned s = 0; s < w->scale; s++) {
        acc += work_lists(&r);
        acc += work_hash(&r);
        acc += work_hypre(&r, w->nthreads);
        /* All threads enter the pipeline together, so each one's
         * consumer is there when its producer starts. */
        int rc = pthread_barrier_wait(&pipe_barrier);
        if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
            die_errno(rc, "pthread_barrier_wait");
        acc += work_pipeline(&r, w->id, w->nthreads);
    }
    w->sum = acc;
    w->allocs = n_alloc;
    w->allocs_big = n_alloc_big;
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: mallocheavy [--threads T (2)] [--scale S (1)] "
                    "[--seed N (1)]\n");
}

int main(int argc, char **argv)
{
    unsigned long long threads = 2, scale = 1, seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--threads")) != NULL)
            threads = bench_parse_count("--threads", v);
        else if ((v = bench_opt(argc, argv, &i, "--scale")) != NULL)
            scale = bench_parse_count("--scale", v);
        else if ((v = bench_opt(argc, argv, &i, "--seed")) != NULL)
            seed = bench_parse_count("--seed", v);
        else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (threads > MAX_THREADS)
        die("--threads: at most %d", MAX_THREADS);

    worker_t *w = calloc(threads, sizeof *w);
    if (w == NULL)
        die_errno(errno, "calloc");
    int rc = pthread_barrier_init(&pipe_barrier, NULL, (unsigned)threads);
    if (rc != 0)
        die_errno(rc, "pthread_barrier_init");
    uint64_t t0 = bench_now_ns();
    for (unsigned t = 0; t < threads; t++) {
        w[t] = (worker_t){.id = t, .nthreads = (unsigned)threads,
                          .scale = (unsigned)scale, .seed = seed};
        rc = pthread_create(&w[t].thread, NULL, worker_main, &w[t]);
        if (rc != 0)
            die_errno(rc, "pthread_create");
    }
    uint64_t sum = 0, allocs = 0, allocs_big = 0;
    for (unsigned t = 0; t < threads; t++) {
        rc = pthread_join(w[t].thread, NULL);
        if (rc != 0)
            die_errno(rc, "pthread_join");
        sum += w[t].sum;
        allocs += w[t].allocs;
        allocs_big += w[t].allocs_big;
    }
    uint64_t t1 = bench_now_ns();
    printf("mallocheavy threads %llu scale %llu seed %llu checksum %016llx\n",
           threads, scale, seed, (unsigned long long)sum);
    fprintf(stderr,
            "mallocheavy: %.3f s, %llu allocations (%llu of >= 4096 B)\n",
            (double)(t1 - t0) / 1e9, (unsigned long long)allocs,
            (unsigned long long)allocs_big);
    free(w);
    pthread_barrier_destroy(&pipe_barrier);
    return 0;
}
