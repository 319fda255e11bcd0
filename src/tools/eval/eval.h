// Evaluation: perplexity of a model over a token stream and, against a
// reference (a teacher model or a distillation export), the divergence of its
// next-token distributions. The yardstick for quantization, pruning and
// distillation.
//
// Window convention (that of llama.cpp's llama-perplexity without --ppl-stride):
// the token stream (the text tokenized with the model's BOS when its metadata
// adds one, special tokens not parsed) is cut into n_windows = n_tokens / n_ctx
// non-overlapping windows of n_ctx tokens; the tail that does not fill a
// window is not used. Each window is evaluated from an empty KV cache, its
// first token replaced by BOS when the tokenizer adds BOS. Only the second
// half is scored: logits at positions first = n_ctx/2 .. n_ctx-2 predict the
// tokens at first+1 .. n_ctx-1, so each window scores n_ctx - 1 - n_ctx/2
// positions and every scored prediction has at least n_ctx/2 tokens of
// context. Perplexity = exp(mean NLL over all scored positions).
//
// Distributions come straight from the executor's logits (log-softmax over the
// full vocabulary, in double), never through sampling.
//
// Against a reference model P (the "base" in llama.cpp's terms) the model Q
// gets, per scored position: KL(P || Q) over the full vocabulary, whether the
// two argmax tokens agree (llama.cpp's "Same top p"), and the change in the
// probability of the actual next token (Δp). Against an export (top-K of P
// only) KL is approximated: see distill_format.h.
#pragma once

#include "model/model.h"
#include "tools/eval/windows.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mw::eval {

struct EvalOptions {
    int32_t n_ctx = 0;          // window length; 0 = 512, or the training context when smaller
    int32_t n_threads = 0;      // 0 = physical cores
    int32_t max_windows = 0;    // 0 = every full window of the text
    bool kv_f32 = false;        // F32 KV cache (default F16, as llama.cpp); for exact tests
    // How the reference's distribution enters KL, same top, Δp and its
    // perplexity: exact (default), or stored as llama-perplexity stores its
    // base (16-bit steps, tokens below -16 nats left out of KL; rounded_base.h),
    // to compare with llama.cpp number for number. Reference models only.
    enum class Base { exact, llama16 } ref_base = Base::exact;
    // Called after each window with (windows done, windows in all); may be empty.
    std::function<void(int64_t, int64_t)> progress;
};

struct EvalResult {
    int32_t n_ctx = 0;
    int64_t n_tokens = 0;       // tokens of the text (with BOS)
    int64_t n_windows = 0;
    int64_t n_scored = 0;       // scored positions (against an export: the export positions compared)
    double nll_mean = 0;        // mean negative log-likelihood (nats) = ln(perplexity)
    double perplexity = 0;
    // With a reference (model or export); zero otherwise.
    bool has_ref = false;
    bool ref_is_export = false; // KL is the top-K + remainder approximation
    double ref_perplexity = 0;
    double ln_ppl_ratio = 0;    // ln(PPL(model) / PPL(ref))
    double kl_mean = 0;         // mean KL(ref || model), nats
    double kl_p99 = 0;          // 99th percentile (linear interpolation, as llama.cpp)
    double kl_max = 0;
    double top1_agreement = 0;  // fraction of positions with the same argmax ("Same top p")
    double delta_p_rms = 0;     // RMS of p_model(next) - p_ref(next)
    double ref_min_topk_mass = 0; // export only: the smallest top-K mass (how tight the KL approximation is)
    double seconds = 0;
};

// The default window for a model: 512, or its training context when smaller.
int32_t default_n_ctx(const ModelConfig& c);

// Tokenizes text for evaluation (BOS per metadata, no special-token parsing).
std::vector<int32_t> tokenize_for_eval(const Model& model, const std::string& text);

// Perplexity of model over tokens; with ref (may be null), also the divergence
// from ref. ref must have the same vocabulary (size and tokens): otherwise
// MW_ERR_INVALID_ARGUMENT. Too few tokens for one window: MW_ERR_INVALID_ARGUMENT.
EvalResult evaluate(std::shared_ptr<const Model> model, std::shared_ptr<const Model> ref,
                    const std::vector<int32_t>& tokens, const EvalOptions& opts);

// Same over the given windows (windows.h: plan_eval_windows or
// plan_export_windows; with export windows and ref, the full-vocabulary
// counterpart of evaluate_against_export). res.n_ctx = the longest window.
EvalResult evaluate_windows(std::shared_ptr<const Model> model, std::shared_ptr<const Model> ref,
                            const std::vector<int32_t>& tokens, const std::vector<Window>& plan,
                            const EvalOptions& opts);

// Same as evaluate, tokenizing text first (empty text: MW_ERR_INVALID_ARGUMENT).
EvalResult evaluate_text(std::shared_ptr<const Model> model, std::shared_ptr<const Model> ref,
                         const std::string& text, const EvalOptions& opts);

// Against a distillation export: the export's windows are replayed through
// model, each with its own tokens (BOS in place) and scored range, so every
// position the export holds is compared once with the same context the
// teacher had (format 2: every position of the text; windows.h). The
// llama-perplexity windowing above is not used. opts.n_ctx must be 0 or the
// export's; opts.max_windows > 0 replays only the first windows.
// MW_ERR_INVALID_ARGUMENT when the vocabularies differ, MW_ERR_FORMAT /
// MW_ERR_IO for a bad file.
EvalResult evaluate_against_export(std::shared_ptr<const Model> model, const std::string& export_path,
                                   const EvalOptions& opts);

}  // namespace mw::eval
