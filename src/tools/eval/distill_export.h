// Distillation export: runs a teacher over a text in the export's overlapping
// windows (windows.h, plan_export_windows) and writes its top-K next-token
// distribution at every position of the token stream (0 .. n_tokens-2, each
// once) to a distillation export file (distill_format.h).
#pragma once

#include "model/model.h"
#include "tools/eval/distill_format.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace mw::eval {

struct ExportOptions {
    int32_t n_ctx = 0;          // window length; 0 = default_n_ctx()
    int32_t n_threads = 0;      // 0 = physical cores
    int32_t max_windows = 0;    // 0 = every window (the whole text); N = the first N
    int32_t top_k = 32;         // 1 .. min(n_vocab, 4096)
    int32_t compression_level = 3;  // zstd level, 1 .. 19
    bool kv_f32 = false;        // F32 KV cache (default F16, as eval); for exact tests
    std::function<void(int64_t, int64_t)> progress;  // (windows done, windows in all)
};

struct ExportSummary {
    ExportHeader header;
    uint64_t file_bytes = 0;
    double seconds = 0;
};

// Writes out_path (through a temporary file and rename). Throws
// MW_ERR_INVALID_ARGUMENT (empty text, fewer than 2 tokens, top_k, level or
// n_ctx out of range), MW_ERR_IO.
ExportSummary distill_export(std::shared_ptr<const Model> teacher, const std::string& text,
                             const std::string& out_path, const ExportOptions& opts);

}  // namespace mw::eval
