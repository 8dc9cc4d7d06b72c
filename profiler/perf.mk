# profiler/perf.mk -- automake fragment included by Makefile.am:
# the perf_event samplers (pebs, ibs, faults): their events' encoding,
# opening, rings (reading, wake-ups, CPUs and size within the locked-
# memory budget), and what sysfs and the host say of a PMU.
libtmcore_la_SOURCES += profiler/perf_ring.c profiler/sampler_perf.c \
	profiler/perf_event.c profiler/perf_open.c profiler/perf_wake.c \
	profiler/perf_pmu.c profiler/perf_budget.c profiler/perf_internal.h

check_PROGRAMS += tests/unit/test_perf_ring tests/unit/test_sampler_perf \
	tests/unit/test_perf_pmu tests/unit/test_perf_budget
tests_unit_test_perf_ring_SOURCES = tests/unit/test_perf_ring.c tests/tm_test.h
tests_unit_test_perf_ring_LDADD = $(TEST_LIBS)
tests_unit_test_sampler_perf_SOURCES = tests/unit/test_sampler_perf.c \
	tests/tm_test.h tests/observe.h
tests_unit_test_sampler_perf_LDADD = $(TEST_LIBS)
tests_unit_test_perf_pmu_SOURCES = tests/unit/test_perf_pmu.c tests/tm_test.h
tests_unit_test_perf_pmu_LDADD = $(TEST_LIBS)
tests_unit_test_perf_budget_SOURCES = tests/unit/test_perf_budget.c \
	tests/tm_test.h
tests_unit_test_perf_budget_LDADD = $(TEST_LIBS)
