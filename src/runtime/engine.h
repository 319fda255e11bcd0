// Engine: plans memory, owns the KV cache, thread pool, executor and
// scheduler, and runs steps on its own thread. Requests are validated and
// tokenized on the caller's thread at submit, then queued.
#pragma once

#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/executor.h"
#include "runtime/request.h"
#include "runtime/scheduler.h"
#include "runtime/thread_pool.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace mw {

struct EngineOptions {
    int32_t n_threads = 0;          // 0 = physical cores
    int32_t n_ctx = 0;              // 0 = min(training context, 4096)
    int32_t max_sequences = 1;
    int32_t kv_block_tokens = 16;
    KvType kv_type = KvType::F16;
    int32_t max_batch_tokens = 512;
    uint64_t memory_budget_bytes = 0;  // 0 = enough for max_sequences full contexts
};

// What an engine with these options would allocate (computed without allocating).
struct EnginePlan {
    int32_t n_threads, n_ctx, max_sequences, block_tokens, max_batch_tokens, n_blocks;
    KvType kv_type;
    size_t block_bytes, kv_bytes, scratch_bytes;
};
// Throws MW_ERR_INVALID_ARGUMENT for bad options and MW_ERR_BUDGET (with the
// smallest budget that would work) when the budget cannot hold one full sequence.
EnginePlan plan_engine(const ModelConfig& config, const EngineOptions& opts);

class Engine {
public:
    Engine(std::shared_ptr<const Model> model, const EngineOptions& opts);
    ~Engine();  // cancels everything, joins the thread
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Validates (throws mw::Error) and queues. r->prompt must be set.
    void submit(const std::shared_ptr<Request>& r);

    const EnginePlan& plan() const { return plan_; }
    const Model& model() const { return *model_; }

private:
    void loop();

    std::shared_ptr<const Model> model_;
    EnginePlan plan_;
    std::unique_ptr<KvCache> kv_;
    std::unique_ptr<ThreadPool> pool_;
    std::unique_ptr<Executor> exec_;
    std::unique_ptr<Scheduler> sched_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::shared_ptr<Request>> waiting_;
    uint64_t arrivals_ = 0;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace mw
