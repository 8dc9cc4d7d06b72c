#!/usr/bin/env bash
# probe_interior_free.sh -- free, realloc and malloc_usable_size of a pointer
# into a block (issue 12, defect 12).
#
# usage: probe_interior_free.sh BUILD_DIR WORK_DIR
#
# A program frees p+8, p+16, p+4096 ... of blocks of several sizes (small
# classes, a page, slab classes above a page, large blocks) under the
# preload library, and checks that each such call changed nothing: realloc
# fails with ENOMEM, malloc_usable_size says 0, the block keeps its bytes
# and no later allocation overlaps it; then it frees the blocks properly.
# glibc would abort on such a free, so there is no plain run to compare
# with.  The checks: the program exits 0 having done every case, and the
# log holds the report exactly once (it is rate-limited to one line).
# Only offsets the documented rule catches are used (doc/sites.md, "Start-
# up, re-entry and odd pointers"): p+16 of a 48-byte block is a region
# start for the rule, and freeing it would corrupt the heap.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"

if [ ! -f "$preload" ]; then
    say "no $preload"
    fail_probe "interior free: preload library present"
fi

cat >"$work/interior_free.c" <<'EOF'
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, cases;

/* Nothing handed out later may overlap [p, p + size). */
static void check_untouched(const char *p, size_t size)
{
    char *others[32];
    for (int i = 0; i < 32; i++) {
        others[i] = malloc(size);
        if (others[i] != NULL && others[i] < p + size && others[i] + size > p) {
            printf("size %zu: a new block %p overlaps the live one %p\n", size,
                   (void *)others[i], (const void *)p);
            failures++;
        }
    }
    for (size_t i = 0; i < size; i++)
        if (p[i] != (char)(size + i)) {
            printf("size %zu: byte %zu of the live block changed\n", size, i);
            failures++;
            break;
        }
    for (int i = 0; i < 32; i++)
        free(others[i]);
}

static void one_case(size_t size, size_t off)
{
    char *p = malloc(size);
    if (p == NULL) {
        printf("malloc(%zu) failed\n", size);
        failures++;
        return;
    }
    for (size_t i = 0; i < size; i++)
        p[i] = (char)(size + i);
    cases++;
    free(p + off);
    errno = 0;
    if (realloc(p + off, size * 2) != NULL || errno != ENOMEM) {
        printf("size %zu: realloc(p + %zu) did not fail with ENOMEM\n", size,
               off);
        failures++;
    }
    if (malloc_usable_size(p + off) != 0) {
        printf("size %zu: malloc_usable_size(p + %zu) is not 0\n", size, off);
        failures++;
    }
    check_untouched(p, size);
    if (malloc_usable_size(p) < size) {
        printf("size %zu: the block's usable size changed\n", size);
        failures++;
    }
    free(p);
}

int main(void)
{
    static const struct {
        size_t size, off[3];
    } cases_of[] = {
        {64, {8, 16, 32}},             /* a power-of-two class */
        {100, {8, 24, 40}},            /* class 112: 16-byte alignment */
        {4096, {8, 16, 2048}},         /* a page */
        {6000, {16, 4096, 4096 + 64}}, /* class 6144: 3-page slabs */
        {8192, {16, 4096, 8000}},      /* class 8192: 2-page slabs */
        {20000, {16, 4096, 16384}},    /* large */
        {100000, {48, 4096, 65536}},
        {3u << 20, {16, 4096, 1u << 20}},
    };
    for (size_t i = 0; i < sizeof cases_of / sizeof cases_of[0]; i++)
        for (int k = 0; k < 3; k++)
            one_case(cases_of[i].size, cases_of[i].off[k]);
    /* still working: many ordinary allocations and frees */
    for (int round = 0; round < 1000; round++) {
        void *q = malloc((size_t)(round % 97) * 37 + 1);
        free(q);
    }
    printf("%d cases, %d failures\n", cases, failures);
    return failures != 0;
}
EOF

compile_c "$work/interior_free" "$work/interior_free.c" -std=c11 -O2 -Wall -Wextra ||
    fail_probe "interior free: the test program builds"

log=$work/tiermem.log
rm -f "$log"
timeout -k 5 60 env LD_PRELOAD="$preload" TIERMEM_LOG_FILE="$log" \
    "$work/interior_free" >"$work/out" 2>"$work/err"
rc=$?
if [ $rc -eq 0 ] && grep -qx '24 cases, 0 failures' "$work/out"; then
    pass "interior free: ignored, the block intact, the program goes on (24 cases)"
else
    say "exit status $rc; output:"
    cat "$work/out" "$work/err" | head -12 | detail_more
    fail "interior free: ignored, the block intact, the program goes on"
fi

n=$(grep -c 'not the start of a block' "$log" 2>/dev/null)
if [ "${n:-0}" -eq 1 ] && grep -q 'free(0x[0-9a-f]*): not the start of a block of arena [0-9]' "$log"; then
    pass "interior free: logged once, naming the call, pointer and arena"
else
    say "${n:-0} report line(s) in $log (want 1, from free):"
    head -5 "$log" 2>/dev/null | detail_more
    fail "interior free: logged once, naming the call, pointer and arena"
fi
exit 0
