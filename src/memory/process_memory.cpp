#include "memory/process_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace mw::memory {

size_t page_size() {
    static const size_t p = (size_t)sysconf(_SC_PAGESIZE);
    return p;
}

ProcessMemory read_process_memory() {
    ProcessMemory m;
    FILE* f = std::fopen("/proc/self/smaps_rollup", "re");
    if (!f) return m;
    char line[256];
    unsigned long long kb;
    while (std::fgets(line, sizeof line, f)) {
        if (std::sscanf(line, "Rss: %llu kB", &kb) == 1) m.rss = kb * 1024;
        else if (std::sscanf(line, "Pss: %llu kB", &kb) == 1) m.pss = kb * 1024;
        else if (std::sscanf(line, "Anonymous: %llu kB", &kb) == 1) m.anonymous = kb * 1024;
    }
    std::fclose(f);
    m.file = m.rss > m.anonymous ? m.rss - m.anonymous : 0;
    m.valid = m.rss > 0;
    return m;
}

size_t resident_bytes(const void* addr, size_t len) {
    if (!addr || len == 0) return 0;
    const size_t ps = page_size();
    const uintptr_t start = (uintptr_t)addr / ps * ps;
    const size_t span = ((uintptr_t)addr + len - start + ps - 1) / ps * ps;
    // One status byte per page; done in chunks so a big mapping needs no big buffer.
    constexpr size_t kChunkPages = 4096;
    unsigned char vec[kChunkPages];
    size_t resident = 0;
    for (size_t off = 0; off < span; off += kChunkPages * ps) {
        const size_t bytes = span - off < kChunkPages * ps ? span - off : kChunkPages * ps;
        if (mincore((void*)(start + off), bytes, vec) != 0) return 0;
        for (size_t i = 0; i < bytes / ps; i++) resident += (vec[i] & 1) ? ps : 0;
    }
    return resident;
}

}  // namespace mw::memory
