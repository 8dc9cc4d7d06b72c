# profiler/profile.mk -- automake fragment included by Makefile.am:
# the profile file: writer, reader and the tiermem-profile tool.
libtmcore_la_SOURCES +=
