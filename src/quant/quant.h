// Block formats of the GGUF weight types and reference (scalar, straightforward)
// conversions between them and float. These are the oracle every SIMD kernel is
// tested against, and what the quantize tool builds on.
//
// Layouts follow the GGUF/ggml specification (block sizes 32 for Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0, Q8_1; 256 for the K-quants and Q8_K).
#pragma once

#include "gguf/tensor_type.h"

#include <cstddef>
#include <cstdint>

namespace mw::quant {

using gguf::TensorType;

// Dequantizes n elements (a multiple of the type's block) of a row.
// Supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K,
// and Q8_1, Q8_K.
void dequantize_row(TensorType type, const void* src, float* dst, size_t n);

// Quantizes n floats (a multiple of the block) with plain round-to-nearest, the
// way the reference ggml quantizer does. Same set of types.
void quantize_row(TensorType type, const float* src, void* dst, size_t n);

// The activation format the integer dot product for weights of `type` consumes:
// Q8_0 for Q4_0, Q5_0 and Q8_0, Q8_1 for Q4_1 and Q5_1, Q8_K for Q4_K/Q5_K/Q6_K, F16 for F16,
// BF16 for BF16, F32 for F32 (the same pairing llama.cpp uses, so results agree).
TensorType vec_dot_type(TensorType type);

// Reference dot product of one weight row (n elements, `type`) with one
// activation row already converted to vec_dot_type(type).
float vec_dot_ref(TensorType type, size_t n, const void* w, const void* act);

}  // namespace mw::quant
