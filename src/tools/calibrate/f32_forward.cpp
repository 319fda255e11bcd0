#include "tools/calibrate/f32_forward.h"

#include "base/error.h"
#include "kernels/cpu/kernels.h"
#include "quant/quant.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace mw::compress {

void parallel_for(int64_t n, int n_threads, const std::function<void(int64_t, int64_t)>& body) {
    const int64_t k = std::max<int64_t>(1, std::min<int64_t>(n_threads, n));
    if (k == 1) {
        body(0, n);
        return;
    }
    std::vector<std::thread> ts;
    for (int64_t i = 1; i < k; i++) ts.emplace_back([&, i] { body(n * i / k, n * (i + 1) / k); });
    body(0, n / k);
    for (auto& t : ts) t.join();
}

namespace {
std::string blk(int i, const char* what) { return "blk." + std::to_string(i) + "." + what; }
}  // namespace

std::vector<float> F32Forward::load(const Weight& w, const std::string& name) {
    std::vector<float> out;
    if (!w) return out;
    out.resize((size_t)(w.n_in * w.n_out));
    for (int64_t r = 0; r < w.n_out; r++)
        quant::dequantize_row(w.type, w.data + (size_t)r * w.row_bytes, out.data() + (size_t)(r * w.n_in), (size_t)w.n_in);
    if (w.n_out > 1 || name == "token_embd.weight") matrices_.push_back(name);
    return out;
}

F32Forward::F32Forward(const Model& model, int n_threads)
    : m_(model), c_(model.config()), n_threads_(std::max(1, n_threads)) {
    const ModelWeights& w = model.weights();
    token_embd_ = load(w.token_embd, "token_embd.weight");
    output_norm_ = load(w.output_norm, "output_norm.weight");
    if (!w.tied_output) output_ = load(w.output, "output.weight");
    layers_.resize((size_t)c_.n_layer);
    for (int i = 0; i < c_.n_layer; i++) {
        const LayerWeights& lw = w.layers[(size_t)i];
        Layer& l = layers_[(size_t)i];
        l.attn_norm = load(lw.attn_norm, blk(i, "attn_norm.weight"));
        l.wq = load(lw.wq, blk(i, "attn_q.weight"));
        l.wk = load(lw.wk, blk(i, "attn_k.weight"));
        l.wv = load(lw.wv, blk(i, "attn_v.weight"));
        l.wo = load(lw.wo, blk(i, "attn_output.weight"));
        l.bq = load(lw.bq, blk(i, "attn_q.bias"));
        l.bk = load(lw.bk, blk(i, "attn_k.bias"));
        l.bv = load(lw.bv, blk(i, "attn_v.bias"));
        l.ffn_norm = load(lw.ffn_norm, blk(i, "ffn_norm.weight"));
        l.gate = load(lw.w_gate, blk(i, "ffn_gate.weight"));
        l.up = load(lw.w_up, blk(i, "ffn_up.weight"));
        l.down = load(lw.w_down, blk(i, "ffn_down.weight"));
        by_name_.push_back({blk(i, "attn_q.weight"), &l.wq});
        by_name_.push_back({blk(i, "attn_k.weight"), &l.wk});
        by_name_.push_back({blk(i, "attn_v.weight"), &l.wv});
        by_name_.push_back({blk(i, "attn_output.weight"), &l.wo});
        by_name_.push_back({blk(i, "ffn_gate.weight"), &l.gate});
        by_name_.push_back({blk(i, "ffn_up.weight"), &l.up});
        by_name_.push_back({blk(i, "ffn_down.weight"), &l.down});
    }
    by_name_.push_back({"token_embd.weight", &token_embd_});
    if (!w.tied_output) by_name_.push_back({"output.weight", &output_});
}

std::vector<float>* F32Forward::tensor(const std::string& name) {
    for (auto& [n, p] : by_name_)
        if (n == name) return p->empty() ? nullptr : p;
    return nullptr;
}

void gemm_f32(const float* x, int64_t T, int64_t x_stride, const float* w, int64_t w_stride, int64_t n_in,
              int64_t n_out, float* y, int64_t y_stride, int n_threads) {
    // The engine's F32 GEMM kernel (SIMD, tiles of rows x tokens); threads take
    // blocks of output rows, so every value is the same whatever the thread count.
    const cpu::GemmFn gemm = cpu::kernels().gemm[(uint32_t)gguf::TensorType::F32];
    const size_t xs = (size_t)x_stride * sizeof(float), ws = (size_t)w_stride * sizeof(float);
    parallel_for(n_out, n_threads, [&](int64_t r0, int64_t r1) {
        gemm((size_t)n_in, reinterpret_cast<const uint8_t*>(w + r0 * w_stride), ws, (size_t)(r1 - r0),
             reinterpret_cast<const uint8_t*>(x), xs, (size_t)T, y + r0, (size_t)y_stride);
    });
}

void F32Forward::matmul(const float* x, int64_t T, const std::vector<float>& w, int64_t n_in, int64_t n_out,
                        float* y) const {
    gemm_f32(x, T, n_in, w.data(), n_in, n_in, n_out, y, n_out, n_threads_);
}

void F32Forward::rmsnorm(const float* x, const std::vector<float>& g, int64_t T, float* out) const {
    const int64_t E = c_.n_embd;
    for (int64_t t = 0; t < T; t++) {
        double ss = 0;
        for (int64_t i = 0; i < E; i++) ss += (double)x[t * E + i] * x[t * E + i];
        const float scale = (float)(1.0 / std::sqrt(ss / (double)E + c_.rms_eps));
        for (int64_t i = 0; i < E; i++) out[t * E + i] = x[t * E + i] * scale * g[(size_t)i];
    }
}

void F32Forward::rope(float* v, int64_t T, int n_heads) const {
    const int hd = c_.head_dim, half = c_.n_rot / 2;
    const auto& ff = m_.weights().rope_freq_factors;
    const bool neox = c_.rope_order == RopeOrder::Neox;
    for (int64_t t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            const double freq = std::pow((double)c_.rope_theta, -2.0 * i / c_.n_rot) / (ff.empty() ? 1.0 : ff[(size_t)i]);
            const double a = (double)t * c_.rope_freq_scale * freq;
            const float cs = (float)std::cos(a), sn = (float)std::sin(a);
            for (int h = 0; h < n_heads; h++) {
                float* p = v + (t * n_heads + h) * hd;
                const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
                const float x0 = p[i0], x1 = p[i1];
                p[i0] = x0 * cs - x1 * sn;
                p[i1] = x0 * sn + x1 * cs;
            }
        }
}

void F32Forward::forward(const int32_t* tokens, int64_t T, const Hook& hook, std::vector<float>* logits,
                         LayerInputs* layer_inputs) {
    const int64_t E = c_.n_embd;
    std::vector<float> x((size_t)(T * E));
    for (int64_t t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= c_.n_vocab) fail(MW_ERR_INVALID_ARGUMENT, "token id out of range");
        std::copy_n(token_embd_.data() + (size_t)tokens[t] * (size_t)E, E, x.data() + t * E);
    }
    if (layer_inputs) layer_inputs->assign(1, x);
    for (int li = 0; li < c_.n_layer; li++) {
        layer(li, x, T, hook);
        if (layer_inputs) layer_inputs->push_back(x);
    }
    head(x, T, hook, logits);
}

void F32Forward::forward_from(int first, const std::vector<float>& layer_input, int64_t T, std::vector<float>* logits) {
    if (first < 0 || first > c_.n_layer || (int64_t)layer_input.size() != T * c_.n_embd)
        fail(MW_ERR_INTERNAL, "forward_from: no residual stream of that shape at layer " + std::to_string(first));
    std::vector<float> x = layer_input;
    for (int li = first; li < c_.n_layer; li++) layer(li, x, T, nullptr);
    head(x, T, nullptr, logits);
}

void F32Forward::layer(int li, std::vector<float>& x, int64_t T, const Hook& hook) {
    const int64_t E = c_.n_embd, hd = c_.head_dim;
    std::vector<float> xb((size_t)(T * E)), q, k, v, att, tmp((size_t)(T * E)), g, u;
    const LayerConfig& lc = c_.layers[(size_t)li];
    Layer& l = layers_[(size_t)li];
    if (lc.n_head > 0) {
        const int64_t qd = (int64_t)lc.n_head * hd, kd = (int64_t)lc.n_head_kv * hd;
        rmsnorm(x.data(), l.attn_norm, T, xb.data());
        if (hook) hook(Site::AttnIn, li, xb.data(), T, E);
        q.assign((size_t)(T * qd), 0.0f);
        k.assign((size_t)(T * kd), 0.0f);
        v.assign((size_t)(T * kd), 0.0f);
        matmul(xb.data(), T, l.wq, E, qd, q.data());
        matmul(xb.data(), T, l.wk, E, kd, k.data());
        matmul(xb.data(), T, l.wv, E, kd, v.data());
        if (!l.bq.empty())
            for (int64_t t = 0; t < T; t++) {
                for (int64_t i = 0; i < qd; i++) q[(size_t)(t * qd + i)] += l.bq[(size_t)i];
                for (int64_t i = 0; i < kd; i++) {
                    k[(size_t)(t * kd + i)] += l.bk[(size_t)i];
                    v[(size_t)(t * kd + i)] += l.bv[(size_t)i];
                }
            }
        rope(q.data(), T, lc.n_head);
        rope(k.data(), T, lc.n_head_kv);
        att.assign((size_t)(T * qd), 0.0f);
        const int group = lc.n_head / lc.n_head_kv;
        const float scale = 1.0f / std::sqrt((float)hd);
        parallel_for(lc.n_head, n_threads_, [&](int64_t h0, int64_t h1) {
            std::vector<float> s((size_t)T);
            for (int64_t h = h0; h < h1; h++) {
                const int64_t kh = h / group;
                for (int64_t t = 0; t < T; t++) {
                    const float* qt = q.data() + t * qd + h * hd;
                    float mx = -1e30f;
                    for (int64_t p = 0; p <= t; p++) {
                        const float* kp = k.data() + p * kd + kh * hd;
                        float d = 0;
                        for (int64_t i = 0; i < hd; i++) d += qt[i] * kp[i];
                        s[(size_t)p] = d * scale;
                        mx = std::max(mx, s[(size_t)p]);
                    }
                    double sum = 0;
                    for (int64_t p = 0; p <= t; p++) { s[(size_t)p] = std::exp(s[(size_t)p] - mx); sum += s[(size_t)p]; }
                    float* out = att.data() + t * qd + h * hd;
                    for (int64_t p = 0; p <= t; p++) {
                        const float a = (float)(s[(size_t)p] / sum);
                        const float* vp = v.data() + p * kd + kh * hd;
                        for (int64_t i = 0; i < hd; i++) out[i] += a * vp[i];
                    }
                }
            }
        });
        if (hook) hook(Site::AttnOut, li, att.data(), T, qd);
        matmul(att.data(), T, l.wo, qd, E, tmp.data());
        for (size_t i = 0; i < x.size(); i++) x[i] += tmp[i];
    }
    if (lc.n_ff > 0) {
        const int64_t F = lc.n_ff;
        rmsnorm(x.data(), l.ffn_norm, T, xb.data());
        if (hook) hook(Site::FfnIn, li, xb.data(), T, E);
        g.assign((size_t)(T * F), 0.0f);
        u.assign((size_t)(T * F), 0.0f);
        matmul(xb.data(), T, l.gate, E, F, g.data());
        matmul(xb.data(), T, l.up, E, F, u.data());
        for (size_t i = 0; i < g.size(); i++) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
        if (hook) hook(Site::FfnHidden, li, g.data(), T, F);
        matmul(g.data(), T, l.down, F, E, tmp.data());
        for (size_t i = 0; i < x.size(); i++) x[i] += tmp[i];
    }
}

void F32Forward::head(const std::vector<float>& x, int64_t T, const Hook& hook, std::vector<float>* logits) {
    const int64_t E = c_.n_embd;
    std::vector<float> xb((size_t)(T * E));
    rmsnorm(x.data(), output_norm_, T, xb.data());
    if (hook) hook(Site::OutputIn, -1, xb.data(), T, E);
    if (logits) {
        logits->assign((size_t)(T * c_.n_vocab), 0.0f);
        matmul(xb.data(), T, output_.empty() ? token_embd_ : output_, E, c_.n_vocab, logits->data());
    }
}

}  // namespace mw::compress
