#include "tools/eval/eval.h"

#include "base/error.h"
#include "runtime/thread_pool.h"
#include "tools/eval/distill_format.h"
#include "tools/eval/rounded_base.h"
#include "tools/eval/token_stats.h"
#include "tools/eval/windows.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace mw::eval {

namespace {

// Sums over scored positions; turned into an EvalResult at the end.
struct Accumulator {
    double nll = 0, nll_ref = 0, dp2 = 0, min_mass = 1;
    int64_t n = 0, same_top = 0;
    std::vector<double> kl;

    void add(double nll_model) {
        nll += nll_model;
        n++;
    }
    void add_ref(double nll_model, double nll_reference, double kl_pos, bool same, double p_model, double p_ref) {
        add(nll_model);
        nll_ref += nll_reference;
        kl.push_back(kl_pos);
        same_top += same ? 1 : 0;
        dp2 += (p_model - p_ref) * (p_model - p_ref);
    }
    void finish(EvalResult* r) {
        r->n_scored = n;
        r->nll_mean = nll / (double)n;
        r->perplexity = std::exp(r->nll_mean);
        if (!r->has_ref) return;
        r->ref_perplexity = std::exp(nll_ref / (double)n);
        r->ln_ppl_ratio = r->nll_mean - nll_ref / (double)n;
        double sum = 0;
        for (double k : kl) sum += k;
        r->kl_mean = sum / (double)n;
        std::sort(kl.begin(), kl.end());
        r->kl_p99 = percentile(kl, 0.99);
        r->kl_max = kl.back();
        r->top1_agreement = (double)same_top / (double)n;
        r->delta_p_rms = std::sqrt(dp2 / (double)n);
    }
};

int32_t resolve_threads(int32_t n) {
    if (n < 0) fail(MW_ERR_INVALID_ARGUMENT, "thread count " + std::to_string(n) + " is negative");
    return n == 0 ? physical_core_count() : n;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void check_same_vocab(const Model& model, const Model& ref) {
    const int32_t a = model.config().n_vocab, b = ref.config().n_vocab;
    if (a != b)
        fail(MW_ERR_INVALID_ARGUMENT, "the reference has a vocabulary of " + std::to_string(b) +
                                          " tokens and the model " + std::to_string(a) +
                                          ": KL needs the same vocabulary (same tokenizer)");
    if (vocab_identity(model.tokenizer()) != vocab_identity(ref.tokenizer()))
        fail(MW_ERR_INVALID_ARGUMENT, "the reference and the model have vocabularies of the same size (" +
                                          std::to_string(a) + ") but different tokens: KL needs the same tokenizer");
}

}  // namespace

int32_t default_n_ctx(const ModelConfig& c) {
    return c.n_ctx_train > 0 ? std::min<int32_t>(512, c.n_ctx_train) : 512;
}

std::vector<int32_t> tokenize_for_eval(const Model& model, const std::string& text) {
    if (text.empty()) fail(MW_ERR_INVALID_ARGUMENT, "the evaluation text is empty");
    return model.tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
}

EvalResult evaluate(std::shared_ptr<const Model> model, std::shared_ptr<const Model> ref,
                    const std::vector<int32_t>& tokens, const EvalOptions& opts) {
    if (!model) fail(MW_ERR_INVALID_ARGUMENT, "model is NULL");
    if (opts.n_ctx < 0) fail(MW_ERR_INVALID_ARGUMENT, "context " + std::to_string(opts.n_ctx) + " is negative");
    const int32_t n_ctx = opts.n_ctx ? opts.n_ctx : default_n_ctx(model->config());
    return evaluate_windows(model, ref, tokens, plan_eval_windows((int64_t)tokens.size(), n_ctx, opts.max_windows),
                            opts);
}

EvalResult evaluate_windows(std::shared_ptr<const Model> model, std::shared_ptr<const Model> ref,
                            const std::vector<int32_t>& tokens, const std::vector<Window>& plan,
                            const EvalOptions& opts) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!model) fail(MW_ERR_INVALID_ARGUMENT, "model is NULL");
    if (ref) check_same_vocab(*model, *ref);
    if (plan.empty()) fail(MW_ERR_INVALID_ARGUMENT, "no windows to evaluate");
    int32_t n_ctx = 0;
    for (const Window& x : plan) {
        if (x.start < 0 || x.n_tokens < 2 || x.start + x.n_tokens > (int64_t)tokens.size())
            fail(MW_ERR_INVALID_ARGUMENT, "a window runs outside the tokens");
        n_ctx = std::max(n_ctx, x.n_tokens);
    }
    const int64_t n_windows = (int64_t)plan.size();
    const int32_t V = model->config().n_vocab;
    const Tokenizer& tok = model->tokenizer();
    const int32_t bos = tok.add_bos() ? tok.bos() : -1;

    ThreadPool pool(resolve_threads(opts.n_threads));
    WindowRunner run(model, pool, n_ctx, opts.kv_f32);
    std::unique_ptr<WindowRunner> run_ref;
    if (ref) run_ref = std::make_unique<WindowRunner>(ref, pool, n_ctx, opts.kv_f32);

    EvalResult res;
    res.n_ctx = n_ctx;
    res.n_tokens = (int64_t)tokens.size();
    res.n_windows = n_windows;
    res.has_ref = ref != nullptr;
    Accumulator acc;
    std::vector<int32_t> win;
    const bool llama_base = opts.ref_base == EvalOptions::Base::llama16;
    RoundedBase rounded;
    for (int64_t w = 0; w < n_windows; w++) {
        const Window& x = plan[(size_t)w];
        window_tokens(tokens, x, bos, &win);
        for (int32_t j = 0; j < run.n_batches(x); j++) {
            // Both models run the same batch; their logits rows line up.
            int32_t pos0 = 0, pos0_ref = 0;
            const int32_t rows = run.run_batch(win.data(), x, j, &pos0);
            if (run_ref) run_ref->run_batch(win.data(), x, j, &pos0_ref);
            for (int32_t r = 0; r < rows; r++) {
                const int32_t next = win[(size_t)(pos0 + r + 1)];
                const float* q = run.logits(r);
                const Normalizer nq = normalize(q, V);
                const double nll = nq.lse - (double)q[next];
                if (!run_ref) {
                    acc.add(nll);
                    continue;
                }
                const float* p = run_ref->logits(r);
                if (llama_base) {
                    round_base(p, V, &rounded);
                    const double nll_ref = -(double)rounded.logprob(next);
                    acc.add_ref(nll, nll_ref, kl_rounded_base(rounded, q, nq, V), rounded.argmax() == nq.argmax,
                                std::exp(-nll), std::exp(-nll_ref));
                    continue;
                }
                const Normalizer np = normalize(p, V);
                const double nll_ref = np.lse - (double)p[next];
                acc.add_ref(nll, nll_ref, kl_full(p, np, q, nq, V), np.argmax == nq.argmax, std::exp(-nll),
                            std::exp(-nll_ref));
            }
        }
        if (opts.progress) opts.progress(w + 1, n_windows);
    }
    acc.finish(&res);
    res.seconds = seconds_since(t0);
    return res;
}

EvalResult evaluate_text(std::shared_ptr<const Model> model, std::shared_ptr<const Model> ref,
                         const std::string& text, const EvalOptions& opts) {
    if (!model) fail(MW_ERR_INVALID_ARGUMENT, "model is NULL");
    if (ref) check_same_vocab(*model, *ref);
    return evaluate(model, ref, tokenize_for_eval(*model, text), opts);
}

EvalResult evaluate_against_export(std::shared_ptr<const Model> model, const std::string& export_path,
                                   const EvalOptions& opts) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!model) fail(MW_ERR_INVALID_ARGUMENT, "model is NULL");
    if (opts.ref_base != EvalOptions::Base::exact)
        fail(MW_ERR_INVALID_ARGUMENT,
             "llama.cpp base rounding applies to a reference model, not to an export (which stores top-K log-probs)");
    ExportReader reader(export_path);
    const ExportHeader& h = reader.header();
    const int32_t V = model->config().n_vocab;
    if ((int32_t)h.n_vocab != V)
        fail(MW_ERR_INVALID_ARGUMENT, export_path + " was exported from a teacher with a vocabulary of " +
                                          std::to_string(h.n_vocab) + " tokens; the model has " + std::to_string(V) +
                                          ": KL needs the same vocabulary (same tokenizer)");
    if (h.vocab_hash != vocab_identity(model->tokenizer()))
        fail(MW_ERR_INVALID_ARGUMENT, export_path + ": the teacher's vocabulary has the same size (" +
                                          std::to_string(V) + ") but different tokens: KL needs the same tokenizer");
    if (opts.n_ctx != 0 && opts.n_ctx != (int32_t)h.n_ctx)
        fail(MW_ERR_INVALID_ARGUMENT, "context " + std::to_string(opts.n_ctx) + " differs from the export's (" +
                                          std::to_string(h.n_ctx) + "); leave it unset to use the export's");
    int64_t n_windows = (int64_t)h.n_windows;
    if (opts.max_windows > 0) n_windows = std::min<int64_t>(n_windows, opts.max_windows);

    ThreadPool pool(resolve_threads(opts.n_threads));
    // Sized by the windows actually read, not by the header's n_ctx: a KV
    // cache follows the bytes in the file, never a size it merely claims.
    std::unique_ptr<WindowRunner> run;
    int32_t run_tokens = 0;
    EvalResult res;
    res.n_ctx = (int32_t)h.n_ctx;
    res.n_tokens = (int64_t)h.n_text_tokens;
    res.n_windows = n_windows;
    res.has_ref = true;
    res.ref_is_export = true;
    Accumulator acc;
    const int32_t K = (int32_t)h.top_k;
    for (int64_t w = 0; w < n_windows; w++) {
        if (!reader.next_window())
            fail(MW_ERR_FORMAT, export_path + ": fewer windows than its header says");
        // The export's own window: its tokens, its scored range.
        const ExportWindow& ew = reader.window();
        Window x;
        x.start = (int64_t)ew.start;
        x.n_tokens = (int32_t)ew.n_tokens;
        x.first = (int32_t)ew.first;
        x.n_scored = (int32_t)ew.n_scored;
        const int32_t* win = reader.window_tokens();
        if (x.n_tokens > run_tokens) {
            run.reset();
            run = std::make_unique<WindowRunner>(model, pool, x.n_tokens, opts.kv_f32);
            run_tokens = x.n_tokens;
        }
        for (int32_t j = 0; j < run->n_batches(x); j++) {
            int32_t pos0 = 0;
            const int32_t rows = run->run_batch(win, x, j, &pos0);
            for (int32_t r = 0; r < rows; r++) {
                const ExportRecord rec = reader.record((uint32_t)(pos0 + r - x.first));
                const float* q = run->logits(r);
                const Normalizer nq = normalize(q, V);
                const double nll = nq.lse - (double)q[rec.token];
                const double nll_ref = -(double)rec.token_logprob;
                acc.min_mass = std::min(acc.min_mass, 1.0 - (double)rec.rest_mass);
                acc.add_ref(nll, nll_ref, kl_top_k(rec.ids, rec.logprobs, K, rec.rest_mass, q, nq),
                            rec.ids[0] == nq.argmax, std::exp(-nll), std::exp(-nll_ref));
            }
        }
        if (opts.progress) opts.progress(w + 1, n_windows);
    }
    // A whole-file pass also checks the trailer (a cut-off file is an error).
    if (n_windows == (int64_t)h.n_windows && reader.next_window())
        fail(MW_ERR_FORMAT, export_path + ": more windows than its header says");
    acc.finish(&res);
    res.ref_min_topk_mass = acc.min_mass;
    res.seconds = seconds_since(t0);
    return res;
}

}  // namespace mw::eval
