// AVX2 + FMA + F16C kernel table (compiled with those flags only; called only
// when cpu_features() reports them).
#include "kernels/cpu/kernels_impl.h"
#include "kernels/cpu/kernels_x86.h"

namespace mw::cpu::detail {

namespace {

template <class K>
void set_quant(KernelTable& t, TensorType type) {
    const uint32_t i = (uint32_t)type;
    t.vec_dot[i] = vec_dot_k<K>;
    t.gemv[i] = gemv_k<K, 4>;
    t.gemm[i] = gemm_k<K, 2, 4>;
}

template <class L>
void set_float(KernelTable& t, TensorType type) {
    const uint32_t i = (uint32_t)type;
    t.vec_dot[i] = vec_dot_float<L>;
    t.gemv[i] = gemv_float<L, 4>;
    t.gemm[i] = gemm_float<L, 3, 4>;
}

}  // namespace

void fill_avx2(KernelTable& t) {
    set_float<F32Load>(t, TensorType::F32);
    set_float<F16Load>(t, TensorType::F16);
    set_float<BF16Load>(t, TensorType::BF16);
    set_quant<Q8_0Kernel>(t, TensorType::Q8_0);
    set_quant<Q4_0Kernel>(t, TensorType::Q4_0);
    set_quant<Q4_1Kernel>(t, TensorType::Q4_1);
    set_quant<Q4_KKernel>(t, TensorType::Q4_K);
    set_quant<Q5_KKernel>(t, TensorType::Q5_K);
    set_quant<Q6_KKernel>(t, TensorType::Q6_K);
    auto act = [&](TensorType type, QuantizeActFn fn) { t.quantize_act[(uint32_t)type] = fn; };
    act(TensorType::F32, act_f32);
    act(TensorType::F16, act_f16);
    act(TensorType::BF16, act_bf16);
    act(TensorType::Q8_0, act_q8_0);
    act(TensorType::Q4_0, act_q8_0);
    act(TensorType::Q8_1, act_q8_1);
    act(TensorType::Q4_1, act_q8_1);
    act(TensorType::Q8_K, act_q8_K);
    act(TensorType::Q4_K, act_q8_K);
    act(TensorType::Q5_K, act_q8_K);
    act(TensorType::Q6_K, act_q8_K);
}

}  // namespace mw::cpu::detail
