/*
 * fuzz_options.c -- libFuzzer target for the environment settings.
 *
 * The input is an environment: entries split at NUL or newline.  An entry
 * whose first byte is 0x01..0x1f names a known variable (the rest of the
 * entry is its value), so the fuzzer reaches every setting without having
 * to guess the names; tests/fuzz/options.dict helps as well.  After
 * options_parse every field must be in its documented range and every
 * string terminated; each value is also fed to the typed parsers and to
 * expand_path, and the number parsers are checked against strtoull.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "settings.h"

#define MAX_ENTRIES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
    "TIERMEM_LAYOUT", "SH_ARENA_LAYOUT", "TIERMEM_STACK_DEPTH",
    "TIERMEM_WRAPPERS", "TIERMEM_DEFAULT_TIER", "TIERMEM_DEFAULT_NODE",
    "SH_DEFAULT_NODE", "TIERMEM_MODE", "TIERMEM_SMALL_SIZE",
    "TIERMEM_BIG_SMALL_THRESHOLD", "SH_BIG_SMALL_THRESHOLD",
    "TIERMEM_MAX_ARENAS", "SH_MAX_ARENAS", "TIERMEM_MAX_SITES",
    "SH_MAX_SITES", "TIERMEM_GUIDANCE", "SH_GUIDANCE_FILE",
    "TIERMEM_OUTPUT_DIR", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK",
    "SLURM_PROCID", "TIERMEM_LOG", "TIERMEM_TIERS", "TIERMEM_BOGUS",
    "SH_PROFILE_ALL",
};
#define NNAMES (sizeof names / sizeof names[0])


static bool terminated(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

static void check_options(const options_t *o)
{
    if (o->layout > TM_LAYOUT_BIG_SMALL || o->stack_depth < 1 ||
        o->stack_depth > TM_MAX_STACK_DEPTH || o->nwrappers > TM_MAX_WRAPPERS)
        abort();
    for (unsigned i = 0; i < o->nwrappers; i++) {
        const char *w = o->wrappers[i];
        if (!terminated(w, TM_WRAPPER_NAME_MAX) || w[0] == '\0' ||
            strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_.$:") != strlen(w))
            abort();
    }
    const target_t *t = &o->default_target;
    if (t->index > 63 || t->mode < TM_MODE_BIND ||
        t->mode > TM_MODE_INTERLEAVE ||
        (t->kind != TM_TARGET_TIER && t->kind != TM_TARGET_NODE))
        abort();
    if (o->big_small_threshold == 0 || o->max_arenas < 1 ||
        o->max_arenas > 4000 || o->max_sites < 16 || o->max_sites > 1048576)
        abort();
    if (!terminated(o->guidance, TM_PATH_MAX) ||
        !terminated(o->output_dir, TM_PATH_MAX) || o->rank < -1)
        abort();
}

/* parse_ulong agrees with strtoull on plain digit strings. */
static void check_numbers(const char *v)
{
    unsigned long u;
    size_t sz;
    bool digits = v[0] != '\0' && strspn(v, "0123456789") == strlen(v);
    errno = 0;
    unsigned long long ref = digits ? strtoull(v, NULL, 10) : 0;
    bool fits = digits && errno != ERANGE && ref <= ULONG_MAX;
    bool ok = parse_ulong(v, 0, ULONG_MAX, &u);
    if (ok != fits || (ok && u != ref))
        abort();
    if (parse_ulong(v, 5, 100, &u) && (u < 5 || u > 100))
        abort();
    if (digits && parse_size(v, &sz) != fits)
        abort();
    if (digits && fits && parse_size(v, &sz) && sz != ref)
        abort();
}

static void check_value(const char *v, int rank)
{
    static const char *const words[] = {"per-site", "per-thread",
                                        "big-small"};
    char out[1024];
    size_t sizes[] = {1, 7, 64, sizeof out};
    check_numbers(v);
    int e = parse_enum(v, words, 3);
    if (e < -1 || e > 2)
        abort();
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        memset(out, 'X', sizeof out);
        bool ok = expand_path(v, rank, 12345, "exe", out, sizes[i]);
        if (!terminated(out, sizes[i]) || (!ok && out[0] != '\0'))
            abort();
    }
}

/* Split the input into entries; a leading byte 1..NNAMES picks a name. */
static size_t build_env(const uint8_t *data, size_t size, char *store,
                        char **env)
{
    size_t n = 0, at = 0, i = 0;
    while (i <= size && n < MAX_ENTRIES) {
        env[n++] = store + at;
        if (i < size && data[i] >= 1 && data[i] <= NNAMES) {
            const char *name = names[data[i++] - 1];
            size_t len = strlen(name);
            memcpy(store + at, name, len);
            store[at + len] = '=';
            at += len + 1;
        }
        while (i < size && data[i] != '\0' && data[i] != '\n')
            store[at++] = (char)data[i++];
        store[at++] = '\0';
        i++;
    }
    env[n] = NULL;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *env[MAX_ENTRIES + 1];
    if (size > 65536)
        return 0;
    char *store = malloc(size + 1 + MAX_ENTRIES * 40);
    if (store == NULL)
        return 0;
    size_t n = build_env(data, size, store, env);
    options_t o;
    options_parse(env, &o);
    check_options(&o);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(env[i], '=');
        check_value(eq != NULL ? eq + 1 : env[i], o.rank);
    }
    free(store);
    return 0;
}
