# check_sites.awk -- validate one tiermem site table and summarize it.
#
# usage: awk [-v strict=1] -f check_sites.awk tiermem-sites.EXE.PID.txt
#
# Checks the format the preload library writes at exit (format 2):
#   # tiermem site table, format 2
#   # exe PATH pid PID rank RANK layout LAYOUT depth DEPTH
#   site ID key 0xHEX arena N allocs N frees N live N peak N bytes N kind K [id N]
#   cc FILE LINE COLUMN FUNCTION CALLEE CHAIN    (under a compiler site)
#   frame I OBJECT 0xOFFSET FUNCTION      (0..DEPTH-1 per site, in order)
#   arena N kind site|shared nodes 0xMASK allocs N frees N live N peak N bytes N
# (doc/sites.md: fields may be added at the end of a line), that ids and
# keys are unique, live <= peak, every site's arena has an arena line, and
# that the file name agrees with the header (pid, or rankN under MPI).
# With strict=1 (for programs with no thread left running at exit, so the
# table is one consistent snapshot) a site alone in an arena of kind "site"
# must have exactly that arena's allocs, frees, live and bytes: doc/sites.md
# says such an arena shares its site's counters.
# On success prints one line:
#   exe PATH pid PID rank RANK layout LAYOUT depth DEPTH sites N active N allocs N
# where active counts sites with allocs > 0.  On any error prints
# FILE:LINE: what, and exits 1, so a half-written or garbled table fails the
# test that reads it.
function err(msg) {
    printf "%s:%d: %s\n", FILENAME, FNR, msg
    bad = 1
}

BEGIN { bad = 0; nsites = 0; active = 0; allocs = 0; insite = 0; depth = 0 }

FNR == 1 {
    if ($0 != "# tiermem site table, format 2")
        err("first line is not the format 2 header: " $0)
    next
}

FNR == 2 {
    if ($0 !~ /^# exe [^ ]+ pid [0-9]+ rank -?[0-9]+ layout (per-site|per-thread|big-small) depth [0-9]+$/)
        err("bad header line: " $0)
    exe = $3; pid = $5; rank = $7; layout = $9; depth = $11 + 0
    want = (rank >= 0) ? ".rank" rank ".txt" : "." pid ".txt"
    if (substr(FILENAME, length(FILENAME) - length(want) + 1) != want)
        err("file name does not end in " want)
    next
}

/^site / {
    if ($0 !~ /^site [0-9]+ key 0x[0-9a-fA-F]+ arena [0-9]+ allocs [0-9]+ frees [0-9]+ live [0-9]+ peak [0-9]+ bytes [0-9]+ kind (stack|explicit|cc)( .*)?$/) {
        err("bad site line: " $0)
        next
    }
    if ($2 in ids) err("site id " $2 " appears twice")
    if ($4 in keys) err("key " $4 " appears twice")
    ids[$2] = 1; keys[$4] = 1
    if ($6 + 0 > 0) {
        site_arena[$6] = $2
        arena_sites[$6]++
        site_counts[$6] = $8 " " $10 " " $12 " " $16
    }
    if ($12 + 0 > $14 + 0) err("site " $2 ": live " $12 " > peak " $14)
    nsites++
    allocs += $8
    if ($8 + 0 > 0) active++
    insite = 1; nframes = 0
    next
}

/^cc / {
    if (!insite || nframes > 0) err("cc line not right under a site")
    if ($0 !~ /^cc [^ ]+ [0-9]+ [0-9]+ [^ ]+ [^ ]+ [^ ]+( .*)?$/) err("bad cc line: " $0)
    next
}

/^frame / {
    if (!insite) err("frame line before any site line")
    if ($0 !~ /^frame [0-9]+ [^ ]+ 0x[0-9a-fA-F]+ [^ ].*$/) {
        err("bad frame line: " $0)
        next
    }
    if ($2 + 0 != nframes) err("frame " $2 " where frame " nframes " was due")
    nframes++
    if (nframes > depth) err("more than depth " depth " frames")
    next
}

/^arena / {
    insite = 0
    if ($0 !~ /^arena [0-9]+ kind (site|shared) nodes 0x[0-9a-fA-F]+ allocs [0-9]+ frees [0-9]+ live [0-9]+ peak [0-9]+ bytes [0-9]+( .*)?$/) {
        err("bad arena line: " $0)
        next
    }
    if ($2 in arenas) err("arena " $2 " appears twice")
    arenas[$2] = 1
    if ($12 + 0 > $14 + 0) err("arena " $2 ": live " $12 " > peak " $14)
    counts = $8 " " $10 " " $12 " " $16
    if (strict && $4 == "site" && arena_sites[$2] == 1 && site_counts[$2] != counts)
        err("site " site_arena[$2] " counts (allocs frees live bytes) " \
            site_counts[$2] " but its arena " $2 " counts " counts)
    next
}

/^#/ { next }

{ err("unexpected line: " $0) }

END {
    if (FNR < 2) err("truncated: " FNR " lines")
    for (a in site_arena)
        if (!(a in arenas)) {
            FNR = "end"
            err("site " site_arena[a] " is in arena " a ", which has no arena line")
        }
    if (!bad)
        printf "exe %s pid %s rank %s layout %s depth %s sites %d active %d allocs %.0f\n",
            exe, pid, rank, layout, depth, nsites, active, allocs
    exit bad
}
