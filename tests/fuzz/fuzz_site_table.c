/*
 * fuzz_site_table.c -- libFuzzer target for the site table reader
 * (sites/site_table_read.c).
 *
 * The input is the file's bytes, exactly: libFuzzer's buffer has no NUL
 * after it, so AddressSanitizer catches any read past the end.  A parse
 * either fails with an error naming a line and nothing left allocated, or
 * returns a table whose invariants hold: every line is one the reader
 * knows, has no control byte and fits SITE_TABLE_LINE_MAX; sites and
 * arenas ascend; frames are numbered 0, 1, ... under their site; objects
 * are absolute paths; the function field lies inside its line.  Link with
 * sites/site_table_read.c, base/read_file.c, base/log.c,
 * base/meta_alloc.c, base/os.c and tests/fuzz/fuzz_support.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "sites.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_lines(const site_table_t *t)
{
    for (size_t i = 0; i < t->nlines; i++) {
        const site_table_line_t *l = &t->lines[i];
        if (l->len > SITE_TABLE_LINE_MAX || strlen(l->text) != l->len)
            abort();
        for (size_t k = 0; k < l->len; k++)
            if ((unsigned char)l->text[k] < ' ' && l->text[k] != '\t')
                abort();
        size_t items = l->kind == ST_LINE_SITE    ? t->nsites
                       : l->kind == ST_LINE_FRAME ? t->nframes
                       : l->kind == ST_LINE_ARENA ? t->narenas
                                                  : SIZE_MAX;
        if (l->kind != ST_LINE_COMMENT && l->item >= items)
            abort();
    }
}

static void check_frames(const site_table_t *t)
{
    for (size_t i = 0; i < t->nframes; i++) {
        const site_table_frame_t *f = &t->frames[i];
        if (f->site >= t->nsites || f->index >= TM_MAX_STACK_DEPTH ||
            (f->object != NULL &&
             (!site_table_object_ok(f->object) ||
              strlen(f->object) >= OBJECT_PATH_MAX)) ||
            f->function == NULL || f->function[0] == '\0')
            abort();
        const site_table_site_t *s = &t->sites[f->site];
        if (i < s->first_frame || i - s->first_frame != f->index ||
            f->index >= s->nframes)
            abort();
    }
}

static void check_table(const site_table_t *t)
{
    if (t->nlines == 0 || t->lines[0].kind != ST_LINE_COMMENT)
        abort();
    check_lines(t);
    for (size_t i = 1; i < t->nsites; i++)
        if (t->sites[i].index <= t->sites[i - 1].index)
            abort();
    for (size_t i = 0; i < t->narenas; i++)
        if (t->arenas[i].id == 0 || t->arenas[i].id > TM_MAX_ARENAS ||
            (i > 0 && t->arenas[i].id <= t->arenas[i - 1].id))
            abort();
    check_frames(t);
    for (size_t i = 0; i < t->nlines; i++) /* the function field's place */
        if (t->lines[i].kind == ST_LINE_FRAME) {
            const site_table_frame_t *f = &t->frames[t->lines[i].item];
            if (f->function_at >= t->lines[i].len ||
                strncmp(t->lines[i].text + f->function_at, f->function,
                        strlen(f->function)) != 0)
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    site_table_t t;
    int rc = site_table_parse((const char *)data, size, "fuzz", &t);
    if (rc != 0 && (t.text != NULL || t.lines != NULL || t.sites != NULL ||
                    t.frames != NULL || t.arenas != NULL ||
                    strncmp(t.error, "fuzz:", 5) != 0))
        abort();
    if (rc == 0)
        check_table(&t);
    site_table_free(&t);
    return 0;
}
