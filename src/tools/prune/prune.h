// Structured pruning: removes whole FFN channels (a row of ffn_gate and
// ffn_up with the matching column of ffn_down) and whole attention KV groups
// (a KV head's rows of attn_k/attn_v, its query heads' rows of attn_q and
// their columns of attn_output), ranked by activation importance on
// calibration text (calibration.h), and writes a valid GGUF whose metadata
// carries the per-layer head counts and FFN widths.
//
// Allocation: by default every layer keeps the same fraction. per_layer
// measures, for every layer and kept count, the KL divergence that pruning
// only that layer causes on the calibration text (F32 forward), and picks the
// counts with the smallest summed KL under the same total (greedy, as mixed
// precision does with bytes). Random ranking with per_layer draws one global
// random order. Kept FFN widths are rounded to a
// multiple of `round` (the quantization block: 32, or 256 for K-quants) and
// every layer keeps at least one group and min(round, width) channels.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mw::compress {

struct PruneOptions {
    double ffn_keep = 1.0;     // fraction of FFN channels kept, in (0, 1]
    double heads_keep = 1.0;   // fraction of KV groups (with their query heads) kept, in (0, 1]
    std::string calib_path;    // calibration text (required unless random)
    bool per_layer = false;    // global ranking across layers instead of a uniform fraction
    int32_t round = 32;        // kept FFN widths are multiples of this
    bool random = false;       // rank at random (the baseline importance is compared with)
    uint64_t seed = 0;
    int32_t n_ctx = 0;
    int64_t calib_tokens = 4096;
    int64_t sens_tokens = 512;  // per_layer: tokens each layer's sensitivity (KL) is measured on
    int32_t n_threads = 0;
    std::function<void(const std::string&)> log;
    std::function<void(int64_t, int64_t)> progress;  // calibration tokens done / in all
};

struct PruneReport {
    uint64_t in_bytes = 0, out_bytes = 0;
    uint64_t params_in = 0, params_out = 0;
    std::vector<int32_t> n_ff_before, n_ff_after, n_head_before, n_head_after, n_head_kv_after;
    int64_t calib_tokens = 0;
};

// Kept width of an FFN of `width` channels asked to keep `want` (>= 1): the
// nearest multiple of `round`, at least min(round, width), at most width.
int32_t round_width(double want, int32_t round, int32_t width);

// Throws mw::Error: MW_ERR_INVALID_ARGUMENT (fractions outside (0, 1], missing
// or empty calibration text, round < 1), MW_ERR_IO, MW_ERR_FORMAT, MW_ERR_UNSUPPORTED.
PruneReport prune_model(const std::string& in_path, const std::string& out_path, const PruneOptions& opts);

}  // namespace mw::compress
