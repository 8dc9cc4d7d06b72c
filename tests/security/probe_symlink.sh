#!/usr/bin/env bash
# probe_symlink.sh -- issue 12, defect 1: a link planted in a shared output
# directory must never redirect a file tiermem writes.
#
# usage: bash probe_symlink.sh BUILD_DIR WORK_DIR
#
# As root, with fs.protected_symlinks=0 (saved and restored; SKIP if it
# cannot be changed), user nobody plants links to a root-owned mode-0600
# file at every name tiermem would write in a sticky world-writable
# directory, for the next few thousand pids: the site tables (final names
# and the old predictable "<name>.tmp<pid>" temporaries), the profiles and
# their .partial names, and tiermem-guide's output.  Then root runs
# /bin/true and a small allocating program under the preload library with
# TIERMEM_OUTPUT_DIR there and TIERMEM_PROFILE=1, and tiermem-guide -o into
# the directory.  The target must stay byte-identical after each.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
probe_init "$@"
sysctl=/proc/sys/fs/protected_symlinks
npids=3000

if [ "$(id -u)" -ne 0 ]; then
    skip_probe "symlink: planted links" "needs root to set fs.protected_symlinks"
fi
if [ ! -f "$preload" ] || [ ! -x "$guide" ]; then
    fail_probe "symlink: no preload library or tiermem-guide under $build"
fi
saved=$(cat "$sysctl" 2>/dev/null) || saved=
if [ -z "$saved" ] || ! (echo 0 >"$sysctl") 2>/dev/null; then
    skip_probe "symlink: planted links" "fs.protected_symlinks cannot be set to 0 here"
fi
shared=$(mktemp -d /tmp/tm-probe-symlink.XXXXXX)
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    echo "$saved" >"$sysctl" || echo "    could not restore $sysctl to $saved" >&2
    rm -rf "$shared"
}
trap cleanup EXIT
chmod 1777 "$shared"

target=$work/root-secret
head -c 64 /dev/urandom | od -An -tx1 >"$target"
chmod 0600 "$target"
cp -p "$target" "$work/root-secret.orig"

# The planter: links at every name for pids last+1 .. last+count, fast
# (one process, no fork per link: the pids must not run away meanwhile).
cat >"$work/planter.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "r");
    long last = 0;
    if (f == NULL || fscanf(f, "%ld", &last) != 1)
        return 3;
    fclose(f);
    long count = atol(argv[3]), planted = 0;
    char name[4096];
    for (long pid = last + 1; pid <= last + count; pid++)
        for (int i = 4; i < argc; i++) {
            int n = snprintf(name, sizeof name, "%s/", argv[1]);
            snprintf(name + n, sizeof name - (size_t)n, argv[i], pid, pid);
            planted += symlink(argv[2], name) == 0;
        }
    printf("%ld %ld\n", last + 1, planted);
    return 0;
}
EOF
cat >"$work/tm-alloc.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
int main(void)
{
    for (int i = 0; i < 64; i++) {
        char *p = malloc((size_t)(i + 1) << 16);
        if (p == NULL)
            return 1;
        memset(p, i, (size_t)(i + 1) << 16);
        free(p);
    }
    return 0;
}
EOF
if ! compile_c "$work/planter" "$work/planter.c" ||
    ! compile_c "$work/tm-alloc" "$work/tm-alloc.c"; then
    fail_probe "symlink: cannot compile the probe's programs"
fi
chmod 0755 "$work/planter"

# plant PROGRAM: links for the next $npids pids; prints "first planted".
plant() {
    local exe=$1
    as_nobody "$work/planter" "$shared" "$target" "$npids" \
        "tiermem-sites.$exe.%ld.txt" \
        "tiermem-sites.$exe.%ld.txt.tmp%ld" \
        "tiermem-profile.$exe.%ld.txt" \
        "tiermem-profile.$exe.%ld.txt.partial" \
        "tiermem-profile.$exe.%ld.%ld.txt" \
        "tiermem-profile.$exe.%ld.%ld.txt.partial"
}

# verdict WHAT: the target byte-identical (then restored for the next).
verdict() {
    if cmp -s "$target" "$work/root-secret.orig" && [ ! -L "$target" ] &&
        [ "$(stat -c %a "$target")" = 600 ]; then
        pass "$1"
    else
        say "$target changed; it now starts with:"
        head -c 200 "$target" | sed 's/^/| /' | detail
        fail "$1"
        cp -p "$work/root-secret.orig" "$target"
    fi
}

# Was the victim's pid among the planted ones?  Its site table says.
victim_planted() {
    local exe=$1 first=$2 t pid
    for t in "$shared"/tiermem-sites."$exe".*.txt; do
        [ -e "$t" ] || [ -L "$t" ] || continue
        pid=${t##*/tiermem-sites."$exe".}
        pid=${pid%.txt}
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        [ "$pid" -ge "$first" ] && [ "$pid" -lt $((first + npids)) ] &&
            return 0
    done
    return 1
}

for exe in true tm-alloc; do
    read -r first planted < <(plant "$exe")
    if [ -z "${planted:-}" ] || [ "$planted" -eq 0 ]; then
        fail "symlink: user nobody could not plant links in $shared"
        continue
    fi
    prog=/bin/true
    [ "$exe" = tm-alloc ] && prog=$work/tm-alloc
    timeout -k 2 30 env LD_PRELOAD="$preload" TIERMEM_OUTPUT_DIR="$shared" \
        TIERMEM_PROFILE=1 TIERMEM_PROFILE_SAMPLER=none TIERMEM_LOG=error \
        "$prog" 2>"$work/$exe.stderr"
    if ! victim_planted "$exe" "$first"; then
        skip "$exe under the library, links at its names" \
            "$exe's pid was not among the $npids planted: a busy machine"
        cp -p "$work/root-secret.orig" "$target"
        continue
    fi
    verdict "$exe under the library: links planted at its site table's and profile's names redirect nothing"
done

# tiermem-guide -o into the shared directory, a link planted at the name.
mkdir -p "$work/prof"
env LD_PRELOAD="$preload" TIERMEM_PROFILE=1 TIERMEM_PROFILE_SAMPLER=none \
    TIERMEM_PROFILE_FILE="$work/prof/p.txt" TIERMEM_LOG=error \
    "$work/tm-alloc" 2>"$work/prof.stderr"
if [ ! -f "$work/prof/p.txt" ]; then
    detail <"$work/prof.stderr"
    fail_probe "symlink: no profile for tiermem-guide to read"
fi
as_nobody ln -s "$target" "$shared/guidance.txt"
"$guide" -o "$shared/guidance.txt" "$work/prof/p.txt" >/dev/null \
    2>"$work/guide.stderr"
verdict "tiermem-guide -o: a link planted at the output's name redirects nothing"
exit 0
