/*
 * sampler_choose.c -- which access sampler runs: the one asked for, then
 * the fall-backs.
 *
 * pebs, ibs, faults and auto go to the perf sampler; pebs, ibs and auto
 * fall back to the userfaultfd sampler (writes only, no PMU needed), and
 * any sampler to none: profiling with residency and allocation counters
 * beats no profile at all.  Each backend logs its own reason for refusing;
 * this file logs the fall-back taken.
 */
#include "config.h"

#include <string.h>

#include "profiler_internal.h"

static bool sampler_try(sampler_t *s, const sampler_ops_t *ops,
                        const char *name, const prof_options_t *o,
                        const prof_sink_t *sink)
{
    *s = (sampler_t){.ops = ops, .name = name};
    return ops->open(s, o, sink) == 0;
}

bool prof_sampler_choose(const prof_options_t *o, prof_sink_t sink,
                         sampler_t *s, char *name, size_t name_size)
{
    prof_options_t perf = *o;
    bool ok = false;
    switch (o->sampler) {
    case PROF_SAMPLER_AUTO:
    case PROF_SAMPLER_PEBS:
    case PROF_SAMPLER_IBS:
    case PROF_SAMPLER_FAULTS:
        ok = sampler_try(s, &sampler_perf_ops, prof_sampler_name(o->sampler),
                         &perf, &sink);
        if (ok || o->sampler == PROF_SAMPLER_FAULTS)
            break;
        /* the perf sampler's own warning already said why, once */
        log_info("profiler: falling back to the userfaultfd sampler "
                    "(writes only; see doc/profiler-uffd.md)");
        /* fall through */
    case PROF_SAMPLER_UFFD:
        ok = sampler_try(s, &sampler_uffd_ops, "uffd", o, &sink);
        break;
    case PROF_SAMPLER_REPLAY:
        ok = sampler_try(s, &sampler_replay_ops, "replay", o, &sink);
        break;
    case PROF_SAMPLER_NONE:
        break;
    }
    if (!ok && o->sampler != PROF_SAMPLER_NONE)
        log_warn("profiler: no access sampler could start; profiling "
                    "allocation counters and residency only");
    const char *chosen = ok ? s->name : "none";
    size_t len = strlen(chosen);
    if (len >= name_size)
        len = name_size - 1;
    memcpy(name, chosen, len);
    name[len] = '\0';
    return ok;
}
