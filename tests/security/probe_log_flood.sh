#!/usr/bin/env bash
# probe_log_flood.sh -- issue 12 defects 6 and 10, and the log file's part
# of defect 2: what a program or a hostile environment can make tiermem's
# log do.
#
#   flood     100,000 allocations that fail (malloc(1 << 46) and friends):
#             glibc prints nothing; tiermem may print at most 2 lines (one
#             message and the count of its repeats).  Before the fix:
#             150,000 lines.
#   values    ESC [2J, BEL, an OSC title sequence and 100,000 characters in
#             TIERMEM_LOG, TIERMEM_LOG_FILE, TIERMEM_TIERS,
#             TIERMEM_PROFILE_EVENT and others: stderr holds no byte below
#             0x20 but newlines, no line is longer than 1100 bytes, and
#             each variable still gets its warning.
#   reuse     a program that closes every descriptor it did not open and
#             then opens its own file under every number (closefrom, then
#             dup2): a warning tiermem logs afterwards must not land in it.
#
# usage: bash probe_log_flood.sh BUILD_DIR WORK_DIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"
max_flood_lines=2
max_line=1100

require_preload log_flood
require_cc log_flood

cat >"$work/flood.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    static const size_t sizes[] = {(size_t)1 << 46, (size_t)1 << 45,
                                   (size_t)1 << 47, SIZE_MAX - 4095};
    long nulls = 0, calls = 0;
    for (int i = 0; i < 100000; i++, calls++) {
        size_t size = sizes[i % 4];
        void *p = NULL;
        switch (i % 5) {
        case 0: case 1: p = malloc(size); break;
        case 2: p = calloc(size / 16, 16); break;
        case 3: p = realloc(NULL, size); break;
        case 4: if (posix_memalign(&p, 4096, size) != 0) p = NULL; break;
        }
        nulls += p == NULL;
        free(p);
    }
    printf("%ld of %ld failed\n", nulls, calls);
    return 0;
}
EOF
cat >"$work/quiet.c" <<'EOF'
#include <stdlib.h>
int main(void)
{
    free(malloc(100));
    return 0;
}
EOF
cat >"$work/reuse.c" <<'EOF'
/* argv[1]: the program's own file.  Close every descriptor above 2, open
 * the file, put it under every free number, then do what makes tiermem
 * warn (free a pointer it never handed out) and write one line. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char not_from_malloc[64];

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    struct rlimit rl;
    int top = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024)
        top = (int)rl.rlim_cur;
    for (int fd = 3; fd < top; fd++)
        close(fd);
    int f = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (f < 0)
        return 3;
    for (int fd = 3; fd < top; fd++)
        if (fd != f && dup2(f, fd) != fd)
            return 4;
    free(not_from_malloc + 16);
    const char line[] = "the program's own line\n";
    if (write(f, line, strlen(line)) != (ssize_t)strlen(line))
        return 5;
    return 0;
}
EOF
for prog in flood quiet reuse; do
    compile_c "$work/$prog" "$work/$prog.c" ||
        fail_probe "log_flood: $prog.c does not compile"
done

# ---------------------------------------------------------------- flood
timeout -k 2 60 env LD_PRELOAD="$preload" "$work/flood" >"$work/flood.out" \
    2>"$work/flood.err"
rc=$?
lines=$(wc -l <"$work/flood.err")
if [ $rc -ne 0 ] || ! grep -qx '100000 of 100000 failed' "$work/flood.out"; then
    say "exit status $rc; stdout: $(head -c 200 "$work/flood.out")"
    fail "flood: every failing allocation returns NULL and the program ends"
elif [ "$lines" -gt $max_flood_lines ]; then
    say "$lines lines on stderr; the first and the most common:"
    head -3 "$work/flood.err" | cut -c1-200 | detail_more
    sed 's/[0-9]\+/N/g' "$work/flood.err" | sort | uniq -c | sort -rn |
        head -3 | cut -c1-200 | detail_more
    fail "flood: 100,000 failed allocations log at most $max_flood_lines lines"
else
    pass "flood: 100,000 failed allocations log $lines line(s) (at most $max_flood_lines)"
fi

# ---------------------------------------------------------------- values
esc=$'\e'
bel=$'\a'
hostile="${esc}[2J${bel}${esc}]0;pwned${bel}"
long=$(head -c 100000 /dev/zero | tr '\0' 'A')

# Is stderr ($1) printable, with bounded lines?  Says what is wrong.
printable_bounded() {
    local err=$1 ok=0
    if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$err" ||
        [ "$(tr -d '\n' <"$err" | tr -d '\040-\176\200-\377' | wc -c)" -ne 0 ]; then
        say "control bytes on stderr:"
        LC_ALL=C grep -n $'[\x01-\x09\x0b-\x1f\x7f]' "$err" | head -2 |
            cut -c1-120 | od -c | head -4 | detail_more
        ok=1
    fi
    local longest
    longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$err")
    if [ "$longest" -gt $max_line ]; then
        say "a line of $longest bytes"
        ok=1
    fi
    return $ok
}

# check NAME VAR VALUE [ENV...]: the quiet program with VAR=VALUE.
check_value() {
    local name=$1 var=$2 value=$3
    shift 3
    local err=$work/value.$name.err
    timeout -k 2 20 env LD_PRELOAD="$preload" "$@" "$var=$value" "$work/quiet" \
        2>"$err" >/dev/null
    local rc=$?
    if [ $rc -ne 0 ]; then
        say "exit status $rc"
        fail "values: $name: the program runs"
    elif ! printable_bounded "$err"; then
        fail "values: $name: stderr stays printable and bounded"
    elif ! grep -qF -e "$var" -e '?[2J' "$err"; then
        say "stderr: $(head -c 300 "$err")"
        fail "values: $name: the bad value gets its warning"
    else
        pass "values: $name: warned, printable, lines of at most $max_line bytes"
    fi
}

for form in escapes long; do
    if [ $form = escapes ]; then
        v="$hostile"
    else
        v="$hostile$long$hostile"
    fi
    check_value "TIERMEM_LOG ($form)" TIERMEM_LOG "$v"
    check_value "TIERMEM_LOG_FILE ($form)" TIERMEM_LOG_FILE "/nonexistent/$v"
    check_value "TIERMEM_TIERS ($form)" TIERMEM_TIERS "$v"
    check_value "TIERMEM_PROFILE_EVENT ($form)" TIERMEM_PROFILE_EVENT "$v"
    check_value "TIERMEM_MODE ($form)" TIERMEM_MODE "$v"
    check_value "TIERMEM_PROFILE_INTERVAL ($form)" TIERMEM_PROFILE_INTERVAL "$v"
    check_value "TIERMEM_POLICY ($form)" TIERMEM_POLICY "$v"
    check_value "TIERMEM_GUIDANCE ($form)" TIERMEM_GUIDANCE "/nonexistent/$v"
done

# ---------------------------------------------------------------- reuse
own=$work/own.txt
log=$work/tiermem.log
rm -f "$own" "$log"
timeout -k 2 20 env LD_PRELOAD="$preload" TIERMEM_LOG_FILE="$log" \
    "$work/reuse" "$own" >/dev/null 2>"$work/reuse.err"
rc=$?
if [ $rc -ne 0 ]; then
    say "exit status $rc; stderr: $(head -c 300 "$work/reuse.err")"
    fail "reuse: the program runs"
elif [ "$(cat "$own")" != "the program's own line" ]; then
    say "the program's file holds:"
    head -3 "$own" | cut -c1-200 | detail_more
    fail "reuse: tiermem never writes into a file the program opened under its log's number"
elif [ -s "$work/reuse.err" ]; then
    say "stderr: $(head -c 300 "$work/reuse.err")"
    fail "reuse: with TIERMEM_LOG_FILE set, nothing goes to stderr (not a terminal)"
else
    pass "reuse: the program's file holds only its own line; the lost log file gets nothing"
fi
exit 0
