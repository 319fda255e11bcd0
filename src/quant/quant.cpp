// Dispatch by tensor type, and the 32-element block formats (Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q8_1) plus F16/BF16, quantized the way ggml's reference quantizer does.
#include "quant/quant.h"

#include "base/error.h"
#include "base/half.h"
#include "quant/quant_internal.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

namespace mw::quant {

namespace {

using namespace detail;

const char* type_name(TensorType type) {
    const gguf::TensorTypeInfo* info = gguf::tensor_type_info((uint32_t)type);
    return info ? info->name : "unknown";
}

[[noreturn]] void unsupported(const char* what, TensorType type) {
    fail(MW_ERR_UNSUPPORTED, std::string(what) + ": tensor type " + type_name(type) + " (" +
                                 std::to_string((uint32_t)type) + ") is not supported");
}

void check_multiple(const char* what, TensorType type, size_t n, size_t block) {
    if (n % block != 0)
        fail(MW_ERR_INVALID_ARGUMENT, std::string(what) + ": " + std::to_string(n) + " elements is not a multiple of the " +
                                          type_name(type) + " block of " + std::to_string(block));
}

size_t block_elems(TensorType type) {
    switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16: return 1;
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::Q8_1: return QK;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q8_K: return QK_K;
    default: return 0;
    }
}

void dequantize_q4_0(const BlockQ4_0* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, y += QK) {
        const float d = f16_to_f32(x[b].d);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (float)((x[b].qs[j] & 0xF) - 8) * d;
            y[j + QK / 2] = (float)((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_q4_1(const BlockQ4_1* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, y += QK) {
        const float d = f16_to_f32(x[b].d), m = f16_to_f32(x[b].m);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (float)(x[b].qs[j] & 0xF) * d + m;
            y[j + QK / 2] = (float)(x[b].qs[j] >> 4) * d + m;
        }
    }
}

void dequantize_q5_0(const BlockQ5_0* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, y += QK) {
        const float d = f16_to_f32(x[b].d);
        for (int e = 0; e < QK; e++) y[e] = (float)(q5_quant(x[b].qs, x[b].qh, e) - 16) * d;
    }
}

void dequantize_q5_1(const BlockQ5_1* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, y += QK) {
        const float d = f16_to_f32(x[b].d), m = f16_to_f32(x[b].m);
        for (int e = 0; e < QK; e++) y[e] = (float)q5_quant(x[b].qs, x[b].qh, e) * d + m;
    }
}

void dequantize_q8_0(const BlockQ8_0* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, y += QK) {
        const float d = f16_to_f32(x[b].d);
        for (int j = 0; j < QK; j++) y[j] = (float)x[b].qs[j] * d;
    }
}

void dequantize_q8_1(const BlockQ8_1* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, y += QK) {
        const float d = f16_to_f32(x[b].d);
        for (int j = 0; j < QK; j++) y[j] = (float)x[b].qs[j] * d;
    }
}

// Symmetric 4-bit: the value of largest magnitude maps to -8 exactly.
void quantize_q4_0(const float* x, BlockQ4_0* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++)
            if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f32_to_f16(d);
        for (int j = 0; j < QK / 2; j++) {
            const int q0 = std::min(15, (int)(int8_t)(x[j] * id + 8.5f));
            const int q1 = std::min(15, (int)(int8_t)(x[j + QK / 2] * id + 8.5f));
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

// Asymmetric 4-bit: min and (max - min) / 15.
void quantize_q4_1(const float* x, BlockQ4_1* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            min = std::min(min, x[j]);
            max = std::max(max, x[j]);
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f32_to_f16(d);
        y[b].m = f32_to_f16(min);
        for (int j = 0; j < QK / 2; j++) {
            const int q0 = std::min(15, (int)(int8_t)((x[j] - min) * id + 0.5f));
            const int q1 = std::min(15, (int)(int8_t)((x[j + QK / 2] - min) * id + 0.5f));
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

// Symmetric 5-bit: the value of largest magnitude maps to -16 exactly.
void quantize_q5_0(const float* x, BlockQ5_0* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++)
            if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f32_to_f16(d);
        uint8_t q[QK];
        for (int j = 0; j < QK; j++) q[j] = (uint8_t)std::min(31, (int)(int8_t)(x[j] * id + 16.5f));
        q5_pack(q, y[b].qs, y[b].qh);
    }
}

// Asymmetric 5-bit: min and (max - min) / 31.
void quantize_q5_1(const float* x, BlockQ5_1* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            min = std::min(min, x[j]);
            max = std::max(max, x[j]);
        }
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f32_to_f16(d);
        y[b].m = f32_to_f16(min);
        uint8_t q[QK];
        for (int j = 0; j < QK; j++) q[j] = (uint8_t)std::min(31, (int)(uint8_t)((x[j] - min) * id + 0.5f));
        q5_pack(q, y[b].qs, y[b].qh);
    }
}

void quantize_q8_0(const float* x, BlockQ8_0* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f32_to_f16(d);
        for (int j = 0; j < QK; j++) y[b].qs[j] = (int8_t)std::round(x[j] * id);
    }
}

void quantize_q8_1(const float* x, BlockQ8_1* y, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            y[b].qs[j] = (int8_t)std::round(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].d = f32_to_f16(d);
        y[b].s = f32_to_f16((float)sum * d);
    }
}

}  // namespace

void dequantize_row(TensorType type, const void* src, float* dst, size_t n) {
    const size_t block = block_elems(type);
    if (block == 0) unsupported("dequantize_row", type);
    check_multiple("dequantize_row", type, n, block);
    switch (type) {
    case TensorType::F32: std::memcpy(dst, src, n * sizeof(float)); break;
    case TensorType::F16:
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(((const uint16_t*)src)[i]);
        break;
    case TensorType::BF16:
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(((const uint16_t*)src)[i]);
        break;
    case TensorType::Q4_0: dequantize_q4_0((const BlockQ4_0*)src, dst, n); break;
    case TensorType::Q4_1: dequantize_q4_1((const BlockQ4_1*)src, dst, n); break;
    case TensorType::Q5_0: dequantize_q5_0((const BlockQ5_0*)src, dst, n); break;
    case TensorType::Q5_1: dequantize_q5_1((const BlockQ5_1*)src, dst, n); break;
    case TensorType::Q8_0: dequantize_q8_0((const BlockQ8_0*)src, dst, n); break;
    case TensorType::Q8_1: dequantize_q8_1((const BlockQ8_1*)src, dst, n); break;
    case TensorType::Q4_K: dequantize_q4_K((const BlockQ4_K*)src, dst, n); break;
    case TensorType::Q5_K: dequantize_q5_K((const BlockQ5_K*)src, dst, n); break;
    case TensorType::Q6_K: dequantize_q6_K((const BlockQ6_K*)src, dst, n); break;
    case TensorType::Q8_K: dequantize_q8_K((const BlockQ8_K*)src, dst, n); break;
    default: unsupported("dequantize_row", type);
    }
}

void quantize_row(TensorType type, const float* src, void* dst, size_t n) {
    const size_t block = block_elems(type);
    if (block == 0) unsupported("quantize_row", type);
    check_multiple("quantize_row", type, n, block);
    switch (type) {
    case TensorType::F32: std::memcpy(dst, src, n * sizeof(float)); break;
    case TensorType::F16:
        for (size_t i = 0; i < n; i++) ((uint16_t*)dst)[i] = f32_to_f16(src[i]);
        break;
    case TensorType::BF16:
        for (size_t i = 0; i < n; i++) ((uint16_t*)dst)[i] = f32_to_bf16(src[i]);
        break;
    case TensorType::Q4_0: quantize_q4_0(src, (BlockQ4_0*)dst, n); break;
    case TensorType::Q4_1: quantize_q4_1(src, (BlockQ4_1*)dst, n); break;
    case TensorType::Q5_0: quantize_q5_0(src, (BlockQ5_0*)dst, n); break;
    case TensorType::Q5_1: quantize_q5_1(src, (BlockQ5_1*)dst, n); break;
    case TensorType::Q8_0: quantize_q8_0(src, (BlockQ8_0*)dst, n); break;
    case TensorType::Q8_1: quantize_q8_1(src, (BlockQ8_1*)dst, n); break;
    case TensorType::Q4_K: quantize_q4_K(src, (BlockQ4_K*)dst, n); break;
    case TensorType::Q5_K: quantize_q5_K(src, (BlockQ5_K*)dst, n); break;
    case TensorType::Q6_K: quantize_q6_K(src, (BlockQ6_K*)dst, n); break;
    case TensorType::Q8_K: quantize_q8_K(src, (BlockQ8_K*)dst, n); break;
    default: unsupported("quantize_row", type);
    }
}

TensorType vec_dot_type(TensorType type) {
    switch (type) {
    case TensorType::F32: return TensorType::F32;
    case TensorType::F16: return TensorType::F16;
    case TensorType::BF16: return TensorType::BF16;
    case TensorType::Q4_0:
    case TensorType::Q5_0:
    case TensorType::Q8_0: return TensorType::Q8_0;
    case TensorType::Q4_1:
    case TensorType::Q5_1: return TensorType::Q8_1;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K: return TensorType::Q8_K;
    default: unsupported("vec_dot_type", type);
    }
}

float vec_dot_ref(TensorType type, size_t n, const void* w, const void* act) {
    const size_t block = block_elems(type);
    if (block == 0) unsupported("vec_dot_ref", type);
    check_multiple("vec_dot_ref", type, n, block);
    switch (type) {
    case TensorType::F32: return dot_f32(n, (const float*)w, (const float*)act);
    case TensorType::F16: return dot_f16(n, (const uint16_t*)w, (const uint16_t*)act);
    case TensorType::BF16: return dot_bf16(n, (const uint16_t*)w, (const uint16_t*)act);
    case TensorType::Q4_0: return dot_q4_0(n, (const BlockQ4_0*)w, (const BlockQ8_0*)act);
    case TensorType::Q4_1: return dot_q4_1(n, (const BlockQ4_1*)w, (const BlockQ8_1*)act);
    case TensorType::Q5_0: return dot_q5_0(n, (const BlockQ5_0*)w, (const BlockQ8_0*)act);
    case TensorType::Q5_1: return dot_q5_1(n, (const BlockQ5_1*)w, (const BlockQ8_1*)act);
    case TensorType::Q8_0: return dot_q8_0(n, (const BlockQ8_0*)w, (const BlockQ8_0*)act);
    case TensorType::Q4_K: return dot_q4_K(n, (const BlockQ4_K*)w, (const BlockQ8_K*)act);
    case TensorType::Q5_K: return dot_q5_K(n, (const BlockQ5_K*)w, (const BlockQ8_K*)act);
    case TensorType::Q6_K: return dot_q6_K(n, (const BlockQ6_K*)w, (const BlockQ8_K*)act);
    default: unsupported("vec_dot_ref", type);
    }
}

}  // namespace mw::quant
