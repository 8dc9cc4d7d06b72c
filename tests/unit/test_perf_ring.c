/*
 * test_perf_ring.c -- perf_ring_drain on synthetic rings.
 *
 * A buffer laid out like the kernel's mmap (one metadata page, then the
 * data area) is filled by a reference writer that wraps records around the
 * end exactly as the kernel does; the reader must deliver every sample
 * address once, in order, count the other records, survive garbage, and
 * always leave data_tail == data_head.
 */
#include "config.h"

#include <linux/perf_event.h>
#include <stdlib.h>
#include <unistd.h>

#include "profiler.h"
#include "../tm_test.h"

#define DATA_SIZE 4096
#define MAX_SEEN 100000

/* ---------------------------------------------------------------- sink */

static uintptr_t seen[MAX_SEEN];
static size_t nseen;
static uint64_t lost_sum, lost_calls, lost_last;

static void sink_sample(void *ctx, uintptr_t addr, uint32_t weight)
{
    (void)ctx;
    CHECK(weight == 1);
    if (nseen < MAX_SEEN)
        seen[nseen++] = addr;
}

static void sink_lost(void *ctx, uint64_t n)
{
    (void)ctx;
    lost_sum += n;
    lost_calls++;
    lost_last = n;
}

static const prof_sink_t sink = {sink_sample, sink_lost, NULL};

static void sink_reset(void)
{
    nseen = 0;
    lost_sum = lost_calls = lost_last = 0;
}

/* ---------------------------------------------------------------- ring */

typedef struct test_ring {
    perf_ring_t ring;
    uint64_t head; /* the writer's head, published by publish() */
} test_ring_t;

static struct perf_event_mmap_page *meta(test_ring_t *t)
{
    return t->ring.base;
}

/* A ring whose counters both start at `start` (free-running). */
static void ring_init(test_ring_t *t, uint64_t sample_type, uint64_t start)
{
    size_t page = os_page_size();
    void *p = NULL;
    if (posix_memalign(&p, page, page + DATA_SIZE) != 0)
        abort();
    memset(p, 0xA5, page + DATA_SIZE); /* garbage where nothing was written */
    memset(p, 0, sizeof(struct perf_event_mmap_page));
    memset(&t->ring, 0, sizeof t->ring); /* no pid filter, kernel kept */
    t->ring.base = p;
    t->ring.data_size = DATA_SIZE;
    t->ring.sample_type = sample_type;
    t->head = start;
    meta(t)->data_head = start;
    meta(t)->data_tail = start;
}

static void ring_free(test_ring_t *t)
{
    free(t->ring.base);
}

static void ring_put(test_ring_t *t, const void *src, size_t len)
{
    unsigned char *data = (unsigned char *)t->ring.base + os_page_size();
    for (size_t i = 0; i < len; i++)
        data[(t->head + i) & (DATA_SIZE - 1)] = ((const unsigned char *)src)[i];
    t->head += len;
}

static void ring_put_u64(test_ring_t *t, uint64_t v)
{
    ring_put(t, &v, sizeof v);
}

static void ring_header(test_ring_t *t, uint32_t type, uint16_t size)
{
    struct perf_event_header h = {.type = type, .misc = 0, .size = size};
    ring_put(t, &h, sizeof h);
}

static void publish(test_ring_t *t)
{
    meta(t)->data_head = t->head;
}

/* Size of a sample record with the ring's sample_type. */
static uint16_t sample_size(uint64_t st)
{
    uint64_t fields = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP |
                      PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR |
                      PERF_SAMPLE_ID | PERF_SAMPLE_STREAM_ID |
                      PERF_SAMPLE_CPU | PERF_SAMPLE_PERIOD;
    return (uint16_t)(8 + 8 * __builtin_popcountll(st & fields));
}

/* A sample record with every field sample_type asks for, in the kernel's
 * order; fields other than addr and pid/tid hold junk. */
static void write_sample_of(test_ring_t *t, uint32_t pid, uint64_t addr)
{
    uint64_t st = t->ring.sample_type;
    ring_header(t, PERF_RECORD_SAMPLE, sample_size(st));
    static const uint64_t order[] = {
        PERF_SAMPLE_IDENTIFIER, PERF_SAMPLE_IP, PERF_SAMPLE_TID,
        PERF_SAMPLE_TIME, PERF_SAMPLE_ADDR, PERF_SAMPLE_ID,
        PERF_SAMPLE_STREAM_ID, PERF_SAMPLE_CPU, PERF_SAMPLE_PERIOD};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (st & order[i])
            ring_put_u64(t, order[i] == PERF_SAMPLE_ADDR  ? addr
                            : order[i] == PERF_SAMPLE_TID ? (uint64_t)pid |
                                                                (uint64_t)(pid + 1) << 32
                                                          : 0xdead000000000000ull + order[i]);
}

static void write_sample(test_ring_t *t, uint64_t addr)
{
    write_sample_of(t, 4242, addr);
}

static void write_lost(test_ring_t *t, uint64_t n)
{
    ring_header(t, PERF_RECORD_LOST, 24);
    ring_put_u64(t, 42); /* id */
    ring_put_u64(t, n);
}

static void write_lost_samples(test_ring_t *t, uint64_t n)
{
    ring_header(t, PERF_RECORD_LOST_SAMPLES, 16);
    ring_put_u64(t, n);
}

/* THROTTLE/UNTHROTTLE {time, id, stream_id}, or any other type. */
static void write_other(test_ring_t *t, uint32_t type, uint16_t size)
{
    ring_header(t, type, size);
    for (uint16_t i = 8; i < size; i += 8)
        ring_put_u64(t, 0x1111111111111111ull * i);
}

static const uint64_t ST_DEFAULT = PERF_SAMPLE_IP | PERF_SAMPLE_TID |
                                   PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR;

static uint64_t drain(test_ring_t *t, perf_ring_counts_t *c)
{
    memset(c, 0, sizeof *c);
    sink_reset();
    uint64_t n = perf_ring_drain(&t->ring, &sink, c);
    CHECK(meta(t)->data_tail == meta(t)->data_head);
    return n;
}

/* ---------------------------------------------------------------- tests */

static void test_plain(void)
{
    test_ring_t t;
    ring_init(&t, ST_DEFAULT, 0);
    for (uint64_t i = 1; i <= 10; i++)
        write_sample(&t, 0x1000 * i);
    publish(&t);
    perf_ring_counts_t c;
    CHECK(drain(&t, &c) == 10);
    CHECK(c.samples == 10 && c.malformed == 0 && c.other == 0);
    REQUIRE_VOID(nseen == 10);
    for (size_t i = 0; i < 10; i++)
        CHECK(seen[i] == 0x1000 * (i + 1));
    /* an empty ring: nothing, tail stays */
    CHECK(drain(&t, &c) == 0 && nseen == 0);
    CHECK(meta(&t)->data_tail == 10 * 40);
    ring_free(&t);
}

/* Records that straddle the end of the data area, at several cut points
 * (including one that splits the header), and counters that have wrapped
 * the data area many times. */
static void test_wrap(void)
{
    uint64_t starts[] = {DATA_SIZE - 16, DATA_SIZE - 8, DATA_SIZE - 24,
                         DATA_SIZE - 4, 5 * DATA_SIZE + DATA_SIZE - 32,
                         (1ull << 40) + DATA_SIZE - 8};
    for (size_t k = 0; k < sizeof starts / sizeof starts[0]; k++) {
        test_ring_t t;
        ring_init(&t, ST_DEFAULT, starts[k]);
        write_sample(&t, 0xAAAA000);
        write_sample(&t, 0xBBBB000);
        write_sample(&t, 0xCCCC000);
        publish(&t);
        CHECK(meta(&t)->data_head > starts[k]);
        perf_ring_counts_t c;
        CHECK_MSG(drain(&t, &c) == 3, "start %llu",
                  (unsigned long long)starts[k]);
        CHECK(nseen == 3 && seen[0] == 0xAAAA000 && seen[1] == 0xBBBB000 &&
              seen[2] == 0xCCCC000);
        CHECK(c.malformed == 0);
        ring_free(&t);
    }
    /* head more than 3 * data_size: a ring filled and drained many times */
    test_ring_t t;
    ring_init(&t, ST_DEFAULT, 0);
    uint64_t next = 1, expect = 1;
    perf_ring_counts_t c;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 50; i++) /* 2000 bytes per round */
            write_sample(&t, next++ << 12);
        publish(&t);
        drain(&t, &c);
        for (size_t i = 0; i < nseen; i++)
            CHECK(seen[i] == (expect++ << 12));
    }
    CHECK(meta(&t)->data_head > 3 * DATA_SIZE);
    CHECK(expect == next);
    ring_free(&t);
}

static void test_lost_throttle_other(void)
{
    test_ring_t t;
    ring_init(&t, ST_DEFAULT, DATA_SIZE - 8); /* the LOST record wraps */
    write_lost(&t, 7);
    write_sample(&t, 0x5000);
    write_lost_samples(&t, 5);
    write_other(&t, PERF_RECORD_THROTTLE, 32);
    write_other(&t, PERF_RECORD_UNTHROTTLE, 32);
    write_other(&t, PERF_RECORD_THROTTLE, 32);
    write_other(&t, 99, 24);              /* unknown type */
    write_other(&t, PERF_RECORD_MMAP, 64); /* known, not ours */
    write_sample(&t, 0x6000);
    write_sample(&t, 0);                   /* no address: skipped */
    write_sample(&t, 0x7000);
    publish(&t);
    perf_ring_counts_t c;
    CHECK(drain(&t, &c) == 3);
    CHECK(nseen == 3 && seen[0] == 0x5000 && seen[1] == 0x6000 &&
          seen[2] == 0x7000);
    CHECK(c.lost == 12 && lost_sum == 12 && lost_calls == 2 &&
          lost_last == 5);
    CHECK(c.throttles == 2 && c.unthrottles == 1);
    CHECK(c.other == 2 && c.malformed == 0);
    ring_free(&t);
}

/* The address is found whatever fields precede and follow it. */
static void test_sample_types(void)
{
    const uint64_t before[] = {PERF_SAMPLE_IDENTIFIER, PERF_SAMPLE_IP,
                               PERF_SAMPLE_TID, PERF_SAMPLE_TIME};
    const uint64_t after[] = {0, PERF_SAMPLE_ID, PERF_SAMPLE_CPU,
                              PERF_SAMPLE_ID | PERF_SAMPLE_STREAM_ID |
                                  PERF_SAMPLE_CPU | PERF_SAMPLE_PERIOD};
    for (unsigned mask = 0; mask < 16; mask++)
        for (size_t a = 0; a < 4; a++) {
            uint64_t st = PERF_SAMPLE_ADDR | after[a];
            for (unsigned b = 0; b < 4; b++)
                if (mask & (1u << b))
                    st |= before[b];
            test_ring_t t;
            ring_init(&t, st, DATA_SIZE - 8 * (mask + 1));
            for (uint64_t i = 1; i <= 5; i++)
                write_sample(&t, 0x77000 + i);
            publish(&t);
            perf_ring_counts_t c;
            CHECK_MSG(drain(&t, &c) == 5, "sample_type %#llx",
                      (unsigned long long)st);
            CHECK(nseen == 5 && seen[0] == 0x77001 && seen[4] == 0x77005);
            ring_free(&t);
        }
    /* without ADDR there is nothing to deliver, and nothing wrong */
    test_ring_t t;
    ring_init(&t, PERF_SAMPLE_IP | PERF_SAMPLE_TID, 0);
    write_sample(&t, 0);
    publish(&t);
    perf_ring_counts_t c;
    CHECK(drain(&t, &c) == 0 && c.malformed == 0 && nseen == 0);
    ring_free(&t);
}

static void test_malformed(void)
{
    perf_ring_counts_t c;
    /* size 0 after two good samples: they are delivered, the rest not */
    test_ring_t t;
    ring_init(&t, ST_DEFAULT, 0);
    write_sample(&t, 0x1000);
    write_sample(&t, 0x2000);
    ring_header(&t, PERF_RECORD_SAMPLE, 0);
    write_sample(&t, 0x3000);
    publish(&t);
    CHECK(drain(&t, &c) == 2);
    CHECK(nseen == 2 && c.malformed == 1);
    ring_free(&t);

    /* a size running past head */
    ring_init(&t, ST_DEFAULT, 100);
    write_sample(&t, 0x1000);
    ring_header(&t, PERF_RECORD_SAMPLE, 4000);
    ring_put_u64(&t, 0);
    publish(&t);
    CHECK(drain(&t, &c) == 1 && c.malformed == 1);
    ring_free(&t);

    /* a sample too short to hold its address */
    ring_init(&t, ST_DEFAULT, 0);
    write_other(&t, PERF_RECORD_SAMPLE, 16);
    write_sample(&t, 0x1000);
    publish(&t);
    CHECK(drain(&t, &c) == 0 && c.malformed == 1);
    ring_free(&t);

    /* head - tail larger than the ring, and fewer bytes than a header */
    ring_init(&t, ST_DEFAULT, 0);
    meta(&t)->data_head = 3 * DATA_SIZE;
    CHECK(drain(&t, &c) == 0 && c.malformed == 1);
    meta(&t)->data_head += 4;
    CHECK(drain(&t, &c) == 0 && c.malformed == 1);
    ring_free(&t);
}

/* Random records by the reference writer, never overrunning the reader
 * (as the kernel would not), drained at random points: every sample is
 * delivered exactly once, in order, and every lost count arrives. */
static void test_random(void)
{
    uint64_t rs = 0x9E3779B97F4A7C15ull;
    unsigned rounds = (unsigned)(200 * tm_test_scale()) + 1;
    static uintptr_t expect[MAX_SEEN];
    for (unsigned r = 0; r < rounds; r++) {
        test_ring_t t;
        uint64_t st = ST_DEFAULT | (tm_test_rand(&rs) & 1 ? PERF_SAMPLE_ID : 0);
        ring_init(&t, st, tm_test_rand(&rs) & 0xFFFFFFF8ull);
        size_t nexp = 0, ngot = 0;
        uint64_t lost_exp = 0, lost_got = 0, malformed = 0;
        unsigned steps = 50 + (unsigned)(tm_test_rand(&rs) % 400);
        for (unsigned s = 0; s < steps; s++) {
            uint64_t x = tm_test_rand(&rs);
            uint16_t size = x % 10 < 6 ? sample_size(st)
                          : x % 10 == 6 ? 24 : (uint16_t)(8 + 8 * ((x >> 40) % 25));
            if (t.head + size - meta(&t)->data_tail <= DATA_SIZE &&
                nexp < MAX_SEEN) {
                if (x % 10 < 6) {
                    uintptr_t a = (uintptr_t)((x >> 8) | 1);
                    write_sample(&t, a);
                    expect[nexp++] = a;
                } else if (x % 10 == 6) {
                    write_lost(&t, x >> 50);
                    lost_exp += x >> 50;
                } else {
                    write_other(&t, x % 10 == 7 ? PERF_RECORD_THROTTLE : 77,
                                size);
                }
            }
            if ((x >> 20) % 3 == 0)
                publish(&t);
            if ((x >> 24) % 4 == 0 || s + 1 == steps) {
                if (s + 1 == steps)
                    publish(&t);
                perf_ring_counts_t c;
                drain(&t, &c);
                malformed += c.malformed;
                lost_got += c.lost;
                for (size_t i = 0; i < nseen; i++)
                    if (ngot >= nexp || seen[i] != expect[ngot++])
                        malformed += 1000;
            }
        }
        CHECK_MSG(ngot == nexp && lost_got == lost_exp && malformed == 0,
                  "round %u: %zu of %zu samples, lost %llu of %llu, "
                  "malformed %llu", r, ngot, nexp,
                  (unsigned long long)lost_got, (unsigned long long)lost_exp,
                  (unsigned long long)malformed);
        ring_free(&t);
    }
}

/* The filters: another process's samples (a forked child feeding the
 * parent's ring where inherit_thread was refused), samples with no
 * address, kernel addresses when the event could not exclude them --
 * each counted, none delivered; with no filter set, all delivered. */
static void test_filters(void)
{
    test_ring_t t;
    ring_init(&t, ST_DEFAULT, DATA_SIZE - 20);
    t.ring.owner_pid = 100;
    t.ring.user_only = true;
    write_sample_of(&t, 100, 0x1000);
    write_sample_of(&t, 101, 0x2000);             /* foreign */
    write_sample_of(&t, 100, 0);                  /* no address */
    write_sample_of(&t, 100, 0xffffffff81000000); /* kernel text */
    write_sample_of(&t, 100, (1ull << 47) + 0x1000); /* 5-level user */
    write_sample_of(&t, 7, 0);                    /* foreign first */
    publish(&t);
    perf_ring_counts_t c;
    CHECK(drain(&t, &c) == 2);
    CHECK(c.samples == 2 && c.foreign == 2 && c.no_addr == 1 &&
          c.kernel == 1 && c.malformed == 0);
    REQUIRE_VOID(nseen == 2);
    CHECK(seen[0] == 0x1000 && seen[1] == (1ull << 47) + 0x1000);

    t.ring.owner_pid = 0;
    t.ring.user_only = false;
    write_sample_of(&t, 101, 0x3000);
    write_sample_of(&t, 100, 0xffffffff81000000);
    publish(&t);
    CHECK(drain(&t, &c) == 2 && c.foreign == 0 && c.kernel == 0);
    ring_free(&t);

    /* without PERF_SAMPLE_TID there is no pid to filter on: kept; without
     * PERF_SAMPLE_ADDR every sample is one without an address */
    ring_init(&t, PERF_SAMPLE_IP | PERF_SAMPLE_ADDR, 0);
    t.ring.owner_pid = 100;
    write_sample_of(&t, 101, 0x4000);
    publish(&t);
    CHECK(drain(&t, &c) == 1 && c.foreign == 0);
    ring_free(&t);
    ring_init(&t, PERF_SAMPLE_IP | PERF_SAMPLE_TID, 0);
    write_sample(&t, 0x5000);
    write_sample(&t, 0x6000);
    publish(&t);
    CHECK(drain(&t, &c) == 0 && c.no_addr == 2 && c.malformed == 0);
    ring_free(&t);
}

int main(void)
{
    test_plain();
    test_wrap();
    test_lost_throttle_other();
    test_sample_types();
    test_malformed();
    test_random();
    test_filters();
    return tm_test_done(__FILE__);
}
