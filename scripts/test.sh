#!/usr/bin/env bash
# test.sh -- tiermem's whole test suite, from a fresh Debian 12 machine.
#
#   1. installs what it needs (scripts/deps.sh, apt-get as root);
#   2. release build: unit tests and the full-size stress test (make check);
#   3. the unit and stress tests again under ASan+UBSan and under TSan, at a
#      tenth of the work (TM_TEST_SCALE=0.1);
#   4. make install into a scratch root, then a program built against the
#      installed headers, library and tiermem.pc;
#   5. make distcheck;
#   6. a short libFuzzer run over the guidance parser and the settings;
#   7. real programs (sort, python3, gcc, threads, OpenMP, fork+exec, MPI)
#      under the preload library (tests/preload/run.sh);
#   8. the security probes: planted symlinks, FIFOs, closefrom, hostile
#      tables and profiles, address-space limits, log floods
#      (tests/security/run.sh);
#   9. the multi-node QEMU guest rig (tests/guest/run-rig.sh).
# Each test program, guest test and step counts once; the last line is
# "N passed, N failed, N skipped" (skips: whole programs, and the parts of
# programs that printed "SKIP: what (why)").  Exit status 0 only when nothing failed.
#
# Environment: TM_TEST_SKIP="asan tsan distcheck install fuzz preload security guest"
# skips steps
# (for quick local runs; CI runs everything).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builds=${TM_BUILD_ROOT:-$root/build}
skip=" ${TM_TEST_SKIP:-} "
passed=0
failed=0
skipped=0
failures=()

note() { printf '\n== %s\n' "$*"; }
pass() { passed=$((passed + 1)); echo "PASS: $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL: $1"; }
skipped() { [[ "$skip" == *" $1 "* ]] && { echo "(skipped: $1)"; return 0; }; return 1; }

# Count automake's per-program results from a test-suite.log.
count_check() { # build_dir label
    local log=$1/test-suite.log p f
    if [ ! -f "$log" ]; then fail "$2: no test-suite.log"; return; fi
    p=$(sed -n 's/^# PASS: *//p' "$log")
    f=$(( $(sed -n 's/^# FAIL: *//p' "$log") + $(sed -n 's/^# ERROR: *//p' "$log") ))
    # skipped programs, and the parts of passing programs that printed
    # "SKIP: what (why)" (tests/tm_test.h)
    s=$(( $(sed -n 's/^# SKIP: *//p' "$log") +
        $(find "$1/tests" -name '*.log' -exec cat {} + 2>/dev/null |
            grep -c '^SKIP: ') ))
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    [ "$f" -eq 0 ] || { failures+=("$2: $f test program(s)"); cat "$log"; }
    echo "$2: $p passed, $f failed, $s skipped"
    find "$1/tests" -name '*.log' -exec cat {} + 2>/dev/null | grep '^SKIP: ' |
        sort | uniq -c | sed 's/^/  /' || true
}

build_and_check() { # label build_dir scale configure-args...
    local label=$1 dir=$2 scale=$3
    shift 3
    note "$label: build"
    if ! TM_RECONFIGURE=1 "$root/scripts/build.sh" "$dir" "$@"; then
        fail "$label: build"
        return
    fi
    pass "$label: build"
    note "$label: make check (TM_TEST_SCALE=$scale)"
    rm -f "$dir/test-suite.log"
    TM_TEST_SCALE=$scale make -C "$dir" -j2 check >"$dir/check.out" 2>&1
    grep -E '^(PASS|FAIL|ERROR|SKIP):' "$dir/check.out"
    count_check "$dir" "$label"
}

note "dependencies"
"$root/scripts/deps.sh" || { echo "cannot install dependencies"; exit 1; }

build_and_check release "$builds/release" 1
if ! skipped asan; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    san="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
    build_and_check asan+ubsan "$builds/asan" 0.1 --enable-debug \
        CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined"
fi
if ! skipped tsan; then
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
    build_and_check tsan "$builds/tsan" 0.1 --enable-debug CC=clang \
        CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread"
fi

if ! skipped install; then
    note "install"
    stage=$(mktemp -d)
    if make -C "$builds/release" install DESTDIR="$stage" >/dev/null &&
        PKG_CONFIG_SYSROOT_DIR=$stage \
            PKG_CONFIG_PATH=$stage/usr/local/lib/pkgconfig \
            "$root/scripts/check-install.sh" "$stage"; then
        pass "install: library, header and tiermem.pc usable"
    else
        fail "install"
    fi
    rm -rf "$stage"
fi

if ! skipped distcheck; then
    note "make distcheck"
    if TM_TEST_SCALE=0.05 make -C "$builds/release" distcheck \
        >"$builds/release/distcheck.out" 2>&1; then
        pass "distcheck"
    else
        tail -40 "$builds/release/distcheck.out"
        fail "distcheck"
    fi
fi

# Run a suite that ends with "N passed, N failed" and add its counts.
run_counted() { # label out-file command...
    local label=$1 out=$2 rc line p f
    shift 2
    "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    skipped=$((skipped + ${s:-0}))
    [ "${f:-0}" -eq 0 ] || failures+=("$label: $f test(s)")
    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then fail "$label (exit $rc)"; fi
}

if ! skipped fuzz; then
    note "fuzzing the guidance parser and the settings (libFuzzer, short run)"
    if FUZZ_TIME=${FUZZ_TIME:-20} "$root/scripts/fuzz.sh" "$builds/release" \
        >"$builds/release/fuzz.out" 2>&1; then
        grep -E '^(fuzz|#)' "$builds/release/fuzz.out" | tail -6
        pass "fuzz: guidance parser and settings"
    else
        tail -40 "$builds/release/fuzz.out"
        fail "fuzz"
    fi
fi

if ! skipped preload; then
    note "real programs under the preload library"
    run_counted "preload" "$builds/release/preload.out" \
        "$root/tests/preload/run.sh" "$builds/release"
fi

if ! skipped security; then
    note "security probes"
    run_counted "security" "$builds/release/security.out" \
        "$root/tests/security/run.sh" "$builds/release"
fi

if ! skipped guest; then
    note "multi-node guest rig"
    run_counted "guest rig" "$builds/release/guest-rig.out" \
        "$root/tests/guest/run-rig.sh" "$builds/release"
fi

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
