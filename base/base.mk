# base/base.mk -- automake fragment included by Makefile.am
#
# The text lexer (base/text.c) under every line-format parser, and its
# unit test.
libtmcore_la_SOURCES += base/text.c

check_PROGRAMS += tests/unit/test_text
tests_unit_test_text_SOURCES = tests/unit/test_text.c tests/tm_test.h
tests_unit_test_text_LDADD = $(TEST_LIBS)
