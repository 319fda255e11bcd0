// Engine: plans memory, owns the KV cache, thread pool, executor and
// scheduler, and runs steps on its own thread. Requests are validated and
// tokenized on the caller's thread at submit, then queued.
#pragma once

#include "kv/kv_cache.h"
#include "memory/heap.h"
#include "memory/process_memory.h"
#include "model/model.h"
#include "runtime/backend.h"
#include "runtime/request.h"
#include "runtime/scheduler.h"
#include "runtime/thread_pool.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mw {

struct EngineOptions {
    int32_t n_threads = 0;          // 0 = physical cores
    int32_t n_ctx = 0;              // 0 = min(training context, 4096)
    int32_t max_sequences = 1;
    int32_t kv_block_tokens = 16;
    KvType kv_type = KvType::F16;
    int32_t max_batch_tokens = 512;
    uint64_t memory_budget_bytes = 0;  // 0 = enough for max_sequences full contexts
    bool prefix_cache = true;
    bool preempt_spill = false;        // preemption spills K/V to spill_dir (else recomputes)
    std::string spill_dir;             // empty = $TMPDIR or /tmp
    // Where steps run. For CUDA the budget covers device memory (KV + step
    // buffers); the weights are uploaded on top and reported apart.
    Backend backend = Backend::Cpu;
    int32_t cuda_device = 0;
    bool release_host_weights = false;  // CUDA: drop the weights' host pages after upload
};

// Priorities a request may have (higher first); beyond is MW_ERR_INVALID_ARGUMENT.
constexpr int32_t kMaxPriority = 1000;

// Serving counters (see mw_stats in the public header).
struct EngineStats {
    uint32_t queued = 0, running = 0;
    uint32_t kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_cached = 0, kv_blocks_free = 0;
    uint64_t requests_submitted = 0;
    SchedulerStats sched;
};

// What an engine with these options would allocate (computed without allocating).
struct EnginePlan {
    int32_t n_threads, n_ctx, max_sequences, block_tokens, max_batch_tokens, n_blocks;
    KvType kv_type;
    size_t block_bytes, kv_bytes, scratch_bytes;
    Backend backend;  // resolved (Auto becomes Cpu or Cuda)
};
// Throws MW_ERR_INVALID_ARGUMENT for bad options and MW_ERR_BUDGET (with the
// smallest budget that would work) when the budget cannot hold one full sequence.
EnginePlan plan_engine(const ModelConfig& config, const EngineOptions& opts);

// Where the engine's memory goes (see mw_memory_report in the public header).
struct EngineMemory {
    uint64_t weights_mapped = 0, weights_resident = 0;
    uint64_t kv_reserved = 0, kv_resident = 0, kv_used = 0, kv_cached = 0, kv_free = 0;
    uint64_t activations_reserved = 0, activations_high_water = 0;
    uint64_t scratch = 0;  // engine heap's live bytes + the model's tokenizer tables
    uint64_t heap_committed = 0, heap_overhead = 0, heap_allocations = 0;
    uint64_t engine_total = 0;
    memory::ProcessMemory process;
    // LoRA adapters in use by this engine's requests (not in engine_total:
    // like the weights, an adapter is shared by every engine that uses it).
    uint64_t adapters_mapped = 0, adapters_owned = 0;
    DeviceMemory device;  // all 0 on the CPU backend
};

class Engine {
public:
    Engine(std::shared_ptr<const Model> model, const EngineOptions& opts);
    ~Engine();  // cancels everything, joins the thread
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Validates (throws mw::Error) and queues. r->prompt must be set.
    void submit(const std::shared_ptr<Request>& r);
    // Queues the n completions of one prompt (all or none) as a fork group.
    void submit_group(const std::vector<std::shared_ptr<Request>>& rs);
    EngineStats stats() const;

    const EnginePlan& plan() const { return plan_; }
    const Model& model() const { return *model_; }
    memory::Heap& heap() { return heap_; }
    EngineMemory memory() const;

private:
    void loop();
    void fail_running(mw_status status, const char* message);
    void validate(const Request& r) const;
    void bind_adapter(Request& r) const;
    void note_adapter(const std::shared_ptr<const LoraAdapter>& a);

    memory::Heap heap_;  // first: outlives everything allocated from it
    std::shared_ptr<const Model> model_;
    EnginePlan plan_;
    std::unique_ptr<KvCache> kv_;
    std::unique_ptr<ThreadPool> pool_;
    std::unique_ptr<StepExecutor> exec_;
    std::unique_ptr<Scheduler> sched_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::shared_ptr<Request>> waiting_;
    // Adapters submitted requests have used; reported while still alive.
    mutable std::mutex adapters_mutex_;
    std::vector<std::weak_ptr<const LoraAdapter>> adapters_;
    uint64_t arrivals_ = 0;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace mw
