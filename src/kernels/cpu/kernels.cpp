// Kernel tables by ISA level, and the scalar table: for the float types vec_dot
// is the quant reference and gemv/gemm are plain loops over it; the quantized
// types come from kernels_scalar.cpp (bit-identical to the x86 kernels); the
// activation converters are the reference every SIMD converter must reproduce
// bit for bit.
#include "kernels/cpu/kernels.h"

#include "base/error.h"
#include "base/half.h"
#include "kernels/cpu/kernels_impl.h"
#include "quant/block_formats.h"
#include "quant/quant.h"

#include <cmath>
#include <cstring>
#include <string>

namespace mw::cpu {

namespace detail {

namespace {

using quant::BlockQ8_0;
using quant::BlockQ8_1;
using quant::QK;

// Round half to even and saturate to int8 the way cvtps2dq + packs do (NaN and
// out-of-range give INT_MIN, which saturates to -128), so the scalar converter
// equals the SIMD ones even on degenerate input, without undefined casts.
int8_t round_to_i8(float v) {
    if (!(v >= -2147483648.0f && v < 2147483648.0f)) return -128;
    const float r = std::nearbyint(v);  // default rounding mode: half to even
    return (int8_t)(r < -128.0f ? -128 : r > 127.0f ? 127 : (int)r);
}

// One block of llama.cpp's x86 activation quantizer; returns the sum of the quants.
int quantize_block_q8(const float* x, int8_t* q, float* d_out) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < QK; j++) {
        q[j] = round_to_i8(x[j] * id);
        sum += q[j];
    }
    *d_out = d;
    return sum;
}

template <TensorType T>
float vec_dot_scalar(size_t n, const void* w, const void* a) {
    return quant::vec_dot_ref(T, n, w, a);
}

template <TensorType T>
void gemv_scalar(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y) {
    for (size_t r = 0; r < nrows; r++) y[r] = quant::vec_dot_ref(T, n, w + r * row_stride, a);
}

template <TensorType T>
void gemm_scalar(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride,
                 size_t ntok, float* y, size_t y_stride) {
    for (size_t t = 0; t < ntok; t++)
        for (size_t r = 0; r < nrows; r++)
            y[t * y_stride + r] = quant::vec_dot_ref(T, n, w + r * w_stride, a + t * a_stride);
}

void act_f32(const float* x, void* dst, size_t n) { std::memcpy(dst, x, n * sizeof(float)); }
void act_f16(const float* x, void* dst, size_t n) { quant::quantize_row(TensorType::F16, x, dst, n); }
void act_bf16(const float* x, void* dst, size_t n) { quant::quantize_row(TensorType::BF16, x, dst, n); }
void act_q8_K(const float* x, void* dst, size_t n) { quant::quantize_row(TensorType::Q8_K, x, dst, n); }

template <TensorType T>
void set_weight_type(KernelTable& t) {
    const uint32_t i = (uint32_t)T;
    t.vec_dot[i] = vec_dot_scalar<T>;
    t.gemv[i] = gemv_scalar<T>;
    t.gemm[i] = gemm_scalar<T>;
}

}  // namespace

void quantize_act_q8_0_ref(const float* x, void* dst, size_t n) {
    BlockQ8_0* y = (BlockQ8_0*)dst;
    for (size_t b = 0; b < n / QK; b++) {
        float d;
        quantize_block_q8(x + b * QK, y[b].qs, &d);
        y[b].d = f32_to_f16(d);
    }
}

void quantize_act_q8_1_ref(const float* x, void* dst, size_t n) {
    BlockQ8_1* y = (BlockQ8_1*)dst;
    for (size_t b = 0; b < n / QK; b++) {
        float d;
        const int sum = quantize_block_q8(x + b * QK, y[b].qs, &d);
        y[b].d = f32_to_f16(d);
        y[b].s = f32_to_f16(d * (float)sum);
    }
}

// quantize_act is indexed by activation type; a weight type's slot holds the
// converter to its vec_dot_type too, so either index works.
void fill_scalar(KernelTable& t) {
    std::memset(&t, 0, sizeof t);
    t.level = IsaLevel::Scalar;
    set_weight_type<TensorType::F32>(t);
    set_weight_type<TensorType::F16>(t);
    set_weight_type<TensorType::BF16>(t);
    fill_scalar_quant(t);  // the quantized types: lane-exact emulation of the x86 kernels
    auto act = [&](TensorType type, QuantizeActFn fn) { t.quantize_act[(uint32_t)type] = fn; };
    act(TensorType::F32, act_f32);
    act(TensorType::F16, act_f16);
    act(TensorType::BF16, act_bf16);
    act(TensorType::Q8_0, quantize_act_q8_0_ref);
    act(TensorType::Q4_0, quantize_act_q8_0_ref);
    act(TensorType::Q5_0, quantize_act_q8_0_ref);
    act(TensorType::Q8_1, quantize_act_q8_1_ref);
    act(TensorType::Q4_1, quantize_act_q8_1_ref);
    act(TensorType::Q5_1, quantize_act_q8_1_ref);
    act(TensorType::Q8_K, act_q8_K);
    act(TensorType::Q4_K, act_q8_K);
    act(TensorType::Q5_K, act_q8_K);
    act(TensorType::Q6_K, act_q8_K);
}

}  // namespace detail

namespace {

struct Tables {
    KernelTable scalar, avx2, avx512;
    // The fill functions are compiled for their ISA (the compiler may use its
    // instructions even to store pointers), so only levels the CPU has are filled.
    Tables() {
        detail::fill_scalar(scalar);
        avx2 = scalar;
        avx2.level = IsaLevel::Avx2;
        if ((int)best_isa() >= (int)IsaLevel::Avx2) detail::fill_avx2(avx2);
        avx512 = avx2;
        avx512.level = IsaLevel::Avx512;
        if ((int)best_isa() >= (int)IsaLevel::Avx512) {
            detail::fill_avx512(avx512);
            if (__builtin_cpu_supports("gfni")) detail::fill_avx512_gfni(avx512);
        }
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

}  // namespace

const KernelTable& kernels_for(IsaLevel level) {
    if ((int)level > (int)best_isa())
        fail(MW_ERR_UNSUPPORTED, std::string("kernels_for: ISA level ") + isa_name(level) +
                                     " is not supported by this CPU (best: " + isa_name(best_isa()) + ")");
    switch (level) {
    case IsaLevel::Scalar: return tables().scalar;
    case IsaLevel::Avx2: return tables().avx2;
    case IsaLevel::Avx512: return tables().avx512;
    }
    return tables().scalar;
}

const KernelTable& kernels() {
    static const KernelTable& t = kernels_for(active_isa());
    return t;
}

}  // namespace mw::cpu
