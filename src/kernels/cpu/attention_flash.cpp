#include "kernels/cpu/attention_flash.h"

#include "base/half.h"
#include "kernels/cpu/cpu_features.h"
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

void scores_scalar(const float* q, size_t q_stride, int n_heads, int hd, int n, const float* const* k_rows, float scale,
                   float* s) {
    for (int h = 0; h < n_heads; h++)
        for (int p = 0; p < n; p++) {
            float dot = 0;
            for (int i = 0; i < hd; i++) dot += q[(size_t)h * q_stride + i] * k_rows[p][i];
            s[(size_t)h * kFlashChunk + p] = dot * scale;
        }
}

void weighted_sum_scalar(const float* w, int n_heads, int hd, int n, const float* const* v_rows, float* part,
                         size_t part_stride) {
    for (int h = 0; h < n_heads; h++) {
        float* acc = part + (size_t)h * part_stride;
        std::memset(acc, 0, (size_t)hd * sizeof(float));
        for (int p = 0; p < n; p++)
            for (int i = 0; i < hd; i++) acc[i] += w[(size_t)h * kFlashChunk + p] * v_rows[p][i];
    }
}

void f16_to_f32_scalar(const uint16_t* x, float* y, int n) {
    for (int i = 0; i < n; i++) y[i] = f16_to_f32(x[i]);
}

const FlashRowOps kScalar = {scores_scalar, weighted_sum_scalar, f16_to_f32_scalar};

}  // namespace

const FlashRowOps& flash_row_ops_scalar() { return kScalar; }

const FlashRowOps& flash_row_ops() {
    static const FlashRowOps* chosen = [] {
        const FlashRowOps* avx2 = flash_row_ops_avx2();
        return (active_isa() >= IsaLevel::Avx2 && avx2) ? avx2 : &kScalar;
    }();
    return *chosen;
}

void flash_load_chunk(int n, const void* const* k_rows, const void* const* v_rows, int start, KvElem elem, int hd,
                      int n_heads, float* scratch, FlashChunkRows* rows) {
    const FlashRowOps& ops = flash_row_ops();
    float* kf = scratch + (size_t)n_heads * kFlashChunk;  // kFlashChunk x hd, after the scores
    float* vf = kf + (size_t)kFlashChunk * hd;
    // Rows lie in scattered KV blocks: ask for each slice's first two lines early.
    constexpr int kAhead = 4;
    const size_t off = elem == KvElem::F32   ? (size_t)start * 4
                       : elem == KvElem::F16 ? (size_t)start * 2
                                             : (size_t)(start / quant::QK) * sizeof(quant::BlockQ8_0);
    for (int p = 0; p < n; p++) {
        if (p + kAhead < n) {
            const char* kp = (const char*)k_rows[p + kAhead] + off;
            const char* vp = (const char*)v_rows[p + kAhead] + off;
            __builtin_prefetch(kp);
            __builtin_prefetch(kp + 64);
            __builtin_prefetch(vp);
            __builtin_prefetch(vp + 64);
        }
        if (elem == KvElem::F32) {
            rows->k[p] = (const float*)k_rows[p] + start;
            rows->v[p] = (const float*)v_rows[p] + start;
            continue;
        }
        float* kd = kf + (size_t)p * hd;
        float* vd = vf + (size_t)p * hd;
        if (elem == KvElem::F16) {
            ops.f16_to_f32((const uint16_t*)k_rows[p] + start, kd, hd);
            ops.f16_to_f32((const uint16_t*)v_rows[p] + start, vd, hd);
        } else {
            dequantize_q8_0_slice((const uint8_t*)k_rows[p], start, hd, kd);
            dequantize_q8_0_slice((const uint8_t*)v_rows[p], start, hd, vd);
        }
        rows->k[p] = kd;
        rows->v[p] = vd;
    }
}

void flash_partial(const float* q, size_t q_stride, int n_heads, int hd, int n, const FlashChunkRows& rows, float scale,
                   float* scratch, float* part, size_t part_stride) {
    const FlashRowOps& ops = flash_row_ops();
    float* scores = scratch;  // n_heads x kFlashChunk
    ops.scores(q, q_stride, n_heads, hd, n, rows.k, scale, scores);
    // The chunk's own max and exponentials, per head.
    const AttentionRowOps& row_ops = attention_row_ops();
    for (int h = 0; h < n_heads; h++) {
        float* s = scores + (size_t)h * kFlashChunk;
        // Eight running maxima (the compiler keeps them in one vector), then
        // their max: exact in any order.
        float m8[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        int p = 0;
        for (; p + 8 <= n; p += 8)
            for (int j = 0; j < 8; j++) m8[j] = s[p + j] > m8[j] ? s[p + j] : m8[j];
        for (; p < n; p++) m8[0] = s[p] > m8[0] ? s[p] : m8[0];
        float mx = m8[0];
        for (int j = 1; j < 8; j++) mx = m8[j] > mx ? m8[j] : mx;
        float* ph = part + (size_t)h * part_stride;
        ph[hd] = mx;
        ph[hd + 1] = (float)row_ops.exp_sum(s, n, mx);
    }
    ops.weighted_sum(scores, n_heads, hd, n, rows.v, part, part_stride);
}

void attention_chunk(const float* q, size_t q_stride, int n_heads, int hd, int n, const void* const* k_rows,
                     const void* const* v_rows, int start, KvElem elem, float scale, float* scratch, float* part,
                     size_t part_stride) {
    FlashChunkRows rows;
    flash_load_chunk(n, k_rows, v_rows, start, elem, hd, n_heads, scratch, &rows);
    flash_partial(q, q_stride, n_heads, hd, n, rows, scale, scratch, part, part_stride);
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
