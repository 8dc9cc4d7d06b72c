/*
 * fuzz_proc_vma.c -- libFuzzer target for the /proc readers
 * (profiler/proc_vma_scan.c): smaps and numa_maps text, which the kernel
 * writes but whose file names a user chooses.
 *
 * The first byte picks the format and how the text is cut into pieces (the
 * reader is fed in pieces of any size, as read(2) returns them); the rest
 * is the text.  Every record emitted must have a sane range (smaps: lo <
 * hi), byte counts that fit their kilobyte source, node counts only on
 * nodes below TM_MAX_NODES; and feeding the same text in one piece must
 * give the same records.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "../../profiler/refs_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct digest {
    uint64_t n, sum;
} digest_t;

static void check_record(void *ctx, const vma_record_t *r)
{
    digest_t *d = ctx;
    if (r->hi != 0 && r->hi <= r->lo)
        abort();
    if ((r->referenced | r->resident | r->anon_huge) & 1023)
        abort(); /* kB converted to bytes */
    d->n++;
    d->sum = d->sum * 31 + r->lo + r->hi + r->referenced + r->resident +
             r->page_size;
    for (unsigned i = 0; i < TM_MAX_NODES; i++)
        d->sum += r->node_pages[i] * (i + 1);
}

static digest_t scan(vma_scan_kind_t kind, const char *text, size_t len,
                     size_t piece)
{
    digest_t d = {0, 0};
    vma_scan_t s;
    vma_scan_init(&s, kind, check_record, &d);
    for (size_t off = 0; off < len; off += piece)
        vma_scan_feed(&s, text + off, len - off < piece ? len - off : piece);
    vma_scan_finish(&s);
    if (s.records != d.n)
        abort();
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    vma_scan_kind_t kind = data[0] & 1 ? VMA_SCAN_NUMA_MAPS : VMA_SCAN_SMAPS;
    size_t piece = 1 + (data[0] >> 1);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    digest_t a = scan(kind, text, len, piece);
    digest_t b = scan(kind, text, len, len ? len : 1);
    if (a.n != b.n || a.sum != b.sum)
        abort();
    return 0;
}
