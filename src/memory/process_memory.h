// What the operating system says about memory: the process's figures from
// /proc/self/smaps_rollup and how much of a mapping is resident (mincore).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mw::memory {

struct ProcessMemory {
    uint64_t rss = 0, pss = 0, anonymous = 0, file = 0;  // bytes; file = Rss - Anonymous
    bool valid = false;
};

ProcessMemory read_process_memory();
// Bytes of [addr, addr + len) that are in RAM now (0 if mincore fails).
size_t resident_bytes(const void* addr, size_t len);
size_t page_size();

}  // namespace mw::memory
