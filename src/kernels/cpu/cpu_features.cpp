// CPU feature detection with cpuid, and the OS check (xgetbv) that the wider
// register state is actually saved on context switch: a CPU with AVX-512 under
// an OS that does not enable ZMM state must not run AVX-512 code.
#include "kernels/cpu/cpu_features.h"

#include <cpuid.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mw::cpu {

namespace {

uint64_t read_xcr0() {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

// AVX512DQ is not in CpuFeatures, but the AVX-512 kernels are compiled with it.
bool g_avx512dq = false;

CpuFeatures detect() {
    CpuFeatures f;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = c & (1u << 27);
    const bool avx = c & (1u << 28);
    const bool fma = c & (1u << 12);
    const bool f16c = c & (1u << 29);
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool os_ymm = (xcr0 & 0x6) == 0x6;      // XMM and YMM state
    const bool os_zmm = (xcr0 & 0xe6) == 0xe6;    // plus opmask, ZMM_Hi256, Hi16_ZMM
    if (!os_ymm) return f;
    if (__get_cpuid_max(0, nullptr) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = b & (1u << 5);
    f.fma = fma;
    f.f16c = f16c;
    if (os_zmm) {
        f.avx512f = b & (1u << 16);
        g_avx512dq = b & (1u << 17);
        f.avx512bw = b & (1u << 30);
        f.avx512vl = b & (1u << 31);
        f.avx512vnni = c & (1u << 11);
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        f.avx512bf16 = a1 & (1u << 5);
    }
    return f;
}

IsaLevel detect_best(const CpuFeatures& f) {
    const bool avx2 = f.avx2 && f.fma && f.f16c;
    // BF16 is optional: without it the AVX-512 table converts BF16 with shifts.
    if (avx2 && f.avx512f && f.avx512bw && f.avx512vl && g_avx512dq && f.avx512vnni) return IsaLevel::Avx512;
    if (avx2) return IsaLevel::Avx2;
    return IsaLevel::Scalar;
}

// MEMWISE_ISA may lower the level (tests, comparisons); asking for more than the
// CPU has is refused with a warning, an unknown name too.
IsaLevel choose_active() {
    const IsaLevel best = best_isa();
    const char* env = std::getenv("MEMWISE_ISA");
    if (!env || !*env) return best;
    IsaLevel want;
    if (std::strcmp(env, "scalar") == 0) {
        want = IsaLevel::Scalar;
    } else if (std::strcmp(env, "avx2") == 0) {
        want = IsaLevel::Avx2;
    } else if (std::strcmp(env, "avx512") == 0) {
        want = IsaLevel::Avx512;
    } else {
        std::fprintf(stderr, "memwise: MEMWISE_ISA=%s is not one of scalar|avx2|avx512; using %s\n", env,
                     isa_name(best));
        return best;
    }
    if ((int)want > (int)best) {
        std::fprintf(stderr, "memwise: MEMWISE_ISA=%s refused: this CPU supports up to %s; using %s\n", env,
                     isa_name(best), isa_name(best));
        return best;
    }
    return want;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

IsaLevel best_isa() {
    static const IsaLevel level = detect_best(cpu_features());
    return level;
}

IsaLevel active_isa() {
    static const IsaLevel level = choose_active();
    return level;
}

const char* isa_name(IsaLevel level) {
    switch (level) {
    case IsaLevel::Scalar: return "scalar";
    case IsaLevel::Avx2: return "avx2";
    case IsaLevel::Avx512: return "avx512";
    }
    return "unknown";
}

}  // namespace mw::cpu
