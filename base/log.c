/*
 * log.c -- tiermem's one logging path.
 *
 * Library code never prints except through log_at().  The runtime sets the
 * level and the destination once, from TIERMEM_LOG and TIERMEM_LOG_FILE.
 * log_at formats into a stack buffer and issues a single write(2): it never
 * allocates and never waits for a lock, so it is safe inside jemalloc's
 * extent hooks (which hold jemalloc's locks), inside malloc interposition
 * and in a signal handler, and one message is never interleaved with
 * another.
 *
 * Three rules keep a hostile environment or a misbehaving program from
 * turning the log against its user:
 *   - values are shown bounded and printable (log_shown), and every
 *     control byte left in a message is replaced, so nothing reaches a
 *     terminal as an escape sequence;
 *   - repeats are limited per call site, so a program that fails an
 *     allocation in a loop does not get one line per call;
 *   - a log file tiermem opened is checked before each write, so a
 *     descriptor the program closed and reused is never written to.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

#define LOG_LINE_MAX 1024
#define LOG_TO_STDERR (-1)
#define LOG_NOWHERE (-2) /* the owned log file was lost: log nothing */

static _Atomic int log_level = TM_LOG_WARN;
static _Atomic int log_fd = LOG_TO_STDERR;
static _Atomic bool log_fd_owned;
static owned_fd_t log_owned; /* written before log_fd_owned is set */

/* ---------------------------------------------------------------- values */

const char *log_shown_n(shown_t *b, const char *p, size_t n)
{
    size_t i = 0;
    if (p == NULL)
        n = 0;
    for (; i < n && i < TM_SHOWN_MAX; i++) {
        unsigned char c = (unsigned char)p[i];
        b->s[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (i < n)
        memcpy(b->s + i, "...", 4);
    else
        b->s[i] = '\0';
    return b->s;
}

const char *log_shown(shown_t *b, const char *value)
{
    /* strnlen: a 100 KB value is not walked past what is shown */
    size_t n = value != NULL ? strnlen(value, TM_SHOWN_MAX + 1) : 0;
    return log_shown_n(b, value, n);
}

/* ---------------------------------------------------------------- repeats */

/*
 * One slot per call site, keyed by the format string's address: cheap,
 * allocation-free, and stable for the process's life.  A slot's decision
 * fields are guarded by a try-lock holding the holder's pid: a thread that
 * finds it busy (another thread deciding, or a signal handler interrupting
 * the holder) counts its message as not shown rather than wait, and a fork
 * child that inherited it held takes it over (the pid differs).
 */
#define REPEAT_SLOTS 128
#define REPEAT_WINDOW_NS 1000000000ull
#define REPEAT_QUOTE 48

typedef struct repeat_slot {
    _Atomic(const char *) key;
    _Atomic pid_t lock;          /* 0, or the pid of the holder */
    _Atomic uint64_t suppressed; /* not shown since the last line shown */
    /* under lock */
    bool used;
    int level;
    unsigned tokens; /* different messages that may still go out now */
    uint64_t tokens_at, last_shown_at, last_hash;
    char quote[REPEAT_QUOTE]; /* the start of the last message shown */
} repeat_slot_t;

/* The last slot is shared by call sites that find the table full. */
static repeat_slot_t repeat_slots[REPEAT_SLOTS + 1];
static const _Atomic uint64_t *_Atomic test_clock;

void log_set_test_clock(const _Atomic uint64_t *now_ns)
{
    atomic_store(&test_clock, now_ns);
}

static uint64_t now_ns(void)
{
    const _Atomic uint64_t *t = atomic_load(&test_clock);
    if (t != NULL)
        return atomic_load(t);
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0; /* cannot happen with a valid clock id */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static repeat_slot_t *slot_for(const char *key)
{
    size_t h = (size_t)(((uintptr_t)key >> 3) * 0x9e3779b97f4a7c15ull >> 32);
    for (size_t i = 0; i < REPEAT_SLOTS; i++) {
        repeat_slot_t *s = &repeat_slots[(h + i) % REPEAT_SLOTS];
        const char *k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == NULL &&
            atomic_compare_exchange_strong(&s->key, &k, key))
            return s;
        if (k == key)
            return s;
    }
    return &repeat_slots[REPEAT_SLOTS];
}

static bool slot_trylock(repeat_slot_t *s, pid_t me)
{
    pid_t held = 0;
    if (atomic_compare_exchange_strong(&s->lock, &held, me))
        return true;
    /* held by another process: we are a fork child and it a parent thread */
    return held != me && atomic_compare_exchange_strong(&s->lock, &held, me);
}

static void slot_unlock(repeat_slot_t *s)
{
    atomic_store_explicit(&s->lock, 0, memory_order_release);
}

static uint64_t text_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

/* One token a second, up to TM_LOG_BURST. */
static void refill(repeat_slot_t *s, uint64_t now)
{
    if (!s->used) {
        s->used = true;
        s->tokens = TM_LOG_BURST;
        s->tokens_at = now;
        return;
    }
    if (now < s->tokens_at || now - s->tokens_at < REPEAT_WINDOW_NS)
        return;
    uint64_t add = (now - s->tokens_at) / REPEAT_WINDOW_NS;
    s->tokens = add >= TM_LOG_BURST - s->tokens ? TM_LOG_BURST
                                                : s->tokens + (unsigned)add;
    s->tokens_at += add * REPEAT_WINDOW_NS;
}

/* Under the slot's lock: may this message go out now? */
static bool admit_locked(repeat_slot_t *s, const char *msg, size_t n,
                         uint64_t now)
{
    uint64_t h = text_hash(msg, n);
    refill(s, now);
    bool same = s->last_shown_at != 0 && h == s->last_hash &&
                now - s->last_shown_at < REPEAT_WINDOW_NS;
    if (same || s->tokens == 0)
        return false;
    s->tokens--;
    s->last_hash = h;
    s->last_shown_at = now != 0 ? now : 1; /* 0 means "never shown" */
    size_t q = n < REPEAT_QUOTE - 1 ? n : REPEAT_QUOTE - 1;
    memcpy(s->quote, msg, q);
    s->quote[q] = '\0';
    return true;
}

/* Should msg (from the call site fmt) go out?  If so, *unreported is how
 * many from the same site were held back since the last one shown. */
static bool repeat_admit(const char *fmt, int level, const char *msg,
                         size_t n, pid_t me, uint64_t *unreported)
{
    repeat_slot_t *s = slot_for(fmt);
    bool admit = false;
    if (slot_trylock(s, me)) {
        s->level = level;
        admit = admit_locked(s, msg, n, now_ns());
        slot_unlock(s);
    }
    if (!admit) {
        atomic_fetch_add(&s->suppressed, 1);
        return false;
    }
    *unreported = atomic_exchange(&s->suppressed, 0);
    return true;
}

static void repeats_forget(void)
{
    for (size_t i = 0; i <= REPEAT_SLOTS; i++) {
        repeat_slot_t *s = &repeat_slots[i];
        atomic_store(&s->key, NULL);
        atomic_store(&s->lock, 0);
        atomic_store(&s->suppressed, 0);
        s->used = false;
        s->tokens = 0;
        s->tokens_at = s->last_shown_at = s->last_hash = 0;
        s->quote[0] = '\0';
    }
}

/* ------------------------------------------------------------ destination */

void log_configure(int level, int fd)
{
    if (level < TM_LOG_OFF)
        level = TM_LOG_OFF;
    if (level > TM_LOG_DEBUG)
        level = TM_LOG_DEBUG;
    if (atomic_exchange(&log_fd_owned, false))
        (void)fd_release(&log_owned); /* closes it only if still ours */
    atomic_store(&log_level, level);
    atomic_store(&log_fd, fd < 0 ? LOG_TO_STDERR : fd);
    repeats_forget();
}

int log_configure_file(int level, int fd)
{
    log_configure(level, LOG_TO_STDERR);
    if (fd_own(fd, &log_owned) < 0)
        return -1;
    atomic_store(&log_fd_owned, true);
    atomic_store(&log_fd, log_owned.fd);
    return 0;
}

int log_current_level(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

static const char *level_name(int level)
{
    switch (level) {
    case TM_LOG_ERROR: return "error";
    case TM_LOG_WARN: return "warning";
    case TM_LOG_INFO: return "info";
    default: return "debug";
    }
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere left to report a logging failure */
        p += w;
        len -= (size_t)w;
    }
}

/* The program closed our log file, or closed it and opened something else
 * under its number.  Falling back to stderr would put tiermem's lines into
 * output the user chose to keep clean, so logging stops; a user watching a
 * terminal is told once. */
static void log_file_lost(int fd)
{
    if (!atomic_compare_exchange_strong(&log_fd, &fd, LOG_NOWHERE))
        return; /* another thread noticed first */
    if (isatty(STDERR_FILENO) != 1)
        return;
    char line[160];
    int n = snprintf(line, sizeof line,
                     "tiermem[%d]: warning: the program closed tiermem's log "
                     "file (descriptor %d); tiermem logs nothing more\n",
                     (int)getpid(), fd);
    if (n > 0 && (size_t)n < sizeof line)
        write_all(STDERR_FILENO, line, (size_t)n);
}

/* Where a line goes now: stderr, our log file if it is still ours, or -1. */
static int log_destination(void)
{
    int fd = atomic_load(&log_fd);
    if (fd == LOG_NOWHERE)
        return -1;
    if (fd == LOG_TO_STDERR)
        return STDERR_FILENO;
    if (atomic_load(&log_fd_owned) && !fd_is_ours(&log_owned)) {
        log_file_lost(fd);
        return -1;
    }
    return fd;
}

int log_current_fd(void)
{
    int fd = atomic_load(&log_fd);
    return fd == LOG_TO_STDERR ? STDERR_FILENO : fd == LOG_NOWHERE ? -1 : fd;
}

/* ---------------------------------------------------------------- lines */

/* Control bytes (an ESC from a value no caller made printable) become '?',
 * so a log line can never drive the terminal it lands on. */
static void defang(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f)
            p[i] = '?';
    }
}

/* "tiermem[PID]: LEVEL: " (at most 40 bytes) into buf, which holds
 * LOG_LINE_MAX; its length. */
#define PREFIX_MAX 40
static size_t line_prefix(char *buf, pid_t pid, int level)
{
    int n = snprintf(buf, PREFIX_MAX, "tiermem[%d]: %s: ", (int)pid,
                     level_name(level));
    return n < 0 ? 0 : n < PREFIX_MAX ? (size_t)n : PREFIX_MAX - 1;
}

/* Format the message after the prefix; returns the total length, the
 * message cut with "..." if it did not fit. */
static size_t line_body(char *buf, size_t at, const char *fmt, va_list ap)
{
    size_t room = LOG_LINE_MAX - 1 - at; /* and one for the newline */
    int m = vsnprintf(buf + at, room, fmt, ap);
    if (m < 0)
        m = 0;
    if ((size_t)m >= room) {
        memcpy(buf + LOG_LINE_MAX - 5, "...", 4);
        return LOG_LINE_MAX - 2;
    }
    return at + (size_t)m;
}

static void emit(int fd, char *buf, size_t len)
{
    buf[len++] = '\n';
    write_all(fd, buf, len);
}

static void log_line(int level, bool limited, const char *fmt, va_list ap)
{
    char buf[LOG_LINE_MAX + 64];
    pid_t me = getpid();
    size_t at = line_prefix(buf, me, level);
    size_t len = line_body(buf, at, fmt, ap);
    defang(buf + at, len - at);
    uint64_t unreported = 0;
    if (limited &&
        !repeat_admit(fmt, level, buf + at, len - at, me, &unreported))
        return;
    int fd = log_destination();
    if (fd < 0)
        return;
    if (unreported > 0) {
        int m = snprintf(buf + len, sizeof buf - len,
                         " (%llu more like this not shown)",
                         (unsigned long long)unreported);
        if (m > 0 && (size_t)m < sizeof buf - len)
            len += (size_t)m;
    }
    emit(fd, buf, len);
}

void log_at(int level, const char *fmt, ...)
{
    if (level > log_current_level() || level <= TM_LOG_OFF)
        return;
    int saved_errno = errno; /* logging must not disturb the caller's errno */
    va_list ap;
    va_start(ap, fmt);
    /* Errors and warnings reach users who did not ask for them, so their
     * repeats are limited; info and debug are asked for, line by line. */
    log_line(level, level <= TM_LOG_WARN, fmt, ap);
    va_end(ap);
    errno = saved_errno;
}

/* One line to fd, past the repeat limit: the limit's own summaries, and
 * the last words of a failed assertion. */
__attribute__((format(printf, 3, 4))) static void
log_unlimited(int fd, int level, const char *fmt, ...)
{
    char buf[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t at = line_prefix(buf, getpid(), level);
    size_t len = line_body(buf, at, fmt, ap);
    va_end(ap);
    defang(buf + at, len - at);
    emit(fd, buf, len);
}

/* One line for a slot whose held-back messages were not reported yet. */
static void flush_slot(repeat_slot_t *s, pid_t me, int fd)
{
    if (atomic_load(&s->suppressed) == 0 || !slot_trylock(s, me))
        return;
    uint64_t n = atomic_exchange(&s->suppressed, 0);
    if (n > 0 && s->used && s->level <= log_current_level())
        log_unlimited(fd, s->level,
                      "%llu more messages like \"%s...\" were not shown",
                      (unsigned long long)n, s->quote);
    slot_unlock(s);
}

void log_flush_repeats(void)
{
    int saved_errno = errno;
    int fd = log_destination();
    pid_t me = getpid();
    for (size_t i = 0; fd >= 0 && i <= REPEAT_SLOTS; i++)
        flush_slot(&repeat_slots[i], me, fd);
    errno = saved_errno;
}

/* In a fork child: the parent's held-back counts are the parent's to
 * report; the child would report them a second time at its exit. */
void log_fork_child(void)
{
    for (size_t i = 0; i <= REPEAT_SLOTS; i++)
        atomic_store(&repeat_slots[i].suppressed, 0);
}

/* At exit, or when a library holding this file is unloaded: say how many
 * messages the repeat limit held back since they were last reported. */
__attribute__((destructor)) static void log_at_exit(void)
{
    log_flush_repeats();
}

void debug_assert_fail(const char *cond, const char *file, int line)
{
    /* not limited: this is the last line the process writes */
    int fd = log_current_level() >= TM_LOG_ERROR ? log_destination() : -1;
    if (fd >= 0)
        log_unlimited(fd, TM_LOG_ERROR, "invariant violated: %s at %s:%d",
                      cond, file, line);
    abort();
}
