#include "tools/quantize/mixed_plan.h"

#include "base/error.h"

#include <algorithm>
#include <cmath>

namespace mw::compress {

namespace {

// Greedy upgrades from `cur` (which fits the budget): the single upgrade with
// the largest loss reduction per added byte that still fits, until none.
double greedy_from(const std::vector<PlanTensor>& tensors, uint64_t budget, std::vector<size_t>& cur) {
    uint64_t total = 0;
    for (size_t t = 0; t < tensors.size(); t++) total += tensors[t].cands[cur[t]].bytes;
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
    double loss = 0;
    for (size_t t = 0; t < tensors.size(); t++) loss += tensors[t].cands[cur[t]].loss;
    return loss;
}

}  // namespace

std::vector<size_t> plan_mixed(const std::vector<PlanTensor>& tensors, uint64_t budget) {
    std::vector<size_t> smallest(tensors.size(), 0);
    uint64_t total = 0;
    for (size_t t = 0; t < tensors.size(); t++) {
        const auto& c = tensors[t].cands;
        if (c.empty()) fail(MW_ERR_INTERNAL, "tensor '" + tensors[t].name + "' has no candidate type");
        for (size_t k = 1; k < c.size(); k++)
            if (c[k].bytes < c[smallest[t]].bytes) smallest[t] = k;
        total += c[smallest[t]].bytes;
    }
    if (total > budget)
        fail(MW_ERR_INVALID_ARGUMENT, "the budget of " + std::to_string(budget) + " bytes for the quantized tensors is below the smallest possible, " +
                                          std::to_string(total) + " bytes");
    // Several starts, keeping the plan with the smallest summed loss: all at
    // their smallest type, and, for each type, every tensor at that type (its
    // smallest where the type does not fit) when that fits the budget. A
    // greedy from one start can spend the budget early on a few large
    // upgrades; a uniform start protects against ending worse than one type.
    std::vector<size_t> best = smallest;
    double best_loss = greedy_from(tensors, budget, best);
    std::vector<uint32_t> types;
    for (const auto& t : tensors)
        for (const auto& c : t.cands)
            if (std::find(types.begin(), types.end(), (uint32_t)c.type) == types.end()) types.push_back((uint32_t)c.type);
    for (uint32_t ty : types) {
        std::vector<size_t> start = smallest;
        uint64_t bytes = 0;
        for (size_t t = 0; t < tensors.size(); t++) {
            for (size_t k = 0; k < tensors[t].cands.size(); k++)
                if ((uint32_t)tensors[t].cands[k].type == ty) start[t] = k;
            bytes += tensors[t].cands[start[t]].bytes;
        }
        if (bytes > budget) continue;
        const double loss = greedy_from(tensors, budget, start);
        if (loss < best_loss) { best_loss = loss; best = start; }
    }
    return best;
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
