#!/usr/bin/env bash
# run.sh -- real, unmodified programs under libtiermem-preload.so.
#
# usage: tests/preload/run.sh BUILD_DIR
#
# Each test runs a program without the preload library and then with
# LD_PRELOAD=BUILD_DIR/.libs/libtiermem-preload.so, and requires the same
# exit status (0) and the same stdout and stderr, byte for byte.  stderr
# lines starting "tmtest-arena:" are what the test programs say about
# tm_arena_of (tm_probe.h); they are compared separately.  Every test also
# requires a valid site table (TIERMEM_OUTPUT_DIR, check_sites.awk) with a
# site that counted allocations, from the program(s) it ran: a preload that
# silently failed to load would otherwise pass.  Every command runs under
# timeout, so a deadlock is a failure, not a hung CI job.
#
# Prints "PASS: name" or "FAIL: name" per test (details indented above a
# FAIL), and last "N passed, N failed"; exits 1 if anything failed.
# Work files go to BUILD_DIR/preload-tests (kept for inspection; the big
# sort files are removed).
#
# Environment:
#   TM_PRELOAD_LIB    library to preload instead (e.g. a stand-in)
#   TM_PRELOAD_ONLY   space-separated test names to run (default: all)
#   TIERMEM_*         passed through (e.g. TIERMEM_LAYOUT=per-thread runs
#                     the suite under another layout), except those a test
#                     sets itself
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
lib=${TM_PRELOAD_LIB:-$build/.libs/libtiermem-preload.so}
work=$build/preload-tests
bin=$work/bin
only=" ${TM_PRELOAD_ONLY:-} "
# The plain runs must not inherit a preload or an output directory.
unset LD_PRELOAD TIERMEM_OUTPUT_DIR TIERMEM_LOG_FILE
export LC_ALL=C

passed=0
failed=0
failures=()

say() { echo "  $*"; }

# ------------------------------------------------------------------ running
# launch NAME DIR SECONDS [VAR=value...] -- COMMAND...
# Runs COMMAND under timeout, appending stdout and stderr to DIR/NAME.out
# and DIR/NAME.err.  When NAME is "pre" (and $inject is 1) the preload
# library, TIERMEM_OUTPUT_DIR=DIR/sites and TIERMEM_LOG_FILE=DIR/tiermem.log
# are added to the command's environment only, so timeout itself and the
# shell are never preloaded.  Returns the command's status.
inject=1
launch() {
    local name=$1 dir=$2 secs=$3 rc
    shift 3
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    shift
    mkdir -p "$dir/sites"
    if [ "$name" = pre ] && [ "$inject" = 1 ]; then
        envs+=("LD_PRELOAD=$lib" "TIERMEM_OUTPUT_DIR=$dir/sites"
            "TIERMEM_LOG_FILE=$dir/tiermem.log")
    fi
    timeout -k 10 "$secs" env "${envs[@]}" "$@" >>"$dir/$name.out" 2>>"$dir/$name.err"
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        say "$name: timed out after ${secs}s (deadlock?): $*"
    elif [ $rc -gt 128 ]; then
        say "$name: killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null)): $*"
    elif [ $rc -ne 0 ]; then
        say "$name: exit status $rc: $*"
    fi
    return $rc
}

strip_probe() { grep -v '^tmtest-arena: ' "$1" || true; }

# same DIR: plain and pre produced the same stdout and (probe lines aside)
# the same stderr.  Shows the first differences.
same() {
    local d=$1 ok=0
    if ! cmp -s "$d/plain.out" "$d/pre.out"; then
        say "stdout differs ($d/plain.out vs $d/pre.out):"
        if [ "$(stat -c %s "$d/plain.out")" -lt 1000000 ]; then
            diff "$d/plain.out" "$d/pre.out" | head -15 | sed 's/^/    /'
        else
            cmp "$d/plain.out" "$d/pre.out" | sed 's/^/    /'
        fi
        ok=1
    fi
    if ! cmp -s <(strip_probe "$d/plain.err") <(strip_probe "$d/pre.err"); then
        say "stderr differs:"
        diff <(strip_probe "$d/plain.err") <(strip_probe "$d/pre.err") |
            head -15 | sed 's/^/    /'
        ok=1
    fi
    return $ok
}

# pair DIR SECONDS [VAR=value...] -- COMMAND...: run plain, then preloaded;
# both must exit 0 with the same output.
pair() {
    local d=$1 ok=0
    rm -rf "$d"
    mkdir -p "$d"
    launch plain "$@" || ok=1
    launch pre "$@" || ok=1
    [ $ok -eq 0 ] || { show_log "$d"; return 1; }
    same "$d" || { show_log "$d"; return 1; }
}

show_log() {
    if [ -s "$1/tiermem.log" ]; then
        say "tiermem log ($1/tiermem.log), last lines:"
        tail -5 "$1/tiermem.log" | sed 's/^/    /'
    fi
    if [ -s "$1/pre.err" ]; then
        say "preloaded stderr, last lines:"
        tail -5 "$1/pre.err" | sed 's/^/    /'
    fi
}

# ------------------------------------------------------------- site tables
# tables DIR: validate every site table in DIR/sites; print one summary line
# per table ("FILE exe PATH pid ... active N allocs N").  Fails on any
# invalid table.  With strict=1 (set by tests of our own programs, which
# end with no thread running) sites must also agree with their arenas.
strict=0
tables() {
    local f s nbad=0
    for f in "$1"/sites/tiermem-sites.*.txt; do
        [ -e "$f" ] || continue
        if s=$(awk -v strict="$strict" -f "$here/check_sites.awk" "$f"); then
            echo "$f $s"
        else
            nbad=$((nbad + 1))
            if [ $nbad -le 3 ]; then # the first few in full, then a count
                say "invalid site table:"
                echo "$s" | head -5 | sed 's/^/    /'
            fi
        fi
    done
    [ $nbad -le 3 ] || say "... and $((nbad - 3)) more invalid site tables"
    [ $nbad -eq 0 ]
}

# active DIR EXE_REGEX [MIN] [any]: at least MIN (default 1) valid site
# tables in DIR/sites come from an executable whose path matches EXE_REGEX
# and have a site with allocs > 0 (with "any": merely exist, for programs
# like echo that may allocate only below the site threshold).
declare -A shown # directories whose invalid tables were already listed
active() {
    local d=$1 re=$2 min=${3:-1} mode=${4:-} list n
    if ! list=$(tables "$d"); then
        [ -n "${shown[$d]:-}" ] || echo "$list" | grep -v "^$d"
        shown[$d]=1
        return 1
    fi
    if [ "$mode" = any ]; then
        n=$(echo "$list" | awk -v re="$re" 'NF && $3 ~ re' | wc -l)
    else
        n=$(echo "$list" | awk -v re="$re" 'NF && $3 ~ re && $15 > 0' | wc -l)
    fi
    if [ "$n" -lt "$min" ]; then
        say "tiermem not active: $n site table(s) from an executable matching" \
            "'$re'$([ "$mode" = any ] || echo " with allocations"), want >= $min; tables in $d/sites:"
        if [ -n "$list" ]; then
            echo "$list" | sed "s|^$d/sites/||" | head -8 | sed 's/^/    /'
        else
            say "  (none)"
        fi
        return 1
    fi
}

# probed DIR: the program checked tm_arena_of under the preload (and found
# no pointer on the wrong side), and found no tm_arena_of without it.
probed() {
    local d=$1 ok=0
    if ! grep -q '^tmtest-arena: tm_arena_of absent$' "$d/plain.err" ||
        grep -q '^tmtest-arena: checked' "$d/plain.err"; then
        say "plain run: tm_arena_of should be absent"
        ok=1
    fi
    if ! grep -Eq '^tmtest-arena: checked [1-9][0-9]* heap pointers and [0-9]+ others, 0 wrong$' "$d/pre.err" ||
        grep '^tmtest-arena: ' "$d/pre.err" | grep -Evq ', 0 wrong$'; then
        say "preloaded run: tm_arena_of checks failed:"
        grep '^tmtest-arena: ' "$d/pre.err" | head -8 | sed 's/^/    /'
        ok=1
    fi
    return $ok
}

# ------------------------------------------------------------------ build
CFLAGS_T=(-std=c11 -O2 -g -Wall -Wextra -Werror)
build_all() {
    local ok=0 log=$work/build.log
    mkdir -p "$bin"
    : >"$log"
    b() { # what, then the compiler command
        local what=$1
        shift
        if ! timeout 300 "$@" >>"$log" 2>&1; then
            say "cannot build $what: $*"
            ok=1
        fi
    }
    b gen_lines gcc "${CFLAGS_T[@]}" -o "$bin/gen_lines" "$here/gen_lines.c"
    b threads gcc "${CFLAGS_T[@]}" -pthread -o "$bin/threads" "$here/threads.c"
    b omp gcc "${CFLAGS_T[@]}" -fopenmp -o "$bin/omp" "$here/omp.c"
    b fork_exec gcc "${CFLAGS_T[@]}" -pthread -o "$bin/fork_exec" "$here/fork_exec.c"
    # '$ORIGIN' is for the linker, literally: find libtmwrap.so beside us.
    b libtmwrap gcc "${CFLAGS_T[@]}" -fPIC -shared -o "$bin/libtmwrap.so" "$here/wrap_lib.c"
    b aslr_keys gcc "${CFLAGS_T[@]}" -pthread -o "$bin/aslr_keys" "$here/aslr_keys.c" \
        -L"$bin" -ltmwrap -Wl,-rpath,'$ORIGIN'
    b wrap_main gcc "${CFLAGS_T[@]}" -o "$bin/wrap_main" "$here/wrap_main.c" \
        -L"$bin" -ltmwrap -Wl,-rpath,'$ORIGIN'
    b wrap_static gcc "${CFLAGS_T[@]}" -o "$bin/wrap_static" "$here/wrap_static.c"
    b wrap_static_rdynamic gcc "${CFLAGS_T[@]}" -rdynamic \
        -o "$bin/wrap_static_rdynamic" "$here/wrap_static.c"
    b runtime_frames_cxx g++ -std=c++17 -O0 -g -Wall -Wextra -Werror \
        -o "$bin/runtime_frames_cxx" "$here/runtime_frames.cc"
    b runtime_frames_f90 gfortran -O1 -g -Wall -Werror \
        -o "$bin/runtime_frames_f90" "$here/runtime_frames.f90"
    b cxx_new g++ -std=c++17 -O2 -g -Wall -Wextra -Werror -pthread \
        -o "$bin/cxx_new" "$here/cxx_new.cc"
    b capi gcc "${CFLAGS_T[@]}" -o "$bin/capi" "$here/capi.c"
    b malloc_stats gcc "${CFLAGS_T[@]}" -o "$bin/malloc_stats" "$here/malloc_stats.c"
    b pmu_probe gcc "${CFLAGS_T[@]}" -pthread -o "$bin/pmu_probe" "$here/../pmu/pmu_probe.c" -ldl
    if command -v mpicc >/dev/null; then
        b mpi_ring mpicc "${CFLAGS_T[@]}" -o "$bin/mpi_ring" "$here/mpi_ring.c"
    else
        say "mpicc not found (Debian: libopenmpi-dev openmpi-bin)"
        ok=1
    fi
    [ $ok -eq 0 ] || sed 's/^/    /' "$log" | head -30
    return $ok
}

# ------------------------------------------------------------------ tests
t_sort() {
    # 64 MiB of deterministic random lines.  Two sorts: one in memory with
    # threads (one huge buffer), one with an 8 MiB buffer so it spills to
    # temporary files and merges them, in a UTF-8 locale (strxfrm/strcoll).
    local d=$work/sort ok=0
    mkdir -p "$d"
    timeout 120 "$bin/gen_lines" 1 $((64 << 20)) >"$d/input.txt" ||
        { say "cannot generate the input"; return 1; }
    mkdir -p "$d/tmp"
    pair "$d/memory" 240 -- sort --parallel=2 -T "$d/tmp" "$d/input.txt" || ok=1
    active "$d/memory" '/sort$' || ok=1
    pair "$d/merge" 240 LC_ALL=C.UTF-8 -- sort -S 8M -T "$d/tmp" -k2,2 -k1,1n \
        "$d/input.txt" || ok=1
    active "$d/merge" '/sort$' || ok=1
    rm -rf "$d/input.txt" "$d/tmp" "$d"/*/plain.out "$d"/*/pre.out
    return $ok
}

t_coreutils_pipeline() {
    # bash and five coreutils in one pipeline, every process preloaded.
    local d=$work/coreutils-pipeline ok=0
    mkdir -p "$d"
    timeout 60 "$bin/gen_lines" 2 $((8 << 20)) >"$d/input.txt" ||
        { say "cannot generate the input"; return 1; }
    pair "$d/run" 180 -- bash -c 'set -o pipefail
        tr -s " " "\n" < "$1" | cut -c1-3 | sort | uniq -c |
            sort -k1,1nr -k2,2 | sed -n 1,40p' bash "$d/input.txt" || ok=1
    local p
    for p in bash tr cut sort uniq sed; do
        active "$d/run" "/$p\$" || ok=1
    done
    rm -f "$d/input.txt"
    return $ok
}

t_python() {
    # Default settings, then every allocation a site with a deep key (a
    # stack walk inside nearly every malloc CPython makes).
    local d=$work/python py=/usr/bin/python3 ok=0
    [ -x "$py" ] || py=$(command -v python3) || { say "python3 not found"; return 1; }
    pair "$d/default" 180 PYTHONHASHSEED=0 -- "$py" -B "$here/workload.py" || ok=1
    active "$d/default" '/python3[.0-9]*$' || ok=1
    pair "$d/every-site" 180 PYTHONHASHSEED=0 TIERMEM_SMALL_SIZE=0 \
        TIERMEM_STACK_DEPTH=8 -- "$py" -B "$here/workload.py" || ok=1
    active "$d/every-site" '/python3[.0-9]*$' || ok=1
    return $ok
}

t_gcc() {
    # The compiler driver, cc1, cc1plus, as, collect2 and ld all run
    # preloaded.  Both builds happen in the same directory (the debug info
    # records it), so the objects and executables must be identical, and so
    # must the output of the compiled programs.
    local d=$work/gcc mode ok=0 f
    rm -rf "$d"
    mkdir -p "$d/src"
    awk -v n=200 -f "$here/gen_big_c.awk" >"$d/src/big.c"
    cp "$here/capi.c" "$here/cxx_new.cc" "$here/tm_probe.h" "$d/src/"
    for mode in plain pre; do
        (
            cd "$d/src" || exit 1
            rm -f ./*.o big capi cxx_new
            launch $mode "$d" 300 -- gcc -O2 -g -c big.c -o big.o &&
                launch $mode "$d" 120 -- gcc -std=c11 -O2 -g -Wall -Wextra -c capi.c -o capi.o &&
                launch $mode "$d" 180 -- g++ -std=c++17 -O2 -g -Wall -Wextra -frandom-seed=tm \
                    -pthread -c cxx_new.cc -o cxx_new.o &&
                launch $mode "$d" 60 -- gcc -o big big.o &&
                launch $mode "$d" 60 -- gcc -o capi capi.o &&
                launch $mode "$d" 60 -- g++ -pthread -o cxx_new cxx_new.o &&
                mkdir -p "../$mode" && mv big.o capi.o cxx_new.o big capi cxx_new "../$mode/"
        ) || ok=1
    done
    [ $ok -eq 0 ] || { show_log "$d"; return 1; }
    same "$d" || ok=1
    for f in big.o capi.o cxx_new.o big capi cxx_new; do
        if ! cmp -s "$d/plain/$f" "$d/pre/$f"; then
            say "$f differs between the plain and the preloaded compiler"
            ok=1
        fi
    done
    # Run what each compiler built (no preload): the outputs must agree.
    for f in big capi cxx_new; do
        timeout 60 "$d/plain/$f" >"$d/$f.plain.run" 2>&1
        local r1=$?
        timeout 60 "$d/pre/$f" >"$d/$f.pre.run" 2>&1
        local r2=$?
        if [ $r1 -ne 0 ] || [ $r2 -ne 0 ] || ! cmp -s "$d/$f.plain.run" "$d/$f.pre.run"; then
            say "$f built by the two compilers runs differently (status $r1 vs $r2)"
            ok=1
        fi
    done
    active "$d" '/cc1$' || ok=1
    active "$d" '/cc1plus$' || ok=1
    active "$d" '/(x86_64-linux-gnu-)?as$' || ok=1
    active "$d" '/(x86_64-linux-gnu-)?ld(\.bfd)?$' || ok=1
    return $ok
}

t_pthreads() {
    local d=$work/pthreads ok=0
    local strict=1
    pair "$d" 180 -- "$bin/threads" || ok=1
    probed "$d" || ok=1
    active "$d" '/threads$' || ok=1
    return $ok
}

t_openmp() {
    local d=$work/openmp ok=0
    local strict=1
    pair "$d" 180 OMP_NUM_THREADS=4 -- "$bin/omp" || ok=1
    probed "$d" || ok=1
    active "$d" '/omp$' || ok=1
    return $ok
}

t_fork_exec() {
    # 40 forks (10 of each kind, see fork_exec.c) plus 8 from a worker: the
    # 10 children that exec this program again and the 10 that exec echo
    # must each load the preload and write their own site table.
    local d=$work/fork-exec ok=0
    local strict=1
    pair "$d" 180 -- "$bin/fork_exec" || ok=1
    probed "$d" || ok=1
    active "$d" '/fork_exec$' 11 || ok=1
    active "$d" '/echo$' 10 any || ok=1
    return $ok
}

t_mpi() {
    # Open MPI on 2 ranks; the preload goes to the ranks only (-x), as a
    # user would launch it.  Each rank writes its own table, named by rank.
    local d=$work/mpi ok=0 r f
    if ! command -v mpirun >/dev/null; then
        say "mpirun not found (Debian: openmpi-bin libopenmpi-dev)"
        return 1
    fi
    rm -rf "$d"
    mkdir -p "$d/sites"
    local mpi=(mpirun --allow-run-as-root --oversubscribe -np 2)
    inject=0
    launch plain "$d" 180 -- "${mpi[@]}" "$bin/mpi_ring" || ok=1
    launch pre "$d" 180 -- "${mpi[@]}" -x LD_PRELOAD="$lib" \
        -x TIERMEM_OUTPUT_DIR="$d/sites" -x TIERMEM_LOG_FILE="$d/tiermem.log" \
        "$bin/mpi_ring" || ok=1
    inject=1
    [ $ok -eq 0 ] || { show_log "$d"; return 1; }
    same "$d" || ok=1
    probed "$d" || ok=1
    for r in 0 1; do
        f=$d/sites/tiermem-sites.mpi_ring.rank$r.txt
        if [ ! -f "$f" ]; then
            say "no site table for rank $r ($f); tables:"
            find "$d/sites" -type f | head -5 | sed 's/^/    /'
            ok=1
        elif ! awk -f "$here/check_sites.awk" "$f" |
            grep -Eq " rank $r .* active [1-9]"; then
            say "rank $r table invalid or without allocations:"
            awk -f "$here/check_sites.awk" "$f" | head -5 | sed 's/^/    /'
            ok=1
        fi
    done
    return $ok
}

# first_table DIR EXE: the first site table of EXE in DIR/sites, or "".
first_table() {
    local f
    for f in "$1"/sites/tiermem-sites."$2".*.txt; do
        [ -e "$f" ] && { echo "$f"; return; }
    done
}

# sites_of TABLE: one line per site, "key K | obj off | obj off ...",
# sorted: what must not change between runs (site ids may).
sites_of() {
    awk '$1 == "site" { if (s != "") print s; s = "key " $4 }
         $1 == "frame" { s = s " | " $3 " " $4 }
         END { if (s != "") print s }' "$1" | sort
}

t_aslr_keys() {
    # Two runs with ASLR on: the program and libtmwrap.so load at different
    # addresses (checked), yet the site keys and frames must be identical,
    # at the default depth and at depth 6 with every allocation tracked.
    local d=$work/aslr-keys ok=0 aslr cfg run
    local strict=1
    aslr=$(cat /proc/sys/kernel/randomize_va_space 2>/dev/null)
    if [ "$aslr" != 2 ]; then
        say "ASLR is not fully on (randomize_va_space=$aslr, want 2)"
        return 1
    fi
    rm -rf "$d"
    for cfg in default deep; do
        local envs=()
        [ $cfg = deep ] && envs=(TIERMEM_STACK_DEPTH=6 TIERMEM_SMALL_SIZE=0)
        for run in 1 2; do
            launch pre "$d/$cfg$run" 60 "${envs[@]}" -- "$bin/aslr_keys" || ok=1
        done
        [ $ok -eq 0 ] || { show_log "$d/${cfg}1"; return 1; }
        local m1 m2 w1 w2 t1 t2
        read -r _ m1 _ w1 _ <"$d/${cfg}1/pre.out"
        read -r _ m2 _ w2 _ <"$d/${cfg}2/pre.out"
        if [ -z "$m1" ] || [ "$m1" = "$m2" ] || [ -z "$w1" ] || [ "$w1" = "$w2" ]; then
            say "$cfg: main at '$m1' and '$m2', my_alloc_wrapper at '$w1' and" \
                "'$w2': ASLR did not move the program and the library"
            ok=1
        fi
        t1=$(first_table "$d/${cfg}1" aslr_keys)
        t2=$(first_table "$d/${cfg}2" aslr_keys)
        if [ -z "$t1" ] || [ -z "$t2" ]; then
            say "$cfg: no site table from aslr_keys"
            ok=1
            continue
        fi
        active "$d/${cfg}1" '/aslr_keys$' || ok=1
        if ! cmp -s <(sites_of "$t1") <(sites_of "$t2"); then
            say "$cfg: site keys or frames differ between the two runs:"
            diff <(sites_of "$t1") <(sites_of "$t2") | head -10 | sed 's/^/    /'
            ok=1
        fi
        # The program's own sites and the library's must be among them, or
        # the comparison proved little.
        local n_own n_lib
        n_own=$(sites_of "$t1" | grep -c '/aslr_keys 0x')
        n_lib=$(sites_of "$t1" | grep -c '/libtmwrap\.so 0x')
        if [ "$n_own" -lt 6 ] || [ "$n_lib" -lt 1 ]; then
            say "$cfg: $n_own site(s) with frames in aslr_keys (want >= 6)," \
                "$n_lib in libtmwrap.so (want >= 1):"
            sites_of "$t1" | head -8 | sed 's/^/    /'
            ok=1
        fi
    done
    return $ok
}

# sites_at TABLE OBJECT_BASENAME START END: "allocs frees" of each site whose
# frame 0 is in OBJECT within [START, END].
sites_at() {
    awk -v obj="$2" -v lo="$3" -v hi="$4" '
        function hex(s,   i, c, v) {   # mawk has no strtonum
            v = 0; s = tolower(substr(s, 3))
            for (i = 1; i <= length(s); i++) {
                c = index("0123456789abcdef", substr(s, i, 1)) - 1
                v = v * 16 + c
            }
            return v
        }
        $1 == "site" { a = $8; f = $10 }
        $1 == "frame" && $2 == 0 {
            n = split($3, parts, "/")
            off = hex($4)
            if (parts[n] == obj && off >= lo && off <= hi) print a, f
        }' "$1"
}

t_wrappers() {
    # caller_one (37 x 1000 bytes) and caller_two (53 x 3000 bytes) both
    # allocate through my_alloc_wrapper in libtmwrap.so.  With the wrapper
    # skipped each caller is its own site, frame 0 inside the caller; with
    # no wrapper configured both share the site inside the wrapper.
    local d=$work/wrappers ok=0 c1 c2 w t
    local strict=1
    unset TIERMEM_WRAPPERS # this test runs in a subshell
    pair "$d/plain-vs-pre" 60 TIERMEM_WRAPPERS=my_alloc_wrapper \
        TIERMEM_STACK_DEPTH=1 TIERMEM_SMALL_SIZE=0 -- "$bin/wrap_main" || ok=1
    rm -rf "$d/without"
    launch pre "$d/without" 60 TIERMEM_STACK_DEPTH=1 TIERMEM_SMALL_SIZE=0 -- \
        "$bin/wrap_main" || ok=1
    [ $ok -eq 0 ] || return 1
    c1=$(nm -S --defined-only "$bin/wrap_main" | awk '$4 == "caller_one" { print $1, $2 }')
    c2=$(nm -S --defined-only "$bin/wrap_main" | awk '$4 == "caller_two" { print $1, $2 }')
    w=$(nm -S --defined-only "$bin/libtmwrap.so" | awk '$4 == "my_alloc_wrapper" { print $1, $2 }')
    range() { # "start size" in hex -> "start end" in decimal
        local a s
        read -r a s <<<"$1"
        echo $((16#$a)) $((16#$a + 16#$s))
    }
    if [ -z "$c1" ] || [ -z "$c2" ] || [ -z "$w" ]; then
        say "nm found no caller_one, caller_two or my_alloc_wrapper"
        return 1
    fi
    c1=$(range "$c1")
    c2=$(range "$c2")
    w=$(range "$w")

    t=$(first_table "$d/plain-vs-pre" wrap_main)
    [ -n "$t" ] || { say "with TIERMEM_WRAPPERS: no site table"; return 1; }
    active "$d/plain-vs-pre" '/wrap_main$' || ok=1
    grep -q ' depth 1$' "$t" || { say "with TIERMEM_WRAPPERS: table depth is not 1"; ok=1; }
    local s1 s2 sw
    # shellcheck disable=SC2086
    s1=$(sites_at "$t" wrap_main $c1)
    # shellcheck disable=SC2086
    s2=$(sites_at "$t" wrap_main $c2)
    # shellcheck disable=SC2086
    sw=$(sites_at "$t" libtmwrap.so $w)
    if [ "$s1" != "37 37" ] || [ "$s2" != "53 53" ] || [ -n "$sw" ]; then
        say "with TIERMEM_WRAPPERS=my_alloc_wrapper: want one site in caller_one" \
            "(allocs frees '37 37'), one in caller_two ('53 53'), none in the" \
            "wrapper; got '$s1', '$s2', '$sw'.  Sites:"
        grep -A1 '^site' "$t" | head -12 | sed 's/^/    /'
        ok=1
    fi

    t=$(first_table "$d/without" wrap_main)
    [ -n "$t" ] || { say "without TIERMEM_WRAPPERS: no site table"; return 1; }
    # shellcheck disable=SC2086
    s1=$(sites_at "$t" wrap_main $c1)
    # shellcheck disable=SC2086
    s2=$(sites_at "$t" wrap_main $c2)
    # shellcheck disable=SC2086
    sw=$(sites_at "$t" libtmwrap.so $w)
    if [ "$sw" != "90 90" ] || [ -n "$s1$s2" ]; then
        say "without TIERMEM_WRAPPERS: want one site in my_alloc_wrapper" \
            "(allocs frees '90 90') and none in the callers; got '$sw', '$s1', '$s2'.  Sites:"
        grep -A1 '^site' "$t" | head -12 | sed 's/^/    /'
        ok=1
    fi
    return $ok
}

t_static_wrappers() {
    # app_alloc lives in the executable, which exports it only when linked
    # with -rdynamic.  Both builds must give the same sites: one in
    # caller_one (37 blocks), one in caller_two (53), none in app_alloc,
    # and the table names the callers (from the symbol table, not the
    # exports).  A stripped copy gets one info line and still runs; a
    # wrapper nobody defines gets one warning.
    local d=$work/static-wrappers ok=0 prog t s1 s2 sw c1 c2 w
    local strict=1
    unset TIERMEM_WRAPPERS
    range() { # nm's "start size" in hex -> "start end" in decimal
        local a s
        read -r a s <<<"$1"
        echo $((16#$a)) $((16#$a + 16#$s))
    }
    for prog in wrap_static wrap_static_rdynamic; do
        pair "$d/$prog" 60 TIERMEM_WRAPPERS=app_alloc TIERMEM_STACK_DEPTH=1 \
            TIERMEM_SMALL_SIZE=0 -- "$bin/$prog" || { ok=1; continue; }
        c1=$(nm -S --defined-only "$bin/$prog" | awk '$4 == "caller_one" { print $1, $2 }')
        c2=$(nm -S --defined-only "$bin/$prog" | awk '$4 == "caller_two" { print $1, $2 }')
        w=$(nm -S --defined-only "$bin/$prog" | awk '$4 == "app_alloc" { print $1, $2 }')
        if [ -z "$c1" ] || [ -z "$c2" ] || [ -z "$w" ]; then
            say "$prog: nm found no caller_one, caller_two or app_alloc"
            ok=1
            continue
        fi
        t=$(first_table "$d/$prog" "$prog")
        [ -n "$t" ] || { say "$prog: no site table"; ok=1; continue; }
        # shellcheck disable=SC2046
        s1=$(sites_at "$t" "$prog" $(range "$c1"))
        # shellcheck disable=SC2046
        s2=$(sites_at "$t" "$prog" $(range "$c2"))
        # shellcheck disable=SC2046
        sw=$(sites_at "$t" "$prog" $(range "$w"))
        if [ "$s1" != "37 37" ] || [ "$s2" != "53 53" ] || [ -n "$sw" ]; then
            say "$prog: want one site in caller_one ('37 37'), one in" \
                "caller_two ('53 53'), none in app_alloc; got '$s1', '$s2', '$sw'"
            grep -A1 '^site' "$t" | head -12 | sed 's/^/    /'
            ok=1
        fi
        if ! grep -q "^frame 0 .*/$prog 0x[0-9a-f]* caller_one+0x" "$t" ||
            ! grep -q "^frame 0 .*/$prog 0x[0-9a-f]* caller_two+0x" "$t"; then
            say "$prog: the table does not name caller_one and caller_two:"
            grep '^frame' "$t" | head -6 | sed 's/^/    /'
            ok=1
        fi
    done

    strip -o "$bin/wrap_static_stripped" "$bin/wrap_static" || { say "strip failed"; return 1; }
    rm -rf "$d/stripped"
    launch pre "$d/stripped" 60 TIERMEM_LOG=info TIERMEM_WRAPPERS=app_alloc \
        TIERMEM_STACK_DEPTH=1 TIERMEM_SMALL_SIZE=0 -- \
        "$bin/wrap_static_stripped" || ok=1
    local n
    n=$(grep -c 'has no symbol table (stripped): its frames are keyed by offset only' \
        "$d/stripped/tiermem.log")
    [ "$n" = 1 ] || { say "stripped: want one info line, got $n:"; show_log "$d/stripped"; ok=1; }
    n=$(grep -c 'TIERMEM_WRAPPERS names app_alloc, which no object' "$d/stripped/tiermem.log")
    [ "$n" = 1 ] || { say "stripped: want one warning for app_alloc, got $n"; ok=1; }

    rm -rf "$d/missing"
    launch pre "$d/missing" 60 TIERMEM_WRAPPERS=+no_such_wrapper,app_alloc -- \
        "$bin/wrap_static" || ok=1
    n=$(grep -c 'TIERMEM_WRAPPERS names no_such_wrapper, which no object loaded so far defines' \
        "$d/missing/tiermem.log")
    [ "$n" = 1 ] || { say "missing: want one warning for no_such_wrapper, got $n:"; show_log "$d/missing"; ok=1; }
    n=$(grep -c 'TIERMEM_WRAPPERS names' "$d/missing/tiermem.log")
    [ "$n" = 1 ] || { say "missing: want no warning for app_alloc or the defaults, got $n warnings"; ok=1; }
    return $ok
}

t_runtime_frames() {
    # Allocations the C++ and Fortran runtimes and OpenMP make for the
    # program: every site's first frame must be in the program itself (not
    # libstdc++, libgfortran, libgomp, or the library's template code
    # instantiated in the program), and no frame is _start.  Every
    # allocation gets a site (TIERMEM_SMALL_SIZE=0).
    local d ok=0 prog t bad
    local strict=1
    for prog in runtime_frames_cxx runtime_frames_f90 omp; do
        d=$work/runtime-frames/$prog
        pair "$d" 120 TIERMEM_SMALL_SIZE=0 OMP_NUM_THREADS=2 -- "$bin/$prog" ||
            { ok=1; continue; }
        t=$(first_table "$d" "$prog")
        [ -n "$t" ] || { say "$prog: no site table"; ok=1; continue; }
        bad=$(awk -v prog="/$prog" '
            $1 == "site" { s = $2; want = s != 0; n++ }
            $1 == "frame" && $2 == 0 && want {
                if (substr($3, length($3) - length(prog) + 1) != prog)
                    print "site " s ": frame 0 in " $3 " " $5
                want = 0
            }
            $1 == "frame" && $5 ~ /^_start[+]/ { print "site " s ": _start" }
            END { if (n < 2) print "only " n " sites" }' "$t")
        if [ -n "$bad" ]; then
            say "$prog: sites whose first frame is not the program's:"
            echo "$bad" | head -8 | sed 's/^/    /'
            ok=1
        fi
    done
    return $ok
}

t_layouts() {
    # Our multithreaded and API programs again under the two other layouts
    # (one arena per thread; small sites sharing an arena until they grow).
    local ok=0 lay p d bad
    local strict=1
    for lay in per-thread big-small; do
        for p in threads omp fork_exec cxx_new capi; do
            d=$work/layouts/$lay-$p
            if ! pair "$d" 180 TIERMEM_LAYOUT=$lay OMP_NUM_THREADS=4 -- "$bin/$p" ||
                ! probed "$d" || ! active "$d" "/$p\$"; then
                say "(that was $p under TIERMEM_LAYOUT=$lay)"
                ok=1
                continue
            fi
            bad=$(tables "$d" | awk -v lay="$lay" '$9 != lay { print $1 ": layout " $9 }')
            [ -z "$bad" ] || { say "$bad" | head -3; ok=1; }
        done
    done
    return $ok
}

t_cxx_new_delete() {
    local d=$work/cxx-new-delete ok=0
    local strict=1
    pair "$d" 120 -- "$bin/cxx_new" || ok=1
    probed "$d" || ok=1
    active "$d" '/cxx_new$' || ok=1
    return $ok
}

t_c_api() {
    local d=$work/c-api ok=0
    local strict=1
    pair "$d" 120 -- "$bin/capi" || ok=1
    probed "$d" || ok=1
    active "$d" '/capi$' || ok=1
    return $ok
}

t_malloc_stats() {
    # glibc's heap statistics calls (mallinfo2, mallinfo, malloc_info,
    # malloc_stats, malloc_trim, mallopt) must see tiermem's blocks: the
    # program prints only properties that hold for glibc and tiermem alike;
    # python3 reads mallinfo2 through ctypes, as monitoring code does.
    local d=$work/malloc-stats ok=0 py=/usr/bin/python3
    local strict=1
    pair "$d/c" 60 -- "$bin/malloc_stats" || ok=1
    active "$d/c" '/malloc_stats$' || ok=1
    [ -x "$py" ] || py=$(command -v python3) || { say "python3 not found"; return 1; }
    pair "$d/python" 60 -- "$py" -B -c '
import ctypes
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
blocks = [bytearray(2000) for _ in range(1000)]
print("mallinfo2 uordblks is not 0:", "yes" if mallinfo2().uordblks > 0 else "no")' || ok=1
    active "$d/python" '/python3[.0-9]*$' || ok=1
    # The preload library's jemalloc maps its own bookkeeping without
    # transparent huge pages (preload/jemalloc_conf.c): opt.thp is
    # "never", and MALLOC_CONF still overrides it.
    local q='
import ctypes
lib = ctypes.CDLL(None)
v = ctypes.c_char_p(); n = ctypes.c_size_t(ctypes.sizeof(v))
rc = lib.mallctl(b"opt.thp", ctypes.byref(v), ctypes.byref(n), None, 0)
print("opt.thp", rc, v.value.decode() if rc == 0 else "-")'
    local got
    got=$(LD_PRELOAD=$lib "$py" -B -c "$q" 2>&1)
    [ "$got" = "opt.thp 0 never" ] || { say "preloaded opt.thp: $got, want never"; ok=1; }
    got=$(LD_PRELOAD=$lib MALLOC_CONF=thp:default "$py" -B -c "$q" 2>&1)
    [ "$got" = "opt.thp 0 default" ] || { say "MALLOC_CONF=thp:default gave: $got"; ok=1; }
    return $ok
}

# profiles DIR EXE_GLOB WANT: WANT profiles (tiermem-profile.EXE_GLOB.*.txt)
# in DIR/sites, every one complete and readable by tiermem-profile, and no
# .partial left behind.  Prints the tool's summary of the first.
profiles() {
    local d=$1 glob=$2 want=$3 ok=0 f n=0 out
    local tool=$build/tiermem-profile
    for f in "$d"/sites/tiermem-profile.$glob.*.txt; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        if ! out=$("$tool" "$f" 2>&1) || ! grep -q '^  intervals [1-9][0-9]*  complete$' <<<"$out"; then
            say "profile not complete or unreadable: $f"
            echo "$out" | head -5 | sed 's/^/    /'
            ok=1
        fi
    done
    if [ "$n" -ne "$want" ]; then
        say "$n profile(s) matching tiermem-profile.$glob.*.txt in $d/sites, want $want"
        ok=1
    fi
    # Only a process that ends with _exit (which runs no exit handler) may
    # leave its profile unfinished: dash does, after popen's command.  Even
    # then every whole interval must be readable.
    for f in "$d"/sites/*.partial; do
        [ -e "$f" ] || continue
        case $f in
        */tiermem-profile.dash.*) ;;
        *) say "unfinished profile left: $f"; ok=1 ;;
        esac
        if ! "$tool" "$f" | grep -q '^  intervals [0-9]*  incomplete'; then
            say "unfinished profile unreadable: $f"
            "$tool" "$f" 2>&1 | head -3 | sed 's/^/    /'
            ok=1
        fi
    done
    return $ok
}

t_profile() {
    # The profiler at its default settings (here: the refs sampler, as
    # there is no PMU; auto tries pebs/ibs, refs, uffd) in real programs,
    # the refs sampler forking and exec'ing with them: outputs unchanged, and every
    # process that loaded the preload -- each MPI rank, each exec'd child
    # -- leaves one complete profile; forked children that do not exec
    # leave none and do not disturb their parent's.
    local d=$work/profile ok=0 r
    local prof=(TIERMEM_PROFILE=1 TIERMEM_PROFILE_INTERVAL=20ms)
    local py=/usr/bin/python3
    [ -x "$py" ] || py=$(command -v python3) || { say "python3 not found"; return 1; }
    pair "$d/python" 180 "${prof[@]}" PYTHONHASHSEED=0 -- "$py" -B "$here/workload.py" || ok=1
    profiles "$d/python" 'python3*' 1 || ok=1
    local sampler
    sampler=$("$build/tiermem-profile" "$d"/python/sites/tiermem-profile.python3*.txt 2>/dev/null |
        awk '$1 == "sampler" { print $2; exit }')
    say "python profile: sampler ${sampler:-?}, $("$build/tiermem-profile" "$d"/python/sites/tiermem-profile.python3*.txt 2>/dev/null | awk '$1 == "samples" { print $2 " samples"; exit }')"
    if [ -w /proc/self/clear_refs ] && [ "$sampler" != refs ]; then
        say "auto chose ${sampler:-nothing}, not refs, although clear_refs is writable"
        ok=1
    fi
    pair "$d/fork-exec" 180 "${prof[@]}" -- "$bin/fork_exec" || ok=1
    # the parent and its 10 re-exec'd copies; the 10 exec'd echo processes
    # and popen's (run by dash, which forks it and leaves with _exit)
    profiles "$d/fork-exec" fork_exec 11 || ok=1
    profiles "$d/fork-exec" echo 11 || ok=1
    # A process image replaced by exec runs no exit handler: the preload's
    # exec wrapper finishes the profile first, and the new image (same pid)
    # writes its own.
    pair "$d/exec" 60 "${prof[@]}" -- /bin/sh -c 'exec /bin/echo exec ok' || ok=1
    profiles "$d/exec" dash 1 || ok=1
    profiles "$d/exec" echo 1 || ok=1
    if command -v mpirun >/dev/null; then
        rm -rf "$d/mpi"
        mkdir -p "$d/mpi/sites"
        inject=0
        launch pre "$d/mpi" 180 -- mpirun --allow-run-as-root --oversubscribe -np 2 \
            -x LD_PRELOAD="$lib" -x TIERMEM_OUTPUT_DIR="$d/mpi/sites" \
            -x TIERMEM_LOG_FILE="$d/mpi/tiermem.log" -x TIERMEM_PROFILE=1 \
            "$bin/mpi_ring" || ok=1
        inject=1
        profiles "$d/mpi" mpi_ring 2 || ok=1
        for r in 0 1; do
            [ -f "$d/mpi/sites/tiermem-profile.mpi_ring.rank$r.txt" ] ||
                { say "no profile for rank $r"; ok=1; }
        done
    fi
    return $ok
}

t_pmu_smoke() {
    # scripts/pmu-smoke.sh, the PMU smoke test for real hardware: its
    # verdict must say what this machine has (PMU: PASS; none: exactly
    # "skipped: no PMU (why)", exit 0; hardware events refused to us: FAIL,
    # exit 1), and its dry run with the faults sampler, which runs the
    # whole pipeline without a PMU, must pass every check and never say
    # PASS.
    local d=$work/pmu-smoke ok=0 check crc rc verdict want want_rc=0
    local smoke=$here/../../scripts/pmu-smoke.sh
    mkdir -p "$d"
    check=$("$bin/pmu_probe" --pmu-check 2>&1)
    crc=$?
    say "$check"
    timeout -k 10 600 "$smoke" "$build" >"$d/real.out" 2>&1
    rc=$?
    verdict=$(grep '^pmu-smoke: ' "$d/real.out" | tail -1)
    case $crc in
    0) want="pmu-smoke: PASS (*)" ;;
    3) want="pmu-smoke: skipped: no PMU (${check#pmu-probe: pmu no: })" ;;
    *) want="pmu-smoke: FAIL (*)" want_rc=1 ;;
    esac
    # shellcheck disable=SC2053 # want is a pattern on purpose
    if [[ $verdict != $want ]] || [ "$rc" -ne "$want_rc" ]; then
        say "pmu-smoke.sh: verdict '$verdict', exit $rc; want '$want' (pmu check status $crc)"
        tail -15 "$d/real.out" | sed 's/^/    /'
        ok=1
    fi
    [ -s "$build/pmu-smoke.txt" ] && grep -q '^perf_event_paranoid: ' "$build/pmu-smoke.txt" ||
        { say "no environment in $build/pmu-smoke.txt"; ok=1; }
    TM_SMOKE_SAMPLER=faults TM_SMOKE_SECONDS=3 timeout -k 10 600 "$smoke" "$build" \
        >"$d/dry.out" 2>&1
    rc=$?
    verdict=$(grep '^pmu-smoke: ' "$d/dry.out" | tail -1)
    if ! [[ $verdict =~ ^pmu-smoke:\ dry\ run\ \(faults\ sampler,\ not\ a\ PMU\ verdict\):\ all\ [0-9]+\ checks\ passed$ ]] ||
        [ "$rc" -ne 0 ] || grep -q '^pmu-smoke: PASS' "$d/dry.out"; then
        say "pmu-smoke.sh dry run: verdict '$verdict', exit $rc; its failures:"
        grep -E '^  FAIL|failed' "$d/dry.out" | head -10 | sed 's/^/    /'
        ok=1
    fi
    say "$verdict"
    return $ok
}

t_perf_nonroot() {
    # The perf sampler's own test as an unprivileged user, where locked
    # memory is limited (perf_event_mlock_kb x CPUs, then ulimit -l): its
    # rings are sized within that budget, so it must pass there, not skip.
    # Only root can switch to nobody; as anyone else the test runs as that
    # user already, in the unit suite.
    local d=$work/perf-nonroot t=tests/unit/test_sampler_perf rc
    if [ "$(id -u)" -ne 0 ]; then
        say "not root: the unit suite runs it as $(id -un) already"
        return 0
    fi
    command -v runuser >/dev/null || { say "runuser missing"; return 1; }
    mkdir -p "$d"
    if [ ! -x "$build/$t" ]; then
        make -C "$build" "$t" >"$d/make.out" 2>&1 ||
            { say "building $t failed"; tail -5 "$d/make.out"; return 1; }
    fi
    # the build tree may not be readable by nobody (a clone under mktemp
    # -d is 0700): run a copy from a directory it can read
    cp "$build/$t" "$d/test_sampler_perf" && chmod 0755 "$d" "$d/test_sampler_perf"
    (cd "$d" && timeout -k 10 300 runuser -u nobody -- \
        ./test_sampler_perf >"$d/out" 2>&1)
    rc=$?
    say "$(grep -E 'passed, [0-9]+ failed' "$d/out" | tail -1) (as nobody, ulimit -l $(runuser -u nobody -- sh -c 'ulimit -l'))"
    if [ $rc -ne 0 ] || grep -q '^SKIP: the faults sampler' "$d/out"; then
        say "test_sampler_perf as nobody: exit $rc"
        grep -E 'FAIL|SKIP|failed' "$d/out" | head -10 | sed 's/^/    /'
        return 1
    fi
    return 0
}

# ------------------------------------------------------------------ main
result() { # name status
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS: $1"
    else
        failed=$((failed + 1))
        failures+=("$1")
        echo "FAIL: $1"
    fi
}

tests=(sort coreutils-pipeline python gcc pthreads openmp fork-exec mpi
    aslr-keys wrappers static-wrappers runtime-frames cxx-new-delete c-api
    malloc-stats layouts profile pmu-smoke perf-nonroot)

echo "preload library: $lib"
if [ ! -f "$lib" ]; then
    say "not found; build it first"
    result "preload library present" 1
    echo "$passed passed, $failed failed"
    exit 1
fi
rm -rf "$work"
mkdir -p "$work"
build_all
result build $?
for t in "${tests[@]}"; do
    [ "$only" = "  " ] || [[ "$only" == *" $t "* ]] || continue
    start=$SECONDS
    ("t_${t//-/_}")
    rc=$?
    [ $rc -eq 0 ] || say "($((SECONDS - start))s; files in $work/$t)"
    result "$t" $rc
done
echo
for t in "${failures[@]}"; do echo "failed: $t"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
