/*
 * profile_name.c -- the name a profile is written under.
 *
 * TIERMEM_PROFILE_FILE, or tiermem-profile.<exe>.<pid|rankN>.txt in the
 * output directory.  The name is predictable on purpose (scripts and the
 * guide find a rank's profile by it), and the writer creates NAME.partial
 * exclusively, so a name that is taken is never overwritten: a second
 * writer of the same name (an MPI rank's exec'd child, a rank run twice)
 * takes NAME.<pid>.txt, and when that is taken too -- names planted by
 * another user in a shared directory -- a name with 64 random bits.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "profiler.h"
#include "sites.h"

/* o->file, or tiermem-profile.<exe>.<pid|rankN>.txt in the output dir. */
bool profile_name_choose(const prof_options_t *o, char *path, size_t size)
{
    if (o->file[0] != '\0') {
        size_t len = strlen(o->file);
        if (len >= size)
            return false;
        memcpy(path, o->file, len + 1);
        return true;
    }
    char exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : (exe[0] ? exe : "unknown");
    const char *dir = runtime_options.output_dir[0] ? runtime_options.output_dir : ".";
    int len = runtime_options.rank >= 0
                  ? snprintf(path, size, "%s/tiermem-profile.%s.rank%d.txt",
                             dir, base, runtime_options.rank)
                  : snprintf(path, size, "%s/tiermem-profile.%s.%ld.txt",
                             dir, base, (long)getpid());
    return len > 0 && (size_t)len < size;
}

/* path with ".TAG" before its ".txt": "NAME.txt" -> "NAME.TAG.txt". */
static bool name_add(char *path, size_t size, const char *tag)
{
    char base[PROF_PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof base)
        return false;
    bool txt = len > 4 && strcmp(path + len - 4, ".txt") == 0;
    memcpy(base, path, len + 1);
    if (txt)
        base[len - 4] = '\0';
    int n = snprintf(path, size, "%s.%s%s", base, tag,
                     txt ? ".txt" : "");
    return n > 0 && (size_t)n < size;
}

/* The profile's writer under path; if that name is taken, under
 * NAME.<pid>.txt (another process of the same name, an MPI rank run
 * twice), and if that is taken too, under a name nobody can have planted
 * in a shared directory.  Nothing that exists is ever overwritten. */
prof_writer_t *profile_name_open_unique(char *path, size_t size,
                                        const prof_header_t *h)
{
    prof_writer_t *w = profile_writer_open(path, h);
    if (w != NULL || errno != EEXIST)
        return w;
    char first[PROF_PATH_MAX], tag[24];
    size_t len = strlen(path);
    if (len >= sizeof first) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    memcpy(first, path, len + 1);
    snprintf(tag, sizeof tag, "%ld", (long)getpid());
    if (name_add(path, size, tag)) {
        log_info("profiler: another profile is being written under the "
                    "same name; this one is %s", path);
        w = profile_writer_open(path, h);
        if (w != NULL || errno != EEXIST)
            return w;
    }
    memcpy(path, first, len + 1);
    snprintf(tag, sizeof tag, "%016llx",
             (unsigned long long)unpredictable_bits());
    if (!name_add(path, size, tag)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    log_warn("profiler: the profile's names are taken (planted?); this "
                "one is %s", path);
    return profile_writer_open(path, h);
}
