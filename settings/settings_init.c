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
#include <stddef.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"off", "error", "warn", "info",
                                          "debug"};

/* What the log rows read; the log is configured from it before anything
 * else is parsed, so that the other settings' warnings obey it. */
typedef struct log_settings {
    int level;
    const char *bad_level; /* TIERMEM_LOG's bad value, warned about last */
    const char *file;      /* TIERMEM_LOG_FILE, or NULL */
} log_settings_t;

/* Names or digits: its own parser.  The warning waits until the other
 * settings are read (settings_init_once), as it always has. */
static void parse_log_level(const setting_t *row, const char *var,
                            const char *value, void *owner,
                            char *const *env)
{
    log_settings_t *ls = owner;
    (void)row, (void)var, (void)env;
    int i = parse_enum(value, level_names, TM_LOG_DEBUG + 1);
    if (i >= 0)
        ls->level = i;
    else if (value[0] >= '0' && value[0] <= '4' && value[1] == '\0')
        ls->level = value[0] - '0';
    else
        ls->bad_level = value;
}

/* The set-user-ID refusal came first (a SETTING_PATH row); opening waits
 * until the level is known. */
static void keep_log_file(const setting_t *row, const char *var,
                          const char *value, void *owner, char *const *env)
{
    (void)row, (void)var, (void)env;
    ((log_settings_t *)owner)->file = value;
}

static const setting_t log_rows[] = {
    {.name = "TIERMEM_LOG", .type = SETTING_ENUM, .names = level_names,
     .nnames = TM_LOG_DEBUG + 1, .field = FIELD_INT,
     .offset = offsetof(log_settings_t, level), .size = sizeof(int),
     .dflt = "warn", .want = "one of off, error, warn, info, debug, 0-4",
     .values_doc = "`off`, `error`, `warn`, `info`, `debug`, or `0`-`4`",
     .dflt_doc = "`warn`", .doc = "how much tiermem logs",
     .parse = parse_log_level},
    {.name = "TIERMEM_LOG_FILE", .type = SETTING_PATH,
     .shown = "stderr",
     .values_doc = "a path: a regular file (created if absent) or a "
                   "character device such as `/dev/null` or a terminal",
     .dflt_doc = "stderr",
     .doc = "append log lines to this file instead; anything else (a FIFO, "
            "a directory, a symbolic link, a path that cannot be opened) "
            "gets one warning and stderr. See \"The log\"",
     .parse = keep_log_file},
};

static void log_defaults(void *owner)
{
    log_settings_t *ls = owner;
    *ls = (log_settings_t){.level = TM_LOG_WARN};
}

static const setting_table_t log_table = {
    .layer = "log", .order = 0, .rows = log_rows,
    .nrows = sizeof log_rows / sizeof log_rows[0],
    .owner_size = sizeof(log_settings_t), .defaults = log_defaults,
};
SETTINGS_REGISTER(log_table);

/* The log file: regular files and character devices (/dev/null, a
 * terminal).  A FIFO is refused: opening one without a reader fails, and
 * writing to one whose reader left raises SIGPIPE in the program.  The
 * open never blocks (O_NONBLOCK) and never follows a symbolic link. */
static void open_log_file(int level, const char *path)
{
    shown_t s;
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
    log_settings_t ls;
    log_defaults(&ls);
    setting_parse(environ, &log_rows[0], &ls);
    log_configure(ls.level, -1);
    setting_parse(environ, &log_rows[1], &ls);
    if (ls.file != NULL)
        open_log_file(ls.level, ls.file);
    options_load();
    if (ls.bad_level != NULL)
        setting_bad(log_rows[0].name, ls.bad_level, log_rows[0].want,
                    log_rows[0].dflt);
}

void settings_init(void)
{
    (void)pthread_once(&settings_once, settings_init_once);
}
