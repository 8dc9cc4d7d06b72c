#!/usr/bin/env bash
# probe_setuid.sh -- settings that name paths, in a set-user-ID program.
#
# The dynamic loader does not preload a library named by a path into a
# set-user-ID program, so the realistic case is a set-user-ID-root program
# linked with libtiermem.so.  Its environment comes from the user who runs
# it, who must not be able to make it write files where they like, or read
# root's files into its messages.  The probe links a small program with
# libtiermem.so (absolute RUNPATH: honoured in secure mode, unlike $ORIGIN),
# makes a set-user-ID-root copy, and runs it as nobody with
# TIERMEM_LOG_FILE, TIERMEM_OUTPUT_DIR, TIERMEM_PROFILE=1 pointing into a
# directory nobody owns and TIERMEM_GUIDANCE=/etc/shadow:
#   - nothing is created in that directory, and each setting gets one
#     warning, and no line of /etc/shadow appears;
#   - the same run without the set-user-ID bit does create the log file,
#     so the probe can see a write when there is one.
#
# usage: bash probe_setuid.sh BUILD_DIR WORK_DIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"

[ -f "$libdir/libtiermem.so" ] || skip_probe setuid "no $libdir/libtiermem.so"
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
    skip_probe setuid "needs root and setpriv to run a set-user-ID program as nobody"
fi
require_cc setuid

cat >"$work/victim.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(void)
{
    free(malloc(4096));
    printf("secure=%lu euid=%d\n", getauxval(AT_SECURE), (int)geteuid());
    return 0;
}
EOF
# nobody must reach the programs, the library and the drop directories
# whatever the modes of the directories above the build (a clone made in a
# mktemp -d directory is 0700): they all go to a stage of their own.
stage=$(mktemp -d /tmp/tm-setuid.XXXXXX) ||
    fail_probe "setuid: cannot make a stage directory"
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"
mkdir "$stage/lib"
cp -a "$libdir"/libtiermem.so* "$stage/lib/"
chmod 755 "$stage/lib"
compile_c "$stage/victim" "$work/victim.c" -Wl,--no-as-needed -L"$stage/lib" \
    -ltiermem -Wl,-rpath,"$stage/lib" ||
    fail_probe "setuid: the victim does not link with libtiermem.so"
cp "$stage/victim" "$stage/victim-suid"
chown root:root "$stage/victim-suid"
chmod 4755 "$stage/victim-suid"
chmod 755 "$stage/victim"

# run PROGRAM DROPDIR: as nobody, every path setting pointing into DROPDIR.
run_as_nobody() {
    local prog=$1 drop=$2
    rm -rf "$drop"
    mkdir -p "$drop"
    chown nobody "$drop"
    chmod 700 "$drop"
    (cd "$drop" && as_nobody timeout -k 2 20 env TIERMEM_LOG_FILE="$drop/log" \
        TIERMEM_OUTPUT_DIR="$drop" TIERMEM_PROFILE=1 \
        TIERMEM_PROFILE_SAMPLER=none TIERMEM_PROFILE_FILE="$drop/profile" \
        TIERMEM_GUIDANCE=/etc/shadow "$prog")
}

suid_drop=$stage/drop-suid
run_as_nobody "$stage/victim-suid" "$suid_drop" >"$work/suid.out" 2>"$work/suid.err"
rc=$?
if [ $rc -ne 0 ]; then
    say "exit status $rc; stderr: $(head -c 300 "$work/suid.err")"
    fail "setuid: the set-user-ID program runs"
elif ! grep -q '^secure=1 euid=0$' "$work/suid.out"; then
    skip setuid "the set-user-ID bit did not take effect here: $(cat "$work/suid.out")"
else
    created=$(ls -A "$suid_drop")
    missing=""
    for v in TIERMEM_LOG_FILE TIERMEM_OUTPUT_DIR TIERMEM_PROFILE \
        TIERMEM_PROFILE_FILE TIERMEM_GUIDANCE; do
        grep -q "warning: $v is ignored" "$work/suid.err" || missing="$missing $v"
    done
    if [ -n "$created" ]; then
        say "created in nobody's directory: $created"
        fail "setuid: path settings are ignored in a set-user-ID program"
    elif [ -n "$missing" ]; then
        say "no warning for:$missing; stderr:"
        head -c 600 "$work/suid.err" | detail_more
        fail "setuid: each ignored path setting gets its warning"
    elif grep -q 'root:' "$work/suid.err"; then
        fail "setuid: /etc/shadow's lines appear in tiermem's messages"
    else
        pass "setuid: nothing created, /etc/shadow not read, one warning per path setting"
    fi
fi

# The control: without the bit, the same settings are used.
plain_drop=$stage/drop-plain
run_as_nobody "$stage/victim" "$plain_drop" >"$work/plain.out" 2>"$work/plain.err"
if [ -f "$plain_drop/log" ]; then
    pass "setuid: control: without the set-user-ID bit the log file is used"
else
    say "stdout: $(cat "$work/plain.out"); stderr: $(head -c 300 "$work/plain.err")"
    fail "setuid: control: without the set-user-ID bit the log file is used"
fi
exit 0
