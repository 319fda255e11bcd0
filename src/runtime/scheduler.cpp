#include "runtime/scheduler.h"

#include "base/error.h"

#include <algorithm>

namespace mw {

Sequence::Sequence(std::shared_ptr<Request> r, int32_t n_vocab, int32_t limit_tokens, std::pmr::memory_resource* mr)
    : request(std::move(r)), tokens(mr), limit(limit_tokens), sampler(request->sampling, n_vocab, mr), text(request->stops) {
    tokens.reserve((size_t)limit_tokens);  // generation never reallocates
    tokens.assign(request->prompt.begin(), request->prompt.end());
}

Scheduler::Scheduler(std::shared_ptr<const Model> model, KvCache& kv, Executor& exec, int32_t n_ctx,
                     int32_t max_sequences, int32_t max_batch_tokens, std::pmr::memory_resource* mr)
    : model_(std::move(model)), kv_(kv), exec_(exec), n_ctx_(n_ctx), max_sequences_(max_sequences),
      max_batch_tokens_(max_batch_tokens), mr_(mr) {
    token_event_.text.reserve(256);
    batch_.tokens.reserve((size_t)max_batch_tokens);
    batch_.tables.reserve((size_t)max_sequences);
    batch_.loras.reserve((size_t)max_sequences);
    logit_owner_.reserve((size_t)max_sequences);
    prefilling_.reserve((size_t)max_sequences);
}

int32_t Scheduler::tokens_needed(const Request& r) const {
    if (r.max_tokens == 0) return n_ctx_;
    return std::min<int64_t>((int64_t)r.prompt.size() + r.max_tokens, n_ctx_);
}

void Scheduler::admit(std::deque<std::shared_ptr<Request>>& waiting) {
    while (!waiting.empty() && (int32_t)running_.size() < max_sequences_) {
        std::shared_ptr<Request> r = waiting.front();
        auto s = std::make_unique<Sequence>(r, model_->config().n_vocab, tokens_needed(*r), mr_);
        if (!kv_.reserve(s->table, s->limit)) {  // wait until blocks come back
            kv_.release(s->table);
            break;
        }
        waiting.pop_front();
        running_.push_back(std::move(s));
    }
}

void Scheduler::finish(Sequence& s, int32_t reason, mw_status status, const std::string& message) {
    RequestEvent ev;
    ev.kind = MW_EVENT_FINISHED;
    ev.finish_reason = reason;
    ev.status = status;
    ev.n_prompt_tokens = (uint32_t)s.request->prompt.size();
    ev.n_generated_tokens = (uint32_t)s.n_generated;
    if (reason == MW_FINISH_ERROR) ev.text = message;
    else if (reason != MW_FINISH_STOP_STRING && reason != MW_FINISH_CANCELLED) s.text.flush(&ev.text);
    kv_.release(s.table);
    s.request->deliver(std::move(ev));
}

void Scheduler::finish_all(int32_t reason, mw_status status, const std::string& message) {
    for (auto& s : running_) finish(*s, reason, status, message);
    running_.clear();
}

void Scheduler::after_logits(Sequence& s, float* logits) {
    const Tokenizer& tok = model_->tokenizer();
    const Request& r = *s.request;
    const size_t window = r.sampling.repeat_last_n < 0 ? s.tokens.size()
                                                       : std::min(s.tokens.size(), (size_t)r.sampling.repeat_last_n);
    const int32_t id = s.sampler.sample(logits, s.tokens.data() + s.tokens.size() - window, window);
    if (!r.ignore_eos && tok.is_eog(id)) {
        finish(s, MW_FINISH_EOS, MW_OK, "");
        return;
    }
    s.tokens.push_back(id);  // capacity reserved at admission
    s.n_generated++;
    RequestEvent& ev = token_event_;  // reused: its text keeps its capacity
    ev.kind = MW_EVENT_TOKEN;
    ev.token = id;
    ev.n_prompt_tokens = (uint32_t)r.prompt.size();
    ev.n_generated_tokens = (uint32_t)s.n_generated;
    ev.text.clear();
    const bool stopped = s.text.push(tok.piece_view(id, false), &ev.text);
    s.request->deliver(ev);
    if (stopped) finish(s, MW_FINISH_STOP_STRING, MW_OK, "");
    else if (r.max_tokens != 0 && (uint32_t)s.n_generated >= r.max_tokens) finish(s, MW_FINISH_LENGTH, MW_OK, "");
    else if ((int32_t)s.tokens.size() >= s.limit) finish(s, MW_FINISH_CONTEXT, MW_OK, "");
}

bool Scheduler::step() {
    // Drop cancelled sequences first: cancellation takes effect within one step.
    for (auto& s : running_) {
        if (s->request->cancel_requested.load()) {
            finish(*s, MW_FINISH_CANCELLED, MW_ERR_CANCELLED, "");
            s.reset();
        }
    }
    running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
    if (running_.empty()) return false;

    // Decode tokens first (one per sequence past its prompt), then prefill chunks
    // in priority/arrival order with what is left of the step's token budget.
    batch_.clear();
    logit_owner_.clear();
    int32_t budget = max_batch_tokens_;
    auto add = [&](Sequence& s, int32_t count) {
        const int32_t seq = (int32_t)batch_.tables.size();
        batch_.tables.push_back(&s.table);
        batch_.loras.push_back(s.request->lora.adapter ? &s.request->lora : nullptr);
        const int32_t last = (int32_t)s.tokens.size() - 1;
        for (int32_t i = 0; i < count; i++) {
            const int32_t pos = s.n_past + i;
            const bool want = pos == last;
            const int32_t n_prompt = (int32_t)s.request->prompt.size();
            batch_.tokens.push_back(BatchToken{s.tokens[(size_t)pos], pos, seq, want, pos < n_prompt && n_prompt > 1});
            if (want) logit_owner_.push_back(&s);
        }
        s.n_past += count;
        budget -= count;
    };
    for (auto& s : running_)
        if ((int32_t)s->tokens.size() - s->n_past == 1 && budget > 0) add(*s, 1);
    std::vector<Sequence*>& prefilling = prefilling_;
    prefilling.clear();
    for (auto& s : running_)
        if ((int32_t)s->tokens.size() - s->n_past > 1) prefilling.push_back(s.get());
    std::stable_sort(prefilling.begin(), prefilling.end(), [](const Sequence* a, const Sequence* b) {
        if (a->request->priority != b->request->priority) return a->request->priority > b->request->priority;
        return a->request->arrival < b->request->arrival;
    });
    for (Sequence* s : prefilling) {
        if (budget <= 0) break;
        add(*s, std::min(budget, (int32_t)s->tokens.size() - s->n_past));
    }
    if (batch_.tokens.empty()) return false;

    exec_.forward(batch_);
    for (size_t i = 0; i < logit_owner_.size(); i++) after_logits(*logit_owner_[i], exec_.logits((int32_t)i));

    // Sequences that finished released their blocks in finish(); drop them.
    running_.erase(std::remove_if(running_.begin(), running_.end(),
                                  [](const std::unique_ptr<Sequence>& s) { return s->request->finished(); }),
                   running_.end());
    return true;
}

}  // namespace mw
