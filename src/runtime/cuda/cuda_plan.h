// Device memory the CUDA executor takes for its step, computed without CUDA
// (so plan_engine and mw_engine_plan_memory give the same answer in any build).
// The executor carves exactly these buffers out of its allocations.
#pragma once

#include "model/model_config.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace mw::cuda {

constexpr size_t kAlign = 256;                    // every device buffer starts on 256 bytes
constexpr size_t kGemmWorkspaceBytes = 8u << 20;  // cuBLASLt workspace
constexpr int64_t kTileElements = 8 << 20;        // dequantized weight tile for prefill GEMMs (16 MiB of F16)
constexpr int32_t kGemvMaxTokens = 8;             // steps up to this many tokens use the GEMV kernels

inline size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

struct StepLayout {
    int64_t max_in = 0;      // widest matmul input (n_embd, n_ff or q_dim)
    int64_t tile_rows = 0;   // weight rows dequantized per GEMM tile
    int32_t max_blocks = 0;  // KV blocks of one sequence
    size_t activations = 0;  // x, xb, q, att, k, v, g, u, logits, ids, step metadata
    size_t workspace = 0;    // F16 activations + weight tile + cuBLASLt workspace
};

inline StepLayout step_layout(const ModelConfig& c, int32_t max_batch, int32_t max_logit_rows, int32_t n_ctx,
                              int32_t block_tokens) {
    StepLayout s;
    const size_t B = (size_t)max_batch, R = (size_t)max_logit_rows;
    const size_t q_dim = (size_t)c.max_n_head() * c.head_dim, kv = (size_t)c.max_kv_dim(), ff = (size_t)c.max_n_ff();
    s.max_in = std::max<int64_t>({(int64_t)c.n_embd, (int64_t)ff, (int64_t)q_dim});
    s.max_blocks = (n_ctx + block_tokens - 1) / block_tokens;
    size_t a = 0;
    for (size_t floats : {B * c.n_embd, B * c.n_embd, B * q_dim, B * q_dim, B * kv, B * kv, B * ff, B * ff,
                          R * (size_t)c.n_vocab})
        a += align_up(floats * 4);
    a += align_up(R * 4);                                     // greedy ids
    a += align_up((4 * B + R + R * (size_t)s.max_blocks) * 4);  // tokens, pos, seq, logit rows, block tables
    s.activations = a;
    if (max_batch > kGemvMaxTokens) {
        const int64_t max_out = std::max<int64_t>({(int64_t)c.n_vocab, (int64_t)ff, (int64_t)q_dim, (int64_t)c.n_embd});
        // Rows per tile: about kTileElements, a multiple of 128, at most 65535
        // (the dequantizing kernel's grid height).
        s.tile_rows = std::min<int64_t>({max_out, std::max<int64_t>(128, kTileElements / s.max_in / 128 * 128), 65408});
        s.workspace = align_up(B * (size_t)s.max_in * 2) + align_up((size_t)s.tile_rows * (size_t)s.max_in * 2) +
                      kGemmWorkspaceBytes;
    }
    return s;
}

// Device bytes of the step (activations + workspace): the plan's scratch for a CUDA engine.
inline size_t scratch_bytes_for(const ModelConfig& c, int32_t max_batch, int32_t max_logit_rows, int32_t n_ctx,
                                int32_t block_tokens) {
    const StepLayout s = step_layout(c, max_batch, max_logit_rows, n_ctx, block_tokens);
    return s.activations + s.workspace;
}

}  // namespace mw::cuda
