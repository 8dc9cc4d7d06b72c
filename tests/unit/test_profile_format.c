/*
 * test_profile_format.c -- the profile file (profiler/profile_write.c and
 * profile_read.c) written, torn, killed and read back.
 *
 * A generator makes random intervals: arenas and sites appear over time,
 * counters grow, many rows repeat the last values with no samples (which
 * the writer may leave out), residency is measured now and then.  The test
 * keeps its own model of what the file must say -- the rows not left out,
 * the heat from prof_heat_update, the totals -- and compares it with what
 * the reader returns, field by field.  Then: a .partial torn inside the
 * last interval, a writer killed with SIGKILL, finish and abandon, and bad
 * files, whose "name:line:" messages are read from the captured log,
 * among them counts whose totals would wrap past 2^64 - 1.
 */
#include "config.h"

#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "profiler.h"
#include "../tm_test.h"
#include "../observe.h"

#define MAX_ARENA 40  /* ids 1..MAX_ARENA in the generator */
#define MAX_SITE 60   /* indexes 0..MAX_SITE - 1 */
#define NODES 3

static char dir[64];
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_serial = 1; /* like tm_arena_t.serial: never reused */

static uint64_t rnd(uint64_t n)
{
    return tm_test_rand(&rng) % n;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void path_in_dir(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static prof_header_t make_header(void)
{
    prof_header_t h;
    memset(&h, 0, sizeof h);
    snprintf(h.exe, sizeof h.exe, "my prog v2");
    h.pid = 4321;
    h.rank = 3;
    snprintf(h.sampler, sizeof h.sampler, "uffd");
    snprintf(h.sampler_detail, sizeof h.sampler_detail,
             "event a b  c period 7 counts ops");
    h.interval_ns = 100000000;
    h.halflife = 3.7; /* not exact in binary: %.17g must carry it */
    h.start_unix_ms = 1700000000123ull;
    h.nnodes = 2;
    h.nodes[0] = (prof_node_t){0, 0, 1ull << 34};
    h.nodes[1] = (prof_node_t){1, 1, UINT64_MAX};
    return h;
}

/* ------------------------------------------------------------------ */
/* The generator and the model of the file                              */
/* ------------------------------------------------------------------ */

typedef struct model_arena {
    bool live, seen, written;
    prof_arena_row_t cur, last; /* cur: generated now; last: as written */
    double heat;
    uint64_t heat_serial;       /* the arena the heat belongs to */
    uint64_t samples, peak_mapped, last_resident;
} model_arena_t;

typedef struct model_site {
    bool live, seen, written;
    prof_site_row_t cur, last;
    double heat;
    uint64_t samples, peak;
} model_site_t;

typedef struct model {
    double decay;
    model_arena_t arena[MAX_ARENA + 1];
    model_site_t site[MAX_SITE];
    size_t nintervals;
    size_t clones;           /* new arenas whose row only the serial tells */
    size_t resets;           /* new arenas in an id that had heat */
    prof_interval_t *expect; /* the rows the reader must return */
    prof_interval_t gen;     /* the interval handed to the writer */
    prof_arena_row_t arows[MAX_ARENA];
    prof_residency_row_t rrows[MAX_ARENA * NODES];
    prof_site_row_t srows[MAX_SITE];
} model_t;

static void grow_stats(tm_alloc_stats_t *s)
{
    uint64_t n = 1 + rnd(50), sz = 64 * (1 + rnd(1000));
    s->allocs += n;
    s->bytes += n * sz;
    s->frees += rnd(n + 1);
    s->live = rnd(s->bytes + 1);
    if (rnd(40) == 0)
        s->bytes = UINT64_MAX - rnd(10); /* the largest numbers too */
    if (s->live > s->peak)
        s->peak = s->live;
}

static bool stats_eq(const tm_alloc_stats_t *a, const tm_alloc_stats_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* A new arena in id: a new serial.  Sometimes every other field is what
 * the file last said about the id's old arena: only the serial tells. */
static bool gen_new_arena(model_t *m, model_arena_t *a, unsigned id)
{
    prof_arena_row_t *r = &a->cur;
    a->live = true;
    if (a->written && rnd(3) == 0) {
        *r = a->last;
        r->serial = next_serial++;
        r->samples = 0;
        r->resident_valid = false;
        m->clones++;
        return true;
    }
    *r = (prof_arena_row_t){.id = id, .serial = next_serial++,
                            .kind = (uint8_t)rnd(3),
                            .owner_site = (uint32_t)rnd(MAX_SITE),
                            .placement = {TM_MODE_BIND, 1}};
    return false;
}

static void gen_arena(model_t *m, model_arena_t *a, unsigned id,
                      prof_residency_row_t *rr, size_t *nres)
{
    prof_arena_row_t *r = &a->cur;
    if (!a->live && gen_new_arena(m, a, id))
        return;
    r->samples = rnd(3) == 0 ? rnd(1000) : 0;
    r->resident_valid = false;
    /* changes without samples: each alone must still be written */
    if (rnd(6) == 0)
        r->mapped += 4096 * (1 + rnd(100));
    if (rnd(6) == 0)
        grow_stats(&r->stats);
    if (rnd(30) == 0)
        r->owner_site++;
    if (rnd(10) == 0)
        r->placement = (tm_placement_t){(tm_mode_t)(1 + rnd(3)),
                                        1 + rnd(7)};
    if (rnd(5) == 0) {
        r->resident_valid = true;
        r->resident = 0;
        for (unsigned node = 0; node < NODES; node++)
            if (rnd(2)) {
                uint64_t b = 4096 * rnd(1000);
                rr[(*nres)++] = (prof_residency_row_t){id, node, b};
                r->resident += b;
            }
    }
}

static void gen_site(model_site_t *s, uint32_t index)
{
    prof_site_row_t *r = &s->cur;
    if (!s->live) {
        s->live = true;
        *r = (prof_site_row_t){.index = index, .key = tm_test_rand(&rng),
                               .explicit_id = rnd(2) ? -1 : (int32_t)rnd(99),
                               .arena = (unsigned)rnd(MAX_ARENA + 1)};
    }
    r->samples = rnd(3) == 0 ? rnd(500) : 0;
    if (rnd(4) == 0)
        grow_stats(&r->stats);
    if (rnd(15) == 0)
        r->arena = (unsigned)rnd(MAX_ARENA + 1);
    if (rnd(15) == 0)
        r->estimated = !r->estimated;
}

static bool arena_unchanged(const model_arena_t *a)
{
    const prof_arena_row_t *c = &a->cur, *l = &a->last;
    return a->written && c->serial == l->serial && c->samples == 0 &&
           !c->resident_valid && c->kind == l->kind && c->owner_site == l->owner_site &&
           c->placement.mode == l->placement.mode &&
           c->placement.nodes == l->placement.nodes &&
           c->mapped == l->mapped && stats_eq(&c->stats, &l->stats);
}

static bool site_unchanged(const model_site_t *s)
{
    const prof_site_row_t *c = &s->cur, *l = &s->last;
    return s->written && c->samples == 0 && c->arena == l->arena &&
           c->estimated == l->estimated && stats_eq(&c->stats, &l->stats);
}

/* Build interval seq in m->gen and its expected reading in m->expect. */
static void gen_interval(model_t *m, uint64_t seq)
{
    prof_interval_t *g = &m->gen, *e = &m->expect[m->nintervals++];
    *g = (prof_interval_t){.seq = seq, .t_start_ns = seq * 1000,
                           .t_end_ns = seq * 1000 + 999,
                           .arenas = m->arows, .residency = m->rrows,
                           .sites = m->srows};
    *e = *g;
    e->arenas = calloc(MAX_ARENA, sizeof *e->arenas);
    e->residency = calloc(MAX_ARENA * NODES, sizeof *e->residency);
    e->sites = calloc(MAX_SITE, sizeof *e->sites);
    for (unsigned id = 1; id <= MAX_ARENA; id++) {
        model_arena_t *a = &m->arena[id];
        /* created now and then, destroyed sometimes; a new arena in a
         * used id has a new serial */
        if (a->live && rnd(12) == 0)
            a->live = false;
        else if (a->live || rnd(4) == 0) {
            gen_arena(m, a, id, m->rrows, &g->nresidency);
            m->arows[g->narenas++] = a->cur;
            g->samples += a->cur.samples;
            a->seen = true;
            a->samples += a->cur.samples;
            if (a->cur.mapped > a->peak_mapped)
                a->peak_mapped = a->cur.mapped;
            if (a->cur.resident_valid)
                a->last_resident = a->cur.resident;
            if (!arena_unchanged(a)) {
                e->arenas[e->narenas++] = a->cur;
                a->last = a->cur;
                a->written = true;
            }
        }
    }
    for (uint32_t i = 0; i < MAX_SITE; i++) {
        model_site_t *s = &m->site[i];
        if ((s->live || rnd(8) == 0) && rnd(20) != 0) {
            gen_site(s, i);
            m->srows[g->nsites++] = s->cur;
            s->seen = true;
            s->samples += s->cur.samples;
            if (s->cur.stats.peak > s->peak)
                s->peak = s->cur.stats.peak;
            if (!site_unchanged(s)) {
                e->sites[e->nsites++] = s->cur;
                s->last = s->cur;
                s->written = true;
            }
        }
    }
    g->unattributed = rnd(100);
    g->lost = rnd(5);
    g->samples += g->unattributed;
    e->samples = g->samples, e->unattributed = g->unattributed;
    e->lost = g->lost;
    e->nresidency = g->nresidency;
    memcpy(e->residency, g->residency, g->nresidency * sizeof *g->residency);
    /* heat: every arena and site seen so far decays or heats */
    for (unsigned id = 1; id <= MAX_ARENA; id++) {
        model_arena_t *a = &m->arena[id];
        bool in = false;
        for (size_t k = 0; k < g->narenas; k++)
            in |= g->arenas[k].id == id;
        /* a new arena's heat starts from 0, as attribution.c does */
        if (in && a->heat_serial != a->cur.serial) {
            m->resets += a->heat > 0;
            a->heat = 0;
            a->heat_serial = a->cur.serial;
        }
        if (a->seen)
            a->heat = prof_heat_update(a->heat, in ? a->cur.samples : 0,
                                       m->decay);
        for (size_t k = 0; k < e->narenas; k++)
            if (e->arenas[k].id == id)
                e->arenas[k].heat = a->heat;
    }
    for (uint32_t i = 0; i < MAX_SITE; i++) {
        model_site_t *s = &m->site[i];
        bool in = false;
        for (size_t k = 0; k < g->nsites; k++)
            in |= g->sites[k].index == i;
        if (s->seen)
            s->heat = prof_heat_update(s->heat, in ? s->cur.samples : 0,
                                       m->decay);
        for (size_t k = 0; k < e->nsites; k++)
            if (e->sites[k].index == i)
                e->sites[k].heat = s->heat;
    }
}

static void model_free(model_t *m)
{
    for (size_t i = 0; i < m->nintervals; i++) {
        free(m->expect[i].arenas);
        free(m->expect[i].residency);
        free(m->expect[i].sites);
    }
    free(m->expect);
    free(m);
}

/* ------------------------------------------------------------------ */
/* Comparing what was read with the model                               */
/* ------------------------------------------------------------------ */

static bool heat_eq(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

static void check_arena_rows(const prof_interval_t *got,
                             const prof_interval_t *want)
{
    REQUIRE_VOID(got->narenas == want->narenas);
    for (size_t k = 0; k < want->narenas; k++) {
        const prof_arena_row_t *g = &got->arenas[k], *w = &want->arenas[k];
        CHECK_MSG(g->id == w->id && g->serial == w->serial &&
                      g->kind == w->kind &&
                      g->owner_site == w->owner_site &&
                      g->placement.mode == w->placement.mode &&
                      g->placement.nodes == w->placement.nodes &&
                      g->samples == w->samples && g->mapped == w->mapped &&
                      stats_eq(&g->stats, &w->stats) &&
                      g->resident_valid == w->resident_valid &&
                      (!w->resident_valid || g->resident == w->resident),
                  "interval %llu arena row %zu (id %u) differs",
                  (unsigned long long)want->seq, k, w->id);
        CHECK_MSG(heat_eq(g->heat, w->heat), "arena %u heat %.17g want %.17g",
                  w->id, g->heat, w->heat);
    }
}

static void check_other_rows(const prof_interval_t *got,
                             const prof_interval_t *want)
{
    REQUIRE_VOID(got->nresidency == want->nresidency);
    for (size_t k = 0; k < want->nresidency; k++)
        CHECK(got->residency[k].arena == want->residency[k].arena &&
              got->residency[k].node == want->residency[k].node &&
              got->residency[k].bytes == want->residency[k].bytes);
    REQUIRE_VOID(got->nsites == want->nsites);
    for (size_t k = 0; k < want->nsites; k++) {
        const prof_site_row_t *g = &got->sites[k], *w = &want->sites[k];
        CHECK_MSG(g->index == w->index && g->key == w->key &&
                      g->explicit_id == w->explicit_id &&
                      g->arena == w->arena && g->samples == w->samples &&
                      g->estimated == w->estimated &&
                      stats_eq(&g->stats, &w->stats),
                  "interval %llu site row %zu (index %u) differs",
                  (unsigned long long)want->seq, k, w->index);
        CHECK_MSG(heat_eq(g->heat, w->heat), "site %u heat %.17g want %.17g",
                  w->index, g->heat, w->heat);
    }
}

static void check_totals(const profile_t *p, const model_t *m)
{
    size_t na = 0, ns = 0;
    for (unsigned id = 1; id <= MAX_ARENA; id++) {
        const model_arena_t *a = &m->arena[id];
        if (!a->seen)
            continue;
        REQUIRE_VOID(na < p->narenas);
        const struct prof_arena_total *t = &p->arenas[na++];
        CHECK_MSG(t->id == id && t->kind == a->cur.kind &&
                      t->samples == a->samples &&
                      t->peak_mapped == a->peak_mapped &&
                      t->last_resident == a->last_resident,
                  "arena %u totals differ", id);
    }
    CHECK(na == p->narenas);
    for (uint32_t i = 0; i < MAX_SITE; i++) {
        const model_site_t *s = &m->site[i];
        if (!s->seen)
            continue;
        REQUIRE_VOID(ns < p->nsites);
        const struct prof_site_total *t = &p->sites[ns++];
        tm_alloc_stats_t want = s->cur.stats;
        want.peak = s->peak;
        CHECK_MSG(t->index == i && t->key == s->cur.key &&
                      t->explicit_id == s->cur.explicit_id &&
                      t->arena == s->cur.arena && t->samples == s->samples &&
                      stats_eq(&t->stats, &want),
                  "site %u totals differ", i);
    }
    CHECK(ns == p->nsites);
}

static void check_header(const prof_header_t *got, const prof_header_t *want)
{
    CHECK(strcmp(got->exe, want->exe) == 0);
    CHECK(got->pid == want->pid && got->rank == want->rank);
    CHECK(strcmp(got->sampler, want->sampler) == 0);
    CHECK(strcmp(got->sampler_detail, want->sampler_detail) == 0);
    CHECK(got->interval_ns == want->interval_ns);
    CHECK(got->halflife == want->halflife); /* exact: %.17g round-trips */
    CHECK(got->start_unix_ms == want->start_unix_ms);
    CHECK(got->nnodes == want->nnodes &&
          memcmp(got->nodes, want->nodes,
                 want->nnodes * sizeof *want->nodes) == 0);
}

static void check_profile(const profile_t *p, const model_t *m, size_t n)
{
    REQUIRE_VOID(p->nintervals == n);
    for (size_t i = 0; i < n; i++) {
        const prof_interval_t *g = &p->intervals[i], *w = &m->expect[i];
        CHECK(g->seq == w->seq && g->t_start_ns == w->t_start_ns &&
              g->t_end_ns == w->t_end_ns && g->samples == w->samples &&
              g->unattributed == w->unattributed && g->lost == w->lost);
        check_arena_rows(g, w);
        check_other_rows(g, w);
    }
}

/* ------------------------------------------------------------------ */
/* Cases                                                                */
/* ------------------------------------------------------------------ */

static model_t *model_new(size_t n)
{
    model_t *m = calloc(1, sizeof *m);
    m->expect = calloc(n, sizeof *m->expect);
    m->decay = prof_heat_decay(make_header().halflife);
    return m;
}

static void test_round_trip(void)
{
    size_t n = (size_t)(300 * tm_test_scale());
    n = n < 20 ? 20 : n;
    char path[128], partial[160];
    path_in_dir(path, sizeof path, "rt.txt");
    snprintf(partial, sizeof partial, "%s.partial", path);
    prof_header_t h = make_header();
    model_t *m = model_new(n);
    /* the writer runs on the profiling thread: it must not malloc */
    bool counted = malloc_is_counted();
    uint64_t mallocd = 0, a0 = thread_allocated();
    prof_writer_t *w = profile_writer_open(path, &h);
    mallocd += thread_allocated() - a0;
    REQUIRE_VOID(w != NULL);
    size_t written = 0, omitted = 0;
    for (size_t i = 0; i < n; i++) {
        gen_interval(m, i + 1);
        written += m->expect[i].narenas + m->expect[i].nsites;
        omitted += m->gen.narenas + m->gen.nsites - m->expect[i].narenas -
                   m->expect[i].nsites;
        a0 = thread_allocated();
        CHECK(profile_writer_interval(w, &m->gen) == 0);
        mallocd += thread_allocated() - a0;
    }
    CHECK_MSG(omitted > 0 && written > 0, "omitted %zu written %zu", omitted,
              written);
    CHECK_MSG(m->clones > 0 && m->resets > 0, "clones %zu resets %zu",
              m->clones, m->resets);
    CHECK(!file_exists(path) && file_exists(partial));
    profile_t p;
    CHECK(profile_read(partial, &p) == 0); /* readable while running */
    CHECK(!p.complete);
    check_profile(&p, m, n);
    profile_free(&p);

    CHECK(!p.has_sampler_totals);
    const prof_sampler_totals_t tot = {1, 2, 3, 4, 5, UINT64_MAX};
    a0 = thread_allocated();
    profile_writer_set_totals(w, &tot);
    CHECK(profile_writer_finish(w) == 0);
    mallocd += thread_allocated() - a0;
    CHECK_MSG(!counted || mallocd == 0, "the writer malloc'd %llu bytes",
              (unsigned long long)mallocd);
    CHECK(file_exists(path) && !file_exists(partial));
    REQUIRE_VOID(profile_read(path, &p) == 0);
    CHECK(p.complete && p.has_sampler_totals &&
          memcmp(&p.sampler_totals, &tot, sizeof tot) == 0);
    check_header(&p.header, &h);
    check_profile(&p, m, n);
    check_totals(&p, m);
    profile_free(&p);
    CHECK(p.intervals == NULL && p.nintervals == 0);
    model_free(m);
}

/* Write n generated intervals; the writer is left open in *out. */
static model_t *write_intervals(const char *path, size_t n,
                                prof_writer_t **out)
{
    prof_header_t h = make_header();
    model_t *m = model_new(n);
    prof_writer_t *w = profile_writer_open(path, &h);
    CHECK(w != NULL);
    for (size_t i = 0; w != NULL && i < n; i++) {
        gen_interval(m, i + 1);
        CHECK(profile_writer_interval(w, &m->gen) == 0);
    }
    *out = w;
    return m;
}

static model_t *write_abandoned(const char *path, size_t n)
{
    prof_writer_t *w;
    model_t *m = write_intervals(path, n, &w);
    profile_writer_abandon(w);
    return m;
}

/* Offset of the start of the last line beginning with `word`. */
static off_t last_line_at(const char *path, const char *word)
{
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY);
    ssize_t len = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (len <= 0)
        return -1;
    buf[len] = '\0';
    off_t at = -1;
    size_t wl = strlen(word);
    for (ssize_t i = 0; i < len; i++)
        if ((i == 0 || buf[i - 1] == '\n') &&
            strncmp(buf + i, word, wl) == 0)
            at = i;
    return at;
}

static void test_abandon_and_torn(void)
{
    char path[128], partial[160];
    path_in_dir(path, sizeof path, "torn.txt");
    snprintf(partial, sizeof partial, "%s.partial", path);
    model_t *m = write_abandoned(path, 12);
    CHECK(!file_exists(path) && file_exists(partial)); /* no rename */
    profile_t p;
    REQUIRE_VOID(profile_read(partial, &p) == 0);
    CHECK(!p.complete);
    check_profile(&p, m, 12);
    profile_free(&p);

    /* cut the last interval after its start line, mid-line */
    off_t last = last_line_at(partial, "interval ");
    struct stat st;
    REQUIRE_VOID(last > 0 && stat(partial, &st) == 0 && st.st_size > last);
    off_t cuts[] = {last + 3, last + (st.st_size - last) / 2, st.st_size - 1,
                    last};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        REQUIRE_VOID(truncate(partial, cuts[c]) == 0);
        CHECK(profile_read(partial, &p) == 0);
        CHECK(!p.complete);
        check_profile(&p, m, 11);
        profile_free(&p);
    }
    model_free(m);
}

/* A torn trailer: every interval, but not complete. */
static void test_torn_trailer(void)
{
    char path[128];
    path_in_dir(path, sizeof path, "trailer.txt");
    prof_header_t h = make_header();
    model_t *m = model_new(3);
    prof_writer_t *w = profile_writer_open(path, &h);
    REQUIRE_VOID(w != NULL);
    for (size_t i = 0; i < 3; i++) {
        gen_interval(m, i + 1);
        CHECK(profile_writer_interval(w, &m->gen) == 0);
    }
    CHECK(profile_writer_finish(w) == 0);
    struct stat st;
    REQUIRE_VOID(stat(path, &st) == 0 && truncate(path, st.st_size - 1) == 0);
    profile_t p;
    CHECK(profile_read(path, &p) == 0);
    CHECK(!p.complete);
    check_profile(&p, m, 3);
    profile_free(&p);
    model_free(m);
}

static void test_killed_writer(void)
{
    char path[128], partial[160];
    path_in_dir(path, sizeof path, "killed.txt");
    snprintf(partial, sizeof partial, "%s.partial", path);
    int pipefd[2];
    REQUIRE_VOID(pipe(pipefd) == 0);
    uint64_t seed = rng;
    pid_t pid = fork();
    REQUIRE_VOID(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        prof_writer_t *w;
        write_intervals(path, 3, &w); /* and never finished */
        char c = 'k';
        if (write(pipefd[1], &c, 1) != 1)
            _exit(3);
        for (;;)
            pause(); /* the writer is still open when the kill comes */
    }
    close(pipefd[1]);
    char c;
    CHECK(read(pipefd[0], &c, 1) == 1);
    close(pipefd[0]);
    CHECK(kill(pid, SIGKILL) == 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
    rng = seed; /* the same intervals the child generated */
    model_t *m = model_new(3);
    for (size_t i = 0; i < 3; i++)
        gen_interval(m, i + 1);
    profile_t p;
    CHECK(!file_exists(path));
    REQUIRE_VOID(profile_read(partial, &p) == 0);
    CHECK(!p.complete && p.nintervals == 3);
    check_profile(&p, m, 3);
    profile_free(&p);
    model_free(m);
}

/* More than one 64 KiB buffer in one interval. */
static void test_big_interval(void)
{
    char path[128];
    path_in_dir(path, sizeof path, "big.txt");
    prof_header_t h = make_header();
    prof_writer_t *w = profile_writer_open(path, &h);
    REQUIRE_VOID(w != NULL);
    prof_interval_t iv = {.seq = 1, .t_end_ns = 5,
                          .narenas = TM_MAX_ARENAS};
    iv.arenas = calloc(TM_MAX_ARENAS, sizeof *iv.arenas);
    REQUIRE_VOID(iv.arenas != NULL);
    for (unsigned i = 0; i < TM_MAX_ARENAS; i++)
        iv.arenas[i] = (prof_arena_row_t){.id = i + 1, .samples = i,
                                          .mapped = UINT64_MAX - i,
                                          .kind = ARENA_SHARED};
    CHECK(profile_writer_interval(w, &iv) == 0);
    iv.seq = 2; /* nothing changed and no samples: no rows at all */
    for (unsigned i = 0; i < TM_MAX_ARENAS; i++)
        iv.arenas[i].samples = 0;
    CHECK(profile_writer_interval(w, &iv) == 0);
    CHECK(profile_writer_finish(w) == 0);
    profile_t p;
    REQUIRE_VOID(profile_read(path, &p) == 0);
    CHECK(p.complete && p.nintervals == 2 && p.narenas == TM_MAX_ARENAS);
    if (p.nintervals == 2) {
        CHECK(p.intervals[0].narenas == TM_MAX_ARENAS);
        CHECK(p.intervals[1].narenas == 0);
        CHECK(p.intervals[0].arenas[TM_MAX_ARENAS - 1].mapped ==
              UINT64_MAX - (TM_MAX_ARENAS - 1));
    }
    if (p.narenas == TM_MAX_ARENAS)
        CHECK(p.arenas[100].samples == 100 && p.arenas[100].id == 101);
    profile_free(&p);
    free(iv.arenas);
}

/* A bad interval is refused whole: the file stays readable. */
static void test_writer_refuses(void)
{
    char path[128];
    path_in_dir(path, sizeof path, "refuse.txt");
    prof_header_t h = make_header();
    prof_writer_t *w = profile_writer_open(path, &h);
    REQUIRE_VOID(w != NULL);
    prof_arena_row_t rows[2] = {{.id = 5, .samples = 1}, {.id = 3}};
    prof_interval_t iv = {.seq = 1, .narenas = 2, .arenas = rows};
    log_reset(TM_LOG_WARN);
    errno = 0;
    CHECK(profile_writer_interval(w, &iv) == -1 && errno == EINVAL);
    CHECK(log_count("error", "refuse.txt.partial", "interval 1", NULL) == 1);
    iv.narenas = 1;
    CHECK(profile_writer_interval(w, &iv) == 0);
    errno = 0;
    CHECK(profile_writer_interval(w, &iv) == -1 && errno == EINVAL); /* seq */
    CHECK(profile_writer_finish(w) == 0);
    profile_t p;
    CHECK(profile_read(path, &p) == 0 && p.nintervals == 1 && p.complete);
    profile_free(&p);
    errno = 0;
    h.nnodes = TM_MAX_NODES + 1;
    CHECK(profile_writer_open(path, &h) == NULL && errno == EINVAL);
    h.nnodes = 0;
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/none/x.txt", dir);
    errno = 0;
    CHECK(profile_writer_open(nodir, &h) == NULL && errno == ENOENT);
    CHECK(log_count("error", "none/x.txt.partial", NULL) == 1);
}

#define HEAD_REST "exe a b\npid 1\nrank -1\nsampler -\ninterval_ns 1\n" \
                  "halflife 4\nstart_unix_ms 0\n"
#define HEAD "tiermem-profile 1\n" HEAD_REST
#define HEAD2 "tiermem-profile 2\n" HEAD_REST
#define HEAD3 "tiermem-profile 3\n" HEAD_REST

/* A bad text: -1, EINVAL, one error naming bad.txt:line. */
static void expect_bad(const char *text, unsigned line, const char *words)
{
    char where[32];
    snprintf(where, sizeof where, "bad.txt:%u:", line);
    log_reset(TM_LOG_WARN);
    profile_t p;
    memset(&p, 0xa5, sizeof p);
    errno = 0;
    int rc = profile_parse(text, strlen(text), "bad.txt", &p);
    CHECK_MSG(rc == -1 && errno == EINVAL, "accepted: %s", text);
    CHECK_MSG(log_count("error", where, words, NULL) == 1 &&
                  log_count("error", NULL) == 1,
              "want one error at %s with \"%s\", log: %s", where, words,
              log_text());
    CHECK(p.intervals == NULL && p.sites == NULL && p.arenas == NULL &&
          p.nintervals == 0);
}

static void test_bad_inputs(void)
{
    expect_bad("tiermem-sites 1\n", 1, "not a tiermem profile");
    expect_bad("tiermem-profile 4\nexe x\n", 1, "newer");
    /* version 3's lines: not in older files, once, in their places */
    expect_bad(HEAD2 "sampler_detail x\n", 9, "sampler_detail");
    expect_bad(HEAD2 "sampler_totals 1 2 3 4 5 6\ncomplete 0\n", 9,
               "sampler_totals");
    expect_bad(HEAD3 "sampler_detail x\nsampler_detail y\n", 10, "second");
    expect_bad(HEAD3 "sampler_totals 1 2 3 4 5\n", 9, "7");
    expect_bad(HEAD3 "sampler_totals 1 2 3 4 5 x\n", 9, "64 bits");
    expect_bad(HEAD3 "sampler_totals 1 2 3 4 5 6\nsampler_totals 1 2 3 4 5 "
                     "6\n", 10, "second");
    expect_bad(HEAD3 "interval 1 0 1 0 0 0\nsampler_totals 1 2 3 4 5 6\n",
               10, "inside");
    expect_bad(HEAD3 "complete 0\nsampler_totals 1 2 3 4 5 6\n", 10,
               "after the trailer");
    /* version 1 has no serial in arena rows, version 2 must have it */
    expect_bad(HEAD2 "interval 1 0 1 0 0 0\narena 4 user 0 bind 0x1 0 0 0 "
                     "0 0 0 0 -\n", 10, "15");
    expect_bad(HEAD "interval 1 0 1 0 0 0\narena 4 user 0 bind 0x1 0 0 0 "
                    "0 0 0 0 - 9\n", 10, "14");
    expect_bad(HEAD2 "interval 1 0 1 0 0 0\narena 4 user 0 bind 0x1 0 0 0 "
                     "0 0 0 0 - x\n", 10, "arena");
    expect_bad("tiermem-profile 1\nexe x\nhalflife 4,5\n", 3, "finite");
    expect_bad("tiermem-profile 1\nexe x\nhalflife inf\n", 3, "finite");
    expect_bad("tiermem-profile x\n", 1, "version");
    expect_bad("", 1, "empty");
    expect_bad(HEAD "garbage here\n", 9, "garbage");
    expect_bad(HEAD "interval 1 0 1 18446744073709551616 0 0\n", 9,
               "64 bits");
    expect_bad(HEAD "interval 1 0 1 0 0 0\narena 4096 user 0 bind 0x1 0 0 "
                    "0 0 0 0 0 -\n", 10, "arena id");
    expect_bad(HEAD "interval 1 0 1 0 0 0\nsite 3 0 0 0 0 0 0 0 0\n", 10,
               "sitedef");
    expect_bad(HEAD "interval 1 0 1 0 0 0\nend 2\n", 10, "end line");
    expect_bad(HEAD "interval 1 0 1 0 0 0\ninterval 2 0 1 0 0 0\n", 10,
               "no end line");
    expect_bad(HEAD "interval 1 0 1 0 0 0\nend 1\ncomplete 2\n", 11,
               "trailer");
    expect_bad(HEAD "complete 0\nend 1\n", 10, "after the trailer");
    expect_bad(HEAD "interval 1 0 1 0 0 0\nresident 1 0 5\n", 10,
               "resident");
    expect_bad("tiermem-profile 1\nexe x\ninterval 1 0 1 0 0 0\n", 3,
               "no \"pid\"");
    expect_bad(HEAD "halflife 3\n", 9, "second");
    expect_bad("tiermem-profile 1\nexe x\nhalflife nan\n", 3, "finite");
    expect_bad("tiermem-profile 1\nexe x\nhalflife 2\r5\n", 3, "finite");

    /* the same header, good: zero intervals, not complete, then complete */
    profile_t p;
    log_reset(TM_LOG_WARN);
    CHECK(profile_parse(HEAD, strlen(HEAD), "ok", &p) == 0);
    CHECK(!p.complete && p.nintervals == 0 && p.header.rank == -1 &&
          strcmp(p.header.exe, "a b") == 0 && p.header.sampler[0] == '\0');
    profile_free(&p);
    static const char done[] = HEAD "# a comment\n\ncomplete 0\n";
    CHECK(profile_parse(done, strlen(done), "ok", &p) == 0 && p.complete);
    profile_free(&p);
    /* base/text.c's '\r' rule: a CRLF profile reads as LF; a '\r' inside
     * a line is a byte of its field */
    static const char crlf[] = "tiermem-profile 1\r\nexe a b\r\npid 7\r\n"
        "rank -1\r\nsampler -\r\ninterval_ns 1\r\nhalflife 2.5\r\n"
        "start_unix_ms 3\r\ncomplete 0\r\n";
    CHECK(profile_parse(crlf, strlen(crlf), "ok", &p) == 0 && p.complete &&
          strcmp(p.header.exe, "a b") == 0 && p.header.pid == 7 &&
          p.header.halflife == 2.5 && p.header.start_unix_ms == 3);
    profile_free(&p);
    CHECK(log_count("error", NULL) == 0);

    errno = 0;
    char missing[128];
    path_in_dir(missing, sizeof missing, "no-such-file");
    CHECK(profile_read(missing, &p) == -1 && errno == ENOENT);
    CHECK(log_count("error", "no-such-file", NULL) == 1);
}

/* Counts near 2^64 in several rows: each fits, a sum past 2^64 - 1 is
 * refused at the end line where it would wrap (it once printed
 * 18446744073709551613), a sum of exactly 2^64 - 1 is kept. */
#define U64_MAX_S "18446744073709551615"
static void test_wrapping_totals(void)
{
    /* the intervals' samples, which the tools add up */
    expect_bad(HEAD "interval 1 0 1 " U64_MAX_S " 0 0\nend 1\n"
                    "interval 2 1 2 1 0 0\nend 2\n", 12, "2^64");
    /* one arena over two intervals */
    expect_bad(HEAD "interval 1 0 1 0 0 0\n"
                    "arena 4 user 0 bind 0x1 18446744073709551613 0 0 0 0 0 "
                    "0 -\nend 1\ninterval 2 1 2 0 0 0\n"
                    "arena 4 user 0 bind 0x1 3 0 0 0 0 0 0 -\nend 2\n",
               14, "arena 4's samples");
    /* one site over two intervals, another site beside it */
    expect_bad(HEAD "interval 1 0 1 0 0 0\nsitedef 3 0x10 -1\n"
                    "sitedef 4 0x20 -1\n"
                    "site 3 0 18446744073709551610 0 0 0 0 0 0\n"
                    "site 4 0 18446744073709551610 0 0 0 0 0 0\nend 1\n"
                    "interval 2 1 2 0 0 0\n"
                    "site 3 0 6 0 0 0 0 0 0\nend 2\n", 17,
               "site 3's samples");

    /* exactly 2^64 - 1 in all, in several rows: kept, not saturated */
    static const char full[] =
        HEAD "interval 1 0 1 18446744073709551610 0 0\n"
        "arena 4 user 0 bind 0x1 18446744073709551610 0 0 0 0 0 0 -\n"
        "arena 5 user 0 bind 0x1 " U64_MAX_S " 0 0 0 0 0 0 -\n"
        "sitedef 3 0x10 -1\nsite 3 4 18446744073709551610 0 0 0 0 0 0\n"
        "end 1\ninterval 2 1 2 5 0 0\n"
        "arena 4 user 0 bind 0x1 5 0 0 0 0 0 0 -\n"
        "site 3 4 5 0 0 0 0 0 0\nend 2\ncomplete 2\n";
    profile_t p;
    log_reset(TM_LOG_WARN);
    REQUIRE_VOID(profile_parse(full, strlen(full), "full", &p) == 0);
    CHECK(log_count("error", NULL) == 0);
    CHECK(p.narenas == 2 && p.arenas[0].samples == UINT64_MAX &&
          p.arenas[1].samples == UINT64_MAX);
    CHECK(p.nsites == 1 && p.sites[0].samples == UINT64_MAX);
    CHECK(p.nintervals == 2 && p.intervals[0].samples +
                                       p.intervals[1].samples == UINT64_MAX);
    for (size_t i = 0; i < p.nintervals; i++)
        for (size_t k = 0; k < p.intervals[i].narenas; k++)
            CHECK(isfinite(p.intervals[i].arenas[k].heat) &&
                  p.intervals[i].arenas[k].heat >= 0);
    profile_free(&p);
}

static void test_heat_decay(void)
{
    CHECK(prof_heat_decay(1.0) == 0.5);
    CHECK(prof_heat_decay(0.0) == 0.0 && prof_heat_decay(-3) == 0.0);
    CHECK(prof_heat_decay(NAN) == 0.0);
    CHECK(fabs(prof_heat_decay(4.0) - pow(2.0, -0.25)) < 1e-15);
    double d = prof_heat_decay(2.0), h = 0;
    for (int i = 0; i < 2; i++)
        h = prof_heat_update(h, 0, d);
    CHECK(h == 0);
    h = prof_heat_update(100, 0, d);
    h = prof_heat_update(h, 0, d);
    CHECK(fabs(h - 50) < 1e-9); /* two intervals = one half-life */
}

/* Heat restarts when the serial changes (version 2); version 1 rows have
 * no serial and carry the heat on, as before. */
static void test_serial_heat(void)
{
    static const char head[] =
        "exe x\npid 1\nrank -1\nsampler -\ninterval_ns 1\nhalflife 1\n"
        "start_unix_ms 0\n";
    static const char *const rows[3] = {"100", "0", "100"};
    static const char *const serials[3] = {" 7", " 8", " 8"};
    for (int version = 1; version <= 2; version++) {
        char text[2048];
        int len = snprintf(text, sizeof text, "tiermem-profile %d\n%s",
                           version, head);
        for (int i = 0; i < 3; i++)
            len += snprintf(text + len, sizeof text - (size_t)len,
                            "interval %d 0 1 0 0 0\narena 4 user 0 bind 0x1 "
                            "%s 0 0 0 0 0 0 -%s\nend %d\n", i + 1, rows[i],
                            version == 2 ? serials[i] : "", i + 1);
        profile_t p;
        REQUIRE_VOID(profile_parse(text, (size_t)len, "serial", &p) == 0);
        REQUIRE_VOID(p.nintervals == 3);
        /* halflife 1: d = 0.5 */
        double want[2][3] = {{50, 25, 62.5}, {50, 0, 50}};
        for (int i = 0; i < 3; i++) {
            REQUIRE_VOID(p.intervals[i].narenas == 1);
            const prof_arena_row_t *r = &p.intervals[i].arenas[0];
            CHECK_MSG(r->heat == want[version - 1][i] &&
                          r->serial == (version == 2 ? 7u + (i > 0) : 0u),
                      "version %d interval %d heat %g serial %llu", version,
                      i + 1, r->heat, (unsigned long long)r->serial);
        }
        profile_free(&p);
    }
}

/* An existing NAME.partial (a live writer of the same name, or a crashed
 * run's leftover) is never overwritten: EEXIST, the file as it was. */
static void test_partial_exists(void)
{
    char path[128], partial[160];
    path_in_dir(path, sizeof path, "taken.txt");
    snprintf(partial, sizeof partial, "%s.partial", path);
    static const char old[] = "tiermem-profile 2\nexe someone else\n";
    int fd = open(partial, O_WRONLY | O_CREAT | O_EXCL, 0644);
    REQUIRE_VOID(fd >= 0);
    CHECK(write(fd, old, sizeof old - 1) == (ssize_t)(sizeof old - 1));
    close(fd);
    prof_header_t h = make_header();
    errno = 0;
    CHECK(profile_writer_open(path, &h) == NULL && errno == EEXIST);
    char buf[256] = {0};
    fd = open(partial, O_RDONLY);
    REQUIRE_VOID(fd >= 0);
    CHECK(read(fd, buf, sizeof buf - 1) == (ssize_t)(sizeof old - 1));
    close(fd);
    CHECK(strcmp(buf, old) == 0);
    CHECK(!file_exists(path));
    /* once the leftover is gone the name is free again */
    REQUIRE_VOID(unlink(partial) == 0);
    prof_writer_t *w = profile_writer_open(path, &h);
    CHECK(w != NULL);
    CHECK(w == NULL || profile_writer_finish(w) == 0);
}

/* A locale whose decimal separator is ',' for LC_NUMERIC: an installed one,
 * else one compiled with localedef into the test directory.  false if
 * neither works here. */
static bool set_comma_locale(void)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",
                                        "fr_FR.UTF-8", "fr_FR.utf8",
                                        "de_DE", "fr_FR"};
    char probe[16];
    for (int attempt = 0; attempt < 2; attempt++) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            if (setlocale(LC_NUMERIC, names[i]) == NULL)
                continue;
            snprintf(probe, sizeof probe, "%.1f", 4.5);
            if (strcmp(probe, "4,5") == 0)
                return true;
            setlocale(LC_NUMERIC, "C");
        }
        if (attempt == 1)
            break;
        char cmd[512], locdir[128];
        path_in_dir(locdir, sizeof locdir, "locale");
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && localedef -i de_DE -f "
                 "UTF-8 '%s/de_DE.UTF-8' >/dev/null 2>&1", locdir, locdir);
        if (system(cmd) != 0 || setenv("LOCPATH", locdir, 1) != 0)
            break;
    }
    return false;
}

/* halflife written and read under a ',' locale stays "4.5" and exact. */
static void test_locale(void)
{
    if (!set_comma_locale()) {
        tm_test_skip("a ',' decimal separator", "no such locale installed "
                     "and localedef failed");
        return;
    }
    char path[128];
    path_in_dir(path, sizeof path, "locale.txt");
    prof_header_t h = make_header();
    h.halflife = 4.5;
    prof_writer_t *w = profile_writer_open(path, &h);
    REQUIRE_VOID(w != NULL);
    CHECK(profile_writer_finish(w) == 0);
    CHECK(last_line_at(path, "halflife 4.5\n") > 0);
    profile_t p;
    CHECK(profile_read(path, &p) == 0 && p.header.halflife == 4.5);
    profile_free(&p);
    path_in_dir(path, sizeof path, "locale2.txt");
    h.halflife = 3.7e-5; /* not exact in binary, with an exponent */
    w = profile_writer_open(path, &h);
    REQUIRE_VOID(w != NULL);
    CHECK(profile_writer_finish(w) == 0);
    CHECK(profile_read(path, &p) == 0 && p.header.halflife == 3.7e-5);
    profile_free(&p);
    static const char text[] = HEAD "complete 0\n"; /* "halflife 4" */
    CHECK(profile_parse(text, strlen(text), "ok", &p) == 0 &&
          p.header.halflife == 4);
    profile_free(&p);
    setlocale(LC_NUMERIC, "C");
    unsetenv("LOCPATH");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tm_profile_test.XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL && log_open()); /* /tmp: not a feature */
    test_heat_decay();
    test_round_trip();
    test_abandon_and_torn();
    test_torn_trailer();
    test_killed_writer();
    test_big_interval();
    test_writer_refuses();
    test_bad_inputs();
    test_wrapping_totals();
    test_serial_heat();
    test_partial_exists();
    test_locale();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return tm_test_done(__FILE__);
}
