# profiler/uffd.mk -- automake fragment included by Makefile.am:
# the userfaultfd write-protect sampler.
libtmcore_la_SOURCES +=
