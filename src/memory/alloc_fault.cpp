#include "memory/alloc_fault.h"

namespace mw::memory {

namespace alloc_fault_detail {
std::atomic<bool> g_armed{false};
namespace {
std::atomic<uint64_t> g_target{0}, g_seen{0}, g_injected{0};
std::atomic<bool> g_persistent{false};
}  // namespace

bool should_fail_slow() {
    const uint64_t n = g_seen.fetch_add(1, std::memory_order_relaxed) + 1;
    const uint64_t target = g_target.load(std::memory_order_relaxed);
    if (n == target || (n > target && g_persistent.load(std::memory_order_relaxed))) {
        g_injected.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    return false;
}
}  // namespace alloc_fault_detail

using namespace alloc_fault_detail;

void alloc_fault_arm(uint64_t n, bool persistent) {
    g_armed.store(false, std::memory_order_seq_cst);
    g_seen.store(0);
    g_injected.store(0);
    g_target.store(n);
    g_persistent.store(persistent);
    g_armed.store(n != 0, std::memory_order_seq_cst);
}

void alloc_fault_disarm() { g_armed.store(false, std::memory_order_seq_cst); }
uint64_t alloc_fault_seen() { return g_seen.load(); }
uint64_t alloc_fault_injected() { return g_injected.load(); }

}  // namespace mw::memory
