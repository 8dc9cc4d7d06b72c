/*
 * test_file_open.c -- files tiermem creates and reads (issue 12, defects 1
 * and 4).
 *
 * Creation must never go through a planted link or reuse a planted file,
 * and temporary names must not be predictable; a read must refuse what is
 * not a regular file (the tools: also a pipe) without blocking on a FIFO
 * that has no writer.  Every check looks at what is on disk afterwards.
 * alarm() guards the opens that used to block: a regression dies of
 * SIGALRM instead of hanging.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sites.h"
#include "../tm_test.h"

#define TARGET_TEXT "root's secret, mode 0600\n"

static char dir[256];

static void path_in(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

static bool write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    return close(fd) == 0 && ok;
}

/* Does path hold exactly text? */
static bool holds(const char *path, const char *text)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n == (ssize_t)strlen(text) && memcmp(buf, text, (size_t)n) == 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_create_refuses_planted_names(void)
{
    char target[300], link[300], file[300], dangling[300], gone[300];
    path_in(target, sizeof target, "target");
    path_in(link, sizeof link, "link");
    path_in(file, sizeof file, "file");
    path_in(dangling, sizeof dangling, "dangling");
    path_in(gone, sizeof gone, "gone");
    REQUIRE_VOID(write_text(target, TARGET_TEXT, 0600));
    REQUIRE_VOID(symlink(target, link) == 0);
    REQUIRE_VOID(write_text(file, "existing\n", 0644));
    REQUIRE_VOID(symlink(gone, dangling) == 0);

    errno = 0;
    int fd = file_create(link, 0644);
    CHECK_MSG(fd < 0 && (errno == EEXIST || errno == ELOOP),
              "a link to a file: fd %d errno %d", fd, errno);
    CHECK(holds(target, TARGET_TEXT));

    errno = 0;
    fd = file_create(file, 0644);
    CHECK_MSG(fd < 0 && errno == EEXIST, "an existing file: fd %d", fd);
    CHECK(holds(file, "existing\n"));

    errno = 0;
    fd = file_create(dangling, 0644);
    CHECK_MSG(fd < 0 && (errno == EEXIST || errno == ELOOP),
              "a dangling link: fd %d errno %d", fd, errno);
    CHECK(!exists(gone)); /* the link's target was not created */
}

static void test_create_mode_and_cloexec(void)
{
    char path[300];
    path_in(path, sizeof path, "fresh");
    mode_t old = umask(027);
    int fd = file_create(path, 0666);
    umask(old);
    REQUIRE_VOID(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
          (st.st_mode & 07777) == 0640); /* 0666 under umask 027 */
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    close(fd);
}

/* "<final>.tmp.<16 hex digits>"? */
static bool temp_name_ok(const char *final, const char *tmp)
{
    size_t n = strlen(final);
    if (strncmp(tmp, final, n) != 0 || strncmp(tmp + n, ".tmp.", 5) != 0)
        return false;
    const char *hex = tmp + n + 5;
    return strlen(hex) == 16 && strspn(hex, "0123456789abcdef") == 16;
}

static void test_temp_names_unpredictable(void)
{
    char final[300], t1[340], t2[340];
    path_in(final, sizeof final, "table.txt");
    int a = file_create_temp(final, t1, sizeof t1, 0644);
    int b = file_create_temp(final, t2, sizeof t2, 0644);
    REQUIRE_VOID(a >= 0 && b >= 0);
    CHECK_MSG(strcmp(t1, t2) != 0, "two temporaries named %s", t1);
    CHECK_MSG(temp_name_ok(final, t1) && temp_name_ok(final, t2), "%s %s",
              t1, t2);
    CHECK(exists(t1) && exists(t2) && !exists(final));
    close(a);
    close(b);
    char small[8];
    errno = 0;
    CHECK(file_create_temp(final, small, sizeof small, 0644) < 0 &&
          errno == ENAMETOOLONG);
}

static void test_open_read_types(void)
{
    char fifo[300], file[300];
    path_in(fifo, sizeof fifo, "fifo");
    path_in(file, sizeof file, "regular");
    REQUIRE_VOID(mkfifo(fifo, 0600) == 0);
    REQUIRE_VOID(write_text(file, "hello\n", 0644));

    alarm(10); /* an open that blocks on the FIFO dies here, not hangs */
    errno = 0;
    int fd = file_open_read(fifo, 0);
    CHECK_MSG(fd < 0 && errno == EINVAL, "a FIFO: fd %d errno %d", fd, errno);
    fd = file_open_read(fifo, TM_FILE_ALLOW_FIFO);
    CHECK(fd >= 0); /* a tool may read a pipe; it did not block */
    if (fd >= 0)
        close(fd);
    size_t len = 0, cap = 0;
    errno = 0;
    char *buf = read_file(fifo, "test file", TM_LOG_DEBUG, 1 << 20, &len,
                             &cap);
    CHECK(buf == NULL && errno == EINVAL);
    /* No writer: read as empty at once. */
    buf = read_file_accepting(fifo, "test file", TM_LOG_DEBUG,
                                 TM_FILE_ALLOW_FIFO, 1 << 20, &len, &cap);
    CHECK(buf != NULL && len == 0);
    if (buf != NULL)
        meta_free(buf, cap);
    alarm(0);

    errno = 0;
    fd = file_open_read(dir, 0);
    CHECK_MSG(fd < 0 && errno == EISDIR, "a directory: fd %d", fd);
    errno = 0;
    CHECK(file_open_read("/dev/null", 0) < 0 && errno == EINVAL);
    fd = file_open_read(file, 0);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    buf = read_file(file, "test file", TM_LOG_DEBUG, 1 << 20, &len, &cap);
    CHECK(buf != NULL && len == 6 && strcmp(buf, "hello\n") == 0);
    if (buf != NULL)
        meta_free(buf, cap);
}

/* Is descriptor fd of process pid open read-only (/proc/pid/fdinfo)? */
static bool read_only(pid_t pid, const char *fd)
{
    char info[400], line[128];
    snprintf(info, sizeof info, "/proc/%ld/fdinfo/%s", (long)pid, fd);
    FILE *f = fopen(info, "r");
    unsigned long flags = O_ACCMODE;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "flags: %lo", &flags) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return (flags & O_ACCMODE) == O_RDONLY;
}

/* Has process pid opened path for reading (a read-only descriptor in
 * /proc/pid/fd names it; the writer inherited over fork is read-write)? */
static bool has_open(pid_t pid, const char *path)
{
    char fds[64], link[600], name[600];
    snprintf(fds, sizeof fds, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(fds);
    if (d == NULL)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        snprintf(link, sizeof link, "%s/%s", fds, e->d_name);
        ssize_t n = readlink(link, name, sizeof name - 1);
        found = n > 0 && (name[n] = '\0', strcmp(name, path) == 0) &&
                read_only(pid, e->d_name);
    }
    closedir(d);
    return found;
}

/* A pipe whose writer is there but slow: the reader waits for the data and
 * the writer's close (poll), neither failing with EAGAIN nor stopping at
 * the first empty read.  The child reads; the parent holds the writer end
 * until it sees the child's descriptor on the FIFO, then closes it. */
static void test_read_pipe_with_slow_writer(void)
{
    char fifo[300];
    path_in(fifo, sizeof fifo, "slow-fifo");
    REQUIRE_VOID(mkfifo(fifo, 0600) == 0);
    int holder = open(fifo, O_RDWR | O_CLOEXEC); /* a writer, no reader wait */
    REQUIRE_VOID(holder >= 0);
    REQUIRE_VOID(write(holder, "abc", 3) == 3);
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        close(holder);
        alarm(20);
        size_t len = 0, cap = 0;
        char *buf = read_file_accepting(fifo, "test pipe", TM_LOG_DEBUG,
                                           TM_FILE_ALLOW_FIFO, 1 << 20, &len,
                                           &cap);
        _exit(buf != NULL && len == 6 && strcmp(buf, "abcdef") == 0 ? 0 : 3);
    }
    for (int i = 0; i < 20000 && !has_open(pid, fifo); i++)
        usleep(1000);
    CHECK(write(holder, "def", 3) == 3);
    close(holder);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the reader: status %#x", status);
}

/* The site table used to go to "<path>.tmp<pid>" opened with O_TRUNC and
 * no O_EXCL: a link planted there overwrote its target. */
static void test_site_report_ignores_planted_links(void)
{
    char target[300], final[300], old_tmp[340];
    path_in(target, sizeof target, "root-file");
    path_in(final, sizeof final, "tiermem-sites.test.txt");
    snprintf(old_tmp, sizeof old_tmp, "%s.tmp%ld", final, (long)getpid());
    REQUIRE_VOID(write_text(target, TARGET_TEXT, 0600));
    REQUIRE_VOID(symlink(target, old_tmp) == 0);
    REQUIRE_VOID(symlink(target, final) == 0);
    int rc = site_report_write(final);
    CHECK(holds(target, TARGET_TEXT));
    struct stat st;
    CHECK_MSG(rc == 0 && lstat(final, &st) == 0 && S_ISREG(st.st_mode),
              "rc %d: the table replaced the link at the final name", rc);
    CHECK(lstat(old_tmp, &st) == 0 && S_ISLNK(st.st_mode)); /* not touched */
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    char path[600];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        (void)unlink(path);
    }
    closedir(d);
    (void)rmdir(dir);
}

int main(void)
{
    log_configure(TM_LOG_ERROR, 2);
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/test_file_open.XXXXXX", base);
    REQUIRE(mkdtemp(dir) != NULL);
    test_create_refuses_planted_names();
    test_create_mode_and_cloexec();
    test_temp_names_unpredictable();
    test_open_read_types();
    test_read_pipe_with_slow_writer();
    test_site_report_ignores_planted_links();
    remove_dir();
    return tm_test_done("test_file_open");
}
