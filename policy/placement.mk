# policy/placement.mk -- automake fragment included by Makefile.am:
# the placement algorithms (hotset, thermos, knapsack).
libtmcore_la_SOURCES += policy/policy.h policy/placement.c \
	policy/place_internal.h policy/place_thermos.c

check_PROGRAMS += tests/unit/test_placement
tests_unit_test_placement_SOURCES = tests/unit/test_placement.c tests/tm_test.h \
	tests/unit/placement_ref.h
tests_unit_test_placement_LDADD = $(TEST_LIBS)

EXTRA_PROGRAMS += bench/bench_placement
bench_bench_placement_SOURCES = bench/bench_placement.c bench/bench_util.h
bench_bench_placement_LDADD = $(TEST_LIBS)
