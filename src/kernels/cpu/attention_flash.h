// Flash-decoding attention for long contexts: the sequence's positions are cut
// into fixed chunks of kFlashChunk positions; each chunk gives, per query head,
// a partial (its max score m, the sum l of exp(score - m), and the
// unnormalised sum of exp(score - m) * v), and the partials are merged in chunk
// order with the online-softmax rescaling. Chunks are independent, so the
// caller spreads (head group, chunk) items over threads; since the chunk
// boundaries and the merge order depend only on the sequence's length, the
// result never depends on the thread count or on the rest of the batch.
//
// One item serves all the query heads that share a KV head (GQA): each K and
// V row is read once per chunk for the whole group.
//
// This is not the llama.cpp-exact order of attention.h (short contexts keep
// that); it agrees with exact softmax attention within float rounding.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mw::cpu {

constexpr int kFlashChunk = 256;  // positions per partial

enum class KvElem { F32, F16, Q8_0 };

// Floats per partial of one head: hd accumulators, then m and l.
inline size_t flash_partial_floats(int head_dim) { return (size_t)head_dim + 2; }
// Chunks covering n_pos positions.
inline int flash_chunks(int n_pos) { return (n_pos + kFlashChunk - 1) / kFlashChunk; }
// Per-thread scratch floats attention_chunk needs for n_heads heads sharing a
// KV head: the scores, and the chunk's K and V slices as F32.
inline size_t flash_scratch_floats(int n_heads, int head_dim) {
    return (size_t)(n_heads + 2 * head_dim) * kFlashChunk;
}

// A chunk's K and V slices as F32 rows: F32 caches are read in place, F16 and
// Q8_0 rows converted into scratch once for every query that uses the chunk.
struct FlashChunkRows {
    const float* k[kFlashChunk];
    const float* v[kFlashChunk];
};
// Loads positions [0, n) (n <= kFlashChunk) of the chunk. scratch:
// flash_scratch_floats(n_heads, head_dim) floats, shared with flash_partial.
void flash_load_chunk(int n, const void* const* k_rows, const void* const* v_rows, int start, KvElem elem, int head_dim,
                      int n_heads, float* scratch, FlashChunkRows* rows);
// Partials of n_heads query heads over the first n positions of a loaded chunk
// (a prompt token sees only the positions up to its own; n <= loaded n).
void flash_partial(const float* q, size_t q_stride, int n_heads, int head_dim, int n, const FlashChunkRows& rows,
                   float scale, float* scratch, float* part, size_t part_stride);

// Both at once: partials of n_heads query heads (q: n_heads x head_dim floats, heads
// q_stride floats apart) over n <= kFlashChunk positions. k_rows / v_rows:
// the positions' whole K and V rows; the heads' KV slice starts at element
// `start` of each row (for Q8_0 rows, blocks of 32 with an F16 scale, any
// start). part: n_heads partials, part_stride floats apart. scratch:
// flash_scratch_floats(n_heads, head_dim) floats.
void attention_chunk(const float* q, size_t q_stride, int n_heads, int head_dim, int n, const void* const* k_rows,
                     const void* const* v_rows, int start, KvElem elem, float scale, float* scratch, float* part,
                     size_t part_stride);

// out[0..head_dim) = the merged attention of one head from n_parts partials
// (part_stride floats apart), merged in index order.
void attention_merge(int head_dim, int n_parts, const float* parts, size_t part_stride, float* out);

// The inner loops over F32 rows, per ISA level (the AVX2 ones in
// attention_flash_avx2.cpp; results agree within float rounding, not bit for bit).
struct FlashRowOps {
    // s[h * kFlashChunk + p] = scale * dot(q_h, k_rows[p]) for h < n_heads, p < n.
    void (*scores)(const float* q, size_t q_stride, int n_heads, int head_dim, int n, const float* const* k_rows,
                   float scale, float* s);
    // acc_h = sum over p < n of w[h * kFlashChunk + p] * v_rows[p], acc_h at part + h * part_stride.
    void (*weighted_sum)(const float* w, int n_heads, int head_dim, int n, const float* const* v_rows, float* part,
                         size_t part_stride);
    void (*f16_to_f32)(const uint16_t* x, float* y, int n);
};
const FlashRowOps& flash_row_ops();          // for the active ISA level
const FlashRowOps& flash_row_ops_scalar();   // plain loops
const FlashRowOps* flash_row_ops_avx2();     // nullptr when not compiled in

}  // namespace mw::cpu
