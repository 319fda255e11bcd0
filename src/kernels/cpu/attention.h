// Attention of one query head over the K/V rows of its sequence (any layout:
// the caller passes a pointer to each position's row, already offset to the
// head's KV group). Two passes: scores and softmax, then the weighted sum of V.
//
// With an F16 cache the arithmetic follows llama.cpp's CPU path (q and the
// softmax weights rounded to F16), so results agree with it closely.
#pragma once

#include <cstdint>

namespace mw::cpu {

// q: head_dim floats. k_rows/v_rows: n_pos rows of head_dim elements (F16 when
// f16, else F32). scores: scratch of n_pos floats. out: head_dim floats.
void attention_head(const float* q, int head_dim, int n_pos, const void* const* k_rows, const void* const* v_rows,
                    bool f16, float scale, float* scores, float* out);

}  // namespace mw::cpu
