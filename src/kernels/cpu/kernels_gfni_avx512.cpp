// AVX-512 table entries for CPUs that also have GFNI: Q4_0, Q4_1, Q5_0 and Q5_1 unpack
// their nibbles with one affine bit transform instead of a shift and a mask
// (the same bytes, so the same bits out). Compiled with the AVX-512 flags plus
// GFNI; called only when the CPU reports GFNI.
#pragma GCC target("gfni")
#define MW_X86_GFNI 1  // the pragma does not define __GFNI__

#include "kernels/cpu/kernels_impl.h"
#include "kernels/cpu/kernels_x86.h"
#include "kernels/cpu/gemm_pairs_avx512.h"

namespace mw::cpu::detail {

namespace {

template <class K, int RV, int R, int T>
void set_quant(KernelTable& t, TensorType type) {
    const uint32_t i = (uint32_t)type;
    t.vec_dot[i] = vec_dot_k<K>;
    t.gemv[i] = gemv_streams<K, RV>;
    t.gemm[i] = gemm_k<K, R, T>;
}

}  // namespace

void fill_avx512_gfni(KernelTable& t) {
    set_quant<Q4_0Kernel, 4, 4, 4>(t, TensorType::Q4_0);
    set_quant<Q4_1Kernel, 4, 4, 4>(t, TensorType::Q4_1);
    set_quant<Q5_0Kernel, 4, 4, 4>(t, TensorType::Q5_0);
    set_quant<Q5_1Kernel, 4, 4, 4>(t, TensorType::Q5_1);
    t.gemm[(uint32_t)TensorType::Q4_0] = gemm_pairs<Q4_0Kernel, 4, 4>;
    t.gemm[(uint32_t)TensorType::Q4_1] = gemm_pairs<Q4_1Kernel, 4, 4>;
    t.gemm[(uint32_t)TensorType::Q5_0] = gemm_pairs<Q5_0Kernel, 4, 4>;
    t.gemm[(uint32_t)TensorType::Q5_1] = gemm_pairs<Q5_1Kernel, 4, 4>;
}

}  // namespace mw::cpu::detail
