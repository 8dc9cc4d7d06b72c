/*
 * amg_driver -- a real HPC workload for tiermem: a BoomerAMG solve through
 * hypre's IJ interface, run unmodified (tiermem comes in by LD_PRELOAD).
 *
 * It assembles the 3D Poisson problem -Laplace(u) = 1 on an N x N x N grid
 * with Dirichlet boundaries (7-point or 27-point stencil), split across the
 * ranks in slabs of z-planes, and solves it with PCG preconditioned by
 * BoomerAMG (or BoomerAMG alone).  That is the shape of hypre's own `ij`
 * driver and of the AMG proxy applications: a few large CSR arrays per
 * level of the hierarchy hold nearly all the bytes.
 *
 * stdout is deterministic: the same build, rank count and arguments print
 * the same bytes in every run, so a run under the preload library can be
 * compared with a plain one byte for byte.  Timings and memory go to stderr.
 *
 * usage: mpirun -np P amg_driver [-n N] [-stencil 7|27] [-solver pcg|amg]
 *                                [-tol T] [-maxit K]
 *   defaults: N = 100 (10^6 unknowns), 7-point, pcg, 1e-8, 100.
 *
 * Build (Debian 12, libhypre-dev 2.26):
 *   mpicc -std=c11 -O2 -I/usr/include/hypre amg_driver.c -lHYPRE -o amg_driver
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <mpi.h>

#include "HYPRE.h"
#include "HYPRE_IJ_mv.h"
#include "HYPRE_parcsr_ls.h"

typedef struct options {
    long n;        /* grid points per dimension */
    int stencil;   /* 7 or 27 */
    int use_pcg;   /* 1: PCG + BoomerAMG; 0: BoomerAMG as the solver */
    double tol;    /* relative residual */
    int maxit;
} options_t;

static void usage(int rank, const char *prog)
{
    if (rank == 0)
        fprintf(stderr,
                "usage: %s [-n N] [-stencil 7|27] [-solver pcg|amg] "
                "[-tol T] [-maxit K]\n",
                prog);
}

/* Returns 0 on success, 1 on a bad argument (every rank parses the same
 * argv, so every rank reaches the same verdict and no rank hangs in MPI). */
static int parse(int argc, char **argv, options_t *o)
{
    *o = (options_t){.n = 100, .stencil = 7, .use_pcg = 1, .tol = 1e-8,
                     .maxit = 100};
    /* Every option takes a value: step over both. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (v == NULL)
            return 1;
        if (strcmp(a, "-n") == 0) {
            o->n = strtol(v, &end, 10);
            /* N^3 rows must fit HYPRE_BigInt (32-bit in Debian's build) */
            if (*end != '\0' || o->n < 2 || o->n > 1200)
                return 1;
        } else if (strcmp(a, "-stencil") == 0) {
            o->stencil = atoi(v);
            if (o->stencil != 7 && o->stencil != 27)
                return 1;
        } else if (strcmp(a, "-solver") == 0) {
            if (strcmp(v, "pcg") == 0)
                o->use_pcg = 1;
            else if (strcmp(v, "amg") == 0)
                o->use_pcg = 0;
            else
                return 1;
        } else if (strcmp(a, "-tol") == 0) {
            o->tol = strtod(v, &end);
            if (*end != '\0' || !(o->tol > 0))
                return 1;
        } else if (strcmp(a, "-maxit") == 0) {
            o->maxit = atoi(v);
            if (o->maxit < 1)
                return 1;
        } else {
            return 1;
        }
    }
    return 0;
}

/* One row of the stencil: column indices and values of the grid point
 * (x, y, z); neighbours outside the grid are Dirichlet boundary values and
 * drop out.  Returns the number of entries and counts how many columns fall
 * in this rank's rows [lo, hi) (the "diagonal block" hypre keeps apart from
 * the off-processor part), so the matrix can be preallocated exactly. */
static int stencil_row(const options_t *o, long x, long y, long z,
                       HYPRE_BigInt lo, HYPRE_BigInt hi, HYPRE_BigInt *cols,
                       double *vals, int *ndiag)
{
    const long n = o->n;
    const HYPRE_BigInt row = (HYPRE_BigInt)(x + n * (y + n * z));
    int k = 0;
    *ndiag = 0;
    /* The diagonal first: hypre's ParCSR keeps it first in each row anyway,
     * and emitting it first makes the row layout identical on every rank. */
    cols[k] = row;
    vals[k++] = o->stencil == 7 ? 6.0 : 26.0;
    (*ndiag)++;
    for (int dz = -1; dz <= 1; dz++)
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int dist = abs(dx) + abs(dy) + abs(dz);
                if (dist == 0 || (o->stencil == 7 && dist != 1))
                    continue;
                long xx = x + dx, yy = y + dy, zz = z + dz;
                if (xx < 0 || xx >= n || yy < 0 || yy >= n || zz < 0 ||
                    zz >= n)
                    continue;
                HYPRE_BigInt c = (HYPRE_BigInt)(xx + n * (yy + n * zz));
                cols[k] = c;
                vals[k++] = -1.0;
                if (c >= lo && c < hi)
                    (*ndiag)++;
            }
    return k;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, nprocs;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nprocs);

    options_t o;
    if (parse(argc, argv, &o) != 0) {
        usage(rank, argv[0]);
        MPI_Finalize();
        return 2;
    }
    if (o.n < nprocs) {
        if (rank == 0)
            fprintf(stderr, "amg_driver: -n %ld gives some of the %d ranks "
                            "no z-plane\n", o.n, nprocs);
        MPI_Finalize();
        return 2;
    }
    HYPRE_Init();

    /* Slabs of whole z-planes: rows are numbered x fastest, so each rank's
     * rows are one contiguous range, as the IJ interface requires, and only
     * the planes next to a slab boundary talk to another rank. */
    const long n = o.n, plane = n * n;
    const long z0 = n * rank / nprocs, z1 = n * (rank + 1) / nprocs;
    const HYPRE_BigInt ilower = (HYPRE_BigInt)(z0 * plane);
    const HYPRE_BigInt iupper = (HYPRE_BigInt)(z1 * plane - 1);
    const HYPRE_BigInt hi = iupper + 1;
    const long local_rows = (z1 - z0) * plane;

    double t0 = MPI_Wtime();

    HYPRE_IJMatrix ij_a;
    HYPRE_IJMatrixCreate(MPI_COMM_WORLD, ilower, iupper, ilower, iupper, &ij_a);
    HYPRE_IJMatrixSetObjectType(ij_a, HYPRE_PARCSR);

    /* Exact per-row sizes, so assembly never grows its row buffers: the
     * allocations tiermem sees are hypre's own, not artefacts of guessing.
     * The driver's own arrays are freed before the solve starts. */
    HYPRE_Int *diag_sizes = malloc((size_t)local_rows * sizeof *diag_sizes);
    HYPRE_Int *offd_sizes = malloc((size_t)local_rows * sizeof *offd_sizes);
    /* One z-plane of rows per HYPRE_IJMatrixSetValues call: few calls, and a
     * plane's worth of buffer rather than the whole slab. */
    HYPRE_BigInt *rows = malloc((size_t)plane * sizeof *rows);
    HYPRE_Int *ncols = malloc((size_t)plane * sizeof *ncols);
    HYPRE_BigInt *cols = malloc((size_t)plane * 27 * sizeof *cols);
    double *vals = malloc((size_t)plane * 27 * sizeof *vals);
    if (!diag_sizes || !offd_sizes || !rows || !ncols || !cols || !vals) {
        fprintf(stderr, "amg_driver: rank %d: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    long nnz_local = 0;
    for (long z = z0; z < z1; z++)
        for (long y = 0; y < n; y++)
            for (long x = 0; x < n; x++) {
                HYPRE_BigInt c[27];
                double v[27];
                int nd;
                int k = stencil_row(&o, x, y, z, ilower, hi, c, v, &nd);
                long i = (z - z0) * plane + y * n + x;
                diag_sizes[i] = nd;
                offd_sizes[i] = k - nd;
                nnz_local += k;
            }
    HYPRE_IJMatrixSetDiagOffdSizes(ij_a, diag_sizes, offd_sizes);
    free(diag_sizes);
    free(offd_sizes);
    HYPRE_IJMatrixInitialize(ij_a);

    for (long z = z0; z < z1; z++) {
        long nz = 0;
        for (long y = 0; y < n; y++)
            for (long x = 0; x < n; x++) {
                long r = y * n + x;
                int nd;
                rows[r] = (HYPRE_BigInt)(x + n * (y + n * z));
                ncols[r] = stencil_row(&o, x, y, z, ilower, hi, cols + nz,
                                       vals + nz, &nd);
                nz += ncols[r];
            }
        HYPRE_IJMatrixSetValues(ij_a, (HYPRE_Int)plane, ncols, rows, cols,
                                vals);
    }
    HYPRE_IJMatrixAssemble(ij_a);
    HYPRE_ParCSRMatrix par_a;
    HYPRE_IJMatrixGetObject(ij_a, (void **)&par_a);

    /* b = 1, x0 = 0: a smooth right-hand side, the usual Poisson test. */
    HYPRE_IJVector ij_b, ij_x;
    HYPRE_IJVectorCreate(MPI_COMM_WORLD, ilower, iupper, &ij_b);
    HYPRE_IJVectorSetObjectType(ij_b, HYPRE_PARCSR);
    HYPRE_IJVectorInitialize(ij_b);
    HYPRE_IJVectorCreate(MPI_COMM_WORLD, ilower, iupper, &ij_x);
    HYPRE_IJVectorSetObjectType(ij_x, HYPRE_PARCSR);
    HYPRE_IJVectorInitialize(ij_x);
    for (long z = z0; z < z1; z++) {
        for (long r = 0; r < plane; r++) {
            rows[r] = (HYPRE_BigInt)(z * plane + r);
            vals[r] = 1.0;
        }
        HYPRE_IJVectorSetValues(ij_b, (HYPRE_Int)plane, rows, vals);
        for (long r = 0; r < plane; r++)
            vals[r] = 0.0;
        HYPRE_IJVectorSetValues(ij_x, (HYPRE_Int)plane, rows, vals);
    }
    free(rows);
    free(ncols);
    free(cols);
    free(vals);
    HYPRE_IJVectorAssemble(ij_b);
    HYPRE_IJVectorAssemble(ij_x);
    HYPRE_ParVector par_b, par_x;
    HYPRE_IJVectorGetObject(ij_b, (void **)&par_b);
    HYPRE_IJVectorGetObject(ij_x, (void **)&par_x);

    double t1 = MPI_Wtime();

    /* BoomerAMG with hypre 2.26's defaults (HMIS coarsening, extended+i
     * interpolation, l1-Gauss-Seidel) except those set here: 0.25 is the
     * strength threshold hypre recommends for 2D-like and 7-point 3D
     * problems (0.5 for 27-point), and print level 0 keeps hypre's own
     * (timing-free but verbose) statistics off stdout. */
    HYPRE_Solver amg, pcg = NULL;
    HYPRE_BoomerAMGCreate(&amg);
    HYPRE_BoomerAMGSetPrintLevel(amg, 0);
    HYPRE_BoomerAMGSetStrongThreshold(amg, o.stencil == 7 ? 0.25 : 0.5);
    HYPRE_Int iters = 0;
    HYPRE_Real relres = 0;
    if (o.use_pcg) {
        /* As a preconditioner: one V-cycle per PCG iteration, no own
         * stopping test. */
        HYPRE_BoomerAMGSetTol(amg, 0.0);
        HYPRE_BoomerAMGSetMaxIter(amg, 1);
        HYPRE_ParCSRPCGCreate(MPI_COMM_WORLD, &pcg);
        HYPRE_ParCSRPCGSetTol(pcg, o.tol);
        HYPRE_ParCSRPCGSetMaxIter(pcg, o.maxit);
        HYPRE_ParCSRPCGSetTwoNorm(pcg, 1);
        HYPRE_ParCSRPCGSetPrintLevel(pcg, 0);
        HYPRE_ParCSRPCGSetLogging(pcg, 1); /* keeps the final residual */
        HYPRE_ParCSRPCGSetPrecond(pcg, HYPRE_BoomerAMGSolve,
                                  HYPRE_BoomerAMGSetup, amg);
        HYPRE_ParCSRPCGSetup(pcg, par_a, par_b, par_x);
    } else {
        HYPRE_BoomerAMGSetTol(amg, o.tol);
        HYPRE_BoomerAMGSetMaxIter(amg, o.maxit);
        HYPRE_BoomerAMGSetLogging(amg, 1);
        HYPRE_BoomerAMGSetup(amg, par_a, par_b, par_x);
    }
    double t2 = MPI_Wtime();
    if (o.use_pcg) {
        HYPRE_ParCSRPCGSolve(pcg, par_a, par_b, par_x);
        HYPRE_ParCSRPCGGetNumIterations(pcg, &iters);
        HYPRE_ParCSRPCGGetFinalRelativeResidualNorm(pcg, &relres);
    } else {
        HYPRE_BoomerAMGSolve(amg, par_a, par_b, par_x);
        HYPRE_BoomerAMGGetNumIterations(amg, &iters);
        HYPRE_BoomerAMGGetFinalRelativeResidualNorm(amg, &relres);
    }
    double t3 = MPI_Wtime();

    /* A checksum of the solution: equal iterations and residuals could
     * still hide a different answer. */
    HYPRE_Real xnorm = 0;
    HYPRE_ParVectorInnerProd(par_x, par_x, &xnorm);

    long nnz = 0;
    MPI_Reduce(&nnz_local, &nnz, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss_kib = ru.ru_maxrss, rss_sum = 0, rss_max = 0;
    MPI_Reduce(&rss_kib, &rss_sum, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&rss_kib, &rss_max, 1, MPI_LONG, MPI_MAX, 0, MPI_COMM_WORLD);

    if (rank == 0) {
        printf("amg_driver: hypre %s, %d ranks, %ld^3 grid, %d-point "
               "Laplacian, %ld rows, %ld nonzeros\n",
               HYPRE_RELEASE_VERSION, nprocs, n, o.stencil, n * n * n, nnz);
        printf("solver: %s, tol %g\n",
               o.use_pcg ? "PCG + BoomerAMG" : "BoomerAMG", o.tol);
        printf("iterations: %d\n", (int)iters);
        printf("final relative residual: %.10e\n", (double)relres);
        printf("solution 2-norm squared: %.15e\n", (double)xnorm);
        fflush(stdout);
        fprintf(stderr,
                "amg_driver: assemble %.2f s, setup %.2f s, solve %.2f s; "
                "peak RSS %.0f MiB max per rank, %.0f MiB all ranks\n",
                t1 - t0, t2 - t1, t3 - t2, rss_max / 1024.0,
                rss_sum / 1024.0);
    }

    if (pcg != NULL)
        HYPRE_ParCSRPCGDestroy(pcg);
    HYPRE_BoomerAMGDestroy(amg);
    HYPRE_IJMatrixDestroy(ij_a);
    HYPRE_IJVectorDestroy(ij_b);
    HYPRE_IJVectorDestroy(ij_x);
    HYPRE_Finalize();
    MPI_Finalize();
    /* A solve that did not converge is a failed run. */
    return relres <= o.tol ? 0 : 1;
}
