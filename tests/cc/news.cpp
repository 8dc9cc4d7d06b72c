// news.cpp -- every operator new the pass rewrites, through the stub
// runtime: nothrow new returns null for a huge size, new throws
// std::bad_alloc through an invoke the pass rewrote (tests/cc/run.sh).
#include <cstdio>
#include <new>
#include <vector>

struct alignas(64) Line {
    char bytes[64];
};

static volatile std::size_t huge = ~std::size_t(0) >> 4;

int main() {
    int *a = new int(1);
    int *b = new int[4]();
    int *c = new (std::nothrow) int(3);
    int *d = new (std::nothrow) int[4]();
    Line *e = new Line;
    Line *f = new Line[2];
    Line *g = new (std::nothrow) Line;
    Line *h = new (std::nothrow) Line[2];
    std::vector<int> v(100, 7);
    bool aligned = ((unsigned long)e % 64 == 0) && ((unsigned long)f % 64 == 0) &&
                   ((unsigned long)g % 64 == 0) && ((unsigned long)h % 64 == 0);
    char *none = new (std::nothrow) char[huge];
    bool threw = false;
    try {
        char *big = new char[huge];
        big[0] = 1;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    std::printf("aligned %d nothrow-null %d threw %d sum %d\n", aligned,
                none == nullptr, threw, *a + b[0] + *c + d[0] + v[99]);
    delete a;
    delete[] b;
    delete c;
    delete[] d;
    delete e;
    delete[] f;
    delete g;
    delete[] h;
    return aligned && none == nullptr && threw ? 0 : 1;
}
