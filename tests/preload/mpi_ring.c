/*
 * mpi_ring.c -- an Open MPI program for the preload test (2 ranks).
 *
 * Each round, every rank allocates a message buffer of a new size (from
 * 8 KiB to a few MiB, so the sends take Open MPI's eager and rendezvous
 * paths), fills it from (rank, round), exchanges it with the other rank,
 * checks what arrived, and frees both buffers.  Rank 0 prints the
 * per-round checksums gathered from both ranks; all values are integers
 * that depend only on (rank, round), so stdout is fixed.
 */
#define _GNU_SOURCE
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tm_probe.h"

#define ROUNDS 24

static uint64_t value(int rank, int round, size_t i)
{
    uint64_t x = ((uint64_t)rank << 48) ^ ((uint64_t)round << 32) ^ i;
    x *= 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 29);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    tm_probe_init();
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        if (rank == 0)
            printf("needs exactly 2 ranks, got %d\n", size);
        MPI_Finalize();
        return 1;
    }
    int peer = 1 - rank;
    unsigned long bad = 0;
    uint64_t mine[ROUNDS], all[2 * ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        size_t n = 1024 + (size_t)round * round * 1024; /* uint64_t values */
        uint64_t *out = malloc(n * sizeof *out), *in = malloc(n * sizeof *in);
        if (!out || !in)
            MPI_Abort(MPI_COMM_WORLD, 2);
        for (size_t i = 0; i < n; i++)
            out[i] = value(rank, round, i);
        tm_probe_inside_arena(out, "mpi send buffer");
        MPI_Sendrecv(out, (int)n, MPI_UINT64_T, peer, round, in, (int)n,
                     MPI_UINT64_T, peer, round, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        tm_probe_inside_arena(in, "mpi receive buffer");
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            bad += in[i] != value(peer, round, i);
            sum += in[i];
        }
        mine[round] = sum;
        free(out);
        free(in);
    }
    unsigned long total_bad = 0;
    MPI_Reduce(&bad, &total_bad, 1, MPI_UNSIGNED_LONG, MPI_SUM, 0,
               MPI_COMM_WORLD);
    MPI_Gather(mine, ROUNDS, MPI_UINT64_T, all, ROUNDS, MPI_UINT64_T, 0,
               MPI_COMM_WORLD);
    if (rank == 0) {
        for (int round = 0; round < ROUNDS; round++)
            printf("round %2d: rank 0 got %016llx, rank 1 got %016llx\n",
                   round, (unsigned long long)all[round],
                   (unsigned long long)all[ROUNDS + round]);
        printf("corrupt values: %lu\n", total_bad);
    }
    int probe_bad = tm_probe_report();
    MPI_Finalize();
    return (probe_bad || (rank == 0 && total_bad)) ? 1 : 0;
}
