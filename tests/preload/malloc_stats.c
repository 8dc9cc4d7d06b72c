/*
 * malloc_stats.c -- glibc's heap statistics calls (mallinfo2, mallinfo,
 * malloc_info, malloc_stats, malloc_trim, mallopt) see the program's
 * blocks, under the preload and without it.
 *
 * stdout holds only properties that hold for glibc and for tiermem alike
 * ("uordblks grew by ...: yes"); the figures themselves differ.  Without
 * the preload library's versions, glibc's would report the blocks tiermem
 * hands out as an empty heap, and these lines would say "no".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSMALL 4000
#define SMALL 1000
#define NLARGE 4
#define LARGE (1u << 20)

static const char *yes(bool b) { return b ? "yes" : "no"; }

/* A small well-formedness check: tags nest and close, attributes are
 * name="value", nothing but whitespace and text between tags. */
static bool xml_well_formed(const char *s)
{
    char stack[32][32];
    int depth = 0, roots = 0;
    while (*s) {
        if (*s != '<') {
            if (depth == 0 && *s != '\n' && *s != ' ')
                return false;
            s++;
            continue;
        }
        bool closing = s[1] == '/';
        s += closing ? 2 : 1;
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz_-0123456789");
        if (n == 0 || n >= sizeof stack[0])
            return false;
        char name[32];
        memcpy(name, s, n);
        name[n] = '\0';
        s += n;
        while (*s == ' ') { /* attributes */
            s++;
            size_t an = strspn(s, "abcdefghijklmnopqrstuvwxyz_-");
            if (an == 0 || s[an] != '=' || s[an + 1] != '"')
                return false;
            const char *end = strchr(s + an + 2, '"');
            if (end == NULL || memchr(s + an + 2, '<', (size_t)(end - s - an - 2)))
                return false;
            s = end + 1;
        }
        bool empty = s[0] == '/' && s[1] == '>';
        if (!empty && s[0] != '>')
            return false;
        s += empty ? 2 : 1;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                return false;
            depth--;
        } else if (!empty) {
            if (depth == 0)
                roots++;
            if (depth == 32)
                return false;
            strcpy(stack[depth++], name);
        }
    }
    return depth == 0 && roots == 1;
}

static char *malloc_info_text(int options, int *rc)
{
    FILE *f = tmpfile();
    if (f == NULL)
        return NULL;
    *rc = malloc_info(options, f);
    long len = ftell(f);
    char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (text != NULL) {
        rewind(f);
        size_t got = fread(text, 1, (size_t)len, f);
        text[got] = '\0';
    }
    fclose(f);
    return text;
}

/* malloc_stats writes to stderr: catch it in a file. */
static bool malloc_stats_summary(void)
{
    char path[] = "/tmp/tm_malloc_stats.XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    if (fd < 0 || saved < 0)
        return false;
    unlink(path);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    malloc_stats();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strstr(buf, "in use bytes") != NULL &&
           strstr(buf, "system bytes") != NULL;
}

/* mallinfo is deprecated (its int fields wrap), but programs still call
 * it: the preload library's must saturate, not wrap. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

int main(void)
{
    static char *small[NSMALL], *large[NLARGE];
    struct mallinfo2 before = mallinfo2();
    struct mallinfo old_before = mallinfo();
    for (int i = 0; i < NSMALL; i++) {
        small[i] = malloc(SMALL);
        if (small[i] == NULL)
            return 2;
        memset(small[i], i, SMALL);
    }
    struct mallinfo2 mid = mallinfo2();
    struct mallinfo old_mid = mallinfo();
    size_t n = (size_t)NSMALL * SMALL;
    printf("uordblks grew by at least 90%% of %zu bytes in small blocks: %s\n",
           n, yes(mid.uordblks >= before.uordblks + n / 10 * 9));
    printf("mallinfo's uordblks grew too: %s\n",
           yes((size_t)old_mid.uordblks >= (size_t)old_before.uordblks + n / 10 * 9));
    printf("arena holds uordblks: %s\n", yes(mid.arena >= mid.uordblks));

    for (int i = 0; i < NLARGE; i++) {
        large[i] = malloc(LARGE);
        if (large[i] == NULL)
            return 2;
        memset(large[i], i, LARGE);
    }
    struct mallinfo2 after = mallinfo2();
    printf("hblks grew by %d and hblkhd by at least %d MiB: %s\n", NLARGE,
           NLARGE * (int)(LARGE >> 20),
           yes(after.hblks >= mid.hblks + NLARGE &&
               after.hblkhd >= mid.hblkhd + (size_t)NLARGE * LARGE));

    int rc = -1;
    char *xml = malloc_info_text(0, &rc);
    printf("malloc_info returned 0: %s\n", yes(rc == 0));
    printf("malloc_info is well-formed XML: %s\n",
           yes(xml != NULL && xml_well_formed(xml)));
    free(xml);
    xml = malloc_info_text(1, &rc);
    printf("malloc_info with options 1 returns EINVAL: %s\n", yes(rc == EINVAL));
    free(xml);

    printf("malloc_stats printed a summary to stderr: %s\n",
           yes(malloc_stats_summary()));

    printf("mallopt(M_ARENA_MAX, 4) = 1: %s\n", yes(mallopt(M_ARENA_MAX, 4) == 1));
    printf("mallopt(M_MMAP_THRESHOLD, 1 MiB) = 1: %s\n",
           yes(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1));

    for (int i = 0; i < NSMALL; i++)
        free(small[i]);
    for (int i = 0; i < NLARGE; i++)
        free(large[i]);
    int t = malloc_trim(0);
    printf("malloc_trim returned 0 or 1: %s\n", yes(t == 0 || t == 1));
    /* and the heap still works */
    char *p = malloc(100);
    printf("malloc after malloc_trim: %s\n", yes(p != NULL));
    free(p);
    return 0;
}
