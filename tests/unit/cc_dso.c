/*
 * cc_dso.c -- a shared object test_cc_sites dlopens: its own note
 * describes ID_D (first seen only after the dlopen) and ID_A again,
 * differently (a duplicate the runtime reports and ignores).
 */
#include "cc_note.h"

__attribute__((section(".note.tiermem"), used, aligned(4)))
static const cc_test_note_t dso_note =
    CC_TEST_NOTE(ID_D, 40, ID_A, 41, "\0dso.c\0dso_make\0calloc\0", 1, 7, 16, 0);

int cc_dso_marker(void) { return 42; }
