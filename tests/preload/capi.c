/*
 * capi.c -- the C allocation API's contract, under the preload and without
 * it: the edge cases a replacement malloc most often gets wrong.
 *
 * stdout is one line per section, the same for any conforming allocator
 * (glibc's behaviour where C leaves a choice, as programs rely on it:
 * malloc(0) and calloc(0, n) give unique non-NULL pointers).  A failed check
 * prints a FAIL line and the exit status is 1.  Under the preload every
 * pointer the API returns, including those libc allocates for us (strdup,
 * getline, open_memstream, asprintf, realpath), must be in a tiermem arena.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tm_probe.h"

static int failures;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            failures++;                                                       \
            printf("FAIL line %d: %s: ", __LINE__, #cond);                    \
            printf(__VA_ARGS__);                                              \
            printf("\n");                                                     \
        }                                                                     \
    } while (0)

/* Read through volatiles, so GCC neither folds the overflowing requests
 * nor warns that they exceed the largest object size. */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_half = SIZE_MAX / 2 + 1;
static volatile size_t v_ptrdiff_max = PTRDIFF_MAX;
static volatile size_t v_2_31 = (size_t)1 << 31;

static size_t page;

static int aligned(const void *p, size_t a)
{
    return (uintptr_t)p % a == 0;
}

/* The alignment malloc owes a request of n bytes: enough for any object of
 * that size with fundamental alignment. */
/* Write every byte, read it back, and check the usable size. */
static void fill_check(unsigned char *p, size_t n, const char *what)
{
    tm_probe_inside_arena(p, what); /* before the writes: fine, p escapes */
    CHECK(malloc_usable_size(p) >= n, "%s: usable %zu < %zu", what,
          malloc_usable_size(p), n);
    memset(p, 0x5c, n);
    for (size_t i = 0; i < n; i += 509)
        if (p[i] != 0x5c) {
            CHECK(0, "%s: byte %zu reads %#x", what, i, p[i]);
            break;
        }
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a,
              y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

static void section_malloc0(void)
{
    enum { N = 256 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        CHECK(p[i] != NULL, "malloc(0) #%d returned NULL", i);
        tm_probe_inside_arena(p[i], "malloc(0)");
    }
    qsort(p, N, sizeof p[0], cmp_ptr);
    int dup = 0;
    for (int i = 1; i < N; i++)
        dup += p[i] == p[i - 1];
    CHECK(dup == 0, "malloc(0) gave %d duplicate pointers", dup);
    for (int i = 0; i < N; i++)
        free(p[i]);
    free(NULL);
    free(NULL);
    printf("malloc(0): %d unique non-NULL pointers; free(NULL) ok\n", N);
}

static const size_t sizes[] = {1, 7, 8, 15, 16, 100, 512, 4095, 4096, 4097,
                               65536, 1u << 20, 5u << 20, 64u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void section_malloc(void)
{
    for (size_t k = 0; k < NSIZES; k++) {
        size_t n = sizes[k];
        unsigned char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu)", n);
        if (!p)
            continue;
        /* glibc aligns every block to max_align_t, even tiny ones */
        CHECK(aligned(p, alignof(max_align_t)), "malloc(%zu) = %p misaligned",
              n, (void *)p);
        fill_check(p, n, "malloc");
        free(p);
    }
    errno = 0;
    CHECK(malloc(v_size_max) == NULL && errno == ENOMEM,
          "malloc(SIZE_MAX): errno %d", errno);
    errno = 0;
    CHECK(malloc(v_ptrdiff_max + 1) == NULL && errno == ENOMEM,
          "malloc(PTRDIFF_MAX+1): errno %d", errno);
    printf("malloc: %zu sizes aligned and usable; huge requests fail with "
           "ENOMEM\n", NSIZES);
}

static void section_calloc(void)
{
    for (size_t k = 0; k < NSIZES; k++) {
        size_t n = sizes[k];
        /* dirty memory of that size first, so a reused block must be
         * cleared by calloc itself */
        unsigned char *d = malloc(n);
        if (d) {
            memset(d, 0xee, n);
            free(d);
        }
        unsigned char *p = (k % 2) ? calloc(n, 1) : calloc(1, n);
        CHECK(p != NULL, "calloc %zu", n);
        if (!p)
            continue;
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i++)
            nonzero += p[i] != 0;
        CHECK(nonzero == 0, "calloc(%zu): %zu bytes not zero", n, nonzero);
        fill_check(p, n, "calloc");
        free(p);
    }
    void *z1 = calloc(0, 16), *z2 = calloc(16, 0);
    CHECK(z1 && z2 && z1 != z2, "calloc with a zero: %p %p", z1, z2);
    tm_probe_inside_arena(z1, "calloc(0, 16)");
    tm_probe_inside_arena(z2, "calloc(16, 0)");
    free(z1);
    free(z2);
    errno = 0;
    CHECK(calloc(v_half, 2) == NULL && errno == ENOMEM,
          "calloc(SIZE_MAX/2+1, 2) overflow: errno %d", errno);
    errno = 0;
    CHECK(calloc(2, v_half) == NULL && errno == ENOMEM,
          "calloc(2, SIZE_MAX/2+1) overflow: errno %d", errno);
    errno = 0;
    CHECK(calloc(v_2_31 << 2, v_2_31) == NULL && errno == ENOMEM,
          "calloc(2^33, 2^31) overflow: errno %d", errno);
    errno = 0;
    CHECK(calloc(1, v_size_max) == NULL && errno == ENOMEM,
          "calloc(1, SIZE_MAX): errno %d", errno);
    printf("calloc: %zu sizes zeroed; zero counts non-NULL; overflow gives "
           "NULL and ENOMEM\n", NSIZES);
}

static int prefix_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 7 + 1))
            return 0;
    return 1;
}

static void pattern(unsigned char *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        p[i] = (unsigned char)(i * 7 + 1);
}

static void section_realloc(void)
{
    static const size_t steps[] = {100, 5000, 100000, 3u << 20, 24u << 20,
                                   200, 10, 4096, 1};
    unsigned char *p = realloc(NULL, 1);
    size_t have = 1;
    CHECK(p != NULL, "realloc(NULL, 1)");
    if (!p)
        return;
    pattern(p, 0, 1);
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        size_t n = steps[k];
        unsigned char *q = realloc(p, n);
        CHECK(q != NULL, "realloc to %zu", n);
        if (!q)
            break;
        p = q;
        size_t keep = have < n ? have : n;
        CHECK(prefix_ok(p, keep), "realloc %zu -> %zu lost data", have, n);
        CHECK(malloc_usable_size(p) >= n, "realloc usable");
        tm_probe_inside_arena(p, "realloc");
        pattern(p, keep, n);
        have = n;
    }
    errno = 0;
    unsigned char *q = realloc(p, v_size_max - 100);
    if (q) { /* p is only used again where realloc failed */
        CHECK(0, "realloc(p, huge) succeeded");
        free(q);
    } else {
        CHECK(errno == ENOMEM, "realloc(p, huge): errno %d", errno);
        CHECK(prefix_ok(p, have), "failed realloc damaged the block");
        free(p);
    }
    /* C leaves realloc(p, 0) to the implementation; glibc frees p and
     * returns NULL, and the preload promises the same (doc/sites.md).
     * Printed, so the plain run's answer is the reference. */
    p = malloc(64);
    q = realloc(p, 0);
    printf("realloc(p, 0) returned %s\n", q ? "a block" : "NULL");
    free(q);
    printf("realloc: grow and shrink through %zu sizes keep the data; huge "
           "fails with ENOMEM and keeps the block\n",
           sizeof steps / sizeof steps[0]);
}

static void section_reallocarray(void)
{
    unsigned char *p = reallocarray(NULL, 10, 100);
    CHECK(p != NULL, "reallocarray(NULL, 10, 100)");
    if (!p)
        return;
    pattern(p, 0, 1000);
    unsigned char *q = reallocarray(p, 1000, 100);
    CHECK(q != NULL, "reallocarray grow");
    if (q)
        p = q;
    CHECK(prefix_ok(p, 1000), "reallocarray grow lost data");
    tm_probe_inside_arena(p, "reallocarray");
    /* p is only used again where reallocarray failed */
    errno = 0;
    q = reallocarray(p, v_half, 2);
    if (q) {
        CHECK(0, "reallocarray(p, SIZE_MAX/2+1, 2) succeeded");
        free(q);
        return;
    }
    CHECK(errno == ENOMEM, "reallocarray overflow: errno %d", errno);
    errno = 0;
    q = reallocarray(p, 3, v_size_max / 2);
    if (q) {
        CHECK(0, "reallocarray(p, 3, SIZE_MAX/2) succeeded");
        free(q);
        return;
    }
    CHECK(errno == ENOMEM, "reallocarray overflow 2: errno %d", errno);
    CHECK(prefix_ok(p, 1000), "failed reallocarray damaged the block");
    free(p);
    printf("reallocarray: grows; overflow gives NULL and ENOMEM and keeps "
           "the block\n");
}

static void section_posix_memalign(void)
{
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 1000,
                                 (size_t)3 << 20};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        void *p = NULL;
        int rc = posix_memalign(&p, bad[k], 64);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) = %d", bad[k], rc);
        if (rc == 0)
            free(p);
    }
    static const size_t szs[] = {1, 100, 4096, 100000};
    unsigned count = 0;
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 22); a *= 2)
        for (size_t k = 0; k < sizeof szs / sizeof szs[0]; k++) {
            void *p = NULL;
            int rc = posix_memalign(&p, a, szs[k]);
            CHECK(rc == 0 && p, "posix_memalign(%zu, %zu) = %d", a, szs[k],
                  rc);
            if (rc)
                continue;
            CHECK(aligned(p, a), "posix_memalign(%zu) gave %p", a, p);
            fill_check(p, szs[k], "posix_memalign");
            free(p);
            count++;
        }
    void *p = NULL;
    int rc = posix_memalign(&p, 64, v_size_max - 100);
    CHECK(rc == ENOMEM, "posix_memalign(64, huge) = %d", rc);
    printf("posix_memalign: EINVAL for %zu bad alignments; %u aligned "
           "blocks; ENOMEM when huge\n", sizeof bad / sizeof bad[0], count);
}

static void section_aligned_alloc(void)
{
    static const size_t pairs[][2] = {{16, 32},     {64, 640},
                                      {64, 100},    {4096, 8192},
                                      {1u << 16, 1u << 16},
                                      {1u << 21, 1u << 21}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        void *p = aligned_alloc(pairs[k][0], pairs[k][1]);
        CHECK(p && aligned(p, pairs[k][0]), "aligned_alloc(%zu, %zu) = %p",
              pairs[k][0], pairs[k][1], p);
        if (!p)
            continue;
        fill_check(p, pairs[k][1], "aligned_alloc");
        free(p);
    }
    errno = 0;
    CHECK(aligned_alloc(64, v_size_max - 100) == NULL && errno == ENOMEM,
          "aligned_alloc huge: errno %d", errno);
    printf("aligned_alloc: %zu pairs aligned; ENOMEM when huge\n",
           sizeof pairs / sizeof pairs[0]);
}

static void section_memalign_valloc(void)
{
    static const size_t szs[] = {1, 3000, 70000};
    for (size_t a = 16; a <= ((size_t)1 << 20); a *= 4)
        for (size_t k = 0; k < sizeof szs / sizeof szs[0]; k++) {
            void *p = memalign(a, szs[k]);
            CHECK(p && aligned(p, a), "memalign(%zu, %zu) = %p", a, szs[k],
                  p);
            if (!p)
                continue;
            fill_check(p, szs[k], "memalign");
            free(p);
        }
    /* glibc's memalign rounds an alignment that is not a power of two up
     * to the next one; so does the preload (doc/sites.md). */
    static const size_t odd[][2] = {{24, 32}, {48, 64}, {100, 128},
                                    {3000, 4096}};
    for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
        void *p = memalign(odd[k][0], 100);
        CHECK(p && aligned(p, odd[k][1]), "memalign(%zu, 100) = %p",
              odd[k][0], p);
        if (p) {
            fill_check(p, 100, "memalign odd");
            free(p);
        }
    }
    static const size_t vs[] = {1, 4096, 4097, 10000};
    for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
        size_t n = vs[k];
        void *p = valloc(n);
        CHECK(p && aligned(p, page), "valloc(%zu) = %p", n, p);
        if (p) {
            fill_check(p, n, "valloc");
            free(p);
        }
        p = pvalloc(n);
        size_t whole = (n + page - 1) / page * page;
        CHECK(p && aligned(p, page), "pvalloc(%zu) = %p", n, p);
        if (p) {
            /* pvalloc rounds the request up to whole pages */
            fill_check(p, whole, "pvalloc");
            free(p);
        }
    }
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu",
          malloc_usable_size(NULL));
    printf("memalign (odd alignments rounded up), valloc, pvalloc: "
           "aligned, pvalloc whole pages; malloc_usable_size(NULL) == 0\n");
}

/* Memory libc allocates on our behalf, through the interposed malloc. */
static void section_libc(void)
{
    char big[12000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *s = strdup(big);
    CHECK(s && strcmp(s, big) == 0, "strdup");
    tm_probe_inside_arena(s, "strdup");
    free(s);

    char *a = NULL;
    CHECK(asprintf(&a, "%s-%d", big, 42) == (int)sizeof big + 2, "asprintf");
    tm_probe_inside_arena(a, "asprintf");
    free(a);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL, "open_memstream");
    if (f) {
        for (int i = 0; i < 3000; i++)
            fprintf(f, "%d,", i);
        fclose(f);
        CHECK(len == 13890, "open_memstream length %zu", len);
        tm_probe_inside_arena(buf, "open_memstream");
        /* read it back line by line through getline's malloc'd buffer */
        f = fmemopen(buf, len, "r");
        char *line = NULL;
        size_t cap = 0;
        ssize_t got = f ? getdelim(&line, &cap, ',', f) : -1;
        CHECK(got == 2 && line && strcmp(line, "0,") == 0, "getdelim");
        tm_probe_inside_arena(line, "getdelim");
        free(line);
        if (f)
            fclose(f);
        free(buf);
    }
    char *rp = realpath("/", NULL);
    CHECK(rp && strcmp(rp, "/") == 0, "realpath");
    tm_probe_inside_arena(rp, "realpath");
    free(rp);
    printf("libc-allocated memory (strdup, asprintf, open_memstream, "
           "getdelim, realpath) freed by us\n");
}

/* Many live blocks at once: none may overlap another. */
static void section_many(void)
{
    enum { N = 3000 };
    static unsigned char *p[N];
    static size_t n[N];
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        n[i] = 1 + (s >> 33) % ((s >> 20) % 10 ? 600 : 90000);
        p[i] = malloc(n[i]);
        CHECK(p[i] != NULL, "malloc %zu", n[i]);
        if (!p[i])
            return;
        memset(p[i], (int)(i & 0xff), n[i]);
    }
    size_t bad = 0;
    for (int i = 0; i < N; i++) {
        for (size_t j = 0; j < n[i]; j++)
            if (p[i][j] != (unsigned char)(i & 0xff)) {
                bad++;
                break;
            }
    }
    CHECK(bad == 0, "%zu blocks overwritten by others", bad);
    for (int i = 0; i < N; i += 2)
        free(p[i]);
    for (int i = 1; i < N; i += 2)
        free(p[i]);
    printf("many: %d live blocks, none overlapping\n", N);
}

static int static_object;

int main(void)
{
    tm_probe_init();
    page = (size_t)sysconf(_SC_PAGESIZE);
    int on_stack = 0;
    tm_probe_outside_arena(&on_stack, "stack variable");
    tm_probe_outside_arena(&static_object, "static variable");
    tm_probe_outside_arena("literal", "string literal");
    void *map = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map != MAP_FAILED) {
        tm_probe_outside_arena(map, "mmap page");
        munmap(map, 1 << 16);
    }

    section_malloc0();
    section_malloc();
    section_calloc();
    section_realloc();
    section_reallocarray();
    section_posix_memalign();
    section_aligned_alloc();
    section_memalign_valloc();
    section_libc();
    section_many();
    printf("failed checks: %d\n", failures);
    return (tm_probe_report() || failures) ? 1 : 0;
}
