# tests/preload/preload.mk -- automake fragment included by Makefile.am
