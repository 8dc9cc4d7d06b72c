# profiler/perf.mk -- automake fragment included by Makefile.am:
# the perf_event samplers (pebs, ibs, faults) and the ring reader.
libtmcore_la_SOURCES +=
