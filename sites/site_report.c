/*
 * site_report.c -- the site table, written for people and tools.
 *
 * One text file per process (format in doc/sites.md): a header, then per
 * site its key, arena, counters and kind, followed by its frames as (object
 * path, offset, function from the object's symbols or its exports), or for
 * a compiler site its source from the object's note; then per arena its
 * counters.  The tiermem-sites tool (tools/tiermem_sites.c) reads it
 * back strictly and adds file:line with addr2line.
 *
 * Written with open/write from a stack buffer, never stdio: it runs at exit,
 * inside the process's malloc, and must not allocate.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sites.h"

/* Objects whose symbols are mapped while the table is written: frames
 * come site by site, and a site's frames are mostly in a few objects. */
#define SYMBOL_CACHE 4

typedef struct out {
    int fd;
    int err;       /* first write error */
    size_t len;
    char buf[4096];
    elf_symbols_t sym[SYMBOL_CACHE];
    unsigned sym_object[SYMBOL_CACHE]; /* STACK_NO_OBJECT: slot free */
    unsigned sym_next;                 /* the slot to reuse next */
} out_t;

/* The symbols of object index `object` (path), mapped, or NULL. */
static const elf_symbols_t *out_symbols(out_t *o, unsigned object,
                                        const char *path)
{
    for (unsigned i = 0; i < SYMBOL_CACHE; i++)
        if (o->sym_object[i] == object)
            return o->sym[i].map ? &o->sym[i] : NULL;
    unsigned i = o->sym_next++ % SYMBOL_CACHE;
    elf_symbols_close(&o->sym[i]);
    o->sym_object[i] = object;
    return elf_symbols_open(path, &o->sym[i]) ? &o->sym[i] : NULL;
}

static void out_symbols_close(out_t *o)
{
    for (unsigned i = 0; i < SYMBOL_CACHE; i++)
        elf_symbols_close(&o->sym[i]);
}

static void out_flush(out_t *o)
{
    size_t done = 0;
    while (done < o->len && o->err == 0) {
        ssize_t n = write(o->fd, o->buf + done, o->len - done);
        if (n < 0 && errno != EINTR)
            o->err = errno;
        else if (n > 0)
            done += (size_t)n;
    }
    o->len = 0;
}

__attribute__((format(printf, 2, 3))) static void out_printf(out_t *o,
                                                             const char *fmt, ...)
{
    char line[2048]; /* a frame line's fields are bounded well below this */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (o->len + len > sizeof o->buf)
        out_flush(o);
    memcpy(o->buf + o->len, line, len);
    o->len += len;
}

static const char *const layout_names[] = {"per-site", "per-thread",
                                           "big-small"};

static void write_frame(out_t *o, unsigned i, const stack_frame_t *f)
{
    const object_info_t *obj =
        f->object == STACK_NO_OBJECT ? NULL : objects_get(f->object);
    if (obj == NULL) {
        out_printf(o, "frame %u ? %#lx ?\n", i, (unsigned long)f->offset);
        return;
    }
    Dl_info info;
    uintptr_t addr = obj->base + f->offset;
    const char *fn = "?";
    unsigned long fn_off = 0;
    /* The object's own symbols first: they name functions it does not
     * export (a program linked without -rdynamic), and only a function
     * that holds the address; dladdr names the nearest export.  offset -
     * 1: a return address may be one past its call's function. */
    const elf_symbols_t *e =
        obj->symbols ? out_symbols(o, f->object, obj->path) : NULL;
    uintptr_t start;
    if (e != NULL && elf_symbols_find(e, f->offset - 1, &fn, &start)) {
        fn_off = (unsigned long)(f->offset - start);
    } else if (dladdr((void *)(addr - 1), &info) != 0 &&
               info.dli_sname != NULL) {
        fn = info.dli_sname;
        fn_off = (unsigned long)(addr - (uintptr_t)info.dli_saddr);
    }
    /* The reader refuses a whole table for one field it cannot take as
     * data (a path with a space, a symbol in an exotic alphabet or longer
     * than a line), so such a field is written as unknown instead. */
    const char *path = site_table_object_ok(obj->path) ? obj->path : "?";
    if (!site_table_function_ok(fn)) /* also bounds its length */
        fn = "?";
    if (fn[0] == '?')
        out_printf(o, "frame %u %s %#lx ?\n", i, path,
                   (unsigned long)f->offset);
    else
        out_printf(o, "frame %u %s %#lx %s+%#lx\n", i, path,
                   (unsigned long)f->offset, fn, fn_off);
}

/* A field from a note, as the reader will take it: "?" when empty or not
 * data by its rules (a note is the object's, not ours to trust). */
static const char *cc_field(const char *v, bool (*ok)(const char *))
{
    return v[0] != '\0' && ok(v) ? v : "?";
}

/* A compiler site's source, from its object's note; nothing if no loaded
 * object described it. */
static void write_cc(out_t *o, uint64_t id)
{
    const cc_desc_t *d = cc_describe(id);
    if (d == NULL)
        return;
    out_printf(o, "cc %s %u %u %s %s %s\n",
               cc_field(d->file, site_table_object_ok), d->line, d->column,
               cc_field(d->function, site_table_function_ok),
               cc_field(d->callee, site_table_function_ok),
               d->chain[0] == '\0' ? "-"
                                    : cc_field(d->chain, site_table_chain_ok));
}

static void write_site(out_t *o, const site_t *s)
{
    tm_arena_t *a = atomic_load(&s->arena);
    tm_alloc_stats_t st;
    stats_snapshot(&s->stats, &st); /* site 0's include unfolded counts */
    out_printf(o,
               "site %u key 0x%016llx arena %u allocs %llu frees %llu live %llu "
               "peak %llu bytes %llu",
               s->index, (unsigned long long)s->key,
               a ? tm_arena_id(a) : 0,
               (unsigned long long)st.allocs, (unsigned long long)st.frees,
               (unsigned long long)st.live, (unsigned long long)st.peak,
               (unsigned long long)st.bytes);
    static const char *const kinds[] = {"stack", "explicit", "cc"};
    out_printf(o, " kind %s", kinds[s->kind]);
    if (s->explicit_id >= 0)
        out_printf(o, " id %d", s->explicit_id);
    out_printf(o, "\n");
    if (s->kind == SITE_KIND_CC)
        write_cc(o, s->key);
    for (unsigned i = 0; i < s->trace.depth && i < TM_MAX_STACK_DEPTH; i++)
        write_frame(o, i, &s->trace.frame[i]);
}

static void write_arenas(out_t *o)
{
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++) {
        tm_arena_t *a = arena_by_id(id);
        arena_kind_t kind = a ? site_arena_kind(a, NULL) : ARENA_USER;
        if (kind == ARENA_USER)
            continue;
        tm_alloc_stats_t st;
        tm_arena_alloc_stats(a, &st);
        tm_placement_t p = tm_arena_placement(a);
        out_printf(o,
                   "arena %u kind %s nodes %#llx allocs %llu frees %llu live "
                   "%llu peak %llu bytes %llu\n",
                   id, kind == ARENA_SITE ? "site" : "shared",
                   (unsigned long long)p.nodes, (unsigned long long)st.allocs,
                   (unsigned long long)st.frees, (unsigned long long)st.live,
                   (unsigned long long)st.peak, (unsigned long long)st.bytes);
    }
}

static void write_table(out_t *o)
{
    char exe[OBJECT_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    out_printf(o, "# tiermem site table, format 2\n");
    out_printf(o, "# exe %s pid %ld rank %d layout %s depth %u\n",
               exe[0] && site_table_object_ok(exe) ? exe : "?",
               (long)getpid(), runtime_options.rank,
               layout_names[runtime_options.layout], runtime_options.stack_depth);
    uint32_t count = site_count();
    for (uint32_t i = 0; i < count; i++)
        write_site(o, site_get(i));
    write_arenas(o);
}

/* Mode of a new site table before the umask: others may read it (the
 * tools run as anyone), nobody else may write it. */
#define SITE_TABLE_MODE 0644

int site_report_write(const char *path)
{
    /* The output directory may be shared (/tmp): the table is written to an
     * exclusively created temporary with an unpredictable name, never
     * through a link, and renamed over the final name (rename replaces a
     * planted link, it does not follow it). */
    char tmp[TM_PATH_MAX + 32];
    out_t o = {.fd = file_create_temp(path, tmp, sizeof tmp,
                                      SITE_TABLE_MODE)};
    for (unsigned i = 0; i < SYMBOL_CACHE; i++)
        o.sym_object[i] = STACK_NO_OBJECT;
    if (o.fd < 0) {
        int e = errno;
        log_warn("site table: cannot create a temporary file beside %s: "
                    "errno %d", path, e);
        errno = e;
        return -1;
    }
    write_table(&o);
    out_symbols_close(&o);
    out_flush(&o);
    if (close(o.fd) != 0 && o.err == 0)
        o.err = errno;
    if (o.err == 0 && rename(tmp, path) != 0)
        o.err = errno;
    if (o.err != 0) {
        log_warn("site table: writing %s failed: errno %d", path, o.err);
        (void)unlink(tmp);
        errno = o.err;
        return -1;
    }
    return 0;
}

void site_report_at_exit(void)
{
    char exe[OBJECT_PATH_MAX], path[TM_PATH_MAX + OBJECT_PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : (exe[0] ? exe : "unknown");
    int len = runtime_options.rank >= 0
                  ? snprintf(path, sizeof path, "%s/tiermem-sites.%s.rank%d.txt",
                             runtime_options.output_dir, base, runtime_options.rank)
                  : snprintf(path, sizeof path, "%s/tiermem-sites.%s.%ld.txt",
                             runtime_options.output_dir, base, (long)getpid());
    if (len < 0 || (size_t)len >= sizeof path) {
        log_warn("site table: the path under %s is too long",
                    runtime_options.output_dir);
        return;
    }
    if (site_report_write(path) == 0)
        log_info("site table written to %s", path);
}
