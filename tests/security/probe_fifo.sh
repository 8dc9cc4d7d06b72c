#!/usr/bin/env bash
# probe_fifo.sh -- issue 12, defect 4: a FIFO named by a setting must not
# hang a program at start-up.
#
# usage: bash probe_fifo.sh BUILD_DIR WORK_DIR
#
# TIERMEM_GUIDANCE, TIERMEM_PROFILE_REPLAY (with the replay sampler) and
# TIERMEM_LOG_FILE each point at a FIFO that nobody writes to or reads
# from.  /bin/true under the preload library must finish within 10 s (the
# old open() blocked forever) and say exactly one warning naming the FIFO.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"
[ -f "$preload" ] || fail_probe "fifo: no preload library at $preload"
fifo=$work/fifo
rm -f "$fifo"
mkfifo "$fifo" || fail_probe "fifo: mkfifo $fifo failed"
mkdir -p "$work/out"

# check NAME VAR=VALUE...: /bin/true under the library with those settings.
check() {
    local name=$1
    shift
    local err=$work/$name.stderr
    timeout -k 2 10 env LD_PRELOAD="$preload" TIERMEM_LOG=warn \
        TIERMEM_OUTPUT_DIR="$work/out" "$@" /bin/true 2>"$err"
    local rc=$?
    # The warning names the path; the log line itself may be the one that
    # could not go to the FIFO, so it is looked for on stderr.
    local said
    said=$(grep -c -F -- "$fifo" "$err")
    if timed_out "$rc"; then
        say "$* /bin/true still ran after 10 s (open blocked on the FIFO)"
        fail "$name: a FIFO without a writer hangs start-up"
    elif [ "$rc" -ne 0 ]; then
        detail <"$err"
        say "/bin/true exited with status $rc"
        fail "$name: the program did not finish cleanly"
    elif [ "$said" -ne 1 ]; then
        detail <"$err"
        say "$said lines name $fifo; one warning was expected"
        fail "$name: a FIFO is refused with exactly one warning"
    else
        pass "$name: a FIFO is refused at once, with one warning"
    fi
}

check guidance TIERMEM_GUIDANCE="$fifo"
check replay TIERMEM_PROFILE=1 TIERMEM_PROFILE_SAMPLER=replay \
    TIERMEM_PROFILE_REPLAY="$fifo"
check log-file TIERMEM_LOG_FILE="$fifo"
exit 0
