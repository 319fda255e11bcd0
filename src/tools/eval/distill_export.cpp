#include "tools/eval/distill_export.h"

#include "base/error.h"
#include "runtime/thread_pool.h"
#include "tools/eval/eval.h"
#include "tools/eval/token_stats.h"
#include "tools/eval/windows.h"

#include <sys/stat.h>

#include <chrono>
#include <cstring>

namespace mw::eval {

ExportSummary distill_export(std::shared_ptr<const Model> teacher, const std::string& text,
                             const std::string& out_path, const ExportOptions& opts) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!teacher) fail(MW_ERR_INVALID_ARGUMENT, "teacher is NULL");
    if (out_path.empty()) fail(MW_ERR_INVALID_ARGUMENT, "the output path is empty");
    const ModelConfig& c = teacher->config();
    const int32_t V = c.n_vocab;
    const int32_t max_k = std::min<int32_t>(V, kExportMaxTopK);
    if (opts.top_k < 1 || opts.top_k > max_k)
        fail(MW_ERR_INVALID_ARGUMENT, "top-k " + std::to_string(opts.top_k) + " is out of range [1, " +
                                          std::to_string(max_k) + "]");
    if (opts.compression_level < 1 || opts.compression_level > 19)
        fail(MW_ERR_INVALID_ARGUMENT, "zstd level " + std::to_string(opts.compression_level) + " is out of range [1, 19]");
    if (opts.n_ctx < 0) fail(MW_ERR_INVALID_ARGUMENT, "context " + std::to_string(opts.n_ctx) + " is negative");
    if (opts.n_threads < 0) fail(MW_ERR_INVALID_ARGUMENT, "thread count " + std::to_string(opts.n_threads) + " is negative");
    const std::vector<int32_t> tokens = tokenize_for_eval(*teacher, text);
    const int32_t n_ctx = opts.n_ctx ? opts.n_ctx : default_n_ctx(c);
    const std::vector<Window> plan = plan_export_windows((int64_t)tokens.size(), n_ctx, opts.max_windows);
    const Tokenizer& tok = teacher->tokenizer();

    ExportHeader h;
    h.n_vocab = (uint32_t)V;
    h.top_k = (uint32_t)opts.top_k;
    h.n_ctx = (uint32_t)n_ctx;
    h.n_text_tokens = tokens.size();
    h.vocab_hash = vocab_identity(tok);
    h.bos = tok.add_bos() ? tok.bos() : -1;
    h.arch = c.arch_name;
    h.model_name = c.name;
    h.tokenizer_model = tok.model_name();
    h.tokenizer_pre = tok.pre_name();

    ExportWriter out(out_path, h, opts.compression_level);
    ThreadPool pool(opts.n_threads ? opts.n_threads : physical_core_count());
    // Window 0 is the longest (n_ctx, or the whole text when shorter).
    WindowRunner run(teacher, pool, plan[0].n_tokens, opts.kv_f32);
    std::vector<int32_t> win, scratch;
    const size_t rec_bytes = h.record_bytes();
    const int64_t n_windows = (int64_t)plan.size();
    for (int64_t w = 0; w < n_windows; w++) {
        const Window& x = plan[(size_t)w];
        window_tokens(tokens, x, h.bos, &win);
        ExportWindow ew;
        ew.start = (uint64_t)x.start;
        ew.n_tokens = (uint32_t)x.n_tokens;
        ew.first = (uint32_t)x.first;
        ew.n_scored = (uint32_t)x.n_scored;
        uint8_t* records = out.begin_window(ew, win.data());
        for (int32_t j = 0; j < run.n_batches(x); j++) {
            int32_t pos0 = 0;
            const int32_t rows = run.run_batch(win.data(), x, j, &pos0);
            for (int32_t r = 0; r < rows; r++) {
                const int32_t pos = pos0 + r;
                const int32_t next = win[(size_t)(pos + 1)];
                const float* logits = run.logits(r);
                const Normalizer n = normalize(logits, V);
                uint8_t* rec = records + (size_t)(pos - x.first) * rec_bytes;
                double rest = 0;
                top_k(logits, n, V, opts.top_k, reinterpret_cast<int32_t*>(rec + 12),
                      reinterpret_cast<float*>(rec + 12 + 4 * (size_t)opts.top_k), &rest, &scratch);
                const float lp_next = (float)((double)logits[next] - n.lse), rest_f = (float)rest;
                std::memcpy(rec, &next, 4);
                std::memcpy(rec + 4, &lp_next, 4);
                std::memcpy(rec + 8, &rest_f, 4);
            }
        }
        out.write_window();
        if (opts.progress) opts.progress(w + 1, n_windows);
    }
    out.finish();

    ExportSummary s;
    s.header = h;
    s.header.version = kExportVersion;
    s.header.stride = h.n_ctx / 2;
    s.header.n_windows = (uint64_t)n_windows;
    for (const Window& x : plan) s.header.n_records += (uint64_t)x.n_scored;
    struct stat st;
    if (::stat(out_path.c_str(), &st) == 0) s.file_bytes = (uint64_t)st.st_size;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
}

}  // namespace mw::eval
