#include "memory/heap.h"

#include "memory/alloc_fault.h"

#include <cstdlib>
#include <new>

#ifndef MEMWISE_SYSTEM_ALLOCATOR
#include <mimalloc.h>
#endif

namespace mw::memory {

namespace {
std::atomic<uint64_t> g_system_live{0};
}

void* Heap::do_allocate(size_t bytes, size_t align) {
    if (alloc_should_fail()) throw std::bad_alloc();  // tests only: injected failure
#ifdef MEMWISE_SYSTEM_ALLOCATOR
    void* p = nullptr;
    if (posix_memalign(&p, align < sizeof(void*) ? sizeof(void*) : align, bytes ? bytes : 1) != 0) p = nullptr;
    if (p) g_system_live.fetch_add(bytes, std::memory_order_relaxed);
#else
    void* p = mi_malloc_aligned(bytes ? bytes : 1, align);
#endif
    if (!p) throw std::bad_alloc();
    const uint64_t now = live_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    uint64_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    return p;
}

void Heap::do_deallocate(void* p, size_t bytes, size_t /*align*/) {
    live_.fetch_sub(bytes, std::memory_order_relaxed);
#ifdef MEMWISE_SYSTEM_ALLOCATOR
    g_system_live.fetch_sub(bytes, std::memory_order_relaxed);
    std::free(p);
#else
    mi_free(p);
#endif
}

uint64_t Heap::committed_bytes() {
#ifdef MEMWISE_SYSTEM_ALLOCATOR
    return g_system_live.load(std::memory_order_relaxed);
#else
    size_t elapsed, user, sys, rss, peak_rss, commit, peak_commit, faults;
    mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
    return commit;
#endif
}

const char* Heap::allocator_name() {
#ifdef MEMWISE_SYSTEM_ALLOCATOR
    return "system";
#else
    return "mimalloc";
#endif
}

}  // namespace mw::memory
