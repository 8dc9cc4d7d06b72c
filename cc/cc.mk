# cc/cc.mk -- automake fragment included by Makefile.am: the compiler path,
# an LLVM pass plugin (cc/tiermem-pass.so) and the tiermem-cc, tiermem-c++
# and tiermem-fortran wrappers that load it (doc/compiler.md).
#
# The plugin is built by a plain rule with the LLVM's own clang++
# (LLVM_CLANGXX), not by libtool and $(CXX): it must match the LLVM it
# loads into, and it links nothing (clang provides every LLVM symbol).
cc_pass_sources = cc/tiermem_pass.cpp cc/alloc_calls.cpp cc/site_id.cpp \
	cc/site_note.cpp cc/wrappers.cpp
cc_pass_headers = cc/tiermem_pass.h
cc_pass_inputs = $(srcdir)/cc/tiermem_pass.cpp $(srcdir)/cc/alloc_calls.cpp \
	$(srcdir)/cc/site_id.cpp $(srcdir)/cc/site_note.cpp \
	$(srcdir)/cc/wrappers.cpp

if TM_CC_PASS
# pkglib_DATA is not an automake directory: the plugin's own one is
tmpassdir = $(pkglibdir)
tmpass_DATA = cc/tiermem-pass.so
bin_SCRIPTS = cc/tiermem-cc cc/tiermem-c++ cc/tiermem-fortran

cc/tiermem-pass.so: $(cc_pass_inputs) $(srcdir)/cc/tiermem_pass.h
	@$(MKDIR_P) cc
	$(AM_V_GEN)$(LLVM_CLANGXX) $(LLVM_CXXFLAGS) -std=c++17 -Wall -Wextra \
		-fPIC -shared -O2 -o $@ $(cc_pass_inputs)
endif

CLEANFILES += cc/tiermem-pass.so
# tests/cc file by file: the directory as a whole would be taken from the
# build tree, where make check leaves its logs, and a distcheck then finds
# a read-only run.sh.log "up to date"
EXTRA_DIST += $(cc_pass_sources) $(cc_pass_headers) cc/tiermem-cc.in \
	tests/cc/run.sh tests/cc/read_notes.py tests/cc/news.cpp \
	tests/cc/alloc.f90 tests/cc/prog/alloc.c tests/cc/prog/alloc.h \
	tests/cc/prog/main.c tests/cc/stub_runtime.c \
	tests/cc/stub_runtime_cxx.cpp tests/cc/wrap_lib.cpp \
	tests/cc/wrap_main.cpp

if TM_CC_PASS
# builds tests/cc's programs with the wrappers, against this build's runtime
TESTS += tests/cc/run.sh
endif
