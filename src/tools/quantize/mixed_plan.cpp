#include "tools/quantize/mixed_plan.h"

#include "base/error.h"

#include <cmath>

namespace mw::compress {

std::vector<size_t> plan_mixed(const std::vector<PlanTensor>& tensors, uint64_t budget) {
    std::vector<size_t> cur(tensors.size(), 0);
    uint64_t total = 0;
    for (size_t t = 0; t < tensors.size(); t++) {
        const auto& c = tensors[t].cands;
        if (c.empty()) fail(MW_ERR_INTERNAL, "tensor '" + tensors[t].name + "' has no candidate type");
        for (size_t k = 1; k < c.size(); k++)
            if (c[k].bytes < c[cur[t]].bytes) cur[t] = k;
        total += c[cur[t]].bytes;
    }
    if (total > budget)
        fail(MW_ERR_INVALID_ARGUMENT, "the budget of " + std::to_string(budget) + " bytes for the quantized tensors is below the smallest possible, " +
                                          std::to_string(total) + " bytes");
    for (;;) {
        double best_ratio = 0;
        size_t bt = 0, bk = 0;
        bool found = false;
        for (size_t t = 0; t < tensors.size(); t++) {
            const auto& c = tensors[t].cands;
            const Candidate& now = c[cur[t]];
            for (size_t k = 0; k < c.size(); k++) {
                if (c[k].bytes <= now.bytes || c[k].loss >= now.loss) continue;
                if (total - now.bytes + c[k].bytes > budget) continue;
                const double ratio = (now.loss - c[k].loss) / (double)(c[k].bytes - now.bytes);
                if (ratio > best_ratio) { best_ratio = ratio; bt = t; bk = k; found = true; }
            }
        }
        if (!found) break;
        total = total - tensors[bt].cands[cur[bt]].bytes + tensors[bt].cands[bk].bytes;
        cur[bt] = bk;
    }
    return cur;
}

namespace {

// Mean KL(P || Q) per position; logits row-major T x V.
double mean_kl(const std::vector<float>& p_logits, const std::vector<float>& q_logits, int64_t V) {
    const int64_t T = (int64_t)p_logits.size() / V;
    double sum = 0;
    std::vector<double> lp((size_t)V), lq((size_t)V);
    for (int64_t t = 0; t < T; t++) {
        auto logsoftmax = [&](const float* z, std::vector<double>& out) {
            double mx = -1e300;
            for (int64_t i = 0; i < V; i++) mx = std::max(mx, (double)z[i]);
            double s = 0;
            for (int64_t i = 0; i < V; i++) s += std::exp((double)z[i] - mx);
            const double lse = mx + std::log(s);
            for (int64_t i = 0; i < V; i++) out[(size_t)i] = (double)z[i] - lse;
        };
        logsoftmax(p_logits.data() + t * V, lp);
        logsoftmax(q_logits.data() + t * V, lq);
        double kl = 0;
        for (int64_t i = 0; i < V; i++) kl += std::exp(lp[(size_t)i]) * (lp[(size_t)i] - lq[(size_t)i]);
        sum += std::max(0.0, kl);
    }
    return T > 0 ? sum / (double)T : 0;
}

}  // namespace

std::vector<std::vector<float>> window_logits(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows) {
    std::vector<std::vector<float>> ref(windows.size());
    for (size_t w = 0; w < windows.size(); w++) fwd.forward(windows[w].data(), (int64_t)windows[w].size(), nullptr, &ref[w]);
    return ref;
}

double window_kl(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                 const std::vector<std::vector<float>>& ref) {
    const int64_t V = fwd.config().n_vocab;
    std::vector<float> logits;
    double kl = 0;
    int64_t n = 0;
    for (size_t w = 0; w < windows.size(); w++) {
        fwd.forward(windows[w].data(), (int64_t)windows[w].size(), nullptr, &logits);
        const int64_t T = (int64_t)windows[w].size();
        kl += mean_kl(ref[w], logits, V) * (double)T;
        n += T;
    }
    return n ? kl / (double)n : 0;
}

void measure_sensitivity(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                         std::vector<PlanTensor>& tensors,
                         const std::function<void(const std::string&, gguf::TensorType, std::vector<float>&)>& quantize_dequant,
                         const std::function<void(int64_t, int64_t)>& progress) {
    const std::vector<std::vector<float>> ref = window_logits(fwd, windows);
    int64_t total = 0, done = 0;
    for (const auto& t : tensors) total += (int64_t)t.cands.size();
    for (auto& t : tensors) {
        std::vector<float>* data = fwd.tensor(t.name);
        if (!data) fail(MW_ERR_INTERNAL, "no F32 copy of tensor '" + t.name + "'");
        const std::vector<float> original = *data;
        for (auto& c : t.cands) {
            quantize_dequant(t.name, c.type, *data);
            c.loss = window_kl(fwd, windows, ref);
            *data = original;
            if (progress) progress(++done, total);
        }
    }
}

}  // namespace mw::compress
