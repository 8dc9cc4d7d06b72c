/*
 * place_internal.h -- what placement.c and place_thermos.c share: one
 * candidate of the tier being filled, and the passes over candidates in
 * density order.  Private to the policy layer's placement files.
 */
#ifndef TM_PLACE_INTERNAL_H
#define TM_PLACE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One candidate for the tier being filled. */
typedef struct place_ent {
    size_t idx;       /* index in the caller's items */
    uint64_t bytes;   /* > 0 */
    double acc;       /* > 0 */
    double density;   /* acc / bytes */
} place_ent_t;

/* The two passes both placement files run are inline here, so that
 * placement.c calls place_thermos.c and never the other way round. */

/* Accesses of the picked candidates. */
static inline double place_sum(const place_ent_t *ents, size_t m,
                               const unsigned char *pick)
{
    double s = 0;
    for (size_t k = 0; k < m; k++)
        if (pick[k])
            s += ents[k].acc;
    return s;
}

/* Add, in density order, every unpicked candidate that still fits. */
static inline void place_fill(const place_ent_t *ents, size_t m, uint64_t cap,
                              uint64_t used, unsigned char *pick)
{
    for (size_t k = 0; k < m; k++) {
        if (!pick[k] && ents[k].bytes <= cap - used) {
            pick[k] = 1;
            used += ents[k].bytes;
        }
    }
}

/* thermos over candidates in density order (place_thermos.c): pick[] gets
 * the choice.  Returns the accesses picked, or -1 (ENOMEM).  *bounded is
 * set to false when the work bound cut displacement short (the pick is then
 * still feasible and maximal, but not thermos's). */
double place_thermos(const place_ent_t *ents, size_t m, uint64_t cap,
                     unsigned char *pick, bool *bounded);

#endif /* TM_PLACE_INTERNAL_H */
