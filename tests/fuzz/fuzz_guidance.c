/*
 * fuzz_guidance.c -- libFuzzer target for the guidance file parser.
 *
 * The input is the file's bytes, exactly: libFuzzer's buffer has no NUL
 * after it, so AddressSanitizer catches any read past the end.  After
 * parsing, the rules must be sorted, unique, in range, and each one found
 * by guidance_find; keys read from the input must look up without harm.
 * The log is formatted at debug level and written to /dev/null, so every
 * message's formatting runs too.
 */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sites.h"
#include "sites.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static bool rule_ok(const guidance_rule_t *r)
{
    return r->target.index <= 63 &&
           (r->target.kind == TM_TARGET_TIER ||
            r->target.kind == TM_TARGET_NODE) &&
           r->target.mode >= TM_MODE_BIND &&
           r->target.mode <= TM_MODE_INTERLEAVE &&
           (!r->by_id || r->key <= INT32_MAX);
}

static bool before(const guidance_rule_t *a, const guidance_rule_t *b)
{
    return a->by_id != b->by_id ? b->by_id : a->key < b->key;
}

static void check_rules(const guidance_t *g)
{
    if (g->count > g->cap || (g->count > 0 && g->rules == NULL))
        abort();
    for (size_t i = 0; i < g->count; i++) {
        const guidance_rule_t *r = &g->rules[i];
        if (!rule_ok(r) || (i > 0 && !before(&g->rules[i - 1], r)))
            abort();
        if (guidance_find(g, r->by_id, r->key) != r)
            abort();
    }
}

/* Look up every 8-byte window of the input as a key and an id. */
static void probe(const guidance_t *g, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 8 <= size && i < 512; i += 8) {
        uint64_t key;
        memcpy(&key, data + i, sizeof key);
        for (int by_id = 0; by_id < 2; by_id++) {
            const guidance_rule_t *r = guidance_find(g, by_id, key);
            if (r != NULL && (r->key != key || r->by_id != by_id))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    guidance_t g;
    memset(&g, 0, sizeof g);
    long n = guidance_parse((const char *)data, size, "fuzz", &g);
    if (n < 0 ? g.count != 0 || g.rules != NULL : (size_t)n != g.count)
        abort();
    check_rules(&g);
    probe(&g, data, size);
    guidance_free(&g);
    if (g.rules != NULL || g.count != 0 || g.cap != 0)
        abort();
    return 0;
}
