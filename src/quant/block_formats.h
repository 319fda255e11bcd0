// Byte layouts of the GGUF (ggml) quantized blocks, field for field as the file
// stores them, plus the small helpers every reader of them needs (scale
// unpacking of the K-quants, ggml's rounding). Shared by quant.cpp and the CPU
// kernels; the static_asserts pin the sizes the file format fixes.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace mw::quant {

constexpr int QK = 32;     // elements per block of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1
constexpr int QK_K = 256;  // elements per super-block of the K-quants and Q8_K

// x = d * (q - 8), q in 0..15; element j in the low nibble of qs[j], j+16 in the high one.
struct BlockQ4_0 {
    uint16_t d;  // F16
    uint8_t qs[QK / 2];
};

// x = d * q + m, q in 0..15, nibbles ordered as Q4_0.
struct BlockQ4_1 {
    uint16_t d;  // F16
    uint16_t m;  // F16
    uint8_t qs[QK / 2];
};

// x = d * (q - 16), q in 0..31: the low 4 bits as Q4_0's nibbles, the fifth
// bit of element j is bit j of qh (a little-endian uint32 in the file).
struct BlockQ5_0 {
    uint16_t d;  // F16
    uint8_t qh[4];
    uint8_t qs[QK / 2];
};

// x = d * q + m, q in 0..31, bits stored as Q5_0.
struct BlockQ5_1 {
    uint16_t d;  // F16
    uint16_t m;  // F16
    uint8_t qh[4];
    uint8_t qs[QK / 2];
};

// x = d * q, q in -127..127.
struct BlockQ8_0 {
    uint16_t d;  // F16
    int8_t qs[QK];
};

// Activation format for Q4_1: like Q8_0 plus s = d * sum(qs), both F16.
struct BlockQ8_1 {
    uint16_t d;  // F16
    uint16_t s;  // F16
    int8_t qs[QK];
};

// 8 sub-blocks of 32: x = d * sc[j] * q - dmin * m[j], q in 0..15.
// scales: 6-bit sc and m for 8 sub-blocks packed in 12 bytes (see scale_min_k4).
// qs: four 32-byte groups; group g holds sub-block 2g in the low nibbles and 2g+1 in the high.
struct BlockQ4_K {
    uint16_t d;     // F16 super-block scale of the scales
    uint16_t dmin;  // F16 super-block scale of the mins
    uint8_t scales[12];
    uint8_t qs[QK_K / 2];
};

// As Q4_K with a fifth bit: bit 2g of qh[l] is the high bit of element 64g + l,
// bit 2g+1 that of element 64g + 32 + l. q in 0..31.
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};

// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q in 0..63.
// Each half of 128 elements uses 64 bytes of ql, 32 of qh and 8 scales: for l < 32,
// element l      = ql[l]      & 15 | (qh[l] >> 0 & 3) << 4
// element l + 32 = ql[l + 32] & 15 | (qh[l] >> 2 & 3) << 4
// element l + 64 = ql[l]      >> 4 | (qh[l] >> 4 & 3) << 4
// element l + 96 = ql[l + 32] >> 4 | (qh[l] >> 6 & 3) << 4
struct BlockQ6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;  // F16
};

// Activation format for the K-quants: float scale, bsums[j] = sum of qs[16j..16j+15].
struct BlockQ8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block");
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block");
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block");
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block");
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block");
static_assert(sizeof(BlockQ8_1) == 36, "Q8_1 block");
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block");
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block");
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block");
static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block");

// 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block: sub-blocks 0..3
// keep them in the low 6 bits of bytes j and j+4; 4..7 keep the low 4 bits in byte
// j+4 (scale low nibble, min high nibble) and the top 2 bits in the spare top bits
// of bytes j-4 (scale) and j (min).
inline void scale_min_k4(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// The 5-bit quant of element e (0..31) of a Q5_0/Q5_1 block.
inline int q5_quant(const uint8_t* qs, const uint8_t* qh, int e) {
    const int low = e < QK / 2 ? qs[e] & 0xF : qs[e - QK / 2] >> 4;
    return low | (((qh[e >> 3] >> (e & 7)) & 1) << 4);
}

// Packs 32 quants (0..31) into a Q5_0/Q5_1 block's qs and qh.
inline void q5_pack(const uint8_t* q, uint8_t* qs, uint8_t* qh) {
    std::memset(qh, 0, 4);
    for (int j = 0; j < QK / 2; j++) qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + QK / 2] & 0xF) << 4));
    for (int e = 0; e < QK; e++) qh[e >> 3] = (uint8_t)(qh[e >> 3] | ((q[e] >> 4) & 1) << (e & 7));
}

// ggml's nearest_int: round half to even through the float mantissa (|x| < 2^22).
inline int nearest_int(float x) {
    float v = x + 12582912.f;
    int32_t i;
    std::memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

}  // namespace mw::quant
