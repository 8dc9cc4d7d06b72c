#!/usr/bin/env bash
# run.sh -- the security probes: hostile users, files and limits against the
# preload library and the tools (issue 12's defects, kept out).
#
# usage: tests/security/run.sh BUILD_DIR
#
# Runs every tests/security/probe_*.sh as `probe BUILD_DIR WORK_DIR`, each
# under timeout so that a hang is a failure.  A probe prints one line per
# check, "PASS: what", "FAIL: what" or "SKIP: what (why)", with details
# indented above a FAIL.  This script adds them up and prints last
# "N passed, N failed, N skipped"; it exits 1 if anything failed.  A probe
# that dies without a verdict, or prints none, fails.
#
# Environment: TM_SECURITY_ONLY="symlink fifo ..." runs only those probes
# (the part of the name between probe_ and .sh).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
work=$build/security-tests
only=" ${TM_SECURITY_ONLY:-} "
rm -rf "$work"
mkdir -p "$work"
# A probe sets what it tests itself; nothing leaks in from the caller.
unset LD_PRELOAD TIERMEM_OUTPUT_DIR TIERMEM_LOG_FILE TIERMEM_LOG
export LC_ALL=C

passed=0 failed=0 skipped=0
for probe in "$here"/probe_*.sh; do
    [ -e "$probe" ] || continue
    name=$(basename "$probe" .sh)
    name=${name#probe_}
    [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || continue
    echo "== $name"
    mkdir -p "$work/$name"
    out=$work/$name/verdicts
    timeout -k 10 600 bash "$probe" "$build" "$work/$name" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    p=$(grep -c '^PASS: ' "$out")
    f=$(grep -c '^FAIL: ' "$out")
    s=$(grep -c '^SKIP: ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL: $name: the probe exited with status $rc"
        f=1
    fi
    if [ $((p + f + s)) -eq 0 ]; then
        echo "FAIL: $name: the probe gave no verdict"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
