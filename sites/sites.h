/*
 * sites.h -- what the sites layer offers: which allocation goes where.
 *
 * A site is a call-stack key or an explicit id; each site gets an arena
 * according to the layout (per site, per thread, big/small) and the
 * guidance file.  The layer keeps the site table, the per-site counters,
 * the owners of blocks in shared arenas, and the allocation entry points
 * (site_alloc.c) that sh_* and the preload library call.
 */
#ifndef TM_SITES_H
#define TM_SITES_H

#include "arena.h"

/* ---------------------------------------------------------------- runtime_init.c */

/* The runtime's start-up up to this layer, once per process: the arena
 * layer's (arena_layer_init: settings, jemalloc, its fork handlers), then
 * this layer's fork handlers.  Idempotent, thread-safe, called by every
 * entry point that needs it (sites_ready does the rest of the sites'
 * start-up, on first use). */
void runtime_init(void);

/* exec replaces the process image without running atexit handlers, so
 * what the layers above flush at exit (the profile) would be left
 * unfinished.  The preload library's exec functions call
 * runtime_before_exec first; the library's start-up sets the hook. */
void runtime_set_exec_hook(void (*fn)(void));
void runtime_before_exec(void);

/* ---------------------------------------------------------------- fork.c */

/* Register this layer's fork handlers (once, by runtime_init, after the
 * arena layer's). */
void fork_handlers_install(void);

/* ---------------------------------------------------------------- objects.c */

/* Loaded objects and the offset of an address inside one (for ASLR-stable
 * site keys).  Lookups are lock-free; a miss rescans dl_iterate_phdr. */
#define OBJECTS_MAX 1024
#define OBJECT_PATH_MAX 512

/* A function whose frames a stack walk skips (a wrapper, library template
 * code, _start), relative to its object's load base. */
typedef struct object_range {
    uintptr_t start, end;
} object_range_t;

typedef struct object_info {
    uintptr_t base;      /* load base (dlpi_addr) */
    uint64_t name_hash;  /* FNV-1a of the base name: the stable identity */
    bool system;         /* in TIERMEM_SKIP_OBJECTS (libc, the loader, the
                            language runtimes): never a site */
    bool symbols;        /* its file's symbols were read (then `skip` is
                            complete; else only dladdr can tell) */
    bool symtab;         /* ... from a full symbol table, locals too */
    size_t nskip;
    const object_range_t *skip; /* ascending start; metadata memory */
    char path[OBJECT_PATH_MAX];
} object_info_t;

/* Is offset (relative to o's base) inside one of o's skipped functions? */
bool object_skips(const object_info_t *o, uintptr_t offset);

/* The object holding code address addr and addr's offset in it, or -1. */
int objects_lookup(uintptr_t addr, uintptr_t *offset);
const object_info_t *objects_get(unsigned index);
/* How many objects the loader had unloaded at the last snapshot: a change
 * means cached address classifications may name a dlclose'd object. */
unsigned long long objects_unloads(void);
uint64_t objects_hash_bytes(const void *data, size_t len, uint64_t h);
/* Scan the loaded objects now (start-up), reading their symbols. */
void objects_refresh(void);
void objects_prefork(void);
void objects_postfork_parent(void);
void objects_postfork_child(void);

/* ---------------------------------------------------------------- elf_symbols.c */

#include <link.h>

/* An object file's function symbols, mapped read-only (no malloc). */
typedef struct elf_symbols {
    const unsigned char *map;
    size_t size;
    const ElfW(Sym) *sym;
    size_t nsym;
    const char *str;
    size_t strsize;
    bool full;           /* from .symtab (locals too), else .dynsym */
    bool mapped;         /* map is ours to unmap (elf_symbols_open) */
} elf_symbols_t;

/* Map path and find its symbols; false (nothing left mapped) if it is not
 * a readable regular ELF file of this machine with a symbol table. */
bool elf_symbols_open(const char *path, elf_symbols_t *e);
/* The same over an image already in memory (size bytes, aligned as an ELF
 * header), which stays the caller's: for tests and the fuzzer. */
bool elf_symbols_parse(const void *image, size_t size, elf_symbols_t *e);
void elf_symbols_close(elf_symbols_t *e);
/* Symbol i, if it is a defined function with a name: its name and its
 * [start, start + size) relative to the object's load base. */
bool elf_symbols_func(const elf_symbols_t *e, size_t i, const char **name,
                      uintptr_t *start, size_t *size);
/* The function holding addr (relative to the load base). */
bool elf_symbols_find(const elf_symbols_t *e, uintptr_t addr,
                      const char **name, uintptr_t *start);
/* Read o's symbols from its file (o->path) when it is first interned:
 * which of its functions a walk skips (o->skip: TIERMEM_WRAPPERS, the
 * C++ library's template code instantiated in it, _start), whether it has
 * a symbol table; for the executable (exe), one info line if it has none. */
void elf_object_read(object_info_t *o, bool exe);
/* The wrappers (bit i: runtime_options.wrappers[i]) that some object read
 * so far defines. */
uint32_t elf_wrappers_found(void);

/* ---------------------------------------------------------------- stack.c */

#define STACK_NO_OBJECT UINT32_MAX
#define STACK_KEY_SEED 0x746965726d656dull /* "tiermem" */

typedef struct stack_frame {
    uint32_t object;   /* objects_get index, or STACK_NO_OBJECT */
    uintptr_t offset;  /* offset in the object (or the raw address) */
} stack_frame_t;

typedef struct stack_trace {
    unsigned depth;
    stack_frame_t frame[TM_MAX_STACK_DEPTH];
} stack_trace_t;

/* The key of the calling stack, up to `depth` frames counted from the
 * frame that `caller` (the entry point's return address) returns into,
 * skipping wrapper functions and libc.  Fills trace if not NULL. */
uint64_t stack_key(const void *caller, unsigned depth, stack_trace_t *trace);
/* How many stack keys this thread computed: tests check that the compiler
 * path makes none. */
uint64_t stack_key_calls(void);
void stack_warm_up(void);
/* At start-up: one warning for each wrapper the user named (not a default
 * one) that no object loaded so far defines. */
void stack_wrappers_check(void);

/* ---------------------------------------------------------------- the types
 * of sites and of the arenas this layer makes (site_table.c, site.c) */

/* Allocation counters, updated with relaxed atomics (per site, and per
 * arena where an arena is shared by several sites). */
typedef struct site_stats {
    _Atomic uint64_t allocs, frees;
    _Atomic uint64_t bytes;  /* usable bytes ever allocated */
    _Atomic uint64_t live;   /* usable bytes allocated and not yet freed */
    _Atomic uint64_t peak;   /* highest live seen */
} site_stats_t;

/* Who allocates in an arena, which decides how a free is accounted. */
typedef enum arena_kind {
    ARENA_USER = 0,   /* made by tm_arena_create: no site accounting */
    ARENA_SITE,       /* one site's own arena: its stats are the site's */
    ARENA_SHARED,     /* several sites: per-block owners in the ledger */
} arena_kind_t;

/* What this layer keeps per arena it made: the arena's client data
 * (arena->client.data; NULL for an arena of tm_arena_create). */
typedef struct site_arena {
    arena_kind_t kind;     /* ARENA_SITE or ARENA_SHARED */
    uint32_t owner_site;   /* ARENA_SITE: the site's index */
    /* A per-site arena of a site other than site 0 (per-site layout): when
     * its site is empty, reclaim may destroy it and return its address
     * space (site_reclaim.c). */
    bool reclaimable;
    _Atomic bool prompt_purge; /* freed pages go back at once (site.c) */
    uint64_t reclaim_mark; /* site allocs + 1 at the last idle scan; under
                              the reclaim lock */
    site_stats_t stats;    /* ARENA_SHARED: the arena's own counters */
} site_arena_t;

static inline site_arena_t *site_arena_of(const tm_arena_t *a)
{
    return a->client.data;
}

/* How this layer uses arena a: ARENA_USER for one it did not make; *owner
 * (if not NULL) gets the site it was made for (an ARENA_SITE arena's, or a
 * big/small promoted site's shared one), else SITE_UNSITED. */
arena_kind_t site_arena_kind(const tm_arena_t *a, uint32_t *owner);

/* What names a site.  The three key spaces never meet: stack and explicit
 * keys have bit 63 clear, compiler ids have bits 63..62 = 10 (CC_ID_TAG),
 * so a compiler site's key is its id. */
typedef enum site_kind {
    SITE_KIND_STACK = 0,  /* a call stack (and site 0) */
    SITE_KIND_EXPLICIT,   /* an sh_* / tm_site_* int id */
    SITE_KIND_CC,         /* a compiler id (tm_cc_*): key == id */
} site_kind_t;

#define CC_ID_TAG_MASK (UINT64_C(3) << 62)
#define CC_ID_TAG (UINT64_C(2) << 62)
static inline bool cc_id_valid(uint64_t id)
{
    return (id & CC_ID_TAG_MASK) == CC_ID_TAG;
}
/* Stack and explicit keys stay out of the compiler ids' space. */
#define SITE_KEY_MASK (~(UINT64_C(1) << 63))

typedef struct site {
    uint64_t key;             /* stack key, site_explicit_key(id), or the
                                 compiler id */
    int32_t explicit_id;      /* the sh_* id, or -1 for a stack site */
    uint32_t index;           /* dense, 0 = the unsited allocations */
    site_kind_t kind;         /* from the key: see site_new */
    _Atomic(tm_arena_t *) arena;
    pthread_mutex_t lock;     /* arena creation / promotion */
    _Atomic bool promote_failed; /* big/small: no arena left; stop trying */
    stack_trace_t trace;
    site_stats_t stats;
} site_t;

/* Site 0 holds allocations below TIERMEM_SMALL_SIZE, re-entrant ones, and
 * sites past TIERMEM_MAX_SITES. */
#define SITE_UNSITED 0

/* ---------------------------------------------------------------- site_table.c */

uint64_t site_explicit_key(int id);
/* The site of this key, made (without an arena) if new; site 0 past
 * TIERMEM_MAX_SITES.  A key with bits 63..62 = 10 makes a compiler site. */
site_t *site_find(uint64_t key, int explicit_id, const stack_trace_t *trace);
/* The table with site 0 in it; false (logged) without metadata memory. */
bool site_table_init(void);
void site_table_prefork(void);
void site_table_postfork_parent(void);
void site_table_postfork_child(void);

/* The sites, [0, site_table_count); an index, once handed out, stays
 * valid.  Inline: the free path of a site arena reads its site. */
extern site_t *site_table_sites;
extern _Atomic uint32_t site_table_count;
static inline site_t *site_get(uint32_t index)
{
    return index < atomic_load_explicit(&site_table_count,
                                        memory_order_acquire)
               ? &site_table_sites[index]
               : NULL;
}
static inline uint32_t site_count(void)
{
    return atomic_load(&site_table_count);
}
/* Site 0, once start-up is complete (NULL before): the small-malloc path. */
extern _Atomic(site_t *) sites_unsited;

/* ---------------------------------------------------------------- runtime_init.c */

/* One-time set-up of sites, layouts and guidance (after runtime_init).
 * Returns false while the calling thread is itself initialising. */
bool sites_ready(void);

/* ---------------------------------------------------------------- site.c */

/* Placement (topology, default target, guidance) and the thread-arena
 * key: site.c's part of sites_ready. */
void site_arenas_init(void);
/* The arena this site allocates from on this thread (layout-dependent). */
tm_arena_t *site_arena(site_t *s);
/* Account a block of `usable` bytes now owned by site s in arena a. */
void site_account_alloc(site_t *s, tm_arena_t *a, void *ptr, size_t usable);
/* Account the free of a block of arena a (the free observer of every arena
 * this layer makes, called by arena_free).  For a reclaimable arena it
 * sets this thread's hazard, which arena_free_known (or the next
 * site_account_alloc) clears: call one of them next. */
void site_account_free(tm_arena_t *a, void *ptr, size_t usable);
/* The shared arena's and the thread-arena pool's locks across fork. */
void sites_prefork(void);
void sites_postfork_parent(void);
void sites_postfork_child(void);

/* ---------------------------------------------------------------- site_reclaim.c */

/* Return address space: destroy the arenas of empty sites that no thread
 * is using (per-site layout).  idle_only: only those that had no allocation
 * since the previous idle scan and map at least SITE_RECLAIM_IDLE_MIN
 * bytes.  Never destroys `keep`.  Returns the bytes unmapped.  Call on an
 * allocation path, outside jemalloc, holding no arena, table or tcache
 * lock (a site's own lock is fine). */
size_t site_arenas_reclaim(bool idle_only, const tm_arena_t *keep);
#define SITE_RECLAIM_IDLE_MIN ((size_t)64 << 20)
/* A new reclaimable arena (site lock held). */
void site_reclaim_register(tm_arena_t *arena);
/* The idle scan before a new site's arena is made (site lock held). */
void site_reclaim_idle(bool past_limit);
void site_reclaim_prefork(void);
void site_reclaim_postfork_parent(void);
void site_reclaim_postfork_child(void);
/* Arenas made for sites and threads, against TIERMEM_MAX_ARENAS: add
 * returns the count before; reclaim subtracts its own. */
unsigned site_arena_count_add(void);
void site_arena_count_sub(void);
unsigned site_arena_count(void);

/* ---------------------------------------------------------------- site_stats.c */

void stats_add(site_stats_t *st, size_t n);
void stats_sub(site_stats_t *st, size_t n);
/* The same for a site's own counters: allocs, frees and bytes batched per
 * thread (live and peak exact at once); read them through stats_snapshot
 * or stats_allocs, which add the batches. */
void site_stats_add(site_stats_t *st, size_t n);
void site_stats_sub(site_stats_t *st, size_t n);
uint64_t stats_allocs(const site_stats_t *st);
/* Site 0's counters, batched per thread (see site_stats.c). */
void site0_add(size_t n);
void site0_sub(size_t n);
void site_stats_init(site_stats_t *site0_stats);
/* Read counters (site 0's include every thread's unfolded counts). */
void stats_snapshot(const site_stats_t *st, tm_alloc_stats_t *out);
void site_stats_prefork(void);
void site_stats_postfork_parent(void);
void site_stats_postfork_child(void);

/* ---------------------------------------------------------------- ledger.c */

/* Which site owns each block in a shared arena (blocks of site 0 are not
 * recorded: a block with no entry belongs to site 0). */
void ledger_insert(const void *ptr, uint32_t site);
/* Remove ptr's entry; returns its site, or SITE_UNSITED if none. */
uint32_t ledger_remove(const void *ptr);
void ledger_prefork(void);
void ledger_postfork_parent(void);
void ledger_postfork_child(void);

/* ---------------------------------------------------------------- site_alloc.c */

/* glibc's rules where a program can tell, kept by both sets of entry
 * points: the interposed ones (preload/alloc_override.c) and the
 * compiler's (cc_api.c).
 * glibc aligns every block to 16 bytes (alignof(max_align_t)); jemalloc's
 * 8-byte class would not, and code storing SSE values in small blocks
 * relies on it.  glibc's smallest chunk is 32 bytes anyway. */
#define SITE_MIN_BLOCK 16
static inline size_t site_min_block(size_t size)
{
    return size < SITE_MIN_BLOCK ? SITE_MIN_BLOCK : size;
}
/* memalign's and glibc's aligned_alloc's alignment: any value is rounded
 * up to a power of two; 0 when none fits in a size_t. */
static inline size_t site_memalign_align(size_t a)
{
    if (a <= 1)
        return 1;
    if (a > (SIZE_MAX >> 1) + 1)
        return 0;
    return (size_t)1 << (64 - __builtin_clzll(a - 1));
}
/* posix_memalign's: a power of two multiple of sizeof(void *). */
static inline bool site_posix_align_ok(size_t a)
{
    return a >= sizeof(void *) && (a & (a - 1)) == 0;
}

/* The allocation entry points shared by sh_* and the malloc interposition.
 * caller = the entry point's return address (for the stack key); site_id >= 0
 * selects an explicit site instead. */
void *site_malloc(const void *caller, int site_id, size_t size);
void *site_calloc(const void *caller, int site_id, size_t n, size_t size);
void *site_realloc(const void *caller, int site_id, void *ptr, size_t size);
void *site_aligned(const void *caller, int site_id, size_t align, size_t size);
/* The same for a compiler id (cc_id_valid): no stack walk, no hashing. */
/* The id the thread's next stack-keyed allocation takes (0: none). */
void site_cc_next(uint64_t id);
/* The thread's wrapper context (tm_cc_wrap_enter/leave): while set, every
 * allocation of the thread takes it as its compiler id. */
uint64_t site_cc_wrap_enter(uint64_t id);
void site_cc_wrap_leave(uint64_t prev);
void *site_cc_malloc(uint64_t id, size_t size);
void *site_cc_calloc(uint64_t id, size_t n, size_t size);
void *site_cc_realloc(uint64_t id, void *ptr, size_t size);
void *site_cc_aligned(uint64_t id, size_t align, size_t size);
void site_free(void *ptr);
size_t site_usable_size(const void *ptr);

/* ---------------------------------------------------------------- cc_sites.c */

/* Compiler ids -> sites: a lock-free direct-mapped cache in front of
 * site_find(id), and the sites' descriptions from the objects' .note.tiermem
 * notes (doc/sites.md, "Compiler-instrumented builds"). */
#define CC_NOTE_NAME "tiermem"
#define CC_NOTE_TYPE 0x544d0001u
#define CC_NOTE_VERSION 1u
#define CC_RECORD_SIZE 32u
#define CC_HEADER_SIZE 16u

/* One site as a note describes it: strings point into the note's strtab
 * (in the loaded object) or into metadata memory, always NUL-terminated. */
typedef struct cc_desc {
    uint64_t id;
    const char *file, *function, *callee, *chain;
    uint32_t line, column;
    uint32_t object;          /* objects scanned, index of the note's */
} cc_desc_t;

/* The site of compiler id `id` (made if new); NULL if id is not one. */
site_t *cc_site(uint64_t id);
/* Its description from the loaded objects' notes, or NULL (a rescan of
 * the objects happens when the loader has loaded more since the last). */
const cc_desc_t *cc_describe(uint64_t id);
void cc_sites_prefork(void);
void cc_sites_postfork_parent(void);
void cc_sites_postfork_child(void);

/* A note's descriptor (desc, len bytes, as in memory) checked as hostile
 * data.  NULL if good, with *nsites set; else what is wrong.  each (if not
 * NULL) is called for every record of a good note. */
typedef void (*cc_record_fn)(const cc_desc_t *d, void *arg);
const char *cc_note_parse(const void *desc, size_t len, uint32_t *nsites,
                          cc_record_fn each, void *arg);
/* Walk an ELF note area (PT_NOTE contents, `align` 4 or 8): every tiermem
 * note's descriptor goes to cc_note_parse.  The object's name is only for
 * the warnings (one per bad note).  Returns the notes found. */
size_t cc_notes_walk(const void *area, size_t len, size_t align,
                     const char *object, cc_record_fn each, void *arg);

/* ---------------------------------------------------------------- cxx_new.c */

/* operator new's failure protocol: call the program's new_handler (then
 * return: the caller retries), or with none throw std::bad_alloc through
 * libstdc++ (never returns; aborts without libstdc++). */
void cxx_new_handler_or_throw(size_t size);

/* ---------------------------------------------------------------- site_report.c */

/* Write the site table to `path` (open/write, no stdio).  0 or -1 + errno. */
int site_report_write(const char *path);
/* Write it to TIERMEM_OUTPUT_DIR under the per-process name, if set. */
void site_report_at_exit(void);

/* ---------------------------------------------------------------- site_table_read.c */

/* A site table read back, strictly (tables come from other users and
 * machines).  For tools: uses malloc. */
#define SITE_TABLE_MAX_BYTES ((size_t)256 << 20)
#define SITE_TABLE_LINE_MAX 4096

typedef enum site_table_kind {
    ST_LINE_COMMENT, ST_LINE_SITE, ST_LINE_FRAME, ST_LINE_ARENA,
    ST_LINE_CC       /* format 2: a compiler site's source */
} site_table_kind_t;

typedef struct site_table_line {
    site_table_kind_t kind;
    size_t item;          /* index in sites, frames or arenas */
    const char *text;     /* the line as written, without its newline */
    size_t len;
} site_table_line_t;

typedef struct site_table_site {
    uint32_t index;
    uint64_t key;
    unsigned arena;
    tm_alloc_stats_t stats;
    int32_t explicit_id;  /* -1: a stack site */
    site_kind_t kind;     /* format 1: explicit if it has an id, else stack */
    size_t first_frame, nframes;
    /* A compiler site's "cc" line (format 2), strings as written ("?":
     * unknown), pointing into the table's fields. */
    bool has_cc;
    const char *cc_file, *cc_function, *cc_callee, *cc_chain;
    uint32_t cc_line, cc_column;
} site_table_site_t;

typedef struct site_table_frame {
    unsigned index;       /* 0, 1, ... within its site */
    size_t site;          /* index in sites */
    const char *object;   /* an absolute path, or NULL for "?" */
    uint64_t offset;
    const char *function; /* as written: "name+0x12" or "?" */
    size_t function_at;   /* where that field starts in the line's text */
} site_table_frame_t;

typedef struct site_table_arena {
    unsigned id;
    bool shared;
    uint64_t nodes;
    tm_alloc_stats_t stats;
} site_table_arena_t;

typedef struct site_table {
    unsigned version;     /* the header's format: 1 or 2 */
    char *text, *fields;  /* private copies: lines; the same split in fields */
    site_table_line_t *lines;
    size_t nlines;
    site_table_site_t *sites;
    size_t nsites;
    site_table_frame_t *frames;
    size_t nframes;
    site_table_arena_t *arenas;
    size_t narenas;
    char error[320];      /* after a failure: "name:line: what" */
} site_table_t;

/* 0, or -1 with errno and t->error naming the first bad line; on failure
 * nothing is left allocated.  Free a table with site_table_free. */
int site_table_parse(const char *text, size_t len, const char *name,
                     site_table_t *t);
int site_table_read(const char *path, site_table_t *t);
void site_table_free(site_table_t *t);
/* The reader's rules for a frame's object and function fields, for the
 * writer (site_report.c), which must never write a table the reader
 * refuses.  Neither allocates. */
#define SITE_TABLE_SYMBOL_MAX 1024
bool site_table_object_ok(const char *path);
bool site_table_function_ok(const char *fn);
/* "?" or symbol names joined by ',' (a compiler site's wrapper chain). */
bool site_table_chain_ok(const char *chain);
/* Why an object path is refused (site_table_fields.c). */
typedef enum object_problem {
    OBJECT_OK,
    OBJECT_LEADING,  /* starts with '-' or '@' */
    OBJECT_BAD_BYTE, /* at *bad */
    OBJECT_TOO_LONG,
} object_problem_t;
object_problem_t site_table_object_problem(const char *path, size_t *bad);

/* ---------------------------------------------------------------- guidance
 *
 * A guidance file maps sites to places; see doc/guidance.md.  Format 1:
 *
 *     tiermem-guidance 1          first non-comment line
 *     # comment; blank lines are ignored
 *     key 0x9f3c0e1d2a4b5c6d tier 0
 *     key 9f3c0e1d2a4b5c6d node 1 bind
 *     id 12 node 1 preferred        (explicit site ids from sh_* calls)
 *     cc 0x8000000000000abc tier 1  (a compiler id: the same as "key")
 */
typedef struct guidance_rule {
    bool by_id;        /* selector is an explicit site id, else a stack key */
    uint64_t key;      /* stack key, or the id when by_id */
    target_t target;
} guidance_rule_t;

typedef struct guidance_file {
    size_t count, cap;
    guidance_rule_t *rules;   /* meta_alloc memory, sorted for lookup */
    size_t rejected;             /* malformed lines skipped */
} guidance_t;

/* Parse text[0..len) (need not be NUL-terminated) into g (zeroed by the
 * caller).  A malformed line logs "name:line: what is wrong" and is skipped;
 * a missing or wrong header rejects the whole file.  A later rule for the
 * same selector replaces an earlier one.  Returns the number of rules kept,
 * or -1 if the file as a whole was rejected (g is then empty). */
long guidance_parse(const char *text, size_t len, const char *name,
                       guidance_t *g);

/* Read and parse a file (read with open/read into meta_alloc memory).
 * Returns as guidance_parse; -1 also when the file cannot be read (logged
 * with errno). */
long guidance_load(const char *path, guidance_t *g);

/* The rule for a stack key or an explicit id, or NULL. */
const guidance_rule_t *guidance_find(const guidance_t *g,
                                           bool by_id, uint64_t key);

void guidance_free(guidance_t *g);

#endif /* TM_SITES_H */
