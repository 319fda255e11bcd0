// AVX-512 (F/BW/VL/DQ) + VNNI kernel table. The quantized types use the 256-bit
// kernels of kernels_x86.h compiled here with vpdpbusd: they reproduce llama.cpp's
// x86 arithmetic lane for lane, so this level gives the same bits as AVX2 and
// scalar. The float types get 512-bit kernels; F32 and F16 follow llama.cpp's
// AVX-512 orders for them (GgmlFloatTile), BF16 does not.
//
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own
// _mm512_undefined_*() placeholders (GCC PR 105593); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "kernels/cpu/kernels_impl.h"
#include "kernels/cpu/kernels_x86.h"
#include "kernels/cpu/gemm_pairs_avx512.h"
#include "kernels/cpu/gemm_q4k_avx512.h"

#include <algorithm>

namespace mw::cpu::detail {

namespace {

// ---- float rows (F32, F16, BF16) in 512-bit ----

struct F32Load512 {
    static constexpr size_t kBytes = 4;
    static __m512 load(const uint8_t* p, size_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, (const float*)p + i); }
    static float load1(const uint8_t* p, size_t i) { return ((const float*)p)[i]; }
};
struct F16Load512 {
    static constexpr size_t kBytes = 2;
    static __m512 load(const uint8_t* p, size_t i, __mmask16 m) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t*)p + i));
    }
    static float load1(const uint8_t* p, size_t i) { return f16(((const uint16_t*)p)[i]); }
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

// One dot product in the order of ggml_vec_dot_f32 / ggml_vec_dot_f16
// (AVX-512), which llama.cpp uses for F32 and F16 weights when its tiled GEMM
// (float_tile512's order) does not apply, as for rows of n % 16 != 0: four
// 16-lane accumulators over steps of 64, added (0 + 2) + (1 + 3) and reduced,
// then the last n % 64 products one by one: in double for F16 (products of
// two halves are exact), in float for F32, never fused.
template <class L, bool kDoubleTail>
float dot_ggml_order(size_t n, const uint8_t* w, const uint8_t* a) {
    const size_t np = n - n % 64;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (size_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            acc[j] = _mm512_fmadd_ps(L::load(w, i + 16 * j, 0xffff), L::load(a, i + 16 * j, 0xffff), acc[j]);
    const float head = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3])));
    if (kDoubleTail) {
        double sum = head;
        for (size_t i = np; i < n; i++) sum += (double)(L::load1(w, i) * L::load1(a, i));
        return (float)sum;
    }
    float sum = head;
    for (size_t i = np; i < n; i++) {
        float p = L::load1(w, i) * L::load1(a, i);
        __asm__("" : "+x"(p));  // keeps the compiler from fusing the product into the sum
        sum += p;
    }
    return sum;
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
// F32 and F16: llama.cpp's tiled order when n % 16 == 0, else its dot
// product's (dot_ggml_order), one (row, token) at a time.
template <class L, bool kDoubleTail>
struct GgmlFloatTile {
    template <int R, int T>
    static void run(size_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, size_t ys) {
        if (n % 16 == 0) return float_tile512<L, R, T>(n, w, ws, a, as, y, ys);
        for (int t = 0; t < T; t++)
            for (int r = 0; r < R; r++) y[t * ys + r] = dot_ggml_order<L, kDoubleTail>(n, w + r * ws, a + t * as);
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

// gemv over RV row streams (gemv_streams), gemm in tiles of R rows x T tokens (sizes measured
// with kernels_bench; a K-quant weight block is re-read from L1 per token).
template <class K, int RV, int R, int T>
void set_quant(KernelTable& t, TensorType type) {
    const uint32_t i = (uint32_t)type;
    t.vec_dot[i] = vec_dot_k<K>;
    t.gemv[i] = gemv_streams<K, RV>;
    t.gemm[i] = gemm_k<K, R, T>;
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
    set_float512<GgmlFloatTile<F32Load512, false>>(t, TensorType::F32);
    set_float512<GgmlFloatTile<F16Load512, true>>(t, TensorType::F16);
    if (cpu_features().avx512bf16)
        set_float512<BF16DpTile>(t, TensorType::BF16);
    else
        set_float512<FloatTile<BF16Load512>>(t, TensorType::BF16);
    set_quant<Q8_0Kernel, 4, 4, 4>(t, TensorType::Q8_0);
    set_quant<Q4_0Kernel, 4, 4, 4>(t, TensorType::Q4_0);
    set_quant<Q4_1Kernel, 4, 4, 4>(t, TensorType::Q4_1);
    set_quant<Q5_0Kernel, 4, 4, 4>(t, TensorType::Q5_0);
    set_quant<Q5_1Kernel, 4, 4, 4>(t, TensorType::Q5_1);
    t.gemm[(uint32_t)TensorType::Q8_0] = gemm_pairs<Q8_0Kernel, 4, 4>;
    t.gemm[(uint32_t)TensorType::Q4_0] = gemm_pairs<Q4_0Kernel, 4, 4>;
    t.gemm[(uint32_t)TensorType::Q4_1] = gemm_pairs<Q4_1Kernel, 4, 4>;
    t.gemm[(uint32_t)TensorType::Q5_0] = gemm_pairs<Q5_0Kernel, 4, 4>;
    t.gemm[(uint32_t)TensorType::Q5_1] = gemm_pairs<Q5_1Kernel, 4, 4>;
    set_quant<Q4_KKernel, 4, 1, 8>(t, TensorType::Q4_K);
    set_quant<Q5_KKernel, 4, 1, 8>(t, TensorType::Q5_K);
    set_quant<Q6_KKernel, 4, 1, 8>(t, TensorType::Q6_K);
    t.gemm[(uint32_t)TensorType::Q4_K] = gemm_q4k;
}

}  // namespace mw::cpu::detail
