// wrap_lib.cpp -- a named wrapper (TIERMEM_CC_WRAPPERS=xalloc) that may throw (tests/cc/run.sh).
#include <cstdlib>
#include <new>
extern "C" void *xalloc(std::size_t n) { if (n > 1000000) throw std::bad_alloc(); return std::malloc(n); }
