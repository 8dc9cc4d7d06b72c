#!/usr/bin/env bash
# test_tiermem_sites.sh -- the site table names source lines.
#
# Builds a small program with -g, runs it under the preload library with
# TIERMEM_OUTPUT_DIR, and checks that the table the runtime wrote has the
# program's two allocation sites (by their frames' functions) with exact
# counters, and that the tiermem-sites tool turns their frames into the right
# file:line.  Then feeds the tool a hostile table whose offset field is
# shell code: nothing may run, the table is refused naming its line, exit
# status 1.  Skipped (77) when the library is built with a sanitizer,
# which cannot be preloaded into an uninstrumented program.
set -uo pipefail
builddir=${TM_BUILDDIR:-$(pwd)}
srcdir=${srcdir:-$(dirname "$0")/../..}
lib=$builddir/.libs/libtiermem-preload.so
tool=${TM_SITES_TOOL:-$builddir/tiermem-sites} # TM_SITES_TOOL: try another
[ -f "$lib" ] || { echo "no $lib"; exit 1; }
# Sanitizer builds: gcc links libasan.so (ldd shows it); clang leaves the
# TSan runtime to the executable (undefined __tsan_* symbols).  Captured,
# not piped into grep -q: pipefail + SIGPIPE would lie.
deps=$(ldd "$lib"; nm -D --undefined-only "$lib")
if [[ "$deps" =~ lib(asan|tsan|ubsan)|__(tsan|asan|ubsan)_ ]]; then
    echo "sanitizer build: preloading is not possible; skipped"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/prog.c" <<'PROG'
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) void *make_big(size_t n)
{
    return malloc(n); /* line 5 */
}
int main(int argc, char **argv)
{
    void *p[2];
    for (int i = 0; i < argc + 1; i++) /* not unrolled: one call site */
        p[i] = make_big(1 << 20); /* line 11 */
    void *c = calloc(1, 1 << 16); /* line 12 */
    printf("%d\n", p[0] != p[1] && c != NULL && argv[0] != NULL);
    free(p[0]);
    free(c);
    return 0;
}
PROG
${CC:-cc} -g -O1 -fno-inline -o "$work/prog" "$work/prog.c" || exit 1
mkdir "$work/out"
out=$(TIERMEM_OUTPUT_DIR=$work/out LD_PRELOAD=$lib "$work/prog") || { echo "prog failed"; exit 1; }
[ "$out" = 1 ] || { echo "prog printed '$out'"; exit 1; }
table=$(ls "$work"/out/tiermem-sites.prog.*.txt 2>/dev/null | head -1)
[ -n "$table" ] || { echo "no site table written"; exit 1; }
fail=0
check() { # description command...
    if "${@:2}"; then echo "PASS: $1"; else echo "FAIL: $1"; fail=1; fi
}
check "format header" grep -q '^# tiermem site table, format 2' "$table"
annotated=$("$tool" "$table")
echo "$annotated" | grep -E '^(site|frame) ' | grep -v 'lib' | head -20
# make_big's site: 2 allocations of 1 MiB, one freed.
big=$(echo "$annotated" | grep -B1 -E '^frame 0 .*/prog .*make_big.* at .*prog\.c:5$' | head -1)
check "make_big site found with file:line" test -n "$big"
check "make_big counters" bash -c "echo '$big' | grep -qE 'allocs 2 frees 1 live 1048576 peak 2097152 bytes 2097152'"
check "main's frame 1 of make_big at prog.c:11" bash -c "echo \"\$1\" | grep -qE '^frame 1 .*/prog .*main.* at .*prog\.c:11$'" _ "$annotated"
check "calloc site at prog.c:12" bash -c "echo \"\$1\" | grep -qE '^frame 0 .*/prog .*main.* at .*prog\.c:12$'" _ "$annotated"

# An allocation whose caller the compiler inlined: the frame's code is
# helper's, inlined into main; the tool prints the chain (addr2line -i).
cat >"$work/inl.c" <<'PROG'
#include <stdio.h>
#include <stdlib.h>
static inline __attribute__((always_inline)) void *helper(size_t n)
{
    return calloc(n, 4); /* line 5 */
}
int main(void)
{
    void *p = helper(1 << 16); /* line 9 */
    printf("%d\n", p != NULL);
    free(p);
    return 0;
}
PROG
${CC:-cc} -g -O2 -o "$work/inl" "$work/inl.c" || exit 1
mkdir "$work/inl-out"
TIERMEM_OUTPUT_DIR=$work/inl-out TIERMEM_STACK_DEPTH=1 LD_PRELOAD=$lib \
    "$work/inl" >/dev/null || { echo "inl failed"; exit 1; }
itable=$(ls "$work"/inl-out/tiermem-sites.inl.*.txt 2>/dev/null | head -1)
iann=$("$tool" "$itable" 2>&1)
echo "$iann" | grep '^frame 0 .*/inl '
check "inlined call: helper at inl.c:5, inlined in main at inl.c:9" \
    bash -c "echo \"\$1\" | grep -qE '^frame 0 .*/inl .* at .*inl\.c:5 \(helper\), inlined in main at .*inl\.c:9\$'" _ "$iann"

# A table from someone else: its fields are data, never code.
mkdir "$work/cwd"
printf '%s\n' '# tiermem site table, format 1' \
    'site 1 key 0x1 arena 1 allocs 1 frees 0 live 1 peak 1 bytes 1' \
    'frame 0 /bin/ls BASH_VERSINFO[$(touch${IFS}PWNED)] ?' >"$work/hostile.txt"
(cd "$work/cwd" && "$tool" "$work/hostile.txt") >"$work/h.out" 2>"$work/h.err"
status=$?
check "hostile table: no command ran" test ! -e "$work/cwd/PWNED"
check "hostile table: exit status 1" test "$status" -eq 1
check "hostile table: refused naming its line 3" grep -qF "hostile.txt:3: " "$work/h.err"
check "hostile table: nothing printed for it" test ! -s "$work/h.out"
exit $fail
