// ThreadPool: a fixed set of persistent worker threads that run one parallel
// region at a time. run(fn) calls fn(thread_index, n_threads) on every thread
// (the caller is thread 0) and returns when all are done. Workers spin briefly
// between regions (a forward pass runs hundreds of short regions) and then
// sleep on a condition variable, so an idle engine uses no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace mw {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Not reentrant; called from one thread (the engine's step thread).
    template <class F>
    void run(F&& fn) {
        using Fn = std::remove_reference_t<F>;
        auto thunk = [](void* ctx, int i, int n) { (*static_cast<Fn*>(ctx))(i, n); };
        dispatch(thunk, (void*)&fn);
    }
    // Like run, but on the calling thread alone when the work is too small to
    // be worth waking the others (work: a rough count of multiply-adds).
    template <class F>
    void run_sized(int64_t work, F&& fn) {
        if (work < kMinParallelWork || n_threads_ == 1) fn(0, 1);
        else run(fn);
    }
    static constexpr int64_t kMinParallelWork = 1 << 15;

    // Splits [0, n) into n_threads contiguous chunks, each a multiple of `align`.
    static void chunk(int64_t n, int64_t align, int i, int n_threads, int64_t* begin, int64_t* end);

private:
    using Thunk = void (*)(void*, int, int);
    void dispatch(Thunk thunk, void* ctx);
    void worker(int index);
    void stop_and_join();

    int n_threads_;
    std::vector<std::thread> threads_;
    Thunk thunk_ = nullptr;
    void* ctx_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<int> sleepers_{0};
};

// Number of physical cores (distinct core ids), at least 1.
int physical_core_count();

}  // namespace mw
