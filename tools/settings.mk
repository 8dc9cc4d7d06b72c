# tools/settings.mk -- automake fragment included by Makefile.am: the
# tiermem-settings tool that prints the settings registry, and the test that
# doc/configuration.md's tables are what it prints.
bin_PROGRAMS += tiermem-settings
tiermem_settings_SOURCES = tools/tiermem_settings.c
tiermem_settings_LDADD = libtmcore.la $(CORE_LIBS)

TESTS += tests/tools/test_settings_doc.sh
EXTRA_DIST += tests/tools/test_settings_doc.sh scripts/gen-settings-doc.sh
