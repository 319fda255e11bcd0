#include "kernels/cpu/attention_flash.h"

#include "base/half.h"
#include "kernels/cpu/ops.h"
#include "quant/block_formats.h"

#include <cmath>
#include <cstring>

namespace mw::cpu {

namespace {

// Elements [start, start + n) of a Q8_0 row as floats.
void dequantize_q8_0_slice(const uint8_t* row, int start, int n, float* out) {
    constexpr int kBlock = quant::QK;
    for (int i = 0; i < n;) {
        const int e = start + i;
        const uint8_t* blk = row + (size_t)(e / kBlock) * sizeof(quant::BlockQ8_0);
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        const float d = f16_to_f32(dh);
        const int8_t* qs = (const int8_t*)(blk + 2) + e % kBlock;
        const int len = n - i < kBlock - e % kBlock ? n - i : kBlock - e % kBlock;
        for (int j = 0; j < len; j++) out[i + j] = d * (float)qs[j];
        i += len;
    }
}

}  // namespace

void attention_chunk(const float* q, size_t q_stride, int n_heads, int hd, int n, const void* const* k_rows,
                     const void* const* v_rows, int start, KvElem elem, float scale, float* scratch, float* part,
                     size_t part_stride) {
    const AttentionRowOps& ops = attention_row_ops();
    float* scores = scratch;                                  // n_heads x kFlashChunk
    float* row = scratch + (size_t)n_heads * kFlashChunk;     // one dequantized Q8_0 row
    // Scores: each K row once for every head of the group.
    for (int p = 0; p < n; p++) {
        for (int h = 0; h < n_heads; h++) {
            const float* qh = q + (size_t)h * q_stride;
            float s;
            if (elem == KvElem::F16) {
                s = ops.dot_lanes64_f16(qh, (const uint16_t*)k_rows[p] + start, hd);
            } else if (elem == KvElem::F32) {
                s = ops.dot_lanes64_f32(qh, (const float*)k_rows[p] + start, hd);
            } else {
                if (h == 0) dequantize_q8_0_slice((const uint8_t*)k_rows[p], start, hd, row);
                s = ops.dot_lanes64_f32(qh, row, hd);
            }
            scores[(size_t)h * kFlashChunk + p] = s * scale;
        }
    }
    // The chunk's own max and exponentials.
    for (int h = 0; h < n_heads; h++) {
        float* s = scores + (size_t)h * kFlashChunk;
        float mx = -INFINITY;
        for (int p = 0; p < n; p++) mx = s[p] > mx ? s[p] : mx;
        float* ph = part + (size_t)h * part_stride;
        ph[hd] = mx;
        ph[hd + 1] = (float)ops.exp_sum(s, n, mx);
        std::memset(ph, 0, (size_t)hd * sizeof(float));
    }
    // Unnormalised weighted sum of V, each row once for the group.
    for (int p = 0; p < n; p++) {
        const float* vf = nullptr;
        if (elem == KvElem::Q8_0) {
            dequantize_q8_0_slice((const uint8_t*)v_rows[p], start, hd, row);
            vf = row;
        } else if (elem == KvElem::F32) {
            vf = (const float*)v_rows[p] + start;
        }
        for (int h = 0; h < n_heads; h++) {
            const float w = scores[(size_t)h * kFlashChunk + p];
            float* acc = part + (size_t)h * part_stride;
            if (vf) ops.axpy_f32(acc, w, vf, hd);
            else ops.axpy_f16(acc, w, (const uint16_t*)v_rows[p] + start, hd);
        }
    }
}

void attention_merge(int hd, int n_parts, const float* parts, size_t part_stride, float* out) {
    float mx = -INFINITY;
    for (int c = 0; c < n_parts; c++) {
        const float m = parts[(size_t)c * part_stride + hd];
        mx = m > mx ? m : mx;
    }
    double l = 0;
    std::memset(out, 0, (size_t)hd * sizeof(float));
    for (int c = 0; c < n_parts; c++) {
        const float* pc = parts + (size_t)c * part_stride;
        const float w = std::exp(pc[hd] - mx);  // the chunk's rescale to the common max
        l += (double)w * pc[hd + 1];
        for (int i = 0; i < hd; i++) out[i] += w * pc[i];
    }
    const float inv = (float)(1.0 / l);
    for (int i = 0; i < hd; i++) out[i] *= inv;
}

}  // namespace mw::cpu
