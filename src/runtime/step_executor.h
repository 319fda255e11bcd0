// StepExecutor: what the scheduler needs from a backend. It runs one forward
// step over a Batch (writing K/V into the sequences' blocks) and hands back a
// row of logits, or the greedy token, for every token that wants logits.
// The CPU Executor (executor.h) and the CUDA executor (runtime/cuda/) implement it;
// the engine picks one (backend.h). Block bookkeeping stays in KvCache on the host
// for both: a backend only decides where the blocks' bytes live.
#pragma once

#include "runtime/batch.h"

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace mw {

enum class Backend { Cpu, Cuda, Auto };

// Device memory of a backend by component (all 0 on the CPU).
struct DeviceMemory {
    uint64_t weights = 0;      // weights uploaded to the device
    uint64_t kv = 0;           // the device KV block pool
    uint64_t activations = 0;  // the device step buffers
    uint64_t workspace = 0;    // GEMM workspace, dequantized tiles, sampling buffers
    uint64_t total = 0;        // everything the engine holds on the device
};

// The greedy choice as Sampler makes it: highest logit, lowest id on ties,
// NaN never chosen (0 when every logit is NaN).
inline int32_t greedy_argmax(const float* logits, int32_t n) {
    int32_t best = -1;
    for (int32_t i = 0; i < n; i++)
        if (!std::isnan(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
    return best < 0 ? 0 : best;
}

class StepExecutor {
public:
    virtual ~StepExecutor() = default;
    virtual Backend backend() const = 0;
    // Runs the batch (batch.tokens.size() <= the step size it was made for).
    virtual void forward(const Batch& batch) = 0;
    // n_vocab floats for the row-th token that wanted logits, in batch order.
    // Valid until the next forward().
    virtual float* logits(int32_t row) = 0;
    // True when argmax() is cheaper than logits() (computed where the logits
    // are, so only token ids cross to the host).
    virtual bool has_device_argmax() const { return false; }
    virtual int32_t argmax(int32_t row) = 0;
    // Host memory of the step buffers: reserved, and most ever touched.
    virtual size_t activations_reserved() const = 0;
    virtual size_t activations_high_water() const = 0;
    virtual DeviceMemory device_memory() const { return {}; }

    // A KV block's bytes (KvCache::block_bytes()) wherever this backend keeps
    // them: copy-on-write of a shared block and spill/restore go through these,
    // so they work on every backend.
    virtual void copy_kv_block(int32_t src, int32_t dst) = 0;
    virtual void read_kv_block(int32_t block, void* out) = 0;
    virtual void write_kv_block(int32_t block, const void* in) = 0;
};

}  // namespace mw
