/*
 * exec_override.c -- the exec family, taken over through LD_PRELOAD
 * (libtiermem-preload.so only), so a process image that is replaced still
 * finishes what it would have finished at exit.
 *
 * exec runs no atexit handler: a program that profiles and then execs
 * (a shell running its last command, a launcher becoming the application)
 * would leave its profile unfinished.  Each wrapper runs the runtime's
 * before-exec hook, then the C library's own function.  If exec fails the
 * program goes on without the profiler (the hook stopped it and finished
 * its file): the price of finishing the file exactly once.
 *
 * Only the functions a program calls by name are wrapped; posix_spawn and
 * system() exec in a child, where the profiler is already off.
 *
 * exec is async-signal-safe and crash handlers call it, so the wrappers do
 * as little as they can: the C library's functions are looked up once, at
 * load time, not with dlsym inside the call, and the hook gives up rather
 * than wait for a lock.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#include "sites.h"

#define OVERRIDE __attribute__((visibility("default")))

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);

extern char **environ;

static execve_fn libc_execve;
static execvpe_fn libc_execvpe;
static fexecve_fn libc_fexecve;

/* libc's own function; NULL if it cannot be found. */
static void *next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (f == NULL)
        log_error("exec: the C library's %s was not found", name);
    return f;
}

__attribute__((constructor)) static void exec_resolve(void)
{
    libc_execve = (execve_fn)next("execve");
    libc_execvpe = (execvpe_fn)next("execvpe");
    libc_fexecve = (fexecve_fn)next("fexecve");
}

OVERRIDE int execve(const char *path, char *const argv[], char *const envp[])
{
    execve_fn f = libc_execve ? libc_execve : (execve_fn)next("execve");
    if (f == NULL)
        return errno = ENOSYS, -1;
    runtime_before_exec();
    return f(path, argv, envp);
}

OVERRIDE int execvpe(const char *file, char *const argv[], char *const envp[])
{
    execvpe_fn f = libc_execvpe ? libc_execvpe : (execvpe_fn)next("execvpe");
    if (f == NULL)
        return errno = ENOSYS, -1;
    runtime_before_exec();
    return f(file, argv, envp);
}

OVERRIDE int fexecve(int fd, char *const argv[], char *const envp[])
{
    fexecve_fn f = libc_fexecve ? libc_fexecve : (fexecve_fn)next("fexecve");
    if (f == NULL)
        return errno = ENOSYS, -1;
    runtime_before_exec();
    return f(fd, argv, envp);
}

OVERRIDE int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

OVERRIDE int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* The list forms: count the arguments, then build argv on the stack. */
#define LIST_TO_ARGV(first, ap, argv, envp_out)                              \
    size_t n_ = 1;                                                           \
    va_start(ap, first);                                                     \
    while (va_arg(ap, char *) != NULL)                                       \
        n_++;                                                                \
    va_end(ap);                                                              \
    char *argv[n_ + 1];                                                      \
    va_start(ap, first);                                                     \
    argv[0] = (char *)(first);                                               \
    for (size_t i_ = 1; i_ <= n_; i_++)                                      \
        argv[i_] = va_arg(ap, char *);                                       \
    envp_out;                                                                \
    va_end(ap)

OVERRIDE int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    LIST_TO_ARGV(arg, ap, argv, (void)0);
    return execve(path, argv, environ);
}

OVERRIDE int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    LIST_TO_ARGV(arg, ap, argv, (void)0);
    return execvpe(file, argv, environ);
}

OVERRIDE int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    char **envp;
    LIST_TO_ARGV(arg, ap, argv, envp = va_arg(ap, char **));
    return execve(path, argv, envp);
}
