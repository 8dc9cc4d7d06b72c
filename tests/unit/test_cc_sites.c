/*
 * test_cc_sites.c -- compiler-instrumented sites: tm_cc_* entry points,
 * compiler ids as keys, the .note.tiermem notes (this program's own, a
 * dlopen'd object's, and hostile ones through the parser), the site table
 * and guidance naming compiler ids.
 *
 * The program carries its own note (cc_note.h) describing ID_A and ID_B.
 * Guidance (written before the first allocation) places ID_A's arena on
 * node 0, interleaved: a placement the default never is.
 */
#include "config.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>

#include "sites.h"
#include "../tm_test.h"
#include "cc_note.h"

__attribute__((section(".note.tiermem"), used, aligned(4)))
static const cc_test_note_t own_note =
    CC_TEST_NOTE(ID_A, 10, ID_B, 20, "\0main.c\0main\0malloc\0xalloc>ywrap\0",
                 1, 8, 13, 20);

/* ---------------------------------------------------------------- parser */

static void count_record(const cc_desc_t *d, void *arg)
{
    (void)d;
    (*(unsigned *)arg)++;
}

/* A private copy of own_note's descriptor, to break. */
static unsigned char desc[CC_TEST_DESC_SIZE];
static void desc_reset(void)
{
    memcpy(desc, (const char *)&own_note + 20, sizeof desc);
}
static void put32(size_t at, uint32_t v) { memcpy(desc + at, &v, 4); }

static void expect_bad(size_t len, const char *what)
{
    unsigned n = 0, seen = 0;
    const char *why = cc_note_parse(desc, len, &n, count_record, &seen);
    CHECK_MSG(why != NULL && strstr(why, what) != NULL, "got \"%s\", want "
              "\"%s\"", why ? why : "(accepted)", what);
    CHECK(n == 0 && seen == 0); /* a bad note gives nothing */
    desc_reset();
}

static void test_parser(void)
{
    unsigned n = 0, seen = 0;
    desc_reset();
    CHECK(cc_note_parse(desc, sizeof desc, &n, count_record, &seen) == NULL);
    CHECK(n == 2 && seen == 2);
    put32(0, 2);
    expect_bad(sizeof desc, "version");
    put32(4, 0x08000001u); /* nsites * 32 overflows 32 bits */
    expect_bad(sizeof desc, "nsites");
    put32(4, 3); /* a third record would overlap the string table */
    expect_bad(sizeof desc, "string table overlaps");
    put32(8, (uint32_t)sizeof desc); /* strtab starts at the end */
    expect_bad(sizeof desc, "past the descriptor");
    put32(12, 0xffffffffu);
    expect_bad(sizeof desc, "past the descriptor");
    desc[sizeof desc - 1] = 'x'; /* strtab without its final NUL */
    expect_bad(sizeof desc, "NUL");
    desc[CC_TEST_STRTAB_OFF] = 'x'; /* offset 0 is not "" */
    expect_bad(sizeof desc, "empty string");
    put32(16 + 8, CC_TEST_STRTAB); /* record 0's file past strtab */
    expect_bad(sizeof desc, "string offset");
    put32(16 + 4, 0x40000000u); /* record 0's id: bits 63..62 = 01 */
    expect_bad(sizeof desc, "compiler id");
    expect_bad(15, "header");
    expect_bad(sizeof desc - 1, "past the descriptor"); /* truncated */
    CHECK(cc_note_parse(NULL, 0, &n, NULL, NULL) != NULL);

    /* The walk: a note whose descriptor runs past the segment, and notes
     * of other owners, are not ours to read. */
    unsigned char area[sizeof own_note + 32];
    memcpy(area, &own_note, sizeof own_note);
    seen = 0;
    CHECK(cc_notes_walk(area, sizeof own_note, 4, "t", count_record,
                        &seen) == 1 && seen == 2);
    seen = 0;
    CHECK(cc_notes_walk(area, sizeof own_note - 4, 4, "t", count_record,
                        &seen) == 0 && seen == 0);
    uint32_t gnu[4] = {4, 0, 1, 0x00554e47}; /* "GNU\0", empty desc */
    memcpy(area, gnu, sizeof gnu);
    memcpy(area + sizeof gnu, &own_note, sizeof own_note);
    seen = 0;
    CHECK(cc_notes_walk(area, sizeof gnu + sizeof own_note, 4, "t",
                        count_record, &seen) == 1 && seen == 2);
}

/* ---------------------------------------------------------------- runtime */

static void test_fast_path(void)
{
    uint64_t walks = stack_key_calls();
    char *p = tm_cc_malloc(ID_A, 100000);
    CHECK(p != NULL && tm_arena_of(p) != NULL);
    char *q = tm_cc_malloc(ID_A, 10); /* small: still the id's site */
    CHECK(stack_key_calls() == walks); /* no stack walk for either */
    site_t *s = cc_site(ID_A);
    REQUIRE_VOID(s != NULL);
    CHECK(s->key == ID_A && s->kind == SITE_KIND_CC && s->explicit_id == -1);
    CHECK(cc_site(ID_A) == s); /* the cache */
    tm_site_info_t info;
    CHECK(tm_site_info(s->index, &info) == 0 && info.kind == TM_SITE_CC &&
          info.key == ID_A && info.stats.allocs == 2);
    /* guidance "cc ID_A node 0 interleave" */
    tm_arena_t *a = atomic_load(&s->arena);
    REQUIRE_VOID(a != NULL);
    tm_placement_t pl = tm_arena_placement(a);
    CHECK(pl.mode == TM_MODE_INTERLEAVE && pl.nodes == 1);
    tm_free(p); /* any free path: the arena is found by address */
    tm_free(q);
    CHECK(tm_site_info(s->index, &info) == 0 && info.stats.live == 0);

    /* An id without the compiler tag is never a key: site 0. */
    void *z = tm_cc_malloc(0x4000000000000001ull, 64);
    CHECK(z != NULL && cc_site(0x4000000000000001ull) == NULL);
    tm_free(z);
}

static void test_semantics(void)
{
    void *p = NULL;
    CHECK(tm_cc_posix_memalign(ID_B, &p, 3, 10) == EINVAL);
    CHECK(tm_cc_posix_memalign(ID_B, &p, 4096, 10) == 0 && p != NULL &&
          (uintptr_t)p % 4096 == 0);
    tm_free(p);
    errno = 0;
    CHECK(tm_cc_malloc(ID_B, SIZE_MAX - 4096) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(tm_cc_calloc(ID_B, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(tm_cc_reallocarray(ID_B, NULL, SIZE_MAX / 2, 4) == NULL &&
          errno == ENOMEM);
    int *z = tm_cc_calloc(ID_B, 1000, sizeof(int));
    CHECK(z != NULL && z[0] == 0 && z[999] == 0);
    z = tm_cc_realloc(ID_B, z, 8000 * sizeof(int));
    CHECK(z != NULL && z[999] == 0);
    CHECK(tm_cc_realloc(ID_B, z, 0) == NULL); /* frees, as glibc */
    void *m = tm_cc_memalign(ID_B, 48, 100); /* rounded up to 64 */
    CHECK(m != NULL && (uintptr_t)m % 64 == 0);
    tm_free(m);
    m = tm_cc_aligned_alloc(ID_B, 256, 256);
    CHECK(m != NULL && (uintptr_t)m % 256 == 0);
    tm_free(m);
    m = tm_cc_valloc(ID_B, 10);
    CHECK(m != NULL && (uintptr_t)m % 4096 == 0);
    tm_free(m);
    char *s = tm_cc_strdup(ID_B, "hello");
    CHECK(s != NULL && strcmp(s, "hello") == 0);
    tm_free(s);
    s = tm_cc_strndup(ID_B, "hello", 3);
    CHECK(s != NULL && strcmp(s, "hel") == 0);
    tm_free(s);
    /* C++: nothrow NULL, aligned variants aligned */
    CHECK(tm_cc_new_nothrow(ID_B, SIZE_MAX - 4096) == NULL);
    CHECK(tm_cc_new_array_nothrow(ID_B, SIZE_MAX - 4096) == NULL);
    CHECK(tm_cc_new_aligned_nothrow(ID_B, SIZE_MAX - 4096, 64) == NULL);
    CHECK(tm_cc_new_array_aligned_nothrow(ID_B, SIZE_MAX - 4096, 64) == NULL);
    void *n1 = tm_cc_new(ID_B, 1), *n2 = tm_cc_new_array(ID_B, 24);
    void *n3 = tm_cc_new_aligned(ID_B, 10, 128);
    void *n4 = tm_cc_new_array_aligned(ID_B, 10, 1024);
    void *n5 = tm_cc_new_aligned_nothrow(ID_B, 10, 256);
    CHECK(n1 && n2 && (uintptr_t)n1 % 16 == 0 && (uintptr_t)n2 % 16 == 0);
    CHECK(n3 && n4 && n5 && (uintptr_t)n3 % 128 == 0 &&
          (uintptr_t)n4 % 1024 == 0 && (uintptr_t)n5 % 256 == 0);
    CHECK(tm_arena_of(n3) == atomic_load(&cc_site(ID_B)->arena));
    tm_free(n1), tm_free(n2), tm_free(n3), tm_free(n4), tm_free(n5);
}

/* tm_cc_new of a size no allocator can give throws std::bad_alloc: with
 * libstdc++ loaded and nothing to catch it, std::terminate says so. */
static void test_bad_alloc(void)
{
#if TM_TEST_TSAN
    /* fork runs jemalloc's prefork, which takes every arena's mutexes:
     * with this test's arenas that is past the 64 locks ThreadSanitizer's
     * deadlock detector can hold (its CHECK fails, and the run hangs) */
    tm_test_skip("bad_alloc in a forked child",
                 "ThreadSanitizer's deadlock detector holds at most 64 "
                 "locks, fewer than fork takes here");
    return;
#endif
    if (dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL) == NULL) {
        tm_test_skip("bad_alloc", "no libstdc++.so.6 here");
        return;
    }
    int fds[2];
    REQUIRE_VOID(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        tm_cc_new(ID_B, SIZE_MAX - 4096);
        _exit(0); /* not reached if it threw */
    }
    close(fds[1]);
    char buf[512] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 &&
           (r = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK_MSG(strstr(buf, "std::bad_alloc") != NULL, "child said: %s", buf);
}

static void test_descriptions(void)
{
    const cc_desc_t *d = cc_describe(ID_A);
    REQUIRE_VOID(d != NULL);
    CHECK(strcmp(d->file, "main.c") == 0 && d->line == 10 && d->column == 7);
    CHECK(strcmp(d->function, "main") == 0 && strcmp(d->callee, "malloc") == 0);
    CHECK(strcmp(d->chain, "xalloc>ywrap") == 0);
    d = cc_describe(ID_B);
    CHECK(d != NULL && d->line == 20 && d->chain[0] == '\0');
    CHECK(cc_describe(ID_C) == NULL && cc_describe(ID_D) == NULL);

    /* An id first seen after dlopen: described by the new object. */
    void *h = dlopen(CC_DSO_PATH, RTLD_NOW);
    CHECK_MSG(h != NULL, "dlopen: %s", dlerror());
    void *p = tm_cc_malloc(ID_D, 5000);
    CHECK(p != NULL);
    d = cc_describe(ID_D);
    CHECK(d != NULL && strcmp(d->file, "dso.c") == 0 && d->line == 40 &&
          strcmp(d->callee, "calloc") == 0);
    /* the object's other description of ID_A is a duplicate: first kept */
    d = cc_describe(ID_A);
    CHECK(d != NULL && strcmp(d->file, "main.c") == 0);
    tm_free(p);
}

/* A mixed program: stack, explicit and compiler sites in one table. */
static void test_table(const char *dir)
{
    void *st = site_malloc(__builtin_return_address(0), -1, 1 << 20);
    void *ex = sh_alloc(7, 100);
    void *cc = tm_cc_malloc(ID_C, 100);
    CHECK(st && ex && cc);
    char path[512];
    snprintf(path, sizeof path, "%s/table.txt", dir);
    REQUIRE_VOID(tm_sites_write(path) == 0);
    site_table_t t;
    REQUIRE_VOID(site_table_read(path, &t) == 0);
    CHECK(t.version == 2);
    bool seen[3] = {false, false, false}, a = false, c = false;
    for (size_t i = 0; i < t.nsites; i++) {
        const site_table_site_t *s = &t.sites[i];
        seen[s->kind] = true;
        if (s->key == ID_A)
            a = s->kind == SITE_KIND_CC && s->has_cc &&
                strcmp(s->cc_file, "main.c") == 0 && s->cc_line == 10 &&
                s->cc_column == 7 && strcmp(s->cc_function, "main") == 0 &&
                strcmp(s->cc_callee, "malloc") == 0 &&
                strcmp(s->cc_chain, "xalloc>ywrap") == 0 && s->nframes == 0;
        if (s->key == ID_C)
            c = s->kind == SITE_KIND_CC && !s->has_cc; /* undescribed */
        if (s->kind == SITE_KIND_EXPLICIT)
            CHECK(s->explicit_id == 7 && !(s->key >> 63));
        if (s->kind == SITE_KIND_STACK)
            CHECK(!(s->key >> 63)); /* bit 63 is the compiler ids' */
    }
    CHECK(seen[SITE_KIND_STACK] && seen[SITE_KIND_EXPLICIT] &&
          seen[SITE_KIND_CC] && a && c);
    site_table_free(&t);
    unlink(path);
    tm_free(st), tm_free(ex), tm_free(cc);
}

static void test_guidance_selector(void)
{
    guidance_t g;
    const char *text = "tiermem-guidance 1\n"
                       "cc 0x8000000000000a01 node 0 interleave\n"
                       "cc 0x4000000000000a01 node 0\n" /* not a cc id */
                       "key 0x9000000000000001 tier 0\n";
    CHECK(guidance_parse(text, strlen(text), "g", &g) == 2 && g.rejected == 1);
    const guidance_rule_t *r = guidance_find(&g, false, ID_A);
    CHECK(r != NULL && r->target.mode == TM_MODE_INTERLEAVE);
    CHECK(guidance_find(&g, false, 0x9000000000000001ull) != NULL);
    guidance_free(&g);
}

/* tm_cc_next_site: the id announced before a language runtime's
 * allocating call goes to the first interposed allocation of the thread,
 * and to that one only; 0 withdraws it; an untagged id announces nothing. */
static void test_next_site(void)
{
    site_t *b = cc_site(ID_B);
    REQUIRE_VOID(b != NULL);
    tm_site_info_t before, after;
    REQUIRE_VOID(tm_site_info(b->index, &before) == 0);
    tm_cc_next_site(ID_B);
    void *p = site_malloc(__builtin_return_address(0), -1, 100000);
    void *q = site_malloc(__builtin_return_address(0), -1, 100000);
    REQUIRE_VOID(p != NULL && q != NULL);
    CHECK(tm_site_info(b->index, &after) == 0 &&
          after.stats.allocs == before.stats.allocs + 1);
    CHECK(tm_arena_of(p) == atomic_load(&b->arena));
    CHECK(tm_arena_of(q) != atomic_load(&b->arena)); /* taken once */
    tm_cc_next_site(ID_B);
    tm_cc_next_site(0); /* the call failed before allocating */
    void *r = site_malloc(__builtin_return_address(0), -1, 100000);
    CHECK(tm_site_info(b->index, &after) == 0 &&
          after.stats.allocs == before.stats.allocs + 1);
    tm_cc_next_site(0x4000000000000002ull); /* no tag: nothing announced */
    void *t = site_malloc(__builtin_return_address(0), -1, 100000);
    CHECK(tm_arena_of(t) != atomic_load(&b->arena));
    tm_free(p);
    tm_free(q);
    tm_free(r);
    tm_free(t);
}

static uint64_t allocs_of(uint64_t id)
{
    site_t *s = cc_site(id);
    tm_site_info_t info;
    if (s == NULL || tm_site_info(s->index, &info) != 0)
        return UINT64_MAX;
    return info.stats.allocs;
}

/* tm_cc_wrap_enter/leave: the wrapper context.  The outermost enter wins,
 * leave restores what enter returned, an untagged id sets nothing, and
 * while a context is set every allocation of the thread takes it: the
 * tm_cc_* ones instead of their own id, the interposed ones (a wrapper in
 * an uninstrumented library) instead of their stack, small ones too. */
static void test_wrap_context(void)
{
    uint64_t a0 = allocs_of(ID_A), b0 = allocs_of(ID_B);
    REQUIRE_VOID(a0 != UINT64_MAX && b0 != UINT64_MAX);
    tm_arena_t *arena_a = atomic_load(&cc_site(ID_A)->arena);
    tm_arena_t *arena_b = atomic_load(&cc_site(ID_B)->arena);

    CHECK(tm_cc_wrap_enter(ID_A) == 0);
    void *p1 = tm_cc_malloc(ID_B, 100000); /* inside the wrapper: A's */
    uint64_t prev = tm_cc_wrap_enter(ID_B); /* a wrapper of a wrapper */
    CHECK(prev == ID_A);
    void *p2 = tm_cc_calloc(ID_B, 10, 10);
    void *p3 = site_malloc(__builtin_return_address(0), -1, 100000);
    void *p4 = site_malloc(__builtin_return_address(0), -1, 24); /* small */
    tm_cc_wrap_leave(prev);
    void *p5 = tm_cc_realloc(ID_B, NULL, 100000); /* still A's */
    tm_cc_wrap_leave(0);
    void *p6 = tm_cc_malloc(ID_B, 100000); /* no context: its own */
    void *p7 = site_malloc(__builtin_return_address(0), -1, 100000);
    REQUIRE_VOID(p1 && p2 && p3 && p4 && p5 && p6 && p7);
    CHECK(allocs_of(ID_A) == a0 + 5);
    CHECK(allocs_of(ID_B) == b0 + 1);
    CHECK(tm_arena_of(p3) == arena_a && tm_arena_of(p4) == arena_a);
    CHECK(tm_arena_of(p6) == arena_b);
    CHECK(tm_arena_of(p7) != arena_a && tm_arena_of(p7) != arena_b);

    /* an untagged id sets nothing: the calls keep their own ids */
    CHECK(tm_cc_wrap_enter(0x4000000000000003ull) == 0);
    void *q1 = tm_cc_malloc(ID_B, 100000);
    void *q2 = site_malloc(__builtin_return_address(0), -1, 100000);
    CHECK(tm_cc_wrap_enter(ID_A) == 0); /* still none set */
    tm_cc_wrap_leave(0);
    tm_cc_wrap_leave(0);
    REQUIRE_VOID(q1 && q2);
    CHECK(allocs_of(ID_B) == b0 + 2 && allocs_of(ID_A) == a0 + 5);
    CHECK(tm_arena_of(q2) != arena_a && tm_arena_of(q2) != arena_b);

    /* an id announced inside a wrapper: the wrapper's call wins, and the
     * announcement is used up all the same (one-shot) */
    CHECK(tm_cc_wrap_enter(ID_A) == 0);
    tm_cc_next_site(ID_B);
    void *r1 = site_malloc(__builtin_return_address(0), -1, 100000);
    tm_cc_wrap_leave(0);
    void *r2 = site_malloc(__builtin_return_address(0), -1, 100000);
    REQUIRE_VOID(r1 && r2);
    CHECK(tm_arena_of(r1) == arena_a);
    CHECK(tm_arena_of(r2) != arena_a && tm_arena_of(r2) != arena_b);
    CHECK(allocs_of(ID_A) == a0 + 6 && allocs_of(ID_B) == b0 + 2);

    void *all[] = {p1, p2, p3, p4, p5, p6, p7, q1, q2, r1, r2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tm_free(all[i]);
}

int main(void)
{
    char dir[] = "/tmp/tm_cc_sites.XXXXXX", gpath[600];
    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(gpath, sizeof gpath, "%s/guidance", dir);
    FILE *f = fopen(gpath, "w");
    REQUIRE(f != NULL);
    fprintf(f, "tiermem-guidance 1\ncc %#llx node 0 interleave\n",
            (unsigned long long)ID_A);
    fclose(f);
    setenv("TIERMEM_GUIDANCE", gpath, 1);
    REQUIRE(sites_ready());
    test_parser();
    test_guidance_selector();
    test_fast_path();
    test_next_site();
    test_wrap_context();
    test_semantics();
    test_descriptions();
    test_table(dir);
    test_bad_alloc();
    unlink(gpath);
    rmdir(dir);
    return tm_test_done("test_cc_sites");
}
