#!/usr/bin/env bash
# check-install.sh STAGE -- is an installed tiermem usable?  Builds and runs
# a program against the headers, shared library and tiermem.pc that
# `make install DESTDIR=STAGE` put there (PKG_CONFIG_* point into STAGE).
set -euo pipefail
stage=$1
lib=$stage/usr/local/lib
for f in "$lib/libtiermem.so" "$stage/usr/local/include/tiermem.h" \
    "$lib/pkgconfig/tiermem.pc"; do
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
    return tm_arena_destroy(a);
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror $(pkg-config --cflags tiermem) "$work/use.c" \
    -o "$work/use" $(pkg-config --libs tiermem)
LD_LIBRARY_PATH=$lib "$work/use"
# only the public API is exported
if nm -D --defined-only "$lib/libtiermem.so" | awk '{print $3}' |
    grep -v '^tm_' | grep -q .; then
    echo "libtiermem.so exports non-tm_ symbols:" >&2
    nm -D --defined-only "$lib/libtiermem.so" | awk '{print $3}' | grep -v '^tm_' >&2
    exit 1
fi
