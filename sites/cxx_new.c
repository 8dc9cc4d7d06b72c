/*
 * cxx_new.c -- what a throwing operator new does when memory ran out: call
 * the program's new_handler and let the caller retry, or throw
 * std::bad_alloc.
 *
 * Shared by the preload library's operator new (preload/alloc_override_cxx.c)
 * and the compiler-instrumented tm_cc_new* (cc_api.c), which both live in
 * C: written against libstdc++'s exported helpers, found with dlsym, so a
 * C program never pulls libstdc++ in (one that calls new has it loaded).
 * The exception unwinds through these C frames: x86-64 objects carry
 * unwind tables (-fasynchronous-unwind-tables is the default there).
 */
#include "config.h"

#include <dlfcn.h>
#include <stdlib.h>

#include "sites.h"

typedef void (*new_handler_fn)(void);

void cxx_new_handler_or_throw(size_t size)
{
    new_handler_fn (*get_handler)(void) =
        (new_handler_fn(*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
    new_handler_fn h = get_handler ? get_handler() : NULL;
    if (h != NULL) {
        h(); /* frees memory, throws, or ends the program */
        return;
    }
    void (*throw_bad_alloc)(void) =
        (void (*)(void))dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
    if (throw_bad_alloc != NULL)
        throw_bad_alloc();
    log_error("operator new(%zu) failed and std::bad_alloc cannot be "
              "thrown (no libstdc++); aborting", size);
    abort();
}
