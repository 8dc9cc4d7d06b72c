/*
 * base.h -- what the base layer offers to every layer above it.
 *
 * The base layer is tiermem's floor: every system call that maps, binds or
 * unmaps memory (os.c), the metadata allocator that never goes through
 * jemalloc (meta_alloc.c), the one logging path (log.c), whole-file reads
 * and the text lexer for the parsers above (read_file.c, text.c), the way
 * tiermem opens files and keeps descriptors in someone else's process
 * (file_open.c, owned_fd.c), and the debug-build rule checks (invariant.c).
 *
 * Nothing here knows about arenas or sites, and nothing here allocates
 * through jemalloc: the extent hooks call into this layer while jemalloc
 * holds its own locks.
 */
#ifndef TM_BASE_H
#define TM_BASE_H

#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tiermem.h"

#if defined(__GNUC__)
#define TM_HIDDEN __attribute__((visibility("hidden")))
#define TM_LIKELY(x) __builtin_expect(!!(x), 1)
#define TM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TM_HIDDEN
#define TM_LIKELY(x) (x)
#define TM_UNLIKELY(x) (x)
#endif

/* a + b, at most 2^64 - 1: sums of counts from hostile files (profiles of
 * many sites and ranks) must not wrap into small numbers. */
static inline uint64_t sat_add_u64(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

/* Invariants checked in debug builds (configure --enable-debug).
 * debug_assert_rule names the rule in words: the log line says what was
 * broken ("invariant violated: <rule> at file:line"); debug_assert names the
 * expression. */
#ifdef TM_DEBUG
#define debug_assert_rule(cond, rule)                                            \
    do {                                                                      \
        if (TM_UNLIKELY(!(cond)))                                             \
            debug_assert_fail(rule, __FILE__, __LINE__);                         \
    } while (0)
#else
#define debug_assert_rule(cond, rule) ((void)0)
#endif
#define debug_assert(cond) debug_assert_rule(cond, #cond)
void debug_assert_fail(const char *cond, const char *file, int line)
    __attribute__((noreturn));

/* ------------------------------------------------------------------ */
/* invariant.c: what debug builds check besides debug_assert               */
/* ------------------------------------------------------------------ */

/* A mutex that knows its owner in debug builds, so a function documented
 * "caller holds the lock" can check it (mutex_assert_owner).  In release
 * builds these are the plain pthread calls. */
typedef struct mutex {
    pthread_mutex_t m;
#ifdef TM_DEBUG
    _Atomic uintptr_t owner; /* thread_token() of the holder, 0: none */
#endif
} mutex_t;

/* For a static mutex_t (the owner starts as 0). */
#ifdef TM_DEBUG
#define TM_MUTEX_INITIALIZER {PTHREAD_MUTEX_INITIALIZER, 0}
#else
#define TM_MUTEX_INITIALIZER {PTHREAD_MUTEX_INITIALIZER}
#endif

#ifdef TM_DEBUG
/* A non-zero value unique to the calling thread while it lives. */
uintptr_t thread_token(void);
#endif

static inline int mutex_init(mutex_t *mu)
{
#ifdef TM_DEBUG
    atomic_store_explicit(&mu->owner, 0, memory_order_relaxed);
#endif
    return pthread_mutex_init(&mu->m, NULL);
}

static inline void mutex_destroy(mutex_t *mu)
{
    (void)pthread_mutex_destroy(&mu->m);
}

static inline void mutex_lock(mutex_t *mu)
{
    pthread_mutex_lock(&mu->m);
#ifdef TM_DEBUG
    atomic_store_explicit(&mu->owner, thread_token(), memory_order_relaxed);
#endif
}

/* Does the calling thread hold mu?  Always true in release builds. */
static inline bool mutex_owned(const mutex_t *mu)
{
#ifdef TM_DEBUG
    return atomic_load_explicit(&mu->owner, memory_order_relaxed) ==
           thread_token();
#else
    (void)mu;
    return true;
#endif
}

static inline void mutex_unlock(mutex_t *mu)
{
    debug_assert_rule(mutex_owned(mu), "a mutex is unlocked by its holder");
#ifdef TM_DEBUG
    atomic_store_explicit(&mu->owner, 0, memory_order_relaxed);
#endif
    pthread_mutex_unlock(&mu->m);
}

#define mutex_assert_owner(mu)                                             \
    debug_assert_rule(mutex_owned(mu), "the caller holds " #mu)

/* Which of tiermem's own threads this is.  The profiling thread and the
 * uffd fault-service thread set their role when they start; every other
 * thread (the program's) is TM_ROLE_PROGRAM.  Debug builds only record it:
 * in release builds thread_set_role does nothing. */
typedef enum thread_role {
    TM_ROLE_PROGRAM = 0,
    TM_ROLE_PROFILER = 1,
    TM_ROLE_UFFD_SERVICE = 2,
} thread_role_t;

#ifdef TM_DEBUG
void thread_set_role(thread_role_t role);
thread_role_t thread_role_current(void);
#define debug_assert_role(role)                                                  \
    debug_assert_rule(thread_role_current() == (role),                                \
                   "runs on the " #role " thread only")
#else
static inline void thread_set_role(thread_role_t role) { (void)role; }
#define debug_assert_role(role) ((void)0)
#endif

/* ------------------------------------------------------------------ */
/* log.c: the one logging path                                          */
/* ------------------------------------------------------------------ */

enum log_current_level {
    TM_LOG_OFF = 0,
    TM_LOG_ERROR = 1,
    TM_LOG_WARN = 2,
    TM_LOG_INFO = 3,
    TM_LOG_DEBUG = 4,
};

/* Where and how much to log.  fd < 0 means stderr; otherwise fd stays the
 * caller's (a test's file, a tool's stderr).  Either call also forgets
 * every repeat count (see log_at).  The default is warnings to stderr. */
void log_configure(int level, int fd);
/* Log into fd, a file tiermem opened itself (TIERMEM_LOG_FILE): log.c takes
 * it over with fd_own (it moves to a high number) and checks before each
 * write that it is still ours.  Once the program has closed it, or reused
 * its number, tiermem logs nothing more (see doc/configuration.md).
 * -1 + errno when it cannot be taken over: fd is closed, stderr is used. */
int log_configure_file(int level, int fd);
int log_current_level(void);
/* The descriptor written to: 2 for stderr, -1 once an owned one was lost. */
int log_current_fd(void);
/* Formats into a stack buffer and write(2)s it: never allocates, never
 * waits for a lock.  Bytes below 0x20 and 0x7f in the result show as '?'.
 * Repeats are limited per call site (keyed by fmt): an identical message
 * at most once a second, and after a burst of TM_LOG_BURST different ones,
 * one a second; the next line shown says how many were not.  Info and
 * debug messages, which a user asks for, are not limited. */
void log_at(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define TM_LOG_BURST 20
/* One line for each call site whose repeats were not all reported yet.
 * Runs at exit (a destructor); tests call it directly. */
void log_flush_repeats(void);
/* In a fork child: forget the parent's held-back counts. */
void log_fork_child(void);
/* For tests: the clock the repeat limit reads (ns), NULL for the real one. */
void log_set_test_clock(const _Atomic uint64_t *now_ns);

/* A value as it may appear in a log line: at most TM_SHOWN_MAX bytes, each
 * byte outside printable ASCII shown as '?', "..." when cut.  Every value a
 * user supplies (settings, paths, file contents) is logged through it. */
#define TM_SHOWN_MAX 64
typedef struct shown {
    char s[TM_SHOWN_MAX + 4];
} shown_t;
const char *log_shown(shown_t *buf, const char *value);
/* The same for n bytes that need not be NUL-terminated. */
const char *log_shown_n(shown_t *buf, const char *p, size_t n);

#define log_error(...) log_at(TM_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(TM_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(TM_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(TM_LOG_DEBUG, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* os.c: system calls                                                   */
/* ------------------------------------------------------------------ */

/* The raw calls, through a table so tests can inject failures and odd
 * results (a misaligned mmap, an EFAULT from mbind). */
typedef struct os_calls {
    void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off);
    int (*munmap)(void *addr, size_t len);
    long (*mbind)(void *addr, unsigned long len, int mode,
                  const unsigned long *nodemask, unsigned long maxnode,
                  unsigned flags);
    long (*move_pages)(int pid, unsigned long count, void **pages,
                       const int *nodes, int *status, int flags);
    int (*madvise)(void *addr, size_t len, int advice);
} os_ops_t;

/* Replace the calls (NULL restores the real ones); returns the old table.
 * For tests only: not safe while other threads are inside tiermem. */
os_ops_t os_set_ops(const os_ops_t *ops);
const os_ops_t *os_real_ops(void);

size_t os_page_size(void);

/* Map exactly `size` bytes aligned to `alignment` (a power of two; 0 or
 * anything up to a page means page alignment):
 *   1. map size; 2. if misaligned, unmap it and map size + alignment;
 *   3. unmap exactly the head before the first aligned address and the tail
 *      after aligned + size (either may be empty).
 * On return exactly [result, result + size) is mapped by this call.
 * NULL + errno on failure, with nothing left mapped. */
void *os_map_aligned(size_t size, size_t alignment);
/* Map exactly `size` bytes at hint if that space is free, else wherever
 * the kernel chooses (never replaces a mapping).  NULL + errno. */
void *os_map_near(void *hint, size_t size);
/* Map exactly [addr, addr + size) or fail (never replaces a mapping). */
void *os_map_fixed(void *addr, size_t size);
int os_unmap(void *addr, size_t size);
/* mbind [addr, addr + size) to a placement.  flags: 0, or MPOL_MF_MOVE and
 * friends.  Returns 0 or -1 with errno. */
int os_bind(void *addr, size_t size, const tm_placement_t *placement,
               unsigned flags);
/* move_pages in batches: nodes NULL = query only. */
long os_move_pages(unsigned long count, void **pages, const int *nodes,
                      int *status);
int os_madvise(void *addr, size_t size, int advice);


/* Is this placement usable here (non-empty mask, nodes < TM_MAX_NODES)? */
bool placement_valid(const tm_placement_t *placement);

/* ------------------------------------------------------------------ */
/* own_thread.c: tiermem's own threads                                  */
/* ------------------------------------------------------------------ */

/* pthread_create for a thread of ours: every signal blocked in it, and a
 * 1 MiB stack that transparent huge pages cannot back.  0 or an errno
 * value, as pthread_create. */
int own_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

/* ------------------------------------------------------------------ */
/* read_file.c: a whole file into metadata memory                       */
/* ------------------------------------------------------------------ */

/* The whole file at path in metadata memory, NUL-terminated: *len bytes in
 * a *cap-byte block (free it with meta_free(buf, *cap)).  Regular files
 * only (what the library reads: a FIFO must not hang start-up); files over
 * max_bytes are refused.  NULL + errno, after one line at `level` naming
 * `what` ("guidance file"), the path and what was wrong. */
char *read_file(const char *path, const char *what, int level,
                   size_t max_bytes, size_t *len, size_t *cap);
/* read_file that also accepts the types in `accept` (TM_FILE_ALLOW_*):
 * the tools read pipes, e.g. <(command).  A pipe is opened non-blocking:
 * without a writer it reads as empty at once. */
char *read_file_accepting(const char *path, const char *what, int level,
                             unsigned accept, size_t max_bytes, size_t *len,
                             size_t *cap);

/* A whole small regular file (a /proc/sys or sysfs value) into buf,
 * NUL-terminated: its length, or -1 with errno (EINVAL: not a regular
 * file, holds a NUL, or needs size bytes or more -- a cut value could end
 * in half a number; else open's or read's).  Opened as file_open_read. */
ssize_t read_small_file(const char *path, char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* text.c: the lexer under every line-format parser                     */
/* ------------------------------------------------------------------ */

/* The line formats (guidance, profiles, traces, site tables, sysfs node
 * files, settings values) share one lexer, so they agree on what a line,
 * a blank and a number are.  The rules (doc/guidance.md and the other
 * format pages repeat the line-ending one):
 *   - a line ends at '\n'; the last line may lack it (text_lines says so,
 *     each format decides whether a torn line counts);
 *   - ONE '\r' right before the end of a line is dropped, so a CRLF file
 *     reads exactly like its LF twin; a '\r' anywhere else is an ordinary
 *     byte: not a blank, not a line end (a number "12\r" is not a number);
 *   - blanks are ' ' and '\t' only; fields are runs of non-blank bytes;
 *   - numbers are ASCII digits only: no sign unless a signed parser is
 *     asked for, no blanks, no locale, overflow and range checked.
 * Nothing here allocates or reads global state: the preload library
 * parses while it is the process's malloc, and the fuzzers call it on
 * anything.  Text need not be NUL-terminated; every read stays inside
 * [p, p + n). */

/* A piece of text: never NUL-terminated. */
typedef struct text_span {
    const char *p;
    size_t n;
} text_span_t;

static inline text_span_t span_make(const char *p, size_t n)
{
    return (text_span_t){p, n};
}
/* The span of a C string (NULL: empty). */
text_span_t span_of(const char *s);
/* Exactly the bytes of word. */
bool span_eq(text_span_t s, const char *word);
/* The bytes of word, ASCII letters in any case. */
bool span_eq_nocase(text_span_t s, const char *word);
/* Does s start with prefix (exact bytes)? */
bool span_starts(text_span_t s, const char *prefix);
/* s without leading and trailing blanks. */
text_span_t span_trim(text_span_t s);
/* s up to (not including) the first `mark` byte: a comment cut off. */
text_span_t span_cut_at(text_span_t s, char mark);

static inline bool text_is_blank(char c)
{
    return c == ' ' || c == '\t';
}
/* Nothing but blanks (or nothing at all). */
bool text_is_blank_line(text_span_t line);
/* The first non-blank byte is `mark` ('#'). */
bool text_is_comment(text_span_t line, char mark);

/* Lines of [text, text + len), numbered from 1. */
typedef struct text_lines {
    const char *pos, *end;
    size_t line;  /* number of the line last returned; 0 before the first */
    bool torn;    /* the line last returned had no '\n' (end of text) */
} text_lines_t;

void text_lines_init(text_lines_t *it, const char *text, size_t len);
/* The next line without its '\n' and its one trailing '\r'; false at the
 * end of the text.  A text ending in '\n' has no empty line after it. */
bool text_next_line(text_lines_t *it, text_span_t *line);

/* Split at blanks into f[0..max).  Returns the count, or max + 1 when
 * there are more than max fields (f holds the first max). */
size_t text_fields(text_span_t line, text_span_t *f, size_t max);

/* Decimal digits only, value <= max.  False on empty, any other byte, or
 * a value above max (2^64 and up included). */
bool text_dec_u64(text_span_t s, uint64_t max, uint64_t *out);
/* An optional '-' and decimal digits, value in [min, max]. */
bool text_dec_i64(text_span_t s, int64_t min, int64_t max, int64_t *out);

/* How text_hex_u64 treats the "0x"/"0X" prefix and the digits. */
#define TEXT_HEX_PREFIX_OPTIONAL 0u /* with or without 0x */
#define TEXT_HEX_PREFIX_REQUIRED 1u /* 0x then digits */
#define TEXT_HEX_PREFIX_NONE 2u     /* digits only */
#define TEXT_HEX_MAX_16_DIGITS 4u   /* at most 16 digits, leading 0s too */
/* Hex digits (either case) fitting 64 bits; flags TEXT_HEX_*. */
bool text_hex_u64(text_span_t s, unsigned flags, uint64_t *out);
/* Decimal, or hex when it starts with 0x/0X; value <= max. */
bool text_num_u64(text_span_t s, uint64_t max, uint64_t *out);
/* A decimal with up to `decimals` digits after an optional '.', scaled by
 * 10^decimals ("1.5", 3 -> 1500).  "1." and ".5" are not numbers. */
bool text_dec_fixed(text_span_t s, unsigned decimals, uint64_t *out);
/* A finite decimal floating-point number as C's strtod reads it in the C
 * locale, from [0-9.eE+-] only (no inf, nan, hex or blanks), at most 63
 * bytes.  The application's LC_NUMERIC never matters. */
bool text_double(text_span_t s, double *out);

/* "name:line: what" into buf (always NUL-terminated, cut to size): name
 * with every byte outside printable ASCII shown as '?' (log_shown's rule,
 * but not cut at TM_SHOWN_MAX: a path stays whole up to size), what from
 * fmt (at most 255 bytes); a line of 0 leaves ":line" out.  Returns buf.
 * Quote user bytes inside `what` with log_shown_n. */
const char *text_error(char *buf, size_t size, const char *name,
                       size_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ------------------------------------------------------------------ */
/* file_open.c: every file tiermem opens by a path it was given          */
/* ------------------------------------------------------------------ */

/* What else than a regular file an open accepts. */
#define TM_FILE_ALLOW_CHARDEV 1u /* /dev/null, a terminal */
#define TM_FILE_ALLOW_FIFO 2u    /* a pipe: tools reading <(command) */

/* Create path for writing: exclusively, never through a symbolic link,
 * close-on-exec (O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC).  -1 + errno. */
int file_create(const char *path, mode_t mode);
/* Create "<final_path>.tmp.<16 random hex digits>" as file_create does;
 * its name goes to tmp.  Publish it with rename(tmp, final_path). */
int file_create_temp(const char *final_path, char *tmp, size_t tmp_size,
                        mode_t mode);
/* 64 bits an attacker cannot predict, for file names; never blocks. */
uint64_t unpredictable_bits(void);
/* Open for reading with O_NONBLOCK (a FIFO without a writer cannot hang
 * us); a type not accepted fails with EISDIR or EINVAL.  O_NONBLOCK stays
 * set: for a pipe, read() may say EAGAIN. */
int file_open_read(const char *path, unsigned accept);
/* Open for appending (the log file): created exclusively when absent,
 * otherwise opened O_APPEND|O_NOFOLLOW|O_NONBLOCK and type-checked. */
int file_open_append(const char *path, mode_t mode, unsigned accept);
/* Words for the errno of a refused type or link, or NULL. */
const char *file_type_error(int err);
/* "a FIFO", "a directory", ...: what st_mode says a file is. */
const char *file_kind(mode_t mode);

/* ------------------------------------------------------------------ */
/* owned_fd.c: descriptors kept inside someone else's process           */
/* ------------------------------------------------------------------ */

typedef struct owned_fd {
    int fd; /* -1: none */
    dev_t dev;
    ino_t ino;
    mode_t type;   /* st_mode & S_IFMT */
    char anon[24]; /* an anonymous inode's kind ("[eventfd]"), else "" */
} owned_fd_t;

/* Take fd over: move it to a high number (F_DUPFD_CLOEXEC, the original is
 * closed) and record its identity.  Returns the new number, or -1 + errno
 * with fd closed. */
int fd_own(int fd, owned_fd_t *o);
/* Is o->fd still the descriptor fd_own recorded?  false once the
 * program closed it, or closed it and opened something else there. */
bool fd_is_ours(const owned_fd_t *o);
/* Close o->fd if it is still ours and forget it; true if it was ours.  A
 * descriptor that is no longer ours is never closed. */
bool fd_release(owned_fd_t *o);
/* Forget o->fd without closing it. */
void fd_forget(owned_fd_t *o);
/* Descriptor numbers still free below the soft RLIMIT_NOFILE (what the
 * program's opens can still get); LONG_MAX when unlimited. */
long fd_free_count(void);

/* ------------------------------------------------------------------ */
/* meta_alloc.c: metadata memory that never comes from jemalloc         */
/* ------------------------------------------------------------------ */

void *meta_alloc(size_t size);           /* zeroed; NULL on failure */
void meta_free(void *ptr, size_t size);  /* size as passed to alloc */
/* Bytes of tiermem's own bookkeeping mappings: meta_alloc's, and what
 * other base users map for themselves (the extent map's leaves). */
extern _Atomic uint64_t meta_bytes_mapped;
/* In a fork child: the lock may have been held by a thread that is gone. */
void meta_fork_child(void);

#endif /* TM_BASE_H */
