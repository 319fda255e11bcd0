#include "kernels/cuda/gemm.h"

#include "base/error.h"

#include <cublasLt.h>

#include <memory>
#include <string>

namespace mw::cudak {

namespace {
void check(cublasStatus_t st, const char* what) {
    if (st != CUBLAS_STATUS_SUCCESS)
        fail(MW_ERR_INTERNAL, std::string("cuBLASLt ") + what + " failed with status " + std::to_string((int)st));
}
}  // namespace

struct LtGemm::Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    ~Plan() {
        if (c) cublasLtMatrixLayoutDestroy(c);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (op) cublasLtMatmulDescDestroy(op);
    }
};

LtGemm::LtGemm() {
    cublasLtHandle_t h = nullptr;
    check(cublasLtCreate(&h), "create");
    handle_ = h;
}

LtGemm::~LtGemm() {
    for (auto& kv : plans_) delete kv.second;
    if (handle_) cublasLtDestroy((cublasLtHandle_t)handle_);
}

void LtGemm::run(HalfType ht, int64_t m, int64_t n, int64_t k, const void* w, const void* x, float* y, int64_t ldy,
                 bool accumulate, void* workspace, size_t workspace_bytes, cudaStream_t s) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    // Column-major, as cuBLAS sees it: w is k x m (lda k), x is k x n (ldb k),
    // y is m x n (ldc ldy); y = op_T(w) * x.
    const Key key{(int)ht, m, n, k, ldy, accumulate};
    auto it = plans_.find(key);
    if (it == plans_.end()) {
        std::unique_ptr<Plan> p(new Plan);  // kept only once complete
        const cudaDataType_t in = ht == HalfType::F16 ? CUDA_R_16F : CUDA_R_16BF;
        check(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
        const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        check(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa");
        check(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb");
        check(cublasLtMatrixLayoutCreate(&p->a, in, (uint64_t)k, (uint64_t)m, k), "layout A");
        check(cublasLtMatrixLayoutCreate(&p->b, in, (uint64_t)k, (uint64_t)n, k), "layout B");
        check(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, (uint64_t)m, (uint64_t)n, ldy), "layout C");
        cublasLtMatmulPreference_t pref = nullptr;
        check(cublasLtMatmulPreferenceCreate(&pref), "preference");
        const uint64_t ws = workspace_bytes;
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
        cublasLtMatmulHeuristicResult_t result{};
        int found = 0;
        const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)handle_, p->op, p->a, p->b, p->c,
                                                                 p->c, pref, 1, &result, &found);
        cublasLtMatmulPreferenceDestroy(pref);
        check(st, "heuristic");
        if (found == 0)
            fail(MW_ERR_INTERNAL, "cuBLASLt has no algorithm for a " + std::to_string(m) + "x" + std::to_string(n) +
                                      "x" + std::to_string(k) + " GEMM");
        p->algo = result.algo;
        it = plans_.emplace(key, p.release()).first;
    }
    const Plan* plan = it->second;
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    check(cublasLtMatmul((cublasLtHandle_t)handle_, plan->op, &alpha, w, plan->a, x, plan->b, &beta, y, plan->c, y,
                         plan->c, &plan->algo, workspace, workspace_bytes, s),
          "matmul");
}

}  // namespace mw::cudak
