#!/usr/bin/env bash
# test_structure.sh -- the folders are layers that point one way, and no
# files call each other round in a circle (scripts/check_structure.py says
# how both are read: includes from the sources, calls from the objects).
#
# Also checks that the checker can fail: a copy of one lower-layer file that
# calls up into sites/ must be refused.
set -uo pipefail
builddir=${TM_BUILDDIR:-$(pwd)}
srcdir=${srcdir:-$(dirname "$0")/../..}
checker=$srcdir/scripts/check_structure.py
command -v python3 >/dev/null || { echo "FAIL: python3 is missing (scripts/deps.sh installs it)"; exit 1; }
command -v nm >/dev/null || { echo "FAIL: nm is missing (binutils)"; exit 1; }
status=0
python3 "$checker" "$srcdir" "$builddir" || status=1

# The checker's own check: an arena file that includes sites.h and calls a
# sites function must give two violations.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/arena" "$work/src/sites" "$work/build/arena" "$work/build/sites"
printf '#include "sites.h"\nvoid site_thing(void);\nvoid arena_thing(void) { site_thing(); }\n' >"$work/src/arena/a.c"
printf '#include "arena.h"\nvoid site_thing(void) {}\n' >"$work/src/sites/s.c"
: >"$work/src/sites/sites.h"
: >"$work/src/arena/arena.h"
cc -c -o "$work/build/arena/a.o" -x c - <<<'void site_thing(void); void arena_thing(void) { site_thing(); }' &&
    cc -c -o "$work/build/sites/s.o" -x c - <<<'void site_thing(void) {}' || {
    echo "FAIL: cannot compile the checker's own probe"; exit 1; }
out=$(python3 "$checker" "$work/src" "$work/build")
if [[ "$out" == *"arena/a.c includes sites/sites.h"* && "$out" == *"arena/a.c calls up into sites/s.c"* ]]; then
    echo "PASS: the checker refuses an upward include and an upward call"
else
    echo "FAIL: the checker let an upward include or call through:"
    echo "$out" | sed 's/^/    /'
    status=1
fi

# ... and a cycle between two files of one folder, unless both say they are
# one concept.
printf '/* b.c */\nvoid c_thing(void);\nvoid b_thing(void) { c_thing(); }\n' >"$work/src/arena/b.c"
printf '/* c.c */\nvoid b_thing(void);\nvoid c_thing(void) { b_thing(); }\n' >"$work/src/arena/c.c"
cc -c -o "$work/build/arena/b.o" "$work/src/arena/b.c" &&
    cc -c -o "$work/build/arena/c.o" "$work/src/arena/c.c" || exit 1
out=$(python3 "$checker" "$work/src" "$work/build")
if [[ "$out" == *"a cycle between files: arena/b.c -> arena/c.c"* ]]; then
    echo "PASS: the checker refuses a cycle between two files"
else
    echo "FAIL: the checker let a cycle through:"; echo "$out" | sed 's/^/    /'
    status=1
fi
sed -i '1s|.*|/* b.c -- one concept with c.c, split for size */|' "$work/src/arena/b.c"
sed -i '1s|.*|/* c.c -- one concept with b.c */|' "$work/src/arena/c.c"
out=$(python3 "$checker" "$work/src" "$work/build")
if [[ "$out" != *"a cycle between files: arena/b.c"* ]]; then
    echo "PASS: a cycle both files declare as one concept is accepted"
else
    echo "FAIL: a declared one-concept pair is still refused"; status=1
fi
exit $status
