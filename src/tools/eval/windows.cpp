#include "tools/eval/windows.h"

#include "base/error.h"

#include <algorithm>

namespace mw::eval {

namespace {
constexpr int32_t kMaxBatch = 512;
constexpr int32_t kBlockTokens = 16;

void check_ctx(int32_t n_ctx) {
    if (n_ctx < 4) fail(MW_ERR_INVALID_ARGUMENT, "context " + std::to_string(n_ctx) + " is too small (at least 4)");
}
}  // namespace

std::vector<Window> plan_eval_windows(int64_t n_tokens, int32_t n_ctx, int32_t max_windows) {
    check_ctx(n_ctx);
    int64_t n = n_tokens / n_ctx;
    if (max_windows > 0) n = std::min<int64_t>(n, max_windows);
    if (n < 1)
        fail(MW_ERR_INVALID_ARGUMENT, "the text has " + std::to_string(n_tokens) + " tokens; one window of context " +
                                          std::to_string(n_ctx) + " needs at least " + std::to_string(n_ctx) +
                                          " (use a longer text or a smaller context)");
    std::vector<Window> plan((size_t)n);
    for (int64_t w = 0; w < n; w++) {
        Window& x = plan[(size_t)w];
        x.start = w * n_ctx;
        x.n_tokens = n_ctx;
        x.first = n_ctx / 2;
        x.n_scored = n_ctx - 1 - x.first;
    }
    return plan;
}

std::vector<Window> plan_export_windows(int64_t n_tokens, int32_t n_ctx, int32_t max_windows) {
    check_ctx(n_ctx);
    if (n_tokens < 2)
        fail(MW_ERR_INVALID_ARGUMENT, "the text has " + std::to_string(n_tokens) +
                                          " token(s); an export needs at least 2 (one prediction)");
    const int32_t stride = n_ctx / 2;
    std::vector<Window> plan;
    Window w;
    w.n_tokens = (int32_t)std::min<int64_t>(n_ctx, n_tokens);
    w.n_scored = w.n_tokens - 1;
    int64_t covered = w.n_scored;  // next stream position to score
    plan.push_back(w);
    // covered < n_tokens - 1 implies n_tokens > n_ctx: every later window is full.
    while (covered < n_tokens - 1 && (max_windows <= 0 || (int64_t)plan.size() < max_windows)) {
        Window x;
        x.start = std::min<int64_t>(plan.back().start + stride, n_tokens - n_ctx);
        x.n_tokens = n_ctx;
        x.first = (int32_t)(covered - x.start);
        x.n_scored = (int32_t)(x.start + n_ctx - 1 - covered);
        covered += x.n_scored;
        plan.push_back(x);
    }
    return plan;
}

void window_tokens(const std::vector<int32_t>& tokens, const Window& w, int32_t bos, std::vector<int32_t>* out) {
    const auto begin = tokens.begin() + w.start;
    out->assign(begin, begin + w.n_tokens);
    if (bos >= 0) (*out)[0] = bos;
}

WindowRunner::WindowRunner(std::shared_ptr<const Model> model, ThreadPool& pool, int32_t max_tokens, bool kv_f32)
    : model_(std::move(model)), max_tokens_(max_tokens), batch_(std::min(max_tokens, kMaxBatch)) {
    const int32_t n_blocks = (max_tokens + kBlockTokens - 1) / kBlockTokens;
    kv_ = std::make_unique<KvCache>(model_->config(), kv_f32 ? KvType::F32 : KvType::F16, kBlockTokens, n_blocks);
    exec_ = std::make_unique<Executor>(model_, *kv_, pool, batch_, batch_, max_tokens);
    b_.tokens.reserve((size_t)batch_);
}

int32_t WindowRunner::run_batch(const int32_t* tokens, const Window& w, int32_t j, int32_t* first_pos) {
    if (w.n_tokens < 1 || w.n_tokens > max_tokens_ || w.first < 0 || w.n_scored < 0 ||
        w.first + w.n_scored > w.n_tokens - 1)
        fail(MW_ERR_INTERNAL, "window of " + std::to_string(w.n_tokens) + " tokens does not fit the runner");
    if (j == 0) {
        kv_->release(table_);
        if (!kv_->reserve(table_, w.n_tokens)) fail(MW_ERR_INTERNAL, "KV cache too small for one window");
    }
    const int32_t n_vocab = model_->config().n_vocab;
    const int32_t begin = j * batch_, end = std::min(w.n_tokens, begin + batch_);
    b_.clear();
    b_.tables.push_back(&table_);
    int32_t n_rows = 0;
    for (int32_t p = begin; p < end; p++) {
        if (tokens[p] < 0 || tokens[p] >= n_vocab)
            fail(MW_ERR_INVALID_ARGUMENT, "token id " + std::to_string(tokens[p]) + " at window position " +
                                              std::to_string(p) + " is outside the vocabulary (" +
                                              std::to_string(n_vocab) + ")");
        // Logits only where they are scored.
        const bool want = p >= w.first && p < w.first + w.n_scored;
        BatchToken t{tokens[p], p, 0, want};
        t.prompt = true;
        b_.tokens.push_back(t);
        n_rows += want ? 1 : 0;
    }
    exec_->forward(b_);
    *first_pos = std::max(begin, w.first);
    return n_rows;
}

}  // namespace mw::eval
