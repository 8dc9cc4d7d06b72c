#!/usr/bin/env bash
# gen-settings-doc.sh -- fill doc/configuration.md's settings tables from
# the settings registry (the tiermem-settings tool).
#
#   scripts/gen-settings-doc.sh TOOL [DOC]          rewrite DOC in place
#   scripts/gen-settings-doc.sh --check TOOL [DOC]  exit 1 if DOC differs
#
# TOOL is a built tiermem-settings (e.g. build/release/tiermem-settings);
# DOC defaults to doc/configuration.md next to this script.  Between
#   <!-- settings:begin layers=LAYER[,LAYER...] -->
#   <!-- settings:end -->
# the lines become `TOOL --markdown LAYER[,LAYER...]`; everything else, the
# prose, is kept as written.
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then
    check=1
    shift
fi
[ $# -ge 1 ] || { echo "usage: $0 [--check] TOOL [DOC]" >&2; exit 2; }
tool=$1
doc=${2:-$(dirname "$0")/../doc/configuration.md}
[ -x "$tool" ] || { echo "$0: $tool is not an executable" >&2; exit 2; }
[ -f "$doc" ] || { echo "$0: no $doc" >&2; exit 2; }

new=$(mktemp)
trap 'rm -f "$new"' EXIT
in_block=0 blocks=0
while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^'<!-- settings:begin layers='([a-z,]+)' -->'$ ]]; then
        [ $in_block = 0 ] || { echo "$doc: nested settings:begin" >&2; exit 2; }
        printf '%s\n' "$line"
        "$tool" --markdown "${BASH_REMATCH[1]}"
        in_block=1 blocks=$((blocks + 1))
    elif [[ $line == '<!-- settings:end -->' ]]; then
        [ $in_block = 1 ] || { echo "$doc: settings:end without begin" >&2; exit 2; }
        printf '%s\n' "$line"
        in_block=0
    elif [ $in_block = 0 ]; then
        printf '%s\n' "$line"
    fi
done <"$doc" >"$new"
[ $in_block = 0 ] || { echo "$doc: settings:begin without end" >&2; exit 2; }
[ $blocks -gt 0 ] || { echo "$doc: no settings:begin markers" >&2; exit 2; }

if [ $check = 1 ]; then
    if ! diff -u "$doc" "$new"; then
        echo "$doc: its settings tables differ from the code's rows (above)." >&2
        echo "Edit the rows (settings/options.c, profiler/profiler_options.c, ...)," >&2
        echo "then regenerate: scripts/gen-settings-doc.sh BUILD_DIR/tiermem-settings" >&2
        exit 1
    fi
    exit 0
fi
cmp -s "$doc" "$new" || cat "$new" >"$doc"
