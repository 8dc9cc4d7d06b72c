# profiler/uffd.mk -- automake fragment included by Makefile.am:
# the userfaultfd write-protect sampler.
libtmcore_la_SOURCES += profiler/sampler_uffd.c profiler/uffd_service.c \
	profiler/uffd_internal.h

check_PROGRAMS += tests/unit/test_sampler_uffd
tests_unit_test_sampler_uffd_SOURCES = tests/unit/test_sampler_uffd.c tests/tm_test.h \
	tests/profiler_util.h
tests_unit_test_sampler_uffd_LDADD = $(TEST_LIBS)

EXTRA_PROGRAMS += bench/bench_uffd
bench_bench_uffd_SOURCES = bench/bench_uffd.c bench/bench_util.h
bench_bench_uffd_LDADD = $(TEST_LIBS)
