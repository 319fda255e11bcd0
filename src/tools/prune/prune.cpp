#include "tools/prune/prune.h"

#include "base/error.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "quant/quant.h"
#include "quant/quant_weighted.h"
#include "tools/calibrate/calibration.h"
#include "tools/calibrate/f32_forward.h"
#include "tools/quantize/mixed_plan.h"
#include "tools/quantize/quantize.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <thread>

namespace mw::compress {

using gguf::TensorType;

int32_t round_width(double want, int32_t round, int32_t width) {
    if (round < 1) round = 1;
    if (width <= round) return std::clamp((int32_t)std::lround(want), 1, width);
    int32_t k = (int32_t)std::lround(want / round) * round;
    return std::clamp(k, round, width);
}

namespace {

std::string blk(int i, const char* what) { return "blk." + std::to_string(i) + "." + what; }

// Indices of the `keep` highest scores, in ascending index order.
std::vector<int32_t> top(const std::vector<float>& score, int32_t keep) {
    std::vector<int32_t> idx(score.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return score[(size_t)a] > score[(size_t)b]; });
    idx.resize((size_t)keep);
    std::sort(idx.begin(), idx.end());
    return idx;
}

// Kept count per layer: uniform fraction, or the global top `fraction` of all
// scores, each layer then mapped through fix(count, layer).
std::vector<int32_t> allocate(const std::vector<std::vector<float>>& scores, double fraction, bool global,
                              const std::function<int32_t(double, size_t)>& fix) {
    std::vector<int32_t> out(scores.size(), 0);
    if (!global) {
        for (size_t l = 0; l < scores.size(); l++)
            if (!scores[l].empty()) out[l] = fix(fraction * (double)scores[l].size(), l);
        return out;
    }
    std::vector<std::pair<float, size_t>> all;
    for (size_t l = 0; l < scores.size(); l++)
        for (float s : scores[l]) all.push_back({s, l});
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    const size_t keep = (size_t)std::lround(fraction * (double)all.size());
    std::vector<double> count(scores.size(), 0);
    for (size_t i = 0; i < keep && i < all.size(); i++) count[all[i].second] += 1;
    for (size_t l = 0; l < scores.size(); l++)
        if (!scores[l].empty()) out[l] = fix(count[l], l);
    return out;
}

// Per-layer allocation by measured sensitivity: for each layer and each kept
// count (multiples of `step`), the KL the F32 model shows when only that
// layer loses its least important units (FFN: their gate rows zeroed, so
// silu(0) * up = 0; heads: their attn_output columns zeroed). The counts are
// then chosen with the mixed-precision planner (units in place of bytes)
// under the total the fraction allows.
std::vector<int32_t> allocate_measured(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                                       const std::vector<std::vector<float>>& ref,
                                       const std::vector<F32Forward::LayerInputs>& layer_inputs,
                                       const std::vector<std::vector<float>>& scores, double fraction, int32_t step,
                                       bool ffn, const std::function<void(const std::string&)>& log) {
    const ModelConfig& c = fwd.config();
    std::vector<PlanTensor> plan;
    std::vector<size_t> layer_of;
    uint64_t total = 0;
    std::vector<int32_t> out(scores.size(), 0);
    for (size_t l = 0; l < scores.size(); l++) {
        const int32_t n = (int32_t)scores[l].size();
        out[l] = n;
        if (n == 0) continue;
        total += (uint64_t)n;
        std::vector<int32_t> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return scores[l][(size_t)a] < scores[l][(size_t)b]; });
        std::vector<float>& w = *fwd.tensor(blk((int)l, ffn ? "ffn_gate.weight" : "attn_output.weight"));
        const std::vector<float> orig = w;
        const int64_t E = c.n_embd, hd = c.head_dim, gw = ffn ? 1 : (int64_t)(c.layers[l].n_head / c.layers[l].n_head_kv) * hd;
        const int64_t n_in = ffn ? E : (int64_t)c.layers[l].n_head * hd;
        PlanTensor p{std::to_string(l), {}};
        std::vector<int32_t> counts;
        for (int32_t k = std::min(step, n); k < n; k += step) counts.push_back(k);
        counts.push_back(n);
        for (int32_t k : counts) {
            w = orig;
            for (int32_t i = 0; i < n - k; i++) {
                const int32_t u = order[(size_t)i];
                if (ffn) std::fill_n(w.begin() + (int64_t)u * E, E, 0.0f);
                else
                    for (int64_t r = 0; r < E; r++) std::fill_n(w.begin() + r * n_in + u * gw, gw, 0.0f);
            }
            const double kl = k == n ? 0.0 : window_kl(fwd, windows, ref, &layer_inputs, (int)l);  // resumes at layer l
            p.cands.push_back({gguf::TensorType::F32, (uint64_t)k, kl});
        }
        w = orig;
        plan.push_back(std::move(p));
        layer_of.push_back(l);
    }
    // Every layer keeps at least its smallest candidate, whatever the fraction.
    uint64_t floor = 0;
    for (const auto& p : plan) floor += p.cands.front().bytes;
    const uint64_t budget = std::max<uint64_t>((uint64_t)std::llround(fraction * (double)total), floor);
    const std::vector<size_t> pick = plan_mixed(plan, budget);
    for (size_t i = 0; i < plan.size(); i++) {
        const Candidate& cnd = plan[i].cands[pick[i]];
        out[layer_of[i]] = (int32_t)cnd.bytes;
        log(std::string(ffn ? "FFN" : "heads") + " layer " + plan[i].name + ": keep " + std::to_string(cnd.bytes) +
            (ffn ? " channels" : " KV groups") + ", measured KL alone " + std::to_string(cnd.loss));
    }
    return out;
}

struct Slicer {
    const gguf::File& f;
    gguf::Writer& w;
    const CalibStats& stats;
    bool weighted;
    int n_threads;

    const gguf::TensorInfo& get(const std::string& name) {
        const gguf::TensorInfo* t = f.find_tensor(name);
        if (!t) fail(MW_ERR_FORMAT, "missing tensor '" + name + "'");
        return *t;
    }
    // Keeps the given rows (ne[1] index) unchanged: exact for every type.
    void rows(const std::string& name, const std::vector<int32_t>& keep) {
        const gguf::TensorInfo& t = get(name);
        const size_t rb = t.n_bytes / (t.n_elements / t.ne[0]);
        std::vector<uint8_t> out(keep.size() * rb);
        for (size_t i = 0; i < keep.size(); i++) std::copy_n(t.data + (size_t)keep[i] * rb, rb, out.data() + i * rb);
        w.add_tensor(name, t.type, {t.ne[0], (uint64_t)keep.size()}, out.data(), out.size());
    }
    // Keeps elements of a 1-D F32 tensor (biases).
    void elems(const std::string& name, const std::vector<int32_t>& keep) {
        const gguf::TensorInfo* t = f.find_tensor(name);
        if (!t) return;
        std::vector<float> out;
        for (int32_t i : keep) out.push_back(((const float*)t->data)[i]);
        w.add_tensor(name, TensorType::F32, {(uint64_t)out.size()}, out.data(), out.size() * 4);
    }
    // Keeps the given columns (ne[0] index): dequantize, select, encode again in
    // the same type (or its fallback when the new width does not fit its block).
    void cols(const std::string& name, const std::vector<int32_t>& keep) {
        const gguf::TensorInfo& t = get(name);
        const uint64_t n_in = t.ne[0], rows_n = t.n_elements / n_in, m = keep.size();
        const gguf::TensorTypeInfo& ti = *gguf::tensor_type_info((uint32_t)t.type);
        const size_t rb_in = gguf::row_bytes(ti, n_in);
        TensorType to = t.type;
        if (t.type != TensorType::F32 && t.type != TensorType::F16 && t.type != TensorType::BF16)
            to = fallback_type(t.type, m);
        const size_t rb_out = gguf::row_bytes(*gguf::tensor_type_info((uint32_t)to), m);
        std::vector<float> imp;
        auto it = stats.importance.find(name);
        if (weighted && it != stats.importance.end())
            for (int32_t c : keep) imp.push_back(it->second[(size_t)c]);
        std::vector<uint8_t> out(rows_n * rb_out);
        parallel_for((int64_t)rows_n, n_threads, [&](int64_t r0, int64_t r1) {
            std::vector<float> row(n_in), sel(m);
            for (int64_t r = r0; r < r1; r++) {
                quant::dequantize_row(t.type, t.data + (size_t)r * rb_in, row.data(), n_in);
                for (uint64_t i = 0; i < m; i++) sel[i] = row[(size_t)keep[i]];
                quant::quantize_row_weighted(to, sel.data(), out.data() + (size_t)r * rb_out, m, imp.empty() ? nullptr : imp.data());
            }
        });
        w.add_tensor(name, to, {m, rows_n}, out.data(), out.size());
    }
    void copy(const gguf::TensorInfo& t) {
        w.add_tensor(t.name, t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims), t.data, t.n_bytes);
    }
};

}  // namespace

PruneReport prune_model(const std::string& in_path, const std::string& out_path, const PruneOptions& opts) {
    auto log = [&](const std::string& s) { if (opts.log) opts.log(s); };
    auto frac_ok = [](double x) { return x > 0 && x <= 1 && std::isfinite(x); };
    if (!frac_ok(opts.ffn_keep)) fail(MW_ERR_INVALID_ARGUMENT, "FFN keep fraction " + std::to_string(opts.ffn_keep) + " is outside (0, 1]");
    if (!frac_ok(opts.heads_keep)) fail(MW_ERR_INVALID_ARGUMENT, "heads keep fraction " + std::to_string(opts.heads_keep) + " is outside (0, 1]");
    if (opts.round < 1) fail(MW_ERR_INVALID_ARGUMENT, "rounding multiple " + std::to_string(opts.round) + " must be at least 1");
    if (!opts.random && opts.calib_path.empty())
        fail(MW_ERR_INVALID_ARGUMENT, "pruning ranks channels and heads on calibration text: give a calibration file (or random ranking)");
    if (in_path == out_path) fail(MW_ERR_INVALID_ARGUMENT, "the output must not be the input file");
    const int n_threads = opts.n_threads > 0 ? opts.n_threads : (int)std::max(1u, std::thread::hardware_concurrency());
    std::string calib_text;
    if (!opts.calib_path.empty()) calib_text = read_calibration_text(opts.calib_path);

    std::shared_ptr<const Model> model = Model::load(in_path);
    const gguf::File& f = model->file();
    const ModelConfig& c = model->config();
    const int L = c.n_layer;
    PruneReport rep;
    rep.in_bytes = f.file_size();
    rep.params_in = model->n_params();

    CalibStats stats;
    std::vector<std::vector<float>> ffn_score((size_t)L), group_score((size_t)L);
    std::unique_ptr<F32Forward> fwd;
    if (!opts.random) {
        fwd = std::make_unique<F32Forward>(*model, n_threads);
        stats = calibrate(*fwd, calibration_windows(*model, calib_text, opts.n_ctx, opts.calib_tokens), opts.progress);
        rep.calib_tokens = stats.n_tokens;
        ffn_score = stats.ffn_channel;
        group_score = stats.head_group;
        log("calibration: " + std::to_string(stats.n_tokens) + " tokens");
    } else {
        std::mt19937_64 rng(opts.seed);
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        for (int l = 0; l < L; l++) {
            for (int i = 0; i < c.layers[(size_t)l].n_ff; i++) ffn_score[(size_t)l].push_back(u(rng));
            for (int i = 0; i < c.layers[(size_t)l].n_head_kv; i++) group_score[(size_t)l].push_back(u(rng));
        }
    }

    std::vector<int32_t> ff_keep = allocate(ffn_score, opts.ffn_keep, opts.per_layer && opts.random, [&](double want, size_t l) {
        const int32_t width = c.layers[l].n_ff;
        return opts.ffn_keep >= 1.0 ? width : round_width(want, opts.round, width);
    });
    std::vector<int32_t> g_keep = allocate(group_score, opts.heads_keep, opts.per_layer && opts.random, [&](double want, size_t l) {
        const int32_t g = c.layers[l].n_head_kv;
        return opts.heads_keep >= 1.0 ? g : std::clamp((int32_t)std::lround(want), 1, g);
    });
    if (opts.per_layer && !opts.random) {
        const auto windows = calibration_windows(*model, calib_text, opts.n_ctx, opts.sens_tokens);
        std::vector<F32Forward::LayerInputs> layer_inputs;
        const auto ref = window_logits(*fwd, windows, &layer_inputs);
        if (opts.ffn_keep < 1.0) ff_keep = allocate_measured(*fwd, windows, ref, layer_inputs, ffn_score, opts.ffn_keep, opts.round, true, log);
        if (opts.heads_keep < 1.0) g_keep = allocate_measured(*fwd, windows, ref, layer_inputs, group_score, opts.heads_keep, 1, false, log);
    }

    gguf::Writer w(f.alignment());
    w.copy_metadata(f);
    Slicer s{f, w, stats, !opts.random, n_threads};
    std::set<std::string> done;
    std::vector<int32_t> n_head((size_t)L), n_kv((size_t)L), n_ff((size_t)L);
    const int64_t hd = c.head_dim;
    for (int l = 0; l < L; l++) {
        const LayerConfig& lc = c.layers[(size_t)l];
        rep.n_ff_before.push_back(lc.n_ff);
        rep.n_head_before.push_back(lc.n_head);
        if (lc.n_head > 0) {
            const int group = lc.n_head / lc.n_head_kv;
            const std::vector<int32_t> groups = top(group_score[(size_t)l], g_keep[(size_t)l]);
            std::vector<int32_t> q_rows, kv_rows, q_heads;
            for (int32_t g : groups) {
                for (int64_t i = 0; i < hd; i++) kv_rows.push_back((int32_t)(g * hd + i));
                for (int h = g * group; h < (g + 1) * group; h++)
                    for (int64_t i = 0; i < hd; i++) q_rows.push_back((int32_t)(h * hd + i));
            }
            s.rows(blk(l, "attn_q.weight"), q_rows);
            s.rows(blk(l, "attn_k.weight"), kv_rows);
            s.rows(blk(l, "attn_v.weight"), kv_rows);
            s.cols(blk(l, "attn_output.weight"), q_rows);
            s.elems(blk(l, "attn_q.bias"), q_rows);
            s.elems(blk(l, "attn_k.bias"), kv_rows);
            s.elems(blk(l, "attn_v.bias"), kv_rows);
            for (const char* n : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "attn_q.bias",
                                  "attn_k.bias", "attn_v.bias"})
                done.insert(blk(l, n));
            n_kv[(size_t)l] = (int32_t)groups.size();
            n_head[(size_t)l] = (int32_t)groups.size() * group;
        }
        if (lc.n_ff > 0) {
            const std::vector<int32_t> ch = top(ffn_score[(size_t)l], ff_keep[(size_t)l]);
            s.rows(blk(l, "ffn_gate.weight"), ch);
            s.rows(blk(l, "ffn_up.weight"), ch);
            s.cols(blk(l, "ffn_down.weight"), ch);
            for (const char* n : {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"}) done.insert(blk(l, n));
            n_ff[(size_t)l] = (int32_t)ch.size();
        }
        log("layer " + std::to_string(l) + ": FFN " + std::to_string(lc.n_ff) + " -> " + std::to_string(n_ff[(size_t)l]) +
            " channels, heads " + std::to_string(lc.n_head) + " -> " + std::to_string(n_head[(size_t)l]) + " (KV " +
            std::to_string(lc.n_head_kv) + " -> " + std::to_string(n_kv[(size_t)l]) + ")");
    }
    for (const auto& t : f.tensors())
        if (!done.count(t.name)) s.copy(t);

    // Per-layer values: a scalar when every layer agrees (what every reader
    // understands), else an array with one entry per layer.
    const std::string a = c.arch_name + ".";
    auto put = [&](const std::string& key, const std::vector<int32_t>& v) {
        if (std::all_of(v.begin(), v.end(), [&](int32_t x) { return x == v[0]; })) w.set_u32(key, (uint32_t)v[0]);
        else w.set_array_i32(key, v);
    };
    put(a + "attention.head_count", n_head);
    put(a + "attention.head_count_kv", n_kv);
    put(a + "feed_forward_length", n_ff);
    w.set_u32(a + "attention.key_length", (uint32_t)hd);  // no longer derivable from n_embd / n_head
    w.set_u32(a + "attention.value_length", (uint32_t)hd);
    w.set_f32("memwise.prune.ffn_keep", (float)opts.ffn_keep);
    w.set_f32("memwise.prune.heads_keep", (float)opts.heads_keep);
    w.set_string("memwise.prune.ranking", opts.random ? "random" : (opts.per_layer ? "activation, global" : "activation, per layer"));
    w.write(out_path);

    rep.n_ff_after = n_ff;
    rep.n_head_after = n_head;
    rep.n_head_kv_after = n_kv;
    struct stat st;
    if (::stat(out_path.c_str(), &st) == 0) rep.out_bytes = (uint64_t)st.st_size;
    // Parameters of the result, from the file just written.
    rep.params_out = Model::load(out_path)->n_params();
    return rep;
}

}  // namespace mw::compress
