/*
 * test_fork.c -- fork() while another thread holds an arena's mutex.
 *
 * A migration is made slow (its first page query sleeps) so it holds the
 * arena mutex when the main thread forks.  The child then needs a new extent
 * in that arena, which takes the mutex: it must get it and finish.  A hang
 * is turned into a failure by alarm().
 */
#include "config.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sites.h"
#include "../tm_test.h"

#define MiB ((size_t)1 << 20)

#if TM_TEST_TSAN
/* jemalloc's fork handler takes every one of its mutexes at once, more than
 * TSan's deadlock detector can track (it aborts inside fork).  Only this
 * test turns the detector off; races are still reported. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "detect_deadlocks=0"; }
#endif

static _Atomic bool in_query, forked, slow_once = true;

static long slow_move_pages(int pid, unsigned long c, void **p, const int *n,
                            int *s, int fl)
{
    if (n == NULL && atomic_exchange(&slow_once, false)) {
        atomic_store(&in_query, true);
        /* the arena mutex is held meanwhile: until the fork, however late
         * a loaded machine runs it (20 s at most) */
        for (int i = 0; i < 20000 && !atomic_load(&forked); i++)
            usleep(1000);
    }
    return os_real_ops()->move_pages(pid, c, p, n, s, fl);
}

static void *migrate_slowly(void *arg)
{
    tm_placement_t pref = tm_placement_node(TM_MODE_PREFERRED, 0);
    tm_arena_migrate(arg, &pref, NULL);
    return NULL;
}

int main(void)
{
    tm_placement_t node0 = tm_placement_node(TM_MODE_BIND, 0);
    tm_arena_t *a = tm_arena_create(&node0);
    REQUIRE(a != NULL);
    char *p = tm_arena_malloc(a, 8 * MiB);
    memset(p, 1, 8 * MiB);
    os_ops_t ops = *os_real_ops();
    ops.move_pages = slow_move_pages;
    os_set_ops(&ops);

    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, migrate_slowly, a) == 0);
    while (!atomic_load(&in_query))
        usleep(1000);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid > 0)
        atomic_store(&forked, true);
    if (pid == 0) {
        alarm(20);
        char *q = tm_arena_malloc(a, 64 * MiB); /* needs the arena mutex */
        if (q == NULL)
            _exit(2);
        memset(q, 2, 64 * MiB);
        tm_free(q);
        tm_free(p);
        _exit(tm_arena_destroy(a) == 0 ? 0 : 3);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child: %s %d", WIFSIGNALED(status) ? "signal" : "exit",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    pthread_join(t, NULL);
    os_set_ops(NULL);
    tm_free(p);
    CHECK(tm_arena_destroy(a) == 0);
    return tm_test_done(__FILE__);
}
