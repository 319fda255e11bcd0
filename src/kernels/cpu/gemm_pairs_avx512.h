// Prefill gemm for the 32-element block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) on AVX-512
// VNNI: two tokens per 512-bit register. Included after kernels_x86.h by the
// AVX-512 kernel files only.
//
// Why: the 256-bit tile spends three vector uops per (row, token, block) -
// vpdpbusd, convert, fma - and all three compete for ports 0 and 1. Holding
// tokens t and t+1 in the two halves of a zmm does the three for both tokens
// at once, plus one multiply for the pair's two scales (a broadcast of the
// row's d_w from memory times the pair's d_a vector). Measured with
// kernels_bench on the TinyLlama FFN shape (2816 x 2048, 64 tokens): Q4_0 103
// -> 131 GFLOP/s, Q8_0 101 -> 127 GFLOP/s, one thread.
//
// Exactness: each 256-bit half holds exactly the lanes tile32 holds for its
// token - the same integer lanes (the weight block is broadcast to both
// halves), the same scale d_w * d_a rounded to float, the same fma into the
// same accumulator lane, block after block, and the same horizontal sum at the
// end. So gemm gives the same bits as gemv and as the 256-bit tile.
#pragma once

#include <memory>
#include <new>

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own
// _mm512_undefined_*() placeholders (GCC PR 105593); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#if !(defined(__AVX512F__) && MW_X86_VNNI)
#error "gemm_pairs_avx512.h needs AVX-512 with VNNI"
#endif

namespace mw::cpu {
namespace {

// unpack_nibbles_bcast's 32 nibbles in both 256-bit halves.
MW_INLINE __m512i unpack_nibbles_bcast512(const uint8_t* p) {
    const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)p));
#if defined(__GFNI__) || defined(MW_X86_GFNI)
    const long long lo = 0x0102040800000000ll, hi = 0x1020408000000000ll;
    return _mm512_gf2p8affine_epi64_epi8(v, _mm512_setr_epi64(lo, lo, hi, hi, lo, lo, hi, hi), 0);
#else
    const __m512i shift = _mm512_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 4, 4, 4, 4);
    return _mm512_and_si512(_mm512_srlv_epi32(v, shift), _mm512_set1_epi8(0x0F));
#endif
}

// A weight block unpacked into both 256-bit halves.
template <class K>
struct Wide;

template <>
struct Wide<Q4_0Kernel> {
    MW_INLINE static __m512i unpack(const uint8_t* p) { return unpack_nibbles_bcast512(p + 2); }
};
template <>
struct Wide<Q4_1Kernel> {
    MW_INLINE static __m512i unpack(const uint8_t* p) { return unpack_nibbles_bcast512(p + 4); }
};
// unpack_q5's 32 quants in both 256-bit halves.
MW_INLINE __m512i unpack_q5_512(const uint8_t* qs, const uint8_t* qh) {
    const __m512i lo = unpack_nibbles_bcast512(qs);
    __mmask32 k;
    std::memcpy(&k, qh, 4);
    return _mm512_mask_add_epi8(lo, _mm512_kunpackd((__mmask64)k, (__mmask64)k), lo, _mm512_set1_epi8(0x10));
}
template <>
struct Wide<Q5_0Kernel> {
    MW_INLINE static __m512i unpack(const uint8_t* p) { return unpack_q5_512(p + 6, p + 2); }
};
template <>
struct Wide<Q5_1Kernel> {
    MW_INLINE static __m512i unpack(const uint8_t* p) { return unpack_q5_512(p + 8, p + 4); }
};
template <>
struct Wide<Q8_0Kernel> {
    // w + 128 as unsigned bytes (the correction restores the sum), as Q8_0Kernel.
    MW_INLINE static __m512i unpack(const uint8_t* p) {
        const __m512i w = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(p + 2)));
        return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
    }
};

// Activation side, prepared once per chunk of token pairs: per (token pair,
// block) the two tokens' scales and lane corrections side by side, so each is
// one 512-bit load in the tile loop.
struct PairPrep {
    const float* d;    // 16 per (pair, block): token 2p's d x 8, then 2p + 1's
    const float* ds;   // 16 per (pair, block): token 2p's (d, s) x 4, then 2p + 1's (kMin)
    const int32_t* c;  // 16 per (pair, block): the two tokens' 8 lane corrections (kCorr)
    size_t nb;         // blocks per token
};

class PairPrepBuf {
  public:
    PairPrepBuf(size_t nb, size_t pairs) : nb_(nb) {
        const size_t n = pairs * nb * 16;
        d_.reset(new (std::align_val_t(64)) float[n]);
        ds_.reset(new (std::align_val_t(64)) float[n]);
        c_.reset(new (std::align_val_t(64)) int32_t[n]);
    }
    // Prepares tokens [0, 2 * pairs) from rows a_stride bytes apart.
    template <class K>
    PairPrep fill(const uint8_t* a, size_t a_stride, size_t pairs) {
        alignas(32) float ds[2];
        for (size_t t = 0; t < 2 * pairs; t++) {
            const size_t p = t / 2, half = 8 * (t % 2);
            const uint8_t* row = a + t * a_stride;
            for (size_t b = 0; b < nb_; b++) {
                const size_t at = 16 * (p * nb_ + b) + half;
                // One block at a time through prep32, so the values are its values.
                prep32<K>(row + b * K::kA, 1, ds, c_.get() + at);
                for (int i = 0; i < 8; i += 2) {
                    d_[at + i] = d_[at + i + 1] = ds[0];
                    ds_[at + i] = ds[0];
                    ds_[at + i + 1] = ds[1];
                }
            }
        }
        return {d_.get(), ds_.get(), c_.get(), nb_};
    }

  private:
    struct Free {
        void operator()(void* p) const { ::operator delete[](p, std::align_val_t(64)); }
    };
    size_t nb_;
    std::unique_ptr<float[], Free> d_, ds_;
    std::unique_ptr<int32_t[], Free> c_;
};

// R rows x P token pairs of a 32-element block type: a is the first token's
// activation row, as the bytes between tokens; p0 the first pair's index in prep.
template <class K, int R, int P>
inline void tile32_pairs(size_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, const PairPrep& prep,
                         size_t p0, float* y, size_t ys, size_t pf_ahead) {
    constexpr int G = (R + 3) / 4;
    constexpr size_t kPfEvery = K::kW >= 64 ? 1 : 64 / K::kW;
    __m512 acc[R][P], accm[G][P];
    MW_UNROLL for (int r = 0; r < R; r++)
        MW_UNROLL for (int p = 0; p < P; p++) acc[r][p] = _mm512_setzero_ps();
    MW_UNROLL for (int g = 0; g < G; g++)
        MW_UNROLL for (int p = 0; p < P; p++) accm[g][p] = _mm512_setzero_ps();
    size_t pf = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t* wb = w + b * K::kW;
        if (pf-- == 0) {
            pf = kPfEvery - 1;
            MW_UNROLL for (int r = 0; r < R; r++) _mm_prefetch((const char*)(wb + r * ws + pf_ahead), _MM_HINT_T0);
        }
        // The rows' (d_w, m_w) as floats, read back below as broadcasts (a
        // memory operand of the multiply, so no shuffle uop per row and token).
        alignas(32) float dmw[G][8];
        __m512 dm[G];
        MW_UNROLL for (int g = 0; g < G; g++) {
            const __m256 h = headers4(wb + 4 * g * ws, ws, R - 4 * g < 4 ? R - 4 * g : 4);
            _mm256_store_ps(dmw[g], h);
            if constexpr (K::kMin) dm[g] = _mm512_insertf32x8(_mm512_castps256_ps512(h), h, 1);
        }
        __asm__("" : "+m"(dmw));
        __m512i q[P];
        __m512 da[P];
        MW_UNROLL for (int p = 0; p < P; p++) {
            const uint8_t* ab = a + 2 * p * as + b * K::kA + K::kAQ;
            q[p] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(ab)), load256(ab + as), 1);
            const size_t at = 16 * ((p0 + p) * prep.nb + b);
            da[p] = _mm512_load_ps(prep.d + at);
            if constexpr (K::kMin)
                MW_UNROLL for (int g = 0; g < G; g++)
                    accm[g][p] = _mm512_fmadd_ps(dm[g], _mm512_load_ps(prep.ds + at), accm[g][p]);
        }
        MW_UNROLL for (int r = 0; r < R; r++) {
            const __m512i u = Wide<K>::unpack(wb + r * ws);
            MW_UNROLL for (int p = 0; p < P; p++) {
                // d_w * d_a, rounded to float: tile32's scale for each half's token.
                const __m512 s = _mm512_mul_ps(_mm512_set1_ps(dmw[r / 4][2 * (r % 4)]), da[p]);
                const __m512i init = K::kCorr ? _mm512_load_si512((const void*)(prep.c + 16 * ((p0 + p) * prep.nb + b)))
                                              : _mm512_setzero_si512();
                const __m512i lanes = _mm512_dpbusd_epi32(init, u, q[p]);
                acc[r][p] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(lanes), acc[r][p]);
            }
        }
    }
    MW_UNROLL for (int p = 0; p < P; p++) {
        alignas(64) float m[G][16];
        if constexpr (K::kMin)
            MW_UNROLL for (int g = 0; g < G; g++) _mm512_store_ps(m[g], accm[g][p]);
        MW_UNROLL for (int r = 0; r < R; r++) {
            MW_UNROLL for (int h = 0; h < 2; h++) {
                const __m256 half = h == 0 ? _mm512_castps512_ps256(acc[r][p]) : _mm512_extractf32x8_ps(acc[r][p], 1);
                float v = hsum_ps(half);
                if constexpr (K::kMin) v += m[r / 4][8 * h + 2 * (r % 4) + 1];
                y[(2 * p + h) * ys + r] = v;
            }
        }
    }
}

// A tile of rows x pairs (1..R, 1..P), dispatched to the instantiation of that size.
template <class K, int R, int P>
inline void run_tile_pairs(int rows, int pairs, size_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as,
                           const PairPrep& prep, size_t p0, float* y, size_t ys) {
    if constexpr (R > 1)
        if (rows < R) return run_tile_pairs<K, R - 1, P>(rows, pairs, nb, w, ws, a, as, prep, p0, y, ys);
    if constexpr (P > 1)
        if (pairs < P) return run_tile_pairs<K, R, P - 1>(rows, pairs, nb, w, ws, a, as, prep, p0, y, ys);
    tile32_pairs<K, R, P>(nb, w, ws, a, as, prep, p0, y, ys, kPrefetchRows * ws);
}

// Token pairs are taken kChunkPairs at a time: a chunk's prepared activations
// (192 bytes per pair and block) stay in L2 while every row block passes over
// them, and the buffer stays small (1 MiB for a 5632-wide row).
constexpr size_t kChunkPairs = 32;

// gemm in tiles of R rows x P token pairs; an odd last token goes through the
// 256-bit tile (the same arithmetic).
template <class K, int R, int P>
void gemm_pairs(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride,
                size_t ntok, float* y, size_t y_stride) {
    const size_t nb = n / K::kBlock;
    const size_t npairs = ntok / 2;
    if (npairs == 0) return gemm_k<K, R, 1>(n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
    PairPrepBuf pbuf(nb, npairs < kChunkPairs ? npairs : kChunkPairs);
    for (size_t c0 = 0; c0 < npairs; c0 += kChunkPairs) {
        const size_t cn = npairs - c0 < kChunkPairs ? npairs - c0 : kChunkPairs;
        const uint8_t* ac = a + 2 * c0 * a_stride;
        float* yc = y + 2 * c0 * y_stride;
        const PairPrep prep = pbuf.fill<K>(ac, a_stride, cn);
        for (size_t r0 = 0; r0 < nrows; r0 += kRowBlock) {
            const size_t rn = nrows - r0 < kRowBlock ? nrows - r0 : kRowBlock;
            for (size_t p = 0; p < cn; p += P) {
                const int pairs = cn - p < (size_t)P ? (int)(cn - p) : P;
                for (size_t r = 0; r < rn; r += R) {
                    const int rows = rn - r < (size_t)R ? (int)(rn - r) : R;
                    run_tile_pairs<K, R, P>(rows, pairs, nb, w + (r0 + r) * w_stride, w_stride,
                                            ac + 2 * p * a_stride, a_stride, prep, p, yc + 2 * p * y_stride + r0 + r,
                                            y_stride);
                }
            }
        }
    }
    if (ntok % 2) {
        const size_t t = ntok - 1;
        gemm_k<K, R, 1>(n, w, w_stride, nrows, a + t * a_stride, a_stride, 1, y + t * y_stride, y_stride);
    }
}

}  // namespace
}  // namespace mw::cpu
