/*
 * fuzz_support.c -- what the fuzz targets need from files they do not link.
 *
 * The targets compile only the parsers and the hooks they use (log,
 * metadata memory, page size).  meta_alloc.c counts its mappings in
 * hook_counters, which lives in extent_hooks.c with the jemalloc hooks;
 * this defines it instead, so the targets need no jemalloc.
 */
#include "config.h"

#include "hooks.h"

hook_counters_t hook_counters;
