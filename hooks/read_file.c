/*
 * read_file.c -- a whole file into metadata memory.
 *
 * Guidance files, replay traces and profiles are read whole and parsed in
 * place.  Two of the three readers run where malloc is off limits (start-
 * up inside the preload library's own malloc; the profiling thread), so
 * the buffer is metadata memory for all of them.  A regular file's size is
 * known (+1 to see its end in one read and to leave room for the NUL); a
 * pipe, e.g. <(generate), grows the buffer as it goes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hooks.h"

/* Double the buffer (at most to limit + 1 bytes); NULL if it cannot. */
static char *grow(char *buf, size_t len, size_t *cap, size_t limit)
{
    size_t grown = *cap * 2 > limit + 1 ? limit + 1 : *cap * 2;
    char *more = tm_meta_alloc(grown);
    if (more != NULL)
        memcpy(more, buf, len);
    tm_meta_free(buf, *cap);
    *cap = grown;
    return more;
}

/* Read fd to its end; *len bytes in *cap.  Logs and returns NULL on error. */
static char *read_all(int fd, const char *path, const char *what, int level,
                      size_t max_bytes, size_t *len, size_t *cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        tm_log(level, "%s %s: fstat failed: errno %d", what, path, errno);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        tm_log(level, "%s %s is a directory: errno %d", what, path, EISDIR);
        errno = EISDIR;
        return NULL;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes) {
        tm_log(level, "%s %s is larger than %zu MiB; ignored", what, path,
               max_bytes >> 20);
        errno = EFBIG;
        return NULL;
    }
    *cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    *len = 0;
    char *buf = tm_meta_alloc(*cap);
    while (buf != NULL) {
        if (*len + 1 >= *cap) { /* keep a byte for the NUL */
            if (*cap > max_bytes) {
                tm_log(level, "%s %s is larger than %zu MiB; ignored", what,
                       path, max_bytes >> 20);
                tm_meta_free(buf, *cap);
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
        } else if (errno != EINTR) {
            int e = errno;
            tm_log(level, "%s %s: read failed: errno %d", what, path, e);
            tm_meta_free(buf, *cap);
            errno = e;
            return NULL;
        }
    }
    tm_log_error("%s %s: no memory to read it (errno %d)", what, path, ENOMEM);
    errno = ENOMEM;
    return NULL;
}

char *tm_read_file(const char *path, const char *what, int level,
                   size_t max_bytes, size_t *len, size_t *cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        tm_log(level, "%s %s cannot be opened: errno %d", what, path, e);
        errno = e;
        return NULL;
    }
    char *buf = read_all(fd, path, what, level, max_bytes, len, cap);
    int e = errno;
    if (close(fd) != 0)
        tm_log_warn("%s %s: close failed: errno %d", what, path, errno);
    errno = e;
    return buf;
}
