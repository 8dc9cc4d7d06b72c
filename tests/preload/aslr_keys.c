/*
 * aslr_keys.c -- a program whose allocation sites must get the same keys in
 * every run, although ASLR loads it (and libc) at a different address each
 * time.
 *
 * It prints where main and my_alloc_wrapper are; run.sh runs it twice
 * under the preload, checks those addresses differ (so ASLR really moved
 * the program and the shared library), and compares the site keys and
 * frames of the two site tables.  The sites are in this program (direct
 * calls, and through libc's strdup and open_memstream, whose frames the
 * preload skips), in a shared library (my_alloc_wrapper in libtmwrap.so,
 * not configured as a wrapper here) and on another thread.  Every request
 * is at least 4 KiB so the default TIERMEM_SMALL_SIZE keeps them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *my_alloc_wrapper(size_t n); /* libtmwrap.so */

static void *keep[64];
static unsigned nkeep;

static void hold(void *p)
{
    if (!p)
        exit(1);
    keep[nkeep++] = p;
}

__attribute__((noinline)) static void site_malloc(void)
{
    for (int i = 0; i < 3; i++)
        hold(malloc(10000 + (size_t)i));
}

__attribute__((noinline)) static void site_calloc(void)
{
    hold(calloc(3, 5000));
}

__attribute__((noinline)) static void site_realloc(void)
{
    char *p = malloc(4096);
    for (size_t n = 8192; n <= (1u << 20); n *= 2) {
        p = realloc(p, n);
        if (!p)
            exit(1);
        memset(p, 1, n);
    }
    hold(p);
}

__attribute__((noinline)) static void site_libc(void)
{
    static char text[20000];
    memset(text, 'k', sizeof text - 1);
    hold(strdup(text)); /* libc's own call to malloc */
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        exit(1);
    for (int i = 0; i < 2000; i++)
        fprintf(f, "line %d\n", i);
    fclose(f);
    hold(buf);
}

__attribute__((noinline)) static void site_shared_lib(void)
{
    hold(my_alloc_wrapper(20000));
    hold(my_alloc_wrapper(30000));
}

static void *thread_main(void *arg)
{
    (void)arg;
    site_malloc();
    hold(malloc(65536));
    return NULL;
}

int main(void)
{
    /* Function addresses as integers: no function-to-object pointer cast. */
    printf("main %#llx my_alloc_wrapper %#llx\n",
           (unsigned long long)(uintptr_t)&main,
           (unsigned long long)(uintptr_t)&my_alloc_wrapper);
    site_malloc();
    site_calloc();
    site_realloc();
    site_libc();
    site_shared_lib();
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) || pthread_join(t, NULL))
        return 1;
    for (unsigned i = 0; i < nkeep; i++)
        free(keep[i]);
    printf("%u blocks\n", nkeep);
    return 0;
}
