// Importance-weighted quantization: for each block, the scale (and min) that
// minimise sum_i imp[i] * (x[i] - dequant(q[i]))^2 over a sweep of candidate
// scales, each refit by weighted least squares. imp is the per-column
// importance of the row (mean of the squared activation that multiplies each
// weight, as collected on calibration text); with no importance every column
// weighs the same and the search still beats plain round-to-nearest.
//
// Output blocks are the ordinary GGUF layouts (block_formats.h): any decoder
// reads them. Supported: F32, F16, BF16 (no choice to make: plain conversion),
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
#pragma once

#include "gguf/tensor_type.h"

#include <cstddef>

namespace mw::quant {

// n: a multiple of the type's block. imp: n values >= 0, or nullptr.
void quantize_row_weighted(gguf::TensorType type, const float* src, void* dst, size_t n, const float* imp);

// sum_i w[i] * (a[i] - b[i])^2 (w may be nullptr: all ones). For tests and reports.
double weighted_sq_error(const float* a, const float* b, const float* w, size_t n);

}  // namespace mw::quant
