# tests/preload/preload.mk -- automake fragment included by Makefile.am
#
# The real-program tests of libtiermem-preload.so.  They are not part of
# `make check`: tests/preload/run.sh BUILD_DIR builds its own small programs
# (with gcc, g++, mpicc and -fopenmp, into BUILD_DIR/preload-tests) and runs
# them and system programs (sort, python3, gcc, mpirun) with and without
# the preload; scripts/test.sh calls it.  Here they only join the tarball.
EXTRA_DIST += \
	tests/preload/run.sh \
	tests/preload/check_sites.awk \
	tests/preload/gen_big_c.awk \
	tests/preload/gen_lines.c \
	tests/preload/tm_probe.h \
	tests/preload/threads.c \
	tests/preload/omp.c \
	tests/preload/fork_exec.c \
	tests/preload/mpi_ring.c \
	tests/preload/aslr_keys.c \
	tests/preload/wrap_lib.c \
	tests/preload/wrap_main.c \
	tests/preload/wrap_static.c \
	tests/preload/runtime_frames.cc \
	tests/preload/runtime_frames.f90 \
	tests/preload/cxx_new.cc \
	tests/preload/capi.c \
	tests/preload/malloc_stats.c \
	tests/preload/workload.py
