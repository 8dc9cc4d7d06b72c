# profiler/profile.mk -- automake fragment included by Makefile.am:
# the profile file: writer, reader and the tiermem-profile tool.
libtmcore_la_SOURCES += profiler/profile_write.c profiler/profile_read.c \
	profiler/profile_parse.c profiler/profile_parse.h

bin_PROGRAMS += tiermem-profile
tiermem_profile_SOURCES = tools/tiermem_profile.c
tiermem_profile_LDADD = libtmcore.la $(CORE_LIBS)

check_PROGRAMS += tests/unit/test_profile_format
tests_unit_test_profile_format_SOURCES = tests/unit/test_profile_format.c \
	tests/tm_test.h tests/observe.h
tests_unit_test_profile_format_LDADD = $(TEST_LIBS)

TESTS += tests/tools/test_tiermem_profile.sh
EXTRA_DIST += tests/tools/test_tiermem_profile.sh tests/tools/profile \
	tests/fuzz/fuzz_profile.c
