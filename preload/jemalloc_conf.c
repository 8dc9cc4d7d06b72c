/*
 * jemalloc_conf.c -- the options of the jemalloc under the preload library.
 *
 * jemalloc reads the string `malloc_conf` that the process defines, before
 * /etc/malloc.conf and the MALLOC_CONF environment variable (each of which
 * still overrides it, so a user who wants otherwise can say so).
 *
 * thp:never -- no transparent huge pages for what jemalloc maps through
 * its own default hooks.  Under the preload library those mappings hold
 * only jemalloc's bookkeeping (its base blocks, the radix tree of
 * extents): the program's blocks come from tiermem's arenas, whose memory
 * comes from tiermem's hooks, which this setting does not touch, so the
 * program's data keeps huge pages wherever the system gives them.  Under
 * THP "always" (RHEL's default), that bookkeeping otherwise became about
 * 18 MiB of huge pages per process, on the CPU's node -- the fast tier
 * tiermem is there to keep for hot data (doc/benchmarks.md, bigger-hot).
 *
 * Only in libtiermem-preload.so: a program linked with libtiermem.so
 * takes its malloc from wherever it did before, and its own data may live
 * in jemalloc's default arena, where huge pages are its business.
 */
#include "config.h"

extern const char *malloc_conf;
__attribute__((visibility("default"))) const char *malloc_conf = "thp:never";
