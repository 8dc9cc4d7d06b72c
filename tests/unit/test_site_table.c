/*
 * test_site_table.c -- the strict site table reader (site_table_read.c).
 *
 * Good tables are read field by field; hostile ones (shell code in any
 * field, relative or option-like object paths, control bytes, huge
 * numbers, missing fields, overlong lines, NULs, truncation) are refused
 * with the first bad line named as "name:line: what" and nothing left
 * allocated.  Every input is parsed from an exactly-sized heap copy, so a
 * read past its end shows under AddressSanitizer.
 */
#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include "sites.h"
#include "../tm_test.h"

#define HEADER "# tiermem site table, format 1\n"
#define SITE4 "site 4 key 0xd5a7e0b16c6ab028 arena 5 allocs 2 frees 1 live 1048576 peak 2097152 bytes 2097152\n"
#define ARENA5 "arena 5 kind site nodes 0x1 allocs 2 frees 1 live 1048576 peak 2097152 bytes 2097152\n"

/* Parse len bytes from an exact heap copy (no NUL after them). */
static int parse_exact(const char *text, size_t len, site_table_t *t)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, text, len);
    int rc = site_table_parse(copy, len, "t.txt", t);
    free(copy);
    return rc;
}

/* The table is refused, at `line`, with a message containing `what`. */
static void expect_bad_n(const char *text, size_t len, size_t line,
                         const char *what)
{
    site_table_t t;
    int rc = parse_exact(text, len, &t);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "t.txt:%zu: ", line);
    CHECK_MSG(rc == -1 && errno != 0, "accepted: %.60s", text);
    CHECK_MSG(strncmp(t.error, prefix, strlen(prefix)) == 0,
              "error \"%s\" does not start with \"%s\"", t.error, prefix);
    CHECK_MSG(strstr(t.error, what) != NULL, "error \"%s\" lacks \"%s\"",
              t.error, what);
    CHECK(t.text == NULL && t.lines == NULL && t.sites == NULL &&
          t.frames == NULL && t.arenas == NULL && t.nlines == 0);
    site_table_free(&t); /* harmless after a failure */
}

static void expect_bad(const char *text, size_t line, const char *what)
{
    expect_bad_n(text, strlen(text), line, what);
}

/* The table is accepted. */
static void expect_good(const char *text)
{
    site_table_t t;
    int rc = parse_exact(text, strlen(text), &t);
    CHECK_MSG(rc == 0, "refused: %s", t.error);
    if (rc == 0)
        site_table_free(&t);
}

static void test_good(void)
{
    static const char good[] =
        HEADER "# exe /usr/bin/app pid 1234 rank -1 layout per-site depth 2\n"
        SITE4
        "frame 0 /usr/bin/app 0x1172 make_big+0x12\n"
        "frame 1 /opt/sp-ack/a_b+c,d@e%f=g:h~i/libx.so.1 0x2 _ZN1a1bEv.constprop.0\n"
        "frame 2 /usr/lib/lib\xc3\xa9t\xc3\xa9.so 0x1197 ? future fields\n"
        "site 9 key 0x1d3e arena 10 allocs 1 frees 0 live 4096 peak 4096 "
        "bytes 4096 id 12 more 7\n"
        "site 10 key 0 arena 0 allocs 0 frees 0 live 0 peak 0 bytes 0\n"
        "frame 0 ? 0 ?\n" ARENA5
        "arena 4095 kind shared nodes 0xffffffffffffffff allocs "
        "18446744073709551615 frees 0 live 0 peak 0 bytes 0\n";
    site_table_t t;
    int rc = parse_exact(good, sizeof good - 1, &t);
    CHECK_MSG(rc == 0, "%s", t.error);
    if (rc != 0)
        return;
    CHECK(t.nlines == 11 && t.nsites == 3 && t.nframes == 4 && t.narenas == 2);
    CHECK(t.lines[0].kind == ST_LINE_COMMENT && t.lines[2].kind == ST_LINE_SITE);
    CHECK(strcmp(t.lines[3].text, "frame 0 /usr/bin/app 0x1172 make_big+0x12") == 0);
    CHECK(t.lines[3].len == strlen(t.lines[3].text));
    const site_table_site_t *s = &t.sites[0];
    CHECK(s->index == 4 && s->key == 0xd5a7e0b16c6ab028ull && s->arena == 5);
    CHECK(s->stats.allocs == 2 && s->stats.frees == 1 &&
          s->stats.live == 1048576 && s->stats.peak == 2097152 &&
          s->stats.bytes == 2097152 && s->explicit_id == -1);
    CHECK(s->first_frame == 0 && s->nframes == 3);
    CHECK(t.sites[1].explicit_id == 12 && t.sites[1].nframes == 0);
    CHECK(t.sites[2].index == 10 && t.sites[2].nframes == 1 &&
          t.sites[2].first_frame == 3);
    const site_table_frame_t *f = &t.frames[2];
    CHECK(f->index == 2 && f->site == 0 && f->offset == 0x1197);
    CHECK(strcmp(f->object, "/usr/lib/lib\xc3\xa9t\xc3\xa9.so") == 0);
    CHECK(strcmp(f->function, "?") == 0);
    CHECK(t.lines[5].text[f->function_at] == '?');
    CHECK(strcmp(t.frames[1].function, "_ZN1a1bEv.constprop.0") == 0);
    CHECK(strcmp(t.frames[0].function, "make_big+0x12") == 0);
    CHECK(t.frames[3].object == NULL && t.frames[3].offset == 0);
    CHECK(t.arenas[0].id == 5 && !t.arenas[0].shared && t.arenas[0].nodes == 1);
    CHECK(t.arenas[1].id == 4095 && t.arenas[1].shared &&
          t.arenas[1].nodes == UINT64_MAX &&
          t.arenas[1].stats.allocs == UINT64_MAX);
    site_table_free(&t);
    CHECK(t.text == NULL && t.nframes == 0);
}

/* Shell code and option-looking paths in every field that could carry it. */
static void test_injection(void)
{
    expect_bad(HEADER SITE4 "frame 0 /bin/ls BASH_VERSINFO[$(touch${IFS}PWNED)] ?\n",
               3, "field 4 (\"BASH_VERSINFO[$(touch${IFS}PWNED)]\")");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls $((1+1)) ?\n", 3, "not a hex number");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls `id` ?\n", 3, "not a hex number");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10;id ?\n", 3, "not a hex number");
    expect_bad(HEADER SITE4 "frame $(id) /bin/ls 0x10 ?\n", 3, "not a decimal");
    expect_bad(HEADER SITE4 "frame 0 $(touch${IFS}x) 0x10 ?\n", 3,
               "object path");
    expect_bad(HEADER SITE4 "frame 0 `touch x` 0x10 ?\n", 3, "object path");
    expect_bad(HEADER SITE4 "frame 0 -e 0x10 ?\n", 3, "\"-e\" starts with '-'");
    expect_bad(HEADER SITE4 "frame 0 @args 0x10 ?\n", 3, "starts with '@'");
    /* what the runtime writes for dlopen("./x.so"), the vDSO and an
     * unreadable /proc/self/exe is data, and accepted */
    expect_good(HEADER SITE4 "frame 0 ./libx.so 0x10 ?\n");
    expect_good(HEADER SITE4 "frame 0 linux-vdso.so.1 0x10 ?\n");
    expect_good(HEADER SITE4 "frame 0 [exe] 0x10 ?\n");
    expect_bad(HEADER SITE4 "frame 0 /a b 0x10 ?\n", 3, "field 4 (\"b\")");
    static const char *const paths[] = {
        "/tmp/$(id)", "/tmp/`id`", "/tmp/a;id", "/bin/*", "/bin/l?", "/bin/[a-z]s",
        "/tmp/a|b", "/tmp/a&b", "/tmp/a>b", "/tmp/a<b", "/tmp/'a'", "/tmp/\"a\"",
        "/tmp/a\\b", "/tmp/!a", "/tmp/{a,b}", "/tmp/a#b"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        char text[256];
        snprintf(text, sizeof text, HEADER SITE4 "frame 0 %s 0x10 ?\n", paths[i]);
        expect_bad(text, 3, "object path");
    }
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10 $(id)\n", 3, "not a symbol name");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10 f;id\n", 3, "not a symbol name");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10 f+0x\n", 3, "not a symbol name");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10 f+0x1g\n", 3, "not a symbol name");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10 +0x1\n", 3, "not a symbol name");
    expect_bad(HEADER "site 1 key $(id) arena 1 allocs 0 frees 0 live 0 peak 0 bytes 0\n",
               2, "not a hex number");
    expect_bad(HEADER "site 1 key 0x1 arena 1 allocs -1 frees 0 live 0 peak 0 bytes 0\n",
               2, "not a decimal number");
    expect_bad(HEADER SITE4 "rm -rf /\n", 3, "unknown line kind \"rm\"");
    expect_bad(HEADER "$(touch PWNED)\n", 2, "unknown line kind");
}

/* A CRLF table reads exactly as its LF twin: same lines, same text (no
 * '\r' in what is printed back), same fields. */
static void test_crlf(void)
{
    static const char lf[] = HEADER SITE4 "frame 0 /usr/bin/app 0x1172 f\n" ARENA5;
    char crlf[sizeof lf * 2];
    size_t n = 0;
    for (const char *p = lf; *p != '\0'; p++) {
        if (*p == '\n')
            crlf[n++] = '\r';
        crlf[n++] = *p;
    }
    site_table_t a, b;
    int ra = parse_exact(lf, sizeof lf - 1, &a);
    int rb = parse_exact(crlf, n, &b);
    CHECK_MSG(ra == 0 && rb == 0, "LF: %s; CRLF: %s", a.error, b.error);
    if (ra != 0 || rb != 0)
        return;
    CHECK(a.nlines == b.nlines && a.nsites == b.nsites &&
          a.nframes == b.nframes && a.narenas == b.narenas);
    for (size_t i = 0; i < a.nlines && i < b.nlines; i++)
        CHECK_MSG(a.lines[i].len == b.lines[i].len &&
                      strcmp(a.lines[i].text, b.lines[i].text) == 0 &&
                      strchr(b.lines[i].text, '\r') == NULL,
                  "line %zu: \"%s\" vs \"%s\"", i + 1, a.lines[i].text,
                  b.lines[i].text);
    CHECK(b.sites[0].key == a.sites[0].key &&
          strcmp(b.frames[0].function, "f") == 0 &&
          b.arenas[0].nodes == a.arenas[0].nodes);
    site_table_free(&a);
    site_table_free(&b);
}

static void test_bytes(void)
{
    expect_bad(HEADER SITE4 "frame 0 /bin/l\ns 0x10 ?\n", 3, "fields");
    expect_bad(HEADER SITE4 "frame 0 /bin/\x1b[31mls 0x10 ?\n", 3,
               "control byte 0x1b at column 14");
    expect_bad(HEADER "# a comment \x1b]0;title\x07\n", 2, "control byte 0x1b");
    /* base/text.c's one '\r' rule: a '\r' ending a line goes with its
     * '\n' (CRLF reads as LF, test_crlf); anywhere else it is a control
     * byte, as before */
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10\r?\n", 3, "control byte 0x0d");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10 ?\r\r\n", 3,
               "control byte 0x0d");
    expect_bad(HEADER SITE4 "frame 0 /bin/\x7fls 0x10 ?\n", 3, "control byte 0x7f");
    expect_bad(HEADER SITE4 "frame 0 /bin/\xc2\x9bls 0x10 ?\n", 3, "not UTF-8");
    expect_bad(HEADER SITE4 "frame 0 /bin/\x9bls 0x10 ?\n", 3, "byte 0x9b");
    expect_bad(HEADER SITE4 "frame 0 /bin/\xc0\xafls 0x10 ?\n", 3, "not UTF-8");
    expect_bad(HEADER SITE4 "frame 0 /bin/\xe2\x82 0x10 ?\n", 3, "not UTF-8");
    expect_bad(HEADER "# ends in half a character \xe2\x82\n", 2, "not UTF-8");
    static const char nul[] = HEADER SITE4 "frame 0 /bin/ls\0/x 0x10 ?\n";
    expect_bad_n(nul, sizeof nul - 1, 3, "NUL byte at column 16");
    static const char nul1[] = "\0";
    expect_bad_n(nul1, 1, 1, "no newline");
}

static void test_numbers(void)
{
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10000000000000000 ?\n", 3,
               "does not fit 64 bits");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x ?\n", 3, "not a hex number");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 16 ?\n", 3, "not a hex number");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0xg ?\n", 3, "not a hex number");
    expect_bad(HEADER SITE4 "frame 99999999999999999999999 /bin/ls 0x1 ?\n", 3,
               "larger than 4294967295");
    expect_bad(HEADER "site 1 key 0x1 arena 1 allocs 18446744073709551616 frees 0 "
               "live 0 peak 0 bytes 0\n", 2, "larger than 18446744073709551615");
    expect_bad(HEADER "site 1 key 0x1 arena 4096 allocs 0 frees 0 live 0 peak 0 bytes 0\n",
               2, "larger than 4095");
    expect_bad(HEADER "site 1 key 0x1 arena 1 allocs 0 frees 0 live 0 peak 0 bytes 0 "
               "id 2147483648\n", 2, "larger than 2147483647");
    expect_bad(HEADER "arena 0 kind site nodes 0x1 allocs 0 frees 0 live 0 peak 0 "
               "bytes 0\n", 2, "arena 0");
    expect_bad(HEADER "arena 1 kind evil nodes 0x1 allocs 0 frees 0 live 0 peak 0 "
               "bytes 0\n", 2, "neither site nor shared");
    expect_bad(HEADER "arena 1 kind site nodes 0x1 allocs 0 frees 0 live 0 peak 0 "
               "bytes +1\n", 2, "not a decimal");
}

static void test_structure(void)
{
    expect_bad("", 1, "empty file");
    expect_bad("hello\n", 1, "not a tiermem site table");
    expect_bad("# tiermem site table, format 3\n", 1, "\"3\" is not format 1 or 2");
    expect_bad("# tiermem site table, format 1 \n", 1, "is not format 1");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10 ?", 3, "truncated");
    expect_bad(HEADER "site 4 key 0x1 arena 5 allocs 2 frees 1 live 1 peak 2\n", 2,
               "has 14 fields, not at least 16");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10\n", 3, "4 fields, not at least 5");
    expect_bad(HEADER "site 1 KEY 0x1 arena 1 allocs 0 frees 0 live 0 peak 0 bytes 0\n",
               2, "field 3 is \"KEY\", not \"key\"");
    expect_bad(HEADER "site 1 key 0x1 arena 1 allocs 0 frees 0 live 0 bytes 0 peak 0\n",
               2, "not \"peak\"");
    expect_bad(HEADER "frame 0 /bin/ls 0x10 ?\n", 2, "outside a site");
    expect_bad(HEADER SITE4 "frame 1 /bin/ls 0x10 ?\n", 3, "frame 1 where frame 0");
    expect_bad(HEADER SITE4 "frame 0 /bin/ls 0x10 ?\nframe 0 /bin/ls 0x10 ?\n", 4,
               "frame 0 where frame 1");
    expect_bad(HEADER SITE4 SITE4, 3, "site 4 does not follow site 4");
    expect_bad(HEADER SITE4 ARENA5 ARENA5, 4, "arena 5 does not follow arena 5");
    expect_bad(HEADER ARENA5 SITE4, 3, "site line after the arena lines");
    expect_bad(HEADER SITE4 ARENA5 "frame 0 /bin/ls 0x10 ?\n", 4, "outside a site");
    expect_bad(HEADER SITE4 "\n", 3, "empty line");
    expect_bad(HEADER SITE4 "   \n", 3, "empty line");
    expect_bad(HEADER "site 1 key 0x1 arena 1 allocs 0 frees 0 live 0 peak 0 bytes 0"
               " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25"
               " 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47"
               " 48 49 50\n", 2, "more than 64 fields");
    /* 16 frames fit (TM_MAX_STACK_DEPTH), a 17th does not */
    char deep[4096];
    size_t n = (size_t)snprintf(deep, sizeof deep, "%s", HEADER SITE4);
    for (int i = 0; i <= TM_MAX_STACK_DEPTH; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n,
                              "frame %d /bin/ls 0x%x ?\n", i, i + 1);
    expect_bad_n(deep, n, 3 + TM_MAX_STACK_DEPTH, "more than 16 frames");
}

static void test_lengths(void)
{
    /* a 100k-byte line, both as a comment and as an object path */
    size_t big = 100000;
    char *s = malloc(big + 64);
    REQUIRE_VOID(s != NULL);
    memcpy(s, HEADER, sizeof HEADER - 1);
    size_t n = sizeof HEADER - 1;
    s[n++] = '#';
    memset(s + n, 'a', big);
    n += big;
    s[n++] = '\n';
    expect_bad_n(s, n, 2, "longer than 4096 bytes");
    expect_bad_n(s, n - 1, 2, "longer than 4096 bytes"); /* and no newline */
    /* exactly the longest line: accepted */
    n = sizeof HEADER - 1;
    s[n++] = '#';
    memset(s + n, 'b', SITE_TABLE_LINE_MAX - 1);
    n += SITE_TABLE_LINE_MAX - 1;
    s[n++] = '\n';
    site_table_t t;
    CHECK_MSG(parse_exact(s, n, &t) == 0, "%s", t.error);
    CHECK(t.nlines == 2 && t.lines[1].len == SITE_TABLE_LINE_MAX);
    site_table_free(&t);
    free(s);
    char path[OBJECT_PATH_MAX + 512];
    n = (size_t)snprintf(path, sizeof path, HEADER SITE4 "frame 0 /");
    memset(path + n, 'p', OBJECT_PATH_MAX);
    n += OBJECT_PATH_MAX;
    n += (size_t)snprintf(path + n, sizeof path - n, " 0x1 ?\n");
    expect_bad_n(path, n, 3, "object path longer than 511 bytes");
}

/* Every prefix of a good table: refused as truncated, or (ending at a
 * newline) accepted; never a crash or a read past the end. */
static void test_truncations(void)
{
    static const char good[] = HEADER SITE4 "frame 0 /usr/bin/app 0x1172 f+0x1\n"
        "site 9 key 0x1d3e arena 10 allocs 1 frees 0 live 4096 peak 4096 "
        "bytes 4096 id 12\n" ARENA5;
    unsigned accepted = 0, refused = 0;
    for (size_t len = 0; len < sizeof good; len++) {
        site_table_t t;
        int rc = parse_exact(good, len, &t);
        bool at_newline = len > 0 && good[len - 1] == '\n';
        CHECK_MSG((rc == 0) == at_newline, "prefix of %zu bytes: %s", len, t.error);
        if (rc == 0)
            accepted++;
        else
            refused++;
        site_table_free(&t);
    }
    CHECK(accepted == 5 && refused == sizeof good - 5);
}

static void test_read_file(void)
{
    char dir[] = "/tmp/test_site_table.XXXXXX";
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof path, "%s/t.txt", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    REQUIRE_VOID(fd >= 0);
    static const char text[] = HEADER SITE4 "frame 0 /bin/ls BASH_VERSINFO[$(touch${IFS}PWNED)] ?\n";
    CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    CHECK(close(fd) == 0);
    site_table_t t;
    CHECK(site_table_read(path, &t) == -1);
    char want[128];
    snprintf(want, sizeof want, "%s:3: ", path);
    CHECK_MSG(strncmp(t.error, want, strlen(want)) == 0, "%s", t.error);
    CHECK(site_table_read(dir, &t) == -1 && strstr(t.error, dir) != NULL);
    CHECK(unlink(path) == 0 && rmdir(dir) == 0);
    CHECK(site_table_read(path, &t) == -1 && errno == ENOENT &&
          strstr(t.error, "cannot read") != NULL);
}

/* Format 2: kinds, and compiler sites' cc lines (site_report.c writes). */
#define HEADER2 "# tiermem site table, format 2\n"
#define CNT "allocs 1 frees 0 live 1 peak 1 bytes 1"
#define CCSITE "site 3 key 0x8000000000000a01 arena 0 " CNT " kind cc\n"

static void test_format2(void)
{
    site_table_t t;
    const char *good = HEADER2
        "site 0 key 0x0 arena 0 " CNT " kind stack\n"
        "site 1 key 0x55a7e0b16c6ab028 arena 0 " CNT " kind stack\n"
        "frame 0 /bin/ls 0x10 main+0x4\n"
        "site 2 key 0x1d3e arena 0 " CNT " kind explicit id 12 more\n"
        CCSITE "cc src/grid.c 118 17 grid_new malloc xmalloc>ywrap\n"
        "site 4 key 0xbfffffffffffffff arena 0 " CNT " kind cc\n";
    CHECK(parse_exact(good, strlen(good), &t) == 0);
    CHECK(t.version == 2 && t.nsites == 5 && t.nlines == 8);
    if (t.nsites == 5) {
        CHECK(t.sites[1].kind == SITE_KIND_STACK && t.sites[1].nframes == 1);
        CHECK(t.sites[2].kind == SITE_KIND_EXPLICIT &&
              t.sites[2].explicit_id == 12);
        const site_table_site_t *c = &t.sites[3];
        CHECK(c->kind == SITE_KIND_CC && c->has_cc && c->cc_line == 118 &&
              c->cc_column == 17 && strcmp(c->cc_file, "src/grid.c") == 0 &&
              strcmp(c->cc_function, "grid_new") == 0 &&
              strcmp(c->cc_callee, "malloc") == 0 &&
              strcmp(c->cc_chain, "xmalloc>ywrap") == 0);
        CHECK(t.sites[4].kind == SITE_KIND_CC && !t.sites[4].has_cc);
        CHECK(t.lines[6].kind == ST_LINE_CC && t.lines[6].item == 3);
    }
    site_table_free(&t);
    /* format 1 reads as before: an id makes an explicit site */
    const char *v1 = HEADER "site 2 key 0x1d3e arena 0 " CNT " id 12\n";
    CHECK(parse_exact(v1, strlen(v1), &t) == 0 && t.version == 1 &&
          t.sites[0].kind == SITE_KIND_EXPLICIT);
    site_table_free(&t);

    expect_bad(HEADER2 "site 1 key 0x1 arena 0 " CNT "\n", 2, "without its kind");
    expect_bad(HEADER2 "site 1 key 0x1 arena 0 " CNT " kind heap\n", 2,
               "not stack, explicit or cc");
    expect_bad(HEADER2 "site 1 key 0x8000000000000001 arena 0 " CNT
               " kind stack\n", 2, "does not fit a site of kind stack");
    expect_bad(HEADER2 "site 1 key 0x4000000000000001 arena 0 " CNT
               " kind cc\n", 2, "does not fit a site of kind cc");
    expect_bad(HEADER2 "site 1 key 0x1 arena 0 " CNT " kind explicit\n", 2,
               "explicit site without its id");
    expect_bad(HEADER "site 3 key 0x1 arena 0 " CNT "\ncc a.c 1 2 f g h\n", 3,
               "format 1 table");
    expect_bad(HEADER2 "site 1 key 0x1 arena 0 " CNT " kind stack\n"
               "cc a.c 1 2 f g h\n", 3, "not right under a compiler site");
    expect_bad(HEADER2 CCSITE "cc a.c 1 2 f g h\ncc a.c 1 2 f g h\n", 4,
               "not right under a compiler site");
    expect_bad(HEADER2 CCSITE "cc a.c 1 2 f g\n", 3, "not at least 7");
    expect_bad(HEADER2 CCSITE "cc $(x) 1 2 f g h\n", 3, "not a safe path");
    expect_bad(HEADER2 CCSITE "cc -rf 1 2 f g h\n", 3, "not a safe path");
    expect_bad(HEADER2 CCSITE "cc a.c 1 99999999999 f g h\n", 3, "");
    expect_bad(HEADER2 CCSITE "cc a.c 1 2 f;ls g h\n", 3, "not a symbol name");
    expect_bad(HEADER2 CCSITE "cc a.c 1 2 f g >h\n", 3, "wrapper chain");
    expect_bad(HEADER2 CCSITE "cc a.c 1 2 f g h>>x\n", 3, "wrapper chain");
    expect_bad(HEADER2 CCSITE "cc a.c 1 2 f g h|x\n", 3, "wrapper chain");
}

int main(void)
{
    test_format2();
    test_good();
    test_injection();
    test_bytes();
    test_crlf();
    test_numbers();
    test_structure();
    test_lengths();
    test_truncations();
    test_read_file();
    return tm_test_done("test_site_table");
}
