#include "kernels/cpu/attention.h"

#include "kernels/cpu/ops.h"

#include <cmath>
#include <cstring>

namespace mw::cpu {

namespace {

// out[c] = sum over lanes of acc[lane * hd + c], lanes 64 or 16 (ops.h):
// 64 lanes are first folded to 16 as (0 + 2) + (1 + 3) of the four groups.
void reduce_lanes(float* acc, int lanes, int hd, float* out) {
    auto row = [&](int l) { return acc + (size_t)l * hd; };
    if (lanes == 64) {
        for (int l = 0; l < 16; l++) {
            float *a0 = row(l), *a1 = row(l + 16), *a2 = row(l + 32), *a3 = row(l + 48);
            for (int c = 0; c < hd; c++) a0[c] = (a0[c] + a2[c]) + (a1[c] + a3[c]);
        }
    }
    for (int step = 8; step >= 1; step /= 2)
        for (int l = 0; l < step; l++) {
            float *a = row(l), *b = row(l + step);
            for (int c = 0; c < hd; c++) a[c] += b[c];
        }
    std::memcpy(out, acc, (size_t)hd * sizeof(float));
}

}  // namespace

void attention_head(const float* q_in, int hd, int n_pos, const void* const* k_rows, const void* const* v_rows,
                    bool f16, float scale, bool batched, float* scratch, float* out) {
    const AttentionRowOps& ops = attention_row_ops();
    const int lanes = batched ? 16 : 64;
    float* acc = scratch;                        // lanes * hd
    float* scores = scratch + (size_t)64 * hd;  // n_pos

    float q[kMaxAttentionHeadDim];
    std::memcpy(q, q_in, (size_t)hd * sizeof(float));
    if (f16) ops.scale(q, hd, 1.0f, true);

    float mx = -INFINITY;
    for (int p = 0; p < n_pos; p++) {
        float s;
        if (!f16) s = ops.dot_lanes64_f32(q, (const float*)k_rows[p], hd);
        else if (batched && hd % 16 == 0) s = ops.dot_tiled_f16(q, (const uint16_t*)k_rows[p], hd);
        else s = ops.dot_lanes64_f16(q, (const uint16_t*)k_rows[p], hd);
        scores[p] = s * scale;
        mx = scores[p] > mx ? scores[p] : mx;
    }
    const double sum = ops.exp_sum(scores, n_pos, mx);
    ops.scale(scores, n_pos, (float)(1.0 / sum), f16);

    if (f16) ops.axpy_lanes_f16(acc, lanes, scores, v_rows, n_pos, hd);
    else ops.axpy_lanes_f32(acc, lanes, scores, v_rows, n_pos, hd);
    reduce_lanes(acc, lanes, hd, out);
}

void attention_group_f16(const float* q_in, int g, int hd, int n_pos, const void* const* k_rows,
                         const void* const* v_rows, float scale, float* scratch, float* out) {
    const AttentionRowOps& ops = attention_row_ops();
    constexpr int lanes = 16;  // the batched order (attention_head with batched = true)
    float* acc = scratch;                                                // g * lanes * hd
    float* scores = scratch + (size_t)kMaxGroupHeads * lanes * hd;     // g rows of n_pos
    float q[kMaxGroupHeads * kMaxAttentionHeadDim];
    std::memcpy(q, q_in, (size_t)g * hd * sizeof(float));
    for (int h = 0; h < g; h++) ops.scale(q + (size_t)h * hd, hd, 1.0f, true);

    float mx[kMaxGroupHeads], s[kMaxGroupHeads];
    for (int h = 0; h < g; h++) mx[h] = -INFINITY;
    for (int p = 0; p < n_pos; p++) {
        ops.dot_tiled_f16_heads(q, g, (const uint16_t*)k_rows[p], hd, s);
        for (int h = 0; h < g; h++) {
            float& v = scores[(size_t)h * n_pos + p];
            v = s[h] * scale;
            mx[h] = v > mx[h] ? v : mx[h];
        }
    }
    for (int h = 0; h < g; h++) {
        float* sh = scores + (size_t)h * n_pos;
        const double sum = ops.exp_sum(sh, n_pos, mx[h]);
        ops.scale(sh, n_pos, (float)(1.0 / sum), true);
    }
    ops.axpy_lanes_f16_heads(acc, g, lanes, scores, (size_t)n_pos, v_rows, n_pos, hd);
    for (int h = 0; h < g; h++) reduce_lanes(acc + (size_t)h * lanes * hd, lanes, hd, out + (size_t)h * hd);
}

}  // namespace mw::cpu
