#include "memory/arena.h"

#include "base/error.h"
#include "memory/process_memory.h"

#include <sys/mman.h>

#include <string>

namespace mw::memory {

namespace {
constexpr size_t kAlign = 64;
}

Arena::Arena(size_t reserve_bytes) {
    reserved_ = (reserve_bytes + page_size() - 1) / page_size() * page_size();
    if (reserved_ == 0) reserved_ = page_size();
    void* p = mmap(nullptr, reserved_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail(MW_ERR_OUT_OF_MEMORY, "cannot reserve " + std::to_string(reserved_) + " bytes for the step arena");
    base_ = static_cast<uint8_t*>(p);
}

Arena::~Arena() {
    if (base_) munmap(base_, reserved_);
}

void* Arena::allocate(size_t bytes) {
    const size_t start = (used_ + kAlign - 1) / kAlign * kAlign;
    if (start > reserved_ || bytes > reserved_ - start)
        fail(MW_ERR_INTERNAL, "step arena of " + std::to_string(reserved_) + " bytes exhausted (" +
                                  std::to_string(start + bytes) + " needed)");
    used_ = start + bytes;
    if (used_ > high_water_) high_water_ = used_;
    return base_ + start;
}

size_t Arena::resident() const { return resident_bytes(base_, reserved_); }

}  // namespace mw::memory
