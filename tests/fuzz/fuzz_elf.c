/*
 * fuzz_elf.c -- libFuzzer target for the ELF symbol reader
 * (sites/elf_symbols.c), which reads the files of loaded objects: a file
 * can be replaced on disk after it was loaded, so its bytes are hostile.
 *
 * The input is the file's bytes, copied to an aligned buffer of exactly
 * that size.  A file accepted must give symbols and names inside it; every
 * function symbol's name is a NUL-terminated string in the buffer, and the
 * lookup of each function's start finds a function that holds it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "sites.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *buf = NULL;
    if (size == 0 || posix_memalign(&buf, 64, size) != 0)
        return 0;
    memcpy(buf, data, size);
    elf_symbols_t e;
    if (elf_symbols_parse(buf, size, &e)) {
        const char *lo = buf, *hi = lo + size;
        if ((const char *)e.sym < lo ||
            (const char *)(e.sym + e.nsym) > hi || e.str < lo ||
            e.str + e.strsize > hi)
            abort();
        for (size_t i = 0; i < e.nsym && i < 4096; i++) {
            const char *name, *found;
            uintptr_t start, at;
            size_t len;
            if (!elf_symbols_func(&e, i, &name, &start, &len))
                continue;
            if (name < e.str || name + strlen(name) >= e.str + e.strsize)
                abort();
            if (len > 0 && (!elf_symbols_find(&e, start, &found, &at) ||
                            at > start))
                abort();
        }
        elf_symbols_close(&e);
    }
    free(buf);
    return 0;
}
