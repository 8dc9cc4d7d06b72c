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

/* Accesses of the picked candidates. */
double place_sum(const place_ent_t *ents, size_t m, const unsigned char *pick);

/* Add, in density order, every unpicked candidate that still fits. */
void place_fill(const place_ent_t *ents, size_t m, uint64_t cap,
                uint64_t used, unsigned char *pick);

/* thermos over candidates in density order (place_thermos.c): pick[] gets
 * the choice.  Returns the accesses picked, or -1 (ENOMEM).  *bounded is
 * set to false when the work bound cut displacement short (the pick is then
 * still feasible and maximal, but not thermos's). */
double place_thermos(const place_ent_t *ents, size_t m, uint64_t cap,
                     unsigned char *pick, bool *bounded);

#endif /* TM_PLACE_INTERNAL_H */
