/*
 * fuzz_node_list.c -- libFuzzer target for the kernel node-list parser
 * ("0-2,5": sysfs "online", one TIERMEM_TIERS tier) in arena/node_sysfs.c.
 *
 * The input is the list's bytes, exactly.  A list accepted must give at
 * most max ids, each range ascending; and parsing the same bytes twice
 * gives the same ids (no hidden state).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned a[MAX_IDS], b[MAX_IDS], na = 0, nb = 0;
    const char *s = (const char *)data;
    bool ok = node_list_parse(s, s + size, a, MAX_IDS, &na);
    if (ok && na > MAX_IDS)
        abort();
    if (node_list_parse(s, s + size, b, MAX_IDS, &nb) != ok)
        abort();
    if (ok && (na != nb || memcmp(a, b, na * sizeof *a) != 0))
        abort();
    return 0;
}
