# policy/online.mk -- automake fragment included by Makefile.am:
# the online policy (arena heat -> tier moves while the program runs).
libtmcore_la_SOURCES += policy/online.c policy/online_move.c \
	policy/online_internal.h policy/policy_options.c \
	policy/policy_start.c

check_PROGRAMS += tests/unit/test_online
tests_unit_test_online_SOURCES = tests/unit/test_online.c tests/tm_test.h
tests_unit_test_online_LDADD = $(TEST_LIBS)

EXTRA_DIST += doc/policy-online.md

check_PROGRAMS += tests/unit/test_policy
tests_unit_test_policy_SOURCES = tests/unit/test_policy.c tests/tm_test.h \
	tests/observe.h
tests_unit_test_policy_LDADD = $(TEST_LIBS)
