// The CUDA backend's executor: the forward pass of executor.cpp on an NVIDIA
// GPU. Weights are uploaded once; the KV blocks live in one device allocation
// with the same block layout and the same host-side block tables (KvCache) as
// on the CPU; decode runs dequantizing GEMV kernels, prefill cuBLASLt GEMMs on
// dequantized tiles; greedy tokens are picked on the device.
// This header needs no CUDA headers: the engine includes it in every build
// and only calls it when the library was built with MEMWISE_CUDA.
#pragma once

#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/step_executor.h"

#include <memory>
#include <string>

namespace mw::cuda {

// Number of usable CUDA devices; 0 with the reason in *why (no driver, driver
// too old for this runtime, no device). Never throws.
int device_count(std::string* why);

struct ExecutorOptions {
    int device = 0;
    int32_t max_batch_tokens = 512;
    int32_t max_logit_rows = 1;
    int32_t n_ctx = 4096;
    uint64_t step_bytes = 0;            // the plan's scratch (checked against the layout)
    bool release_host_weights = false;  // drop the weights' host pages after upload
};

// Throws mw::Error: MW_ERR_UNSUPPORTED (no device, a weight type or KV type
// the kernels lack), MW_ERR_BUDGET (device memory too small for weights + KV +
// step buffers; the message gives the sizes), MW_ERR_INTERNAL (CUDA errors).
std::unique_ptr<StepExecutor> make_executor(std::shared_ptr<const Model> model, KvCache& kv,
                                            const ExecutorOptions& opts);

}  // namespace mw::cuda
