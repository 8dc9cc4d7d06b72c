# tools/amg.mk -- automake fragment included by Makefile.am
#
# tools/amg_driver.c is a BoomerAMG solve through Debian's hypre
# (libhypre-dev), the real HPC workload scripts/run-example.sh runs under the
# preload library.  It is not built here: configure does not look for hypre
# or MPI, so scripts/run-example.sh builds it with mpicc outside automake.
# It only has to ship in the tarball.
EXTRA_DIST += tools/amg_driver.c
