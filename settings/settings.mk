# settings/settings.mk -- automake fragment included by Makefile.am
#
# The settings registry and its parsers, the log's settings, their unit
# tests, and the fuzz targets that scripts/fuzz.sh builds with clang's
# libFuzzer outside automake.
libtmcore_la_SOURCES += settings/settings.h settings/settings_init.c settings/options.c \
	settings/options_lists.h settings/options_lists.c settings/parse.c \
	settings/setting_env.c

check_PROGRAMS += tests/unit/test_options tests/unit/test_options_hostile \
	tests/unit/test_options_registry tests/unit/test_log
tests_unit_test_options_SOURCES = tests/unit/test_options.c tests/tm_test.h \
	tests/observe.h tests/options_util.h
tests_unit_test_options_LDADD = $(TEST_LIBS)
tests_unit_test_options_hostile_SOURCES = tests/unit/test_options_hostile.c \
	tests/tm_test.h tests/observe.h tests/options_util.h
tests_unit_test_options_hostile_LDADD = $(TEST_LIBS)
tests_unit_test_options_registry_SOURCES = \
	tests/unit/test_options_registry.c tests/tm_test.h tests/observe.h
tests_unit_test_options_registry_LDADD = $(TEST_LIBS)
tests_unit_test_log_SOURCES = tests/unit/test_log.c tests/tm_test.h
tests_unit_test_log_LDADD = $(TEST_LIBS)

EXTRA_DIST += tests/fuzz scripts/fuzz.sh
