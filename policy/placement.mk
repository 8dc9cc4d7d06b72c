# policy/placement.mk -- automake fragment included by Makefile.am:
# the placement algorithms (hotset, thermos, knapsack).
libtmcore_la_SOURCES += policy/policy.h
