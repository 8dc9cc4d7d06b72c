/*
 * owned_fd.c -- descriptors tiermem keeps open inside someone else's
 * process, and the check that they are still ours.
 *
 * A program may close every descriptor it did not open itself (closefrom,
 * or a close loop, as daemons and shells do) and then open files of its own,
 * which get the numbers we held.  Writing to such a number writes into the
 * program's file; reading it eats the program's data.  So every descriptor
 * tiermem keeps is
 *   - moved to a high number (F_DUPFD_CLOEXEC), where the program's next
 *     opens do not land, and
 *   - checked before each use against the identity recorded when we opened
 *     it: device and inode, and for anonymous inodes (eventfd, timerfd,
 *     userfaultfd, perf events share one inode) also the kind the kernel
 *     names in /proc/self/fd.
 * A descriptor that is no longer ours is forgotten, never closed: closing
 * it would close the program's file.
 *
 * The identity checks are async-signal-safe (fstat, readlink): a fork
 * child releases its copies with them.  fd_free_count tells how many
 * descriptors the program has left below its limit, for a component to
 * decide whether it can afford its own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"

/* Keep clear of select()'s FD_SETSIZE (1024) and of the low numbers a
 * program reuses first: the top quarter below min(limit, 1024). */
static int high_fd_base(void)
{
    struct rlimit rl;
    rlim_t lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < lim)
        lim = rl.rlim_cur;
    return (int)(lim - lim / 4);
}

/* "/proc/self/fd/<fd>" into buf, without snprintf: a fork child calls
 * this (fd_release), where only async-signal-safe calls are allowed. */
static void fd_link_path(int fd, char *buf)
{
    static const char prefix[] = "/proc/self/fd/";
    char digits[12];
    int n = 0;
    unsigned v = (unsigned)fd;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    memcpy(buf, prefix, sizeof prefix - 1);
    buf += sizeof prefix - 1;
    while (n > 0)
        *buf++ = digits[--n];
    *buf = '\0';
}

/* The kernel's name for an anonymous inode's kind, e.g. "[eventfd]".
 * Async-signal-safe (readlink, string functions). */
static void anon_kind(int fd, char *out, size_t size)
{
    char link[32], target[64];
    out[0] = '\0';
    fd_link_path(fd, link);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return; /* no /proc: identity by inode alone */
    target[n] = '\0';
    if (strncmp(target, "anon_inode:", 11) != 0)
        return;
    size_t len = strlen(target + 11);
    if (len >= size)
        len = size - 1;
    memcpy(out, target + 11, len);
    out[len] = '\0';
}

static bool identify(int fd, owned_fd_t *o)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return false;
    o->dev = st.st_dev;
    o->ino = st.st_ino;
    o->type = st.st_mode & S_IFMT;
    o->anon[0] = '\0';
    if (o->type != S_IFREG && o->type != S_IFDIR)
        anon_kind(fd, o->anon, sizeof o->anon);
    return true;
}

int fd_own(int fd, owned_fd_t *o)
{
    o->fd = -1;
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    int base = high_fd_base();
    if (fd < base) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, base);
        if (high >= 0) {
            (void)close(fd);
            fd = high;
        } /* else: no high number free (a low limit); keep the one we have */
    }
    if (!identify(fd, o)) {
        int e = errno;
        (void)close(fd);
        errno = e;
        return -1;
    }
    o->fd = fd;
    return fd;
}

bool fd_is_ours(const owned_fd_t *o)
{
    if (o->fd < 0)
        return false;
    struct stat st;
    if (fstat(o->fd, &st) != 0)
        return false; /* closed (EBADF) */
    if (st.st_dev != o->dev || st.st_ino != o->ino ||
        (st.st_mode & S_IFMT) != o->type)
        return false;
    /* Device and inode name a file, except for anonymous inodes, whose
     * kinds share one: only those need the kernel's name for the kind
     * (a readlink, which the log path would otherwise pay per line). */
    if (o->anon[0] == '\0')
        return true;
    char kind[sizeof o->anon];
    anon_kind(o->fd, kind, sizeof kind);
    return strcmp(kind, o->anon) == 0;
}

bool fd_release(owned_fd_t *o)
{
    bool ours = fd_is_ours(o);
    if (ours)
        (void)close(o->fd); /* close errors: the descriptor is gone anyway */
    o->fd = -1;
    return ours;
}

void fd_forget(owned_fd_t *o)
{
    o->fd = -1;
}

/* ---------------------------------------------------------------- room */

struct owned_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Descriptors open below lim, listed from /proc/self/fd (getdents64: no
 * malloc, we may be inside the program's allocator).  -1 without /proc;
 * the directory's own descriptor is not counted. */
static long count_open_proc(unsigned long lim)
{
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno == EMFILE ? (long)lim : -1; /* EMFILE: none free */
    char buf[4096] __attribute__((aligned(8)));
    long count = 0, n;
    while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0)
        for (long off = 0; off < n;) {
            struct owned_dirent64 *d = (struct owned_dirent64 *)(buf + off);
            off += d->d_reclen;
            char *end;
            unsigned long fd = strtoul(d->d_name, &end, 10);
            if (end != d->d_name && *end == '\0' && fd < lim &&
                fd != (unsigned long)dfd)
                count++;
        }
    (void)close(dfd); /* read-only directory: nothing to lose */
    return n < 0 ? -1 : count;
}

long fd_free_count(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > (rlim_t)LONG_MAX / 2)
        return LONG_MAX;
    unsigned long lim = (unsigned long)rl.rlim_cur;
    long used = count_open_proc(lim);
    if (used < 0) { /* no /proc: probe each number (bounded) */
        unsigned long probe = lim < 65536 ? lim : 65536;
        used = 0;
        for (unsigned long fd = 0; fd < probe; fd++)
            used += fcntl((int)fd, F_GETFD) >= 0;
    }
    return (long)lim - used;
}
