# policy/guide.mk -- automake fragment included by Makefile.am:
# profiles -> guidance files, and the tiermem-guide tool.
libtmcore_la_SOURCES +=
