// AVX2 + FMA + F16C kernel table (compiled with those flags only; called only
// when cpu_features() reports them).
#include "kernels/cpu/kernels_impl.h"
#include "kernels/cpu/kernels_x86.h"

namespace mw::cpu::detail {

namespace {

// gemv over RV row streams (gemv_streams), gemm in tiles of R rows x T tokens (sizes measured
// with kernels_bench for 16 ymm registers; a K-quant weight block is re-read
// from L1 per token).
template <class K, int RV, int R, int T>
void set_quant(KernelTable& t, TensorType type) {
    const uint32_t i = (uint32_t)type;
    t.vec_dot[i] = vec_dot_k<K>;
    t.gemv[i] = gemv_streams<K, RV>;
    t.gemm[i] = gemm_k<K, R, T>;
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
    set_quant<Q8_0Kernel, 4, 4, 2>(t, TensorType::Q8_0);
    set_quant<Q4_0Kernel, 4, 4, 2>(t, TensorType::Q4_0);
    set_quant<Q4_1Kernel, 4, 4, 2>(t, TensorType::Q4_1);
    set_quant<Q5_0Kernel, 4, 4, 2>(t, TensorType::Q5_0);
    set_quant<Q5_1Kernel, 4, 4, 2>(t, TensorType::Q5_1);
    set_quant<Q4_KKernel, 4, 1, 8>(t, TensorType::Q4_K);
    set_quant<Q5_KKernel, 4, 1, 8>(t, TensorType::Q5_K);
    set_quant<Q6_KKernel, 4, 1, 8>(t, TensorType::Q6_K);
    auto act = [&](TensorType type, QuantizeActFn fn) { t.quantize_act[(uint32_t)type] = fn; };
    act(TensorType::F32, act_f32);
    act(TensorType::F16, act_f16);
    act(TensorType::BF16, act_bf16);
    act(TensorType::Q8_0, act_q8_0);
    act(TensorType::Q4_0, act_q8_0);
    act(TensorType::Q5_0, act_q8_0);
    act(TensorType::Q8_1, act_q8_1);
    act(TensorType::Q4_1, act_q8_1);
    act(TensorType::Q5_1, act_q8_1);
    act(TensorType::Q8_K, act_q8_K);
    act(TensorType::Q4_K, act_q8_K);
    act(TensorType::Q5_K, act_q8_K);
    act(TensorType::Q6_K, act_q8_K);
}

}  // namespace mw::cpu::detail
