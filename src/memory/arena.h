// Arena: a bump allocator over one reserved anonymous mapping. The executor
// carves every buffer of a forward step from it, sized to the actual batch,
// and resets it before the next step; nothing is freed piecemeal. Pages are
// only backed by RAM once touched, so a small batch costs little even when the
// arena is reserved for the largest one. Allocations made before mark() stay
// across resets (buffers sized once, e.g. per-thread attention scratch).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mw::memory {

class Arena {
public:
    explicit Arena(size_t reserve_bytes);  // throws MW_ERR_OUT_OF_MEMORY
    ~Arena();
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    // 64-byte aligned. Throws MW_ERR_INTERNAL when the reservation is exceeded
    // (the plan that sized the arena is wrong: a bug, not an input error).
    void* allocate(size_t bytes);
    template <class T>
    T* alloc(size_t count) { return static_cast<T*>(allocate(count * sizeof(T))); }

    void mark() { mark_ = used_; }  // what is allocated so far survives reset()
    void reset() { used_ = mark_; }

    size_t reserved() const { return reserved_; }
    size_t used() const { return used_; }
    size_t high_water() const { return high_water_; }  // most bytes ever handed out
    size_t resident() const;                           // bytes of the mapping in RAM now
    const uint8_t* base() const { return base_; }

private:
    uint8_t* base_ = nullptr;
    size_t reserved_ = 0, used_ = 0, mark_ = 0, high_water_ = 0;
};

}  // namespace mw::memory
