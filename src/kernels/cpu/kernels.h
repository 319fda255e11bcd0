// Row kernels for the CPU backend, chosen once by ISA level.
//
// A matrix-vector or matrix-matrix product is: convert each activation row to
// the weight type's vec_dot_type (quantize_act), then for each output element
// call vec_dot on a weight row and an activation row. The threaded driver
// lives in src/runtime/; these are the per-row pieces.
#pragma once

#include "gguf/tensor_type.h"
#include "kernels/cpu/cpu_features.h"

#include <cstddef>
#include <cstdint>

namespace mw::cpu {

using gguf::TensorType;

// dot of n elements: weight row w (weight type) with activation row a (its vec_dot_type)
using VecDotFn = float (*)(size_t n, const void* w, const void* a);
// convert n floats to an activation row of the type (Q8_0, Q8_1, Q8_K, F16, BF16, F32)
using QuantizeActFn = void (*)(const float* x, void* dst, size_t n);
// y[r] = dot(w row r, a) for r in [0, nrows): rows are row_stride bytes apart.
// Kernels may process several rows at once; this is the decode hot loop.
using GemvFn = void (*)(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y);

// Prefill: y[t * y_stride + r] = dot(w row r, activation row t) for r < nrows,
// t < ntok; activation rows are a_stride bytes apart. Tiles rows x tokens so a
// weight block is reused across many tokens while it is in cache.
using GemmFn = void (*)(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a,
                        size_t a_stride, size_t ntok, float* y, size_t y_stride);

struct KernelTable {
    IsaLevel level;
    VecDotFn vec_dot[32];        // indexed by TensorType id; nullptr when unsupported
    QuantizeActFn quantize_act[32];  // by activation type; a weight type's slot converts to its vec_dot_type
    GemvFn gemv[32];
    GemmFn gemm[32];
};

// The table for a level (scalar always exists; a level the CPU lacks must not be used).
const KernelTable& kernels_for(IsaLevel level);
// The table for active_isa().
const KernelTable& kernels();

}  // namespace mw::cpu
