# profiler/refs.mk -- automake fragment included by Makefile.am:
# the accessed-bit sampler (clear_refs + smaps) and its VMA readers.
libtmcore_la_SOURCES += profiler/sampler_refs.c profiler/refs_rearm.c \
	profiler/proc_vma_scan.c \
	profiler/residency_numa_maps.c \
	profiler/vma_owner.c profiler/refs_internal.h

check_PROGRAMS += tests/unit/test_sampler_refs
tests_unit_test_sampler_refs_SOURCES = tests/unit/test_sampler_refs.c tests/tm_test.h \
	tests/profiler_util.h tests/maps_util.h
tests_unit_test_sampler_refs_LDADD = $(TEST_LIBS)

EXTRA_PROGRAMS += bench/bench_refs
bench_bench_refs_SOURCES = bench/bench_refs.c
bench_bench_refs_LDADD = $(TEST_LIBS)
