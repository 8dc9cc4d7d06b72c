/*
 * file_open.c -- every file tiermem opens by a path it was given.
 *
 * tiermem runs inside other people's processes, often as root, and writes
 * into directories that other users can write to (the system's temporary
 * directory is a common TIERMEM_OUTPUT_DIR).  So:
 *   - a file tiermem creates is created exclusively and never through a
 *     symbolic link (O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC), under a name with
 *     an unpredictable part, and published with rename(2): a planted link
 *     or file makes the creation fail, it never redirects the write;
 *   - a file tiermem reads or appends to is opened with O_NONBLOCK, so a
 *     FIFO without a writer cannot hang the program's start-up, and it must
 *     be of an accepted type (a regular file; the caller says what else).
 * None of this allocates: it runs inside malloc and at exit.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

/* 64 unpredictable bits, without ever blocking: getrandom may block before
 * the kernel's pool is ready (early boot), so ask with GRND_NONBLOCK and
 * fall back to a mix of the clock, the pid and an address (ASLR). */
uint64_t unpredictable_bits(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    struct timespec ts = {0, 0};
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    static _Atomic uint64_t counter;
    r = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec ^
        ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&r ^
        atomic_fetch_add(&counter, 0x632be59bd9b4e019ULL);
    r ^= r >> 31;
    r *= 0xbf58476d1ce4e5b9ULL;
    return r ^ (r >> 29);
}

/* open(2), again after a signal interrupted it. */
static int open_retrying(const char *path, int flags, mode_t mode)
{
    int fd;
    do
        fd = open(path, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

#define CREATE_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | \
                      O_NOCTTY)

int file_create(const char *path, mode_t mode)
{
    return open_retrying(path, CREATE_FLAGS, mode);
}

int file_create_temp(const char *final_path, char *tmp, size_t tmp_size,
                        mode_t mode)
{
    /* A few tries: a collision on 64 random bits means someone planted
     * the name, and trying forever would let them keep us busy. */
    for (int attempt = 0; attempt < 4; attempt++) {
        int n = snprintf(tmp, tmp_size, "%s.tmp.%016llx", final_path,
                         (unsigned long long)unpredictable_bits());
        if (n < 0 || (size_t)n >= tmp_size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = file_create(tmp, mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* Is the type of st one the caller accepts? */
static bool type_accepted(const struct stat *st, unsigned accept)
{
    if (S_ISREG(st->st_mode))
        return true;
    if (S_ISCHR(st->st_mode))
        return (accept & TM_FILE_ALLOW_CHARDEV) != 0;
    if (S_ISFIFO(st->st_mode))
        return (accept & TM_FILE_ALLOW_FIFO) != 0;
    return false;
}

/* fd is open: keep it if its type is accepted, else close it. */
static int finish_open(int fd, unsigned accept)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        (void)close(fd);
        errno = e;
        return -1;
    }
    if (!type_accepted(&st, accept)) {
        (void)close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    /* A regular file ignores O_NONBLOCK; a FIFO or device keeps it, so
     * that a reader or writer that went away cannot hang us later. */
    return fd;
}

int file_open_read(const char *path, unsigned accept)
{
    /* Look first, so that a device we would refuse is never opened (an
     * open can have effects: a tape rewinds, a modem line hangs up); the
     * fstat after the open is the check that counts. */
    struct stat st;
    if (stat(path, &st) == 0 && !type_accepted(&st, accept)) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    int fd = open_retrying(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                           0);
    if (fd < 0)
        return -1;
    return finish_open(fd, accept);
}

int file_open_append(const char *path, mode_t mode, unsigned accept)
{
    /* Create it if it is not there (exclusively: a link planted between
     * the two opens makes the second one fail, not follow). */
    int fd = open_retrying(path, CREATE_FLAGS | O_APPEND, mode);
    if (fd >= 0 || errno != EEXIST)
        return fd;
    fd = open_retrying(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK |
                                 O_CLOEXEC | O_NOCTTY,
                       0);
    if (fd < 0)
        return -1;
    return finish_open(fd, accept);
}

const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "of an unknown type";
    }
}

const char *file_type_error(int err)
{
    switch (err) {
    case EISDIR: return "is a directory";
    case EINVAL: return "is not a regular file";
    case ELOOP: return "is a symbolic link, which tiermem does not follow";
    case EEXIST: return "already exists";
    case ENXIO: return "is a FIFO with no reader or a device that is not there";
    default: return NULL;
    }
}
