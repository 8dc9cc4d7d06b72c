/*
 * test_owned_fd.c -- descriptors tiermem keeps in someone else's process
 * (base/owned_fd.c): moved to high numbers, recognised after the program
 * closed them or opened something else at their number, and never closed
 * once they are not ours.  Also the free-descriptor count the profiler's
 * RLIMIT_NOFILE rule uses.
 *
 * Every check looks at the descriptor table itself: fcntl(F_GETFD) for
 * "is this number open", fstat for "what is it".
 */
#include "config.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base.h"
#include "../tm_test.h"

static char dir[] = "/tmp/tm_test_owned_fd.XXXXXX";

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* A new file in dir, open for writing. */
static int file_new(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

static ino_t ino_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* What fd_own aims for: the top quarter below min(limit, 1024). */
static int high_base(void)
{
    struct rlimit rl;
    rlim_t lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < lim)
        lim = rl.rlim_cur;
    return (int)(lim - lim / 4);
}

/* Each kind: owned at a high number, the low one closed, ours. */
static void test_own_kinds(void)
{
    int pipefd[2];
    REQUIRE_VOID(pipe(pipefd) == 0);
    int raw[4] = {pipefd[0], eventfd(0, EFD_CLOEXEC),
                  timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC),
                  file_new("kinds")};
    const char *names[4] = {"pipe", "eventfd", "timerfd", "file"};
    owned_fd_t o[4];
    for (int i = 0; i < 4; i++) {
        REQUIRE_VOID(raw[i] >= 0);
        int fd = fd_own(raw[i], &o[i]);
        CHECK_MSG(fd >= high_base() && fd == o[i].fd, "%s: owned as %d",
                  names[i], fd);
        CHECK_MSG(!is_open(raw[i]), "%s: low number %d still open",
                  names[i], raw[i]);
        CHECK_MSG(fcntl(fd, F_GETFD) == FD_CLOEXEC, "%s: not close-on-exec",
                  names[i]);
        CHECK_MSG(fd_is_ours(&o[i]), "%s: not ours right away",
                  names[i]);
    }
    CHECK(strcmp(o[1].anon, "[eventfd]") == 0);
    CHECK(strcmp(o[2].anon, "[timerfd]") == 0);
    CHECK(o[3].anon[0] == '\0');
    /* released while ours: closed */
    for (int i = 0; i < 4; i++) {
        int fd = o[i].fd;
        CHECK(fd_release(&o[i]) && !is_open(fd) && o[i].fd == -1);
    }
    close(pipefd[1]);
    owned_fd_t bad;
    errno = 0;
    CHECK(fd_own(-1, &bad) == -1 && errno == EBADF && bad.fd == -1);
    errno = 0;
    CHECK(fd_own(raw[3], &bad) == -1 && bad.fd == -1); /* closed */
}

/* The program closed ours, then opened its own at the same number (dup2):
 * not ours, and releasing it leaves the program's descriptor alone. */
static void replaced_by(const char *what, int (*make)(void))
{
    owned_fd_t o;
    int fd = fd_own(eventfd(0, EFD_CLOEXEC), &o);
    REQUIRE_VOID(fd >= 0);
    int theirs = make();
    REQUIRE_VOID(theirs >= 0);
    REQUIRE_VOID(dup2(theirs, fd) == fd); /* closes ours, reuses the number */
    CHECK_MSG(!fd_is_ours(&o), "an eventfd replaced by %s looks ours",
              what);
    CHECK(!fd_release(&o));
    CHECK_MSG(is_open(fd) && ino_of(fd) == ino_of(theirs),
              "release closed the program's %s at %d", what, fd);
    CHECK(o.fd == -1);
    close(fd);
    close(theirs);
}

static int make_file(void) { return file_new("theirs"); }
static int make_timerfd(void) { return timerfd_create(CLOCK_MONOTONIC, 0); }
static int make_pipe(void)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    close(p[1]);
    return p[0];
}

static void test_replaced(void)
{
    replaced_by("a regular file", make_file);
    replaced_by("a timerfd", make_timerfd);
    replaced_by("a pipe", make_pipe);

    /* a file replaced by another file */
    owned_fd_t o;
    int fd = fd_own(file_new("ours"), &o);
    REQUIRE_VOID(fd >= 0);
    int theirs = file_new("theirs2");
    REQUIRE_VOID(theirs >= 0 && dup2(theirs, fd) == fd);
    CHECK(!fd_is_ours(&o));
    CHECK(!fd_release(&o) && is_open(fd));
    close(fd);
    close(theirs);
}

/* Closed and left closed (closefrom): not ours, nothing to close. */
static void test_closed(void)
{
    owned_fd_t o;
    int fd = fd_own(eventfd(0, EFD_CLOEXEC), &o);
    REQUIRE_VOID(fd >= 0);
    REQUIRE_VOID(close(fd) == 0);
    CHECK(!fd_is_ours(&o));
    /* the program opens something at the number after our check */
    int theirs = file_new("later");
    REQUIRE_VOID(theirs >= 0 && dup2(theirs, fd) == fd);
    CHECK(!fd_release(&o) && is_open(fd));
    close(fd);
    close(theirs);
    /* forget: not closed even though ours */
    fd = fd_own(eventfd(0, EFD_CLOEXEC), &o);
    REQUIRE_VOID(fd >= 0);
    fd_forget(&o);
    CHECK(o.fd == -1 && is_open(fd) && !fd_is_ours(&o));
    close(fd);
}

/* A low limit: the high number is below it, and the free count follows
 * the descriptors the program opens. */
static void test_low_limit(void)
{
    struct rlimit old;
    REQUIRE_VOID(getrlimit(RLIMIT_NOFILE, &old) == 0);
    long before = fd_free_count();
    CHECK(before > 0);
    struct rlimit low = {.rlim_cur = 100, .rlim_max = old.rlim_max};
    REQUIRE_VOID(setrlimit(RLIMIT_NOFILE, &low) == 0);
    long free0 = fd_free_count();
    int extra = dup(0);
    long free1 = fd_free_count();
    CHECK_MSG(free0 > 0 && free0 < 100 && free1 == free0 - 1,
              "free %ld, then %ld after one more open", free0, free1);
    owned_fd_t o;
    int fd = fd_own(eventfd(0, EFD_CLOEXEC), &o);
    CHECK_MSG(fd >= 75 && fd < 100, "owned at %d under a limit of 100", fd);
    CHECK(fd_free_count() == free1 - 1);
    fd_release(&o);
    close(extra);
    REQUIRE_VOID(setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK(fd_free_count() == before);
}

int main(void)
{
    REQUIRE(mkdtemp(dir) != NULL);
    test_own_kinds();
    test_replaced();
    test_closed();
    test_low_limit();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return tm_test_done(__FILE__);
}
