/*
 * tiermem_settings.c -- print tiermem's settings from the registry.
 *
 *   tiermem-settings [--help-settings]        every setting, as plain text
 *   tiermem-settings --markdown LAYER[,LAYER] the Markdown table of those
 *                                            layers, as in doc/configuration.md
 *   tiermem-settings --layers                the layer names, one a line
 *
 * The text comes from the same rows the runtime parses with
 * (settings/settings.h: setting_t), so doc/configuration.md, which
 * scripts/gen-settings-doc.sh fills from this tool's --markdown output,
 * cannot drift from the code; tests/tools/test_settings_doc.sh fails when
 * it does.  --help-settings is the spelling a later `tiermem` umbrella
 * command keeps.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "settings.h"
#include "arena.h"
#include "profiler.h"
#include "policy.h"

#define MAX_TABLES 32

/* A static program links only the objects it references, and each layer's
 * rows live in the file that reads them: name one function of each such
 * file so that every table is in this program. */
__attribute__((used)) static const void *const layers_linked[] = {
    (const void *)settings_init,       (const void *)options_parse,
    (const void *)tm_topology_discover, (const void *)prof_options_parse,
    (const void *)policy_options_parse,
};

static size_t tables(const setting_table_t **t)
{
    size_t n = settings_tables(t, MAX_TABLES);
    return n < MAX_TABLES ? n : MAX_TABLES;
}

static const char *default_text(const setting_t *s)
{
    if (s->dflt_doc != NULL)
        return s->dflt_doc;
    return s->shown != NULL ? s->shown : (s->dflt != NULL ? s->dflt : "");
}

/* Is layer one of the comma-separated names in list? */
static bool layer_listed(const char *list, const char *layer)
{
    size_t len = strlen(layer);
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, layer, len) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

/* One table for the listed layers, in registry order; a SICM column only
 * if one of its rows has a SICM name. */
static int print_markdown(const char *list)
{
    const setting_table_t *t[MAX_TABLES];
    size_t n = tables(t), found = 0;
    bool sicm = false;
    for (size_t i = 0; i < n; i++)
        if (layer_listed(list, t[i]->layer)) {
            found++;
            for (size_t r = 0; r < t[i]->nrows; r++)
                sicm |= t[i]->rows[r].alias != NULL;
        }
    if (found == 0) {
        fprintf(stderr, "tiermem-settings: no layer named in \"%s\"\n", list);
        return 2;
    }
    printf("| variable |%s values | default | meaning |\n",
           sicm ? " SICM name |" : "");
    printf("| --- |%s --- | --- | --- |\n", sicm ? " --- |" : "");
    for (size_t i = 0; i < n; i++) {
        if (!layer_listed(list, t[i]->layer))
            continue;
        for (size_t r = 0; r < t[i]->nrows; r++) {
            const setting_t *s = &t[i]->rows[r];
            printf("| `%s` |", s->name);
            if (sicm && s->alias != NULL)
                printf(" `%s` |", s->alias);
            else if (sicm)
                printf(" |");
            printf(" %s | %s | %s |\n", s->values_doc, default_text(s),
                   s->doc);
        }
    }
    return 0;
}

static void print_text(void)
{
    const setting_table_t *t[MAX_TABLES];
    size_t n = tables(t);
    for (size_t i = 0; i < n; i++) {
        printf("%s%s settings:\n", i ? "\n" : "", t[i]->layer);
        for (size_t r = 0; r < t[i]->nrows; r++) {
            const setting_t *s = &t[i]->rows[r];
            printf("  %s", s->name);
            if (s->alias != NULL)
                printf(" (SICM: %s)", s->alias);
            printf("\n      %s\n      values: %s\n      default: %s\n",
                   s->doc, s->values_doc, default_text(s));
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: tiermem-settings [--help-settings | --layers | "
                    "--markdown LAYER[,LAYER...]]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 1 || (argc == 2 && strcmp(argv[1], "--help-settings") == 0)) {
        print_text();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--layers") == 0) {
        const setting_table_t *t[MAX_TABLES];
        size_t n = tables(t);
        for (size_t i = 0; i < n; i++)
            printf("%s\n", t[i]->layer);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--markdown") == 0)
        return print_markdown(argv[2]);
    return usage();
}
