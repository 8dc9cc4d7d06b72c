# profiler/attrib.mk -- automake fragment included by Makefile.am:
# attribution (address -> arena -> site) and the replay sampler.
libtmcore_la_SOURCES += profiler/attribution.c profiler/sampler_replay.c

check_PROGRAMS += tests/unit/test_attribution tests/unit/test_replay
tests_unit_test_attribution_SOURCES = tests/unit/test_attribution.c tests/tm_test.h
tests_unit_test_attribution_LDADD = $(TEST_LIBS)
tests_unit_test_replay_SOURCES = tests/unit/test_replay.c tests/tm_test.h
tests_unit_test_replay_LDADD = $(TEST_LIBS)

EXTRA_PROGRAMS += bench/bench_attribution
bench_bench_attribution_SOURCES = bench/bench_attribution.c bench/bench_util.h
bench_bench_attribution_LDADD = $(TEST_LIBS)
