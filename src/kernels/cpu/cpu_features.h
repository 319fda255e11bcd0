// CPU feature detection and the ISA level kernels run at. Detected once; the
// environment variable MEMWISE_ISA=scalar|avx2|avx512 forces a lower level
// (for tests and comparisons; a level the CPU lacks is refused with a warning).
#pragma once

namespace mw::cpu {

enum class IsaLevel { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
};

const CpuFeatures& cpu_features();
IsaLevel best_isa();            // highest level the CPU supports
IsaLevel active_isa();          // the level chosen (best, or forced by MEMWISE_ISA)
const char* isa_name(IsaLevel level);

}  // namespace mw::cpu
