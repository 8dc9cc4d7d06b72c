# profiler/profiler.mk -- automake fragment included by Makefile.am:
# the profiler layer's header, settings, thread and residency sampling.
libtmcore_la_SOURCES += profiler/profiler.h
