/*
 * read_file.c -- a whole file into metadata memory.
 *
 * Guidance files, replay traces and profiles are read whole and parsed in
 * place.  Two of the three readers run where malloc is off limits (start-
 * up inside the preload library's own malloc; the profiling thread), so
 * the buffer is metadata memory for all of them.  A regular file's size is
 * known (+1 to see its end in one read and to leave room for the NUL); a
 * pipe, e.g. <(generate), grows the buffer as it goes.
 *
 * The library reads regular files only: a FIFO named by a setting must not
 * hang a program's start-up.  The tools may also read pipes; those are
 * opened with O_NONBLOCK too, so a FIFO without a writer reads as empty at
 * once, and one whose writer is slow is waited for with poll().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"

/* Double the buffer (at most to limit + 1 bytes); NULL if it cannot. */
static char *grow(char *buf, size_t len, size_t *cap, size_t limit)
{
    size_t grown = *cap * 2 > limit + 1 ? limit + 1 : *cap * 2;
    char *more = meta_alloc(grown);
    if (more != NULL)
        memcpy(more, buf, len);
    meta_free(buf, *cap);
    *cap = grown;
    return more;
}

/* A pipe opened with O_NONBLOCK said EAGAIN: its writer is there but has
 * not written.  Wait for data or for the writer to go (POLLHUP). */
static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    (void)poll(&p, 1, -1); /* EINTR or an error: the next read says why */
}

/* Read fd to its end; *len bytes in *cap.  Logs and returns NULL on error. */
static char *read_all(int fd, const char *path, const char *what, int level,
                      size_t max_bytes, size_t *len, size_t *cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        log_at(level, "%s %s: fstat failed: errno %d", what, path, errno);
        return NULL;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes) {
        log_at(level, "%s %s is larger than %zu MiB; ignored", what, path,
               max_bytes >> 20);
        errno = EFBIG;
        return NULL;
    }
    *cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    *len = 0;
    char *buf = meta_alloc(*cap);
    while (buf != NULL) {
        if (*len + 1 >= *cap) { /* keep a byte for the NUL */
            if (*cap > max_bytes) {
                log_at(level, "%s %s is larger than %zu MiB; ignored", what,
                       path, max_bytes >> 20);
                meta_free(buf, *cap);
                errno = EFBIG;
                return NULL;
            }
            buf = grow(buf, *len, cap, max_bytes);
            continue;
        }
        ssize_t r = read(fd, buf + *len, *cap - 1 - *len);
        if (r == 0) {
            buf[*len] = '\0';
            return buf;
        }
        if (r > 0) {
            *len += (size_t)r;
        } else if (errno == EAGAIN) {
            wait_readable(fd); /* a pipe whose writer has not written yet */
        } else if (errno != EINTR) {
            int e = errno;
            log_at(level, "%s %s: read failed: errno %d", what, path, e);
            meta_free(buf, *cap);
            errno = e;
            return NULL;
        }
    }
    log_error("%s %s: no memory to read it (errno %d)", what, path, ENOMEM);
    errno = ENOMEM;
    return NULL;
}

/* Open path for reading, or log why not (one warning that names what and
 * path, and says what was wrong) and return -1. */
static int open_for_read(const char *path, const char *what, int level,
                         unsigned accept)
{
    int fd = file_open_read(path, accept);
    if (fd >= 0)
        return fd;
    int e = errno;
    if (e == EINVAL || e == EISDIR) {
        struct stat st; /* for the message only: what it is */
        const char *kind = stat(path, &st) == 0 ? file_kind(st.st_mode)
                                                : "not a regular file";
        log_at(level, "%s %s is %s, not a regular file; ignored", what, path,
               kind);
    } else {
        log_at(level, "%s %s cannot be opened: errno %d", what, path, e);
    }
    errno = e;
    return -1;
}

char *read_file_accepting(const char *path, const char *what, int level,
                             unsigned accept, size_t max_bytes, size_t *len,
                             size_t *cap)
{
    int fd = open_for_read(path, what, level, accept);
    if (fd < 0)
        return NULL;
    char *buf = read_all(fd, path, what, level, max_bytes, len, cap);
    int e = errno;
    if (close(fd) != 0)
        log_warn("%s %s: close failed: errno %d", what, path, errno);
    errno = e;
    return buf;
}

char *read_file(const char *path, const char *what, int level,
                   size_t max_bytes, size_t *len, size_t *cap)
{
    return read_file_accepting(path, what, level, 0, max_bytes, len, cap);
}

/* A small kernel file (/proc/sys, sysfs) into a caller's buffer: there is
 * no size to allocate for (those files report 0 or 4096), and the readers
 * run where malloc is off limits. */
ssize_t read_small_file(const char *path, char *buf, size_t size)
{
    if (size == 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = file_open_read(path, 0);
    if (fd < 0) {
        if (errno == EISDIR)
            errno = EINVAL; /* one errno for "not a regular file" */
        return -1;
    }
    size_t len = 0;
    int err = 0;
    while (len < size) {
        ssize_t n = read(fd, buf + len, size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = errno;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (err == 0 && len >= size)
        err = EINVAL; /* longer than anything we read there */
    if (err == 0 && memchr(buf, '\0', len) != NULL)
        err = EINVAL;
    (void)close(fd); /* read-only: nothing a failed close could lose */
    if (err != 0) {
        errno = err;
        return -1;
    }
    buf[len] = '\0';
    return (ssize_t)len;
}
