#include "kernels/cpu/attention.h"

#include "base/half.h"
#include "kernels/cpu/ops.h"

#include <cmath>
#include <cstring>

namespace mw::cpu {

void attention_head(const float* q_in, int hd, int n_pos, const void* const* k_rows, const void* const* v_rows,
                    bool f16, float scale, float* scores, float* out) {
    const AttentionRowOps& ops = attention_row_ops();
    float q[512];
    for (int i = 0; i < hd; i++) q[i] = f16 ? f16_to_f32(f32_to_f16(q_in[i])) : q_in[i];
    float mx = -INFINITY;
    for (int p = 0; p < n_pos; p++) {
        const float s = (f16 ? ops.dot_f16(q, (const uint16_t*)k_rows[p], hd) : ops.dot_f32(q, (const float*)k_rows[p], hd)) * scale;
        scores[p] = s;
        mx = s > mx ? s : mx;
    }
    double sum = 0;
    for (int p = 0; p < n_pos; p++) {
        scores[p] = std::exp(scores[p] - mx);
        sum += scores[p];
    }
    const float inv = (float)(1.0 / sum);
    std::memset(out, 0, (size_t)hd * sizeof(float));
    for (int p = 0; p < n_pos; p++) {
        const float w = scores[p] * inv;
        if (f16) ops.axpy_f16(out, f16_to_f32(f32_to_f16(w)), (const uint16_t*)v_rows[p], hd);
        else ops.axpy_f32(out, w, (const float*)v_rows[p], hd);
    }
}

}  // namespace mw::cpu
