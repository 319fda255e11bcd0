#include "runtime/scheduler.h"

#include "base/error.h"
#include "kv/kv_spill.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace mw {

namespace {

int32_t blocks_for(int32_t tokens, int32_t block_tokens) { return (tokens + block_tokens - 1) / block_tokens; }

// Priority plus one level per 10 ms spent waiting since submission: across the
// whole range [-1000, 1000] a request waits at most 20 s for its turn.
int64_t effective_priority(const Request& r, std::chrono::steady_clock::time_point now) {
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - r.submitted).count();
    return (int64_t)r.priority + waited / 10;
}

}  // namespace

Sequence::Sequence(std::shared_ptr<Request> r, int32_t n_vocab, int32_t limit_tokens, std::pmr::memory_resource* mr)
    : request(std::move(r)), tokens(mr), limit(limit_tokens), sampler(request->sampling, n_vocab, mr), text(request->stops) {
    tokens.reserve((size_t)limit_tokens);  // generation never reallocates
    tokens.assign(request->prompt.begin(), request->prompt.end());
    n_prompt = (int32_t)request->prompt.size();
}

Scheduler::Scheduler(std::shared_ptr<const Model> model, KvCache& kv, StepExecutor& exec, int32_t n_ctx,
                     int32_t max_sequences, int32_t max_batch_tokens, const SchedulerOptions& opts,
                     std::pmr::memory_resource* mr)
    : model_(std::move(model)), kv_(kv), exec_(exec), n_ctx_(n_ctx), max_sequences_(max_sequences),
      max_batch_tokens_(max_batch_tokens), opts_(opts), mr_(mr) {
    token_event_.text.reserve(256);
    batch_.tokens.reserve((size_t)max_batch_tokens);
    batch_.tables.reserve((size_t)max_sequences);
    batch_.loras.reserve((size_t)max_sequences);
    logit_owner_.reserve((size_t)max_sequences);
    prefilling_.reserve((size_t)max_sequences);
    grow_order_.reserve((size_t)max_sequences);
    running_.reserve((size_t)max_sequences);
    fork_logits_.resize((size_t)model_->config().n_vocab);
    for (auto& id : bucket_id_) id = -1;
}

Scheduler::~Scheduler() {
    for (auto& s : preempted_) drop_spill(*s);
}

int32_t Scheduler::tokens_needed(const Request& r) const {
    if (r.max_tokens == 0) return n_ctx_;
    return std::min<int64_t>((int64_t)r.prompt.size() + r.max_tokens, n_ctx_);
}

// ---- admission ----

bool Scheduler::place_fork(Sequence& s, const Sequence& leader) {
    // Share the leader's full blocks below the last prompt token, copy the
    // partly filled one (copy-on-write at fork), and compute only the last
    // prompt token again for this completion's own logits.
    const int32_t B = kv_.block_tokens();
    const int32_t keep = s.n_prompt - 1;
    const int32_t shared = keep / B;
    const bool partial = keep % B != 0;
    const int32_t extra = blocks_for(s.n_prompt, B) - shared - (partial ? 1 : 0);
    if (kv_.n_available() < (partial ? 1 : 0) + extra) return false;
    for (int32_t i = 0; i < shared; i++) {
        kv_.retain(leader.table.blocks[(size_t)i]);
        s.table.blocks.push_back(leader.table.blocks[(size_t)i]);
    }
    if (partial) {
        const int32_t b = kv_.alloc_block();
        exec_.copy_kv_block(leader.table.blocks[(size_t)shared], b);  // where the backend keeps K/V
        s.table.blocks.push_back(b);
    }
    if (!kv_.reserve(s.table, s.n_prompt)) fail(MW_ERR_INTERNAL, "KV blocks counted but not available");
    s.n_past = keep;
    s.n_published = shared;
    s.own_from = shared;
    return true;
}

bool Scheduler::restore_spill(Sequence& s) {
    const int32_t T = (int32_t)s.tokens.size();
    if (kv_.n_available() < blocks_for(T, kv_.block_tokens())) return false;
    if (!kv_.reserve(s.table, T)) fail(MW_ERR_INTERNAL, "KV blocks counted but not available");
    s.own_from = 0;
    s.n_published = 0;
    std::vector<int32_t> blocks(s.table.blocks.begin(),
                                s.table.blocks.begin() + blocks_for(s.spill_tokens, kv_.block_tokens()));
    try {
        restore_blocks(kv_, blocks, s.spill_path,
                       [this](int32_t b, const void* in) { exec_.write_kv_block(b, in); });
        s.n_past = s.spill_tokens;
    } catch (const Error&) {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        stats_.spill_failures++;
        s.n_past = 0;  // recompute everything instead
    }
    drop_spill(s);
    return true;
}

bool Scheduler::place(Sequence& s) {
    const int32_t B = kv_.block_tokens();
    const int32_t T = (int32_t)s.tokens.size();
    // Room for every block the sequence can reach, first: no push_back below
    // can then fail between taking a block and recording it in the table.
    s.table.blocks.reserve((size_t)blocks_for(std::max(s.limit, T), B));
    if (!s.spill_path.empty()) return restore_spill(s);
    // A completion of mw_submit_n forks from the member that computed the prompt.
    const auto& g = s.request->group;
    if (g && g->leader && g->leader != &s && !g->leader->preempted && g->leader->n_past >= s.n_prompt - 1)
        return place_fork(s, *g->leader);

    // Prefix cache: leading full prompt blocks that are cached or being
    // computed by a running sequence (never the block of the last token to
    // compute: its logits are needed).
    const bool use_cache = opts_.prefix_cache && s.n_prompt > 1;
    // The chain starts at the request's adapter key (0 without a LoRA adapter):
    // K/V computed under an adapter differ, so they never match the base's.
    const uint64_t root = s.request->adapter_key;
    if (use_cache && s.block_hash.empty()) {
        uint64_t parent = root;
        for (int32_t i = 0; (i + 1) * B <= s.n_prompt; i++) {
            parent = KvCache::chain_hash(parent, s.tokens.data() + (size_t)i * B, B);
            s.block_hash.push_back(parent);
        }
    }
    auto parent_of = [&](int32_t i) { return i == 0 ? root : s.block_hash[(size_t)i - 1]; };
    std::vector<int32_t> hit;
    if (use_cache) {
        const int32_t max_hit = (std::min(s.n_prompt, T) - 1) / B;
        for (int32_t i = 0; i < max_hit; i++) {
            const int32_t b = kv_.lookup(s.block_hash[(size_t)i], parent_of(i), s.tokens.data() + (size_t)i * B);
            if (b < 0) break;
            hit.push_back(b);
        }
    }
    int32_t cached_hits = 0;  // hits now sitting unowned in the LRU: taking them uses up available blocks
    for (int32_t b : hit) cached_hits += kv_.ref_count(b) == 0 ? 1 : 0;
    const int32_t need = blocks_for(T, B) - (int32_t)hit.size();
    // Leave one block of growth per running sequence, so admission does not
    // immediately force a preemption.
    const int32_t headroom = running_.empty() ? 0 : (int32_t)running_.size();
    if (kv_.n_available() - cached_hits < need + headroom) return false;
    for (int32_t b : hit) {
        kv_.retain(b);
        s.table.blocks.push_back(b);
    }
    if (!kv_.reserve(s.table, T)) fail(MW_ERR_INTERNAL, "KV blocks counted but not available");
    s.own_from = (int32_t)hit.size();
    // Claim the full prompt blocks this sequence computes, so that sequences
    // admitted meanwhile share them instead of computing them again.
    for (int32_t i = s.own_from; i < (int32_t)s.block_hash.size() && use_cache; i++)
        kv_.claim(s.table.blocks[(size_t)i], s.block_hash[(size_t)i], parent_of(i), s.tokens.data() + (size_t)i * B);
    s.n_past = 0;
    s.n_published = 0;
    if (!s.started && use_cache) {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        stats_.prefix_hits += hit.size();
        stats_.prefix_misses += s.block_hash.size() - hit.size();
    }
    return true;
}

void Scheduler::admit(std::deque<std::shared_ptr<Request>>& waiting) {
    const auto now = std::chrono::steady_clock::now();
    while ((int32_t)running_.size() < max_sequences_) {
        // The best candidate among preempted sequences and waiting requests.
        // A completion whose group's prompt is being computed waits for it.
        auto better = [&](const Request& a, const Request& b) {
            const int64_t pa = effective_priority(a, now), pb = effective_priority(b, now);
            return pa != pb ? pa > pb : a.arrival < b.arrival;
        };
        auto eligible = [](const Request& r) {
            return !r.group || !r.group->leader || r.group->leader->n_past >= (int32_t)r.prompt.size() - 1;
        };
        int best_p = -1;
        for (size_t i = 0; i < preempted_.size(); i++)
            if (best_p < 0 || better(*preempted_[i]->request, *preempted_[(size_t)best_p]->request)) best_p = (int)i;
        int best_w = -1;
        for (size_t i = 0; i < waiting.size(); i++)
            if (eligible(*waiting[i]) && (best_w < 0 || better(*waiting[i], *waiting[(size_t)best_w]))) best_w = (int)i;
        if (best_p < 0 && best_w < 0) break;
        const bool from_preempted =
            best_p >= 0 && (best_w < 0 || better(*preempted_[(size_t)best_p]->request, *waiting[(size_t)best_w]));

        std::unique_ptr<Sequence> s;
        bool placed = false;
        try {
            if (from_preempted) {
                s = std::move(preempted_[(size_t)best_p]);
            } else {
                const std::shared_ptr<Request>& r = waiting[(size_t)best_w];
                s = std::make_unique<Sequence>(r, model_->config().n_vocab, tokens_needed(*r), mr_);
            }
            placed = place(*s);
        } catch (const std::bad_alloc&) {
            if (s) release_table(*s);  // blocks place() took go back
            if (from_preempted) {
                preempted_.erase(preempted_.begin() + best_p);
                finish(*s, MW_FINISH_ERROR, MW_ERR_OUT_OF_MEMORY, "");
            } else {
                admit_failure_ = std::move(waiting[(size_t)best_w]);
                waiting.erase(waiting.begin() + best_w);
            }
            break;  // memory is short: admit nothing more this turn
        }
        if (!placed) {  // wait until blocks come back
            if (from_preempted) preempted_[(size_t)best_p] = std::move(s);
            break;
        }
        if (from_preempted) preempted_.erase(preempted_.begin() + best_p);
        else waiting.erase(waiting.begin() + best_w);
        s->preempted = false;
        s->started = true;
        s->admitted = ++admissions_;
        const auto& g = s->request->group;
        if (g && !g->leader) g->leader = s.get();
        running_.push_back(std::move(s));
    }
    publish_stats();
}

// ---- preemption ----

void Scheduler::drop_spill(Sequence& s) {
    if (s.spill_path.empty()) return;
    std::remove(s.spill_path.c_str());
    s.spill_path.clear();
    s.spill_tokens = 0;
}

void Scheduler::preempt(Sequence& s) {
    if (opts_.spill && s.n_past > 0) {
        const std::string dir = opts_.spill_dir.empty() ? "/tmp" : opts_.spill_dir;
        s.spill_path = dir + "/memwise-spill-" + std::to_string(getpid()) + "-" +
                       std::to_string((uintptr_t)this) + "-" + std::to_string(++spill_files_) + ".kv.zst";
        const std::vector<int32_t> blocks(s.table.blocks.begin(),
                                          s.table.blocks.begin() + blocks_for(s.n_past, kv_.block_tokens()));
        try {
            const size_t written = spill_blocks(kv_, blocks, s.spill_path,
                                                [this](int32_t b, void* out) { exec_.read_kv_block(b, out); });
            s.spill_tokens = s.n_past;
            std::lock_guard<std::mutex> lock(stats_mutex_);
            stats_.spill_bytes += written;
        } catch (const Error&) {
            s.spill_path.clear();  // recompute instead
            std::lock_guard<std::mutex> lock(stats_mutex_);
            stats_.spill_failures++;
        }
    }
    release_table(s);
    s.n_past = 0;
    s.preempted = true;
    const auto& g = s.request->group;
    if (g && g->leader == &s) g->leader = nullptr;
    std::lock_guard<std::mutex> lock(stats_mutex_);
    stats_.preemptions++;
}

void Scheduler::grow_tables() {
    // Oldest admission first; the victim is always the latest admitted.
    std::vector<Sequence*>& order = grow_order_;  // reused: decoding allocates nothing
    order.clear();
    for (auto& s : running_) order.push_back(s.get());
    std::sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) { return a->admitted < b->admitted; });
    for (Sequence* s : order) {
        if (s->preempted) continue;
        while (!kv_.reserve(s->table, (int32_t)s->tokens.size())) {
            Sequence* victim = nullptr;
            for (Sequence* v : order)
                if (!v->preempted && (!victim || v->admitted > victim->admitted)) victim = v;
            preempt(*victim);
            if (victim == s) break;
        }
    }
    for (auto& s : running_)
        if (s->preempted) preempted_.push_back(std::move(s));
    running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
}

// ---- stepping ----

void Scheduler::retire(Sequence& s) {
    if (s.retired) return;
    s.retired = true;
    release_table(s);
    drop_spill(s);
    const auto& g = s.request->group;
    if (g && g->leader == &s) g->leader = nullptr;
    std::lock_guard<std::mutex> lock(stats_mutex_);
    stats_.requests_finished++;
}

void Scheduler::finish(Sequence& s, int32_t reason, mw_status status, const std::string& message) {
    if (s.retired) return;
    retire(s);  // first: nothing below may keep the blocks
    RequestEvent ev;
    ev.kind = MW_EVENT_FINISHED;
    ev.finish_reason = reason;
    ev.status = status;
    ev.n_prompt_tokens = (uint32_t)s.n_prompt;
    ev.n_generated_tokens = (uint32_t)s.n_generated;
    try {
        if (reason == MW_FINISH_ERROR) ev.text = message;
        else if (reason != MW_FINISH_STOP_STRING && reason != MW_FINISH_CANCELLED) s.text.flush(&ev.text);
    } catch (const std::bad_alloc&) {
        ev.text.clear();  // the finish still goes out, without its text
    }
    s.request->deliver(ev);
}

void Scheduler::finish_all(int32_t reason, mw_status status, const std::string& message) {
    for (auto& s : running_) finish(*s, reason, status, message);
    running_.clear();
    for (auto& s : preempted_) finish(*s, reason, status, message);
    preempted_.clear();
    publish_stats();
}

void Scheduler::after_logits(Sequence& s, int32_t row) {
    const Tokenizer& tok = model_->tokenizer();
    const Request& r = *s.request;
    const size_t window = r.sampling.repeat_last_n < 0 ? s.tokens.size()
                                                       : std::min(s.tokens.size(), (size_t)r.sampling.repeat_last_n);
    // Greedy sequences on a device backend take the token the device picked:
    // only the id crosses to the host.
    const int32_t id = s.sampler.greedy() && exec_.has_device_argmax()
                           ? exec_.argmax(row)
                           : s.sampler.sample(exec_.logits(row), s.tokens.data() + s.tokens.size() - window, window);
    if (!r.ignore_eos && tok.is_eog(id)) {
        finish(s, MW_FINISH_EOS, MW_OK, "");
        return;
    }
    s.tokens.push_back(id);  // capacity reserved at admission
    s.n_generated++;
    RequestEvent& ev = token_event_;  // reused: its text keeps its capacity
    ev.kind = MW_EVENT_TOKEN;
    ev.token = id;
    ev.n_prompt_tokens = (uint32_t)s.n_prompt;
    ev.n_generated_tokens = (uint32_t)s.n_generated;
    ev.text.clear();
    const bool stopped = s.text.push(tok.piece_view(id, false), &ev.text);
    s.request->deliver(ev);
    if (stopped) finish(s, MW_FINISH_STOP_STRING, MW_OK, "");
    else if (r.max_tokens != 0 && (uint32_t)s.n_generated >= r.max_tokens) finish(s, MW_FINISH_LENGTH, MW_OK, "");
    else if ((int32_t)s.tokens.size() >= s.limit) finish(s, MW_FINISH_CONTEXT, MW_OK, "");
}

void Scheduler::release_table(Sequence& s) {
    // Blocks it claimed but did not finish computing leave the index, so a
    // sequence sharing them computes them itself instead of waiting.
    for (size_t i = (size_t)s.own_from; i < s.table.blocks.size(); i++) kv_.unclaim(s.table.blocks[i]);
    kv_.release(s.table);
    s.own_from = 0;
    s.n_published = 0;
}

void Scheduler::publish_blocks(Sequence& s) {
    const int32_t B = kv_.block_tokens();
    const int32_t full = std::min(std::min(s.n_past, s.n_prompt) / B, (int32_t)s.block_hash.size());
    for (; s.n_published < full; s.n_published++) {
        const int32_t i = s.n_published;
        kv_.publish(s.table.blocks[(size_t)i], s.block_hash[(size_t)i],
                    i == 0 ? s.request->adapter_key : s.block_hash[(size_t)i - 1],
                    s.tokens.data() + (size_t)i * B);
    }
}

int32_t Scheduler::computable(Sequence& s) {
    const int32_t B = kv_.block_tokens();
    const int32_t last = (int32_t)s.tokens.size() - 1;  // always computed here: its logits are needed
    while (s.n_past % B == 0 && s.n_past + B <= last && kv_.ready(s.table.blocks[(size_t)(s.n_past / B)])) {
        s.n_past += B;
        s.n_published = std::max(s.n_published, s.n_past / B);
    }
    for (int32_t i = s.n_past / B; i < s.own_from; i++)
        if (kv_.pending(s.table.blocks[(size_t)i])) return std::max(0, i * B - s.n_past);
    return (int32_t)s.tokens.size() - s.n_past;
}

bool Scheduler::step() {
    // Drop cancelled sequences first: cancellation frees blocks within one step.
    for (auto& s : running_) {
        if (s->request->cancel_requested.load()) {
            finish(*s, MW_FINISH_CANCELLED, MW_ERR_CANCELLED, "");
            s.reset();
        }
    }
    running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
    // Preempted ones too (their blocks are already free). Here, not in admit:
    // admit runs under the engine's lock, and a finish event's callback may submit.
    for (auto& s : preempted_) {
        if (s->request->cancel_requested.load()) {
            finish(*s, MW_FINISH_CANCELLED, MW_ERR_CANCELLED, "");
            s.reset();
        }
    }
    preempted_.erase(std::remove(preempted_.begin(), preempted_.end(), nullptr), preempted_.end());
    grow_tables();
    if (running_.empty()) {
        publish_stats();
        return false;
    }

    // Decode tokens first (one per sequence past its prompt), then prefill chunks
    // in priority/arrival order with what is left of the step's token budget.
    batch_.clear();
    logit_owner_.clear();
    int32_t budget = max_batch_tokens_;
    uint64_t n_prompt_tokens = 0;
    auto add = [&](Sequence& s, int32_t count) {
        const int32_t seq = (int32_t)batch_.tables.size();
        batch_.tables.push_back(&s.table);
        batch_.loras.push_back(s.request->lora.adapter ? &s.request->lora : nullptr);
        const int32_t last = (int32_t)s.tokens.size() - 1;
        for (int32_t i = 0; i < count; i++) {
            const int32_t pos = s.n_past + i;
            const bool want = pos == last;
            const bool prompt = pos < s.n_prompt;
            batch_.tokens.push_back(BatchToken{s.tokens[(size_t)pos], pos, seq, want, prompt && s.n_prompt > 1,
                                               !prompt && count > 1});
            if (want) logit_owner_.push_back(&s);
            n_prompt_tokens += prompt ? 1 : 0;
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
        const int32_t n = std::min(budget, computable(*s));
        if (n > 0) add(*s, n);
    }
    if (batch_.tokens.empty()) return false;

    exec_.forward(batch_);
    for (auto& s : running_) publish_blocks(*s);
    uint64_t generated = 0;
    for (size_t i = 0; i < logit_owner_.size(); i++) {
        Sequence& s = *logit_owner_[i];
        const int32_t before = s.n_generated;
        after_logits(s, (int32_t)i);
        generated += (uint64_t)(s.n_generated - before);
    }

    // Sequences that finished released their blocks in finish(); one whose
    // request ended on its own (out of memory queueing an event) retires here.
    running_.erase(std::remove_if(running_.begin(), running_.end(),
                                  [&](const std::unique_ptr<Sequence>& s) {
                                      if (!s->request->finished()) return false;
                                      retire(*s);
                                      return true;
                                  }),
                   running_.end());
    {
        std::lock_guard<std::mutex> lock(stats_mutex_);
        stats_.steps++;
    }
    count_tokens(n_prompt_tokens, generated);
    publish_stats();
    return true;
}

// ---- stats ----

void Scheduler::count_tokens(uint64_t prompt, uint64_t generated) {
    const auto now = std::chrono::steady_clock::now();
    const int64_t id = std::chrono::duration_cast<std::chrono::milliseconds>(now - start_).count() / 100;
    std::lock_guard<std::mutex> lock(stats_mutex_);
    const int slot = (int)(id % kBuckets);
    if (bucket_id_[slot] != id) {
        bucket_id_[slot] = id;
        bucket_prompt_[slot] = bucket_generated_[slot] = 0;
    }
    bucket_prompt_[slot] += prompt;
    bucket_generated_[slot] += generated;
    stats_.prompt_tokens += prompt;
    stats_.generated_tokens += generated;
}

void Scheduler::publish_stats() {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    stats_.running = (uint32_t)running_.size();
    stats_.preempted_waiting = (uint32_t)preempted_.size();
}

SchedulerStats Scheduler::stats() const {
    const auto now = std::chrono::steady_clock::now();
    const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - start_).count();
    const int64_t id = ms / 100;
    std::lock_guard<std::mutex> lock(stats_mutex_);
    SchedulerStats s = stats_;
    uint64_t p = 0, g = 0;
    for (int i = 0; i < kBuckets; i++) {
        if (bucket_id_[i] < 0 || bucket_id_[i] <= id - kBuckets) continue;
        p += bucket_prompt_[i];
        g += bucket_generated_[i];
    }
    // Over the last 5 s, or the engine's whole life when it is younger.
    const double window = std::min(5.0, std::max(0.1, (double)ms / 1000.0));
    s.prompt_tps = (double)p / window;
    s.generated_tps = (double)g / window;
    return s;
}

}  // namespace mw
