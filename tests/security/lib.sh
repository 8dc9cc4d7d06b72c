# shellcheck shell=bash
# lib.sh -- what every security probe does the same way: arguments, the
# verdict lines run.sh counts, details, preconditions, small C programs.
# Sourced by each tests/security/probe_*.sh; run.sh runs probe_*.sh only,
# so this file is never taken for a probe.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   probe_init "$@"   # BUILD_DIR WORK_DIR: sets build, work, libdir,
#                     # preload (the preload library) and guide
#
# A probe prints one verdict per check (pass, fail, skip) with its details
# (say, detail) above a FAIL; it exits 0 (run.sh counts the verdicts).
set -uo pipefail

# probe_init BUILD_DIR WORK_DIR: the probe's arguments and the build's
# files every probe looks for.
# shellcheck disable=SC2034 # the probes use what is set here
probe_init() {
    if [ $# -ne 2 ] || [ ! -d "$1" ] || [ ! -d "$2" ]; then
        echo "usage: bash $(basename "$0") BUILD_DIR WORK_DIR" >&2
        exit 2
    fi
    build=$1
    work=$2
    libdir=$build/.libs
    preload=$libdir/libtiermem-preload.so
    guide=$build/tiermem-guide
}

# ------------------------------------------------------------ verdicts

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; }
skip() { echo "SKIP: $1 ($2)"; } # skip WHAT WHY

# The probe cannot go on: one last verdict, and exit 0 (the verdict is
# what counts).
skip_probe() { skip "$1" "$2"; exit 0; } # skip_probe WHAT WHY
fail_probe() { fail "$*"; exit 0; }

# ------------------------------------------------------------ details

# say TEXT...: one detail line.
say() { echo "    $*"; }

# detail: standard input as detail lines, at most 4000 bytes of them (a
# flood of output must not bury the verdicts); awk ends a line cut short.
detail() { sed 's/^/    /' | head -c 4000 | awk '{ print }'; }

# detail_more: standard input as details of the detail above them.
detail_more() { sed 's/^/      /'; }

# ------------------------------------------------------------ preconditions

# require_preload WHAT: skip the whole probe if the preload library was
# not built.
require_preload() {
    [ -f "$preload" ] || skip_probe "$1" "no $preload"
}

# require_cc WHAT: skip the whole probe without a C compiler.
require_cc() {
    command -v cc >/dev/null || skip_probe "$1" "no C compiler"
}

# ------------------------------------------------------------ running

# compile_c OUTPUT SOURCE [CC ARGUMENTS...]: cc -O1 SOURCE into OUTPUT (the
# arguments may raise the optimisation or add libraries).  On failure the
# compiler's messages are printed as details and the status is 1.
compile_c() {
    local out=$1 src=$2
    shift 2
    if ! cc -O1 -o "$out" "$src" "$@" 2>"$out.cc-errors"; then
        head -20 "$out.cc-errors" | detail
        return 1
    fi
}

# timed_out STATUS: did timeout(1) stop the command (TERM, or KILL after
# the grace period)?
timed_out() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }

# as_nobody COMMAND...: run as user nobody, no supplementary groups.
as_nobody() {
    setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"
}
