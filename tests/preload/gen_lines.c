/*
 * gen_lines.c -- write a deterministic file of random text lines, the input
 * for the sort test.
 *
 * usage: gen_lines SEED BYTES > file
 *
 * The same SEED and BYTES give the same bytes on every machine (xorshift64*,
 * no libc randomness), so a failure can be reproduced exactly.  Lines mix
 * short and long ones, words from a small vocabulary (so sort -k and uniq
 * see many equal keys) and random letters (so most lines are distinct).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state;

static uint64_t next(void)
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
}

static const char *const words[] = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    "hotel", "india", "juliet", "kilo", "lima", "mike", "november",
    "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform",
    "victor", "whiskey", "xray", "yankee", "zulu",
};
#define NWORDS (sizeof words / sizeof words[0])

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SEED BYTES\n", argv[0]);
        return 2;
    }
    state = strtoull(argv[1], NULL, 0) * 0x9E3779B97F4A7C15ULL + 1;
    unsigned long long want = strtoull(argv[2], NULL, 0), written = 0;
    static const char letters[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char line[512];
    while (written < want) {
        size_t n = 0;
        uint64_t r = next();
        /* a number field, so numeric sorts have work */
        n += (size_t)snprintf(line + n, sizeof line - n, "%llu ",
                              (unsigned long long)(r % 1000000));
        n += (size_t)snprintf(line + n, sizeof line - n, "%s ",
                              words[(r >> 20) % NWORDS]);
        /* 1..200 random characters; a few long lines */
        size_t len = 1 + (size_t)((r >> 32) % ((r >> 60) ? 40 : 200));
        for (size_t i = 0; i < len; i++)
            line[n++] = letters[next() % (sizeof letters - 1)];
        line[n++] = '\n';
        if (fwrite(line, 1, n, stdout) != n)
            return 1;
        written += n;
    }
    return fflush(stdout) ? 1 : 0;
}
