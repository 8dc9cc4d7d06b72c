#!/usr/bin/env python3
"""check_structure.py SRCDIR BUILDDIR -- the layers point one way, and no
two source files call each other round in a circle.

The folders are layers, lowest first (doc/design.md says why each exists):

    base < extent < settings < arena < sites < preload
         < profiler < policy < lib < tools

Two graphs are checked, because each catches what the other cannot:
- includes: a file may include only the headers of its own folder and of
  folders below it;
- calls: file A depends on file B when A's object file needs a symbol that
  B's defines (read with nm from BUILDDIR's objects).  A call may only go
  to the same folder or down, and the call graph has no cycle between files,
  except where every file of the cycle says in its opening comment that it
  forms "one concept with" each of the others (they are then one concept
  split for size, on purpose).

Prints one line per violation and exits 1 if there is any; prints a summary
line and exits 0 otherwise.
"""
import os
import re
import subprocess
import sys

LAYERS = ["base", "extent", "settings", "arena", "sites", "preload",
          "profiler", "policy", "lib", "tools"]
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# the public header, config.h and system headers belong to no layer
NEUTRAL_HEADERS = {"tiermem.h", "config.h"}


def sources(srcdir):
    """(folder, file name) of every .c and .h in the layer folders."""
    for folder in LAYERS:
        path = os.path.join(srcdir, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith((".c", ".h")):
                yield folder, name


def header_owners(srcdir):
    owners = {}
    for folder, name in sources(srcdir):
        if name.endswith(".h"):
            owners.setdefault(name, []).append(folder)
    return owners


def check_includes(srcdir, errors):
    owners = header_owners(srcdir)
    count = 0
    for folder, name in sources(srcdir):
        with open(os.path.join(srcdir, folder, name), errors="replace") as f:
            text = f.read()
        for header in INCLUDE_RE.findall(text):
            base = os.path.basename(header)
            if base in NEUTRAL_HEADERS or base not in owners:
                continue  # system or generated header
            count += 1
            target = owners[base][0]
            if len(owners[base]) > 1:
                errors.append(f"include: {base} exists in several folders: "
                              f"{', '.join(owners[base])}")
            elif RANK[target] > RANK[folder]:
                errors.append(f"include: {folder}/{name} includes "
                              f"{target}/{base}: {folder} is below {target}")
    return count


def nm_symbols(obj):
    """(defined globals, undefined) of an object file."""
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True,
                         check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        sym, kind = fields[0], fields[1]
        if kind == "U":
            undefined.add(sym)
        elif kind in "TDBRVWGS" and kind.isupper():
            defined.add(sym)
    return defined, undefined


def objects(srcdir, builddir):
    """file key ("folder/name.c") -> object path, for every layer source
    that was compiled into BUILDDIR (the non-PIC .o libtool leaves next to
    the .lo, or a program's .o)."""
    found = {}
    for folder, name in sources(srcdir):
        if not name.endswith(".c"):
            continue
        stem = name[:-2]
        d = os.path.join(builddir, folder)
        if not os.path.isdir(d):
            continue
        for cand in sorted(os.listdir(d)):
            # plain "x.o", or automake's per-target "prog-x.o"
            if cand == stem + ".o" or cand.endswith("-" + stem + ".o"):
                found[f"{folder}/{name}"] = os.path.join(d, cand)
                break
    return found


def call_graph(objs):
    defs, needs = {}, {}
    for key, obj in objs.items():
        d, u = nm_symbols(obj)
        needs[key] = u
        for sym in d:
            defs.setdefault(sym, set()).add(key)
    edges = {key: {} for key in objs}
    for key, syms in needs.items():
        for sym in syms:
            owners = defs.get(sym, set()) - {key}
            # a symbol defined twice (lib/startup.c in both libraries) is
            # no dependency on either copy in particular
            if len(owners) == 1:
                target = next(iter(owners))
                if target.startswith("preload/"):
                    # preload defines libc's and C++'s own names (malloc,
                    # operator new): a call to them is a call to the C
                    # library, whoever answers it
                    continue
                edges[key].setdefault(target, []).append(sym)
    return edges


def strongly_connected(edges):
    """Tarjan's algorithm, iteratively (no recursion limit)."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                result.append(sorted(comp))
    return result


def opening_comment(srcdir, key):
    with open(os.path.join(srcdir, key), errors="replace") as f:
        text = f.read()
    m = re.match(r"\s*/\*(.*?)\*/", text, re.S)
    return " ".join(m.group(1).split()) if m else ""


def declared_one_concept(srcdir, comp):
    """Does every file of the cycle name every other one after "one
    concept with" in its opening comment?"""
    for key in comp:
        comment = opening_comment(srcdir, key)
        at = comment.lower().find("one concept with")
        if at < 0:
            return False
        said = comment[at:]
        for other in comp:
            if other != key and os.path.basename(other) not in said:
                return False
    return True


def check_calls(srcdir, builddir, errors):
    objs = objects(srcdir, builddir)
    if not objs:
        errors.append(f"calls: no object files under {builddir}: build first")
        return 0, 0
    edges = call_graph(objs)
    nedges = 0
    for src, targets in sorted(edges.items()):
        for dst, syms in sorted(targets.items()):
            nedges += 1
            fs, fd = src.split("/")[0], dst.split("/")[0]
            if RANK[fd] > RANK[fs]:
                errors.append(f"calls: {src} calls up into {dst}: "
                              f"{', '.join(sorted(syms)[:4])}")
    for comp in strongly_connected(edges):
        if len(comp) > 1 and not declared_one_concept(srcdir, comp):
            errors.append("calls: a cycle between files: " + " -> ".join(comp))
    return len(objs), nedges


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    srcdir, builddir = sys.argv[1], sys.argv[2]
    errors = []
    nincludes = check_includes(srcdir, errors)
    nobjs, nedges = check_calls(srcdir, builddir, errors)
    for e in errors:
        print("FAIL: " + e)
    print(f"structure: {nincludes} includes, {nobjs} files, {nedges} call "
          f"edges between files, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
