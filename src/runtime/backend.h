// Backend selection: which backends this build and machine offer, and the
// step executor for the chosen one. The only place the engine learns about CUDA.
#pragma once

#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/step_executor.h"
#include "runtime/thread_pool.h"

#include <memory>
#include <string>

namespace mw {

// True when the library was built with the CUDA backend (MEMWISE_CUDA).
bool cuda_built();
// A usable CUDA device is present (built with CUDA, driver loads, device
// `device` exists); otherwise false and the reason in *why.
bool cuda_usable(int device, std::string* why);

// Auto becomes Cuda when usable, else Cpu. Cuda when unusable throws
// MW_ERR_UNSUPPORTED saying why (built without CUDA, no driver, no device).
Backend resolve_backend(Backend requested, int device);

// Step scratch the backend's executor takes (host arena for the CPU, device
// step buffers for CUDA): what plan_engine budgets.
size_t step_scratch_bytes(Backend b, const ModelConfig& c, int32_t max_batch_tokens, int32_t max_logit_rows,
                          int32_t n_ctx, int32_t n_threads, int32_t block_tokens, KvType kv_type);

struct StepExecutorOptions {
    Backend backend = Backend::Cpu;  // resolved: Cpu or Cuda
    int32_t max_batch_tokens = 512, max_logit_rows = 1, n_ctx = 4096;
    uint64_t step_bytes = 0;
    int cuda_device = 0;
    bool release_host_weights = false;
};
std::unique_ptr<StepExecutor> make_step_executor(std::shared_ptr<const Model> model, KvCache& kv, ThreadPool& pool,
                                                 const StepExecutorOptions& opts);

}  // namespace mw
