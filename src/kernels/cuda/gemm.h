// Prefill GEMMs through cuBLASLt: Y = W X^T on F16 or BF16 inputs with F32
// accumulation and output, the heuristic's choice cached per shape (found once,
// on the first step of that shape, reused by every later one).
#pragma once

#include "kernels/cuda/kernels.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

namespace mw::cudak {

class LtGemm {
public:
    LtGemm();  // throws mw::Error(MW_ERR_INTERNAL) when cuBLASLt cannot start
    ~LtGemm();
    LtGemm(const LtGemm&) = delete;
    LtGemm& operator=(const LtGemm&) = delete;

    // Row-major views: w is m rows of k (a dequantized weight tile), x is n rows
    // of k (activations), y is n rows of ldy floats of which columns [0, m) are
    // written: y = w x^T, or y += w x^T when accumulate.
    void run(HalfType ht, int64_t m, int64_t n, int64_t k, const void* w, const void* x, float* y, int64_t ldy,
             bool accumulate, void* workspace, size_t workspace_bytes, cudaStream_t s);
    size_t cached_shapes() const { return plans_.size(); }

private:
    struct Plan;
    using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, bool>;
    void* handle_ = nullptr;  // cublasLtHandle_t
    std::map<Key, Plan*> plans_;
};

}  // namespace mw::cudak
