// Private to src/kernels/cpu/: how the per-ISA files fill the kernel tables.
// kernels.cpp builds the scalar table, then each wider level starts from the
// level below and overwrites the entries it implements.
#pragma once

#include "kernels/cpu/kernels.h"

namespace mw::cpu::detail {

void fill_scalar(KernelTable& t);
// kernels_scalar.cpp: the quantized types, bit-identical to the x86 kernels.
void fill_scalar_quant(KernelTable& t);
void fill_avx2(KernelTable& t);    // kernels_avx2.cpp (AVX2 + FMA + F16C)
void fill_avx512(KernelTable& t);  // kernels_avx512.cpp (AVX-512 F/BW/VL/DQ + VNNI, BF16 when present)
void fill_avx512_gfni(KernelTable& t);  // kernels_gfni_avx512.cpp: Q4_0/Q4_1/Q5_0/Q5_1 over fill_avx512 when GFNI is present

// Activation converters matching llama.cpp's x86 quantize_row_q8_0/q8_1: d = amax / 127,
// q = round-half-even(x * (127 / amax)), Q8_1 s = d * sum(q). Scalar reference.
void quantize_act_q8_0_ref(const float* x, void* dst, size_t n);
void quantize_act_q8_1_ref(const float* x, void* dst, size_t n);

}  // namespace mw::cpu::detail
