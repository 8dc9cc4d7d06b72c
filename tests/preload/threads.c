/*
 * threads.c -- many pthreads allocating, passing blocks to each other,
 * reallocating and freeing them on threads other than the one that
 * allocated them.
 *
 * Phase 1: NT threads in a ring.  Thread t makes PER blocks and sends each
 * to thread t+1.  A block whose seq is a multiple of 3 travels a second hop:
 * its first receiver reallocates it (grow or shrink) before passing it on.
 * The last receiver checks every byte and frees it.  Every block's size,
 * allocation call and path depend only on (producer, seq), and the checksum
 * is a sum, so stdout is the same whatever the scheduling; the allocator is
 * the only thing that can change it.
 * Phase 2: rounds of short-lived threads whose blocks the main thread frees
 * after they exited (thread caches torn down while their blocks live on).
 *
 * Exit status 1 and a "corrupt" line on any mismatch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tm_probe.h"

#define NT 8
#define PER 2500
#define QCAP 64

typedef struct block {
    struct block *next;
    uint32_t producer, seq;
    size_t size;          /* bytes of data[] */
    unsigned hops;
    unsigned char data[];
} block_t;

typedef struct queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;  /* signalled on every push and pop */
    block_t *head, *tail;
    unsigned len;
} queue_t;

static queue_t queues[NT];
static atomic_ulong finished;              /* blocks checked and freed */
static atomic_ulong corrupt;
static uint64_t sums[NT], bytes[NT];

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static unsigned char pattern(uint32_t producer, uint32_t seq, size_t i)
{
    return (unsigned char)(producer * 31u + seq * 7u + i * 13u + (i >> 8));
}

/* Sizes: half tiny, the rest up to 1 MiB (so both small-class and
 * large/huge jemalloc paths, and the site threshold of 4 KiB, are hit). */
static size_t size_of(uint32_t producer, uint32_t seq, unsigned salt)
{
    uint64_t r = mix(((uint64_t)producer << 32 | seq) * 4 + salt);
    switch (r % 20) {
    case 0:
        return 131072 + r % (1u << 20);
    case 1: case 2: case 3:
        return 8192 + r % 131072;
    case 4: case 5: case 6: case 7: case 8: case 9:
        return 512 + r % 7680;
    default:
        return 1 + r % 512;
    }
}

static block_t *make_block(uint32_t producer, uint32_t seq)
{
    size_t size = size_of(producer, seq, 0), total = sizeof(block_t) + size;
    block_t *b = NULL;
    switch (seq % 5) {
    case 0:
        b = malloc(total);
        break;
    case 1:
        b = calloc(1, total);
        if (b)
            for (size_t i = 0; i < total; i++)
                if (((unsigned char *)b)[i] != 0) {
                    printf("corrupt: calloc block not zeroed\n");
                    atomic_fetch_add(&corrupt, 1);
                    break;
                }
        break;
    case 2:
        if (posix_memalign((void **)&b, 64, total) != 0)
            b = NULL;
        break;
    case 3:
        b = aligned_alloc(256, (total + 255) / 256 * 256);
        break;
    case 4: /* grow from nothing through realloc */
        b = realloc(NULL, sizeof(block_t));
        if (b) {
            block_t *nb = realloc(b, total);
            if (!nb)
                free(b);
            b = nb;
        }
        break;
    }
    if (!b) {
        printf("corrupt: allocation of %zu bytes failed: %s\n", total,
               strerror(errno));
        exit(1);
    }
    tm_probe_inside_arena(b, "threads block");
    b->next = NULL;
    b->producer = producer;
    b->seq = seq;
    b->size = size;
    b->hops = 0;
    for (size_t i = 0; i < size; i++)
        b->data[i] = pattern(producer, seq, i);
    return b;
}

static int check_block(const block_t *b)
{
    for (size_t i = 0; i < b->size; i++)
        if (b->data[i] != pattern(b->producer, b->seq, i))
            return 0;
    return 1;
}

static void push(unsigned q, block_t *b)
{
    queue_t *qu = &queues[q];
    pthread_mutex_lock(&qu->lock);
    b->next = NULL;
    if (qu->tail)
        qu->tail->next = b;
    else
        qu->head = b;
    qu->tail = b;
    qu->len++;
    pthread_cond_broadcast(&qu->cond);
    pthread_mutex_unlock(&qu->lock);
}

/* Pop from our own queue, waiting at most ~1 ms; NULL if empty. */
static block_t *pop(unsigned q)
{
    queue_t *qu = &queues[q];
    pthread_mutex_lock(&qu->lock);
    if (!qu->head) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&qu->cond, &qu->lock, &ts);
    }
    block_t *b = qu->head;
    if (b) {
        qu->head = b->next;
        if (!qu->head)
            qu->tail = NULL;
        qu->len--;
        pthread_cond_broadcast(&qu->cond);
    }
    pthread_mutex_unlock(&qu->lock);
    return b;
}

static unsigned queue_len(unsigned q)
{
    pthread_mutex_lock(&queues[q].lock);
    unsigned n = queues[q].len;
    pthread_mutex_unlock(&queues[q].lock);
    return n;
}

/* Handle one received block on thread t: forward it or retire it. */
static void receive(unsigned t, block_t *b)
{
    if (!check_block(b)) {
        printf("corrupt: block %u/%u hop %u\n", b->producer, b->seq, b->hops);
        atomic_fetch_add(&corrupt, 1);
    }
    if (b->seq % 3 == 0 && b->hops == 0) {
        /* Reallocate on a thread that did not allocate it, then pass on. */
        size_t old = b->size, size = size_of(b->producer, b->seq, 1);
        block_t *nb = realloc(b, sizeof(block_t) + size);
        if (!nb) {
            printf("corrupt: realloc to %zu failed\n", size);
            exit(1);
        }
        tm_probe_inside_arena(nb, "threads realloc");
        nb->size = size;
        for (size_t i = old; i < size; i++)
            nb->data[i] = pattern(nb->producer, nb->seq, i);
        nb->hops = 1;
        push((t + 1) % NT, nb);
        return;
    }
    sums[t] += mix(((uint64_t)b->producer << 40) ^ ((uint64_t)b->seq << 20) ^
                   b->size);
    bytes[t] += b->size;
    free(b);
    atomic_fetch_add(&finished, 1);
}

static void *ring_thread(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg, next = (t + 1) % NT;
    uint32_t seq = 0;
    while (atomic_load(&finished) < (unsigned long)NT * PER) {
        /* Produce while the next queue is short, so memory stays bounded;
         * always drain our own queue, so no cycle of waits can form. */
        if (seq < PER && queue_len(next) < QCAP) {
            push(next, make_block(t, seq));
            seq++;
        }
        block_t *b = pop(t);
        if (b)
            receive(t, b);
    }
    return NULL;
}

#define CHURN_ROUNDS 12
#define CHURN_THREADS 8
#define CHURN_BLOCKS 150
static void *churn_blocks[CHURN_THREADS][CHURN_BLOCKS];

static void *churn_thread(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    for (unsigned i = 0; i < CHURN_BLOCKS; i++) {
        size_t n = size_of(100 + t, i, 2);
        unsigned char *p = malloc(n);
        if (!p)
            exit(1);
        tm_probe_inside_arena(p, "churn block");
        memset(p, (int)(t + i), n);
        p[0] = (unsigned char)t;
        churn_blocks[t][i] = p;
        if (i % 4 == 3) { /* free some here, too */
            free(churn_blocks[t][i - 1]);
            churn_blocks[t][i - 1] = NULL;
        }
    }
    return NULL;
}

int main(void)
{
    tm_probe_init();
    for (unsigned t = 0; t < NT; t++) {
        pthread_mutex_init(&queues[t].lock, NULL);
        pthread_cond_init(&queues[t].cond, NULL);
    }
    pthread_t th[NT];
    for (unsigned t = 0; t < NT; t++)
        if (pthread_create(&th[t], NULL, ring_thread, (void *)(uintptr_t)t)) {
            printf("pthread_create failed\n");
            return 1;
        }
    for (unsigned t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    uint64_t sum = 0, total = 0;
    for (unsigned t = 0; t < NT; t++) {
        sum += sums[t];
        total += bytes[t];
    }
    printf("ring: %lu blocks, %llu bytes, checksum %016llx\n",
           (unsigned long)atomic_load(&finished), (unsigned long long)total,
           (unsigned long long)sum);

    unsigned long freed = 0;
    for (unsigned r = 0; r < CHURN_ROUNDS; r++) {
        pthread_t ct[CHURN_THREADS];
        for (unsigned t = 0; t < CHURN_THREADS; t++)
            if (pthread_create(&ct[t], NULL, churn_thread,
                               (void *)(uintptr_t)t)) {
                printf("pthread_create failed\n");
                return 1;
            }
        for (unsigned t = 0; t < CHURN_THREADS; t++)
            pthread_join(ct[t], NULL);
        /* The threads are gone; their blocks are freed here. */
        for (unsigned t = 0; t < CHURN_THREADS; t++)
            for (unsigned i = 0; i < CHURN_BLOCKS; i++)
                if (churn_blocks[t][i]) {
                    if (((unsigned char *)churn_blocks[t][i])[0] != t) {
                        printf("corrupt: churn block %u/%u\n", t, i);
                        atomic_fetch_add(&corrupt, 1);
                    }
                    free(churn_blocks[t][i]);
                    churn_blocks[t][i] = NULL;
                    freed++;
                }
    }
    printf("churn: %u rounds, %lu blocks freed after their threads exited\n",
           CHURN_ROUNDS, freed);
    unsigned long bad = atomic_load(&corrupt);
    printf("corrupt blocks: %lu\n", bad);
    return (tm_probe_report() || bad) ? 1 : 0;
}
