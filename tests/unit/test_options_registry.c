/*
 * test_options_registry.c -- the settings registry (settings/setting_env.c)
 * and every layer's rows.
 *
 * Every row has its documentation and a default that parses, under the
 * row's own rules, to the default its layer sets; every name is known
 * exactly once, so an unknown TIERMEM_ name warns once and every known one
 * (and SICM alias) does not; an SH_ alias finds its row and loses to the
 * TIERMEM_ name.  The log goes to a temporary file (tests/observe.h) so the
 * warnings can be counted.
 */
#include "config.h"

#include <stdalign.h>
#include <unistd.h>

#include "base.h"
#include "settings.h"
#include "profiler.h"
#include "policy.h"
#include "../tm_test.h"
#include "../observe.h"

/* The registry holds the rows of the objects a program links: name one
 * function of each file that has rows (settings.h). */
__attribute__((used)) static const void *const layers_linked[] = {
    (const void *)settings_init, (const void *)options_parse,
    (const void *)tm_topology_discover, (const void *)prof_options_parse,
    (const void *)policy_options_parse,
};

#define MAX_TABLES 32

static const setting_table_t *tables[MAX_TABLES];
static size_t ntables;

static bool prefixed(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_tables(void)
{
    static const char *const layers[] = {"log", "tiers", "sites", "profiler",
                                         "policy"};
    CHECK_MSG(ntables == 5, "%zu tables", ntables);
    for (size_t i = 0; i < ntables; i++)
        CHECK_MSG(strcmp(tables[i]->layer, layers[i]) == 0,
                  "table %zu is %s, not %s", i, tables[i]->layer, layers[i]);
}

/* Documentation, names, and what a generic bad-value warning needs. */
static void test_rows_documented(void)
{
    size_t rows = 0;
    for (size_t t = 0; t < ntables; t++)
        for (size_t r = 0; r < tables[t]->nrows; r++, rows++) {
            const setting_t *s = &tables[t]->rows[r];
            CHECK_MSG(prefixed(s->name, "TIERMEM_"), "row %s", s->name);
            CHECK_MSG(s->alias == NULL || prefixed(s->alias, "SH_"),
                      "%s: alias %s", s->name, s->alias);
            CHECK_MSG(s->doc != NULL && s->doc[0] != '\0' &&
                          strchr(s->doc, '\n') == NULL &&
                          strchr(s->doc, '|') == NULL,
                      "%s: no one-line doc", s->name);
            CHECK_MSG(s->values_doc != NULL && s->values_doc[0] != '\0' &&
                          strchr(s->values_doc, '|') == NULL,
                      "%s: no values doc", s->name);
            CHECK_MSG(s->dflt != NULL || s->shown != NULL ||
                          s->dflt_doc != NULL,
                      "%s: no default text", s->name);
            if (s->parse == NULL && s->type != SETTING_LIST)
                CHECK_MSG(s->want != NULL && (s->shown || s->dflt),
                          "%s: a bad value cannot be reported", s->name);
            /* each name (and alias) belongs to exactly this row */
            CHECK_MSG(setting_find(s->name, strlen(s->name)) == s,
                      "%s: found elsewhere", s->name);
            CHECK(s->alias == NULL ||
                  setting_find(s->alias, strlen(s->alias)) == s);
        }
    CHECK_MSG(rows == 40, "%zu rows, not 40", rows);
}

/* The default text parses to the layer's default, with no warning. */
static void test_defaults_parse(void)
{
    static alignas(max_align_t) unsigned char want[16384], got[16384];
    char *no_env[] = {NULL};
    size_t checked = 0;
    for (size_t t = 0; t < ntables; t++) {
        const setting_table_t *tab = tables[t];
        if (tab->owner_size == 0)
            continue;
        bool fits = tab->owner_size <= sizeof want && tab->defaults != NULL;
        CHECK_MSG(fits, "%s: owner too big or no defaults", tab->layer);
        if (!fits)
            continue;
        for (size_t r = 0; r < tab->nrows; r++) {
            const setting_t *s = &tab->rows[r];
            if (s->dflt == NULL)
                continue;
            memset(want, 0, sizeof want);
            memset(got, 0xa5, sizeof got);
            tab->defaults(want);
            tab->defaults(got);
            /* a value the row would reject must show up, too */
            log_reset(TM_LOG_INFO);
            setting_apply(s, s->name, s->dflt, got, no_env);
            CHECK_MSG(log_count("warning", NULL) == 0, "%s=%s: %s", s->name,
                      s->dflt, log_text());
            memset(got + tab->owner_size, 0, sizeof got - tab->owner_size);
            /* padding is not compared: the defaults set every field */
            bool same = true;
            if (s->field != FIELD_NONE)
                same = memcmp(want + s->offset, got + s->offset, s->size) == 0;
            else if (strcmp(tab->layer, "sites") == 0)
                same = memcmp(&((options_t *)(void *)want)->nwrappers,
                              &((options_t *)(void *)got)->nwrappers,
                              offsetof(options_t, default_target) -
                                  offsetof(options_t, nwrappers)) == 0;
            CHECK_MSG(same, "%s: default text \"%s\" is not the default",
                      s->name, s->dflt);
            checked++;
        }
    }
    CHECK_MSG(checked >= 25, "only %zu defaults checked", checked);
}

/* Every known name and alias is quiet; one unknown TIERMEM_ name gets one
 * warning, once; an unknown SH_ name only an info line. */
static void test_unknown_once(void)
{
    char *env[128], store[128][64];
    size_t n = 0;
    for (size_t t = 0; t < ntables; t++)
        for (size_t r = 0; r < tables[t]->nrows; r++) {
            const setting_t *s = &tables[t]->rows[r];
            for (int which = 0; which < 2 && n < 120; which++) {
                const char *name = which ? s->alias : s->name;
                if (name == NULL)
                    continue;
                snprintf(store[n], sizeof store[n], "%s=x", name);
                env[n] = store[n];
                n++;
            }
        }
    env[n++] = "TIERMEM_NOPE=1";
    env[n++] = "SH_NOPE=1";
    env[n++] = "PATH=/bin";
    env[n] = NULL;
    log_reset(TM_LOG_INFO);
    settings_check_names(env);
    CHECK_MSG(log_count("warning", NULL) == 1 &&
                  log_count("warning", "unknown setting TIERMEM_NOPE ignored",
                            NULL) == 1,
              "log: %s", log_text());
    CHECK(log_count("info", "SICM setting SH_NOPE has no tiermem", NULL) == 1);
    CHECK(log_count("info", NULL) == 1);
}

/* An SH_ alias maps to its row; the TIERMEM_ name beats it. */
static void test_alias(void)
{
    size_t aliases = 0;
    for (size_t t = 0; t < ntables; t++)
        for (size_t r = 0; r < tables[t]->nrows; r++) {
            const setting_t *s = &tables[t]->rows[r];
            char sh[96], tm[96];
            const char *var;
            if (s->alias == NULL)
                continue;
            aliases++;
            snprintf(sh, sizeof sh, "%s=7", s->alias);
            snprintf(tm, sizeof tm, "%s=8", s->name);
            char *only_sh[] = {sh, NULL}, *both[] = {sh, tm, NULL};
            const char *v = setting_lookup(only_sh, s, &var);
            CHECK_MSG(v != NULL && strcmp(v, "7") == 0 && var == s->alias,
                      "%s: alias not read", s->alias);
            log_reset(TM_LOG_INFO);
            v = setting_lookup(both, s, &var);
            CHECK(v != NULL && strcmp(v, "8") == 0 && var == s->name);
            CHECK(log_count("info", s->alias, "is ignored", s->name, NULL) ==
                  1);
        }
    CHECK(aliases == 6);
    /* and the values land where the TIERMEM_ name puts them */
    options_t o;
    char *env[] = {"SH_MAX_SITES=4096", "SH_BIG_SMALL_THRESHOLD=1M",
                   "SH_DEFAULT_NODE=3", NULL};
    options_parse(env, &o);
    CHECK(o.max_sites == 4096 && o.big_small_threshold == (1u << 20));
    CHECK(o.default_target.kind == TM_TARGET_NODE &&
          o.default_target.index == 3);
}

int main(void)
{
    REQUIRE(log_open());
    ntables = settings_tables(tables, MAX_TABLES);
    REQUIRE(ntables <= MAX_TABLES);
    test_tables();
    test_rows_documented();
    test_defaults_parse();
    test_unknown_once();
    test_alias();
    log_configure(TM_LOG_WARN, -1);
    CHECK(close(log_fd) == 0);
    return tm_test_done(__FILE__);
}
