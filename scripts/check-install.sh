#!/usr/bin/env bash
# check-install.sh STAGE -- is an installed tiermem usable?  Builds and runs
# a program against the headers, shared library and tiermem.pc that
# `make install DESTDIR=STAGE` put there (PKG_CONFIG_* point into STAGE).
set -euo pipefail
stage=$1
lib=$stage/usr/local/lib
for f in "$lib/libtiermem.so" "$lib/libtiermem-preload.so" \
    "$stage/usr/local/include/tiermem.h" "$lib/pkgconfig/tiermem.pc" \
    "$stage/usr/local/bin/tiermem-sites"; do
    [ -e "$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/use.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <tiermem.h>
int main(void)
{
    tm_placement_t p = tm_placement_node(TM_MODE_BIND, 0);
    tm_arena_t *a = tm_arena_create(&p);
    char *s = a ? tm_arena_malloc(a, 32) : NULL;
    if (!s || tm_arena_of(s) != a)
        return 1;
    strcpy(s, "installed tiermem works");
    puts(s);
    tm_free(s);
    /* a SICM-instrumented program's calls */
    char *t = sh_strdup(3, "sh_* works");
    if (!t || tm_arena_of(t) == NULL)
        return 1;
    puts(t);
    sh_free(t);
    return tm_arena_destroy(a);
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror $(pkg-config --cflags tiermem) "$work/use.c" \
    -o "$work/use" $(pkg-config --libs tiermem)
LD_LIBRARY_PATH=$lib "$work/use"
# only the public API is exported: tm_* and SICM's sh_*; the preload
# library adds the C allocation functions, C++ new/delete (_Z*), glibc's
# heap statistics calls (answered from tiermem's arenas), the exec
# family (which finishes the profile before the image is replaced) and
# jemalloc's malloc_conf (preload/jemalloc_conf.c).
exports() { nm -D --defined-only "$1" | awk '{print $3}'; }
bad=$(exports "$lib/libtiermem.so" | grep -vE '^(tm|sh)_' || true)
if [ -n "$bad" ]; then
    echo "libtiermem.so exports more than tm_*/sh_*: $bad" >&2
    exit 1
fi
bad=$(exports "$lib/libtiermem-preload.so" | grep -vE '^(tm_|sh_|_Z)' |
    grep -vxE 'malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size' |
    grep -vxE 'mallinfo|mallinfo2|malloc_trim|malloc_stats|malloc_info|mallopt' |
    grep -vxE 'execve|execv|execvp|execvpe|execl|execlp|execle|fexecve' |
    grep -vxE 'malloc_conf' || true)
if [ -n "$bad" ]; then
    echo "libtiermem-preload.so exports unexpected symbols: $bad" >&2
    exit 1
fi
out=$(LD_PRELOAD=$lib/libtiermem-preload.so sh -c 'echo preloaded')
[ "$out" = preloaded ] || { echo "the installed preload library fails" >&2; exit 1; }
