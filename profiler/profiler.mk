# profiler/profiler.mk -- automake fragment included by Makefile.am:
# the profiler layer's header, settings, thread and residency sampling.
libtmcore_la_SOURCES += profiler/profiler.h profiler/profiler_options.c \
	profiler/profiler.c profiler/residency_sampler.c

check_PROGRAMS += tests/unit/test_profiler
tests_unit_test_profiler_SOURCES = tests/unit/test_profiler.c tests/tm_test.h tests/observe.h
tests_unit_test_profiler_LDADD = $(TEST_LIBS)
