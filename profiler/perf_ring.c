/*
 * perf_ring.c -- reading the records of a perf_event mmap ring buffer.
 *
 * The kernel writes records at data_head and we consume from data_tail;
 * both are free-running 64-bit byte counters, the position in the data area
 * is counter & (data_size - 1).  We read data_head with acquire (the
 * records before it are then visible), walk the records, and publish
 * data_tail with release (the kernel may then overwrite what we read).
 *
 * Nothing here allocates: the header and the few fields we use are
 * copied out with a wrap-aware copy, so a record that wraps around the end
 * of the data area is reassembled field by field, without a bounce buffer
 * as large as the largest record (65535 bytes): we never need more than
 * the 8-byte fields up to the sample address.  Every length is checked
 * against what lies between tail and head: a corrupt ring costs its
 * remaining records, never an out-of-bounds read or an endless loop.
 */
#include "config.h"

#include <linux/perf_event.h>
#include <string.h>

#include "profiler.h"

/* The kernel's half of the x86-64 address space: the top bit set, with
 * 4-level and 5-level page tables alike (a user address can pass 2^47
 * with 5 levels, so the top bit is the test, not the 4-level limit). */
#define PERF_RING_KERNEL_HALF ((uint64_t)1 << 63)

/* Copy len bytes starting at free-running position pos, wrapping. */
static void perf_ring_copy(const perf_ring_t *ring, uint64_t pos, void *dst,
                           size_t len)
{
    const unsigned char *data =
        (const unsigned char *)ring->base + os_page_size();
    size_t off = (size_t)(pos & (ring->data_size - 1));
    size_t first = ring->data_size - off;
    if (first >= len) {
        memcpy(dst, data + off, len);
        return;
    }
    memcpy(dst, data + off, first);
    memcpy((unsigned char *)dst + first, data, len - first);
}

/* Where a field sits in a sample record's body (after the header), given
 * the attr's sample_type; the fields before it come in the kernel's
 * order: IDENTIFIER, IP, TID (u32 pid, u32 tid), TIME, ADDR. */
static size_t perf_ring_tid_offset(uint64_t sample_type)
{
    size_t off = 0;
    if (sample_type & PERF_SAMPLE_IDENTIFIER)
        off += 8;
    if (sample_type & PERF_SAMPLE_IP)
        off += 8;
    return off;
}

static size_t perf_ring_addr_offset(uint64_t sample_type)
{
    size_t off = perf_ring_tid_offset(sample_type);
    if (sample_type & PERF_SAMPLE_TID)
        off += 8;
    if (sample_type & PERF_SAMPLE_TIME)
        off += 8;
    return off;
}

/* Is the record another process's?  Every record carries its pid with
 * PERF_SAMPLE_TID: where the kernel refused inherit_thread (before 5.13)
 * a forked child, and what it execs, writes into the parent's rings, and
 * its addresses mean nothing in the parent's address space. */
static bool perf_ring_foreign(const perf_ring_t *ring, uint64_t pos,
                              size_t size)
{
    if (ring->owner_pid == 0 || !(ring->sample_type & PERF_SAMPLE_TID))
        return false;
    size_t off = sizeof(struct perf_event_header) +
                 perf_ring_tid_offset(ring->sample_type);
    if (size < off + sizeof(uint32_t))
        return false; /* too short: the address check calls it malformed */
    uint32_t pid;
    perf_ring_copy(ring, pos + off, &pid, sizeof pid);
    return pid != ring->owner_pid;
}

/* A sample record: deliver its address.  false = too short (malformed). */
static bool perf_ring_sample(const perf_ring_t *ring, uint64_t pos,
                             size_t size, const prof_sink_t *sink,
                             perf_ring_counts_t *counts)
{
    if (!(ring->sample_type & PERF_SAMPLE_ADDR)) {
        counts->no_addr++; /* nothing we can use, but not wrong */
        return true;
    }
    size_t off = sizeof(struct perf_event_header) +
                 perf_ring_addr_offset(ring->sample_type);
    if (size < off + sizeof(uint64_t))
        return false;
    if (perf_ring_foreign(ring, pos, size)) {
        counts->foreign++;
        return true;
    }
    uint64_t addr;
    perf_ring_copy(ring, pos + off, &addr, sizeof addr);
    if (addr == 0) {
        counts->no_addr++; /* the PMU gave no address (a non-memory op) */
        return true;
    }
    if (ring->user_only && (addr & PERF_RING_KERNEL_HALF)) {
        counts->kernel++;
        return true;
    }
    counts->samples++;
    if (sink != NULL && sink->sample != NULL)
        sink->sample(sink->ctx, (uintptr_t)addr, 1);
    return true;
}

/* LOST {id, lost} or LOST_SAMPLES {lost}: count and report. */
static bool perf_ring_lost(const perf_ring_t *ring, uint64_t pos, size_t size,
                           size_t field, const prof_sink_t *sink,
                           perf_ring_counts_t *counts)
{
    size_t off = sizeof(struct perf_event_header) + field;
    if (size < off + sizeof(uint64_t))
        return false;
    uint64_t n;
    perf_ring_copy(ring, pos + off, &n, sizeof n);
    counts->lost += n;
    if (n != 0 && sink != NULL && sink->lost != NULL)
        sink->lost(sink->ctx, n);
    return true;
}

/* One record at pos of the given header; false = malformed. */
static bool perf_ring_record(const perf_ring_t *ring, uint64_t pos,
                             const struct perf_event_header *h,
                             const prof_sink_t *sink,
                             perf_ring_counts_t *counts)
{
    switch (h->type) {
    case PERF_RECORD_SAMPLE:
        return perf_ring_sample(ring, pos, h->size, sink, counts);
    case PERF_RECORD_LOST:
        return perf_ring_lost(ring, pos, h->size, 8, sink, counts);
    case PERF_RECORD_LOST_SAMPLES:
        return perf_ring_lost(ring, pos, h->size, 0, sink, counts);
    case PERF_RECORD_THROTTLE:
        counts->throttles++;
        return true;
    case PERF_RECORD_UNTHROTTLE:
        counts->unthrottles++;
        return true;
    default:
        counts->other++;
        return true;
    }
}

uint64_t perf_ring_drain(perf_ring_t *ring, const prof_sink_t *sink,
                         perf_ring_counts_t *counts)
{
    struct perf_event_mmap_page *meta = ring->base;
    uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = meta->data_tail; /* only we write it */
    uint64_t before = counts->samples;

    /* More than the ring holds between tail and head cannot be real data
     * (the kernel never overruns an unread tail): drop it all. */
    if (head - tail > ring->data_size) {
        counts->malformed++;
        tail = head;
    }
    while (tail != head) {
        uint64_t avail = head - tail;
        struct perf_event_header h;
        if (avail < sizeof h) {
            counts->malformed++;
            break;
        }
        perf_ring_copy(ring, tail, &h, sizeof h);
        if (h.size < sizeof h || h.size > avail ||
            !perf_ring_record(ring, tail, &h, sink, counts)) {
            counts->malformed++;
            break;
        }
        tail += h.size;
    }
    /* Whatever broke the walk, the rest is unreadable: consume it all so
     * the kernel can write again. */
    __atomic_store_n(&meta->data_tail, head, __ATOMIC_RELEASE);
    return counts->samples - before;
}
