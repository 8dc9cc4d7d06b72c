/*
 * fuzz_cc_note.c -- libFuzzer target for the compiler site notes
 * (sites/cc_notes.c): the ELF note area an instrumented object carries in
 * .note.tiermem, read from every loaded object as hostile data.
 *
 * The input is a PT_NOTE segment's bytes.  Every record handed on must lie
 * inside the input, with its strings NUL-terminated inside it and its id
 * tagged as a compiler id; walking the same bytes twice gives the same
 * records (no hidden state); and one note's descriptor parsed directly
 * must agree with what the walk made of it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "sites.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    const uint8_t *lo, *hi;
    size_t n;
    uint64_t sum;
} seen_t;

static void check_string(const seen_t *s, const char *p)
{
    const uint8_t *u = (const uint8_t *)p;
    if (u < s->lo || u >= s->hi || memchr(p, '\0', (size_t)(s->hi - u)) == NULL)
        abort();
}

static void each(const cc_desc_t *d, void *arg)
{
    seen_t *s = arg;
    if ((d->id >> 62) != 2)
        abort();
    check_string(s, d->file);
    check_string(s, d->function);
    check_string(s, d->callee);
    check_string(s, d->chain);
    s->n++;
    s->sum = s->sum * 31 + d->id + d->line + d->column;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen_t a = {data, data + size, 0, 0}, b = a;
    for (size_t align = 4; align <= 8; align += 4) {
        a.n = a.sum = b.n = b.sum = 0;
        size_t na = cc_notes_walk(data, size, align, "fuzz", each, &a);
        size_t nb = cc_notes_walk(data, size, align, "fuzz", each, &b);
        if (na != nb || a.n != b.n || a.sum != b.sum)
            abort();
    }
    /* the input as one descriptor */
    uint32_t nsites = 0;
    seen_t c = {data, data + size, 0, 0};
    if (cc_note_parse(data, size, &nsites, each, &c) == NULL &&
        c.n != nsites)
        abort();
    return 0;
}
