// Prefill gemm for Q4_K on AVX-512 VNNI: each weight super-block is unpacked
// once into registers and serves T tokens. Included after kernels_x86.h by
// kernels_avx512.cpp only.
//
// Why: the 256-bit tile (Q4_KKernel) redoes the nibble split, the scale and
// min decoding and three integer ops per 32 elements (maddubs, madd by the
// sub-block scale, add) for every (row, token). Here, per (row, super-block):
// the 8 six-bit scales become four 512-bit vectors (sub-block 2g's scale in
// the low half, 2g + 1's in the high half) and the nibbles four registers
// (GFNI: sub-block 2g in the low half, 2g + 1 in the high half); then per
// token and 64 elements one maddubs and one vpdpwssd (the madd by the scale
// and the add in one instruction).
//
// Exactness: lane i of the low half sums elements 4i..4i+3 of sub-block 2g
// times its scale, of the high half the same of sub-block 2g + 1; adding the
// halves at the end of the super-block gives the integer lane Q4_KKernel
// forms (integer sums: exact in any order). The float steps - d = d_a * d_w,
// one fma of the converted lanes, the mins' 4 lanes and their fma, the final
// horizontal sums - are Q4_KKernel's, so the bits equal gemv's.
#pragma once

#include <memory>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#if !(defined(__AVX512F__) && defined(__AVX512BW__) && MW_X86_VNNI)
#error "gemm_q4k_avx512.h needs AVX-512 BW with VNNI"
#endif

namespace mw::cpu {
namespace {

// Nibbles of 32 bytes: low nibbles in the low 256 bits, high nibbles in the high
// 256 bits, each in the low 4 bits of its byte (one affine bit transform).
MW_INLINE __m512i q4k_nibbles(const uint8_t* p) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)p));
#if defined(__GFNI__) || defined(MW_X86_GFNI)
    const long long lo = 0x0102040800000000ll, hi = 0x1020408000000000ll;
    return _mm512_gf2p8affine_epi64_epi8(v, _mm512_setr_epi64(lo, lo, lo, lo, hi, hi, hi, hi), 0);
#else
    const __m512i shift = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
    return _mm512_and_si512(_mm512_srlv_epi64(v, shift), _mm512_set1_epi8(0x0F));
#endif
}

// In-lane byte shuffles of the 8 scales (int16, repeated in each 128-bit
// lane): scale 2g into every word of the low 256 bits, 2g + 1 of the high.
alignas(64) constexpr uint8_t kQ4KScaleShuffle[4][64] = {
#define MW_W(k) 2 * (k), 2 * (k) + 1
#define MW_LANE(k) MW_W(k), MW_W(k), MW_W(k), MW_W(k), MW_W(k), MW_W(k), MW_W(k), MW_W(k)
    {MW_LANE(0), MW_LANE(0), MW_LANE(1), MW_LANE(1)},
    {MW_LANE(2), MW_LANE(2), MW_LANE(3), MW_LANE(3)},
    {MW_LANE(4), MW_LANE(4), MW_LANE(5), MW_LANE(5)},
    {MW_LANE(6), MW_LANE(6), MW_LANE(7), MW_LANE(7)},
#undef MW_LANE
#undef MW_W
};

// Per token and super-block: the 8 pair sums of the 16 bsums (k4_mins_lanes' operand).
class Q4KPrep {
  public:
    Q4KPrep(const uint8_t* a, size_t a_stride, size_t nb, size_t ntok) : nb_(nb), pairs_(new int16_t[ntok * nb * 8]) {
        for (size_t t = 0; t < ntok; t++)
            for (size_t b = 0; b < nb; b++) {
                const BlockQ8_K* ab = (const BlockQ8_K*)(a + t * a_stride) + b;
                const __m256i bs = load256(ab->bsums);
                _mm_storeu_si128((__m128i*)(pairs_.get() + 8 * (t * nb + b)),
                                 _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1)));
            }
    }
    __m128i pairs(size_t t, size_t b) const { return _mm_loadu_si128((const __m128i*)(pairs_.get() + 8 * (t * nb_ + b))); }

  private:
    size_t nb_;
    std::unique_ptr<int16_t[]> pairs_;
};

// One row x T tokens.
template <int T>
inline void tile_q4k(size_t nb, const uint8_t* w, const uint8_t* a, size_t as, const Q4KPrep& prep, size_t t0,
                     float* y, size_t ys) {
    __m256 accv[T];
    __m128 accm[T];
    MW_UNROLL for (int t = 0; t < T; t++) {
        accv[t] = _mm256_setzero_ps();
        accm[t] = _mm_setzero_ps();
    }
    for (size_t b = 0; b < nb; b++) {
        const BlockQ4_K* x = (const BlockQ4_K*)w + b;
        _mm_prefetch((const char*)(x + 2), _MM_HINT_T0);
        __m128i sc, mn;
        k4_scales_mins(x->scales, &sc, &mn);
        const __m512i sc4 = _mm512_broadcast_i32x4(sc);
        __m512i scv[4], q[4];
        MW_UNROLL for (int g = 0; g < 4; g++) {
            scv[g] = _mm512_shuffle_epi8(sc4, _mm512_load_si512((const void*)kQ4KScaleShuffle[g]));
            q[g] = q4k_nibbles(x->qs + 32 * g);
        }
        // d_w and -dmin_w in every lane: d = d_a * d_w and dmin = -d_a * dmin_w
        // (the same products, sign included) are then one multiply each.
        const __m256 dw = _mm256_set1_ps(f16(x->d)), ndminw = _mm256_set1_ps(-f16(x->dmin));
        MW_UNROLL for (int t = 0; t < T; t++) {
            const BlockQ8_K* ab = (const BlockQ8_K*)(a + t * as) + b;
            __m512i sumi = _mm512_setzero_si512();
            MW_UNROLL for (int g = 0; g < 4; g++) {
                const __m512i av = _mm512_loadu_si512((const void*)(ab->qs + 64 * g));
                sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q[g], av), scv[g]);
            }
            const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1));
            const __m256 da = _mm256_broadcast_ss(&ab->d);
            const __m128i ml = _mm_madd_epi16(mn, prep.pairs(t0 + t, b));
            accm[t] = _mm_fmadd_ps(_mm256_castps256_ps128(_mm256_mul_ps(da, ndminw)), _mm_cvtepi32_ps(ml), accm[t]);
            accv[t] = _mm256_fmadd_ps(_mm256_mul_ps(da, dw), _mm256_cvtepi32_ps(s8), accv[t]);
        }
    }
    MW_UNROLL for (int t = 0; t < T; t++) y[t * ys] = hsum_ps(accv[t]) + hsum4_ps(accm[t]);
}

template <int T>
inline void run_tile_q4k(int toks, size_t nb, const uint8_t* w, const uint8_t* a, size_t as, const Q4KPrep& prep,
                         size_t t0, float* y, size_t ys) {
    if constexpr (T > 1)
        if (toks < T) return run_tile_q4k<T - 1>(toks, nb, w, a, as, prep, t0, y, ys);
    tile_q4k<T>(nb, w, a, as, prep, t0, y, ys);
}

// gemm in tiles of one row x T tokens. Tokens are taken kChunkTokens at a
// time so their activations stay in L2 while every row passes over them;
// within a chunk, blocks of kRowBlock rows stay in cache while every token
// tile passes over them.
constexpr size_t kQ4KChunkTokens = 64;

template <int T>
void gemm_q4k(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride,
              size_t ntok, float* y, size_t y_stride) {
    const size_t nb = n / QK_K;
    const Q4KPrep prep(a, a_stride, nb, ntok);
    for (size_t c0 = 0; c0 < ntok; c0 += kQ4KChunkTokens) {
        const size_t c1 = ntok - c0 < kQ4KChunkTokens ? ntok : c0 + kQ4KChunkTokens;
        for (size_t r0 = 0; r0 < nrows; r0 += kRowBlock) {
            const size_t rn = nrows - r0 < kRowBlock ? nrows - r0 : kRowBlock;
            for (size_t t = c0; t < c1; t += T) {
                const int toks = c1 - t < (size_t)T ? (int)(c1 - t) : T;
                for (size_t r = r0; r < r0 + rn; r++)
                    run_tile_q4k<T>(toks, nb, w + r * w_stride, a + t * a_stride, a_stride, prep, t,
                                    y + t * y_stride + r, y_stride);
            }
        }
    }
}

}  // namespace
}  // namespace mw::cpu
