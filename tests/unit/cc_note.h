/*
 * cc_note.h -- a .note.tiermem note built by hand, as the compiler pass
 * emits it (doc/sites.md), for test_cc_sites and its shared object.
 *
 * Placed in section .note.tiermem (SHT_NOTE, from the name), the linker
 * puts it in a PT_NOTE segment; 4-byte aligned, as notes are.
 */
#ifndef CC_NOTE_H
#define CC_NOTE_H

#include <stdint.h>

typedef struct __attribute__((packed)) cc_test_record {
    uint64_t id;
    uint32_t file, function, callee, chain, line, column;
} cc_test_record_t;

#define CC_TEST_NSITES 2
#define CC_TEST_STRTAB 64

typedef struct __attribute__((packed, aligned(4))) cc_test_note {
    uint32_t namesz, descsz, type;
    char name[8];
    uint32_t version, nsites, strtab_off, strtab_size;
    cc_test_record_t rec[CC_TEST_NSITES];
    char strtab[CC_TEST_STRTAB];
} cc_test_note_t;

#define CC_TEST_DESC_SIZE (sizeof(cc_test_note_t) - 20)
#define CC_TEST_STRTAB_OFF (16 + CC_TEST_NSITES * 32)

/* A note of two sites; strtab "\0FILE\0FUNC\0CALLEE\0CHAIN\0" with the
 * offsets given. */
#define CC_TEST_NOTE(ID0, LINE0, ID1, LINE1, STRS, F, FN, CE, CH)           \
    {                                                                      \
        8, (uint32_t)CC_TEST_DESC_SIZE, 0x544d0001u, "tiermem", 1,         \
            CC_TEST_NSITES, (uint32_t)CC_TEST_STRTAB_OFF, CC_TEST_STRTAB,  \
            {{ID0, F, FN, CE, CH, LINE0, 7}, {ID1, F, FN, CE, 0, LINE1, 9}}, \
            STRS                                                           \
    }

#define ID_A 0x8000000000000a01ull /* described by the program */
#define ID_B 0x8000000000000b02ull /* described by the program */
#define ID_C 0x8000000000000c03ull /* described by no object */
#define ID_D 0x8000000000000d04ull /* described by the dlopen'd object */

#endif
