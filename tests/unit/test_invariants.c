/*
 * test_invariants.c -- the rules the comments state are checked.
 *
 * Any build: the consistency walk (extent_check_consistency) passes on a
 * healthy arena and finds a page mapped to the wrong arena and overlapping
 * records; mutex locks and unlocks.
 * --enable-debug builds: a child that breaks a rule (an extent set used
 * without its arena's mutex, a nested arena walk, a role-only function on
 * the wrong thread, an unlock by a non-holder, a hook finding its set and
 * the map apart) dies with SIGABRT, and its last log line names the rule.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sites.h"
#include "../tm_test.h"

#if TM_TEST_TSAN
/* The children fork with the runtime's fork handlers installed; they and
 * jemalloc's take more mutexes at once than TSan's deadlock detector can
 * track (it aborts inside fork, as in test_fork.c).  Races are still
 * reported. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "detect_deadlocks=0"; }
#endif

#define PAGE ((size_t)4096)

static tm_arena_t *arena_with_blocks(void **blocks, size_t n)
{
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    tm_arena_t *a = tm_arena_create(&node0);
    if (a == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        blocks[i] = tm_arena_malloc(a, (i + 1) * 64 * 1024);
    return a;
}

static void test_consistency_walk(void)
{
    void *blocks[8];
    tm_arena_t *a = arena_with_blocks(blocks, 8);
    REQUIRE_VOID(a != NULL);
    CHECK(extent_check_consistency(&a->hooked) == 0);

    /* One page of a tracked extent mapped to nobody: found. */
    mutex_lock(&a->hooked.lock);
    extent_range_t r;
    REQUIRE_VOID(extent_set_first(&a->hooked.extents, &r));
    extent_map_remove((void *)r.start, PAGE);
    size_t problems =
        extent_set_check_consistency(&a->hooked.extents, a->hooked.id);
    REQUIRE_VOID(extent_map_insert((void *)r.start, PAGE, a->hooked.id) == 0);
    mutex_unlock(&a->hooked.lock);
    CHECK_MSG(problems == 1, "%zu problems for one unmapped page", problems);
    CHECK(extent_check_consistency(&a->hooked) == 0);

    for (size_t i = 0; i < 8; i++)
        tm_free(blocks[i]);
    CHECK(tm_arena_destroy(a) == 0);

    /* Overlapping records of an unowned set: found. */
    char *region = mmap(NULL, 4 * PAGE, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE_VOID(region != MAP_FAILED);
    unsigned id = TM_MAX_ARENAS; /* the last id: not used by this test */
    extent_set_t set = {0};
    uintptr_t base = (uintptr_t)region;
    CHECK(extent_set_add(&set, base, 3 * PAGE) == 0);
    REQUIRE_VOID(extent_map_insert(region, 3 * PAGE, id) == 0);
    CHECK(extent_set_check_consistency(&set, id) == 0);
    CHECK(extent_set_add(&set, base + PAGE, PAGE) == 0);
    CHECK(extent_set_check_consistency(&set, id) == 1);
    extent_set_clear(&set);
    extent_map_remove(region, 3 * PAGE);
    munmap(region, 4 * PAGE);
}

static void test_mutex(void)
{
    mutex_t mu;
    REQUIRE_VOID(mutex_init(&mu) == 0);
    mutex_lock(&mu);
    CHECK(mutex_owned(&mu));
    mutex_unlock(&mu);
#ifdef TM_DEBUG
    CHECK(!mutex_owned(&mu));
#endif
    mutex_destroy(&mu);
}

#ifdef TM_DEBUG
/* Run breaker in a child that logs to a file; it must die with SIGABRT and
 * its log must name `rule`. */
static void expect_abort(const char *what, void (*breaker)(void),
                         const char *rule)
{
    char path[] = "/tmp/tm-invariants-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE_VOID(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        log_configure(TM_LOG_ERROR, fd);
        breaker();
        _exit(0); /* the rule was not checked */
    }
    int status;
    REQUIRE_VOID(waitpid(pid, &status, 0) == pid);
    char log[4096] = {0};
    ssize_t n = pread(fd, log, sizeof log - 1, 0);
    close(fd);
    unlink(path);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "%s: status %#x, not SIGABRT", what, status);
    CHECK_MSG(n > 0 && strstr(log, "invariant violated") != NULL &&
                  strstr(log, rule) != NULL,
              "%s: the log does not name \"%s\": %s", what, rule, log);
}

static tm_arena_t *child_arena(void)
{
    static void *blocks[4];
    tm_arena_t *a = arena_with_blocks(blocks, 4);
    if (a == NULL)
        _exit(3);
    return a;
}

static void set_without_lock(void)
{
    tm_arena_t *a = child_arena();
    extent_range_t r;
    (void)extent_set_first(&a->hooked.extents, &r);
}

static void ranges_without_lock(void)
{
    tm_arena_t *a = child_arena();
    size_t count, bytes;
    (void)arena_ranges(a, &count, &bytes);
}

static void nested_walk(void)
{
    arena_walk_begin();
    arena_walk_begin();
}

static void unlock_not_held(void)
{
    static mutex_t mu = TM_MUTEX_INITIALIZER;
    mutex_unlock(&mu);
}

static void profiler_role_elsewhere(void)
{
    debug_assert_role(TM_ROLE_PROFILER);
}

/* The map loses a page of a tracked extent; with the hooks' walk after
 * every split, merge and destroy, the next one aborts. */
static void hooks_find_map_apart(void)
{
    void *blocks[4];
    tm_arena_t *a = child_arena();
    mutex_lock(&a->hooked.lock);
    extent_range_t r;
    if (!extent_set_first(&a->hooked.extents, &r))
        _exit(3);
    extent_map_remove((void *)(r.start + r.size - PAGE), PAGE);
    mutex_unlock(&a->hooked.lock);
    hook_set_consistency_period(1);
    for (int round = 0; round < 64; round++) {
        for (size_t i = 0; i < 4; i++)
            blocks[i] = tm_arena_malloc(a, (size_t)(round % 7 + 1) << 16);
        for (size_t i = 0; i < 4; i++)
            tm_free(blocks[i]);
    }
    (void)tm_arena_destroy(a);
}

static void test_rules_abort(void)
{
    expect_abort("extent set without its lock", set_without_lock,
                 "an extent set is used under its arena's mutex");
    expect_abort("arena_ranges without its lock", ranges_without_lock,
                 "the caller holds &a->hooked.lock");
    expect_abort("nested walk", nested_walk, "arena walks do not nest");
    expect_abort("unlock by a non-holder", unlock_not_held,
                 "a mutex is unlocked by its holder");
    expect_abort("profiler-only code on a program thread",
                 profiler_role_elsewhere,
                 "runs on the TM_ROLE_PROFILER thread only");
    expect_abort("hooks after the map lost a page", hooks_find_map_apart,
                 "each extent of an arena's set is mapped to that arena");

    /* and a rule kept does not abort */
    thread_set_role(TM_ROLE_PROFILER);
    debug_assert_role(TM_ROLE_PROFILER);
    CHECK(thread_role_current() == TM_ROLE_PROFILER);
    thread_set_role(TM_ROLE_PROGRAM);
}
#endif

int main(void)
{
    test_mutex();
    test_consistency_walk();
#ifdef TM_DEBUG
    test_rules_abort();
#else
    printf("test_invariants: NOTE: release build: the debug-only checks "
           "(a broken rule aborts) are not compiled in; only the "
           "consistency walk and mutex were tested.  Build with "
           "--enable-debug to test the rules.\n");
#endif
    return tm_test_done("test_invariants");
}
