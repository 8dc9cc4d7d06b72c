/*
 * fuzz_support.c -- what the fuzz targets need from files they do not link.
 *
 * The targets compile only the parsers and the hooks they use (log,
 * metadata memory, page size).  meta_alloc.c counts its mappings in
 * hook_counters, which lives in extent_hooks.c with the jemalloc hooks;
 * this defines it instead, so the targets need no jemalloc.  It also holds
 * the targets' common start-up: the log goes to /dev/null at debug level,
 * so every message is formatted (and fuzzed) but none is printed.
 */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>

#include "extent.h"

hook_counters_t hook_counters;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        abort();
    log_configure(TM_LOG_DEBUG, fd);
    return 0;
}
