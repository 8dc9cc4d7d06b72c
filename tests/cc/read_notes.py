#!/usr/bin/env python3
"""read_notes.py ELF -- the tiermem site notes of an object or program, one
site a line: "0xID FILE:LINE:COLUMN FUNCTION CALLEE CHAIN" (chain "-" when
none), from `readelf -n` (the note layout is in doc/compiler.md).  Exits 1
when a note is malformed."""
import struct
import subprocess
import sys

NOTE_TYPE = "0x544d0001"


def descs(path):
    out = subprocess.run(["readelf", "-n", "--wide", path], capture_output=True,
                         text=True, check=True).stdout
    owner = None
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "tiermem" and NOTE_TYPE in line:
            owner = True
        if owner and "description data:" in line:
            hexes = line.split("description data:")[1].split()
            yield bytes(int(h, 16) for h in hexes)
            owner = None


def string_at(strtab, off):
    end = strtab.index(b"\0", off)
    return strtab[off:end].decode()


def sites(desc):
    version, nsites, stroff, strsize = struct.unpack_from("<4I", desc, 0)
    if version != 1 or stroff != 16 + 32 * nsites or stroff + strsize > len(desc):
        raise ValueError(f"bad note header {version} {nsites} {stroff} {strsize}")
    strtab = desc[stroff:stroff + strsize]
    for i in range(nsites):
        sid, f, fn, callee, chain, line, col = struct.unpack_from(
            "<Q6I", desc, 16 + 32 * i)
        yield (sid, string_at(strtab, f), line, col, string_at(strtab, fn),
               string_at(strtab, callee), string_at(strtab, chain) or "-")


def main():
    for desc in descs(sys.argv[1]):
        for sid, f, line, col, fn, callee, chain in sites(desc):
            print(f"{sid:#018x} {f}:{line}:{col} {fn} {callee} {chain}")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, struct.error) as e:
        print(f"read_notes.py: {sys.argv[1]}: malformed tiermem note: {e}",
              file=sys.stderr)
        sys.exit(1)
