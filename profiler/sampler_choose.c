/*
 * sampler_choose.c -- which access sampler runs: the one asked for, then
 * the fall-backs.
 *
 * The order is pebs/ibs (exact addresses, needs a PMU), then refs
 * (accessed bits: reads and writes, per arena, needs only /proc), then
 * uffd (writes only), then none: profiling with residency and allocation
 * counters beats no profile at all.  auto starts at the top; a sampler
 * asked for by name starts where it sits (faults has no fall-back: it
 * exists to test the perf path).  Each backend logs its own reason for
 * refusing -- info under auto, a warning when asked for by name -- and
 * this file says once which sampler runs.
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
    bool ok = false;
    switch (o->sampler) {
    case PROF_SAMPLER_AUTO:
    case PROF_SAMPLER_PEBS:
    case PROF_SAMPLER_IBS:
    case PROF_SAMPLER_FAULTS:
        ok = sampler_try(s, &sampler_perf_ops, prof_sampler_name(o->sampler),
                         o, &sink);
        if (ok || o->sampler == PROF_SAMPLER_FAULTS)
            break;
        /* fall through */
    case PROF_SAMPLER_REFS:
        ok = sampler_try(s, &sampler_refs_ops, "refs", o, &sink);
        if (ok)
            break;
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
    else if (ok && o->sampler != PROF_SAMPLER_REPLAY)
        log_info("profiler: sampling with %s (asked for %s)%s", s->name,
                 prof_sampler_name(o->sampler),
                 strcmp(s->name, "uffd") == 0 ? "; uffd sees writes only"
                                              : "");
    const char *chosen = ok ? s->name : "none";
    size_t len = strlen(chosen);
    if (len >= name_size)
        len = name_size - 1;
    memcpy(name, chosen, len);
    name[len] = '\0';
    return ok;
}
