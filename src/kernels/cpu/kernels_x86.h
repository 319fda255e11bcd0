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
#include <type_traits>

namespace mw::cpu {
namespace {

using quant::BlockQ4_0;
using quant::BlockQ4_1;
using quant::BlockQ4_K;
using quant::BlockQ5_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;
using quant::BlockQ8_1;
using quant::BlockQ8_K;
using quant::QK;
using quant::QK_K;

// ---- small helpers ----

inline float hsum_ps(__m256 v) {
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

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256((const __m256i*)p); }

// 8 int32 lanes, each the sum of 4 products of unsigned bytes u with signed bytes s.
// Without VNNI the 16-bit pair sums must not saturate: callers keep u <= 127 or
// |u * s| small enough (4- to 6-bit weights).
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// Signed x signed bytes (|x| <= 127 or y != -128): move x's sign onto y.
inline __m256i dot_s8s8(__m256i x, __m256i y) {
    return dot_u8s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// 32 nibbles of 16 bytes: low nibbles to bytes 0..15, high nibbles to 16..31 (0..15 each).
inline __m256i unpack_nibbles(const uint8_t* p) {
    const __m128i v = _mm_loadu_si128((const __m128i*)p);
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// ---- per-type block kernels ----
// Each type provides: kBlock (elements per block), kW/kA (bytes per weight and activation
// block), struct W (one unpacked weight block), struct Acc (accumulator of one row x token),
// load(w_block), dot(W, a_block, Acc&), and finish(Acc) -> float.

struct Q8_0Kernel {
    static constexpr size_t kBlock = QK, kW = sizeof(BlockQ8_0), kA = sizeof(BlockQ8_0);
    struct W {
        __m256i q;
        float d;
    };
    struct Acc {
        __m256 v = _mm256_setzero_ps();
    };
    static W load(const uint8_t* p) {
        const BlockQ8_0* b = (const BlockQ8_0*)p;
        return {load256(b->qs), f16(b->d)};
    }
    static void dot(const W& w, const uint8_t* p, Acc& acc) {
        const BlockQ8_0* a = (const BlockQ8_0*)p;
        const __m256 s = _mm256_cvtepi32_ps(dot_s8s8(w.q, load256(a->qs)));
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(w.d * f16(a->d)), s, acc.v);
    }
    static float finish(const Acc& acc) { return hsum_ps(acc.v); }
};

struct Q4_0Kernel {
    static constexpr size_t kBlock = QK, kW = sizeof(BlockQ4_0), kA = sizeof(BlockQ8_0);
    struct W {
        __m256i q;  // -8..7
        float d;
    };
    using Acc = Q8_0Kernel::Acc;
    static W load(const uint8_t* p) {
        const BlockQ4_0* b = (const BlockQ4_0*)p;
        return {_mm256_sub_epi8(unpack_nibbles(b->qs), _mm256_set1_epi8(8)), f16(b->d)};
    }
    static void dot(const W& w, const uint8_t* p, Acc& acc) {
        const BlockQ8_0* a = (const BlockQ8_0*)p;
        const __m256 s = _mm256_cvtepi32_ps(dot_s8s8(w.q, load256(a->qs)));
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(w.d * f16(a->d)), s, acc.v);
    }
    static float finish(const Acc& acc) { return hsum_ps(acc.v); }
};

struct Q4_1Kernel {
    static constexpr size_t kBlock = QK, kW = sizeof(BlockQ4_1), kA = sizeof(BlockQ8_1);
    struct W {
        __m256i q;  // 0..15
        float d, m;
    };
    struct Acc {
        __m256 v = _mm256_setzero_ps();
        float m = 0.0f;  // sum of m_w * s_a
    };
    static W load(const uint8_t* p) {
        const BlockQ4_1* b = (const BlockQ4_1*)p;
        return {unpack_nibbles(b->qs), f16(b->d), f16(b->m)};
    }
    static void dot(const W& w, const uint8_t* p, Acc& acc) {
        const BlockQ8_1* a = (const BlockQ8_1*)p;
        const __m256 s = _mm256_cvtepi32_ps(dot_u8s8(w.q, load256(a->qs)));
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(w.d * f16(a->d)), s, acc.v);
        acc.m += w.m * f16(a->s);
    }
    static float finish(const Acc& acc) { return hsum_ps(acc.v) + acc.m; }
};

// K-quants: a block is a 256-element super-block; W is just its address (a
// super-block unpacked would not fit in registers), so T > 1 only shares cache.
struct KAcc {
    __m256 v = _mm256_setzero_ps();
};

// The 8 six-bit scales and mins of a Q4_K/Q5_K block as two 8 x int16 vectors.
inline void k4_scales_mins(const uint8_t* s, __m128i* scales, __m128i* mins) {
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

// Sum over sub-blocks of m_j * (sum of the 32 activations of j), from the bsums.
inline int k4_mins_dot(__m128i mins, const BlockQ8_K* a) {
    const __m256i bs = load256(a->bsums);                        // 16 x int16
    const __m128i pair = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));  // 8 x int16
    const __m128i prod = _mm_madd_epi16(mins, pair);             // |pair| <= 32*128: fits int16
    __m128i s = _mm_add_epi32(prod, _mm_unpackhi_epi64(prod, prod));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

struct Q4_KKernel {
    static constexpr size_t kBlock = QK_K, kW = sizeof(BlockQ4_K), kA = sizeof(BlockQ8_K);
    using W = const BlockQ4_K*;
    using Acc = KAcc;
    static W load(const uint8_t* p) { return (const BlockQ4_K*)p; }
    static void dot(W w, const uint8_t* p, Acc& acc) {
        const BlockQ8_K* a = (const BlockQ8_K*)p;
        __m128i sc, mn;
        k4_scales_mins(w->scales, &sc, &mn);
        alignas(16) int16_t scs[8];
        _mm_store_si128((__m128i*)scs, sc);
        const __m256i low = _mm256_set1_epi8(0x0F);
        __m256i sumi = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i q = load256(w->qs + 32 * g);
            const __m256i ql = _mm256_and_si256(q, low), qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            const __m256i pl = _mm256_maddubs_epi16(ql, load256(a->qs + 64 * g));
            const __m256i ph = _mm256_maddubs_epi16(qh, load256(a->qs + 64 * g + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_set1_epi16(scs[2 * g])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_set1_epi16(scs[2 * g + 1])));
        }
        const float d = f16(w->d) * a->d, dmin = f16(w->dmin) * a->d;
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc.v);
        acc.v = _mm256_sub_ps(acc.v, _mm256_setr_ps(dmin * (float)k4_mins_dot(mn, a), 0, 0, 0, 0, 0, 0, 0));
    }
    static float finish(const Acc& acc) { return hsum_ps(acc.v); }
};

struct Q5_KKernel {
    static constexpr size_t kBlock = QK_K, kW = sizeof(BlockQ5_K), kA = sizeof(BlockQ8_K);
    using W = const BlockQ5_K*;
    using Acc = KAcc;
    static W load(const uint8_t* p) { return (const BlockQ5_K*)p; }
    static void dot(W w, const uint8_t* p, Acc& acc) {
        const BlockQ8_K* a = (const BlockQ8_K*)p;
        __m128i sc, mn;
        k4_scales_mins(w->scales, &sc, &mn);
        alignas(16) int16_t scs[8];
        _mm_store_si128((__m128i*)scs, sc);
        const __m256i low = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(0x01);
        const __m256i hbits = load256(w->qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i q = load256(w->qs + 32 * g);
            // The fifth bit of sub-block 2g is bit 2g of qh, of 2g+1 bit 2g+1: move it to bit 4.
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * g)), one), 4);
            const __m256i h1 =
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * g + 1)), one), 4);
            const __m256i ql = _mm256_or_si256(_mm256_and_si256(q, low), h0);
            const __m256i qh = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low), h1);
            const __m256i pl = _mm256_maddubs_epi16(ql, load256(a->qs + 64 * g));
            const __m256i ph = _mm256_maddubs_epi16(qh, load256(a->qs + 64 * g + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_set1_epi16(scs[2 * g])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_set1_epi16(scs[2 * g + 1])));
        }
        const float d = f16(w->d) * a->d, dmin = f16(w->dmin) * a->d;
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc.v);
        acc.v = _mm256_sub_ps(acc.v, _mm256_setr_ps(dmin * (float)k4_mins_dot(mn, a), 0, 0, 0, 0, 0, 0, 0));
    }
    static float finish(const Acc& acc) { return hsum_ps(acc.v); }
};

struct Q6_KKernel {
    static constexpr size_t kBlock = QK_K, kW = sizeof(BlockQ6_K), kA = sizeof(BlockQ8_K);
    using W = const BlockQ6_K*;
    using Acc = KAcc;
    static W load(const uint8_t* p) { return (const BlockQ6_K*)p; }
    static void dot(W w, const uint8_t* p, Acc& acc) {
        const BlockQ8_K* a = (const BlockQ8_K*)p;
        const __m256i low = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03);
        // q in 0..63 multiplies unsigned; the -32 offset comes back as 32 * sum_j sc_j * bsum_j.
        const __m128i sc8 = _mm_loadu_si128((const __m128i*)w->scales);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m256i offs = _mm256_madd_epi16(sc16, load256(a->bsums));
        __m256i sumi = _mm256_slli_epi32(offs, 5);
        sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
        for (int half = 0; half < 2; half++) {
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
            for (int c = 0; c < 4; c++) {
                const int j = 8 * half + 2 * c;  // the chunk covers sub-blocks j and j+1
                const __m256i p = _mm256_maddubs_epi16(q[c], load256(a->qs + 128 * half + 32 * c));
                // [scale j x 8 | scale j+1 x 8] as int16
                const __m128i pick = _mm_set_epi64x((long long)(0x0101010101010101ull * (uint64_t)(j + 1)),
                                                    (long long)(0x0101010101010101ull * (uint64_t)j));
                const __m256i s = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(f16(w->d) * a->d), _mm256_cvtepi32_ps(sumi), acc.v);
    }
    static float finish(const Acc& acc) { return hsum_ps(acc.v); }
};

// ---- tiles, gemv and gemm over any block kernel ----

// Large matrices stream from L3/DRAM: asking for the bytes kPrefetchRows rows
// further on keeps enough misses in flight. Prefetches never fault.
constexpr size_t kPrefetchRows = 8;

template <class K, int R, int T>
inline void tile(size_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, size_t ys) {
    typename K::Acc acc[R][T];
    for (size_t b = 0; b < nb; b++) {
        typename K::W wb[R];
        for (int r = 0; r < R; r++) {
            const uint8_t* p = w + r * ws + b * K::kW;
            for (size_t o = 0; o < K::kW; o += 64) _mm_prefetch((const char*)(p + kPrefetchRows * ws + o), _MM_HINT_T0);
            wb[r] = K::load(p);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t* ab = a + t * as + b * K::kA;
            for (int r = 0; r < R; r++) K::dot(wb[r], ab, acc[r][t]);
        }
    }
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) y[t * ys + r] = K::finish(acc[r][t]);
}

template <class K>
float vec_dot_k(size_t n, const void* w, const void* a) {
    float y;
    tile<K, 1, 1>(n / K::kBlock, (const uint8_t*)w, 0, (const uint8_t*)a, 0, &y, 0);
    return y;
}

template <class K, int R>
void gemv_k(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y) {
    const size_t nb = n / K::kBlock;
    size_t r = 0;
    for (; r + R <= nrows; r += R) tile<K, R, 1>(nb, w + r * row_stride, row_stride, (const uint8_t*)a, 0, y + r, 0);
    for (; r < nrows; r++) tile<K, 1, 1>(nb, w + r * row_stride, row_stride, (const uint8_t*)a, 0, y + r, 0);
}

// Rows in tiles of R (then 1), tokens in tiles of T (then the remainder 1..T-1).
// Blocks of kRowBlock rows stay in cache while every token tile passes over them.
constexpr size_t kRowBlock = 64;

template <class K, int R, int T>
void gemm_k(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride, size_t ntok,
            float* y, size_t y_stride) {
    static_assert(T >= 1 && T <= 4, "token tile");
    const size_t nb = n / K::kBlock;
    for (size_t r0 = 0; r0 < nrows; r0 += kRowBlock) {
        const size_t rn = nrows - r0 < kRowBlock ? nrows - r0 : kRowBlock;
        for (size_t t = 0; t < ntok; t += T) {
            const size_t tt = ntok - t < (size_t)T ? ntok - t : (size_t)T;
            const uint8_t* at = a + t * a_stride;
            float* yt = y + t * y_stride + r0;
            auto run = [&](auto rows, const uint8_t* wr, float* yr) {
                constexpr int RR = decltype(rows)::value;
                switch (tt) {
                case 1: tile<K, RR, 1>(nb, wr, w_stride, at, a_stride, yr, y_stride); break;
                case 2: tile<K, RR, (T >= 2 ? 2 : 1)>(nb, wr, w_stride, at, a_stride, yr, y_stride); break;
                case 3: tile<K, RR, (T >= 3 ? 3 : 1)>(nb, wr, w_stride, at, a_stride, yr, y_stride); break;
                default: tile<K, RR, T>(nb, wr, w_stride, at, a_stride, yr, y_stride); break;
                }
            };
            const uint8_t* wb = w + r0 * w_stride;
            size_t r = 0;
            for (; r + R <= rn; r += R) run(std::integral_constant<int, R>(), wb + r * w_stride, yt + r);
            for (; r < rn; r++) run(std::integral_constant<int, 1>(), wb + r * w_stride, yt + r);
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
