# tests/pmu/pmu.mk -- automake fragment included by Makefile.am
#
# The probe of scripts/pmu-smoke.sh, the smoke test of the PMU samplers on
# real hardware.  Not built by make: the script compiles it with cc (a
# plain program that does not link tiermem, run under the preload library
# as any user's program would be), so it only joins the tarball here.
EXTRA_DIST += tests/pmu/pmu_probe.c
