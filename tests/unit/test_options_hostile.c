/*
 * test_options_hostile.c -- settings from a hostile environment.
 *
 * Values with escape sequences and of 100 KB must reach the log printable
 * and bounded, wherever they are read (the runtime's settings, the tier
 * order, the profiler's event name, TIERMEM_LOG and TIERMEM_LOG_FILE at
 * start-up); a log file that is a FIFO must not block start-up; and a
 * set-user-ID program must ignore every setting that names a path
 * (secure_process_override stands in for AT_SECURE).
 */
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "settings.h"
#include "profiler.h"
#include "sites.h"
#include "../tm_test.h"
#include "../observe.h"
#include "../options_util.h"

/* The log holds no control byte but the newlines that end its lines. */
static bool log_printable(void)
{
    for (const char *p = log_text(); *p != '\0'; p++)
        if (((unsigned char)*p < 0x20 && *p != '\n') || *p == 0x7f)
            return false;
    return true;
}

#define HOSTILE "\x1b[2J\a\x1b]0;x\a"
#define HOSTILE_SHOWN "?[2J??]0;x?"

/* Values with ESC and BEL are shown with '?', wherever they are read. */
static void test_escaped_values(void)
{
    options_t o;
    log_reset(TM_LOG_WARN);
    parse(&o, "TIERMEM_MODE=" HOSTILE, "TIERMEM_GUIDANCE=/t/%" HOSTILE,
          "TIERMEM_" HOSTILE "=1", NULL);
    CHECK_MSG(log_count("warning", "TIERMEM_MODE=" HOSTILE_SHOWN, NULL) == 1 &&
                  log_count("warning", "TIERMEM_GUIDANCE=/t/%" HOSTILE_SHOWN,
                            NULL) == 1 &&
                  log_count("warning", "unknown setting TIERMEM_" HOSTILE_SHOWN,
                            NULL) == 1,
              "log: %s", log_text());
    CHECK(log_printable());
    /* the tier order (arena/tiers.c) */
    tm_topology_t t;
    runtime_init(); /* discovery starts the runtime, which sets the log */
    log_reset(TM_LOG_WARN);
    CHECK(setenv("TIERMEM_TIERS", HOSTILE ";0", 1) == 0);
    CHECK(tm_topology_discover(&t) == 0);
    unsetenv("TIERMEM_TIERS");
    CHECK_MSG(log_count("warning", "TIERMEM_TIERS=\"" HOSTILE_SHOWN ";0\"",
                        "cannot parse tier \"?[2J??]0\"", NULL) == 1,
              "log: %s", log_text());
    CHECK(log_printable());
    /* the profiler's event name is refused, not kept for later messages */
    prof_options_t po;
    char *env[] = {"TIERMEM_PROFILE_EVENT=" HOSTILE, NULL};
    log_reset(TM_LOG_WARN);
    prof_options_parse(env, &po);
    CHECK(po.event[0] == '\0');
    CHECK_MSG(log_count("warning", "TIERMEM_PROFILE_EVENT=" HOSTILE_SHOWN,
                        NULL) == 1, "log: %s", log_text());
    CHECK(log_printable());
    char *good[] = {"TIERMEM_PROFILE_EVENT=MEM_LOAD_RETIRED.L3_MISS:u", NULL};
    prof_options_parse(good, &po);
    CHECK(strcmp(po.event, "MEM_LOAD_RETIRED.L3_MISS:u") == 0);
}

/* runtime_init in a child whose stderr is the log file, with the given
 * TIERMEM_LOG and TIERMEM_LOG_FILE; false if the child did not finish
 * (a log file that blocked the start-up). */
static bool init_child(const char *level, const char *file, bool secure)
{
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        alarm(20); /* a hang fails the test instead of blocking it */
        if (dup2(log_fd, 2) != 2)
            _exit(2);
        if (level != NULL)
            setenv("TIERMEM_LOG", level, 1);
        if (file != NULL)
            setenv("TIERMEM_LOG_FILE", file, 1);
        secure_process_override(secure);
        runtime_init();
        log_error("child: started");
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_log_settings(void)
{
    static char level[100000];
    memset(level, 'l', sizeof level - 1);
    memcpy(level, HOSTILE, sizeof HOSTILE - 1);
    log_reset(TM_LOG_WARN);
    CHECK(init_child(level, "/nonexistent/" HOSTILE, false));
    CHECK_MSG(log_count("warning", "TIERMEM_LOG=" HOSTILE_SHOWN "lll",
                        "...", "using warn", NULL) == 1 &&
                  log_count("warning", "TIERMEM_LOG_FILE=/nonexistent/"
                            HOSTILE_SHOWN, "errno 2", NULL) == 1,
              "log: %s", log_text());
    CHECK(log_printable());
    CHECK(strlen(log_text()) < 1000);
    /* a FIFO without a reader: refused at once, never waited on */
    char dir[] = "/tmp/tm_test_logfile.XXXXXX", path[64];
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/fifo", dir);
    REQUIRE_VOID(mkfifo(path, 0600) == 0);
    log_reset(TM_LOG_WARN);
    CHECK(init_child(NULL, path, false));
    CHECK_MSG(log_count("warning", "TIERMEM_LOG_FILE=", "logging to stderr",
                        NULL) == 1 &&
                  log_count("error", "child: started", NULL) == 1,
              "log: %s", log_text());
    CHECK(unlink(path) == 0);
    /* a set-user-ID program: the log file is not even created */
    snprintf(path, sizeof path, "%s/log", dir);
    log_reset(TM_LOG_WARN);
    CHECK(init_child(NULL, path, true));
    CHECK(access(path, F_OK) != 0 && errno == ENOENT);
    CHECK_MSG(log_count("warning", "TIERMEM_LOG_FILE is ignored", NULL) == 1 &&
                  log_count("error", "child: started", NULL) == 1,
              "log: %s", log_text());
    /* the same without the secure bit: the file is used */
    log_reset(TM_LOG_WARN);
    CHECK(init_child(NULL, path, false));
    CHECK(log_count("error", NULL) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0);
    CHECK(unlink(path) == 0);
    CHECK(rmdir(dir) == 0);
}

/* In a set-user-ID program every setting that names a path is ignored. */
static void test_secure_paths(void)
{
    options_t o;
    prof_options_t po;
    char *env[] = {"TIERMEM_GUIDANCE=/tmp/g", "SH_GUIDANCE_FILE=/tmp/s",
                   "TIERMEM_OUTPUT_DIR=/tmp/o", "TIERMEM_PROFILE=1",
                   "TIERMEM_PROFILE_FILE=/tmp/p", "TIERMEM_PROFILE_REPLAY=/t",
                   NULL};
    secure_process_override(1);
    CHECK(secure_process());
    log_reset(TM_LOG_WARN);
    options_parse(env, &o);
    prof_options_parse(env, &po);
    CHECK(o.guidance[0] == '\0' && o.output_dir[0] == '\0');
    CHECK(!po.enabled && po.file[0] == '\0' && po.replay[0] == '\0');
    CHECK_MSG(log_count("warning", "TIERMEM_GUIDANCE is ignored", NULL) == 1 &&
                  log_count("warning", "TIERMEM_OUTPUT_DIR is ignored",
                            NULL) == 1 &&
                  log_count("warning", "TIERMEM_PROFILE is ignored", NULL) ==
                      1 &&
                  log_count("warning", "TIERMEM_PROFILE_FILE is ignored",
                            NULL) == 1 &&
                  log_count("warning", "TIERMEM_PROFILE_REPLAY is ignored",
                            NULL) == 1,
              "log: %s", log_text());
    char *sicm[] = {"SH_GUIDANCE_FILE=/tmp/s", NULL};
    options_parse(sicm, &o);
    CHECK(o.guidance[0] == '\0');
    CHECK(log_count("warning", "SH_GUIDANCE_FILE is ignored", NULL) == 1);
    /* the kernel's answer for this test: not secure, the paths are used */
    secure_process_override(-1);
    CHECK(!secure_process());
    options_parse(env, &o);
    prof_options_parse(env, &po);
    CHECK(strcmp(o.guidance, "/tmp/g") == 0);
    CHECK(strcmp(o.output_dir, "/tmp/o") == 0);
    CHECK(po.enabled && strcmp(po.file, "/tmp/p") == 0 &&
          strcmp(po.replay, "/t") == 0);
}

int main(void)
{
    REQUIRE(log_open());
    test_log_settings(); /* first: the children's start-up must not have run */
    test_escaped_values();
    test_secure_paths();
    log_configure(TM_LOG_WARN, -1);
    CHECK(close(log_fd) == 0);
    return tm_test_done(__FILE__);
}
