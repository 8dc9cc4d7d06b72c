/*
 * bench_refs.c -- what the refs sampler's kernel calls cost per GiB, side
 * by side with the residency readers, for 4 KiB pages and for huge pages.
 *
 * For each size and page kind: one anonymous array, touched in full, then
 * (best of --reps) the time of
 *   clear_refs     write "1" to /proc/self/clear_refs (all accessed bits)
 *   smaps          read all of /proc/self/smaps (Referenced per VMA)
 *   numa_maps      read all of /proc/self/numa_maps (pages per node)
 *   move_pages     a status query of 1024 pages spread over the array
 *   move_pages_all a status query of every page (the exact walk)
 * and each figure per GiB.  Prints ratios, not verdicts.
 *
 *   bench_refs [--mib N,N,...] [--reps R]
 */
#include "config.h"

#include <fcntl.h>
#include <numaif.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static char buf[1 << 16];

static double time_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    double t = now_ms();
    while (read(fd, buf, sizeof buf) > 0)
        ;
    t = now_ms() - t;
    close(fd);
    return t;
}

static double time_clear(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    double t = now_ms();
    ssize_t n = write(fd, "1", 1);
    t = now_ms() - t;
    close(fd);
    return n == 1 ? t : -1;
}

static double time_query(char *a, size_t pages, size_t n)
{
    static void *pp[1 << 20];
    static int st[1 << 20];
    if (n > (1 << 20))
        n = 1 << 20;
    size_t stride = pages / n ? pages / n : 1;
    for (size_t i = 0; i < n; i++)
        pp[i] = a + i * stride * 4096;
    double t = now_ms();
    long rc = move_pages(0, n, pp, NULL, st, 0);
    t = now_ms() - t;
    return rc == 0 ? t : -1;
}

static double best(double a, double b) { return a < 0 || (b >= 0 && b < a) ? b : a; }

int main(int argc, char **argv)
{
    const char *mibs = "128,1024";
    int reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mib") == 0)
            mibs = argv[i + 1];
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 1;
    }
    printf("%-8s %-5s %12s %12s %12s %12s %14s   (ms; per GiB in brackets)\n",
           "MiB", "pages", "clear_refs", "smaps", "numa_maps", "move_pg 1024",
           "move_pg all");
    char list[256];
    snprintf(list, sizeof list, "%s", mibs);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        size_t mib = strtoul(tok, NULL, 10), size = mib << 20;
        for (int thp = 0; thp < 2 && mib > 0; thp++) {
            char *a = mmap(NULL, size + (2 << 20), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (a == MAP_FAILED) {
                perror("mmap");
                return 1;
            }
            char *al = (char *)(((uintptr_t)a + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
            madvise(al, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
            memset(al, 1, size);
            double c = -1, s = -1, n = -1, q = -1, qa = -1;
            for (int r = 0; r < reps; r++) {
                c = best(c, time_clear());
                s = best(s, time_read("/proc/self/smaps"));
                n = best(n, time_read("/proc/self/numa_maps"));
                q = best(q, time_query(al, size / 4096, 1024));
                qa = best(qa, time_query(al, size / 4096, size / 4096));
            }
            double g = (double)mib / 1024.0;
            printf("%-8zu %-5s %5.2f [%5.2f] %5.2f [%5.2f] %5.2f [%5.2f] "
                   "%5.3f        %6.2f [%6.2f]\n", mib, thp ? "2M" : "4K",
                   c, c / g, s, s / g, n, n / g, q, qa, qa / g);
            munmap(a, size + (2 << 20));
        }
    }
    return 0;
}
