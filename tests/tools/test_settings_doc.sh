#!/usr/bin/env bash
# test_settings_doc.sh -- doc/configuration.md's settings tables are what
# the settings registry prints (tiermem-settings --markdown), so the docs
# cannot drift from the rows the runtime parses with.  Also checks that the
# tool lists every layer's table (a layer whose rows were lost from the
# registry would otherwise vanish from the docs and from the unknown-name
# check alike).  On failure: scripts/gen-settings-doc.sh BUILD/tiermem-settings
set -uo pipefail
builddir=${TM_BUILDDIR:-$(pwd)}
srcdir=${srcdir:-$(dirname "$0")/../..}
tool=$builddir/tiermem-settings
[ -x "$tool" ] || { echo "FAIL: no $tool"; exit 1; }
fail=0
layers=$("$tool" --layers | tr '\n' ' ')
if [ "$layers" = "log tiers sites profiler policy " ]; then
    echo "PASS: the registry has every layer's table ($layers)"
else
    echo "FAIL: the registry's tables are \"$layers\"," \
         "not \"log tiers sites profiler policy \""
    fail=1
fi
if "$srcdir/scripts/gen-settings-doc.sh" --check "$tool" \
    "$srcdir/doc/configuration.md"; then
    echo "PASS: doc/configuration.md's tables match the registry"
else
    echo "FAIL: doc/configuration.md is out of date: run" \
         "scripts/gen-settings-doc.sh $tool"
    fail=1
fi
# --help-settings names every setting the markdown does.
n_text=$("$tool" --help-settings | grep -c '^  TIERMEM_')
n_md=$("$tool" --markdown log,tiers,sites,profiler,policy | grep -c '^| `TIERMEM_')
if [ "$n_text" -eq "$n_md" ] && [ "$n_text" -gt 30 ]; then
    echo "PASS: --help-settings lists the $n_text settings"
else
    echo "FAIL: --help-settings lists $n_text settings, --markdown $n_md"
    fail=1
fi
exit $fail
