// Heap: the engine's general-purpose allocator as a std::pmr::memory_resource.
// It calls mimalloc explicitly (mi_malloc_aligned / mi_free): the library
// never replaces the host process's malloc, so a Go, Java or Rust host keeps
// its own. Built with MEMWISE_SYSTEM_ALLOCATOR=ON it uses the C library
// instead, for comparison. Every heap counts its live bytes and allocations,
// which is how the memory report and the zero-allocation test see it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory_resource>

namespace mw::memory {

class Heap : public std::pmr::memory_resource {
public:
    Heap() = default;
    uint64_t live_bytes() const { return live_.load(std::memory_order_relaxed); }
    uint64_t peak_bytes() const { return peak_.load(std::memory_order_relaxed); }
    uint64_t allocations() const { return count_.load(std::memory_order_relaxed); }

    // Bytes the allocator holds from the OS for all heaps of the process
    // (mimalloc's committed memory; with the system allocator, live bytes).
    static uint64_t committed_bytes();
    static const char* allocator_name();  // "mimalloc" or "system"

private:
    void* do_allocate(size_t bytes, size_t align) override;
    void do_deallocate(void* p, size_t bytes, size_t align) override;
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }

    std::atomic<uint64_t> live_{0}, peak_{0}, count_{0};
};

}  // namespace mw::memory
