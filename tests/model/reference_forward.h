// A plain forward pass in the style of llama2.c, used as the oracle for the
// Executor: weights dequantized to F32, one token at a time, a contiguous
// F32 KV cache, no threads, no SIMD. Slow and obviously correct.
#pragma once

#include "model/model.h"
#include "quant/quant.h"

#include <cmath>
#include <vector>

namespace mw::test {

class ReferenceForward {
public:
    explicit ReferenceForward(const Model& m) : m_(m), c_(m.config()) {}

    // Feeds one token at the next position; returns the logits (n_vocab).
    std::vector<float> step(int32_t token) {
        const int E = c_.n_embd, hd = c_.head_dim;
        const int pos = n_pos_++;
        std::vector<float> x = row(m_.weights().token_embd, token);
        for (int l = 0; l < c_.n_layer; l++) {
            const LayerConfig& lc = c_.layers[(size_t)l];
            const LayerWeights& w = m_.weights().layers[(size_t)l];
            if (keys_.size() <= (size_t)l) { keys_.emplace_back(); vals_.emplace_back(); }
            if (lc.n_head > 0) {
                std::vector<float> xb = rmsnorm(x, w.attn_norm);
                std::vector<float> q = matvec(w.wq, xb), k = matvec(w.wk, xb), v = matvec(w.wv, xb);
                if (w.bq) { add(q, vec(w.bq)); add(k, vec(w.bk)); add(v, vec(w.bv)); }
                rope(q, lc.n_head, pos);
                rope(k, lc.n_head_kv, pos);
                keys_[(size_t)l].push_back(k);
                vals_[(size_t)l].push_back(v);
                std::vector<float> att((size_t)lc.n_head * hd, 0.0f);
                const int group = lc.n_head / lc.n_head_kv;
                for (int h = 0; h < lc.n_head; h++) {
                    const int g = h / group;
                    std::vector<double> s((size_t)pos + 1);
                    double mx = -1e30, sum = 0;
                    for (int p = 0; p <= pos; p++) {
                        double d = 0;
                        for (int i = 0; i < hd; i++) d += (double)q[(size_t)(h * hd + i)] * keys_[(size_t)l][(size_t)p][(size_t)(g * hd + i)];
                        s[(size_t)p] = d / std::sqrt((double)hd);
                        mx = std::max(mx, s[(size_t)p]);
                    }
                    for (auto& e : s) { e = std::exp(e - mx); sum += e; }
                    for (int p = 0; p <= pos; p++)
                        for (int i = 0; i < hd; i++)
                            att[(size_t)(h * hd + i)] += (float)(s[(size_t)p] / sum) * vals_[(size_t)l][(size_t)p][(size_t)(g * hd + i)];
                }
                add(x, matvec(w.wo, att));
            }
            if (lc.n_ff > 0) {
                std::vector<float> xb = rmsnorm(x, w.ffn_norm);
                std::vector<float> g = matvec(w.w_gate, xb), u = matvec(w.w_up, xb);
                for (size_t i = 0; i < g.size(); i++) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
                add(x, matvec(w.w_down, g));
            }
        }
        (void)E;
        return matvec(m_.weights().output, rmsnorm(x, m_.weights().output_norm));
    }

private:
    std::vector<float> row(const Weight& w, int64_t r) const {
        std::vector<float> out((size_t)w.n_in);
        quant::dequantize_row(w.type, w.data + (size_t)r * w.row_bytes, out.data(), (size_t)w.n_in);
        return out;
    }
    std::vector<float> vec(const Weight& w) const { return row(w, 0); }
    std::vector<float> matvec(const Weight& w, const std::vector<float>& x) const {
        std::vector<float> y((size_t)w.n_out);
        for (int64_t r = 0; r < w.n_out; r++) {
            const std::vector<float> wr = row(w, r);
            double s = 0;
            for (size_t i = 0; i < wr.size(); i++) s += (double)wr[i] * x[i];
            y[(size_t)r] = (float)s;
        }
        return y;
    }
    std::vector<float> rmsnorm(const std::vector<float>& x, const Weight& w) const {
        const std::vector<float> g = vec(w);
        double ss = 0;
        for (float v : x) ss += (double)v * v;
        const double scale = 1.0 / std::sqrt(ss / (double)x.size() + c_.rms_eps);
        std::vector<float> out(x.size());
        for (size_t i = 0; i < x.size(); i++) out[i] = (float)(x[i] * scale) * g[i];
        return out;
    }
    static void add(std::vector<float>& a, const std::vector<float>& b) {
        for (size_t i = 0; i < a.size(); i++) a[i] += b[i];
    }
    void rope(std::vector<float>& v, int n_heads, int pos) const {
        const int hd = c_.head_dim, half = c_.n_rot / 2;
        const auto& ff = m_.weights().rope_freq_factors;
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < half; i++) {
                const double freq = std::pow((double)c_.rope_theta, -2.0 * i / c_.n_rot) / (ff.empty() ? 1.0 : ff[(size_t)i]);
                const double t = pos * c_.rope_freq_scale * freq;
                const bool neox = c_.rope_order == RopeOrder::Neox;
                const int a = h * hd + (neox ? i : 2 * i), b = h * hd + (neox ? i + half : 2 * i + 1);
                const double x0 = v[(size_t)a], x1 = v[(size_t)b];
                v[(size_t)a] = (float)(x0 * std::cos(t) - x1 * std::sin(t));
                v[(size_t)b] = (float)(x0 * std::sin(t) + x1 * std::cos(t));
            }
    }

    const Model& m_;
    const ModelConfig& c_;
    int n_pos_ = 0;
    std::vector<std::vector<std::vector<float>>> keys_, vals_;
};

}  // namespace mw::test
