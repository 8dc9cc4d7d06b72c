// runtime_frames.cc -- allocations made for the program by the C++
// standard library: std::vector grown in the program's own fill(),
// compiled -O0, so the library's templates (std::__new_allocator<T>::
// allocate, vector::_M_default_append) are real functions inside this
// executable; a std::string; a vector built by an inline helper.
// tests/preload/run.sh checks that every site's first frame is in this
// program and names none of the library's template code or _start.
#include <cstdio>
#include <string>
#include <vector>

__attribute__((noinline)) void fill(std::vector<double> &v, std::size_t n)
{
    v.resize(n);
    for (std::size_t i = 0; i < n; i++)
        v[i] = static_cast<double>(i);
}

static inline std::vector<int> make_ints(std::size_t n)
{
    return std::vector<int>(n, 1);
}

__attribute__((noinline)) std::size_t words(int n)
{
    std::string s;
    for (int i = 0; i < n; i++)
        s += "word ";
    return s.size();
}

int main()
{
    std::vector<double> a;
    fill(a, 100000);
    std::vector<int> b = make_ints(50000);
    std::size_t w = words(2000);
    double sum = 0;
    for (double x : a)
        sum += x;
    std::printf("%.0f %zu %zu\n", sum, b.size(), w);
    return 0;
}
