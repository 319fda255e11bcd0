// Allocation-failure injection, in the style of SQLite's malloc tests: a test
// arms a countdown and the N-th allocation from then on fails (once, or every
// allocation from it on when persistent), so a loop over N visits every
// allocation a scenario reaches. The engine heap consults it; a test binary
// that replaces the global operator new consults it too (tests/fault).
//
// Release cost: one relaxed atomic load and a predicted-not-taken branch per
// heap allocation (the heap is off the per-token path after warm-up).
#pragma once

#include <atomic>
#include <cstdint>

namespace mw::memory {

namespace alloc_fault_detail {
extern std::atomic<bool> g_armed;
bool should_fail_slow();
}  // namespace alloc_fault_detail

// True when this allocation must fail. Cheap while disarmed.
inline bool alloc_should_fail() {
    if (__builtin_expect(!alloc_fault_detail::g_armed.load(std::memory_order_relaxed), 1)) return false;
    return alloc_fault_detail::should_fail_slow();
}

// The n-th allocation from now (1-based) fails; with persistent, every one
// after it fails too. n == 0 disarms.
void alloc_fault_arm(uint64_t n, bool persistent = false);
void alloc_fault_disarm();
// Allocations counted since the last arm, and failures injected since then.
uint64_t alloc_fault_seen();
uint64_t alloc_fault_injected();

}  // namespace mw::memory
