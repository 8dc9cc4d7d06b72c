#!/usr/bin/env bash
# probe_sites_table.sh -- hostile site tables against tiermem-sites
# (issue 12, defect 3: the old bash tool evaluated the offset field in
# shell arithmetic, so a table could run commands).
#
# usage: bash probe_sites_table.sh BUILD_DIR WORK_DIR
#
# Each table's line 3 carries shell code, globs, option-looking or spaced
# object paths, or control bytes, in one field or another.  The tool runs
# in an empty directory; the code would create a file there and one in
# WORK_DIR.  For every table: no file appears, the exit status is 1, the
# message names TABLE:3, and nothing is printed on stdout.  A good table
# is then resolved, so that the tool is not simply refusing everything.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"
tool=$build/tiermem-sites
marker=$work/MARKER
if [ ! -x "$tool" ]; then
    say "$tool is missing"
    fail_probe "tiermem-sites is built"
fi
header='# tiermem site table, format 1'
site='site 1 key 0x1 arena 1 allocs 1 frees 0 live 1 peak 1 bytes 1'
# name<TAB>line 3
cases=$(cat <<EOF
offset in bash arithmetic	frame 0 /bin/ls BASH_VERSINFO[\$(touch\${IFS}PWNED)] ?
offset as command substitution	frame 0 /bin/ls \$(touch\${IFS}$marker) ?
offset in backticks	frame 0 /bin/ls \`touch\${IFS}PWNED\` ?
offset with a ;	frame 0 /bin/ls 0x10;touch\${IFS}PWNED ?
offset with a space and a command	frame 0 /bin/ls 0x10 ; touch PWNED
object as command substitution	frame 0 \$(touch\${IFS}PWNED) 0x10 ?
absolute object with command substitution	frame 0 /tmp/\$(touch\${IFS}$marker) 0x10 ?
absolute object with backticks	frame 0 /tmp/\`touch\${IFS}PWNED\` 0x10 ?
object with a ;	frame 0 /bin/ls;touch\${IFS}PWNED 0x10 ?
object glob *	frame 0 /bin/* 0x10 ?
object glob ?	frame 0 /bin/l? 0x10 ?
object glob []	frame 0 /[b]in/ls 0x10 ?
object -e	frame 0 -e 0x10 ?
object --help	frame 0 --help 0x10 ?
object -o with a path	frame 0 -o$marker 0x10 ?
object @file	frame 0 @$work/args 0x10 ?
object with a space	frame 0 $work/with space 0x10 ?
function as command substitution	frame 0 /bin/ls 0x10 \$(touch\${IFS}PWNED)
site key as command substitution	site 2 key \$(touch\${IFS}PWNED) arena 1 allocs 1 frees 0 live 1 peak 1 bytes 1
frame index as arithmetic	frame 1+0 /bin/ls 0x10 ?
offset too big for 64 bits	frame 0 /bin/ls 0x10000000000000000 ?
EOF
)
# The object files the spaced, option and @file cases name exist, so that
# a tool that passed them on would have something to open.
: >"$work/with space"
: >"$work/with"
printf -- '-o%s\n' "$marker" >"$work/args"

check_table() { # name table-file
    local name=$1 table=$2 run=$work/run
    rm -rf "$run" "$marker"
    mkdir "$run"
    (cd "$run" && "$tool" "$table") >"$work/out" 2>"$work/err"
    local status=$? bad=""
    local created
    created=$(ls -A "$run")
    [ -z "$created" ] || bad+="created in the working directory: $created"$'\n'
    [ ! -e "$marker" ] || bad+="created $marker"$'\n'
    [ "$status" -eq 1 ] || bad+="exit status $status, not 1"$'\n'
    grep -qF "$table:3: " "$work/err" || bad+="message does not name $table:3: $(head -c 300 "$work/err")"$'\n'
    [ ! -s "$work/out" ] || bad+="printed: $(head -c 300 "$work/out")"$'\n'
    if [ -z "$bad" ]; then
        pass "$name: refused at line 3, nothing ran"
    else
        printf '%s' "$bad" | detail
        fail "$name"
    fi
}

i=0
while IFS=$'\t' read -r name line; do
    i=$((i + 1))
    table=$work/table$i.txt
    printf '%s\n%s\n%s\n' "$header" "$site" "$line" >"$table"
    check_table "$name" "$table"
done <<<"$cases"

# Bytes that printf %s would not carry through `read`: built directly.
printf '%s\n%s\n# \033]0;owned\007\033[2J\n' "$header" "$site" >"$work/esc.txt"
check_table "terminal escape in a comment" "$work/esc.txt"
printf '%s\n%s\nframe 0 /bin/l\0s 0x10 ?\n' "$header" "$site" >"$work/nul.txt"
check_table "NUL in an object path" "$work/nul.txt"
{ printf '%s\n%s\n# ' "$header" "$site"; head -c 100000 /dev/zero | tr '\0' a; echo; } >"$work/long.txt"
check_table "a 100000-byte line" "$work/long.txt"
printf '%s\n%s\nframe 0 /bin/ls 0x10 ?' "$header" "$site" >"$work/torn.txt"
check_table "a truncated last line" "$work/torn.txt"

# A FIFO named as an object must not hang the tool (it is skipped).
mkfifo "$work/fifo"
printf '%s\n%s\nframe 0 %s 0x10 ?\n' "$header" "$site" "$work/fifo" >"$work/fifo.txt"
if timeout 10 "$tool" "$work/fifo.txt" >"$work/out" 2>"$work/err" &&
    grep -qxF "frame 0 $work/fifo 0x10 ?" "$work/out"; then
    pass "a FIFO as object is skipped, not opened for reading"
else
    say "status or output: $(head -c 300 "$work/out" "$work/err")"
    fail "a FIFO as object is skipped, not opened for reading"
fi

# The tool still does its job on a good table.
command -v addr2line >/dev/null ||
    skip_probe "a good table is resolved" "addr2line is not installed"
obj=$(command -v ls)
obj=$(readlink -f "$obj")
printf '%s\n%s\nframe 0 %s 0x1000 ?\n' "$header" "$site" "$obj" >"$work/good.txt"
if "$tool" "$work/good.txt" >"$work/out" 2>"$work/err" &&
    grep -qE "^frame 0 $obj 0x1000 .* at [^ ]+:" "$work/out"; then
    pass "a good table is resolved"
else
    say "output: $(head -c 300 "$work/out" "$work/err")"
    fail "a good table is resolved"
fi
exit 0
