// Prefill gemm for Q4_K on AVX-512 VNNI: each weight super-block is unpacked
// once into registers and serves T tokens. Included after kernels_x86.h by
// kernels_avx512.cpp only (GCC rejects Q4_KKernel's member initialisers under
// the GFNI file's target pragma, so the nibbles are split by shift and mask).
//
// Why: the 256-bit tile (Q4_KKernel) redoes the nibble split, the scale and
// min decoding and three integer ops per 32 elements (maddubs, madd by the
// sub-block scale, add) for every (row, token). Here, per (row, super-block):
// the 8 six-bit scales become four 512-bit vectors (sub-block 2g's scale in
// the low half, 2g + 1's in the high half) and the nibbles four registers
// (GFNI: sub-block 2g in the low half, 2g + 1 in the high half); then per
// token and 64 elements one maddubs and one vpdpwssd (the madd by the scale
// and the add in one instruction). The float steps run on two tokens per
// register (the main lanes) and four (the mins' lanes). kernels_bench,
// 2816 x 2048 x 64 tokens, one thread: 105 -> 152 GFLOP/s.
//
// Exactness: lane i of the low half sums elements 4i..4i+3 of sub-block 2g
// times its scale, of the high half the same of sub-block 2g + 1; adding the
// halves at the end of the super-block gives the integer lane Q4_KKernel
// forms (integer sums: exact in any order). The float steps - d = d_a * d_w,
// one fma of the converted lanes, the mins' 4 lanes and their fma, the final
// horizontal sums - are Q4_KKernel's, so the bits equal gemv's.
#pragma once

#include <memory>
#include <new>

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

// Activation side of a chunk of tokens, prepared once per chunk and laid out
// so the tile loop reads each piece as one 512-bit load. Per (4 tokens,
// super-block) a record of 64 floats:
//  [0, 16)   the 4 tokens' 8 pair sums of their 16 bsums (k4_mins_lanes' operand) as int16;
//  [16, 32)  each token's d_a 4 times (the mins' 4 lanes per token);
//  [32, 64)  tokens 0 and 1's d_a 8 times each, then tokens 2 and 3's (the main 8 lanes).
class Q4KPrep {
  public:
    static constexpr size_t kRecord = 64;
    Q4KPrep(size_t nb, size_t max_tok) : nb_(nb), buf_(new (std::align_val_t(64)) float[max_tok / 4 * nb * kRecord]) {}
    // Prepares tokens [0, ntok) (a multiple of 4) from rows a_stride bytes apart.
    void fill(const uint8_t* a, size_t a_stride, size_t ntok) {
        for (size_t t = 0; t < ntok; t++)
            for (size_t b = 0; b < nb_; b++) {
                const BlockQ8_K* ab = (const BlockQ8_K*)(a + t * a_stride) + b;
                float* r = record(t / 4, b);
                const __m256i bs = load256(ab->bsums);
                _mm_storeu_si128((__m128i*)r + t % 4,
                                 _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1)));
                for (size_t i = 0; i < 4; i++) r[16 + 4 * (t % 4) + i] = ab->d;
                for (size_t i = 0; i < 8; i++) r[32 + 8 * (t % 4) + i] = ab->d;
            }
    }
    const float* record(size_t quad, size_t b) const { return buf_.get() + kRecord * (quad * nb_ + b); }

  private:
    float* record(size_t quad, size_t b) { return buf_.get() + kRecord * (quad * nb_ + b); }
    struct Free {
        void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
    };
    size_t nb_;
    std::unique_ptr<float[], Free> buf_;
};

// One row x 4Q tokens (Q groups of 4). Tokens 2i and 2i + 1 share a 512-bit
// accumulator (each half holds Q4_KKernel's 8 lanes for its token), 4 tokens
// share one for the mins (4 lanes each): the convert, scale and fma steps run
// once for 2 or 4 tokens, on the same lane values as the 256-bit kernel.
template <int Q>
inline void tile_q4k(size_t nb, const uint8_t* w, const uint8_t* a, size_t as, const Q4KPrep& prep, size_t quad0,
                     float* y, size_t ys) {
    constexpr int T = 4 * Q;
    __m512 accv[T / 2], accm[Q];
    MW_UNROLL for (int i = 0; i < T / 2; i++) accv[i] = _mm512_setzero_ps();
    MW_UNROLL for (int i = 0; i < Q; i++) accm[i] = _mm512_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const BlockQ4_K* x = (const BlockQ4_K*)w + b;
        _mm_prefetch((const char*)(x + 2), _MM_HINT_T0);
        __m128i sc, mn;
        k4_scales_mins(x->scales, &sc, &mn);
        const __m512i sc4 = _mm512_broadcast_i32x4(sc), mn4 = _mm512_broadcast_i32x4(mn);
        __m512i scv[4], q[4];
        MW_UNROLL for (int g = 0; g < 4; g++) {
            scv[g] = _mm512_shuffle_epi8(sc4, _mm512_load_si512((const void*)kQ4KScaleShuffle[g]));
            q[g] = q4k_nibbles(x->qs + 32 * g);
        }
        // d = d_a * d_w and dmin = -d_a * dmin_w: the same products, sign included.
        const __m512 dw = _mm512_set1_ps(f16(x->d)), ndminw = _mm512_set1_ps(-f16(x->dmin));
        MW_UNROLL for (int qi = 0; qi < Q; qi++) {
            const float* rec = prep.record(quad0 + qi, b);
            const __m512i ml = _mm512_madd_epi16(mn4, _mm512_load_si512((const void*)rec));
            accm[qi] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_load_ps(rec + 16), ndminw), _mm512_cvtepi32_ps(ml), accm[qi]);
            MW_UNROLL for (int pi = 0; pi < 2; pi++) {
                __m512i sumi[2];
                MW_UNROLL for (int h = 0; h < 2; h++) {
                    const BlockQ8_K* ab = (const BlockQ8_K*)(a + (4 * qi + 2 * pi + h) * as) + b;
                    sumi[h] = _mm512_setzero_si512();
                    MW_UNROLL for (int g = 0; g < 4; g++) {
                        const __m512i av = _mm512_loadu_si512((const void*)(ab->qs + 64 * g));
                        sumi[h] = _mm512_dpwssd_epi32(sumi[h], _mm512_maddubs_epi16(q[g], av), scv[g]);
                    }
                }
                // [token 2pi's 8 lanes | token 2pi + 1's]: each half the sum of its token's two halves.
                const __m512i lanes = _mm512_add_epi32(_mm512_shuffle_i64x2(sumi[0], sumi[1], 0x44),
                                                       _mm512_shuffle_i64x2(sumi[0], sumi[1], 0xEE));
                __m512& acc = accv[2 * qi + pi];
                acc = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_load_ps(rec + 32 + 16 * pi), dw), _mm512_cvtepi32_ps(lanes), acc);
            }
        }
    }
    MW_UNROLL for (int t = 0; t < T; t++) {
        const __m512 v = accv[t / 2];
        const __m256 half = t % 2 == 0 ? _mm512_castps512_ps256(v) : _mm512_extractf32x8_ps(v, 1);
        __m128 m;
        switch (t % 4) {
            case 0: m = _mm512_castps512_ps128(accm[t / 4]); break;
            case 1: m = _mm512_extractf32x4_ps(accm[t / 4], 1); break;
            case 2: m = _mm512_extractf32x4_ps(accm[t / 4], 2); break;
            default: m = _mm512_extractf32x4_ps(accm[t / 4], 3); break;
        }
        y[t * ys] = hsum_ps(half) + hsum4_ps(m);
    }
}

// gemm in tiles of one row x 12 tokens (8 or 4 at the end of a chunk; 12
// measured best of 4, 8, 12, 16 with kernels_bench). Tokens are taken kQ4KChunkTokens
// at a time so their activations stay in L2 while every row passes over them;
// within a chunk, blocks of kRowBlock rows stay in cache while every token tile
// passes over them. The last 1-3 tokens of a call take the 256-bit kernel
// (the same arithmetic).
constexpr size_t kQ4KChunkTokens = 64;

void gemm_q4k(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride,
              size_t ntok, float* y, size_t y_stride) {
    const size_t nb = n / QK_K;
    const size_t nquad_tok = ntok / 4 * 4;
    Q4KPrep prep(nb, nquad_tok < kQ4KChunkTokens ? nquad_tok : kQ4KChunkTokens);
    for (size_t c0 = 0; c0 < nquad_tok; c0 += kQ4KChunkTokens) {
        const size_t cn = nquad_tok - c0 < kQ4KChunkTokens ? nquad_tok - c0 : kQ4KChunkTokens;
        const uint8_t* ac = a + c0 * a_stride;
        prep.fill(ac, a_stride, cn);
        for (size_t r0 = 0; r0 < nrows; r0 += kRowBlock) {
            const size_t rn = nrows - r0 < kRowBlock ? nrows - r0 : kRowBlock;
            for (size_t t = 0; t < cn; t += 12) {
                const size_t left = cn - t;  // a multiple of 4
                for (size_t r = r0; r < r0 + rn; r++) {
                    const uint8_t* wr = w + r * w_stride;
                    const uint8_t* at = ac + t * a_stride;
                    float* yt = y + (c0 + t) * y_stride + r;
                    if (left >= 12) tile_q4k<3>(nb, wr, at, a_stride, prep, t / 4, yt, y_stride);
                    else if (left == 8) tile_q4k<2>(nb, wr, at, a_stride, prep, t / 4, yt, y_stride);
                    else tile_q4k<1>(nb, wr, at, a_stride, prep, t / 4, yt, y_stride);
                }
            }
        }
    }
    if (ntok > nquad_tok) {
        const Prep32 none{};
        const int rest = (int)(ntok - nquad_tok);
        for (size_t r = 0; r < nrows; r++)
            run_tile<Q4_KKernel, 1, 3>(1, rest, nb, w + r * w_stride, w_stride, a + nquad_tok * a_stride, a_stride, none,
                                       y + nquad_tok * y_stride + r, y_stride);
    }
}

}  // namespace
}  // namespace mw::cpu
