// Attention of one query head over the K/V rows of its sequence (any layout:
// the caller passes a pointer to each position's row, already offset to the
// head's KV group): scores q.k * scale, softmax, then the weighted sum of V.
//
// The arithmetic is llama.cpp's CPU path without flash attention, bit for bit
// with an F16 cache, because quantizing activations to 8 bits before every
// matmul turns any last-bit difference into visibly different logits. There,
// q and the softmax weights are rounded to F16 and both products are matmuls
// whose kernel, and so the order of the sums, depends on the batch:
//  - a batch of >= 2 tokens uses the tiled GEMM: scores in the "tiled" order
//    when head_dim % 16 == 0 (else "lanes64"), the weighted sum of V with
//    position p in lane p % 16;
//  - a single token uses the dot kernel: "lanes64" for both (ops.h).
// The softmax uses ggml's expf and its blockwise sum (AttentionRowOps::exp_sum).
// With an F32 cache nothing is rounded to F16 and the scores always take the
// "lanes64" order (llama.cpp then skips its GEMM for them); this case is not
// checked against llama.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mw::cpu {

constexpr int kMaxAttentionHeadDim = 512;

// Floats of scratch attention_head needs for up to max_pos positions.
inline size_t attention_scratch_floats(int head_dim, int max_pos) { return 64 * (size_t)head_dim + (size_t)max_pos; }

// q: head_dim floats (head_dim <= kMaxAttentionHeadDim). k_rows/v_rows: n_pos
// rows of head_dim elements (F16 when f16, else F32). batched: the token is
// part of a batch of two or more (selects the kernel order above). scratch:
// attention_scratch_floats(head_dim, n_pos) floats. out: head_dim floats.
void attention_head(const float* q, int head_dim, int n_pos, const void* const* k_rows, const void* const* v_rows,
                    bool f16, float scale, bool batched, float* scratch, float* out);

// The heads of one KV group at once, for the batched F16 case with head_dim
// % 16 == 0 (a prompt's tokens with the default cache): g <= kMaxGroupHeads
// consecutive query heads (q: g * head_dim floats, out likewise) sharing
// k_rows/v_rows. Each K and V row is converted once for all g heads; every
// head's result is attention_head's, bit for bit.
constexpr int kMaxGroupHeads = 8;
inline size_t attention_group_scratch_floats(int head_dim, int max_pos) {
    return (size_t)kMaxGroupHeads * (16 * (size_t)head_dim + (size_t)max_pos);
}
void attention_group_f16(const float* q, int g, int head_dim, int n_pos, const void* const* k_rows,
                         const void* const* v_rows, float scale, float* scratch, float* out);

}  // namespace mw::cpu
