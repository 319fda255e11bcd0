#include "tools/calibrate/calibration.h"

#include "base/error.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mw::compress {

std::string read_calibration_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(MW_ERR_IO, "cannot read calibration text '" + path + "': " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    if (text.empty()) fail(MW_ERR_INVALID_ARGUMENT, "calibration text '" + path + "' is empty");
    return text;
}

std::vector<std::vector<int32_t>> calibration_windows(const Model& model, const std::string& text, int32_t n_ctx,
                                                      int64_t max_tokens) {
    if (text.empty()) fail(MW_ERR_INVALID_ARGUMENT, "the calibration text is empty");
    if (n_ctx <= 0) n_ctx = std::min<int32_t>(256, model.config().n_ctx_train);
    if (n_ctx < 2) fail(MW_ERR_INVALID_ARGUMENT, "calibration window of " + std::to_string(n_ctx) + " tokens is too short");
    const Tokenizer& tok = model.tokenizer();
    std::vector<int32_t> ids = tok.encode(text, /*add_special=*/false, /*parse_special=*/false);
    if (ids.empty()) fail(MW_ERR_INVALID_ARGUMENT, "the calibration text gives no tokens");
    const bool bos = tok.add_bos() && tok.bos() >= 0;
    const int32_t body = bos ? n_ctx - 1 : n_ctx;
    std::vector<std::vector<int32_t>> windows;
    int64_t used = 0;
    for (size_t at = 0; at < ids.size(); at += (size_t)body) {
        std::vector<int32_t> w;
        if (bos) w.push_back(tok.bos());
        const size_t end = std::min(ids.size(), at + (size_t)body);
        w.insert(w.end(), ids.begin() + (std::ptrdiff_t)at, ids.begin() + (std::ptrdiff_t)end);
        if (max_tokens > 0 && used + (int64_t)w.size() > max_tokens) {
            w.resize((size_t)std::max<int64_t>(0, max_tokens - used));
            if (w.size() >= 2) windows.push_back(std::move(w));
            break;
        }
        used += (int64_t)w.size();
        if (w.size() >= 2) windows.push_back(std::move(w));
    }
    if (windows.empty()) fail(MW_ERR_INVALID_ARGUMENT, "the calibration text is too short (needs at least 2 tokens)");
    return windows;
}

namespace {

void add_sq(std::vector<double>& acc, const float* x, int64_t T, int64_t n) {
    if (acc.empty()) acc.assign((size_t)n, 0.0);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < n; i++) acc[(size_t)i] += (double)x[t * n + i] * x[t * n + i];
}

std::string blk(int i, const char* what) { return "blk." + std::to_string(i) + "." + what; }

}  // namespace

CalibStats calibrate(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                     const std::function<void(int64_t, int64_t)>& progress) {
    const ModelConfig& c = fwd.config();
    const int L = c.n_layer;
    std::vector<std::vector<double>> attn_in((size_t)L), attn_out((size_t)L), ffn_in((size_t)L), ffn_hid((size_t)L);
    std::vector<double> out_in;
    std::vector<std::vector<double>> group_sq((size_t)L);
    int64_t total = 0, done = 0;
    for (const auto& w : windows) total += (int64_t)w.size();

    auto hook = [&](Site site, int layer, const float* x, int64_t T, int64_t n) {
        switch (site) {
        case Site::AttnIn: add_sq(attn_in[(size_t)layer], x, T, n); break;
        case Site::FfnIn: add_sq(ffn_in[(size_t)layer], x, T, n); break;
        case Site::FfnHidden: add_sq(ffn_hid[(size_t)layer], x, T, n); break;
        case Site::OutputIn: add_sq(out_in, x, T, n); break;
        case Site::AttnOut: {
            add_sq(attn_out[(size_t)layer], x, T, n);
            // Output of each KV group through attn_output, one group at a time.
            const LayerConfig& lc = c.layers[(size_t)layer];
            const std::vector<float>& wo = *fwd.tensor(blk(layer, "attn_output.weight"));
            const int64_t hd = c.head_dim, gw = (int64_t)(lc.n_head / lc.n_head_kv) * hd, E = c.n_embd;
            auto& gs = group_sq[(size_t)layer];
            if (gs.empty()) gs.assign((size_t)lc.n_head_kv, 0.0);
            std::vector<float> y((size_t)(T * E));
            for (int g = 0; g < lc.n_head_kv; g++) {
                gemm_f32(x + g * gw, T, n, wo.data() + g * gw, n, gw, E, y.data(), E, fwd.n_threads());
                double ss = 0;
                for (float v : y) ss += (double)v * v;
                gs[(size_t)g] += ss;
            }
            break;
        }
        }
    };
    for (const auto& w : windows) {
        fwd.forward(w.data(), (int64_t)w.size(), hook, nullptr);
        done += (int64_t)w.size();
        if (progress) progress(done, total);
    }

    CalibStats s;
    s.n_tokens = total;
    auto mean = [&](const std::vector<double>& acc) {
        std::vector<float> m(acc.size());
        for (size_t i = 0; i < acc.size(); i++) m[i] = (float)(acc[i] / (double)total);
        return m;
    };
    s.ffn_channel.resize((size_t)L);
    s.head_group.resize((size_t)L);
    for (int l = 0; l < L; l++) {
        const LayerConfig& lc = c.layers[(size_t)l];
        if (lc.n_head > 0) {
            const std::vector<float> ai = mean(attn_in[(size_t)l]);
            for (const char* t : {"attn_q.weight", "attn_k.weight", "attn_v.weight"}) s.importance[blk(l, t)] = ai;
            s.importance[blk(l, "attn_output.weight")] = mean(attn_out[(size_t)l]);
            for (double g : group_sq[(size_t)l]) s.head_group[(size_t)l].push_back((float)std::sqrt(g / (double)total));
        }
        if (lc.n_ff > 0) {
            const std::vector<float> fi = mean(ffn_in[(size_t)l]);
            s.importance[blk(l, "ffn_gate.weight")] = fi;
            s.importance[blk(l, "ffn_up.weight")] = fi;
            const std::vector<float> h = mean(ffn_hid[(size_t)l]);
            s.importance[blk(l, "ffn_down.weight")] = h;
            const std::vector<float>& down = *fwd.tensor(blk(l, "ffn_down.weight"));
            const int64_t F = lc.n_ff, E = c.n_embd;
            auto& ch = s.ffn_channel[(size_t)l];
            ch.assign((size_t)F, 0.0f);
            for (int64_t f = 0; f < F; f++) {
                double col = 0;
                for (int64_t e = 0; e < E; e++) col += (double)down[(size_t)(e * F + f)] * down[(size_t)(e * F + f)];
                ch[(size_t)f] = (float)(std::sqrt((double)h[(size_t)f]) * std::sqrt(col));
            }
        }
    }
    const std::vector<float> oi = mean(out_in);
    // A tied output shares token_embd: its rows are the output's rows.
    s.importance[fwd.tensor("output.weight") ? "output.weight" : "token_embd.weight"] = oi;
    return s;
}

}  // namespace mw::compress
