// Calibration: run a model over calibration text (F32Forward) and collect
//  - per linear layer, the mean of the squared input activation of each input
//    column (llama.cpp's "imatrix"): how much an error in that column of the
//    weight matters, the importance the quantizer weighs its error with;
//  - per FFN channel c of each layer, the RMS of its contribution to the
//    residual stream: sqrt(mean h_c^2) * ||ffn_down[:, c]|| with
//    h = silu(gate) * up;
//  - per KV group of each layer (a KV head with its query heads), the RMS of
//    that group's output through attn_output: sqrt(mean ||W_o[:, g] a_g||^2).
// The last two rank what structured pruning removes.
#pragma once

#include "model/model.h"
#include "tools/calibrate/f32_forward.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace mw::compress {

struct CalibOptions {
    int32_t n_ctx = 0;          // window length; 0 = min(256, training context)
    int64_t max_tokens = 4096;  // use at most this many tokens of the text (0 = all)
    // Called after each window with (tokens done, tokens in all); may be empty.
    std::function<void(int64_t, int64_t)> progress;
};

struct CalibStats {
    int64_t n_tokens = 0;
    std::map<std::string, std::vector<float>> importance;  // tensor name -> mean x^2 per input column
    std::vector<std::vector<float>> ffn_channel;           // [layer][channel]
    std::vector<std::vector<float>> head_group;            // [layer][kv group]
};

// Tokenizes text (BOS as the metadata says) and cuts it into windows of n_ctx
// tokens, each starting with BOS when the model adds one; a short tail becomes
// a last, shorter window. At most max_tokens tokens (0 = all).
// Empty text or no usable token: MW_ERR_INVALID_ARGUMENT.
std::vector<std::vector<int32_t>> calibration_windows(const Model& model, const std::string& text, int32_t n_ctx,
                                                      int64_t max_tokens);

// Reads a calibration text file: MW_ERR_IO when unreadable, MW_ERR_INVALID_ARGUMENT when empty.
std::string read_calibration_text(const std::string& path);

CalibStats calibrate(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                     const std::function<void(int64_t, int64_t)>& progress);

}  // namespace mw::compress
