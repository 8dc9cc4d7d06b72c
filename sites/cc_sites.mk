# sites/cc_sites.mk -- automake fragment included by Makefile.am: the test
# of compiler-instrumented sites and the shared object it dlopens (its own
# .note.tiermem describes a site first seen after the dlopen).
check_LTLIBRARIES = tests/unit/libcc_dso.la
tests_unit_libcc_dso_la_SOURCES = tests/unit/cc_dso.c tests/unit/cc_note.h
# -rpath: a check library is otherwise built static only
tests_unit_libcc_dso_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere

check_PROGRAMS += tests/unit/test_cc_sites
tests_unit_test_cc_sites_SOURCES = tests/unit/test_cc_sites.c tests/unit/cc_note.h \
	tests/tm_test.h
tests_unit_test_cc_sites_CPPFLAGS = $(AM_CPPFLAGS) \
	-DCC_DSO_PATH='"$(abs_top_builddir)/tests/unit/.libs/libcc_dso.so"'
tests_unit_test_cc_sites_LDADD = $(TEST_LIBS)
EXTRA_tests_unit_test_cc_sites_DEPENDENCIES = tests/unit/libcc_dso.la
