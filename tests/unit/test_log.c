/*
 * test_log.c -- the one logging path (base/log.c).
 *
 * What a hostile environment or a misbehaving program must not get out of
 * tiermem's log: a flood of lines (the repeat limit), control bytes or
 * unbounded values on the terminal (log_shown and the line filter), and
 * writes into a file the program opened under a descriptor number tiermem
 * used to hold (the owned log file).  The log goes to a temporary file the
 * test reads back; the repeat limit reads a clock the test sets, so nothing
 * here depends on timing.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "sites.h"
#include "../tm_test.h"

#define SECOND 1000000000ull

static int log_fd = -1;
static _Atomic uint64_t test_now = 5 * SECOND;

#if TM_TEST_TSAN
/* test_fork_child forks with the runtime's fork handlers installed, and
 * they (with jemalloc's) take more mutexes at once than TSan's deadlock
 * detector can track (it aborts inside fork, as in test_fork.c).  Races
 * are still reported. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "detect_deadlocks=0"; }
#endif
static char log_path[] = "/tmp/tm_test_log.XXXXXX";

/* Start a fresh capture: an empty file, the repeat counts forgotten. */
static void capture(int level)
{
    CHECK(ftruncate(log_fd, 0) == 0);
    CHECK(lseek(log_fd, 0, SEEK_SET) == 0);
    log_configure(level, log_fd);
}

/* Everything logged since capture(), NUL-terminated. */
static const char *captured(size_t *len_out)
{
    static char buf[1 << 20];
    ssize_t len = pread(log_fd, buf, sizeof buf - 1, 0);
    CHECK(len >= 0);
    buf[len < 0 ? 0 : len] = '\0';
    if (len_out != NULL)
        *len_out = len < 0 ? 0 : (size_t)len;
    return buf;
}

/* Lines of the capture that contain needle ("" counts every line). */
static unsigned lines_with(const char *needle)
{
    const char *text = captured(NULL);
    unsigned n = 0;
    for (const char *line = text, *nl; (nl = strchr(line, '\n')) != NULL;
         line = nl + 1) {
        const char *hit = strstr(line, needle);
        n += hit != NULL && hit < nl;
    }
    return n;
}

/* No byte below 0x20 but the newlines that end lines, and no 0x7f. */
static bool printable(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\n') || c == 0x7f)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Values                                                               */
/* ------------------------------------------------------------------ */

static void test_shown(void)
{
    shown_t s;
    CHECK(strcmp(log_shown(&s, "per-site"), "per-site") == 0);
    CHECK(strcmp(log_shown(&s, ""), "") == 0);
    CHECK(strcmp(log_shown(&s, NULL), "") == 0);
    CHECK(strcmp(log_shown(&s, "a\ab\x1b[2Jc\x7f\xff"), "a?b?[2Jc??") == 0);
    /* exactly 64 bytes: shown whole; 65: cut, with the marker */
    char v[100001];
    memset(v, 'x', 64);
    v[64] = '\0';
    CHECK(strcmp(log_shown(&s, v), v) == 0);
    memset(v, 'y', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    const char *t = log_shown(&s, v);
    CHECK(strlen(t) == 64 + 3 && strcmp(t + 64, "...") == 0);
    CHECK(strspn(t, "y") == 64);
    CHECK(strcmp(log_shown_n(&s, "ab\0cd", 5), "ab?cd") == 0);
    CHECK(strcmp(log_shown_n(&s, "abc", 2), "ab") == 0);
}

/* A hostile value in a message: bounded, printable, and the text after it
 * (here "; TAIL") still arrives. */
static void test_hostile_values(void)
{
    static char v[100001];
    memset(v, 'z', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    memcpy(v, "\x1b[2J\a\x1b]0;owned\a", 14);
    shown_t s;
    capture(TM_LOG_WARN);
    log_warn("TIERMEM_X=%s; TAIL", log_shown(&s, v));
    size_t len;
    const char *text = captured(&len);
    CHECK_MSG(printable(text, len), "control byte in: %s", text);
    CHECK(lines_with("; TAIL") == 1);
    CHECK(lines_with("TIERMEM_X=?[2J??]0;ownedzz") == 1);
    CHECK(len < 200);
    /* a caller that forgot log_shown: control bytes still never pass,
     * and a message too long for a line ends in the marker */
    capture(TM_LOG_WARN);
    log_warn("raw %s end", v);
    text = captured(&len);
    CHECK_MSG(printable(text, len), "control byte in: %s", text);
    CHECK(len <= 1024 && lines_with("...") == 1 && text[len - 1] == '\n');
    CHECK(lines_with("raw ?[2J??]0;ownedzzz") == 1);
}

/* ------------------------------------------------------------------ */
/* Repeats                                                              */
/* ------------------------------------------------------------------ */

static void warn_alloc_failed(size_t size)
{
    log_warn("test: an allocation of %zu bytes failed", size);
}

static void warn_other(int i)
{
    log_warn("test: another call site (%d)", i);
}

static void warn_varied(int i)
{
    log_warn("test: varied message %d", i);
}

static void test_repeats(void)
{
    capture(TM_LOG_WARN);
    for (int i = 0; i < 10000; i++)
        warn_alloc_failed((size_t)1 << 46);
    CHECK_MSG(lines_with("") == 1, "%u lines:\n%s", lines_with(""),
              captured(NULL));
    /* another call site is not held back by the first one's flood */
    warn_other(1);
    CHECK(lines_with("another call site (1)") == 1);
    /* a second later the same message goes out again, with the count */
    test_now += SECOND;
    warn_alloc_failed((size_t)1 << 46);
    CHECK_MSG(lines_with("(9999 more like this not shown)") == 1, "%s",
              captured(NULL));
    CHECK(lines_with("allocation of 70368744177664 bytes") == 2);
    /* different messages from one site: a burst, then held back */
    for (int i = 0; i < 1000; i++)
        warn_varied(i);
    CHECK(lines_with("varied message") == TM_LOG_BURST);
    CHECK(lines_with("varied message 0") == 1);
    /* the summary: one line for the site with unreported messages */
    log_flush_repeats();
    CHECK_MSG(lines_with("980 more messages like \"test: varied message") ==
                  1, "%s", captured(NULL));
    CHECK(lines_with("more messages like") == 1);
    log_flush_repeats(); /* nothing more to report */
    CHECK(lines_with("more messages like") == 1);
    /* debug lines are not limited */
    capture(TM_LOG_DEBUG);
    for (int i = 0; i < 50; i++)
        log_debug("test: debug line");
    CHECK(lines_with("debug line") == 50);
    /* errors are limited like warnings */
    for (int i = 0; i < 50; i++)
        log_error("test: error line");
    CHECK(lines_with("error line") == 1);
    /* and nothing is held back below the level in force */
    capture(TM_LOG_ERROR);
    for (int i = 0; i < 50; i++)
        warn_alloc_failed(1);
    log_flush_repeats();
    CHECK(lines_with("") == 0);
}

/* A fork child does not report the parent's held-back messages again
 * (sites/fork.c's child handler calls log_fork_child). */
static void test_fork_child(void)
{
    capture(TM_LOG_WARN);
    for (int i = 0; i < 30; i++)
        warn_varied(i);
    pid_t pid = fork();
    if (pid == 0) {
        log_flush_repeats(); /* as its exit would */
        _exit(0);
    }
    REQUIRE_VOID(pid > 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    CHECK_MSG(lines_with("more messages like") == 0, "%s", captured(NULL));
    log_flush_repeats();
    CHECK(lines_with("10 more messages like") == 1);
}

static void *flood_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++)
        warn_alloc_failed(4096);
    return NULL;
}

/* Threads flooding one site: still one line (the clock does not move). */
static void test_repeats_threads(void)
{
    capture(TM_LOG_WARN);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, flood_thread, NULL) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    CHECK_MSG(lines_with("") == 1, "%u lines", lines_with(""));
    log_flush_repeats();
    CHECK(lines_with("39999 more messages like") == 1);
}

/* ------------------------------------------------------------------ */
/* The log file's descriptor                                            */
/* ------------------------------------------------------------------ */

static int temp_file(char *path)
{
    int fd = mkstemp(path);
    if (fd >= 0)
        (void)unlink(path);
    return fd;
}

/* The program closes our log file and opens its own file, which lands on
 * the same number: tiermem must not write into it. */
static void test_reused_descriptor(void)
{
    char a_path[] = "/tmp/tm_test_log_a.XXXXXX";
    char b_path[] = "/tmp/tm_test_log_b.XXXXXX";
    int a = temp_file(a_path);
    REQUIRE_VOID(a >= 0);
    int keep = dup(a); /* the test's own view of file A */
    REQUIRE_VOID(keep >= 0);
    REQUIRE_VOID(log_configure_file(TM_LOG_WARN, a) == 0);
    int fd = log_current_fd();
    CHECK(fd > 2 && fd != keep);
    CHECK(fcntl(a, F_GETFD) < 0 || a == fd); /* the original is closed */
    log_warn("test: into file A");
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    /* closefrom(), then an open that reuses the number */
    CHECK(close(fd) == 0);
    int b = temp_file(b_path);
    REQUIRE_VOID(b >= 0);
    if (b != fd) {
        CHECK(dup2(b, fd) == fd);
        CHECK(close(b) == 0);
    }
    log_warn("test: must not reach file B");
    log_error("test: nor this one");
    log_flush_repeats();
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 0);
    CHECK(log_current_fd() == -1);
    char text[256] = "";
    ssize_t n = pread(keep, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    CHECK(strstr(text, "into file A") != NULL);
    CHECK(strstr(text, "must not") == NULL);
    /* reconfiguring never closes the descriptor that is not ours */
    log_configure(TM_LOG_WARN, log_fd);
    CHECK(fcntl(fd, F_GETFD) >= 0);
    CHECK(close(fd) == 0);
    CHECK(close(keep) == 0);
}

/* Reconfiguring closes a log file that is still ours. */
static void test_release(void)
{
    char path[] = "/tmp/tm_test_log_c.XXXXXX";
    int c = temp_file(path);
    REQUIRE_VOID(c >= 0);
    REQUIRE_VOID(log_configure_file(TM_LOG_WARN, c) == 0);
    int fd = log_current_fd();
    log_configure(TM_LOG_WARN, log_fd);
    CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
}

int main(void)
{
    runtime_init(); /* installs the fork handlers; captures replace its log */
    log_fd = mkstemp(log_path);
    REQUIRE(log_fd >= 0);
    CHECK(unlink(log_path) == 0);
    log_set_test_clock(&test_now);

    test_shown();
    test_hostile_values();
    test_repeats();
    test_repeats_threads();
    test_fork_child();
    test_reused_descriptor();
    test_release();

    log_set_test_clock(NULL);
    log_configure(TM_LOG_WARN, -1);
    CHECK(close(log_fd) == 0);
    return tm_test_done(__FILE__);
}
