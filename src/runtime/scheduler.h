// Scheduler: the policy of the engine. Each step it combines one decode token
// for every running sequence with chunks of prefill for sequences still
// reading their prompt, within the per-step token budget; then samples the
// next token of every sequence that produced logits, applies stop conditions
// and delivers events. Admission reserves a sequence's KV blocks up front.
#pragma once

#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/batch.h"
#include "runtime/executor.h"
#include "runtime/request.h"
#include "runtime/sampler.h"
#include "runtime/text_stream.h"

#include <deque>
#include <memory>
#include <memory_resource>
#include <vector>

namespace mw {

struct Sequence {
    std::shared_ptr<Request> request;
    BlockTable table;
    std::pmr::vector<int32_t> tokens;  // prompt + generated
    int32_t n_past = 0;                // tokens whose K/V are in the cache
    int32_t n_generated = 0;
    int32_t limit = 0;                 // total tokens this sequence may reach
    Sampler sampler;
    TextStream text;
    Sequence(std::shared_ptr<Request> r, int32_t n_vocab, int32_t limit_tokens, std::pmr::memory_resource* mr);
};

class Scheduler {
public:
    // Per-sequence state (tokens, sampler scratch) comes from mr, the engine's heap.
    Scheduler(std::shared_ptr<const Model> model, KvCache& kv, Executor& exec, int32_t n_ctx, int32_t max_sequences,
              int32_t max_batch_tokens, std::pmr::memory_resource* mr);
    int32_t n_running() const { return (int32_t)running_.size(); }

    // Tokens of KV a request needs in the worst case.
    int32_t tokens_needed(const Request& r) const;
    // Moves requests from the front of the waiting list into running while
    // sequences and KV blocks allow (waiting is ordered by priority, then arrival).
    // When an allocation fails it throws with the failing request still at the
    // front of waiting and nothing of it held (the engine fails that request).
    void admit(std::deque<std::shared_ptr<Request>>& waiting);
    bool idle() const { return running_.empty(); }
    // One forward step and its sampling. Returns false when there was nothing to do.
    bool step();
    // Finishes every running sequence with the given reason.
    void finish_all(int32_t reason, mw_status status, const std::string& message);

private:
    void finish(Sequence& s, int32_t reason, mw_status status, const std::string& message);
    void after_logits(Sequence& s, float* logits);

    std::shared_ptr<const Model> model_;
    KvCache& kv_;
    Executor& exec_;
    int32_t n_ctx_;
    int32_t max_sequences_;
    int32_t max_batch_tokens_;
    std::vector<std::unique_ptr<Sequence>> running_;
    Batch batch_;
    std::vector<Sequence*> logit_owner_;  // which sequence each logits row belongs to
    std::vector<Sequence*> prefilling_;
    std::pmr::memory_resource* mr_;
    RequestEvent token_event_;  // reused for every token event
};

}  // namespace mw
