// AVX-512 (F/BW/VL/DQ) + VNNI kernel table. The 256-bit kernels of
// kernels_x86.h compile here with vpdpbusd; the decode-critical pairs (Q4_1 x
// Q8_1, Q8_0 x Q8_0, Q4_0 x Q8_0) and the float types get 512-bit kernels that
// work on four 32-element blocks per step.
//
// The 512-bit quantized kernels first rearrange the activation row (once per
// call and token, a few hundred bytes) into "groups" of four blocks laid out the
// way a 512-bit register of unpacked weights is, so the per-row work per four
// blocks is a couple of loads and permutes, two vpdpbusd, a convert and FMAs.
//
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own
// _mm512_undefined_*() placeholders (GCC PR 105593); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "kernels/cpu/kernels_impl.h"
#include "kernels/cpu/kernels_x86.h"

#include <algorithm>

namespace mw::cpu::detail {

namespace {

// ---- shared pieces ----

constexpr size_t kChunkGroups = 32;  // activation groups rearranged at a time (128 blocks, 4096 elements)

inline __mmask16 dword_mask(int count) { return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1); }

// Runs a kernel's tiles over all rows and tokens of a gemm (R x T tiles) or a
// gemv (ntok = 1: RV x 1 tiles), rearranging the activations chunk by chunk.
// A tile stores into y for the first chunk and adds for later ones.
template <class Kernel>
void run_tiles(size_t n, const uint8_t* w, size_t ws, size_t nrows, const uint8_t* a, size_t as, size_t ntok,
               float* y, size_t ys) {
    using Group = typename Kernel::Group;
    constexpr int R = Kernel::R, T = Kernel::T, RV = Kernel::RV;
    const size_t nb = n / QK;
    const size_t ngroups = (nb + 3) / 4;
    alignas(64) Group buf[T][kChunkGroups];
    // With more tokens than one tile, walk the rows in blocks that stay in cache
    // while every token tile passes over them (re-expanding activations is cheap).
    const size_t row_block = ntok > (size_t)T ? kRowBlock : nrows;
    for (size_t g0 = 0; g0 < ngroups; g0 += kChunkGroups) {
        const size_t gn = std::min(kChunkGroups, ngroups - g0);
        const size_t b0 = g0 * 4, bn = std::min(nb - b0, gn * 4);
        const bool add = g0 > 0;
        for (size_t r0 = 0; r0 < nrows; r0 += row_block) {
            const size_t r1 = std::min(nrows, r0 + row_block);
            const uint8_t* wg = w + b0 * Kernel::kW + r0 * ws;
            for (size_t t0 = 0; t0 < ntok; t0 += T) {
                const int tt = (int)std::min<size_t>(T, ntok - t0);
                for (int t = 0; t < tt; t++) Kernel::expand(a + (t0 + t) * as, b0, bn, buf[t]);
                float* yt = y + t0 * ys + r0;
                const size_t rn = r1 - r0;
                if (tt == T) {
                    const Group* acts[T];
                    for (int t = 0; t < T; t++) acts[t] = buf[t];
                    size_t r = 0;
                    for (; r + R <= rn; r += R) Kernel::template tile<R, T>(bn, wg + r * ws, ws, acts, yt + r, ys, add);
                    for (; r < rn; r++) Kernel::template tile<1, T>(bn, wg + r * ws, ws, acts, yt + r, ys, add);
                } else {
                    // Token remainder (and gemv): one token at a time, RV rows per tile.
                    for (int t = 0; t < tt; t++) {
                        const Group* one[T];
                        for (int k = 0; k < T; k++) one[k] = buf[t];
                        float* yr = yt + t * ys;
                        size_t r = 0;
                        for (; r + RV <= rn; r += RV) Kernel::template tile<RV, 1>(bn, wg + r * ws, ws, one, yr + r, ys, add);
                        for (; r < rn; r++) Kernel::template tile<1, 1>(bn, wg + r * ws, ws, one, yr + r, ys, add);
                    }
                }
            }
        }
    }
}

inline void store_or_add(float* y, float v, bool add) { *y = add ? *y + v : v; }

// Measured on a 49152 x 576 Q8_0 gemv: prefetching kPrefetchRows (kernels_x86.h)
// rows ahead takes it from 20 to 26 GB/s.
inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char*)(p + o), _MM_HINT_T0);
}

// ---- Q4_1 x Q8_1 ----

// Scale handling shared by the kernels below: per weight row and group the four
// block scales are expanded once to the lanes their products land in (dxe), the
// activation's scales are stored expanded the same way (dye), so each row x token
// costs cvt, mul, fma per 512-bit product.

struct Q4_1x512 {
    static constexpr int R = 2, T = 4, RV = 4;  // gemm tile R x T; gemv RV rows
    static constexpr size_t kW = sizeof(BlockQ4_1);
    struct alignas(64) Group {
        int8_t lo[64];    // a_k[0..15] for blocks k = 0..3
        int8_t hi[64];    // a_k[16..31]
        float dye[16];    // d_k in lanes 4k..4k+3 (where block k's products land)
        float s[8];       // 0, s_k interleaved: lines up with the weights' (d_k, m_k) pairs
        float pad[8];
    };

    static void expand(const uint8_t* a_row, size_t b0, size_t bn, Group* g) {
        const BlockQ8_1* a = (const BlockQ8_1*)a_row + b0;
        const size_t ng = (bn + 3) / 4;
        std::memset(g + ng - 1, 0, sizeof(Group));  // blocks past the end stay zero
        for (size_t b = 0; b < bn; b++) {
            Group& G = g[b / 4];
            const size_t k = b % 4;
            std::memcpy(G.lo + 16 * k, a[b].qs, 16);
            std::memcpy(G.hi + 16 * k, a[b].qs + 16, 16);
            const float d = f16(a[b].d);
            for (int l = 0; l < 4; l++) G.dye[4 * k + l] = d;
            G.s[2 * k] = 0.0f;
            G.s[2 * k + 1] = f16(a[b].s);
        }
    }

    template <int RR, int TT>
    static void tile(size_t bn, const uint8_t* w, size_t ws, const Group* const* acts, float* y, size_t ys, bool add) {
        // Four blocks are 80 bytes = 20 dwords: block k's (d, m) is dword 5k, its quants dwords 5k+1..5k+4.
        // z0 holds dwords 0..15, z1 dwords 4..19 (index 16 + j is dword j + 4).
        const __m512i idx_q = _mm512_setr_epi32(1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 16 + 12, 16 + 13, 16 + 14, 16 + 15);
        const __m512i idx_dm = _mm512_setr_epi32(0, 5, 10, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i idx_d = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
        const __m512i low = _mm512_set1_epi8(0x0F);
        __m512 acc[RR][TT];
        __m256 accm[RR][TT];
        for (int r = 0; r < RR; r++)
            for (int t = 0; t < TT; t++) {
                acc[r][t] = _mm512_setzero_ps();
                accm[r][t] = _mm256_setzero_ps();
            }
        const size_t ng = (bn + 3) / 4;
        for (size_t g = 0; g < ng; g++) {
            const int left = (int)std::min<size_t>(4, bn - 4 * g);
            const __mmask16 m0 = dword_mask(5 * left), m1 = dword_mask(5 * left - 4);
            __m512i wl[RR], wh[RR];
            __m512 dxe[RR];
            __m256 dm[RR];
            for (int r = 0; r < RR; r++) {
                const uint8_t* p = w + r * ws + 80 * g;
                prefetch_ahead(p + kPrefetchRows * ws, 80);
                const __m512i z0 = _mm512_maskz_loadu_epi32(m0, p);
                const __m512i z1 = _mm512_maskz_loadu_epi32(m1, p + 16);
                const __m512i q = _mm512_permutex2var_epi32(z0, idx_q, z1);
                wl[r] = _mm512_and_si512(q, low);
                wh[r] = _mm512_and_si512(_mm512_srli_epi16(q, 4), low);
                dm[r] = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(idx_dm, z0)));  // d0 m0 d1 m1 ..
                dxe[r] = _mm512_permutexvar_ps(idx_d, _mm512_castps256_ps512(dm[r]));
            }
            for (int t = 0; t < TT; t++) {
                const Group& A = acts[t][g];
                const __m512i alo = _mm512_load_si512(A.lo), ahi = _mm512_load_si512(A.hi);
                const __m512 dye = _mm512_load_ps(A.dye);
                const __m256 s = _mm256_load_ps(A.s);
                for (int r = 0; r < RR; r++) {
                    const __m512i isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wl[r], alo), wh[r], ahi);
                    acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), dxe[r]), dye, acc[r][t]);
                    accm[r][t] = _mm256_fmadd_ps(dm[r], s, accm[r][t]);  // m_k s_k (the d lanes meet zeros)
                }
            }
        }
        for (int t = 0; t < TT; t++)
            for (int r = 0; r < RR; r++)
                store_or_add(y + t * ys + r, _mm512_reduce_add_ps(acc[r][t]) + hsum_ps(accm[r][t]), add);
    }
};

// ---- Q8_0 x Q8_0 ----

// Loads the F16 scales of four blocks `stride` bytes apart as four floats.
inline __m128 load_d4(const uint8_t* p, size_t stride, int count) {
    uint64_t bits = 0;
    for (int k = 0; k < count; k++) {
        uint16_t d;
        std::memcpy(&d, p + k * stride, 2);
        bits |= (uint64_t)d << (16 * k);
    }
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)bits));
}

// Weights are offset by +128 to be unsigned for vpdpbusd; the correction
// -128 * sum(a_k) sits in the first lane of block k's eight and seeds the sum.
struct Q8_0x512 {
    static constexpr int R = 2, T = 4, RV = 4;
    static constexpr size_t kW = sizeof(BlockQ8_0);
    struct alignas(64) Group {
        int8_t q[128];      // a_0 .. a_3
        int32_t corr[32];   // lane 8k: -128 * sum(a_k)
        float dye[32];      // d_k in lanes 8k..8k+7
    };

    static void expand(const uint8_t* a_row, size_t b0, size_t bn, Group* g) {
        const BlockQ8_0* a = (const BlockQ8_0*)a_row + b0;
        const size_t ng = (bn + 3) / 4;
        std::memset(g + ng - 1, 0, sizeof(Group));
        for (size_t b = 0; b < bn; b++) {
            Group& G = g[b / 4];
            const size_t k = b % 4;
            std::memcpy(G.q + 32 * k, a[b].qs, 32);
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += a[b].qs[j];
            std::memset(G.corr + 8 * k, 0, 32);
            G.corr[8 * k] = -128 * sum;
            const float d = f16(a[b].d);
            for (int l = 0; l < 8; l++) G.dye[8 * k + l] = d;
        }
    }

    template <int RR, int TT>
    static void tile(size_t bn, const uint8_t* w, size_t ws, const Group* const* acts, float* y, size_t ys, bool add) {
        const __m512i idx_01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        const __m512i idx_23 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        __m512 acc[RR][TT];
        for (int r = 0; r < RR; r++)
            for (int t = 0; t < TT; t++) acc[r][t] = _mm512_setzero_ps();
        const size_t ng = (bn + 3) / 4;
        for (size_t g = 0; g < ng; g++) {
            const int left = (int)std::min<size_t>(4, bn - 4 * g);
            const __mmask32 mk[4] = {(__mmask32)-1, left > 1 ? (__mmask32)-1 : 0, left > 2 ? (__mmask32)-1 : 0,
                                     left > 3 ? (__mmask32)-1 : 0};
            __m512i w01[RR], w23[RR];
            __m512 dxe01[RR], dxe23[RR];
            for (int r = 0; r < RR; r++) {
                const uint8_t* p = w + r * ws + 136 * g;
                prefetch_ahead(p + kPrefetchRows * ws, 136);
                const __m256i q0 = _mm256_maskz_loadu_epi8(mk[0], p + 2), q1 = _mm256_maskz_loadu_epi8(mk[1], p + 36);
                const __m256i q2 = _mm256_maskz_loadu_epi8(mk[2], p + 70), q3 = _mm256_maskz_loadu_epi8(mk[3], p + 104);
                w01[r] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1), flip);
                w23[r] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q2), q3, 1), flip);
                const __m512 dx = _mm512_castps128_ps512(load_d4(p, 34, left));
                dxe01[r] = _mm512_permutexvar_ps(idx_01, dx);
                dxe23[r] = _mm512_permutexvar_ps(idx_23, dx);
            }
            for (int t = 0; t < TT; t++) {
                const Group& A = acts[t][g];
                const __m512i a01 = _mm512_load_si512(A.q), a23 = _mm512_load_si512(A.q + 64);
                const __m512i c01 = _mm512_load_si512(A.corr), c23 = _mm512_load_si512(A.corr + 16);
                const __m512 dy01 = _mm512_load_ps(A.dye), dy23 = _mm512_load_ps(A.dye + 16);
                for (int r = 0; r < RR; r++) {
                    const __m512 s01 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(c01, w01[r], a01));
                    const __m512 s23 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(c23, w23[r], a23));
                    acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(s01, dxe01[r]), dy01, acc[r][t]);
                    acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(s23, dxe23[r]), dy23, acc[r][t]);
                }
            }
        }
        for (int t = 0; t < TT; t++)
            for (int r = 0; r < RR; r++) store_or_add(y + t * ys + r, _mm512_reduce_add_ps(acc[r][t]), add);
    }
};

// ---- Q4_0 x Q8_0 ----

// Nibbles 0..15 used unsigned; the -8 comes back as -8 * sum(a_k) in a
// correction lane. Split activation layout as for Q4_1.
struct Q4_0x512 {
    static constexpr int R = 2, T = 4, RV = 4;
    static constexpr size_t kW = sizeof(BlockQ4_0);
    struct alignas(64) Group {
        int8_t lo[64];      // a_k[0..15] for blocks k = 0..3
        int8_t hi[64];      // a_k[16..31]
        int32_t corr[16];   // lane 4k: -8 * sum(a_k)
        float dye[16];      // d_k in lanes 4k..4k+3
    };

    static void expand(const uint8_t* a_row, size_t b0, size_t bn, Group* g) {
        const BlockQ8_0* a = (const BlockQ8_0*)a_row + b0;
        const size_t ng = (bn + 3) / 4;
        std::memset(g + ng - 1, 0, sizeof(Group));
        for (size_t b = 0; b < bn; b++) {
            Group& G = g[b / 4];
            const size_t k = b % 4;
            std::memcpy(G.lo + 16 * k, a[b].qs, 16);
            std::memcpy(G.hi + 16 * k, a[b].qs + 16, 16);
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += a[b].qs[j];
            std::memset(G.corr + 4 * k, 0, 16);
            G.corr[4 * k] = -8 * sum;
            const float d = f16(a[b].d);
            for (int l = 0; l < 4; l++) G.dye[4 * k + l] = d;
        }
    }

    template <int RR, int TT>
    static void tile(size_t bn, const uint8_t* w, size_t ws, const Group* const* acts, float* y, size_t ys, bool add) {
        // Four blocks are 72 bytes = 36 words: block k's d is word 9k, its quants words 9k+1..9k+8.
        // z0 holds words 0..31, z1 words 4..35 (index 32 + j is word j + 4).
        alignas(64) static const uint16_t kIdxQ[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
                                                       19, 20, 21, 22, 23, 24, 25, 26, 56, 57, 58, 59, 60, 61, 62, 63};
        const __m512i idx_q = _mm512_load_si512(kIdxQ);
        const __m512i idx_d = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        const __m512i low = _mm512_set1_epi8(0x0F);
        __m512 acc[RR][TT];
        for (int r = 0; r < RR; r++)
            for (int t = 0; t < TT; t++) acc[r][t] = _mm512_setzero_ps();
        const size_t ng = (bn + 3) / 4;
        for (size_t g = 0; g < ng; g++) {
            const int left = (int)std::min<size_t>(4, bn - 4 * g);
            const int words = 9 * left;
            const __mmask32 m0 = words >= 32 ? (__mmask32)-1 : (__mmask32)((1u << words) - 1);
            const __mmask32 m1 = words - 4 >= 32 ? (__mmask32)-1 : (__mmask32)((1u << (words - 4)) - 1);
            __m512i wl[RR], wh[RR];
            __m512 dxe[RR];
            for (int r = 0; r < RR; r++) {
                const uint8_t* p = w + r * ws + 72 * g;
                prefetch_ahead(p + kPrefetchRows * ws, 72);
                const __m512i z0 = _mm512_maskz_loadu_epi16(m0, p);
                const __m512i z1 = _mm512_maskz_loadu_epi16(m1, p + 8);
                const __m512i q = _mm512_permutex2var_epi16(z0, idx_q, z1);
                wl[r] = _mm512_and_si512(q, low);
                wh[r] = _mm512_and_si512(_mm512_srli_epi16(q, 4), low);
                dxe[r] = _mm512_permutexvar_ps(idx_d, _mm512_castps128_ps512(load_d4(p, 18, left)));
            }
            for (int t = 0; t < TT; t++) {
                const Group& A = acts[t][g];
                const __m512i alo = _mm512_load_si512(A.lo), ahi = _mm512_load_si512(A.hi);
                const __m512i corr = _mm512_load_si512(A.corr);
                const __m512 dye = _mm512_load_ps(A.dye);
                for (int r = 0; r < RR; r++) {
                    const __m512i isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(corr, wl[r], alo), wh[r], ahi);
                    acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), dxe[r]), dye, acc[r][t]);
                }
            }
        }
        for (int t = 0; t < TT; t++)
            for (int r = 0; r < RR; r++) store_or_add(y + t * ys + r, _mm512_reduce_add_ps(acc[r][t]), add);
    }
};

// ---- float rows (F32, F16, BF16) in 512-bit ----

struct F32Load512 {
    static constexpr size_t kBytes = 4;
    static __m512 load(const uint8_t* p, size_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, (const float*)p + i); }
};
struct F16Load512 {
    static constexpr size_t kBytes = 2;
    static __m512 load(const uint8_t* p, size_t i, __mmask16 m) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t*)p + i));
    }
};
struct BF16Load512 {
    static constexpr size_t kBytes = 2;
    static __m512 load(const uint8_t* p, size_t i, __mmask16 m) {
        const __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t*)p + i));
        return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
    }
};

// R rows x T tokens, 16 elements per step, the tail under a mask.
template <class L, int R, int T>
void float_tile512(size_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, size_t ys) {
    __m512 acc[R][T];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 av[T];
        for (int t = 0; t < T; t++) av[t] = L::load(a + t * as, i, m);
        for (int r = 0; r < R; r++) {
            _mm_prefetch((const char*)(w + (r + kPrefetchRows) * ws + i * L::kBytes), _MM_HINT_T0);
            const __m512 wv = L::load(w + r * ws, i, m);
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_fmadd_ps(wv, av[t], acc[r][t]);
        }
    }
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) y[t * ys + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// BF16 with AVX512-BF16: vdpbf16ps multiplies 32 pairs exactly and adds them in F32.
template <int R, int T>
__attribute__((target("avx512bf16"))) void bf16_tile_dp(size_t n, const uint8_t* w, size_t ws, const uint8_t* a,
                                                         size_t as, float* y, size_t ys) {
    __m512 acc[R][T];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 32) {
        const __mmask32 m = n - i >= 32 ? (__mmask32)-1 : (__mmask32)((1u << (n - i)) - 1);
        __m512bh av[T];
        for (int t = 0; t < T; t++) av[t] = (__m512bh)_mm512_maskz_loadu_epi16(m, (const uint16_t*)(a + t * as) + i);
        for (int r = 0; r < R; r++) {
            _mm_prefetch((const char*)(w + (r + kPrefetchRows) * ws + 2 * i), _MM_HINT_T0);
            const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, (const uint16_t*)(w + r * ws) + i);
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, av[t]);
        }
    }
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) y[t * ys + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// A tile function as a type, so one set of gemv/gemm drivers serves all float kernels.
template <class L>
struct FloatTile {
    template <int R, int T>
    static void run(size_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, size_t ys) {
        float_tile512<L, R, T>(n, w, ws, a, as, y, ys);
    }
};
struct BF16DpTile {
    template <int R, int T>
    static void run(size_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, size_t ys) {
        bf16_tile_dp<R, T>(n, w, ws, a, as, y, ys);
    }
};

template <class Tile>
float vec_dot_f512(size_t n, const void* w, const void* a) {
    float y;
    Tile::template run<1, 1>(n, (const uint8_t*)w, 0, (const uint8_t*)a, 0, &y, 0);
    return y;
}

template <class Tile>
void gemv_f512(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y) {
    size_t r = 0;
    for (; r + 4 <= nrows; r += 4) Tile::template run<4, 1>(n, w + r * row_stride, row_stride, (const uint8_t*)a, 0, y + r, 0);
    for (; r < nrows; r++) Tile::template run<1, 1>(n, w + r * row_stride, row_stride, (const uint8_t*)a, 0, y + r, 0);
}

template <class Tile>
void gemm_f512(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride,
               size_t ntok, float* y, size_t y_stride) {
    constexpr int R = 4, T = 4;
    // Blocks of rows stay in cache while all tokens pass over them.
    for (size_t r0 = 0; r0 < nrows; r0 += kRowBlock) {
        const size_t rn = std::min(kRowBlock, nrows - r0);
        const uint8_t* wb = w + r0 * w_stride;
        size_t t = 0;
        for (; t + T <= ntok; t += T) {
            size_t r = 0;
            for (; r + R <= rn; r += R)
                Tile::template run<R, T>(n, wb + r * w_stride, w_stride, a + t * a_stride, a_stride,
                                         y + t * y_stride + r0 + r, y_stride);
            for (; r < rn; r++)
                Tile::template run<1, T>(n, wb + r * w_stride, w_stride, a + t * a_stride, a_stride,
                                         y + t * y_stride + r0 + r, y_stride);
        }
        for (; t < ntok; t++) gemv_f512<Tile>(n, wb, w_stride, rn, a + t * a_stride, y + t * y_stride + r0);
    }
}

template <class Kernel>
void gemv_512(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y) {
    run_tiles<Kernel>(n, w, row_stride, nrows, (const uint8_t*)a, 0, 1, y, 0);
}

template <class Kernel>
void gemm_512(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride, size_t ntok,
              float* y, size_t y_stride) {
    run_tiles<Kernel>(n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
}

template <class Kernel>
float vec_dot_512(size_t n, const void* w, const void* a) {
    float y;
    run_tiles<Kernel>(n, (const uint8_t*)w, 0, 1, (const uint8_t*)a, 0, 1, &y, 0);
    return y;
}

template <class K>
void set_quant(KernelTable& t, TensorType type) {
    const uint32_t i = (uint32_t)type;
    t.vec_dot[i] = vec_dot_k<K>;
    t.gemv[i] = gemv_k<K, 4>;
    t.gemm[i] = gemm_k<K, 4, 4>;
}

template <class K>
void set_quant512(KernelTable& t, TensorType type) {
    const uint32_t i = (uint32_t)type;
    t.vec_dot[i] = vec_dot_512<K>;
    t.gemv[i] = gemv_512<K>;
    t.gemm[i] = gemm_512<K>;
}

template <class Tile>
void set_float512(KernelTable& t, TensorType type) {
    const uint32_t i = (uint32_t)type;
    t.vec_dot[i] = vec_dot_f512<Tile>;
    t.gemv[i] = gemv_f512<Tile>;
    t.gemm[i] = gemm_f512<Tile>;
}

}  // namespace

void fill_avx512(KernelTable& t) {
    set_float512<FloatTile<F32Load512>>(t, TensorType::F32);
    set_float512<FloatTile<F16Load512>>(t, TensorType::F16);
    if (cpu_features().avx512bf16)
        set_float512<BF16DpTile>(t, TensorType::BF16);
    else
        set_float512<FloatTile<BF16Load512>>(t, TensorType::BF16);
    set_quant512<Q8_0x512>(t, TensorType::Q8_0);
    set_quant512<Q4_0x512>(t, TensorType::Q4_0);
    set_quant512<Q4_1x512>(t, TensorType::Q4_1);
    set_quant<Q4_KKernel>(t, TensorType::Q4_K);
    set_quant<Q5_KKernel>(t, TensorType::Q5_K);
    set_quant<Q6_KKernel>(t, TensorType::Q6_K);
}

}  // namespace mw::cpu::detail
