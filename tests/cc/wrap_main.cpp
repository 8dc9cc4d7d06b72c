// wrap_main.cpp -- calls of a wrapper of another file through invokes: the
// wrapper context is left on the normal and the unwind edge (tests/cc/run.sh).
#include <cstdio>
#include <cstdlib>
#include <string>
extern "C" void *xalloc(std::size_t n);
struct G { ~G() { std::puts("dtor"); } };
int main() {
  int caught = 0;
  void *p = nullptr, *q = nullptr;
  for (int i = 0; i < 2; i++) {
    try { G g; p = xalloc(i ? 2000000 : 64); } catch (...) { caught++; }
  }
  try { std::string s("abc"); q = xalloc(100); } catch (...) { caught++; }
  void *r = std::malloc(100000); // after an unwind: no context left
  std::printf("caught %d %p %p %p\n", caught, p, q, r);
}
