# profiler/attrib.mk -- automake fragment included by Makefile.am:
# attribution (address -> arena -> site) and the replay sampler.
libtmcore_la_SOURCES +=
