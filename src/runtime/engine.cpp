#include "runtime/engine.h"

#include "base/error.h"

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <cstring>

namespace mw {

EnginePlan plan_engine(const ModelConfig& c, const EngineOptions& o) {
    EnginePlan p{};
    if (o.n_threads < 0 || o.n_threads > 1024) fail(MW_ERR_INVALID_ARGUMENT, "n_threads " + std::to_string(o.n_threads) + " out of range");
    if (o.n_ctx < 0) fail(MW_ERR_INVALID_ARGUMENT, "n_ctx must not be negative");
    if (o.max_sequences < 1 || o.max_sequences > 4096)
        fail(MW_ERR_INVALID_ARGUMENT, "max_sequences " + std::to_string(o.max_sequences) + " out of range [1, 4096]");
    if (o.kv_block_tokens < 1 || o.kv_block_tokens > 1024)
        fail(MW_ERR_INVALID_ARGUMENT, "kv_block_tokens " + std::to_string(o.kv_block_tokens) + " out of range [1, 1024]");
    if (o.max_batch_tokens < 1 || o.max_batch_tokens > 65536)
        fail(MW_ERR_INVALID_ARGUMENT, "max_batch_tokens " + std::to_string(o.max_batch_tokens) + " out of range");
    p.n_threads = o.n_threads ? o.n_threads : physical_core_count();
    p.n_ctx = o.n_ctx ? o.n_ctx : std::min(c.n_ctx_train, 4096);
    if (p.n_ctx > (1 << 22)) fail(MW_ERR_INVALID_ARGUMENT, "n_ctx " + std::to_string(p.n_ctx) + " too large");
    p.max_sequences = o.max_sequences;
    p.block_tokens = o.kv_block_tokens;
    p.kv_type = o.kv_type;
    p.max_batch_tokens = std::max(o.max_batch_tokens, p.max_sequences);  // a decode token for every sequence
    p.block_bytes = KvCache::block_bytes_for(c, p.kv_type, p.block_tokens);
    p.backend = resolve_backend(o.backend, o.cuda_device);
    p.scratch_bytes = step_scratch_bytes(p.backend, c, p.max_batch_tokens, p.max_sequences, p.n_ctx, p.n_threads,
                                         p.block_tokens, p.kv_type);
    const int32_t blocks_per_seq = (p.n_ctx + p.block_tokens - 1) / p.block_tokens;
    if (o.memory_budget_bytes == 0) {
        p.n_blocks = blocks_per_seq * p.max_sequences;
    } else {
        const uint64_t need_min = p.scratch_bytes + (uint64_t)blocks_per_seq * p.block_bytes;
        if (o.memory_budget_bytes < need_min)
            fail(MW_ERR_BUDGET, "memory budget of " + std::to_string(o.memory_budget_bytes) +
                                    " bytes cannot hold one sequence of " + std::to_string(p.n_ctx) +
                                    " tokens: the smallest budget that works is " + std::to_string(need_min) +
                                    " bytes (" + std::to_string(p.scratch_bytes) + " step scratch + " +
                                    std::to_string((uint64_t)blocks_per_seq * p.block_bytes) + " KV)");
        const uint64_t blocks = (o.memory_budget_bytes - p.scratch_bytes) / p.block_bytes;
        p.n_blocks = (int32_t)std::min<uint64_t>(blocks, (uint64_t)blocks_per_seq * p.max_sequences);
    }
    p.kv_bytes = (size_t)p.n_blocks * p.block_bytes;
    return p;
}

Engine::Engine(std::shared_ptr<const Model> model, const EngineOptions& opts) : model_(std::move(model)) {
    plan_ = plan_engine(model_->config(), opts);
    kv_ = std::make_unique<KvCache>(model_->config(), plan_.kv_type, plan_.block_tokens, plan_.n_blocks);
    pool_ = std::make_unique<ThreadPool>(plan_.backend == Backend::Cpu ? plan_.n_threads : 1);
    StepExecutorOptions eo;
    eo.backend = plan_.backend;
    eo.max_batch_tokens = plan_.max_batch_tokens;
    eo.max_logit_rows = plan_.max_sequences;
    eo.n_ctx = plan_.n_ctx;
    eo.step_bytes = plan_.scratch_bytes;
    eo.cuda_device = opts.cuda_device;
    eo.release_host_weights = opts.release_host_weights;
    exec_ = make_step_executor(model_, *kv_, *pool_, eo);
    SchedulerOptions so;
    so.prefix_cache = opts.prefix_cache;
    so.spill = opts.preempt_spill;
    so.spill_dir = opts.spill_dir;
    if (so.spill_dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        so.spill_dir = tmp && *tmp ? tmp : "/tmp";
    }
    sched_ = std::make_unique<Scheduler>(model_, *kv_, *exec_, plan_.n_ctx, plan_.max_sequences, plan_.max_batch_tokens,
                                         so, &heap_);
    thread_ = std::thread(&Engine::loop, this);
}

Engine::~Engine() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void Engine::validate(const Request& r) const {
    const ModelConfig& c = model_->config();
    if (r.prompt.empty()) fail(MW_ERR_INVALID_ARGUMENT, "empty prompt");
    for (size_t i = 0; i < r.prompt.size(); i++) {
        const int32_t id = r.prompt[i];
        if (id < 0 || id >= c.n_vocab)
            fail(MW_ERR_INVALID_ARGUMENT, "prompt token " + std::to_string(i) + ": id " + std::to_string(id) +
                                              " out of range [0, " + std::to_string(c.n_vocab) + ")");
    }
    const char* bad = validate_sampling(r.sampling);
    if (bad && *bad) fail(MW_ERR_INVALID_ARGUMENT, bad);
    if (r.priority < -kMaxPriority || r.priority > kMaxPriority)
        fail(MW_ERR_INVALID_ARGUMENT, "priority " + std::to_string(r.priority) + " out of range [" +
                                          std::to_string(-kMaxPriority) + ", " + std::to_string(kMaxPriority) + "]");
    const uint64_t total = (uint64_t)r.prompt.size() + r.max_tokens;
    if (r.prompt.size() >= (size_t)plan_.n_ctx || total > (uint64_t)plan_.n_ctx)
        fail(MW_ERR_CONTEXT_OVERFLOW, "prompt of " + std::to_string(r.prompt.size()) + " tokens plus max_tokens " +
                                          std::to_string(r.max_tokens) + " exceeds the context of " +
                                          std::to_string(plan_.n_ctx) + " tokens");
    const uint64_t blocks = (std::min<uint64_t>(r.max_tokens ? total : (uint64_t)plan_.n_ctx, (uint64_t)plan_.n_ctx) +
                             plan_.block_tokens - 1) / plan_.block_tokens;
    if (blocks > (uint64_t)plan_.n_blocks)
        fail(MW_ERR_BUDGET, "request needs " + std::to_string(blocks) + " KV blocks; the whole pool holds " +
                                std::to_string(plan_.n_blocks));
}

void Engine::submit(const std::shared_ptr<Request>& r) { submit_group({r}); }

void Engine::submit_group(const std::vector<std::shared_ptr<Request>>& rs) {
    if (rs.empty()) fail(MW_ERR_INVALID_ARGUMENT, "n must be at least 1");
    if (rs.size() > (size_t)plan_.max_sequences)
        fail(MW_ERR_INVALID_ARGUMENT, "n = " + std::to_string(rs.size()) + " completions exceed the engine's max_sequences " +
                                          std::to_string(plan_.max_sequences));
    for (const auto& r : rs) {
        validate(*r);
        if (r->adapter) {
            bind_adapter(*r);
            note_adapter(r->adapter);
        }
    }
    auto group = rs.size() > 1 ? std::make_shared<ForkGroup>() : nullptr;
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) fail(MW_ERR_STATE, "engine is shutting down");
        size_t pushed = 0;
        try {
            for (const auto& r : rs) {
                r->arrival = arrivals_;
                r->submitted = now;
                r->group = group;
                waiting_.push_back(r);  // admission picks by priority (with aging), then arrival
                arrivals_++;
                pushed++;
            }
        } catch (...) {
            // All or nothing: a group is never partly queued.
            for (; pushed > 0; pushed--, arrivals_--) waiting_.pop_back();
            throw;
        }
    }
    wake_.notify_all();
}

EngineStats Engine::stats() const {
    EngineStats st;
    st.sched = sched_->stats();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        st.queued = (uint32_t)waiting_.size();
        st.requests_submitted = arrivals_;
    }
    st.queued += st.sched.preempted_waiting;
    st.running = st.sched.running;
    st.kv_blocks_total = (uint32_t)kv_->n_blocks();
    st.kv_blocks_free = (uint32_t)kv_->n_free();
    st.kv_blocks_cached = (uint32_t)kv_->n_cached();
    st.kv_blocks_used = st.kv_blocks_total - st.kv_blocks_free - st.kv_blocks_cached;
    return st;
}

void Engine::bind_adapter(Request& r) const {
    // LoRA deltas are applied by the CPU executor only.
    if (plan_.backend != Backend::Cpu)
        fail(MW_ERR_UNSUPPORTED, "LoRA adapters run on the CPU backend only; this engine runs on CUDA "
                                 "(create a CPU engine for requests with an adapter)");
    if (&r.adapter->base() != model_.get())
        fail(MW_ERR_INVALID_ARGUMENT, "the LoRA adapter was opened on another model than the engine's; open it on "
                                      "the model the engine was created with");
    if (!std::isfinite(r.lora.scale)) fail(MW_ERR_INVALID_ARGUMENT, "adapter scale is not finite");
    r.lora.adapter = r.adapter.get();
    uint32_t bits;
    std::memcpy(&bits, &r.lora.scale, 4);
    // splitmix64 of (id, scale bits); odd, so never 0 (0 means no adapter).
    uint64_t z = r.adapter->id() * 0x9E3779B97F4A7C15ull ^ ((uint64_t)bits << 17);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    r.adapter_key = (z ^ (z >> 31)) | 1;
}

void Engine::note_adapter(const std::shared_ptr<const LoraAdapter>& a) {
    std::lock_guard<std::mutex> lock(adapters_mutex_);
    for (auto it = adapters_.begin(); it != adapters_.end();) {  // drop the dead, find this one
        auto live = it->lock();
        if (live == a) return;
        if (!live) it = adapters_.erase(it);
        else ++it;
    }
    adapters_.push_back(a);
}

EngineMemory Engine::memory() const {
    EngineMemory m;
    const gguf::File& f = model_->file();
    m.weights_mapped = f.file_size();
    m.weights_resident = memory::resident_bytes(f.base(), f.file_size());
    m.kv_reserved = kv_->total_bytes();
    m.kv_resident = kv_->resident_bytes();
    const uint64_t n_free = (uint64_t)kv_->n_free(), n_cached = (uint64_t)kv_->n_cached();
    m.kv_free = n_free * kv_->block_bytes();
    m.kv_cached = n_cached * kv_->block_bytes();
    m.kv_used = ((uint64_t)kv_->n_blocks() - n_free - n_cached) * kv_->block_bytes();
    m.activations_reserved = exec_->activations_reserved();
    m.activations_high_water = exec_->activations_high_water();
    m.device = exec_->device_memory();
    m.scratch = heap_.live_bytes() + model_->tokenizer().memory_bytes();
    m.heap_committed = memory::Heap::committed_bytes();
    m.heap_overhead = m.heap_committed > heap_.live_bytes() ? m.heap_committed - heap_.live_bytes() : 0;
    m.heap_allocations = heap_.allocations();
    // What the engine keeps in RAM. The heap counts at its peak: freed memory
    // stays resident in mimalloc's pages for reuse (its "committed" figure is
    // address space, mostly untouched, so it is reported but not summed).
    m.engine_total = m.kv_resident + m.activations_high_water + heap_.peak_bytes() + model_->tokenizer().memory_bytes();
    m.process = memory::read_process_memory();
    {
        std::lock_guard<std::mutex> lock(adapters_mutex_);
        for (const auto& w : adapters_)
            if (auto a = w.lock()) {
                m.adapters_mapped += a->mapped_bytes();
                m.adapters_owned += a->owned_bytes();
            }
    }
    return m;
}

namespace {
void deliver_finish(Request& r, int32_t reason, mw_status status) {
    RequestEvent ev;  // no text: allocates nothing
    ev.kind = MW_EVENT_FINISHED;
    ev.finish_reason = reason;
    ev.status = status;
    ev.n_prompt_tokens = (uint32_t)r.prompt.size();
    r.deliver(ev);
}
void deliver_cancelled(Request& r) { deliver_finish(r, MW_FINISH_CANCELLED, MW_ERR_CANCELLED); }
}  // namespace

// Ends every running request with an error. Called from exception handlers,
// so it must not throw: without memory for the message, the events go out
// without it.
void Engine::fail_running(mw_status status, const char* message) {
    std::string text;
    try {
        text = message;
    } catch (const std::bad_alloc&) {
    }
    sched_->finish_all(MW_FINISH_ERROR, status, text);
}

// The engine thread never dies of an exception: an allocation that fails here
// ends the request it was for with MW_ERR_OUT_OF_MEMORY, and the loop goes on.
void Engine::loop() {
    std::vector<std::shared_ptr<Request>> cancelled;
    for (;;) {
        bool stopping;
        std::shared_ptr<Request> failed;  // admission ran out of memory for it
        bool admit_failed = false;
        std::string admit_error;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || !waiting_.empty() || !sched_->idle(); });
            stopping = stop_;
            // Cancelled requests leave the queue at once, even while all sequences are busy.
            for (auto it = waiting_.begin(); it != waiting_.end();) {
                if (stopping || (*it)->cancel_requested.load()) {
                    try {
                        cancelled.push_back(*it);
                    } catch (const std::bad_alloc&) {
                        break;  // the rest wait for the next turn
                    }
                    it = waiting_.erase(it);
                } else {
                    ++it;
                }
            }
            if (!stopping) {
                try {
                    sched_->admit(waiting_);
                } catch (const std::exception& e) {
                    admit_failed = true;  // a bug (e.g. KV accounting): end what runs, outside the lock
                    try {
                        admit_error = e.what();
                    } catch (const std::bad_alloc&) {
                    }
                }
                failed = sched_->take_admit_failure();
            }
        }
        // Events are delivered outside the lock: a callback may submit again.
        if (failed) {
            deliver_finish(*failed, MW_FINISH_ERROR, MW_ERR_OUT_OF_MEMORY);
            sched_->count_finished(1);
        }
        if (admit_failed) fail_running(MW_ERR_INTERNAL, admit_error.c_str());
        for (auto& r : cancelled) deliver_cancelled(*r);
        sched_->count_finished(cancelled.size());
        cancelled.clear();
        if (stopping && !waiting_.empty()) continue;  // cancel what a failed push left behind
        if (stopping) break;
        try {
            sched_->step();
        } catch (const Error& e) {
            fail_running(e.status(), e.what());
        } catch (const std::bad_alloc&) {
            fail_running(MW_ERR_OUT_OF_MEMORY, "out of memory during a forward step");
        } catch (const std::exception& e) {
            fail_running(MW_ERR_INTERNAL, e.what());
        }
    }
    // Shutdown: everything still running ends as cancelled.
    sched_->finish_all(MW_FINISH_CANCELLED, MW_ERR_CANCELLED, "");
}

}  // namespace mw
