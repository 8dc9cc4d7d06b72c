#!/usr/bin/env bash
# run.sh [BUILD_DIR] -- the compiler path's tests: tests/cc/prog built with
# tiermem-cc in two directories at -O0 and -O2 must carry the same, unique
# site ids, each with file:line; a call through a pointer stays a call of
# malloc; the programs run against libtiermem, whose site table names the
# compiler sites by file:line.  tests/cc/news.cpp runs every operator new
# through tiermem-c++; tests/cc/alloc.f90 every kind of ALLOCATE through
# tiermem-fortran (skipped, visibly, without flang-new-16).  TIERMEM_CC_STUB=1 links tests/cc's stub runtime
# instead.  Exits 77 (skipped) when the build has no compiler path.
set -euo pipefail
build=$(cd "${1:-.}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=$build/cc/tiermem-cc
cxx=$build/cc/tiermem-c++
export TIERMEM_CC_PLUGIN=$build/cc/tiermem-pass.so
if [ ! -x "$cc" ] || [ ! -f "$TIERMEM_CC_PLUGIN" ]; then
    echo "SKIP: $build has no compiler path (no tiermem-cc or plugin)"
    exit 77
fi
# The programs link the runtime, which a sanitizer build instruments: a
# program without the sanitizer's own runtime first cannot load it.  The
# release build runs these tests.
if grep -q '^CFLAGS = .*-fsanitize' "$build/Makefile"; then
    echo "SKIP: tests/cc (this build's runtime is sanitizer-instrumented; the release build runs them)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # check WHAT COMMAND...: one line per check
    if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi
}
notes() { python3 "$here/read_notes.py" "$1" | sort -u; }

# the runtime: libtiermem from this build (TIERMEM_CC_STUB=1: tests/cc's
# stub instead, to test the pass alone)
if [ "${TIERMEM_CC_STUB:-0}" = 1 ]; then
    clang=$(sed -n 's/^LLVM_CLANG = //p' "$build/Makefile")
    clangxx=$(sed -n 's/^LLVM_CLANGXX = //p' "$build/Makefile")
    mkdir -p "$tmp/stub"
    "$clang" -O2 -fPIC -c "$here/stub_runtime.c" -o "$tmp/stub/c.o"
    "$clangxx" -O2 -fPIC -c "$here/stub_runtime_cxx.cpp" -o "$tmp/stub/cxx.o"
    "$clangxx" -shared -o "$tmp/stub/libtiermem-preload.so" "$tmp/stub/c.o" "$tmp/stub/cxx.o"
    export TIERMEM_CC_LIBDIR=$tmp/stub
else
    export TIERMEM_CC_LIBDIR=$build/.libs
fi
export LD_LIBRARY_PATH=$TIERMEM_CC_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# grid_alloc and xmalloc are wrappers defined in alloc.c: named, main.c's
# calls of them are sites too (bracketed with the thread's wrapper context)
export TIERMEM_CC_WRAPPERS=grid_alloc,xmalloc
build_prog() { # build_prog DIR OPT: a copy of prog built inside DIR
    mkdir -p "$1"
    cp "$here"/prog/*.[ch] "$1"
    (cd "$1" &&
        TIERMEM_CC_VERBOSE=1 "$cc" "$2" -c main.c 2>verbose.txt &&
        TIERMEM_CC_VERBOSE=1 "$cc" "$2" -c alloc.c 2>>verbose.txt &&
        "$cc" "$2" main.o alloc.o -o prog -Wl,--gc-sections)
}
build_prog "$tmp/one" -O0
build_prog "$tmp/two/deeper/still" -O2
notes "$tmp/one/prog" >"$tmp/one.sites"
notes "$tmp/two/deeper/still/prog" >"$tmp/two.sites"
echo "sites of prog (-O0 in $tmp/one):"
sed 's/^/  /' "$tmp/one.sites"

nsites=$(wc -l <"$tmp/one.sites")
nids=$(cut -d' ' -f1 "$tmp/one.sites" | sort -u | wc -l)
check "prog has sites ($nsites) and the note survives --gc-sections" [ "$nsites" -ge 10 ]
check "the ids are identical across directories and -O0/-O2" cmp -s "$tmp/one.sites" "$tmp/two.sites"
check "each id names one site ($nids ids, $nsites sites)" [ "$nids" = "$nsites" ]
check "every site has file:line" \
    awk '{ split($2, w, ":"); if (w[1] == "" || w[2] + 0 == 0) exit 1 }' "$tmp/one.sites"
check "the ids have top bits 10" awk '$1 !~ /^0x[89ab]/ { exit 1 }' "$tmp/one.sites"
check "the macro's two calls on one line are two sites" \
    [ "$(grep -c ' main malloc -$' "$tmp/one.sites")" -ge 2 ]
check "the static inline function's strdup is in alloc.h" grep -q ' alloc.h:[0-9]*:[0-9]* copy_name strdup' "$tmp/one.sites"
# wrappers in their own file resolve through clones: alloc.c's own calls
# of grid_alloc are sites with the whole chain; in another file (main.c)
# through TIERMEM_CC_WRAPPERS, with the wrapper's name alone as the chain
check "each call of a two-level wrapper in its file is a site" \
    [ "$(grep -c ' make_fields grid_alloc grid_alloc>xmalloc>malloc$' "$tmp/one.sites")" = 2 ]
check "each call of a named wrapper of another file is a site (main.c:16, 17, 20)" \
    [ "$(grep -c ' main.c:\(1[67]:18 main grid_alloc grid_alloc\|20:15 main xmalloc xmalloc\)$' "$tmp/one.sites")" = 3 ]
check "the build summary counts the calls of other files' wrappers" \
    grep -q "main.c: .*; 3 calls of other files' wrappers;" "$tmp/one/verbose.txt"
check "the build summary counts the call through a pointer" \
    grep -q '1 calls through pointers left alone; 2 wrappers: xmalloc (named), grid_alloc (named)' "$tmp/one/verbose.txt"
check "the call through a pointer still reaches malloc" \
    sh -c "nm '$tmp/one/alloc.o' | grep -q ' U malloc\$' &&
           cd '$tmp/one' && '$cc' -S -emit-llvm -o - alloc.c | grep -q 'call ptr %'"
check "objects keep no debug info the user did not ask for" \
    sh -c "! readelf -S '$tmp/one/main.o' | grep -q debug_"
mkdir -p "$tmp/one/out"
if [ "${TIERMEM_CC_STUB:-0}" = 1 ]; then report=TIERMEM_STUB_REPORT=1; else report=TIERMEM_LOG=warn; fi
out=$(cd "$tmp/one" && env TIERMEM_OUTPUT_DIR="$tmp/one/out" "$report" ./prog 2>&1)
echo "prog: $out" | tr '\n' ' '; echo
check "prog runs" sh -c "echo '$out' | grep -q 'tier 11 sites ran'"
check "prog logs no warning" sh -c "! echo '$out' | grep -q 'warning'"
if [ "${TIERMEM_CC_STUB:-0}" != 1 ]; then
    table=$(ls "$tmp"/one/out/tiermem-sites.* 2>/dev/null | head -1)
    echo "site table: ${table:-none}"
    [ -z "$table" ] || grep -E '^(site|cc) ' "$table" | sed 's/^/  /' | head -40
    # every compiler site of the program that allocated is in the table,
    # named by its file:line from the note, with no debug info
    check "the runtime's site table has compiler sites" \
        sh -c "[ -n '$table' ] && grep -q ' kind cc\$' '$table'"
    check "compiler sites are named by the note (alloc.c, main.c)" \
        sh -c "grep -q '^cc alloc.c [0-9]' '$table' && grep -q '^cc main.c [0-9]' '$table'"
    check "the wrapper chain is in the table" \
        grep -q '^cc alloc.c 2[23] 10 make_fields grid_alloc grid_alloc>xmalloc>malloc$' "$table"
    # main.c's calls of alloc.c's wrappers: the blocks are counted at
    # main.c's sites, the outermost call, not at the sites inside alloc.c
    check "blocks allocated through main.c's grid_alloc calls are counted at main.c:16, 17" \
        sh -c "[ \$(grep -B1 '^cc main.c 1[67] 18 main grid_alloc grid_alloc\$' '$table' | grep -c ' allocs [1-9]') = 2 ]"
    check "... and main.c's xmalloc call at main.c:20" \
        sh -c "grep -B1 '^cc main.c 20 15 main xmalloc xmalloc\$' '$table' | grep -q ' allocs [1-9]'"
    check "... and not at the sites inside the wrappers (alloc.c:6, 16)" \
        sh -c "! grep -B1 -E '^cc alloc.c (6 15 xmalloc malloc|16 22 grid_alloc xmalloc) ' '$table' | grep -q ' allocs [1-9]'"
    check "no note field was refused (no ? in cc lines)" \
        sh -c "! grep '^cc ' '$table' | grep -q ' ?'"
    check "the call through a pointer stays a stack-keyed site" \
        sh -c "grep -q ' kind stack\$' '$table'"
fi

# out of tree, from two build directories, with TIERMEM_CC_ROOT: the same
# ids as the in-tree copy's main.c
for d in "$tmp/oot1" "$tmp/x/y/oot2"; do
    mkdir -p "$d"
    (cd "$d" && TIERMEM_CC_ROOT=$here/prog "$cc" -c "$(realpath --relative-to="$d" "$here/prog/main.c")" -o main.o)
done
notes "$tmp/oot1/main.o" >"$tmp/oot1.sites"
notes "$tmp/x/y/oot2/main.o" >"$tmp/oot2.sites"
notes "$tmp/one/main.o" >"$tmp/one.main.sites"
check "out-of-tree builds with TIERMEM_CC_ROOT give the same ids" \
    sh -c "cmp -s '$tmp/oot1.sites' '$tmp/oot2.sites' && cmp -s '$tmp/oot1.sites' '$tmp/one.main.sites'"

# C++: every operator new, an invoke's unwind edge, nothrow's null
for opt in -O0 -O2; do
    (cd "$tmp" && "$cxx" "$opt" "$here/news.cpp" -o "news$opt")
    out=$("$tmp/news$opt" 2>&1) && rc=0 || rc=$?
    echo "news $opt: $out (exit $rc)"
    check "C++ news $opt: aligned, nothrow null, bad_alloc caught" [ "$rc" = 0 ]
done
kinds=$(notes "$tmp/news-O0" | awk '{ print $4 }' | sort -u | tr '\n' ' ')
echo "C++ callees with sites: $kinds"
check "C++: all eight operator new variants are sites" \
    [ "$(notes "$tmp/news-O0" | awk '$4 ~ /^_Zn[wa]m/ { print $4 }' | sort -u | wc -l)" = 8 ]

# C++: calls of a wrapper of another file through invokes (one of which
# unwinds): the context is left on both edges, so the malloc after them
# is its own site
if [ "${TIERMEM_CC_STUB:-0}" != 1 ]; then
    mkdir -p "$tmp/wrap/out"
    (cd "$tmp/wrap" && TIERMEM_CC_WRAPPERS=xalloc "$cxx" -O2 "$here/wrap_lib.cpp" "$here/wrap_main.cpp" -o wrap)
    out=$(cd "$tmp/wrap" && env TIERMEM_OUTPUT_DIR="$tmp/wrap/out" TIERMEM_LOG=warn ./wrap 2>&1) && rc=0 || rc=$?
    echo "wrap: $out" | tr '\n' ' '; echo
    table=$(ls "$tmp"/wrap/out/tiermem-sites.* 2>/dev/null | head -1)
    check "C++ invokes of another file's wrapper: run, one caught" sh -c "[ $rc = 0 ] && echo '$out' | grep -q '^caught 1 '"
    check "C++ invokes of another file's wrapper are sites with allocations" \
        sh -c "[ \$(grep -B1 -E '^cc .*wrap_main.cpp 1[24] [0-9]+ main xalloc xalloc\$' '$table' | grep -c ' allocs [1-9]') = 2 ]"
    check "after an unwind the context is gone: the next malloc is its own site" \
        sh -c "grep -B1 -E '^cc .*wrap_main.cpp 15 [0-9]+ main malloc -\$' '$table' | grep -q ' allocs 1 '"
fi

# Fortran: tests/cc/alloc.f90 through tiermem-fortran (flang-new-16).
# Flang 16 emits no debug info: ALLOCATE of an intrinsic-type array is an
# inline malloc with line 0 (its own site all the same); ALLOCATE of a
# derived type calls _FortranAAllocatableAllocate, whose line argument the
# site takes, and whose malloc inside libFortranRuntime takes the id
# announced by tm_cc_next_site.
fc=$build/cc/tiermem-fortran
flang=$(sed -n 's/^LLVM_FLANG = //p' "$build/Makefile")
if [ "${TIERMEM_CC_STUB:-0}" = 1 ]; then
    echo "SKIP: Fortran (the stub runtime has no tm_cc_next_site)"
elif [ ! -x "$flang" ]; then
    echo "SKIP: Fortran (no flang-new-16: apt-get install flang-16 libflang-16-dev)"
else
    mkdir -p "$tmp/f90/out"
    cp "$here/alloc.f90" "$tmp/f90/"
    (cd "$tmp/f90" && "$fc" -O2 alloc.f90 -o alloc)
    notes "$tmp/f90/alloc" >"$tmp/f90.sites"
    echo "sites of alloc.f90:"
    sed 's/^/  /' "$tmp/f90.sites"
    out=$(cd "$tmp/f90" && env TIERMEM_OUTPUT_DIR="$tmp/f90/out" TIERMEM_LOG=warn ./alloc 2>&1)
    echo "alloc.f90: $out"
    check "the Fortran program runs and prints its sums" \
        [ "$out" = "fortran 100000.0 120000.0 7.0 12502500.0 100001 10000.0" ]
    # the three ALLOCATEs of derived types (lines 27-29), by their line
    for line in 27 28 29; do
        check "ALLOCATE of a derived type at alloc.f90:$line is a site" \
            grep -q " alloc.f90:$line:0 _QQmain _FortranAAllocatableAllocate -\$" "$tmp/f90.sites"
    done
    # lines 25, 26 and 30 (a, b, bg%items) and the temporaries and
    # reallocations of lines 38-41: each malloc is its own site, line 0
    check "the intrinsic-type ALLOCATEs and reallocations are sites" \
        [ "$(grep -c ' alloc.f90:0:0 _QQmain \(malloc\|realloc\) -$' "$tmp/f90.sites")" -ge 5 ]
    check "each Fortran site has its own id" \
        [ "$(cut -d' ' -f1 "$tmp/f90.sites" | sort -u | wc -l)" = "$(wc -l <"$tmp/f90.sites")" ]
    table=$(ls "$tmp"/f90/out/tiermem-sites.* 2>/dev/null | head -1)
    [ -z "$table" ] || grep -E '^cc ' "$table" | sed 's/^/  /'
    check "the runtime's site table has kind cc sites named alloc.f90" \
        sh -c "[ -n '$table' ] && grep -q ' kind cc\$' '$table' && grep -q '^cc alloc.f90 ' '$table'"
    # the derived types' blocks were allocated by the flang runtime's own
    # malloc, and counted at the ALLOCATE's site
    check "the flang runtime's malloc took the announced ids (allocs 1 at lines 27-29)" \
        sh -c "[ \$(grep -B1 '^cc alloc.f90 2[789] 0 _QQmain _FortranAAllocatableAllocate -\$' '$table' | grep -c ' allocs 1 ') = 3 ]"
fi

# a misspelt wrapper name: one warning at the link, which knows the program
msg=$(cd "$tmp/one" && TIERMEM_CC_WRAPPERS=grid_alloc,xmaloc "$cc" -O2 main.o alloc.o -o typo 2>&1) && rc=0 || rc=$?
echo "misspelt wrapper: $msg (exit $rc)"
check "a wrapper name the program neither defines nor calls gets one warning" \
    sh -c "[ $rc = 0 ] && [ \"\$(printf '%s\n' '$msg' | grep -c 'names xmaloc, which typo neither defines nor calls')\" = 1 ] &&
           ! printf '%s\n' '$msg' | grep -q grid_alloc"

# refusals: never a half-instrumented build
msg=$(TIERMEM_CC_PLUGIN=/nonexistent/tiermem-pass.so "$cc" -c "$here/prog/main.c" -o "$tmp/no.o" 2>&1) && rc=0 || rc=$?
echo "missing plugin: $msg (exit $rc)"
check "a missing plugin fails with one line and exit 1" sh -c "[ $rc = 1 ] && [ ! -e '$tmp/no.o' ]"
if command -v clang-14 >/dev/null; then
    msg=$(TIERMEM_CC_COMPILER=clang-14 "$cc" -c "$here/prog/main.c" -o "$tmp/no.o" 2>&1) && rc=0 || rc=$?
    echo "other LLVM: $msg (exit $rc)"
    check "a compiler of another LLVM fails with exit 1" [ "$rc" = 1 ]
fi

[ $fails = 0 ] && echo "tests/cc: all passed" || echo "tests/cc: $fails failed"
[ $fails = 0 ]
