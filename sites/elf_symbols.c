/*
 * elf_symbols.c -- the function symbols of a loaded object, read from its
 * file: its symbol table (.symtab) where it has one, else its exports
 * (.dynsym).
 *
 * Why: dladdr sees exported symbols only.  HPC proxy apps link their solver
 * library into the executable without -rdynamic (the AMG proxy app links
 * hypre that way), so none of its functions is exported: wrappers inside
 * it (hypre_CAlloc) could not be skipped, and frames could not be named.
 *
 * The file is mapped read-only; nothing here calls malloc, because it runs
 * inside the preload library's malloc when a new object is first seen.  A
 * file is hostile data: every offset, size and name is checked against
 * the mapping before it is read, and a malformed file reads as one without
 * symbols.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sites.h"

/* Larger files are not read (a corrupt size, or a debug build of a huge
 * program: its wrappers are then matched through its exports only). */
#define ELF_MAX_BYTES ((uint64_t)4 << 30)

/* [off, off + len) inside a file of size bytes, without overflow. */
static bool within(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

static const ElfW(Shdr) *section(const elf_symbols_t *e, const ElfW(Ehdr) *h,
                                 unsigned i)
{
    return (const ElfW(Shdr) *)(e->map + h->e_shoff) + i;
}

/* The symbol section of type `type` and its string table, if both are
 * well formed. */
static bool find_table(elf_symbols_t *e, const ElfW(Ehdr) *h, unsigned type)
{
    for (unsigned i = 0; i < h->e_shnum; i++) {
        const ElfW(Shdr) *s = section(e, h, i);
        if (s->sh_type != type)
            continue;
        if (s->sh_entsize != sizeof(ElfW(Sym)) || s->sh_link >= h->e_shnum ||
            !within(s->sh_offset, s->sh_size, e->size) ||
            s->sh_offset % alignof(ElfW(Sym)) != 0)
            return false;
        const ElfW(Shdr) *str = section(e, h, s->sh_link);
        if (str->sh_type != SHT_STRTAB ||
            !within(str->sh_offset, str->sh_size, e->size) ||
            str->sh_size == 0)
            return false;
        e->sym = (const ElfW(Sym) *)(e->map + s->sh_offset);
        e->nsym = s->sh_size / sizeof(ElfW(Sym));
        e->str = (const char *)(e->map + str->sh_offset);
        e->strsize = str->sh_size;
        return true;
    }
    return false;
}

static bool parse(elf_symbols_t *e)
{
    const ElfW(Ehdr) *h = (const ElfW(Ehdr) *)e->map;
    if (e->size < sizeof *h || memcmp(h->e_ident, ELFMAG, SELFMAG) != 0 ||
        h->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64
                                                     : ELFCLASS32) ||
        h->e_ident[EI_DATA] != ELFDATA2LSB || h->e_shnum == 0 ||
        h->e_shentsize != sizeof(ElfW(Shdr)) ||
        h->e_shoff % alignof(ElfW(Shdr)) != 0 ||
        !within(h->e_shoff, (uint64_t)h->e_shnum * sizeof(ElfW(Shdr)),
                e->size))
        return false;
    e->full = find_table(e, h, SHT_SYMTAB);
    return e->full || find_table(e, h, SHT_DYNSYM);
}

bool elf_symbols_open(const char *path, elf_symbols_t *e)
{
    memset(e, 0, sizeof *e);
    /* non-blocking: a path that became a FIFO must not stop the program */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              (uint64_t)st.st_size >= sizeof(ElfW(Ehdr)) &&
              (uint64_t)st.st_size <= ELF_MAX_BYTES;
    void *map = MAP_FAILED;
    if (ok)
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    (void)close(fd); /* the mapping stays */
    if (map == MAP_FAILED)
        return false;
    if (!elf_symbols_parse(map, (size_t)st.st_size, e)) {
        if (munmap(map, (size_t)st.st_size) != 0)
            log_debug("elf symbols: munmap of %s failed: errno %d", path,
                      errno);
        return false;
    }
    e->mapped = true;
    return true;
}

bool elf_symbols_parse(const void *image, size_t size, elf_symbols_t *e)
{
    memset(e, 0, sizeof *e);
    e->map = image;
    e->size = size;
    if (image == NULL || (uintptr_t)image % alignof(ElfW(Ehdr)) != 0 ||
        !parse(e)) {
        memset(e, 0, sizeof *e);
        return false;
    }
    return true;
}

void elf_symbols_close(elf_symbols_t *e)
{
    if (e->mapped && munmap((void *)e->map, e->size) != 0)
        log_debug("elf symbols: munmap of %zu bytes failed: errno %d",
                  e->size, errno);
    memset(e, 0, sizeof *e);
}

bool elf_symbols_func(const elf_symbols_t *e, size_t i, const char **name,
                      uintptr_t *start, size_t *size)
{
    if (i >= e->nsym)
        return false;
    const ElfW(Sym) *s = &e->sym[i];
    unsigned type = ELF64_ST_TYPE(s->st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
        s->st_shndx == SHN_UNDEF || s->st_name == 0 ||
        s->st_name >= e->strsize ||
        memchr(e->str + s->st_name, '\0', e->strsize - s->st_name) == NULL)
        return false;
    *name = e->str + s->st_name;
    *start = (uintptr_t)s->st_value;
    *size = (size_t)s->st_size;
    return true;
}

bool elf_symbols_find(const elf_symbols_t *e, uintptr_t addr,
                      const char **name, uintptr_t *start)
{
    for (size_t i = 0; i < e->nsym; i++) {
        const char *n;
        uintptr_t s;
        size_t len;
        if (elf_symbols_func(e, i, &n, &s, &len) && addr >= s &&
            addr - s < len) {
            *name = n;
            *start = s;
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- objects */

static _Atomic uint32_t wrappers_found;
static _Atomic bool stripped_logged;

/* Code that allocates for its caller wherever it was instantiated: the
 * C++ standard library's templates (std::vector<T>::resize inlined into
 * nothing at -O0, std::__new_allocator<T>::allocate) live in the
 * program's own object, so skipping by object is not enough.  Mangled
 * prefixes: std:: (_ZNSt, _ZSt, const members _ZNKSt), __gnu_cxx::. */
static bool runtime_template(const char *name)
{
    static const char *const prefixes[] = {"_ZNSt", "_ZSt", "_ZNKSt",
                                           "_ZN9__gnu_cxx", "_ZNK9__gnu_cxx"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* Does a walk skip this function?  Marks the wrappers found. */
static bool skipped_function(const char *name)
{
    for (unsigned w = 0; w < runtime_options.nwrappers; w++)
        if (strcmp(name, runtime_options.wrappers[w]) == 0) {
            atomic_fetch_or(&wrappers_found, (uint32_t)1 << w);
            return true;
        }
    /* the loader's entry: whatever it calls is the program's */
    return runtime_template(name) || strcmp(name, "_start") == 0;
}

static void range_sift(object_range_t *r, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && r[c + 1].start > r[c].start)
            c++;
        if (r[c].start <= r[i].start)
            return;
        object_range_t t = r[i];
        r[i] = r[c];
        r[c] = t;
        i = c;
    }
}

/* Heapsort by start: no malloc (qsort may call it), n log n. */
static void ranges_sort(object_range_t *r, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        range_sift(r, i, n);
    for (size_t end = n; end-- > 1;) {
        object_range_t t = r[0];
        r[0] = r[end];
        r[end] = t;
        range_sift(r, 0, end);
    }
}

/* Record o's skipped functions, from its file's symbols: count, then
 * fill metadata memory, then sort for object_skips' binary search. */
static void object_skip_ranges(object_info_t *o, const elf_symbols_t *e)
{
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        object_range_t *r = NULL;
        if (pass == 1) {
            if (n == 0 || (r = meta_alloc(n * sizeof *r)) == NULL)
                return;
        }
        size_t k = 0;
        for (size_t i = 0; i < e->nsym && (pass == 0 || k < n); i++) {
            const char *name;
            uintptr_t start;
            size_t size;
            if (!elf_symbols_func(e, i, &name, &start, &size) || size == 0 ||
                !skipped_function(name))
                continue;
            if (pass == 1)
                r[k] = (object_range_t){start, start + size};
            k++;
        }
        if (pass == 0) {
            n = k;
        } else {
            ranges_sort(r, k);
            o->skip = r;
            o->nskip = k;
        }
    }
}

bool object_skips(const object_info_t *o, uintptr_t offset)
{
    /* the last range starting at or before offset; ranges do not nest
     * (functions), aliases repeat one range */
    size_t lo = 0, hi = o->nskip;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->skip[mid].start <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && offset < o->skip[lo - 1].end;
}

void elf_object_read(object_info_t *o, bool exe)
{
    elf_symbols_t e;
    if (!elf_symbols_open(o->path, &e)) {
        if (exe && !atomic_exchange(&stripped_logged, true))
            log_info("objects: the executable %s has no symbols tiermem can "
                     "read: its frames are keyed by offset only, and "
                     "wrappers inside it are found through its exports",
                     o->path);
        return;
    }
    o->symbols = true;
    o->symtab = e.full;
    object_skip_ranges(o, &e);
    if (exe && !e.full && !atomic_exchange(&stripped_logged, true))
        log_info("objects: the executable %s has no symbol table "
                 "(stripped): its frames are keyed by offset only, and "
                 "wrappers inside it are found only if it exports them",
                 o->path);
    elf_symbols_close(&e);
}

uint32_t elf_wrappers_found(void)
{
    return atomic_load(&wrappers_found);
}
