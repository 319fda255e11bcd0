// Block decoding shared by the CUDA kernels and the host: the same source is
// compiled by nvcc for the device and by the C++ compiler for the CPU tests,
// which check it against src/quant's reference dequantization in CI (where
// there is no GPU). Plain C++ only: no CUDA headers, no std:: calls.
//
// A weight row is read in chunks of 32 elements (every supported type's block
// is 32 or 256 = 8 x 32 elements). decode8 yields elements [8j, 8j + 8) of
// chunk c, so a GPU thread holds 8 values at a time, never a whole block.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MW_HD __host__ __device__ __forceinline__
#else
#define MW_HD inline
#endif

namespace mw::cudak {

// Values of gguf::TensorType (kept numeric here so the header needs nothing else).
enum : uint32_t {
    kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30
};

MW_HD float bits_to_f32(uint32_t b) {
    union { uint32_t u; float f; } v;
    v.u = b;
    return v.f;
}
MW_HD uint32_t f32_to_bits(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    return v.u;
}

// Exact IEEE half to float (subnormals, inf, NaN included).
MW_HD float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        // Subnormal (or zero): mant * 2^-24, exact in float.
        const float v = (float)mant * 5.9604644775390625e-08f;
        return bits_to_f32(sign | f32_to_bits(v));
    }
    if (exp == 31) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

// Float to half, round to nearest even (as the F16C instruction and __float2half_rn).
MW_HD uint16_t float_to_half(float f) {
    const uint32_t x = f32_to_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t abs = x & 0x7fffffff;
    if (abs >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);
    if (abs < 0x38800000u) {
        if (abs < 0x33000000u) return (uint16_t)sign;
        const uint32_t e = abs >> 23;
        const uint32_t m = (abs & 0x7fffff) | 0x800000;
        const uint32_t sh = 126 - e;
        uint32_t half = m >> sh;
        const uint32_t rem = m & ((1u << sh) - 1);
        const uint32_t mid = 1u << (sh - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((abs >> 13) - (112u << 10));
    const uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

MW_HD float bf16_to_float(uint16_t b) { return bits_to_f32((uint32_t)b << 16); }

MW_HD uint16_t load_u16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (see
// quant::scale_min_k4, whose packing this repeats).
MW_HD void scale_min_k4(int j, const uint8_t* s, int* sc, int* m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Bytes of one row of n elements (n a multiple of the type's block); 0 for an
// unsupported type.
MW_HD uint64_t row_bytes(uint32_t type, int64_t n) {
    switch (type) {
    case kF32: return (uint64_t)n * 4;
    case kF16: case kBF16: return (uint64_t)n * 2;
    case kQ8_0: return (uint64_t)(n / 32) * 34;
    case kQ4_0: return (uint64_t)(n / 32) * 18;
    case kQ4_1: return (uint64_t)(n / 32) * 20;
    case kQ5_0: return (uint64_t)(n / 32) * 22;
    case kQ5_1: return (uint64_t)(n / 32) * 24;
    case kQ4_K: return (uint64_t)(n / 256) * 144;
    case kQ5_K: return (uint64_t)(n / 256) * 176;
    case kQ6_K: return (uint64_t)(n / 256) * 210;
    default: return 0;
    }
}

// Elements [8j, 8j + 8) of the 32-element chunk c of a row, j in 0..3.
// Each formula is the reference one from src/quant (d * q, d * q + m, ...).
MW_HD void decode8(uint32_t type, const uint8_t* row, int64_t c, int j, float* out) {
    const int e0 = 8 * j;
    switch (type) {
    case kF32: {
        const uint8_t* p = row + (c * 32 + e0) * 4;
        for (int k = 0; k < 8; k++)
            out[k] = bits_to_f32((uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 | (uint32_t)p[4 * k + 2] << 16 |
                                 (uint32_t)p[4 * k + 3] << 24);
        return;
    }
    case kF16: {
        const uint8_t* p = row + (c * 32 + e0) * 2;
        for (int k = 0; k < 8; k++) out[k] = half_to_float(load_u16(p + 2 * k));
        return;
    }
    case kBF16: {
        const uint8_t* p = row + (c * 32 + e0) * 2;
        for (int k = 0; k < 8; k++) out[k] = bf16_to_float(load_u16(p + 2 * k));
        return;
    }
    case kQ8_0: {  // d (F16), qs[32] int8
        const uint8_t* b = row + c * 34;
        const float d = half_to_float(load_u16(b));
        for (int k = 0; k < 8; k++) out[k] = d * (float)(int8_t)b[2 + e0 + k];
        return;
    }
    case kQ4_0: {  // d, qs[16]: element e in the low nibble of qs[e], e + 16 in the high one
        const uint8_t* b = row + c * 18;
        const float d = half_to_float(load_u16(b));
        for (int k = 0; k < 8; k++) {
            const int e = e0 + k;
            const int q = e < 16 ? (b[2 + e] & 15) : (b[2 + e - 16] >> 4);
            out[k] = (float)(q - 8) * d;
        }
        return;
    }
    case kQ4_1: {  // d, m, qs[16]
        const uint8_t* b = row + c * 20;
        const float d = half_to_float(load_u16(b)), m = half_to_float(load_u16(b + 2));
        for (int k = 0; k < 8; k++) {
            const int e = e0 + k;
            const int q = e < 16 ? (b[4 + e] & 15) : (b[4 + e - 16] >> 4);
            out[k] = (float)q * d + m;
        }
        return;
    }
    case kQ5_0:
    case kQ5_1: {
        // d, (Q5_1: m), qh[4], qs[16]: the low 4 bits as Q4_0, the fifth of element e is bit e of qh
        const bool one = type == kQ5_1;
        const uint8_t* b = row + c * (one ? 24 : 22);
        const float d = half_to_float(load_u16(b));
        const float m = one ? half_to_float(load_u16(b + 2)) : 0.0f;
        const uint8_t* qh = b + (one ? 4 : 2);
        const uint8_t* qs = qh + 4;
        for (int k = 0; k < 8; k++) {
            const int e = e0 + k;
            const int q = (e < 16 ? (qs[e] & 15) : (qs[e - 16] >> 4)) | (((qh[e >> 3] >> (e & 7)) & 1) << 4);
            out[k] = one ? (float)q * d + m : (float)(q - 16) * d;
        }
        return;
    }
    case kQ4_K:
    case kQ5_K: {
        // d, dmin, scales[12], (Q5_K: qh[32]), qs[128]; sub-block s = c % 8
        // lives in the low (s even) or high (s odd) nibbles of qs[32 (s/2) ..].
        const bool five = type == kQ5_K;
        const uint8_t* b = row + (c / 8) * (five ? 176 : 144);
        const int s = (int)(c % 8);
        const float d = half_to_float(load_u16(b)), dmin = half_to_float(load_u16(b + 2));
        int sc, m;
        scale_min_k4(s, b + 4, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        const uint8_t* qh = b + 16;
        const uint8_t* qs = b + (five ? 48 : 16) + 32 * (s / 2);
        for (int k = 0; k < 8; k++) {
            const int l = e0 + k;
            int q = (s & 1) ? (qs[l] >> 4) : (qs[l] & 15);
            if (five) q += ((qh[l] >> s) & 1) << 4;
            out[k] = d1 * (float)q - m1;
        }
        return;
    }
    case kQ6_K: {
        // ql[128], qh[64], scales[16] int8, d. Element r of half h (128 each):
        // quadrant r / 32 picks the nibble of ql and the 2 bits of qh; scale r / 16.
        const uint8_t* b = row + (c / 8) * 210;
        const float d = half_to_float(load_u16(b + 208));
        const int e = 32 * (int)(c % 8) + e0;
        const int h = e / 128;
        const uint8_t* ql = b + 64 * h;
        const uint8_t* qh = b + 128 + 32 * h;
        const int8_t* sc = (const int8_t*)(b + 192 + 8 * h);
        for (int k = 0; k < 8; k++) {
            const int r = (e + k) % 128;
            const int qd = r / 32, l = r % 32;
            const int lo = (qd & 1) ? ql[l + 32] : ql[l];
            const int q = ((qd & 2) ? (lo >> 4) : (lo & 15)) | (((qh[l] >> (2 * qd)) & 3) << 4);
            out[k] = d * (float)sc[r / 16] * (float)(q - 32);
        }
        return;
    }
    default:
        for (int k = 0; k < 8; k++) out[k] = 0.0f;
        return;
    }
}

// Quantizes 32 floats to one Q8_0 block (34 bytes) the way ggml's reference
// quantizer does: d = amax / 127, q = round-half-away(x / d). For a Q8_0 KV cache.
MW_HD void quantize_q8_0_block(const float* x, uint8_t* out) {
    float amax = 0.0f;
    for (int k = 0; k < 32; k++) {
        const float a = x[k] < 0 ? -x[k] : x[k];
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = float_to_half(d);
    out[0] = (uint8_t)(dh & 0xff);
    out[1] = (uint8_t)(dh >> 8);
    for (int k = 0; k < 32; k++) {
        const float v = x[k] * id;
        // round half away from zero (std::round) without the library call:
        // v - trunc(v) is exact, so the comparison with 0.5 is too.
        int r = (int)v;
        const float frac = v - (float)r;
        if (frac >= 0.5f) r++;
        else if (frac <= -0.5f) r--;
        out[2 + k] = (uint8_t)(int8_t)r;
    }
}

}  // namespace mw::cudak
