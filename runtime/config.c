/*
 * config.c -- start-up and the environment settings read so far.
 *
 *   TIERMEM_LOG       off | error | warn | info | debug   (default: warn)
 *   TIERMEM_LOG_FILE  a path to append log lines to       (default: stderr)
 *
 * A bad value never stops the program: it gets one warning that names the
 * variable, the value and the default used instead.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime.h"

static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"off", "error", "warn", "info",
                                          "debug"};

static int parse_log_level(const char *value, bool *ok)
{
    *ok = true;
    for (int i = 0; i <= TM_LOG_DEBUG; i++)
        if (strcasecmp(value, level_names[i]) == 0)
            return i;
    if (value[0] >= '0' && value[0] <= '4' && value[1] == '\0')
        return value[0] - '0';
    *ok = false;
    return TM_LOG_WARN;
}

static void runtime_init_once(void)
{
    int level = TM_LOG_WARN, fd = -1;
    bool level_ok = true;
    const char *v = getenv("TIERMEM_LOG");
    if (v != NULL && *v != '\0')
        level = parse_log_level(v, &level_ok);
    const char *path = getenv("TIERMEM_LOG_FILE");
    if (path != NULL && *path != '\0') {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            tm_log_configure(level, -1);
            tm_log_warn("TIERMEM_LOG_FILE=%s cannot be opened (errno %d); "
                        "logging to stderr", path, errno);
        }
    }
    tm_log_configure(level, fd);
    tm_options_load();
    front_cache_init_classes(); /* also initialises jemalloc */
    tm_fork_handlers_install();
    if (!level_ok)
        tm_log_warn("TIERMEM_LOG=%s is not one of off, error, warn, info, "
                    "debug, 0-4; using warn", v);
}

void tm_runtime_init(void)
{
    (void)pthread_once(&runtime_once, runtime_init_once);
}

/* ---------------------------------------------------------------- exec */

static void (*_Atomic exec_hook)(void);

void tm_runtime_set_exec_hook(void (*fn)(void))
{
    atomic_store(&exec_hook, fn);
}

void tm_runtime_before_exec(void)
{
    void (*fn)(void) = atomic_load(&exec_hook);
    if (fn != NULL)
        fn();
}
