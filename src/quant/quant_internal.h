// Per-type row functions behind the dispatch in quant.cpp. Private to src/quant/.
#pragma once

#include "quant/block_formats.h"

#include <cstddef>
#include <cstdint>

namespace mw::quant::detail {

// K-quants (quant_k.cpp). n is a multiple of QK_K.
void dequantize_q4_K(const BlockQ4_K* x, float* y, size_t n);
void dequantize_q5_K(const BlockQ5_K* x, float* y, size_t n);
void dequantize_q6_K(const BlockQ6_K* x, float* y, size_t n);
void dequantize_q8_K(const BlockQ8_K* x, float* y, size_t n);
void quantize_q4_K(const float* x, BlockQ4_K* y, size_t n);
void quantize_q5_K(const float* x, BlockQ5_K* y, size_t n);
void quantize_q6_K(const float* x, BlockQ6_K* y, size_t n);
void quantize_q8_K(const float* x, BlockQ8_K* y, size_t n);

// Dot products (vec_dot_ref.cpp): weight row of the named type with its activation row.
float dot_f32(size_t n, const float* w, const float* a);
float dot_f16(size_t n, const uint16_t* w, const uint16_t* a);
float dot_bf16(size_t n, const uint16_t* w, const uint16_t* a);
float dot_q4_0(size_t n, const BlockQ4_0* w, const BlockQ8_0* a);
float dot_q4_1(size_t n, const BlockQ4_1* w, const BlockQ8_1* a);
float dot_q5_0(size_t n, const BlockQ5_0* w, const BlockQ8_0* a);
float dot_q5_1(size_t n, const BlockQ5_1* w, const BlockQ8_1* a);
float dot_q8_0(size_t n, const BlockQ8_0* w, const BlockQ8_0* a);
float dot_q4_K(size_t n, const BlockQ4_K* w, const BlockQ8_K* a);
float dot_q5_K(size_t n, const BlockQ5_K* w, const BlockQ8_K* a);
float dot_q6_K(size_t n, const BlockQ6_K* w, const BlockQ8_K* a);

}  // namespace mw::quant::detail
