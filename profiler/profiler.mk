# profiler/profiler.mk -- automake fragment included by Makefile.am:
# the profiler layer's header, settings, thread, sampler choice and
# residency sampling.
libtmcore_la_SOURCES += profiler/profiler.h profiler/profiler_options.c \
	profiler/profiler.c profiler/profiler_fds.c profiler/profile_name.c \
	profiler/residency_sampler.c profiler/sampler_choose.c \
	profiler/profiler_internal.h

check_PROGRAMS += tests/unit/test_profiler
tests_unit_test_profiler_SOURCES = tests/unit/test_profiler.c tests/tm_test.h tests/observe.h \
	tests/profiler_util.h
tests_unit_test_profiler_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_owned_fd
tests_unit_test_owned_fd_SOURCES = tests/unit/test_owned_fd.c tests/tm_test.h
tests_unit_test_owned_fd_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_profiler_fds
tests_unit_test_profiler_fds_SOURCES = tests/unit/test_profiler_fds.c tests/tm_test.h \
	tests/observe.h tests/profiler_util.h
tests_unit_test_profiler_fds_LDADD = $(TEST_LIBS)
