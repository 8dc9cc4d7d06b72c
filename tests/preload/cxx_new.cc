/*
 * cxx_new.cc -- every replaceable operator new and delete, called directly
 * and through new-expressions, under the preload and without it.
 *
 * stdout is a fixed list of results (alignment met, bad_alloc thrown,
 * nullptr returned, new_handler called, container checksums) that must be
 * the same with any conforming allocator.  Under the preload every pointer
 * from operator new must also satisfy tm_arena_of(p) != NULL, and a stack,
 * static or mmap address must not (tm_probe.h, reported on stderr).
 * Exit status 1 on any failed check.
 */
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tm_probe.h"

static int failures;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            std::printf("FAIL line %d: %s: ", __LINE__, #cond);              \
            std::printf(__VA_ARGS__);                                        \
            std::printf("\n");                                               \
        }                                                                    \
    } while (0)

/* The compiler may not drop a new/delete pair whose pointer escapes here. */
static void use(void *p, std::size_t n, std::size_t align, const char *what)
{
    CHECK(p != nullptr, "%s returned nullptr", what);
    if (!p)
        return;
    CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0,
          "%s: %p not aligned to %zu", what, p, align);
    std::memset(p, 0xa5, n);
    tm_probe_inside_arena(p, what);
}

/* Large enough that every operator new must fail.  volatile keeps GCC from
 * warning that the constant exceeds the largest object size. */
static volatile std::size_t huge_v = SIZE_MAX - 4096;

static int handler_calls;
static void new_handler_once()
{
    handler_calls++;
    std::set_new_handler(nullptr); /* the next failure throws bad_alloc */
}

struct alignas(128) Over {
    unsigned char c[300];
    Over() { std::memset(c, 7, sizeof c); }
};

struct Base {
    virtual ~Base() = default;
    virtual int f() const { return 1; }
};
struct Derived : Base {
    unsigned char pad[5000];
    Derived() { std::memset(pad, 3, sizeof pad); }
    int f() const override { return pad[4999]; }
};

/* What an unaligned operator new owes a request of n bytes: alignment for
 * any object of that size without new-extended alignment, i.e. the largest
 * power of two <= n, capped at __STDCPP_DEFAULT_NEW_ALIGNMENT__. */
static std::size_t natural_align(std::size_t n)
{
    std::size_t a = 1;
    while (a * 2 <= n && a * 2 <= __STDCPP_DEFAULT_NEW_ALIGNMENT__)
        a *= 2;
    return a;
}

static void plain_variants()
{
    static const std::size_t sizes[] = {0, 1, 24, 100, 4095, 4096, 70000,
                                        3u << 20};
    for (std::size_t n : sizes) {
        void *p = ::operator new(n);
        use(p, n, natural_align(n), "new(n)");
        ::operator delete(p);

        p = ::operator new(n);
        use(p, n, natural_align(n), "new(n) for sized delete");
        ::operator delete(p, n);

        p = ::operator new[](n);
        use(p, n, natural_align(n), "new[](n)");
        ::operator delete[](p);

        p = ::operator new[](n);
        use(p, n, natural_align(n), "new[](n) for sized delete[]");
        ::operator delete[](p, n);

        p = ::operator new(n, std::nothrow);
        use(p, n, natural_align(n), "new(n, nothrow)");
        ::operator delete(p, std::nothrow);

        p = ::operator new[](n, std::nothrow);
        use(p, n, natural_align(n), "new[](n, nothrow)");
        ::operator delete[](p, std::nothrow);
    }
    /* operator new(0) must still give distinct pointers */
    void *a = ::operator new(0), *b = ::operator new(0);
    CHECK(a && b && a != b, "new(0) twice gave %p and %p", a, b);
    tm_probe_inside_arena(a, "new(0)");
    tm_probe_inside_arena(b, "new(0)");
    ::operator delete(a);
    ::operator delete(b);
    std::printf("plain, sized, array and nothrow new/delete: %zu sizes\n",
                sizeof sizes / sizeof sizes[0]);
}

static void aligned_variants()
{
    static const std::size_t aligns[] = {16, 32, 64, 256, 4096, 65536,
                                         2u << 20};
    unsigned count = 0;
    for (std::size_t a : aligns) {
        const std::size_t sizes[] = {1, a, 3 * a + 8, 100000};
        for (std::size_t n : sizes) {
            std::align_val_t al{a};
            void *p = ::operator new(n, al);
            use(p, n, a, "new(n, align)");
            ::operator delete(p, al);

            p = ::operator new(n, al);
            use(p, n, a, "new(n, align) for sized delete");
            ::operator delete(p, n, al);

            p = ::operator new[](n, al);
            use(p, n, a, "new[](n, align)");
            ::operator delete[](p, al);

            p = ::operator new[](n, al);
            use(p, n, a, "new[](n, align) for sized delete[]");
            ::operator delete[](p, n, al);

            p = ::operator new(n, al, std::nothrow);
            use(p, n, a, "new(n, align, nothrow)");
            ::operator delete(p, al, std::nothrow);

            p = ::operator new[](n, al, std::nothrow);
            use(p, n, a, "new[](n, align, nothrow)");
            ::operator delete[](p, al, std::nothrow);
            count++;
        }
    }
    std::printf("aligned new/delete: %u (alignment, size) pairs\n", count);
}

static void expressions()
{
    /* over-aligned types pick the align_val_t overloads */
    Over *o = new Over;
    use(o, sizeof *o, alignof(Over), "new Over");
    delete o;
    Over *oa = new Over[9];
    use(oa, sizeof *oa * 9, alignof(Over), "new Over[9]");
    delete[] oa;
    Over *on = new (std::nothrow) Over;
    use(on, sizeof *on, alignof(Over), "new (nothrow) Over");
    delete on;

    /* deleting through a base calls sized delete with the derived size */
    std::vector<Base *> objs;
    for (int i = 0; i < 100; i++) {
        Base *b = (i % 2) ? static_cast<Base *>(new Derived)
                          : new Base;
        tm_probe_inside_arena(b, "new Derived/Base");
        objs.push_back(b);
    }
    int sum = 0;
    for (Base *b : objs) {
        sum += b->f();
        delete b;
    }
    CHECK(sum == 50 * 1 + 50 * 3, "virtual sum %d", sum);

    /* arrays with a cookie (non-trivial destructor) */
    std::string *strs = new std::string[50];
    tm_probe_inside_arena(strs, "new std::string[50]");
    for (int i = 0; i < 50; i++)
        strs[i].assign(static_cast<std::size_t>(100 * i), 'x');
    std::size_t total = 0;
    for (int i = 0; i < 50; i++) {
        if (!strs[i].empty())
            tm_probe_inside_arena(strs[i].data(), "string buffer");
        total += strs[i].size();
    }
    delete[] strs;
    CHECK(total == 122500, "string total %zu", total);

    auto up = std::make_unique<unsigned char[]>(123456);
    tm_probe_inside_arena(up.get(), "make_unique array");
    auto sp = std::make_shared<Derived>();
    tm_probe_inside_arena(sp.get(), "make_shared");
    std::printf("new-expressions: over-aligned, virtual sized delete, "
                "array cookies, smart pointers ok\n");
}

static void containers()
{
    std::map<int, std::vector<int>> m;
    std::vector<std::string> v;
    for (int i = 0; i < 20000; i++) {
        m[i % 977].push_back(i);
        v.push_back(std::to_string(i * 7919) + std::string(i % 64, 'q'));
    }
    std::uint64_t h = 1469598103934665603ULL;
    for (auto &kv : m)
        for (int x : kv.second)
            h = (h ^ static_cast<std::uint64_t>(x + kv.first)) *
                1099511628211ULL;
    for (auto &s : v)
        for (char c : s)
            h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    tm_probe_inside_arena(v.data(), "vector storage");
    std::printf("containers: %zu keys, %zu strings, hash %016llx\n", m.size(),
                v.size(), static_cast<unsigned long long>(h));
}

static void threads()
{
    /* blocks made on worker threads, deleted on the main thread */
    std::vector<std::vector<std::unique_ptr<std::vector<int>>>> out(4);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
        ts.emplace_back([t, &out] {
            for (int i = 0; i < 2000; i++)
                out[t].push_back(std::make_unique<std::vector<int>>(
                    static_cast<std::size_t>(1 + (i * 37 + t) % 3000), t));
        });
    for (auto &th : ts)
        th.join();
    long sum = 0;
    for (auto &o : out)
        for (auto &p : o) {
            tm_probe_inside_arena(p->data(), "vector from a thread");
            sum += static_cast<long>(p->size()) * (*p)[0];
        }
    out.clear();
    std::printf("threads: sum %ld\n", sum);
}

static void failures_and_handler()
{
    bool threw = false;
    try {
        void *p = ::operator new(huge_v);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "new(huge) did not throw bad_alloc");

    threw = false;
    try {
        void *p = ::operator new[](huge_v, std::align_val_t{64});
        ::operator delete[](p, std::align_val_t{64});
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "new[](huge, align) did not throw bad_alloc");

    CHECK(::operator new(huge_v, std::nothrow) == nullptr, "nothrow");
    CHECK(::operator new[](huge_v, std::nothrow) == nullptr, "nothrow[]");
    CHECK(::operator new(huge_v, std::align_val_t{4096}, std::nothrow) ==
              nullptr,
          "nothrow aligned");
    CHECK(::operator new[](huge_v, std::align_val_t{4096}, std::nothrow) ==
              nullptr,
          "nothrow aligned[]");

    /* A failing operator new calls the new_handler before giving up. */
    std::set_new_handler(new_handler_once);
    threw = false;
    try {
        void *p = ::operator new(huge_v);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw && handler_calls == 1, "threw %d, handler called %d times",
          threw, handler_calls);

    /* exceptions are allocated by the runtime, through malloc */
    std::size_t len = 0;
    try {
        throw std::runtime_error(std::string(10000, 'e'));
    } catch (const std::runtime_error &e) {
        len = std::strlen(e.what());
    }
    CHECK(len == 10000, "exception message length %zu", len);
    std::printf("failures: bad_alloc thrown, nothrow gave nullptr, "
                "new_handler called %d time(s), exception ok\n",
                handler_calls);
}

static int static_object;

int main()
{
    tm_probe_init();
    int on_stack = 0;
    tm_probe_outside_arena(&on_stack, "stack variable");
    tm_probe_outside_arena(&static_object, "static variable");
    void *map = mmap(nullptr, 1 << 16, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map != MAP_FAILED) {
        tm_probe_outside_arena(map, "mmap page");
        munmap(map, 1 << 16);
    }

    plain_variants();
    aligned_variants();
    expressions();
    containers();
    threads();
    failures_and_handler();
    std::printf("failed checks: %d\n", failures);
    return (tm_probe_report() || failures) ? 1 : 0;
}
