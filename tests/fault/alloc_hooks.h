// Replaces the global operator new / delete of a test executable so that the
// allocation-failure countdown (memory/alloc_fault.h) covers every C++
// allocation of the library linked into it, not only the engine heap's.
// Include in exactly one translation unit of the test.
#pragma once

#include "memory/alloc_fault.h"

#include <cstdlib>
#include <new>

namespace mw::test {
inline void* fault_malloc(std::size_t n, std::size_t align) {
    if (mw::memory::alloc_should_fail()) return nullptr;
    if (n == 0) n = 1;
    if (align <= alignof(std::max_align_t)) return std::malloc(n);
    void* p = nullptr;
    return posix_memalign(&p, align, n) == 0 ? p : nullptr;
}
inline void* fault_new(std::size_t n, std::size_t align) {
    void* p = fault_malloc(n, align);
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace mw::test

void* operator new(std::size_t n) { return mw::test::fault_new(n, 0); }
void* operator new[](std::size_t n) { return mw::test::fault_new(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return mw::test::fault_new(n, (std::size_t)a); }
void* operator new[](std::size_t n, std::align_val_t a) { return mw::test::fault_new(n, (std::size_t)a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return mw::test::fault_malloc(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return mw::test::fault_malloc(n, 0); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
