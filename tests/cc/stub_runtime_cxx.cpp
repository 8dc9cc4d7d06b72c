/* stub_runtime_cxx.cpp -- A STUB, for tests/cc/run.sh only: the C++ half of
 * stub_runtime.c.  tm_cc_new* behave as operator new does: the throwing
 * ones throw std::bad_alloc, the nothrow ones return null. */
#include <cstdint>
#include <cstdlib>
#include <new>

extern "C" void stub_check_id(std::uint64_t id);

static void *aligned_or_null(std::size_t size, std::size_t align) {
    void *p = nullptr;
    if (align < sizeof(void *))
        align = sizeof(void *);
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : nullptr;
}

static void *or_throw(void *p) {
    if (!p)
        throw std::bad_alloc();
    return p;
}

extern "C" {
void *tm_cc_new(std::uint64_t id, std::size_t size) {
    stub_check_id(id);
    return or_throw(std::malloc(size ? size : 1));
}
void *tm_cc_new_array(std::uint64_t id, std::size_t size) {
    return tm_cc_new(id, size);
}
void *tm_cc_new_nothrow(std::uint64_t id, std::size_t size) noexcept {
    stub_check_id(id);
    return std::malloc(size ? size : 1);
}
void *tm_cc_new_array_nothrow(std::uint64_t id, std::size_t size) noexcept {
    return tm_cc_new_nothrow(id, size);
}
void *tm_cc_new_aligned(std::uint64_t id, std::size_t size, std::size_t align) {
    stub_check_id(id);
    return or_throw(aligned_or_null(size, align));
}
void *tm_cc_new_array_aligned(std::uint64_t id, std::size_t size,
                              std::size_t align) {
    return tm_cc_new_aligned(id, size, align);
}
void *tm_cc_new_aligned_nothrow(std::uint64_t id, std::size_t size,
                                std::size_t align) noexcept {
    stub_check_id(id);
    return aligned_or_null(size, align);
}
void *tm_cc_new_array_aligned_nothrow(std::uint64_t id, std::size_t size,
                                      std::size_t align) noexcept {
    return tm_cc_new_aligned_nothrow(id, size, align);
}
}
