/*
 * fuzz_zoneinfo.c -- libFuzzer target for the /proc/zoneinfo parser that
 * gives each node's room for a migration (arena/node_room.c).
 *
 * The input is the file's bytes, exactly.  A node without a figure has a
 * room of 0; the result says whether any node got one; and parsing the
 * same bytes twice gives the same figures (no hidden state).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t a[TM_MAX_NODES], b[TM_MAX_NODES], ka, kb;
    const char *s = (const char *)data;
    bool ok = node_room_parse(s, size, 4096, a, &ka);
    if (ok != (ka != 0))
        abort();
    for (unsigned n = 0; n < TM_MAX_NODES; n++)
        if (!(ka >> n & 1) && a[n] != 0)
            abort();
    if (node_room_parse(s, size, 4096, b, &kb) != ok || ka != kb ||
        memcmp(a, b, sizeof a) != 0)
        abort();
    return 0;
}
