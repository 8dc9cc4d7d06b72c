/*
 * test_sites.c -- sites, layouts, limits, statistics and the sh_* ABI.
 *
 * Each scenario needs its own settings, and settings are read once per
 * process, so the test runs itself once per scenario (fork + exec of
 * /proc/self/exe with the scenario's environment) and counts the children's
 * checks.  Every check reads observed state: which arena owns a pointer,
 * the site table's counters, the file tm_sites_write produced.
 */
#include "config.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sites.h"
#include "../tm_test.h"

/* ------------------------------------------------------------ helpers */

/* Stands for malloc: the entry point hands in its return address. */
__attribute__((noinline)) static void *entry(size_t n)
{
    void *p = site_malloc(__builtin_return_address(0), -1, n);
    __asm__ volatile("" ::: "memory"); /* no tail call: keep this frame */
    return p;
}

/* An exported wrapper (the test links with -rdynamic): like hypre_CAlloc. */
__attribute__((noinline, visibility("default"))) void *
test_wrapper_alloc(size_t n)
{
    void *p = entry(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) static void *caller_a(size_t n)
{
    void *p = test_wrapper_alloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) static void *caller_b(size_t n)
{
    void *p = test_wrapper_alloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) static void *direct_alloc(size_t n)
{
    void *p = entry(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

static site_t *site_of_ptr_arena(const void *p)
{
    tm_arena_t *a = tm_arena_of(p);
    uint32_t owner;
    if (a == NULL || site_arena_kind(a, &owner) != ARENA_SITE)
        return NULL;
    return site_get(owner);
}

static tm_site_info_t info_of_id(int id)
{
    tm_site_info_t info = {0};
    for (unsigned i = 0; i < tm_site_count(); i++)
        if (tm_site_info(i, &info) == 0 && info.explicit_id == id)
            return info;
    memset(&info, 0, sizeof info);
    return info;
}

/* ------------------------------------------------------------ scenarios */

static void *short_thread(void *arg)
{
    void **out = arg;
    for (int i = 0; i < 10; i++) /* fewer than a batch of site 0 counts */
        out[i] = sh_alloc(0, 100);
    return NULL;
}

/* A thread that ends before its first batch of site 0 counts is folded
 * must still be counted, and the site table must agree with tm_site_info. */
static void check_short_thread(void)
{
    tm_site_info_t before, after;
    REQUIRE_VOID(tm_site_info(0, &before) == 0);
    void *blocks[10];
    pthread_t th;
    REQUIRE_VOID(pthread_create(&th, NULL, short_thread, blocks) == 0);
    pthread_join(th, NULL);
    REQUIRE_VOID(tm_site_info(0, &after) == 0);
    CHECK_MSG(after.stats.allocs == before.stats.allocs + 10,
              "allocs %llu -> %llu", (unsigned long long)before.stats.allocs,
              (unsigned long long)after.stats.allocs);
    for (int i = 0; i < 10; i++)
        sh_free(blocks[i]);
    REQUIRE_VOID(tm_site_info(0, &after) == 0);
    CHECK(after.stats.frees == before.stats.frees + 10);
    CHECK(after.stats.live == before.stats.live);
}

/* A site arena that holds large blocks gives freed pages back at once:
 * its pages are bound to its nodes, no other site could reuse them. */
static void check_prompt_purge(void)
{
    size_t n = 4u << 20; /* under jemalloc's 8 MiB oversize threshold,
                            whose blocks are purged at once anyway */
    char *p = sh_alloc(40, n);
    REQUIRE_VOID(p != NULL);
    memset(p, 1, n);
    tm_arena_t *a = tm_arena_of(p);
    tm_residency_t r;
    REQUIRE_VOID(tm_arena_residency(a, 0, &r) == 0);
    CHECK_MSG(r.bytes_resident >= n, "resident %zu before free",
              r.bytes_resident);
    sh_free(p);
    REQUIRE_VOID(tm_arena_residency(a, 0, &r) == 0);
    CHECK_MSG(r.bytes_resident < n / 4, "resident %zu after free",
              r.bytes_resident);
}

static void scenario_sh_abi(void)
{
    check_prompt_purge();
    check_short_thread();
    void *a = sh_alloc(5, 100000);
    void *b = sh_calloc(5, 1000, 10);
    REQUIRE_VOID(a && b);
    CHECK(tm_arena_of(a) == tm_arena_of(b));
    CHECK(tm_arena_of(a) != NULL &&
          site_arena_kind(tm_arena_of(a), NULL) == ARENA_SITE);
    size_t ua = tm_usable_size(a), ub = tm_usable_size(b);
    tm_site_info_t i5 = info_of_id(5);
    CHECK(i5.explicit_id == 5);
    CHECK_MSG(i5.stats.allocs == 2 && i5.stats.live == ua + ub &&
                  i5.stats.peak == ua + ub,
              "allocs %llu live %llu peak %llu want %zu",
              (unsigned long long)i5.stats.allocs,
              (unsigned long long)i5.stats.live,
              (unsigned long long)i5.stats.peak, ua + ub);
    char *z = b;
    bool zero = true;
    for (int i = 0; i < 10000; i++)
        zero &= z[i] == 0;
    CHECK(zero);
    sh_free(a);
    i5 = info_of_id(5);
    CHECK(i5.stats.frees == 1 && i5.stats.live == ub &&
          i5.stats.peak == ua + ub);
    void *c = sh_alloc(6, 100000);
    CHECK(c != NULL && tm_arena_of(c) != tm_arena_of(b));
    b = sh_realloc(5, b, 300000);
    CHECK(b != NULL && tm_arena_of(b) != tm_arena_of(c));
    CHECK(tm_arena_of(b) != NULL && info_of_id(5).arena_id ==
                                        tm_arena_id(tm_arena_of(b)));
    void *al = NULL;
    CHECK(sh_posix_memalign(5, &al, 3, 64) == EINVAL);
    CHECK(sh_posix_memalign(5, &al, 4096, 64) == 0 &&
          ((uintptr_t)al & 4095) == 0);
    void *m = sh_memalign(7, 1 << 16, 10);
    void *aa = sh_aligned_alloc(7, 256, 1000);
    CHECK(m && ((uintptr_t)m & 0xffff) == 0);
    CHECK(aa && ((uintptr_t)aa & 255) == 0);
    char *s = sh_strdup(8, "tiermem");
    char *sn = sh_strndup(8, "tiermemory", 4);
    CHECK(s && strcmp(s, "tiermem") == 0);
    CHECK(sn && strcmp(sn, "tier") == 0);
    CHECK(tm_arena_of(s) == tm_arena_of(sn));
    void *nt = sh_alloc_cxx_nothrow(9, 64, NULL);
    CHECK(nt != NULL && tm_arena_of(nt) != NULL);
    void *zero_a = sh_alloc(9, 0), *zero_b = sh_alloc(9, 0);
    CHECK(zero_a && zero_b && zero_a != zero_b);
    void *unsited = sh_alloc(0, 64);
    tm_site_info_t i0;
    CHECK(tm_site_info(0, &i0) == 0 && i0.index == 0 &&
          i0.arena_id == tm_arena_id(tm_arena_of(unsited)));
    sh_sized_free(s, 8);
    sh_free(sn);
    sh_free(b);
    sh_free(c);
    sh_free(al);
    sh_free(m);
    sh_free(aa);
    sh_free(nt);
    sh_free(zero_a);
    sh_free(zero_b);
    sh_free(unsited);
    CHECK(info_of_id(5).stats.live == 0);
    CHECK(info_of_id(8).stats.live == 0 && info_of_id(8).stats.allocs == 2);
    /* pointers tiermem never handed out: ignored, never a crash */
    char stack_buf[64];
    char *glibc_block = malloc(100); /* the test links glibc's malloc */
    sh_free(stack_buf + 16);
    sh_free(glibc_block);
    errno = 0;
    CHECK(sh_realloc(3, glibc_block, 200) == NULL && errno == ENOMEM);
    free(glibc_block);
    /* the public names are the same functions */
    void *t = tm_site_malloc(5, 50000);
    CHECK(t && tm_arena_of(t) == arena_by_id(info_of_id(5).arena_id));
    tm_free(t);
    CHECK(info_of_id(5).stats.live == 0);
}

/* TIERMEM_SMALL_SIZE=0 TIERMEM_STACK_DEPTH=1, no wrappers */
static void scenario_keys(void)
{
    void *a[2], *d[2];
    for (int i = 0; i < 2; i++) /* one call site, twice */
        a[i] = caller_a(64);
    void *b = caller_b(64);
    /* Without wrapper skipping, depth 1 sees only the wrapper. */
    CHECK(tm_arena_of(a[0]) == tm_arena_of(a[1]));
    CHECK(tm_arena_of(a[0]) == tm_arena_of(b));
    for (int i = 0; i < 2; i++)
        d[i] = direct_alloc(64);
    CHECK(tm_arena_of(d[0]) == tm_arena_of(d[1]));
    CHECK(tm_arena_of(d[0]) != tm_arena_of(a[0]));
    tm_free(a[0]);
    tm_free(a[1]);
    tm_free(b);
    tm_free(d[0]);
    tm_free(d[1]);
    /* small requests skip the walk: site 0 */
    runtime_options.small_size = 4096;
    void *small = direct_alloc(100);
    tm_site_info_t i0;
    CHECK(tm_site_info(0, &i0) == 0 &&
          tm_arena_id(tm_arena_of(small)) == i0.arena_id);
    tm_free(small);
}

/* Is frame 0 of the site owning p inside function fn (within 64 bytes)? */
static bool frame0_in(const void *p, const void *fn)
{
    site_t *s = site_of_ptr_arena(p);
    if (s == NULL || s->trace.depth == 0)
        return false;
    const object_info_t *o = objects_get(s->trace.frame[0].object);
    if (o == NULL)
        return false;
    uintptr_t off = s->trace.frame[0].offset, f = (uintptr_t)fn - o->base;
    return off > f && off < f + 64;
}

/* Is frame 0 of p's site inside the exported function `name`? */
static bool frame0_in_symbol(const void *p, const char *name)
{
    site_t *s = site_of_ptr_arena(p);
    if (s == NULL || s->trace.depth == 0)
        return false;
    const object_info_t *o = objects_get(s->trace.frame[0].object);
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    uintptr_t addr = o->base + s->trace.frame[0].offset - 1;
    if (dladdr1((void *)addr, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 ||
        info.dli_sname == NULL || sym == NULL)
        return false;
    uintptr_t start = (uintptr_t)info.dli_saddr;
    return strcmp(info.dli_sname, name) == 0 && addr >= start &&
           addr < start + sym->st_size;
}

/* TIERMEM_WRAPPERS=test_wrapper_alloc TIERMEM_SMALL_SIZE=0, depth 1 */
static void scenario_wrappers(void)
{
    void *a[2];
    for (int i = 0; i < 2; i++)
        a[i] = caller_a(64);
    void *b = caller_b(64);
    CHECK(tm_arena_of(a[0]) == tm_arena_of(a[1]));
    CHECK(tm_arena_of(a[0]) != tm_arena_of(b));
    /* frame 0 of each is in its caller, not in the wrapper */
    CHECK(frame0_in(a[0], (void *)caller_a));
    CHECK(frame0_in(b, (void *)caller_b));
    CHECK(!frame0_in_symbol(a[0], "test_wrapper_alloc"));
    site_t *sa = site_of_ptr_arena(a[0]), *sb = site_of_ptr_arena(b);
    CHECK(sa && sb && sa->key != sb->key && sa->trace.depth == 1);
    /* depth 2 walks the stack and skips the wrapper there too */
    runtime_options.stack_depth = 2;
    void *a2 = caller_a(64), *b2 = caller_b(64);
    site_t *s2 = site_of_ptr_arena(a2);
    CHECK(s2 && s2->trace.depth == 2 && s2 != sa);
    CHECK(frame0_in(a2, (void *)caller_a));
    CHECK(frame0_in(b2, (void *)caller_b));
    CHECK(tm_arena_of(a2) != tm_arena_of(b2));
    void *ptrs[] = {a[0], a[1], b, a2, b2};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        tm_free(ptrs[i]);
}

/* Print this scenario's key for the cross-run comparison. */
static void scenario_print_key(void)
{
    void *p = direct_alloc(64);
    site_t *s = site_of_ptr_arena(p);
    CHECK(s != NULL);
    if (s)
        printf("KEY %016llx\nADDR %p\n", (unsigned long long)s->key,
               (void *)direct_alloc);
    tm_free(p);
}

static void *thread_alloc(void *arg)
{
    void **out = arg;
    out[0] = tm_site_malloc(3, 1000);
    out[1] = tm_site_malloc(4, 1000);
    return NULL;
}

static void scenario_per_thread(void)
{
    void *mine = tm_site_malloc(3, 1000);
    void *t1[2], *t2[2];
    pthread_t th;
    REQUIRE_VOID(pthread_create(&th, NULL, thread_alloc, t1) == 0);
    pthread_join(th, NULL);
    CHECK(tm_arena_of(t1[0]) == tm_arena_of(t1[1])); /* one per thread */
    CHECK(tm_arena_of(t1[0]) != tm_arena_of(mine));
    CHECK(site_arena_kind(tm_arena_of(t1[0]), NULL) == ARENA_SHARED);
    /* the exited thread's arena is recycled for the next thread */
    REQUIRE_VOID(pthread_create(&th, NULL, thread_alloc, t2) == 0);
    pthread_join(th, NULL);
    CHECK(tm_arena_of(t2[0]) == tm_arena_of(t1[0]));
    /* per-site counters stay exact in shared arenas (the ledger) */
    size_t u = tm_usable_size(mine);
    tm_site_info_t i3 = info_of_id(3), i4 = info_of_id(4);
    CHECK(i3.stats.allocs == 3 && i3.stats.live == 3 * u);
    CHECK(i4.stats.allocs == 2 && i4.stats.live == 2 * u);
    tm_free(t1[1]);
    tm_free(t2[1]);
    i3 = info_of_id(3);
    i4 = info_of_id(4);
    CHECK(i3.stats.live == 3 * u && i4.stats.live == 0 &&
          i4.stats.peak == 2 * u);
    tm_free(mine);
    tm_free(t1[0]);
    tm_free(t2[0]);
    CHECK(info_of_id(3).stats.live == 0);
}

static void scenario_big_small(void)
{
    /* TIERMEM_BIG_SMALL_THRESHOLD=1M from the parent */
    void *a = tm_site_malloc(11, 100000), *b = tm_site_malloc(12, 100000);
    CHECK(tm_arena_of(a) == tm_arena_of(b)); /* small sites share */
    CHECK(site_arena_kind(tm_arena_of(a), NULL) == ARENA_SHARED);
    void *big[12];
    for (int i = 0; i < 12; i++)
        big[i] = tm_site_malloc(11, 100000);
    /* site 11 passed 1 MiB: its latest blocks come from its own arena */
    void *after = tm_site_malloc(11, 100000);
    CHECK(tm_arena_of(after) != tm_arena_of(a));
    /* the promoted arena counts only its own blocks, not the site's older
     * ones still in the shared arena */
    unsigned in_new = 1; /* `after`, and whichever of big[] came later */
    for (int i = 0; i < 12; i++)
        in_new += tm_arena_of(big[i]) == tm_arena_of(after);
    CHECK(in_new > 1 && in_new < 13);
    tm_alloc_stats_t own;
    tm_arena_alloc_stats(tm_arena_of(after), &own);
    CHECK_MSG(own.allocs == in_new &&
                  own.live == in_new * tm_usable_size(after),
              "promoted arena: allocs %llu live %llu, holds %u blocks",
              (unsigned long long)own.allocs, (unsigned long long)own.live,
              in_new);
    void *again = tm_site_malloc(11, 100000); /* no second promotion */
    CHECK(tm_arena_of(again) == tm_arena_of(after));
    tm_free(again);
    CHECK(tm_arena_of(tm_site_malloc(12, 100)) == tm_arena_of(b));
    tm_site_info_t i11 = info_of_id(11);
    CHECK(i11.stats.allocs == 15);
    tm_free(a);
    for (int i = 0; i < 12; i++)
        tm_free(big[i]);
    tm_free(after);
    CHECK(info_of_id(11).stats.live == 0);
    tm_free(b);
}

static void scenario_limits(void)
{
    /* TIERMEM_MAX_ARENAS=3 TIERMEM_MAX_SITES=16 from the parent.  Site 0
     * took one arena. */
    void *p[40];
    for (int i = 0; i < 40; i++)
        p[i] = tm_site_malloc(100 + i, 5000);
    for (int i = 0; i < 40; i++)
        CHECK(p[i] != NULL && tm_arena_of(p[i]) != NULL);
    CHECK(tm_site_count() == 16);
    /* two sites got their own arenas, then every later site shares one */
    CHECK(site_arena_kind(tm_arena_of(p[0]), NULL) == ARENA_SITE);
    CHECK(site_arena_kind(tm_arena_of(p[1]), NULL) == ARENA_SITE);
    CHECK(site_arena_kind(tm_arena_of(p[2]), NULL) == ARENA_SHARED);
    CHECK(tm_arena_of(p[14]) == tm_arena_of(p[2]));
    /* past the site limit: site 0 */
    tm_site_info_t i0;
    CHECK(tm_site_info(0, &i0) == 0 &&
          tm_arena_id(tm_arena_of(p[39])) == i0.arena_id);
    for (int i = 0; i < 40; i++)
        tm_free(p[i]);
    for (unsigned i = 0; i < tm_site_count(); i++) {
        tm_site_info_t in;
        CHECK(tm_site_info(i, &in) == 0 && in.stats.live == 0);
    }
    CHECK(tm_site_info(16, &i0) == -1 && errno == EINVAL);
}

static void scenario_table_file(void)
{
    void *p = tm_site_malloc(21, 70000);
    char path[] = "/tmp/tm-sites-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE_VOID(fd >= 0);
    close(fd);
    CHECK(tm_sites_write(path) == 0);
    FILE *f = fopen(path, "r");
    REQUIRE_VOID(f != NULL);
    char line[512];
    bool header = false, found = false, arena = false;
    tm_site_info_t i21 = info_of_id(21);
    while (fgets(line, sizeof line, f)) {
        header |= strncmp(line, "# tiermem site table, format 2", 30) == 0;
        unsigned idx, arena_id;
        unsigned long long key, allocs;
        int id;
        if (sscanf(line, "site %u key %llx arena %u allocs %llu", &idx, &key,
                   &arena_id, &allocs) == 4 &&
            key == i21.key && strstr(line, " id 21") != NULL &&
            sscanf(strstr(line, " id "), " id %d", &id) == 1 && id == 21)
            found = allocs == 1 && arena_id == i21.arena_id;
        unsigned aid;
        if (sscanf(line, "arena %u kind site", &aid) == 1 && aid == i21.arena_id)
            arena = true;
    }
    fclose(f);
    unlink(path);
    CHECK(header);
    CHECK(found);
    CHECK(arena);
    tm_free(p);
}

/* Code outside every loaded object (a JIT's): an 18-byte trampoline in an
 * anonymous executable mapping calls entry().  Its return address has no
 * object; it must be classified once, not rescanned on every call. */
static void scenario_jit(void)
{
    unsigned char code[] = {
        0x48, 0x83, 0xec, 0x08,                   /* sub rsp, 8 (ABI) */
        0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,       /* movabs rax, entry */
        0xff, 0xd0,                               /* call rax */
        0x48, 0x83, 0xc4, 0x08,                   /* add rsp, 8 */
        0xc3};                                    /* ret */
    void *(*fn)(size_t) = entry;
    memcpy(code + 6, &fn, sizeof fn);
    unsigned char *tramp = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE_VOID(tramp != MAP_FAILED);
    memcpy(tramp, code, sizeof code);
    void *(*jit)(size_t) = (void *(*)(size_t))(uintptr_t)tramp;
    void *first = jit(8192);
    REQUIRE_VOID(first != NULL && tm_arena_of(first) != NULL);
    tm_stats_t before, after;
    tm_stats_get(&before);
    bool same = true;
    for (int i = 0; i < 2000; i++) {
        void *p = jit(8192);
        same &= tm_arena_of(p) == tm_arena_of(first);
        tm_free(p);
    }
    tm_stats_get(&after);
    CHECK(same); /* one site for one JIT call site */
    CHECK_MSG(after.metadata_bytes - before.metadata_bytes < 1024 * 1024,
              "metadata grew by %llu bytes over 2000 JIT allocations",
              (unsigned long long)(after.metadata_bytes - before.metadata_bytes));
    site_t *s = site_of_ptr_arena(first);
    CHECK(s != NULL && s->trace.depth == 1 &&
          s->trace.frame[0].object == STACK_NO_OBJECT);
    tm_free(first);
    munmap(tramp, 4096);
}

/* ------------------------------------------------------------ driver */

typedef struct scenario {
    const char *name;
    void (*run)(void);
    const char *env[4];
} scenario_t;

static const scenario_t scenarios[] = {
    {"sh_abi", scenario_sh_abi, {NULL}},
    {"keys", scenario_keys,
     {"TIERMEM_SMALL_SIZE=0", "TIERMEM_STACK_DEPTH=1", "TIERMEM_WRAPPERS=",
      NULL}},
    {"wrappers", scenario_wrappers,
     {"TIERMEM_SMALL_SIZE=0", "TIERMEM_STACK_DEPTH=1",
      "TIERMEM_WRAPPERS=test_wrapper_alloc", NULL}},
    {"print_key", scenario_print_key,
     {"TIERMEM_STACK_DEPTH=3", "TIERMEM_SMALL_SIZE=0", NULL}},
    {"per_thread", scenario_per_thread, {"TIERMEM_LAYOUT=per-thread", NULL}},
    {"big_small", scenario_big_small,
     {"TIERMEM_LAYOUT=big-small", "TIERMEM_BIG_SMALL_THRESHOLD=1M", NULL}},
    {"limits", scenario_limits,
     {"TIERMEM_MAX_ARENAS=3", "TIERMEM_MAX_SITES=16", NULL}},
    {"table_file", scenario_table_file, {NULL}},
    {"jit", scenario_jit,
     {"TIERMEM_SMALL_SIZE=0", "TIERMEM_STACK_DEPTH=1", NULL}},
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

/* Run one scenario in a child; its stdout goes to out (may be NULL). */
static int run_child(const scenario_t *s, char *out, size_t outsz)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        for (int i = 0; s->env[i]; i++)
            putenv((char *)s->env[i]);
        execl("/proc/self/exe", "test_sites", s->name, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t n;
    char sink[256];
    while ((n = read(pipefd[0], out ? out + len : sink,
                     out ? outsz - 1 - len : sizeof sink)) > 0)
        if (out)
            len += (size_t)n;
    if (out)
        out[len] = '\0';
    close(pipefd[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    if (argc == 2) {
        for (size_t i = 0; i < NSCENARIOS; i++)
            if (strcmp(argv[1], scenarios[i].name) == 0) {
                CHECK(sites_ready());
                scenarios[i].run();
                fflush(stdout);
                fprintf(stderr, "%s: %u passed, %u failed\n", argv[1],
                        tm_test_passed, tm_test_failed);
                return tm_test_failed ? 1 : 0;
            }
        return 2;
    }
    for (size_t i = 0; i < NSCENARIOS; i++)
        CHECK_MSG(run_child(&scenarios[i], NULL, 0) == 0, "scenario %s",
                  scenarios[i].name);
    /* The same key in two runs, whatever ASLR did to the addresses. */
    char k1[256], k2[256];
    CHECK(run_child(&scenarios[3], k1, sizeof k1) == 0);
    CHECK(run_child(&scenarios[3], k2, sizeof k2) == 0);
    char *a1 = strstr(k1, "ADDR"), *a2 = strstr(k2, "ADDR");
    REQUIRE(a1 && a2);
    if (strcmp(a1, a2) == 0)
        printf("note: ASLR gave both runs the same addresses\n");
    *a1 = *a2 = '\0';
    CHECK_MSG(strncmp(k1, "KEY ", 4) == 0 && strcmp(k1, k2) == 0,
              "run 1 '%s' run 2 '%s'", k1, k2);
    return tm_test_done("test_sites");
}
