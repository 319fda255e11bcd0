// Scheduler: the policy of the engine. Each step it combines one decode token
// for every running sequence with chunks of prefill for sequences still
// reading their prompt, within the per-step token budget; then samples the
// next token of every sequence that produced logits, applies stop conditions
// and delivers events.
//
// KV blocks are taken on demand: a sequence's prompt blocks at admission
// (after taking what the prefix cache already holds), one more block whenever
// a decoding sequence crosses a block boundary. When none is left, the most
// recently admitted sequence is preempted (its blocks freed, or spilled to a
// file) and waits again; its tokens and sampler state stay here, so it
// resumes with exactly the output it would have produced.
#pragma once

#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/batch.h"
#include "runtime/step_executor.h"
#include "runtime/request.h"
#include "runtime/sampler.h"
#include "runtime/text_stream.h"

#include <chrono>
#include <deque>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <string>
#include <vector>

namespace mw {

struct Sequence {
    std::shared_ptr<Request> request;
    BlockTable table;
    std::pmr::vector<int32_t> tokens;  // prompt + generated
    int32_t n_prompt = 0;
    int32_t n_past = 0;                // tokens whose K/V are in the cache
    int32_t n_generated = 0;
    int32_t limit = 0;                 // total tokens this sequence may reach
    uint64_t admitted = 0;             // admission order (the latest is preempted first)
    bool preempted = false;
    bool started = false;              // admitted at least once (prefix stats count once)
    std::vector<uint64_t> block_hash;  // chain hash of each full prompt block (prefix cache on)
    int32_t n_published = 0;           // leading blocks known computed (published or shared ready)
    int32_t own_from = 0;              // table blocks from here on were allocated for this sequence
    std::string spill_path;            // while spilled: the file holding spill_tokens tokens of K/V
    int32_t spill_tokens = 0;
    bool retired = false;              // finish() ran: blocks, spill file and counters are settled
    Sampler sampler;
    TextStream text;
    Sequence(std::shared_ptr<Request> r, int32_t n_vocab, int32_t limit_tokens, std::pmr::memory_resource* mr);
};

struct SchedulerOptions {
    bool prefix_cache = true;
    bool spill = false;       // preemption spills to spill_dir instead of recomputing
    std::string spill_dir;
};

// Counters the scheduler keeps (engine thread) and publishes to stats readers.
struct SchedulerStats {
    uint32_t running = 0, preempted_waiting = 0;
    uint64_t requests_finished = 0, steps = 0, prompt_tokens = 0, generated_tokens = 0;
    uint64_t prefix_hits = 0, prefix_misses = 0, preemptions = 0, spill_bytes = 0, spill_failures = 0;
    double prompt_tps = 0, generated_tps = 0;
};

class Scheduler {
public:
    // Per-sequence state (tokens, sampler scratch) comes from mr, the engine's heap.
    Scheduler(std::shared_ptr<const Model> model, KvCache& kv, StepExecutor& exec, int32_t n_ctx, int32_t max_sequences,
              int32_t max_batch_tokens, const SchedulerOptions& opts, std::pmr::memory_resource* mr);
    ~Scheduler();
    int32_t n_running() const { return (int32_t)running_.size(); }

    // Tokens of KV a request may reach.
    int32_t tokens_needed(const Request& r) const;
    // Moves sequences into running while sequence slots and KV blocks allow:
    // preempted ones and requests from waiting (which the caller guards),
    // best first by priority (plus one per 10 ms waited, so none starves),
    // then arrival. Stops at the first that does not fit (no overtaking).
    // An allocation that fails while admitting a request from waiting takes it
    // out of waiting, gives back what it held and leaves it for the caller to
    // finish (take_admit_failure: outside the caller's lock, callbacks may
    // submit); a preempted sequence is finished here. Either way with
    // MW_ERR_OUT_OF_MEMORY.
    void admit(std::deque<std::shared_ptr<Request>>& waiting);
    std::shared_ptr<Request> take_admit_failure() { return std::move(admit_failure_); }
    bool idle() const { return running_.empty() && preempted_.empty(); }
    // One forward step and its sampling. Returns false when there was nothing to do.
    bool step();
    // Finishes every running and preempted sequence with the given reason.
    void finish_all(int32_t reason, mw_status status, const std::string& message);
    // Requests that finished without reaching the scheduler (cancelled while queued).
    void count_finished(uint64_t n) {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        stats_.requests_finished += n;
    }
    // A consistent copy of the counters; any thread.
    SchedulerStats stats() const;

private:
    void finish(Sequence& s, int32_t reason, mw_status status, const std::string& message);
    void retire(Sequence& s);  // the part of finish() that gives everything back
    void after_logits(Sequence& s, int32_t row);  // row: the token's logits row in the step
    // Gives s its blocks (fork, spill file, prefix cache, then new ones).
    // False when the pool cannot hold its tokens now (s unchanged).
    bool place(Sequence& s);
    bool place_fork(Sequence& s, const Sequence& leader);
    bool restore_spill(Sequence& s);
    void preempt(Sequence& s);
    // Makes room for every decoding sequence's next token, preempting as needed.
    void grow_tables();
    // Marks the full prompt blocks s has computed as ready in the prefix index.
    void publish_blocks(Sequence& s);
    // Tokens s can compute now from n_past: skips blocks others have computed,
    // stops before a shared block another sequence is still computing.
    int32_t computable(Sequence& s);
    void release_table(Sequence& s);
    void drop_spill(Sequence& s);
    void count_tokens(uint64_t prompt, uint64_t generated);
    void publish_stats();

    std::shared_ptr<const Model> model_;
    KvCache& kv_;
    StepExecutor& exec_;
    int32_t n_ctx_;
    int32_t max_sequences_;
    int32_t max_batch_tokens_;
    SchedulerOptions opts_;
    std::vector<std::unique_ptr<Sequence>> running_;
    std::vector<std::unique_ptr<Sequence>> preempted_;  // waiting to resume
    uint64_t admissions_ = 0;
    uint64_t spill_files_ = 0;
    Batch batch_;
    std::vector<Sequence*> logit_owner_;  // which sequence each logits row belongs to
    std::vector<Sequence*> prefilling_;
    std::vector<Sequence*> grow_order_;
    std::vector<float> fork_logits_;
    std::shared_ptr<Request> admit_failure_;
    std::pmr::memory_resource* mr_;
    RequestEvent token_event_;  // reused for every token event

    // Counters: written by the engine thread under stats_mutex_.
    mutable std::mutex stats_mutex_;
    SchedulerStats stats_;
    // Tokens per 100 ms bucket over the last 5 s (50 buckets) for the rates.
    static constexpr int kBuckets = 50;
    int64_t bucket_id_[kBuckets] = {};
    uint64_t bucket_prompt_[kBuckets] = {}, bucket_generated_[kBuckets] = {};
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace mw
