# policy/guide.mk -- automake fragment included by Makefile.am:
# profiles -> guidance files, and the tiermem-guide tool.
libtmcore_la_SOURCES += policy/guide.c

bin_PROGRAMS += tiermem-guide
tiermem_guide_SOURCES = tools/tiermem_guide.c
tiermem_guide_LDADD = libtmcore.la $(CORE_LIBS)

check_PROGRAMS += tests/unit/test_guide
tests_unit_test_guide_SOURCES = tests/unit/test_guide.c tests/tm_test.h \
	tests/observe.h
tests_unit_test_guide_LDADD = $(TEST_LIBS)

TESTS += tests/tools/test_tiermem_guide.sh
EXTRA_DIST += tests/tools/test_tiermem_guide.sh tests/tools/guide \
	doc/policy-guide.md
