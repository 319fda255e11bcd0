#include "runtime/backend.h"

#include "base/error.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/cuda/cuda_plan.h"
#include "runtime/executor.h"

namespace mw {

bool cuda_built() {
#ifdef MEMWISE_HAVE_CUDA
    return true;
#else
    return false;
#endif
}

bool cuda_usable(int device, std::string* why) {
#ifdef MEMWISE_HAVE_CUDA
    std::string reason;
    const int n = cuda::device_count(&reason);
    if (n <= 0) {
        *why = reason;
        return false;
    }
    if (device < 0 || device >= n) {
        *why = "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(n) + " present)";
        return false;
    }
    return true;
#else
    (void)device;
    *why = "this libmemwise was built without the CUDA backend (configure with -DMEMWISE_CUDA=ON)";
    return false;
#endif
}

Backend resolve_backend(Backend requested, int device) {
    if (requested == Backend::Cpu) return Backend::Cpu;
    std::string why;
    if (cuda_usable(device, &why)) return Backend::Cuda;
    if (requested == Backend::Auto) return Backend::Cpu;
    fail(MW_ERR_UNSUPPORTED, "the CUDA backend is unavailable: " + why);
}

size_t step_scratch_bytes(Backend b, const ModelConfig& c, int32_t max_batch_tokens, int32_t max_logit_rows,
                          int32_t n_ctx, int32_t n_threads, int32_t block_tokens, KvType kv_type) {
    if (b == Backend::Cuda) return cuda::scratch_bytes_for(c, max_batch_tokens, max_logit_rows, n_ctx, block_tokens);
    return Executor::scratch_bytes_for(c, max_batch_tokens, max_logit_rows, n_ctx, n_threads, kv_type);
}

std::unique_ptr<StepExecutor> make_step_executor(std::shared_ptr<const Model> model, KvCache& kv, ThreadPool& pool,
                                                 const StepExecutorOptions& o) {
    if (o.backend == Backend::Cpu)
        return std::make_unique<Executor>(std::move(model), kv, pool, o.max_batch_tokens, o.max_logit_rows, o.n_ctx);
#ifdef MEMWISE_HAVE_CUDA
    cuda::ExecutorOptions co;
    co.device = o.cuda_device;
    co.max_batch_tokens = o.max_batch_tokens;
    co.max_logit_rows = o.max_logit_rows;
    co.n_ctx = o.n_ctx;
    co.step_bytes = o.step_bytes;
    co.release_host_weights = o.release_host_weights;
    return cuda::make_executor(std::move(model), kv, co);
#else
    fail(MW_ERR_UNSUPPORTED, "this libmemwise was built without the CUDA backend");
#endif
}

}  // namespace mw
