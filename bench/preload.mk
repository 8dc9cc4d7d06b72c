# bench/preload.mk -- automake fragment included by Makefile.am
#
# The preload benchmark's programs (`make bench` builds them with the rest):
#   mallocheavy, bigarrays  plain programs that link nothing of tiermem, run
#                           by bench/bench_preload.sh under glibc, the tiermem
#                           preload library and its peers;
#   bench_unwind            the per-allocation cost of a site's stack walk,
#                           linked against the runtime's internals like
#                           bench_alloc.
EXTRA_PROGRAMS += bench/mallocheavy bench/bigarrays bench/bench_unwind
bench_mallocheavy_SOURCES = bench/mallocheavy.c bench/bench_util.h
bench_mallocheavy_LDADD =
bench_bigarrays_SOURCES = bench/bigarrays.c bench/bench_util.h
bench_bigarrays_LDADD =
bench_bench_unwind_SOURCES = bench/bench_unwind.c bench/bench_util.h
bench_bench_unwind_LDADD = libtmcore.la $(CORE_LIBS)

EXTRA_DIST += bench/bench_preload.sh
