#include "tools/eval/windows.h"

#include "base/error.h"

#include <algorithm>

namespace mw::eval {

namespace {
constexpr int32_t kMaxBatch = 512;
constexpr int32_t kBlockTokens = 16;
}  // namespace

WindowPlan plan_windows(int64_t n_tokens, int32_t n_ctx, int32_t max_windows) {
    if (n_ctx < 4) fail(MW_ERR_INVALID_ARGUMENT, "context " + std::to_string(n_ctx) + " is too small (at least 4)");
    WindowPlan p;
    p.n_ctx = n_ctx;
    p.first = n_ctx / 2;
    p.n_scored = n_ctx - 1 - p.first;
    p.n_windows = n_tokens / n_ctx;
    if (max_windows > 0) p.n_windows = std::min<int64_t>(p.n_windows, max_windows);
    if (p.n_windows < 1)
        fail(MW_ERR_INVALID_ARGUMENT, "the text has " + std::to_string(n_tokens) + " tokens; one window of context " +
                                          std::to_string(n_ctx) + " needs at least " + std::to_string(n_ctx) +
                                          " (use a longer text or a smaller context)");
    return p;
}

void window_tokens(const std::vector<int32_t>& tokens, const WindowPlan& plan, int64_t w, int32_t bos,
                   std::vector<int32_t>* out) {
    const auto begin = tokens.begin() + w * plan.n_ctx;
    out->assign(begin, begin + plan.n_ctx);
    if (bos >= 0) (*out)[0] = bos;
}

WindowRunner::WindowRunner(std::shared_ptr<const Model> model, ThreadPool& pool, const WindowPlan& plan, bool kv_f32)
    : model_(std::move(model)), plan_(plan), batch_(std::min(plan.n_ctx, kMaxBatch)) {
    const int32_t n_blocks = (plan.n_ctx + kBlockTokens - 1) / kBlockTokens;
    kv_ = std::make_unique<KvCache>(model_->config(), kv_f32 ? KvType::F32 : KvType::F16, kBlockTokens, n_blocks);
    exec_ = std::make_unique<Executor>(model_, *kv_, pool, batch_, batch_, plan.n_ctx);
    b_.tokens.reserve((size_t)batch_);
}

int32_t WindowRunner::run_batch(const int32_t* tokens, int32_t j, int32_t* first_pos) {
    if (j == 0) {
        kv_->release(table_);
        if (!kv_->reserve(table_, plan_.n_ctx)) fail(MW_ERR_INTERNAL, "KV cache too small for one window");
    }
    const int32_t n_vocab = model_->config().n_vocab;
    const int32_t begin = j * batch_, end = std::min(plan_.n_ctx, begin + batch_);
    b_.clear();
    b_.tables.push_back(&table_);
    int32_t n_rows = 0;
    for (int32_t p = begin; p < end; p++) {
        if (tokens[p] < 0 || tokens[p] >= n_vocab)
            fail(MW_ERR_INVALID_ARGUMENT, "token id " + std::to_string(tokens[p]) + " at window position " +
                                              std::to_string(p) + " is outside the vocabulary (" +
                                              std::to_string(n_vocab) + ")");
        // Logits only where they are scored: positions first .. n_ctx-2.
        const bool want = p >= plan_.first && p < plan_.n_ctx - 1;
        BatchToken t{tokens[p], p, 0, want};
        t.prompt = true;
        b_.tokens.push_back(t);
        n_rows += want ? 1 : 0;
    }
    exec_->forward(b_);
    *first_pos = std::max(begin, plan_.first);
    return n_rows;
}

}  // namespace mw::eval
