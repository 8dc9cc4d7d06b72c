/*
 * fork_exec.c -- fork while other threads are inside malloc, then use the
 * allocator in the child and exec.
 *
 * Three worker threads allocate, reallocate and free without pause while
 * the main thread forks NFORK children one at a time, and a fourth worker
 * forks children of its own.  A child inherits whatever allocator locks
 * the other threads held at the fork, so it must still be able to malloc,
 * free, realloc and start a thread of its own; then, by its index, it
 *   0: execs /bin/echo (a new process image that loads the preload again),
 *   1: execs this program with --child (same, and it starts threads),
 *   2: returns through exit() (atexit handlers and stdio in the child),
 *   3: leaves with _exit().
 * The main thread waits for each child before the next fork, so the output
 * order is fixed.  A deadlock anywhere shows as run.sh's timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tm_probe.h"

#define NFORK 40
#define NWORKER 3
#define WORKER_FORKS 8

static atomic_int stop;
static char self[4096];

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 17;
}

/* Allocate, check and free a spread of sizes; 0 if all went well. */
static int exercise(unsigned seed, int rounds)
{
    static const size_t sizes[] = {1, 24, 200, 4095, 5000, 70000, 300000,
                                   8u << 20};
    int bad = 0;
    for (int r = 0; r < rounds; r++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            unsigned char *p = malloc(n);
            if (!p)
                return 1;
            tm_probe_inside_arena(p, "fork exercise");
            memset(p, (int)(seed + k), n);
            unsigned char *q = realloc(p, n * 2 + 1);
            if (!q) {
                free(p);
                return 1;
            }
            for (size_t i = 0; i < n; i += 997)
                bad |= q[i] != (unsigned char)(seed + k);
            free(q);
        }
    return bad;
}

static void *worker(void *arg)
{
    uint64_t s = (uintptr_t)arg;
    void *slot[64] = {0};
    while (!atomic_load(&stop)) {
        unsigned i = (unsigned)(rnd(&s) % 64);
        size_t n = 1 + rnd(&s) % ((rnd(&s) % 8) ? 2048 : 400000);
        if (slot[i] && rnd(&s) % 3 == 0) {
            void *q = realloc(slot[i], n);
            if (q)
                slot[i] = q;
        } else {
            free(slot[i]);
            slot[i] = malloc(n);
            if (slot[i])
                memset(slot[i], 1, n < 64 ? n : 64);
        }
    }
    for (unsigned i = 0; i < 64; i++)
        free(slot[i]);
    return NULL;
}

static void *child_thread(void *arg)
{
    return (void *)(intptr_t)exercise((unsigned)(uintptr_t)arg, 3);
}

/* Runs in a fresh child: the allocator and threads must still work. */
static int child_usable(unsigned seed)
{
    if (exercise(seed, 2))
        return 0;
    pthread_t t;
    void *ret = (void *)1;
    if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)seed) ||
        pthread_join(t, &ret) || ret)
        return 0;
    return 1;
}

/* A worker that forks too: fork from a thread that is not main. */
static atomic_int worker_forks_ok;
static void *forking_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < WORKER_FORKS; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_usable(1000u + (unsigned)i) ? 0 : 3);
        int st;
        if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
            WEXITSTATUS(st) == 0)
            atomic_fetch_add(&worker_forks_ok, 1);
        exercise((unsigned)i, 1);
    }
    return NULL;
}

/* The program re-executed as a child: --child N */
static int exec_child(int i)
{
    if (!child_usable(2000u + (unsigned)i)) {
        printf("child %d exec self: allocator unusable\n", i);
        return 1;
    }
    printf("child %d exec self ok\n", i);
    return tm_probe_report();
}

int main(int argc, char **argv)
{
    tm_probe_init();
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return exec_child(atoi(argv[2]));
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("readlink");
        return 1;
    }
    self[n] = '\0';

    pthread_t w[NWORKER + 1];
    for (uintptr_t i = 0; i < NWORKER; i++)
        if (pthread_create(&w[i], NULL, worker, (void *)(i + 1))) {
            printf("pthread_create failed\n");
            return 1;
        }
    if (pthread_create(&w[NWORKER], NULL, forking_worker, NULL)) {
        printf("pthread_create failed\n");
        return 1;
    }

    int failures = 0;
    for (int i = 0; i < NFORK; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        fflush(stdout); /* or the child would print our buffer again */
        pid_t pid = fork();
        if (pid < 0) {
            printf("fork %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (pid == 0) {
            if (!child_usable((unsigned)i)) {
                printf("child %d: allocator unusable after fork\n", i);
                fflush(stdout);
                _exit(2);
            }
            switch (i % 4) {
            case 0:
                execl("/bin/echo", "echo", "child", num, "exec echo ok",
                      (char *)NULL);
                _exit(127);
            case 1:
                execl(self, self, "--child", num, (char *)NULL);
                _exit(127);
            case 2:
                printf("child %d exit ok\n", i);
                exit(0);
            default:
                printf("child %d _exit ok\n", i);
                fflush(stdout);
                _exit(0);
            }
        }
        int st;
        if (waitpid(pid, &st, 0) != pid) {
            printf("waitpid %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (WIFEXITED(st))
            printf("child %d: exit status %d\n", i, WEXITSTATUS(st));
        else
            printf("child %d: killed by signal %d\n", i, WTERMSIG(st));
        failures += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }

    /* popen: posix_spawn (vfork-style clone) while workers still run */
    FILE *f = popen("/bin/echo popen ok", "r");
    char line[64] = "";
    if (!f || !fgets(line, sizeof line, f))
        failures++;
    if (f && pclose(f) != 0)
        failures++;
    printf("popen: %s", line);

    atomic_store(&stop, 1);
    for (int i = 0; i <= NWORKER; i++)
        pthread_join(w[i], NULL);
    printf("forks from a worker thread: %d of %d ok\n",
           atomic_load(&worker_forks_ok), WORKER_FORKS);
    failures += atomic_load(&worker_forks_ok) != WORKER_FORKS;
    printf("failures: %d\n", failures);
    return (tm_probe_report() || failures) ? 1 : 0;
}
