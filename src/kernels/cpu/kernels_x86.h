// 256-bit x86 kernels shared by kernels_avx2.cpp and kernels_avx512.cpp. Each
// of those files includes this header and so compiles its own copy for its ISA
// (everything here has internal linkage); under AVX-512 VNNI the byte dot
// products use vpdpbusd, otherwise maddubs + madd.
//
// Shape of every kernel: a tile of R weight rows x T activation rows walks the
// blocks once; each weight block is unpacked once and used for all T tokens, each
// activation block loaded once per row. gemv is T = 1 with R = 4; gemm tiles
// R x T and handles the remainders with smaller tiles.
#pragma once

#include "base/half.h"
#include "kernels/cpu/kernels.h"
#include "quant/block_formats.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>

namespace mw::cpu {
namespace {

using quant::BlockQ4_0;
using quant::BlockQ4_1;
using quant::BlockQ4_K;
using quant::BlockQ5_0;
using quant::BlockQ5_1;
using quant::BlockQ5_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;
using quant::BlockQ8_1;
using quant::BlockQ8_K;
using quant::QK;
using quant::QK_K;

// ---- small helpers ----

// The per-block helpers must inline into the tile loops (GCC's heuristics give
// up on some of them in the larger tiles).
#define MW_INLINE inline __attribute__((always_inline))

MW_INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

MW_INLINE float f16(uint16_t h) { return _cvtsh_ss(h); }

MW_INLINE __m256i load256(const void* p) { return _mm256_loadu_si256((const __m256i*)p); }

// 8 int32 lanes, each the sum of 4 products of unsigned bytes u with signed bytes s.
// Without VNNI the 16-bit pair sums must not saturate: callers keep u <= 127 or
// |u * s| small enough (4- to 6-bit weights).
MW_INLINE __m256i dot_u8s8(__m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    // vpdpbusd accumulates into its destination: start from a zeroing idiom
    // (free at rename) rather than a copy of a shared zero register.
    __m256i z;
    __asm__ volatile("vpxord %0, %0, %0" : "=v"(z));
    return _mm256_dpbusd_epi32(z, u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// ---- per-type block kernels ----
//
// Every quantized kernel reproduces llama.cpp's x86 (AVX2) vec_dot for its type,
// which llama.cpp also runs on AVX-512 CPUs, per (weight row, activation row):
//  - per block (per super-block for the K-quants) 8 int32 lanes, lane i holding
//    the products of elements 4i..4i+3 of each 32-element chunk (times the
//    sub-block scale for the K-quants);
//  - acc = fma(scale, float(lanes), acc) into one 8-lane float accumulator,
//    block after block, the scale rounded to float first (d_w * d_a);
//  - Q4_1's / Q5_1's m_w * s_a and the K-quants' mins accumulate on their own as llama.cpp
//    does, and join after the horizontal sum hsum_ps.
// Integer sums are exact in any order and tiling only changes which (row, token)
// pairs share loads, so vec_dot, gemv and gemm give the same bits for a (row,
// token) whatever the batch, on every ISA level (kernels_scalar.cpp emulates the
// lanes for the scalar table). Tests assert this bit for bit.

// Tiles index their accumulator arrays by row and token: unrolled completely,
// the arrays become registers instead of stack slots.
#define MW_UNROLL _Pragma("GCC unroll 16")

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define MW_X86_VNNI 1
#else
#define MW_X86_VNNI 0
#endif

MW_INLINE uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// c + 8 int32 lanes of 4 products of unsigned u by signed s (see dot_u8s8).
MW_INLINE __m256i dot_u8s8_add(__m256i c, __m256i u, __m256i s) {
#if MW_X86_VNNI
    return _mm256_dpbusd_epi32(c, u, s);
#else
    return _mm256_add_epi32(c, dot_u8s8(u, s));
#endif
}

// ---- Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (32-element blocks) ----

// An activation row prepared once per call (per token tile for gemm), so the
// row loop does no conversions: per block its F16 header as two floats
// (d, s for Q8_1; d, 0 for Q8_0) and, for offset weights, the lane correction
// -offset * (sum of the lane's 4 quants).
struct Prep32 {
    const float* ds;    // 2 per block
    const int32_t* c;   // 8 per block (kCorr kernels)
    size_t stride;      // blocks per token
};

// An activation block ready for the row loop.
struct Act32 {
    __m256i q;   // the 32 quants
    __m256 ds;   // (d, s) four times
    __m256i c;   // lane correction (kCorr)
};

template <class K>
MW_INLINE Act32 act32(const uint8_t* ablock, const Prep32& p, size_t t, size_t b) {
    Act32 a;
    a.q = load256(ablock + K::kAQ);
    double pair;
    std::memcpy(&pair, p.ds + 2 * (t * p.stride + b), 8);
    a.ds = _mm256_castpd_ps(_mm256_set1_pd(pair));
    if constexpr (K::kCorr) a.c = _mm256_load_si256((const __m256i*)(p.c + 8 * (t * p.stride + b)));
    return a;
}

// Fills ds (and c) for nb blocks of one activation row.
template <class K>
inline void prep32(const uint8_t* a, size_t nb, float* ds, int32_t* c) {
    for (size_t b = 0; b < nb; b++, a += K::kA) {
        uint16_t h[2];
        std::memcpy(h, a, 4);
        ds[2 * b] = f16(h[0]);
        ds[2 * b + 1] = K::kAQ == 4 ? f16(h[1]) : 0.0f;  // Q8_1 keeps s after d
        if constexpr (K::kCorr) {
            const __m256i sums = dot_u8s8(_mm256_set1_epi8((char)K::kOffset), load256(a + K::kAQ));
            _mm256_store_si256((__m256i*)(c + 8 * b), _mm256_sub_epi32(_mm256_setzero_si256(), sums));
        }
    }
}

// Storage for the prepared activations of up to `toks` rows of nb blocks: on
// the stack when small, else on the heap.
class Prep32Buf {
  public:
    Prep32Buf(size_t nb, size_t toks) {
        const size_t need = toks * nb * (2 * sizeof(float) + 8 * sizeof(int32_t)) + 64;
        base_ = need <= sizeof(stack_) ? stack_ : (heap_.reset(new uint8_t[need]), heap_.get());
        uint8_t* p = (uint8_t*)(((uintptr_t)base_ + 31) & ~(uintptr_t)31);
        c_ = (int32_t*)p;
        ds_ = (float*)(p + toks * nb * 8 * sizeof(int32_t));
        stride_ = nb;
    }
    // Prepares tokens [0, toks) from rows a_stride bytes apart.
    template <class K>
    Prep32 fill(const uint8_t* a, size_t a_stride, size_t toks) {
        for (size_t t = 0; t < toks; t++) prep32<K>(a + t * a_stride, stride_, ds_ + 2 * t * stride_, c_ + 8 * t * stride_);
        return {ds_, c_, stride_};
    }

  private:
    alignas(32) uint8_t stack_[16384];
    std::unique_ptr<uint8_t[]> heap_;
    uint8_t* base_;
    int32_t* c_;
    float* ds_;
    size_t stride_;
};

// 32 nibbles of 16 bytes without a cross-lane shuffle: the 16 bytes in both
// halves, then low nibbles kept in the lower half and high nibbles moved down
// in the upper one (one affine bit transform with GFNI, else shift and mask).
MW_INLINE __m256i unpack_nibbles_bcast(const uint8_t* p) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)p));
#if defined(__GFNI__) || defined(MW_X86_GFNI)
    const long long lo = 0x0102040800000000ll, hi = 0x1020408000000000ll;
    return _mm256_gf2p8affine_epi64_epi8(v, _mm256_setr_epi64x(lo, lo, hi, hi), 0);
#else
    return _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
#endif
}

// Each kernel: kW / kA block bytes, kWQ / kAQ offsets of the quants, kMin (the
// weight header's second F16 is a min: m_w * s_a accumulates on its own), kCorr
// and kOffset (weights used as unsigned q + kOffset, corrected per lane),
// W unpack(weight block), lanes(W, Act32) -> the 8 int32 lanes.

// x = d * q + m: lanes of q (0..15) times the activation.
struct Q4_1Kernel {
    static constexpr size_t kBlock = QK, kW = sizeof(BlockQ4_1), kA = sizeof(BlockQ8_1), kAQ = 4;
    static constexpr bool kMin = true, kCorr = false;
    static constexpr int kOffset = 0;
    using W = __m256i;
    MW_INLINE static W unpack(const uint8_t* p) { return unpack_nibbles_bcast(p + 4); }
    MW_INLINE static __m256i lanes(const W& u, const Act32& a) { return dot_u8s8(u, a.q); }
};

// x = d * (q - 8): lanes of q * a, less 8 * (the lane's activation sum); the same integers.
struct Q4_0Kernel {
    static constexpr size_t kBlock = QK, kW = sizeof(BlockQ4_0), kA = sizeof(BlockQ8_0), kAQ = 2;
    static constexpr bool kMin = false, kCorr = true;
    static constexpr int kOffset = 8;
    using W = __m256i;
    MW_INLINE static W unpack(const uint8_t* p) { return unpack_nibbles_bcast(p + 2); }
    MW_INLINE static __m256i lanes(const W& u, const Act32& a) { return dot_u8s8_add(a.c, u, a.q); }
};

// The 32 five-bit quants of a Q5_0/Q5_1 block: the nibbles as Q4_0's, plus 16
// where bit e of qh (element e's fifth bit) is set: one masked add with
// AVX-512 BW/VL, else each byte picks its qh byte and tests its bit.
MW_INLINE __m256i unpack_q5(const uint8_t* qs, const uint8_t* qh) {
    const __m256i lo = unpack_nibbles_bcast(qs);
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    __mmask32 k;
    std::memcpy(&k, qh, 4);
    return _mm256_mask_add_epi8(lo, k, lo, _mm256_set1_epi8(0x10));
#else
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)load_u32(qh)),
                                              _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll,
                                                                 0x0303030303030303ll));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit),
                                                _mm256_set1_epi8(0x10)));
#endif
}

// x = d * q + m, q in 0..31: as Q4_1 with the fifth bit added.
struct Q5_1Kernel {
    static constexpr size_t kBlock = QK, kW = sizeof(BlockQ5_1), kA = sizeof(BlockQ8_1), kAQ = 4;
    static constexpr bool kMin = true, kCorr = false;
    static constexpr int kOffset = 0;
    using W = __m256i;
    MW_INLINE static W unpack(const uint8_t* p) { return unpack_q5(p + 8, p + 4); }
    MW_INLINE static __m256i lanes(const W& u, const Act32& a) { return dot_u8s8(u, a.q); }
};

// x = d * (q - 16): as Q4_0, the weights unsigned (0..31, so maddubs cannot
// saturate) and 16 * (the lane's activation sum) taken off by the correction.
struct Q5_0Kernel {
    static constexpr size_t kBlock = QK, kW = sizeof(BlockQ5_0), kA = sizeof(BlockQ8_0), kAQ = 2;
    static constexpr bool kMin = false, kCorr = true;
    static constexpr int kOffset = 16;
    using W = __m256i;
    MW_INLINE static W unpack(const uint8_t* p) { return unpack_q5(p + 6, p + 2); }
    MW_INLINE static __m256i lanes(const W& u, const Act32& a) { return dot_u8s8_add(a.c, u, a.q); }
};

struct Q8_0Kernel {
    static constexpr size_t kBlock = QK, kW = sizeof(BlockQ8_0), kA = sizeof(BlockQ8_0), kAQ = 2;
    static constexpr bool kMin = false;
#if MW_X86_VNNI
    // w + 128 as unsigned bytes; the 128 * (lane's activation sum) comes back via the correction.
    static constexpr bool kCorr = true;
    static constexpr int kOffset = 128;
    using W = __m256i;
    MW_INLINE static W unpack(const uint8_t* p) { return _mm256_xor_si256(load256(p + 2), _mm256_set1_epi8((char)0x80)); }
    MW_INLINE static __m256i lanes(const W& u, const Act32& a) { return dot_u8s8_add(a.c, u, a.q); }
#else
    // maddubs would saturate on w + 128: |w| times a with w's sign.
    static constexpr bool kCorr = false;
    static constexpr int kOffset = 0;
    struct W {
        __m256i abs, w;
    };
    MW_INLINE static W unpack(const uint8_t* p) {
        const __m256i w = load256(p + 2);
        return {_mm256_sign_epi8(w, w), w};
    }
    MW_INLINE static __m256i lanes(const W& u, const Act32& a) { return dot_u8s8(u.abs, _mm256_sign_epi8(a.q, u.w)); }
#endif
};

// The first 4 bytes of `count` (1..4) blocks ws bytes apart as 8 floats
// (d_0, x_0, d_1, x_1, ...): x is Q4_1's / Q5_1's m, else junk. Missing rows repeat row 0.
// Built from broadcast loads and blends: the compiler would otherwise turn them
// into vpinsrd, which competes with the row loop for the shuffle port.
MW_INLINE __m128i bcast_u32(const uint8_t* p) {
    __m128i v = _mm_set1_epi32((int)load_u32(p));
    __asm__("" : "+x"(v));  // keep it a broadcast load
    return v;
}

MW_INLINE __m256 headers4(const uint8_t* p, size_t ws, int count) {
    __m128i h = bcast_u32(p);
    if (count > 1) h = _mm_blend_epi32(h, bcast_u32(p + ws), 0x2);
    if (count > 2) h = _mm_blend_epi32(h, bcast_u32(p + 2 * ws), 0x4);
    if (count > 3) h = _mm_blend_epi32(h, bcast_u32(p + 3 * ws), 0x8);
    return _mm256_cvtph_ps(h);
}

// Large matrices stream from L3/DRAM: asking for the bytes kPrefetchRows rows
// further on keeps enough misses in flight. Prefetches never fault.
#ifndef MW_PREFETCH_ROWS
#define MW_PREFETCH_ROWS 8
#endif
constexpr size_t kPrefetchRows = MW_PREFETCH_ROWS;
// Rows ahead in each stream of gemv_streams.
#ifndef MW_STREAM_PREFETCH_ROWS
#define MW_STREAM_PREFETCH_ROWS 4
#endif
constexpr size_t kStreamPrefetchRows = MW_STREAM_PREFETCH_ROWS;

// R rows x T tokens of a 32-element block type. Per block: the R rows' scales
// times each token's d_a in one multiply (stored, then broadcast per row), the
// m-terms of four rows in one fma, then per row and token the integer lanes,
// convert and one fma.
template <class K, int R, int T>
inline void tile32(size_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, const Prep32& prep, float* y,
                   size_t ys, size_t pf_ahead) {
    constexpr int G = (R + 3) / 4;                              // groups of 4 rows sharing a scale vector
    constexpr size_t kPfEvery = K::kW >= 64 ? 1 : 64 / K::kW;  // blocks per prefetch: every line once
#if defined(__AVX512VL__)
    constexpr bool kPermute = T == 1;
#else
    constexpr bool kPermute = false;
#endif
    __m256 acc[R][T], accm[G][T];
    MW_UNROLL for (int r = 0; r < R; r++)
        MW_UNROLL for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    MW_UNROLL for (int g = 0; g < G; g++)
        MW_UNROLL for (int t = 0; t < T; t++) accm[g][t] = _mm256_setzero_ps();
    alignas(32) float sc[T][G][8];
    size_t pf = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t* wb = w + b * K::kW;
        if (pf-- == 0) {
            pf = kPfEvery - 1;
            MW_UNROLL for (int r = 0; r < R; r++) _mm_prefetch((const char*)(wb + r * ws + pf_ahead), _MM_HINT_T0);
        }
        __m256 dm[G];
        MW_UNROLL for (int g = 0; g < G; g++) dm[g] = headers4(wb + 4 * g * ws, ws, R - 4 * g < 4 ? R - 4 * g : 4);
        Act32 at[T];
        __m256 prod[T][G];
        MW_UNROLL for (int t = 0; t < T; t++) {
            at[t] = act32<K>(a + t * as + b * K::kA, prep, t, b);
            MW_UNROLL for (int g = 0; g < G; g++) {
                prod[t][g] = _mm256_mul_ps(dm[g], at[t].ds);
                if constexpr (!kPermute) _mm256_store_ps(sc[t][g], prod[t][g]);
                if constexpr (K::kMin) accm[g][t] = _mm256_fmadd_ps(dm[g], at[t].ds, accm[g][t]);
            }
        }
        // Broadcast each row's scale: a one-uop permute for gemv on AVX-512VL,
        // else read back as broadcast loads (free with the fma) rather than the
        // shuffles the compiler would pick (measured both ways).
        if constexpr (!kPermute) __asm__("" : "+m"(sc));
        MW_UNROLL for (int r = 0; r < R; r++) {
            const typename K::W u = K::unpack(wb + r * ws);
            MW_UNROLL for (int t = 0; t < T; t++) {
                __m256 s;
#if defined(__AVX512VL__)
                if constexpr (kPermute) s = _mm256_permutexvar_ps(_mm256_set1_epi32(2 * (r % 4)), prod[t][r / 4]);
#endif
                if constexpr (!kPermute) s = _mm256_set1_ps(sc[t][r / 4][2 * (r % 4)]);
                acc[r][t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(K::lanes(u, at[t])), acc[r][t]);
            }
        }
    }
    MW_UNROLL for (int t = 0; t < T; t++) {
        alignas(32) float m[G][8];
        if constexpr (K::kMin)
            MW_UNROLL for (int g = 0; g < G; g++) _mm256_store_ps(m[g], accm[g][t]);
        MW_UNROLL for (int r = 0; r < R; r++) {
            float v = hsum_ps(acc[r][t]);
            if constexpr (K::kMin) v += m[r / 4][2 * (r % 4) + 1];
            y[t * ys + r] = v;
        }
    }
}

// ---- K-quants ----
// A block is a 256-element super-block; W is just its address (a super-block
// unpacked would not fit in registers), so T > 1 only shares cache.

// The 8 six-bit scales and mins of a Q4_K/Q5_K block as two 8 x int16 vectors.
MW_INLINE void k4_scales_mins(const uint8_t* s, __m128i* scales, __m128i* mins) {
    uint32_t u[3];
    std::memcpy(u, s, 12);
    // Bytes 0..3: scales 0..3 (+2 top bits of 4..7), 4..7: mins 0..3 (+ top bits), 8..11: low nibbles of 4..7.
    const uint32_t sc_lo = u[0] & 0x3f3f3f3fu;
    const uint32_t mn_lo = u[1] & 0x3f3f3f3fu;
    const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);
    const uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u);
    *scales = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo));
    *mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)mn_hi, (int)mn_lo));
}

// 4 int32 lanes of the mins term: lane k = m_2k * bsum(2k) + m_2k+1 * bsum(2k+1),
// bsum(j) the sum of sub-block j's 32 activations.
MW_INLINE __m128i k4_mins_lanes(__m128i mins, const BlockQ8_K* a) {
    const __m256i bs = load256(a->bsums);                                                               // 16 x int16
    const __m128i pair = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));  // 8 x int16
    return _mm_madd_epi16(mins, pair);  // |pair| <= 32 * 128: fits int16
}

// Q4_K/Q5_K integer lanes: sub-block 2g's quants (ql) and 2g+1's (qh) against
// their 32 activations, each lane times its sub-block scale.
MW_INLINE __m256i k4_group(__m256i sumi, __m256i ql, __m256i qh, const int8_t* a, int16_t sl, int16_t sh) {
    const __m256i pl = _mm256_maddubs_epi16(ql, load256(a));
    const __m256i ph = _mm256_maddubs_epi16(qh, load256(a + 32));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_set1_epi16(sl)));
    return _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_set1_epi16(sh)));
}

MW_INLINE float hsum4_ps(__m128 v) {
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    return _mm_cvtss_f32(v);
}

MW_INLINE float fma1(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// Mins: a 4-lane accumulator of dmin * float(min lanes), dmin = -(d_a * dmin_w).
struct Q4_KKernel {
    static constexpr size_t kBlock = QK_K, kW = sizeof(BlockQ4_K), kA = sizeof(BlockQ8_K);
    using W = const BlockQ4_K*;
    struct Acc {
        __m256 v = _mm256_setzero_ps();
        __m128 m = _mm_setzero_ps();
    };
    MW_INLINE static W load(const uint8_t* p) { return (const BlockQ4_K*)p; }
    MW_INLINE static void dot(W w, const uint8_t* p, Acc& acc) {
        const BlockQ8_K* a = (const BlockQ8_K*)p;
        const float d = a->d * f16(w->d), dmin = -a->d * f16(w->dmin);
        __m128i sc, mn;
        k4_scales_mins(w->scales, &sc, &mn);
        acc.m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_mins_lanes(mn, a)), acc.m);
        alignas(16) int16_t scs[8];
        _mm_store_si128((__m128i*)scs, sc);
        const __m256i low = _mm256_set1_epi8(0x0F);
        __m256i sumi = _mm256_setzero_si256();
        MW_UNROLL for (int g = 0; g < 4; g++) {
            const __m256i q = load256(w->qs + 32 * g);
            sumi = k4_group(sumi, _mm256_and_si256(q, low), _mm256_and_si256(_mm256_srli_epi16(q, 4), low),
                            a->qs + 64 * g, scs[2 * g], scs[2 * g + 1]);
        }
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc.v);
    }
    MW_INLINE static float finish(const Acc& acc) { return hsum_ps(acc.v) + hsum4_ps(acc.m); }
};

// Mins: a scalar fma chain of dmin * (integer sum of the min lanes).
struct Q5_KKernel {
    static constexpr size_t kBlock = QK_K, kW = sizeof(BlockQ5_K), kA = sizeof(BlockQ8_K);
    using W = const BlockQ5_K*;
    struct Acc {
        __m256 v = _mm256_setzero_ps();
        float m = 0.0f;
    };
    MW_INLINE static W load(const uint8_t* p) { return (const BlockQ5_K*)p; }
    MW_INLINE static void dot(W w, const uint8_t* p, Acc& acc) {
        const BlockQ8_K* a = (const BlockQ8_K*)p;
        const float d = a->d * f16(w->d), dmin = -a->d * f16(w->dmin);
        __m128i sc, mn;
        k4_scales_mins(w->scales, &sc, &mn);
        __m128i pm = k4_mins_lanes(mn, a);
        pm = _mm_add_epi32(pm, _mm_unpackhi_epi64(pm, pm));
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, _MM_SHUFFLE(2, 3, 0, 1)));
        acc.m = fma1(dmin, (float)_mm_cvtsi128_si32(pm), acc.m);
        alignas(16) int16_t scs[8];
        _mm_store_si128((__m128i*)scs, sc);
        const __m256i low = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(0x01);
        const __m256i hbits = load256(w->qh);
        __m256i sumi = _mm256_setzero_si256();
        MW_UNROLL for (int g = 0; g < 4; g++) {
            const __m256i q = load256(w->qs + 32 * g);
            // The fifth bit of sub-block 2g is bit 2g of qh, of 2g+1 bit 2g+1: move it to bit 4.
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * g)), one), 4);
            const __m256i h1 =
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * g + 1)), one), 4);
            sumi = k4_group(sumi, _mm256_or_si256(_mm256_and_si256(q, low), h0),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low), h1), a->qs + 64 * g,
                            scs[2 * g], scs[2 * g + 1]);
        }
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc.v);
    }
    MW_INLINE static float finish(const Acc& acc) { return hsum_ps(acc.v) + acc.m; }
};

// q - 32 per element, as llama.cpp: the 32 * a pair sums leave each int16 lane
// before the scale multiplies it, so every lane carries its own offset.
struct Q6_KKernel {
    static constexpr size_t kBlock = QK_K, kW = sizeof(BlockQ6_K), kA = sizeof(BlockQ8_K);
    using W = const BlockQ6_K*;
    struct Acc {
        __m256 v = _mm256_setzero_ps();
    };
    MW_INLINE static W load(const uint8_t* p) { return (const BlockQ6_K*)p; }
    MW_INLINE static void dot(W w, const uint8_t* p, Acc& acc) {
        const BlockQ8_K* a = (const BlockQ8_K*)p;
        const __m256i low = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03), m32 = _mm256_set1_epi8(32);
        const __m128i sc8 = _mm_loadu_si128((const __m128i*)w->scales);
        __m256i sumi = _mm256_setzero_si256();
        MW_UNROLL for (int half = 0; half < 2; half++) {
            const uint8_t* ql = w->ql + 64 * half;
            const __m256i qh = load256(w->qh + 32 * half);
            const __m256i l0 = load256(ql), l1 = load256(ql + 32);
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_slli_epi16(_mm256_and_si256(qh, two), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, low),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4)),
            };
            MW_UNROLL for (int c = 0; c < 4; c++) {
                const int j = 8 * half + 2 * c;  // the chunk covers sub-blocks j and j+1
                const __m256i av = load256(a->qs + 128 * half + 32 * c);
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[c], av), _mm256_maddubs_epi16(m32, av));
                // [scale j x 8 | scale j+1 x 8] as int16
                const __m128i pick = _mm_set_epi64x((long long)(0x0101010101010101ull * (uint64_t)(j + 1)),
                                                    (long long)(0x0101010101010101ull * (uint64_t)j));
                const __m256i s = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(a->d * f16(w->d)), _mm256_cvtepi32_ps(sumi), acc.v);
    }
    MW_INLINE static float finish(const Acc& acc) { return hsum_ps(acc.v); }
};

// ---- tiles, gemv and gemm over any block kernel ----

// R rows x T tokens of a K-quant: each weight block used for all T tokens.
template <class K, int R, int T>
inline void tile(size_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, size_t ys,
                 size_t pf_ahead) {
    typename K::Acc acc[R][T];
    for (size_t b = 0; b < nb; b++) {
        typename K::W wb[R];
        MW_UNROLL for (int r = 0; r < R; r++) {
            const uint8_t* p = w + r * ws + b * K::kW;
            for (size_t o = 0; o < K::kW; o += 64) _mm_prefetch((const char*)(p + pf_ahead + o), _MM_HINT_T0);
            wb[r] = K::load(p);
        }
        MW_UNROLL for (int t = 0; t < T; t++) {
            const uint8_t* ab = a + t * as + b * K::kA;
            MW_UNROLL for (int r = 0; r < R; r++) K::dot(wb[r], ab, acc[r][t]);
        }
    }
    MW_UNROLL for (int t = 0; t < T; t++)
        MW_UNROLL for (int r = 0; r < R; r++) y[t * ys + r] = K::finish(acc[r][t]);
}

// A tile of rows x toks (1..R, 1..T), dispatched to the instantiation of that size.
template <class K, int R, int T>
inline void run_tile(int rows, int toks, size_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as,
                     const Prep32& prep, float* y, size_t ys) {
    if constexpr (R > 1)
        if (rows < R) return run_tile<K, R - 1, T>(rows, toks, nb, w, ws, a, as, prep, y, ys);
    if constexpr (T > 1)
        if (toks < T) return run_tile<K, R, T - 1>(rows, toks, nb, w, ws, a, as, prep, y, ys);
    if constexpr (K::kBlock == QK)
        tile32<K, R, T>(nb, w, ws, a, as, prep, y, ys, kPrefetchRows * ws);
    else
        tile<K, R, T>(nb, w, ws, a, as, y, ys, kPrefetchRows * ws);
}

// Prepared activations for ntok rows (32-element block types; nothing for the K-quants).
template <class K, bool = K::kBlock == QK>
struct PrepFor {
    Prep32Buf buf;
    Prep32 prep;
    PrepFor(const uint8_t* a, size_t a_stride, size_t nb, size_t ntok)
        : buf(nb, ntok), prep(buf.template fill<K>(a, a_stride, ntok)) {}
};
template <class K>
struct PrepFor<K, false> {
    Prep32 prep{};
    PrepFor(const uint8_t*, size_t, size_t, size_t) {}
};

template <class K>
float vec_dot_k(size_t n, const void* w, const void* a) {
    const size_t nb = n / K::kBlock;
    PrepFor<K> p((const uint8_t*)a, 0, nb, 1);
    float y;
    run_tile<K, 1, 1>(1, 1, nb, (const uint8_t*)w, 0, (const uint8_t*)a, 0, p.prep, &y, 0);
    return y;
}

template <class K, int R>
void gemv_k(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y) {
    const size_t nb = n / K::kBlock;
    PrepFor<K> p((const uint8_t*)a, 0, nb, 1);
    for (size_t r = 0; r < nrows; r += R) {
        const int rows = nrows - r < (size_t)R ? (int)(nrows - r) : R;
        run_tile<K, R, 1>(rows, 1, nb, w + r * row_stride, row_stride, (const uint8_t*)a, 0, p.prep, y + r, 0);
    }
}

// gemv over S independent sequential streams: the rows are cut into S
// contiguous sections and each tile takes one row from every section (rows
// i, i + q, i + 2q, ... with q = nrows / S), so S far-apart sequential streams
// are in flight at once and each section is read front to back. With adjacent
// rows (gemv_k) one stream advances through short rows, which keeps too few
// misses in flight to reach the memory's bandwidth. Same per-row arithmetic,
// so the same bits as gemv_k.
template <class K, int R>
MW_INLINE void tile_gemv(size_t nb, const uint8_t* w, size_t ws, const uint8_t* a, const Prep32& prep, float* y,
                         size_t pf) {
    if constexpr (K::kBlock == QK)
        tile32<K, R, 1>(nb, w, ws, a, 0, prep, y, 0, pf);
    else
        tile<K, R, 1>(nb, w, ws, a, 0, y, 0, pf);
}

template <class K, int S>
void gemv_streams(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y) {
    const size_t nb = n / K::kBlock;
    PrepFor<K> p((const uint8_t*)a, 0, nb, 1);
    const size_t q = nrows / S;
    const size_t pf = kStreamPrefetchRows * row_stride;
    for (size_t i = 0; i < q; i++) {
        float ys[S];
        tile_gemv<K, S>(nb, w + i * row_stride, q * row_stride, (const uint8_t*)a, p.prep, ys, pf);
        MW_UNROLL for (int s = 0; s < S; s++) y[i + s * q] = ys[s];
    }
    for (size_t r = S * q; r < nrows; r++)
        tile_gemv<K, 1>(nb, w + r * row_stride, row_stride, (const uint8_t*)a, p.prep, y + r, pf);
}

// Rows in tiles of R, tokens in tiles of T (remainders in smaller tiles).
// Blocks of kRowBlock rows stay in cache while every token tile passes over them.
constexpr size_t kRowBlock = 64;

template <class K, int R, int T>
void gemm_k(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride, size_t ntok,
            float* y, size_t y_stride) {
    const size_t nb = n / K::kBlock;
    PrepFor<K> p(a, a_stride, nb, ntok);
    for (size_t r0 = 0; r0 < nrows; r0 += kRowBlock) {
        const size_t rn = nrows - r0 < kRowBlock ? nrows - r0 : kRowBlock;
        for (size_t t = 0; t < ntok; t += T) {
            const int toks = ntok - t < (size_t)T ? (int)(ntok - t) : T;
            Prep32 pt = p.prep;  // this tile's tokens
            if (pt.ds) {
                pt.ds += 2 * t * pt.stride;
                pt.c += 8 * t * pt.stride;
            }
            for (size_t r = 0; r < rn; r += R) {
                const int rows = rn - r < (size_t)R ? (int)(rn - r) : R;
                run_tile<K, R, T>(rows, toks, nb, w + (r0 + r) * w_stride, w_stride, a + t * a_stride, a_stride, pt,
                                  y + t * y_stride + r0 + r, y_stride);
            }
        }
    }
}

// ---- float rows ----

// Loads 8 weights of a float-like row as F32.
struct F32Load {
    using E = float;
    static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
    static float load1(const float* p) { return *p; }
};
struct F16Load {
    using E = uint16_t;
    static __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
    static float load1(const uint16_t* p) { return f16(*p); }
};
struct BF16Load {
    using E = uint16_t;
    static __m256 load8(const uint16_t* p) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
    }
    static float load1(const uint16_t* p) { return bf16_to_f32(*p); }
};

// R rows x T tokens of a float-like type; activations are in the same element type.
template <class L, int R, int T>
inline void float_tile(size_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, size_t ys) {
    using E = typename L::E;
    __m256 acc[R][T];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 av[T];
        for (int t = 0; t < T; t++) av[t] = L::load8((const E*)(a + t * as) + i);
        for (int r = 0; r < R; r++) {
            const __m256 wv = L::load8((const E*)(w + r * ws) + i);
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_fmadd_ps(wv, av[t], acc[r][t]);
        }
    }
    for (int t = 0; t < T; t++) {
        for (int r = 0; r < R; r++) {
            float s = hsum_ps(acc[r][t]);
            for (size_t j = i; j < n; j++) s += L::load1((const E*)(w + r * ws) + j) * L::load1((const E*)(a + t * as) + j);
            y[t * ys + r] = s;
        }
    }
}

template <class L>
float vec_dot_float(size_t n, const void* w, const void* a) {
    float y;
    float_tile<L, 1, 1>(n, (const uint8_t*)w, 0, (const uint8_t*)a, 0, &y, 0);
    return y;
}

template <class L, int R>
void gemv_float(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y) {
    size_t r = 0;
    for (; r + R <= nrows; r += R) float_tile<L, R, 1>(n, w + r * row_stride, row_stride, (const uint8_t*)a, 0, y + r, 0);
    for (; r < nrows; r++) float_tile<L, 1, 1>(n, w + r * row_stride, row_stride, (const uint8_t*)a, 0, y + r, 0);
}

template <class L, int R, int T>
void gemm_float(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride,
                size_t ntok, float* y, size_t y_stride) {
    for (size_t r0 = 0; r0 < nrows; r0 += kRowBlock) {
        const size_t rn = nrows - r0 < kRowBlock ? nrows - r0 : kRowBlock;
        for (size_t t = 0; t < ntok; t += T) {
            const size_t tt = ntok - t < (size_t)T ? ntok - t : (size_t)T;
            const uint8_t* at = a + t * a_stride;
            float* yt = y + t * y_stride + r0;
            auto run = [&](auto rows, const uint8_t* wr, float* yr) {
                constexpr int RR = decltype(rows)::value;
                switch (tt) {
                case 1: float_tile<L, RR, 1>(n, wr, w_stride, at, a_stride, yr, y_stride); break;
                case 2: float_tile<L, RR, (T >= 2 ? 2 : 1)>(n, wr, w_stride, at, a_stride, yr, y_stride); break;
                case 3: float_tile<L, RR, (T >= 3 ? 3 : 1)>(n, wr, w_stride, at, a_stride, yr, y_stride); break;
                default: float_tile<L, RR, T>(n, wr, w_stride, at, a_stride, yr, y_stride); break;
                }
            };
            const uint8_t* wb = w + r0 * w_stride;
            size_t r = 0;
            for (; r + R <= rn; r += R) run(std::integral_constant<int, R>(), wb + r * w_stride, yt + r);
            for (; r < rn; r++) run(std::integral_constant<int, 1>(), wb + r * w_stride, yt + r);
        }
    }
}

// ---- activation converters (bit-identical to the scalar reference) ----

// One block of 32: d = amax / 127, q = round-half-even(x * 127 / amax). Returns sum(q) when asked.
inline __m256i quantize_block32(const float* x, float* d_out) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float mx = _mm_cvtss_f32(m);
    *d_out = mx / 127.0f;
    const __m256 id = _mm256_set1_ps(mx != 0.0f ? 127.0f / mx : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // Pack 32 x int32 to 32 x int8 in order (packs work per 128-bit lane; permute fixes the order).
    const __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p = _mm256_packs_epi16(p01, p23);
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline int sum_i8(__m256i q) {
    return hsum_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1)));
}

inline void act_q8_0(const float* x, void* dst, size_t n) {
    BlockQ8_0* y = (BlockQ8_0*)dst;
    for (size_t b = 0; b < n / QK; b++) {
        float d;
        const __m256i q = quantize_block32(x + b * QK, &d);
        _mm256_storeu_si256((__m256i*)y[b].qs, q);
        y[b].d = f32_to_f16(d);
    }
}

inline void act_q8_1(const float* x, void* dst, size_t n) {
    BlockQ8_1* y = (BlockQ8_1*)dst;
    for (size_t b = 0; b < n / QK; b++) {
        float d;
        const __m256i q = quantize_block32(x + b * QK, &d);
        _mm256_storeu_si256((__m256i*)y[b].qs, q);
        y[b].d = f32_to_f16(d);
        y[b].s = f32_to_f16(d * (float)sum_i8(q));
    }
}

// Q8_K: the value of largest magnitude (its first occurrence) maps to -127.
inline void act_q8_K(const float* x, void* dst, size_t n) {
    BlockQ8_K* y = (BlockQ8_K*)dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        __m256 am = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) am = _mm256_max_ps(am, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(am), _mm256_extractf128_ps(am, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float amax = _mm_cvtss_f32(m);
        if (amax == 0.0f) {
            std::memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float max = 0.0f;
        for (int j = 0; j < QK_K; j++)
            if (std::fabs(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.0f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), is),
                                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            const __m256i qs = _mm256_min_epi8(_mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)),
                                               _mm256_set1_epi8(127));
            _mm256_storeu_si256((__m256i*)(y[b].qs + j), qs);
            // Sums of 16: pairs of bytes to int16, then pairs of int16 twice more, then 8 -> 2 per 16.
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), qs);   // 16 sums of 2
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));    // 8 sums of 4
            alignas(32) int32_t v[8];
            _mm256_store_si256((__m256i*)v, s32);
            y[b].bsums[j / 16] = (int16_t)(v[0] + v[1] + v[2] + v[3]);
            y[b].bsums[j / 16 + 1] = (int16_t)(v[4] + v[5] + v[6] + v[7]);
        }
        y[b].d = 1.0f / iscale;
    }
}

inline void act_f16(const float* x, void* dst, size_t n) {
    uint16_t* y = (uint16_t*)dst;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i*)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = f32_to_f16(x[i]);
}

// Round to nearest even on the bit pattern (as f32_to_bf16), NaN made quiet.
inline void act_bf16(const float* x, void* dst, size_t n) {
    uint16_t* y = (uint16_t*)dst;
    size_t i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_loadu_si256((const __m256i*)(x + i));
        const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
        r = _mm256_blendv_epi8(r, qnan, nan);
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
        _mm_storeu_si128((__m128i*)(y + i), _mm256_castsi256_si128(packed));
    }
    for (; i < n; i++) y[i] = f32_to_bf16(x[i]);
}

inline void act_f32(const float* x, void* dst, size_t n) { std::memcpy(dst, x, n * sizeof(float)); }

}  // namespace
}  // namespace mw::cpu
