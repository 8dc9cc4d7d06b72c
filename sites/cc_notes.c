/*
 * cc_notes.c -- the .note.tiermem notes of compiler-instrumented objects,
 * read as hostile data.
 *
 * The compiler pass puts into each object one ELF note (name "tiermem",
 * type CC_NOTE_TYPE) whose descriptor describes the object's allocation
 * sites: a 16-byte header {version, nsites, strtab_off, strtab_size}, then
 * nsites 32-byte records {id, file, function, callee, chain, line, column}
 * with the string fields as offsets into a string table (doc/sites.md).
 *
 * Why hostile: an object is whatever was linked or dlopen'd, built by any
 * compiler, perhaps truncated or from another version of the pass, and the
 * process must keep running whatever it says.  So every count, offset and
 * size is bounded before it is used, the string table must start and end
 * with a NUL (then every offset inside it names a terminated string), and a
 * note is checked whole before any record of it is handed on: a bad note
 * gives nothing, never half of itself.
 *
 * Functions over a buffer, with no allocation, so each corrupt shape is a
 * unit test: cc_note_parse says what is wrong; cc_notes_walk logs it, once
 * per bad note, naming the object.
 */
#include "config.h"

#include <endian.h>
#include <string.h>

#include "sites.h"

static uint32_t le32_at(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v); /* the descriptor need not be aligned */
    return le32toh(v);
}

static uint64_t le64_at(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return le64toh(v);
}

/* Record i of a note already checked by note_check. */
static void record_at(const unsigned char *d, uint32_t off, uint32_t i,
                      cc_desc_t *out)
{
    const unsigned char *r = d + CC_HEADER_SIZE + (size_t)i * CC_RECORD_SIZE;
    const char *strtab = (const char *)d + off;
    *out = (cc_desc_t){
        .id = le64_at(r),
        .file = strtab + le32_at(r + 8),
        .function = strtab + le32_at(r + 12),
        .callee = strtab + le32_at(r + 16),
        .chain = strtab + le32_at(r + 20),
        .line = le32_at(r + 24),
        .column = le32_at(r + 28),
    };
}

static const char *note_check(const unsigned char *d, size_t len,
                              uint32_t *nsites, uint32_t *strtab_off)
{
    if (d == NULL || len < CC_HEADER_SIZE)
        return "descriptor shorter than its 16-byte header";
    uint32_t version = le32_at(d), n = le32_at(d + 4);
    uint32_t off = le32_at(d + 8), size = le32_at(d + 12);
    if (version != CC_NOTE_VERSION)
        return "unknown version (this tiermem reads version 1)";
    /* n is bounded by what fits before anything is multiplied by it */
    if (n > (len - CC_HEADER_SIZE) / CC_RECORD_SIZE)
        return "nsites records run past the descriptor";
    size_t records_end = CC_HEADER_SIZE + (size_t)n * CC_RECORD_SIZE;
    if (off < records_end)
        return "string table overlaps the header or the records";
    if (off > len || size > len - off)
        return "string table runs past the descriptor";
    if (size == 0 || d[off] != '\0')
        return "string table does not start with the empty string";
    if (d[off + size - 1] != '\0')
        return "string table does not end with a NUL";
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *r = d + CC_HEADER_SIZE + (size_t)i * CC_RECORD_SIZE;
        if (!cc_id_valid(le64_at(r)))
            return "a site id is not a compiler id (bits 63..62 must be 10)";
        for (unsigned f = 0; f < 4; f++)
            if (le32_at(r + 8 + 4 * f) >= size)
                return "a string offset is past the string table";
    }
    *nsites = n;
    *strtab_off = off;
    return NULL;
}

const char *cc_note_parse(const void *desc, size_t len, uint32_t *nsites,
                          cc_record_fn each, void *arg)
{
    const unsigned char *d = desc;
    uint32_t n = 0, off = 0;
    const char *why = note_check(d, len, &n, &off);
    if (nsites != NULL)
        *nsites = why ? 0 : n;
    if (why != NULL || each == NULL)
        return why;
    for (uint32_t i = 0; i < n; i++) {
        cc_desc_t r;
        record_at(d, off, i, &r);
        each(&r, arg);
    }
    return NULL;
}

static size_t align_up(size_t v, size_t align)
{
    return (v + align - 1) & ~(align - 1);
}

/* The note walk's own warning: one per bad note, naming the object. */
static void note_bad(const char *object, const char *why)
{
    shown_t obj;
    log_warn("%s: .note.tiermem: %s; note skipped (its sites are not "
             "described)", log_shown(&obj, object), why);
}

size_t cc_notes_walk(const void *area, size_t len, size_t align,
                     const char *object, cc_record_fn each, void *arg)
{
    /* A PT_NOTE segment aligned to 8 pads names and descriptors to 8 (as
     * .note.gnu.property is); anything else is the classic 4. */
    align = align == 8 ? 8 : 4;
    const unsigned char *p = area;
    size_t at = 0, found = 0;
    static const char name[8] = CC_NOTE_NAME; /* with its NUL */
    while (p != NULL && len - at >= 12) {
        uint32_t namesz = le32_at(p + at), descsz = le32_at(p + at + 4);
        uint32_t type = le32_at(p + at + 8);
        size_t left = len - at - 12;
        bool ours = namesz == sizeof name && type == CC_NOTE_TYPE &&
                    left >= sizeof name && memcmp(p + at + 12, name,
                                                  sizeof name) == 0;
        size_t name_len = align_up(namesz, align);
        if (name_len > left || descsz > left - name_len) {
            /* A truncated note: nothing after it can be found either. */
            if (ours)
                note_bad(object, "truncated: the descriptor runs past the "
                                 "note segment");
            return found;
        }
        const unsigned char *desc = p + at + 12 + name_len;
        if (ours) {
            found++;
            const char *why = cc_note_parse(desc, descsz, NULL, each, arg);
            if (why != NULL)
                note_bad(object, why);
        }
        size_t next = 12 + name_len + align_up(descsz, align);
        if (next > len - at)
            break; /* the last note, its padding cut by the segment end */
        at += next;
    }
    return found;
}
