#!/usr/bin/env bash
# fuzz.sh -- build the libFuzzer targets for the settings parser, the
# guidance file parser, the profile reader, the site table reader, the
# trace (replay) parser, the kernel node-list parser, the ELF symbol
# reader and the /proc smaps/numa_maps reader with clang, and run
# each one for a bounded time.
#
# usage: scripts/fuzz.sh BUILD_DIR
#   BUILD_DIR is a configured build directory (scripts/build.sh BUILD_DIR);
#   only its config.h is used.  The fuzzers, their working corpora, logs and
#   any crash inputs go to BUILD_DIR/fuzz.  The seeds in tests/fuzz/corpus
#   are read, never written.
# environment:
#   FUZZ_TIME  seconds per target (default 20)
#   FUZZ_RUNS  most executions per target (default 20000000)
#   CC         the compiler (default clang)
# exit status: 0 if no target crashed, 1 if one did (its input is saved as
#   BUILD_DIR/fuzz/crash-*, and reproduced by running the target on it),
#   2 for a usage or build problem.
#
# The targets are compiled from the sources directly, with
# -fsanitize=fuzzer,address,undefined: the parsers, the lexer under them
# (base/text.c), base/log.c, base/meta_alloc.c and base/os.c (page size),
# nothing of jemalloc.  fuzz_trace includes profiler/sampler_replay.c itself
# (its parser is static) and stubs the arena and site calls.
# libFuzzer ships with clang's runtime libraries; on Debian 12 that is the
# package libclang-rt-14-dev, which `clang` only recommends.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
[ -f "$1/config.h" ] || {
    echo "fuzz: $1/config.h not found; configure first: scripts/build.sh $1" >&2
    exit 2
}
build=$(cd "$1" && pwd)
cc=${CC:-clang}
time_each=${FUZZ_TIME:-20}
runs_each=${FUZZ_RUNS:-20000000}
out=$build/fuzz
mkdir -p "$out"

command -v "$cc" >/dev/null || {
    echo "fuzz: $cc not found (Debian: apt-get install clang)" >&2
    exit 2
}
probe=$out/probe.c
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$probe"
"$cc" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>"$out/probe.log" || {
    echo "fuzz: $cc cannot link libFuzzer (see $out/probe.log);" \
        "Debian: apt-get install libclang-rt-14-dev" >&2
    exit 2
}

flags=(-g -O1 -std=c11 -Wall -Wextra -Werror
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer -DHAVE_CONFIG_H
    -I"$build" -I"$root/include" -I"$root/base" -I"$root/extent" -I"$root/settings"
    -I"$root/arena" -I"$root/sites" -I"$root/profiler")
sources=("$root/settings/options.c" "$root/settings/options_lists.c" "$root/settings/parse.c" "$root/settings/settings_init.c" "$root/sites/guidance.c"
    "$root/profiler/profile_read.c" "$root/base/read_file.c" "$root/profiler/profile_parse.c"
    "$root/sites/site_table_read.c" "$root/base/text.c" "$root/arena/node_sysfs.c"
    "$root/base/file_open.c" "$root/base/log.c" "$root/base/owned_fd.c" "$root/settings/setting_env.c"
    "$root/base/meta_alloc.c" "$root/base/os.c" "$root/sites/elf_symbols.c"
    "$root/profiler/proc_vma_scan.c" "$root/arena/node_room.c"
    "$root/sites/cc_notes.c" "$root/sites/site_table_fields.c"
    "$root/tests/fuzz/fuzz_support.c")

targets=(guidance options profile site_table trace node_list elf proc_vma zoneinfo cc_note)
declare -A max_len=([guidance]=65536 [options]=4096 [profile]=8192 [site_table]=16384
    [trace]=16384 [node_list]=256 [elf]=16384 [proc_vma]=8192
    [zoneinfo]=16384 [cc_note]=8192)
for t in "${targets[@]}"; do
    "$cc" "${flags[@]}" "$root/tests/fuzz/fuzz_$t.c" "${sources[@]}" \
        -lnuma -lm -o "$out/fuzz_$t" || { echo "fuzz: building fuzz_$t failed" >&2; exit 2; }
done

failed=0
for t in "${targets[@]}"; do
    mkdir -p "$out/corpus-$t"
    log=$out/fuzz_$t.log
    set +e
    "$out/fuzz_$t" -max_total_time="$time_each" -runs="$runs_each" \
        -timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$t]}" \
        -dict="$root/tests/fuzz/$t.dict" -artifact_prefix="$out/" \
        -print_final_stats=1 "$out/corpus-$t" "$root/tests/fuzz/corpus/$t" \
        >"$log" 2>&1
    status=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$status" -eq 0 ]; then
        echo "fuzz_$t: ${execs:-?} runs in at most ${time_each}s, no crash"
    else
        failed=1
        echo "fuzz_$t: FAILED (exit $status) after ${execs:-?} runs; log: $log" >&2
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' \
            "$log" | head -20 >&2 || true
    fi
done
exit "$failed"
