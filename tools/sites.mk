# tools/sites.mk -- automake fragment included by Makefile.am: the site
# table reader and the tiermem-sites tool that adds file:line to tables.
libtmcore_la_SOURCES += sites/site_table_read.c sites/site_table_fields.c

bin_PROGRAMS += tiermem-sites
tiermem_sites_SOURCES = tools/tiermem_sites.c
tiermem_sites_LDADD = libtmcore.la $(CORE_LIBS)

check_PROGRAMS += tests/unit/test_site_table
tests_unit_test_site_table_SOURCES = tests/unit/test_site_table.c tests/tm_test.h
tests_unit_test_site_table_LDADD = $(TEST_LIBS)

EXTRA_DIST += tests/fuzz/fuzz_site_table.c tests/fuzz/site_table.dict \
	tests/fuzz/corpus/site_table
