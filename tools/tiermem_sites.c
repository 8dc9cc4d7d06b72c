/*
 * tiermem_sites.c -- the `tiermem-sites` tool: a site table with file:line.
 *
 *   tiermem-sites TABLE [TABLE...]
 *
 * The runtime writes site tables (doc/sites.md) without file:line, because
 * reading DWARF line tables inside a process's malloc at exit is neither
 * cheap nor safe.  This tool adds them afterwards: every `frame` line gets
 * "at FILE:LINE" (and the function name when the table had none) from
 * addr2line, one addr2line run per object; where the compiler inlined the
 * allocating code into its callers, "(callee), inlined in CALLER at
 * FILE:LINE" follows for each.  Frames whose object has no debug
 * information get "at ??:0"; objects that are not readable regular files
 * here are left as they are.
 *
 * Tables come from other users and machines, so nothing in one is ever
 * code: site_table_read checks the whole table first (a bad line: the
 * table is refused, nothing printed for it, exit status 1), addr2line runs
 * from an argv array, never a shell, and is handed the object as an open
 * descriptor (/proc/self/fd/N) and the addresses on its stdin; what it
 * prints comes from the objects' debug information, which is data too, so
 * it is read with bounded lines and control bytes are replaced.
 *
 * Frame offsets are return addresses relative to the object's load base;
 * offset - 1 lies inside the call instruction, so that is what is looked
 * up.  Exit status: 0; 1 if a table could not be read or was refused, or
 * addr2line is missing; 2 for bad usage.  A tool, not library code: stdio
 * and malloc are fine here.
 */
#define _GNU_SOURCE /* memfd_create */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sites.h"

extern char **environ;

/* Longest addr2line output line kept; the rest of a longer one is dropped. */
#define OUT_LINE_MAX 4096

/* What addr2line said about one frame. */
typedef struct resolved {
    char *function; /* "??" when it does not know */
    char *location; /* "file:line" */
    char *inlined;  /* ", inlined in F at file:line" for each caller the
                       compiler inlined the call into, outward; or NULL */
} resolved_t;

static bool addr2line_missing;

static void usage(void)
{
    fprintf(stderr, "usage: tiermem-sites TABLE [TABLE...]\n");
}

/* A child must never get a table's bytes on a descriptor it mistakes for
 * stdin/stdout/stderr: make sure 0, 1 and 2 are open. */
static int std_fds_open(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int n = open("/dev/null", O_RDWR);
        if (n < 0)
            return -1;
        if (n != fd) { /* lower descriptors are open, so n > fd: impossible */
            close(n);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------- addr2line */

/* A copy of at most n bytes of s, control bytes replaced by '?'. */
static char *clean_copy(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] < ' ' || s[i] == 0x7f ? '?' : s[i];
    c[n] = '\0';
    return c;
}

/* One output line of at most OUT_LINE_MAX bytes (a longer one is cut);
 * its length without the newline, or -1 at the end. */
static long read_out_line(FILE *f, char buf[OUT_LINE_MAX + 2])
{
    if (fgets(buf, OUT_LINE_MAX + 2, f) == NULL)
        return -1;
    size_t n = strlen(buf); /* a NUL in the output only shortens the line */
    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
        return (long)n;
    }
    int c;
    while ((c = getc(f)) != EOF && c != '\n')
        ; /* the rest of an overlong line */
    return (long)n;
}

/* "file:line (discriminator 3)" -> "file:line" */
static void drop_discriminator(char *loc)
{
    char *d = strstr(loc, " (discriminator ");
    if (d != NULL)
        *d = '\0';
}

/* Is line an address line of `addr2line -a` ("0x" and hex digits)?  A
 * function name never starts with a digit. */
static bool address_line(const char *line)
{
    if (line[0] != '0' || line[1] != 'x' || line[2] == '\0')
        return false;
    for (const char *p = line + 2; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return false;
    return true;
}

/* Append ", inlined in FN at LOC" to *chain (malloc'd, or NULL). */
static bool chain_add(char **chain, const char *fn, const char *loc)
{
    size_t old = *chain ? strlen(*chain) : 0;
    size_t add = strlen(fn) + strlen(loc) + 32;
    char *c = realloc(*chain, old + add);
    if (c == NULL)
        return false;
    snprintf(c + old, add, ", inlined in %s at %s", fn, loc);
    *chain = c;
    return true;
}

/* Read `addr2line -a -i -f` output into res[0..n): per address, its
 * address line, then a function and a location line for the code itself
 * and one pair more for each caller it was inlined into. */
static size_t read_results(int fd, resolved_t *res, size_t n)
{
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return 0;
    }
    static char line[OUT_LINE_MAX + 2], loc[OUT_LINE_MAX + 2];
    size_t got = 0;
    bool have = read_out_line(f, line) >= 0;
    while (have) {
        if (!address_line(line)) { /* out of step: skip to the next one */
            have = read_out_line(f, line) >= 0;
            continue;
        }
        resolved_t r = {NULL, NULL, NULL};
        bool ok = true;
        for (unsigned level = 0;; level++) {
            if (read_out_line(f, line) < 0) {
                have = false;
                break;
            }
            if (address_line(line) && level > 0)
                break; /* the next address */
            if (read_out_line(f, loc) < 0) {
                have = false;
                break;
            }
            drop_discriminator(loc);
            if (level == 0) {
                r.function = clean_copy(line, strlen(line));
                r.location = clean_copy(loc, strlen(loc));
                ok = r.function != NULL && r.location != NULL;
            } else if (ok) {
                char *fn = clean_copy(line, strlen(line));
                char *lc = clean_copy(loc, strlen(loc));
                ok = fn != NULL && lc != NULL && chain_add(&r.inlined, fn, lc);
                free(fn);
                free(lc);
            }
        }
        if (got < n && ok && r.function != NULL) {
            res[got++] = r;
        } else {
            free(r.function);
            free(r.location);
            free(r.inlined);
        }
    }
    fclose(f);
    return got;
}

/* The addresses (offset - 1) as hex lines in a memory file, at offset 0. */
static int address_file(const uint64_t *offsets, size_t n)
{
    int fd = memfd_create("tiermem-sites-addresses", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w+");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%#" PRIx64 "\n", offsets[i] ? offsets[i] - 1 : 0);
    int out = -1;
    if (fflush(f) == 0 && lseek(fd, 0, SEEK_SET) == 0)
        out = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* fclose closes fd */
    fclose(f);
    return out;
}

/* Run `addr2line -a -i -f -C -e /proc/self/fd/OBJFD` with the addresses
 * on its stdin; fills res[0..n) and returns how many it answered. */
static size_t run_addr2line(const char *object, int objfd,
                            const uint64_t *offsets, size_t n,
                            resolved_t *res)
{
    char exe[64];
    snprintf(exe, sizeof exe, "/proc/self/fd/%d", objfd);
    char *argv[] = {"addr2line", "-a", "-i", "-f", "-C", "-e", exe, NULL};
    int in = address_file(offsets, n), out[2] = {-1, -1};
    if (in < 0 || pipe2(out, O_CLOEXEC) != 0) {
        fprintf(stderr, "tiermem-sites: %s: no pipe for addr2line: %s\n",
                object, strerror(errno));
        if (in >= 0)
            close(in);
        return 0;
    }
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0) {
        rc = posix_spawn_file_actions_adddup2(&fa, in, 0);
        if (rc == 0)
            rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        if (rc == 0)
            rc = posix_spawnp(&pid, "addr2line", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    close(in);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        if (rc == ENOENT)
            addr2line_missing = true;
        else
            fprintf(stderr, "tiermem-sites: %s: cannot run addr2line: %s\n",
                    object, strerror(rc));
        return 0;
    }
    size_t got = read_results(out[0], res, n);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return got;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got < n)
        fprintf(stderr, "tiermem-sites: %s: addr2line answered %zu of %zu "
                "addresses\n", object, got, n);
    return got;
}

/* ---------------------------------------------------------- one table */

static const site_table_t *sort_table;

/* Frames by (object, offset). */
static int by_object_offset(const void *a, const void *b)
{
    const site_table_frame_t *x = &sort_table->frames[*(const size_t *)a];
    const site_table_frame_t *y = &sort_table->frames[*(const size_t *)b];
    int c = strcmp(x->object, y->object);
    if (c != 0)
        return c;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The object opened for addr2line: a readable regular file, or -1.
 * Opened without O_CLOEXEC so that addr2line inherits it; O_NONBLOCK so
 * that a FIFO cannot hang the tool before fstat sees what it is. */
static int open_object(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Resolve the frames order[0..n) (all of one object, by offset): each
 * distinct offset is looked up once; res is indexed by frame. */
static void resolve_object(const site_table_t *t, const size_t *order,
                           size_t n, resolved_t *res)
{
    const char *object = t->frames[order[0]].object;
    int fd = open_object(object);
    if (fd < 0)
        return; /* not here, not readable or not a file: left as it is */
    uint64_t *offs = malloc(n * sizeof *offs);
    resolved_t *r = calloc(n, sizeof *r);
    size_t nu = 0, got = 0;
    if (offs != NULL && r != NULL) {
        for (size_t i = 0; i < n; i++)
            if (nu == 0 || offs[nu - 1] != t->frames[order[i]].offset)
                offs[nu++] = t->frames[order[i]].offset;
        got = run_addr2line(object, fd, offs, nu, r);
    }
    close(fd);
    for (size_t i = 0, u = 0; i < n && offs != NULL && r != NULL; i++) {
        while (offs[u] != t->frames[order[i]].offset)
            u++;
        if (u < got)
            res[order[i]] = (resolved_t){
                strdup(r[u].function), strdup(r[u].location),
                r[u].inlined ? strdup(r[u].inlined) : NULL};
    }
    for (size_t u = 0; r != NULL && u < got; u++) {
        free(r[u].function);
        free(r[u].location);
        free(r[u].inlined);
    }
    free(r);
    free(offs);
}

/* res[frame] for every frame whose object could be read. */
static void resolve_all(const site_table_t *t, resolved_t *res)
{
    size_t *order = malloc((t->nframes + 1) * sizeof *order), n = 0;
    if (order == NULL)
        return;
    for (size_t i = 0; i < t->nframes; i++)
        if (t->frames[i].object != NULL)
            order[n++] = i;
    sort_table = t;
    qsort(order, n, sizeof *order, by_object_offset);
    for (size_t i = 0, j; i < n && !addr2line_missing; i = j) {
        for (j = i + 1; j < n && strcmp(t->frames[order[j]].object,
                                        t->frames[order[i]].object) == 0;)
            j++;
        resolve_object(t, order + i, j - i, res);
    }
    free(order);
}

/* A frame line, with the function filled in where the table had "?". */
static void print_frame(const site_table_line_t *l, const site_table_frame_t *f,
                        const resolved_t *r)
{
    if (r->function == NULL || r->location == NULL) {
        printf("%s\n", l->text);
        return;
    }
    if (strcmp(f->function, "?") == 0 && strcmp(r->function, "??") != 0)
        printf("%.*s%s%s", (int)f->function_at, l->text, r->function,
               l->text + f->function_at + 1);
    else
        printf("%s", l->text);
    if (r->inlined != NULL) /* the code is an inlined callee's: name it */
        printf(" at %s (%s)%s\n", r->location, r->function, r->inlined);
    else
        printf(" at %s\n", r->location);
}

static int annotate(const char *path)
{
    site_table_t t;
    if (site_table_read(path, &t) != 0) {
        fprintf(stderr, "tiermem-sites: %s\n", t.error);
        return 1;
    }
    resolved_t *res = calloc(t.nframes + 1, sizeof *res);
    if (res == NULL) {
        fprintf(stderr, "tiermem-sites: %s: out of memory\n", path);
        site_table_free(&t);
        return 1;
    }
    resolve_all(&t, res);
    int status = 0;
    if (addr2line_missing) {
        fprintf(stderr, "tiermem-sites: addr2line not found (apt-get "
                        "install binutils)\n");
        status = 1;
    }
    for (size_t i = 0; i < t.nlines && status == 0; i++) {
        const site_table_line_t *l = &t.lines[i];
        if (l->kind == ST_LINE_FRAME)
            print_frame(l, &t.frames[l->item], &res[l->item]);
        else
            printf("%s\n", l->text);
    }
    for (size_t i = 0; i < t.nframes; i++) {
        free(res[i].function);
        free(res[i].location);
        free(res[i].inlined);
    }
    free(res);
    site_table_free(&t);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help") == 0) {
        usage();
        return 2;
    }
    if (std_fds_open() != 0) {
        perror("tiermem-sites: /dev/null");
        return 1;
    }
    int status = 0;
    for (int i = 1; i < argc && !addr2line_missing; i++)
        status |= annotate(argv[i]);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "tiermem-sites: writing the output failed: %s\n",
                strerror(errno));
        status = 1;
    }
    return status;
}
