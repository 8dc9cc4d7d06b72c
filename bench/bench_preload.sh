#!/usr/bin/env bash
# bench_preload.sh BUILD_DIR [rounds] -- what an unmodified program pays for
# running under tiermem's LD_PRELOAD library, next to glibc and to the other
# allocators a user could preload instead.
#
# Workloads (each an ordinary program that links nothing of tiermem):
#   mallocheavy  bench/mallocheavy: 2 threads, millions of 16-512 B blocks,
#                some 4-64 KiB, lists/hash tables built and torn down,
#                ~1M 32-byte nodes (hypre's pattern), blocks freed on
#                another thread;
#   bigarrays    bench/bigarrays: an HPC-proxy shape, a few dozen arrays of
#                >= 2 MiB holding ~99% of the bytes, stencil + triad;
#   python       a python3 dict/json script (written below), if /usr/bin/python3
#                (or $BENCH_PRELOAD_PYTHON) is a real executable;
#   amg          tools/amg_driver.c, a BoomerAMG solve through Debian's hypre
#                on 2 MPI ranks (mpirun -np 2; only the ranks are preloaded,
#                through mpirun -x), if mpicc, mpirun and hypre's headers
#                are there; BENCH_PRELOAD_AMG_ARGS (default "-n 100") sizes
#                it.  Its wall time includes mpirun's start-up.
# Configurations:
#   glibc            no preload
#   tiermem          libtiermem-preload.so, default settings
#   tiermem-small0   the same with TIERMEM_SMALL_SIZE=0 (every allocation
#                    walks the stack: no small-allocation fast path)
#   tiermem-thread   the same with TIERMEM_LAYOUT=per-thread
#   tiermem-profile  the same with TIERMEM_PROFILE=1: the profiler at its
#                    default settings (with no PMU, auto picks the refs
#                    sampler); its overhead is printed as the median of the
#                    per-round ratios to the plain tiermem run
#   tiermem-profile-refs, tiermem-profile-uffd  the profiler with that
#                    sampler named (refs: accessed bits, 2% of a core at
#                    most; uffd: write faults), side by side
#   tiermem-profile-none  the profiler with no access sampler (its thread,
#                    residency, attribution and file only): splits the
#                    overhead between the sampler and the rest
#   jemalloc         /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
#   memtier          memkind's libmemtier.so.0, one DRAM tier (static ratio)
# A configuration whose library is missing is reported and skipped.
#
# Method: one warm-up round (not counted; its glibc output is the reference),
# then `rounds` rounds (default 7).  In each round every workload runs once
# under every configuration, back to back, in an order rotated each round
# (ABAB..., never all runs of one configuration in a row).  Each run is
# spawned directly by a small Python driver, so only the workload itself
# sees LD_PRELOAD; wait4() gives its wall time, user+system CPU time and
# peak RSS.  Ratios to glibc are medians of per-round ratios.  CPU time is
# printed too because on a shared 2-core machine wall time also measures the
# neighbours.  Every run's stdout must equal glibc's (the workloads print
# checksums of their data); a difference or a failed run is reported.
#
# A benchmark, not a test: nothing passes or fails on a figure.  The exit
# status is non-zero only if a run failed or an output differed.
#
# Environment: BENCH_PRELOAD_WORKLOADS="mallocheavy bigarrays python" and
# BENCH_PRELOAD_CONFIGS="glibc tiermem ..." select a subset; glibc is always
# run (the ratios need it).  BENCH_PRELOAD_BIGARRAYS_ARGS adds arguments to
# bigarrays, e.g. "--iters 400" for a run of several seconds (many profiler
# intervals).
set -uo pipefail

usage() {
    echo "usage: $0 BUILD_DIR [rounds]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
build=$1
rounds=${2:-7}
case $rounds in
'' | *[!0-9]*) usage ;;
esac
[ "$rounds" -ge 1 ] || usage

if [ ! -f "$build/Makefile" ]; then
    echo "$0: $build/Makefile not found: configure a build tree first" >&2
    echo "  (scripts/build.sh $build)" >&2
    exit 2
fi
build=$(cd "$build" && pwd)

# The preload library is a normal target, the workloads are bench targets.
if ! make -C "$build" -j"$(nproc)" >/dev/null || ! make -C "$build" bench >/dev/null; then
    echo "$0: build failed in $build" >&2
    exit 1
fi

driver_python=/usr/bin/python3
command -v "$driver_python" >/dev/null || driver_python=$(command -v python3)
if [ -z "$driver_python" ]; then
    echo "$0: python3 is needed to drive the runs" >&2
    exit 2
fi

# The python workload must be the interpreter itself, not a wrapper script
# (pyenv's shims are bash scripts: the preload would also measure bash).
workload_python=${BENCH_PRELOAD_PYTHON:-/usr/bin/python3}
if [ ! -x "$workload_python" ] || [ "$(head -c4 "$(readlink -f "$workload_python")" 2>/dev/null | od -An -c | tr -d ' ')" != '177ELF' ]; then
    echo "== python workload skipped: $workload_python is not an ELF executable" >&2
    workload_python=""
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The AMG workload: built here as scripts/run-example.sh builds it.
hypre_inc=/usr/include/hypre
if command -v mpicc >/dev/null && command -v mpirun >/dev/null && [ -f "$hypre_inc/HYPRE.h" ]; then
    if ! mpicc -std=c11 -O2 -g -I"$hypre_inc" "$(dirname "$0")/../tools/amg_driver.c" \
        -lHYPRE -o "$tmp/amg_driver" 2>"$tmp/amg-build.log"; then
        echo "== amg workload skipped: amg_driver did not build (see below)" >&2
        cat "$tmp/amg-build.log" >&2
    fi
else
    echo "== amg workload skipped: needs mpicc, mpirun and $hypre_inc/HYPRE.h" >&2
fi

# The python workload: dicts, lists and JSON round trips, sized for about a
# second.  Its output is a digest of the data only.
cat >"$tmp/dictjson.py" <<'EOF'
import hashlib
import json
import random

rng = random.Random(20261127)
h = hashlib.sha256()
for rep in range(2):
    table = {}
    for i in range(40000):
        key = "k%d_%d" % (i, rng.randint(0, 999))
        table[key] = {"id": i, "vals": [i, i * 2, rng.random()],
                      "name": "n" * (i % 23), "tags": {"a": i % 7, "b": str(i)}}
    for k in list(table)[::3]:
        del table[k]
    text = json.dumps(table, sort_keys=True)
    back = json.loads(text)
    groups = {}
    for k, v in back.items():
        groups.setdefault(v["tags"]["a"], []).append(v["id"])
    for g in groups.values():
        g.sort(reverse=True)
    h.update(text[:100000].encode())
    h.update(json.dumps(groups, sort_keys=True).encode())
    h.update(str(len(text)).encode())
print("dictjson", h.hexdigest()[:32])
EOF

"$driver_python" - "$build" "$rounds" "$tmp" "$workload_python" <<'EOF'
import os, platform, shutil, statistics, subprocess, sys, time

build, rounds, tmp, pyexe = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
preload = os.environ.get("BENCH_PRELOAD_LIB") or os.path.join(build, ".libs", "libtiermem-preload.so")
jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
memtier = "/usr/lib/x86_64-linux-gnu/libmemtier.so.0"

# A clean environment: no allocator settings leak in from the caller.
base_env = {k: v for k, v in os.environ.items()
            if k != "LD_PRELOAD" and not k.startswith(("TIERMEM_", "SH_", "MEMKIND_"))}

configs = [
    ("glibc", None, {}),
    ("tiermem", preload, {}),
    ("tiermem-small0", preload, {"TIERMEM_SMALL_SIZE": "0"}),
    ("tiermem-thread", preload, {"TIERMEM_LAYOUT": "per-thread"}),
    ("tiermem-profile", preload, {"TIERMEM_PROFILE": "1", "TIERMEM_OUTPUT_DIR": tmp}),
    ("tiermem-profile-refs", preload, {"TIERMEM_PROFILE": "1", "TIERMEM_OUTPUT_DIR": tmp,
                                       "TIERMEM_PROFILE_SAMPLER": "refs"}),
    ("tiermem-profile-uffd", preload, {"TIERMEM_PROFILE": "1", "TIERMEM_OUTPUT_DIR": tmp,
                                       "TIERMEM_PROFILE_SAMPLER": "uffd"}),
    ("tiermem-profile-none", preload, {"TIERMEM_PROFILE": "1", "TIERMEM_OUTPUT_DIR": tmp,
                                       "TIERMEM_PROFILE_SAMPLER": "none"}),
    ("jemalloc", jemalloc, {}),
    ("memtier", memtier, {"MEMKIND_MEM_TIERS": "KIND:DRAM,RATIO:1;POLICY:STATIC_RATIO"}),
]
want = os.environ.get("BENCH_PRELOAD_CONFIGS")
if want:
    names = set(want.split()) | {"glibc"}
    configs = [c for c in configs if c[0] in names]
kept = []
for name, lib, extra in configs:
    if lib is not None and not os.path.exists(lib):
        print("== %s skipped: %s not found" % (name, lib))
        continue
    kept.append((name, lib, extra))
configs = kept

workloads = [
    ("mallocheavy", [os.path.join(build, "bench", "mallocheavy")]),
    ("bigarrays", [os.path.join(build, "bench", "bigarrays")]
                  + os.environ.get("BENCH_PRELOAD_BIGARRAYS_ARGS", "").split()),
]
if pyexe:
    workloads.append(("python", [pyexe, os.path.join(tmp, "dictjson.py")]))
amg = os.path.join(tmp, "amg_driver")
if os.path.exists(amg):
    workloads.append(("amg", ["mpirun", "--allow-run-as-root", "--oversubscribe",
                              "-np", "2", "@MPI_ENV@", amg]
                      + os.environ.get("BENCH_PRELOAD_AMG_ARGS", "-n 100").split()))
want = os.environ.get("BENCH_PRELOAD_WORKLOADS")
if want:
    workloads = [w for w in workloads if w[0] in want.split()]

def run(argv, lib, extra, tag):
    env = dict(base_env)
    if "@MPI_ENV@" in argv:
        # mpirun itself is never preloaded: the ranks get the library and
        # the settings through -x
        i = argv.index("@MPI_ENV@")
        xs = [w for k, v in sorted(extra.items()) for w in ("-x", "%s=%s" % (k, v))]
        if lib:
            xs += ["-x", "LD_PRELOAD=" + lib]
        argv = argv[:i] + xs + argv[i + 1:]
        argv[0] = shutil.which(argv[0]) or argv[0]
        lib, extra = None, {}
    env.update(extra)
    if lib:
        env["LD_PRELOAD"] = lib
    out, err = os.path.join(tmp, tag + ".out"), os.path.join(tmp, tag + ".err")
    acts = [(os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=acts)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    with open(out, "rb") as f:
        text = f.read()
    with open(err, "rb") as f:
        errtext = f.read()
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
            "rss": ru.ru_maxrss / 1024.0, "status": status,
            "out": text, "err": errtext}

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"

print("== %s, %d CPUs, %s" % (" ".join(platform.uname()[0:3:2]), os.cpu_count(),
                              time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
print("== load average before: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
print("== jemalloc %s, memkind %s, python workload %s" % (
    sh("dpkg-query -W -f='${Version}' libjemalloc2 2>/dev/null") or "?",
    sh("dpkg-query -W -f='${Version}' libmemkind0 2>/dev/null") or "not installed",
    sh("%s --version 2>&1" % pyexe) if pyexe else "skipped"))
print("== %d rounds + 1 warm-up; configurations: %s" % (rounds, ", ".join(c[0] for c in configs)))
sys.stdout.flush()

res = {}  # (workload, config) -> list of runs (measured rounds only)
ref = {}  # workload -> glibc's stdout in the warm-up round
problems = []
for r in range(-1, rounds):
    for wname, argv in workloads:
        k = max(r, 0) % len(configs)
        order = configs[k:] + configs[:k]
        for cname, lib, extra in order:
            x = run(argv, lib, extra, "%s.%s" % (wname, cname))
            if x["status"] != 0:
                problems.append("%s under %s (round %d): exit status %#x; stderr: %s" % (
                    wname, cname, r, x["status"], x["err"][-2000:].decode(errors="replace")))
            if r < 0 and cname == "glibc":
                ref[wname] = x["out"]
            if r >= 0:
                res.setdefault((wname, cname), []).append(x)
    if r >= 0:
        print("== round %d/%d done" % (r + 1, rounds))
        sys.stdout.flush()
# Compared after all rounds against the reference: glibc's warm-up output.
for (wname, cname), runs in res.items():
    bad = [i for i, x in enumerate(runs) if x["out"] != ref.get(wname)]
    if bad:
        problems.append("%s under %s: stdout differs from glibc's in rounds %s; first: %r" % (
            wname, cname, bad, runs[bad[0]]["out"][:300]))

def med_range(v, fmt):
    return (fmt + " [" + fmt + "-" + fmt + "]") % (statistics.median(v), min(v), max(v))

print()
print("median over %d rounds [min-max]; ratios are medians of per-round ratios to glibc" % rounds)
hdr = "%-12s %-21s %22s %19s %20s %19s %16s %6s"
print(hdr % ("workload", "config", "wall s", "wall / glibc", "CPU s (user+sys)",
             "CPU / glibc", "peak RSS MiB", "output"))
for wname, _ in workloads:
    g = res.get((wname, "glibc"))
    for cname, _, _ in configs:
        runs = res.get((wname, cname))
        if not runs:
            continue
        wall = [x["wall"] for x in runs]
        cpu = [x["cpu"] for x in runs]
        rss = [x["rss"] for x in runs]
        rw = [a["wall"] / b["wall"] for a, b in zip(runs, g)]
        rc = [a["cpu"] / b["cpu"] for a, b in zip(runs, g)]
        same = all(x["out"] == ref.get(wname) for x in runs)
        print(hdr % (wname, cname, med_range(wall, "%.3f"), med_range(rw, "%.2f"),
                     med_range(cpu, "%.3f"), med_range(rc, "%.2f"),
                     "%.1f (max %.1f)" % (statistics.median(rss), max(rss)),
                     "same" if same else "DIFF"))
# The profiler's price: each round's profiled run against the same round's
# unprofiled run, so both saw the same neighbours.
if any(c[0].startswith("tiermem-profile") for c in configs) and any(c[0] == "tiermem" for c in configs):
    print()
    print("profiler overhead (tiermem-profile* / tiermem, median of per-round ratios [min-max])")
    for wname, _ in workloads:
        for pname in ("tiermem-profile", "tiermem-profile-refs", "tiermem-profile-uffd",
                      "tiermem-profile-none"):
            a, b = res.get((wname, pname)), res.get((wname, "tiermem"))
            if not a or not b:
                continue
            rw = [x["wall"] / y["wall"] for x, y in zip(a, b)]
            rc = [x["cpu"] / y["cpu"] for x, y in zip(a, b)]
            print("%-12s %-21s wall %s   CPU %s" % (wname, pname, med_range(rw, "%.3f"),
                                                   med_range(rc, "%.3f")))
print()
print("== load average after: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
for p in problems:
    print("== PROBLEM: " + p)
sys.exit(1 if problems else 0)
EOF
exit $?
