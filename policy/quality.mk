# policy/quality.mk -- automake fragment included by Makefile.am:
# the policies' quality benchmark (replay workloads with a known optimum).
EXTRA_PROGRAMS += bench/bench_policy
bench_bench_policy_SOURCES = bench/bench_policy.c \
	bench/bench_policy_workloads.c bench/bench_policy_workloads.h \
	bench/bench_util.h
bench_bench_policy_LDADD = $(TEST_LIBS)
