/*
 * profiler_internal.h -- what profiler.c (the profiling thread and its
 * lifecycle) uses from sampler_choose.c (which sampler runs).
 *
 * Private to the profiler's own files; nothing here is part of profiler.h.
 */
#ifndef TM_PROFILER_INTERNAL_H
#define TM_PROFILER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "profiler.h"

/* Open in s the sampler o asks for, its samples going to sink, falling
 * back as sampler_choose.c says.  Writes the name of the sampler that runs,
 * or "none", into name (name_size bytes, truncated).  True when one runs
 * (s is then open and must be closed); false when none does. */
bool prof_sampler_choose(const prof_options_t *o, prof_sink_t sink,
                         sampler_t *s, char *name, size_t name_size);

#endif
