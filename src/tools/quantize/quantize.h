// Post-training quantization of a GGUF model: every 2-D weight to one target
// type (round-to-nearest, or importance-weighted with calibration text), or to
// a per-tensor mix of types under a size budget (mixed precision, see
// mixed_plan.h). 1-D tensors (norms, biases) are copied unchanged.
//
// Rows whose width is not a multiple of the target's block get, per tensor,
// the first type of a fixed fallback chain that fits (see fallback_type) and
// the report says so; the file is never refused for it.
#pragma once

#include "gguf/tensor_type.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mw::compress {

struct QuantizeOptions {
    gguf::TensorType type = gguf::TensorType::Q4_K;  // target (mixed precision: the default type to start from, unused)
    bool has_type = true;          // false: mixed precision only (target_size / target_bpw)
    std::string calib_path;        // calibration text; empty = plain round-to-nearest
    int32_t n_ctx = 0;             // calibration window; 0 = min(256, training context)
    int64_t calib_tokens = 4096;   // tokens of calibration text used (0 = all)
    uint64_t target_size = 0;      // mixed precision: output file size budget in bytes
    double target_bpw = 0;         // mixed precision: bits per weight of the quantized tensors
    int64_t sens_tokens = 512;     // tokens the per-tensor sensitivity (KL) is measured on
    int32_t plan_candidates = 8;   // mixed precision: candidate plans whose whole-plan KL is measured (1 = best predicted only)
    bool rtn_variants = false;     // mixed precision: per tensor and type, also try the round-to-nearest encoder
    int32_t n_threads = 0;         // 0 = hardware threads
    // Messages for the user (progress, fallbacks, warnings), one line each.
    std::function<void(const std::string&)> log;
    // (tensors done, tensors in all) after each output tensor.
    std::function<void(int64_t, int64_t)> progress;
};

struct TensorReport {
    std::string name;
    gguf::TensorType from = gguf::TensorType::F32;
    gguf::TensorType to = gguf::TensorType::F32;
    uint64_t n_elements = 0;
    uint64_t bytes = 0;
    bool converted = false; // a 2-D weight (re)encoded; false: copied unchanged
    bool fallback = false;  // the requested type did not fit the row width
    double sensitivity = 0; // mixed precision: KL the chosen type alone causes (nats)
};

struct QuantizeReport {
    std::vector<TensorReport> tensors;
    uint64_t in_bytes = 0;         // input file size
    uint64_t out_bytes = 0;        // output file size
    uint64_t n_fallback = 0;       // tensors that got a fallback type
    int64_t calib_tokens = 0;      // tokens the statistics came from (0 = no calibration)
    bool requantized = false;      // the input was already quantized
    bool mixed = false;
    double predicted_kl = 0;       // mixed precision: sum of the chosen tensors' sensitivities
    double measured_kl = 0;        // mixed precision: KL of the chosen plan measured on the sensitivity windows
};

// Parses "Q4_K", "q8_0", "F16" ... (the types quantize can produce).
// MW_ERR_INVALID_ARGUMENT naming the known types otherwise.
gguf::TensorType parse_quant_type(const std::string& name);

// The type a row of n_in elements gets when `want` is asked for: want itself
// when n_in is a multiple of its block, else the first that fits of
// Q4_K -> Q4_1 -> F16, Q5_K -> Q5_1 -> F16, Q6_K -> Q8_0 -> F16,
// Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 -> F16 (never a type of lower precision
// than asked).
gguf::TensorType fallback_type(gguf::TensorType want, uint64_t n_in);

// llama.cpp's general.file_type number for a file mostly of type t.
uint32_t file_type_of(gguf::TensorType t);

// Quantizes in_path into out_path (written via a temporary file and rename).
// Throws mw::Error: MW_ERR_INVALID_ARGUMENT (bad options, empty calibration
// text, budget too small), MW_ERR_IO, MW_ERR_FORMAT, MW_ERR_UNSUPPORTED (a
// tensor type that cannot be read).
QuantizeReport quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeOptions& opts);

}  // namespace mw::compress
