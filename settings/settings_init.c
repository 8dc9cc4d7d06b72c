/*
 * settings_init.c -- the settings, once per process: the log first (so
 * that what follows can warn), then every other setting.
 *
 *   TIERMEM_LOG       off | error | warn | info | debug   (default: warn)
 *   TIERMEM_LOG_FILE  a path to append log lines to       (default: stderr)
 *                     (ignored in set-user-ID and set-group-ID programs)
 *
 * A bad value never stops the program: it gets one warning that names the
 * variable, the value and the default used instead.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"off", "error", "warn", "info",
                                          "debug"};

static int parse_log_level(const char *value, bool *ok)
{
    *ok = true;
    int i = parse_enum(value, level_names, TM_LOG_DEBUG + 1);
    if (i >= 0)
        return i;
    if (value[0] >= '0' && value[0] <= '4' && value[1] == '\0')
        return value[0] - '0';
    *ok = false;
    return TM_LOG_WARN;
}

/* The log file: regular files and character devices (/dev/null, a
 * terminal).  A FIFO is refused: opening one without a reader fails, and
 * writing to one whose reader left raises SIGPIPE in the program.  The
 * open never blocks (O_NONBLOCK) and never follows a symbolic link. */
static void open_log_file(int level, const char *path)
{
    shown_t s;
    if (path_setting_refused("TIERMEM_LOG_FILE", path))
        return;
    int fd = file_open_append(path, 0644, TM_FILE_ALLOW_CHARDEV);
    if (fd >= 0 && log_configure_file(level, fd) == 0)
        return;
    int err = errno;
    const char *why = file_type_error(err);
    if (why != NULL)
        log_warn("TIERMEM_LOG_FILE=%s %s; logging to stderr",
                    log_shown(&s, path), why);
    else
        log_warn("TIERMEM_LOG_FILE=%s cannot be opened (errno %d); "
                    "logging to stderr", log_shown(&s, path), err);
}

static void settings_init_once(void)
{
    int level = TM_LOG_WARN;
    bool level_ok = true;
    const char *v = getenv("TIERMEM_LOG");
    if (v != NULL && *v != '\0')
        level = parse_log_level(v, &level_ok);
    log_configure(level, -1);
    const char *path = getenv("TIERMEM_LOG_FILE");
    if (path != NULL && *path != '\0')
        open_log_file(level, path);
    options_load();
    if (!level_ok)
        setting_bad("TIERMEM_LOG", v,
                    "one of off, error, warn, info, debug, 0-4", "warn");
}

void settings_init(void)
{
    (void)pthread_once(&settings_once, settings_init_once);
}
