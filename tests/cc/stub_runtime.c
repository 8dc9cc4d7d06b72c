/* stub_runtime.c -- A STUB, for tests/cc/run.sh only: tm_cc_* forwarding to
 * the C library, so the compiler path's tests run without the real runtime
 * (which defines the same ABI in libtiermem).  It checks that every id it
 * is given is a compiler site id (top bits 10) and counts the calls. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long stub_calls;

void stub_check_id(uint64_t id);
void stub_check_id(uint64_t id) {
    if ((id >> 62) != 2) {
        fprintf(stderr, "stub runtime: id %#llx lacks the top bits 10\n",
                (unsigned long long)id);
        abort();
    }
    __atomic_add_fetch(&stub_calls, 1, __ATOMIC_RELAXED);
}

__attribute__((destructor)) static void stub_report(void) {
    if (getenv("TIERMEM_STUB_REPORT"))
        fprintf(stderr, "stub runtime: %lu tm_cc calls\n", stub_calls);
}

/* the wrapper context: checked and kept, nothing takes it */
static __thread uint64_t stub_wrap;
uint64_t tm_cc_wrap_enter(uint64_t id) {
    stub_check_id(id);
    uint64_t prev = stub_wrap;
    if (!prev)
        stub_wrap = id;
    return prev;
}
void tm_cc_wrap_leave(uint64_t prev) { stub_wrap = prev; }

void *tm_cc_malloc(uint64_t id, size_t n) {
    stub_check_id(id);
    return malloc(n);
}
void *tm_cc_calloc(uint64_t id, size_t n, size_t size) {
    stub_check_id(id);
    return calloc(n, size);
}
void *tm_cc_realloc(uint64_t id, void *p, size_t size) {
    stub_check_id(id);
    return realloc(p, size);
}
void *tm_cc_reallocarray(uint64_t id, void *p, size_t n, size_t size) {
    stub_check_id(id);
    return reallocarray(p, n, size);
}
int tm_cc_posix_memalign(uint64_t id, void **p, size_t align, size_t size) {
    stub_check_id(id);
    return posix_memalign(p, align, size);
}
void *tm_cc_aligned_alloc(uint64_t id, size_t align, size_t size) {
    stub_check_id(id);
    return aligned_alloc(align, size);
}
void *tm_cc_memalign(uint64_t id, size_t align, size_t size) {
    stub_check_id(id);
    return memalign(align, size);
}
void *tm_cc_valloc(uint64_t id, size_t size) {
    stub_check_id(id);
    return valloc(size);
}
char *tm_cc_strdup(uint64_t id, const char *s) {
    stub_check_id(id);
    return strdup(s);
}
char *tm_cc_strndup(uint64_t id, const char *s, size_t n) {
    stub_check_id(id);
    return strndup(s, n);
}
