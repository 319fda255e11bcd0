#include "runtime/thread_pool.h"

#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MW_CPU_RELAX() _mm_pause()
#else
#define MW_CPU_RELAX() ((void)0)
#endif

namespace mw {

namespace {
// Spin (pause) for a few microseconds, then keep polling with yields for a
// while (a forward pass runs regions back to back), then sleep.
constexpr int kSpinBeforeYield = 2000;
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    try {
        threads_.reserve((size_t)n_threads_);
        for (int i = 1; i < n_threads_; i++) threads_.emplace_back(&ThreadPool::worker, this, i);
    } catch (...) {
        // No destructor runs for a half-built pool: join what started, or
        // the joinable threads' destructors would terminate the process.
        stop_and_join();
        throw;
    }
}

ThreadPool::~ThreadPool() { stop_and_join(); }

void ThreadPool::stop_and_join() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

void ThreadPool::chunk(int64_t n, int64_t align, int i, int n_threads, int64_t* begin, int64_t* end) {
    const int64_t units = (n + align - 1) / align;
    const int64_t per = units / n_threads, extra = units % n_threads;
    const int64_t u0 = i * per + (i < extra ? i : extra);
    const int64_t u1 = u0 + per + (i < extra ? 1 : 0);
    *begin = u0 * align < n ? u0 * align : n;
    *end = u1 * align < n ? u1 * align : n;
}

void ThreadPool::dispatch(Thunk thunk, void* ctx) {
    if (n_threads_ == 1) {
        thunk(ctx, 0, 1);
        return;
    }
    thunk_ = thunk;
    ctx_ = ctx;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    // seq_cst on both: a worker that is about to sleep either sees the new
    // generation or is counted in sleepers_ and gets notified.
    generation_.fetch_add(1);
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        wake_.notify_all();
    }
    thunk(ctx, 0, n_threads_);
    // Spin briefly, then yield: on an oversubscribed machine a worker may be
    // waiting for this very core.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; spin++) {
        if (spin < kSpinBeforeYield) MW_CPU_RELAX();
        else std::this_thread::yield();
    }
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = generation_.load(std::memory_order_acquire);
        for (int spin = 0; gen == seen && spin < kSpinIterations; spin++) {
            if (spin < kSpinBeforeYield) MW_CPU_RELAX();
            else std::this_thread::yield();
            gen = generation_.load(std::memory_order_acquire);
        }
        if (gen == seen) {
            std::unique_lock<std::mutex> lock(mutex_);
            sleepers_.fetch_add(1);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            sleepers_.fetch_sub(1);
            gen = generation_.load(std::memory_order_acquire);
        }
        seen = gen;
        if (stop_.load()) return;
        thunk_(ctx_, index, n_threads_);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

int physical_core_count() {
    std::set<std::pair<std::string, std::string>> cores;
    for (int cpu = 0; cpu < 4096; cpu++) {
        const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
        std::ifstream core(base + "core_id"), pkg(base + "physical_package_id");
        if (!core) break;
        std::string c, p;
        core >> c;
        pkg >> p;
        cores.insert({p, c});
    }
    if (!cores.empty()) return (int)cores.size();
    const unsigned n = std::thread::hardware_concurrency();
    return n ? (int)n : 1;
}

}  // namespace mw
