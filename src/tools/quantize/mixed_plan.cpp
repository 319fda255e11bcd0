#include "tools/quantize/mixed_plan.h"

#include "base/error.h"

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <set>

namespace mw::compress {

namespace {

constexpr size_t kNone = SIZE_MAX;

uint64_t bytes_of(const std::vector<PlanTensor>& ts, const std::vector<size_t>& pick) {
    uint64_t b = 0;
    for (size_t t = 0; t < ts.size(); t++) b += ts[t].cands[pick[t]].bytes;
    return b;
}

double loss_of(const std::vector<PlanTensor>& ts, const std::vector<size_t>& pick) {
    double l = 0;
    for (size_t t = 0; t < ts.size(); t++) l += ts[t].cands[pick[t]].loss;
    return l;
}

std::string cand_name(const Candidate& c) {
    const gguf::TensorTypeInfo* ti = gguf::tensor_type_info((uint32_t)c.type);
    return std::string(ti ? ti->name : "?") + (c.weighted ? "" : " (RTN)");
}

// Greedy upgrades from `cur` (which fits the budget): the single upgrade with
// the largest loss reduction per added byte that still fits, until none.
// Tensor `locked` (kNone: none) is left as it is.
double greedy_from(const std::vector<PlanTensor>& tensors, uint64_t budget, std::vector<size_t>& cur,
                   size_t locked = kNone) {
    uint64_t total = bytes_of(tensors, cur);
    for (;;) {
        double best_ratio = 0;
        size_t bt = 0, bk = 0;
        bool found = false;
        for (size_t t = 0; t < tensors.size(); t++) {
            if (t == locked) continue;
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
    return loss_of(tensors, cur);
}

// Every tensor at its smallest candidate; refuses a budget below that.
std::vector<size_t> smallest_plan(const std::vector<PlanTensor>& tensors, uint64_t budget) {
    std::vector<size_t> smallest(tensors.size(), 0);
    for (size_t t = 0; t < tensors.size(); t++) {
        const auto& c = tensors[t].cands;
        if (c.empty()) fail(MW_ERR_INTERNAL, "tensor '" + tensors[t].name + "' has no candidate type");
        for (size_t k = 1; k < c.size(); k++)
            if (c[k].bytes < c[smallest[t]].bytes) smallest[t] = k;
    }
    const uint64_t total = bytes_of(tensors, smallest);
    if (total > budget)
        fail(MW_ERR_INVALID_ARGUMENT, "the budget of " + std::to_string(budget) + " bytes for the quantized tensors is below the smallest possible, " +
                                          std::to_string(total) + " bytes");
    return smallest;
}

}  // namespace

void check_budget(const std::vector<PlanTensor>& tensors, uint64_t budget) { smallest_plan(tensors, budget); }

namespace {

// The distinct candidate types, in order of first appearance.
std::vector<uint32_t> types_of(const std::vector<PlanTensor>& tensors) {
    std::vector<uint32_t> types;
    for (const auto& t : tensors)
        for (const auto& c : t.cands)
            if (std::find(types.begin(), types.end(), (uint32_t)c.type) == types.end()) types.push_back((uint32_t)c.type);
    return types;
}

// Greedy results from every start: all at their smallest type, and, for each
// type, every tensor at that type (its smallest where the type does not fit)
// when that fits the budget. A greedy from one start can spend the budget
// early on a few large upgrades; a uniform start protects against ending
// worse than one type.
std::vector<Plan> greedy_plans(const std::vector<PlanTensor>& tensors, uint64_t budget) {
    const std::vector<size_t> smallest = smallest_plan(tensors, budget);
    std::vector<Plan> out;
    Plan p{smallest, 0, 0, "greedy from the smallest types", true};
    p.predicted = greedy_from(tensors, budget, p.pick);
    out.push_back(p);
    for (uint32_t ty : types_of(tensors)) {
        std::vector<size_t> start = smallest;
        for (size_t t = 0; t < tensors.size(); t++)
            for (size_t k = 0; k < tensors[t].cands.size(); k++)
                if ((uint32_t)tensors[t].cands[k].type == ty) start[t] = k;
        if (bytes_of(tensors, start) > budget) continue;
        const gguf::TensorTypeInfo* ti = gguf::tensor_type_info(ty);
        Plan g{start, 0, 0, std::string("greedy from all ") + (ti ? ti->name : "?"), true};
        g.predicted = greedy_from(tensors, budget, g.pick);
        out.push_back(g);
    }
    for (auto& g : out) g.bytes = bytes_of(tensors, g.pick);
    return out;
}

// Frees at least `need` bytes of `pick` by downgrading tensors other than
// `keep`, adding as little predicted loss as possible: the better of the one
// downgrade that frees enough alone with the least added loss, and repeated
// downgrades with the least added loss per freed byte. False if impossible.
bool pay(const std::vector<PlanTensor>& ts, std::vector<size_t>& pick, size_t keep, uint64_t need) {
    // One downgrade.
    std::vector<size_t> one;
    double one_add = 0;
    for (size_t u = 0; u < ts.size(); u++) {
        if (u == keep) continue;
        const Candidate& now = ts[u].cands[pick[u]];
        for (size_t k = 0; k < ts[u].cands.size(); k++) {
            const Candidate& c = ts[u].cands[k];
            if (c.bytes >= now.bytes || now.bytes - c.bytes < need) continue;
            const double add = c.loss - now.loss;
            if (one.empty() || add < one_add) {
                one = pick;
                one[u] = k;
                one_add = add;
            }
        }
    }
    // Repeated downgrades by added loss per freed byte.
    std::vector<size_t> many = pick;
    uint64_t freed = 0;
    bool many_ok = true;
    while (freed < need) {
        double best = 0;
        size_t bu = kNone, bk = 0;
        for (size_t u = 0; u < ts.size(); u++) {
            if (u == keep) continue;
            const Candidate& now = ts[u].cands[many[u]];
            for (size_t k = 0; k < ts[u].cands.size(); k++) {
                const Candidate& c = ts[u].cands[k];
                if (c.bytes >= now.bytes) continue;
                const double ratio = (c.loss - now.loss) / (double)(now.bytes - c.bytes);
                if (bu == kNone || ratio < best) { best = ratio; bu = u; bk = k; }
            }
        }
        if (bu == kNone) { many_ok = false; break; }
        freed += ts[bu].cands[many[bu]].bytes - ts[bu].cands[bk].bytes;
        many[bu] = bk;
    }
    if (one.empty() && !many_ok) return false;
    if (one.empty() || (many_ok && loss_of(ts, many) < loss_of(ts, one))) pick = many;
    else pick = one;
    return true;
}

}  // namespace

std::vector<size_t> plan_mixed(const std::vector<PlanTensor>& tensors, uint64_t budget) {
    const std::vector<Plan> g = greedy_plans(tensors, budget);
    size_t best = 0;
    for (size_t i = 1; i < g.size(); i++)
        if (g[i].predicted < g[best].predicted) best = i;
    return g[best].pick;
}

std::vector<Plan> candidate_plans(const std::vector<PlanTensor>& tensors, uint64_t budget) {
    std::vector<Plan> out;
    std::set<std::vector<size_t>> seen;
    auto add = [&](Plan p) {
        p.bytes = bytes_of(tensors, p.pick);
        if (p.bytes > budget) fail(MW_ERR_INTERNAL, "a candidate plan exceeds the budget");  // a bug, not bad input
        if (!seen.insert(p.pick).second) return;
        p.predicted = loss_of(tensors, p.pick);
        out.push_back(std::move(p));
    };
    const std::vector<Plan> greedy = greedy_plans(tensors, budget);
    for (const Plan& g : greedy) add(g);
    const size_t n_greedy = out.size();  // distinct greedy results: the bases of the trades
    for (size_t b = 0; b < n_greedy; b++) {
        const std::vector<size_t> base = out[b].pick;
        for (size_t t = 0; t < tensors.size(); t++) {
            const auto& c = tensors[t].cands;
            for (size_t k = 0; k < c.size(); k++) {
                if (k == base[t]) continue;
                Plan p{base, 0, 0, tensors[t].name + " to " + cand_name(c[k]), false};
                p.pick[t] = k;
                if (c[k].bytes > c[base[t]].bytes) {
                    const uint64_t total = bytes_of(tensors, p.pick);
                    if (total > budget) {
                        if (!pay(tensors, p.pick, t, total - budget)) continue;
                        p.how += ", paid by downgrades";
                    }
                    greedy_from(tensors, budget, p.pick);
                } else {
                    greedy_from(tensors, budget, p.pick, t);
                    p.how += ", the bytes spent on others";
                }
                add(std::move(p));
            }
        }
    }
    std::stable_sort(out.begin(), out.end(), [](const Plan& a, const Plan& b) { return a.predicted < b.predicted; });
    return out;
}

PlanChoice choose_plan_measured(const std::vector<Plan>& plans, size_t n_measure,
                                const std::function<double(const std::vector<size_t>&)>& measure) {
    if (plans.empty()) fail(MW_ERR_INTERNAL, "no candidate plan to choose from");
    PlanChoice ch;
    bool greedy_seen = false;
    for (size_t i = 0; i < plans.size(); i++) {
        const bool first_greedy = plans[i].greedy && !greedy_seen;
        greedy_seen = greedy_seen || plans[i].greedy;
        if (i >= std::max<size_t>(n_measure, 1) && !first_greedy) continue;
        const double m = measure(plans[i].pick);
        ch.tried.push_back({plans[i], m});
        if (ch.tried.size() == 1 || m < ch.measured) {
            ch.plan = plans[i];
            ch.measured = m;
        }
    }
    return ch;
}

void keep_best_variants(std::vector<PlanTensor>& tensors) {
    for (auto& t : tensors) {
        std::vector<Candidate> kept;
        for (const Candidate& c : t.cands) {
            auto it = std::find_if(kept.begin(), kept.end(), [&](const Candidate& k) { return k.type == c.type; });
            if (it == kept.end()) kept.push_back(c);
            else if (c.loss < it->loss) *it = c;
        }
        t.cands = std::move(kept);
    }
}

namespace {

// Mean KL(P || Q) per position; logits row-major T x V. Positions are split
// among threads, their KLs summed in order: the same value on any thread count.
double mean_kl(const std::vector<float>& p_logits, const std::vector<float>& q_logits, int64_t V, int n_threads) {
    const int64_t T = (int64_t)p_logits.size() / V;
    std::vector<double> kl_at((size_t)T);
    parallel_for(T, n_threads, [&](int64_t t0, int64_t t1) {
        std::vector<double> lp((size_t)V), lq((size_t)V);
        auto logsoftmax = [&](const float* z, std::vector<double>& out) {
            double mx = -1e300;
            for (int64_t i = 0; i < V; i++) mx = std::max(mx, (double)z[i]);
            double s = 0;
            for (int64_t i = 0; i < V; i++) s += std::exp((double)z[i] - mx);
            const double lse = mx + std::log(s);
            for (int64_t i = 0; i < V; i++) out[(size_t)i] = (double)z[i] - lse;
        };
        for (int64_t t = t0; t < t1; t++) {
            logsoftmax(p_logits.data() + t * V, lp);
            logsoftmax(q_logits.data() + t * V, lq);
            double kl = 0;
            for (int64_t i = 0; i < V; i++) kl += std::exp(lp[(size_t)i]) * (lp[(size_t)i] - lq[(size_t)i]);
            kl_at[(size_t)t] = std::max(0.0, kl);
        }
    });
    double sum = 0;
    for (double k : kl_at) sum += k;
    return T > 0 ? sum / (double)T : 0;
}

}  // namespace

std::vector<std::vector<float>> window_logits(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                                              std::vector<F32Forward::LayerInputs>* layer_inputs) {
    std::vector<std::vector<float>> ref(windows.size());
    if (layer_inputs) layer_inputs->assign(windows.size(), {});
    for (size_t w = 0; w < windows.size(); w++)
        fwd.forward(windows[w].data(), (int64_t)windows[w].size(), nullptr, &ref[w],
                    layer_inputs ? &(*layer_inputs)[w] : nullptr);
    return ref;
}

double window_kl(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                 const std::vector<std::vector<float>>& ref,
                 const std::vector<F32Forward::LayerInputs>* layer_inputs, int first_layer) {
    const int64_t V = fwd.config().n_vocab;
    std::vector<float> logits;
    double kl = 0;
    int64_t n = 0;
    for (size_t w = 0; w < windows.size(); w++) {
        const int64_t T = (int64_t)windows[w].size();
        if (layer_inputs && first_layer >= 0)
            fwd.forward_from(first_layer, (*layer_inputs)[w][(size_t)first_layer], T, &logits);
        else
            fwd.forward(windows[w].data(), T, nullptr, &logits);
        kl += mean_kl(ref[w], logits, V, fwd.n_threads()) * (double)T;
        n += T;
    }
    return n ? kl / (double)n : 0;
}

int first_layer_of(const std::string& name, int n_layer) {
    if (name == "output.weight") return n_layer;
    int layer = -1, end = 0;
    if (std::sscanf(name.c_str(), "blk.%d.%n", &layer, &end) == 1 && end > 0 && layer >= 0 && layer < n_layer)
        return layer;
    return -1;
}

void measure_sensitivity(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                         std::vector<PlanTensor>& tensors,
                         const std::function<void(const std::string&, const Candidate&, std::vector<float>&)>& quantize_dequant,
                         const std::function<void(const PlanTensor&, size_t)>& tensor_done) {
    // Each tensor's forwards resume at its layer from the reference's residual
    // stream there (bit-identical to whole forwards, about half the work).
    std::vector<F32Forward::LayerInputs> layer_inputs;
    const std::vector<std::vector<float>> ref = window_logits(fwd, windows, &layer_inputs);
    for (size_t i = 0; i < tensors.size(); i++) {
        PlanTensor& t = tensors[i];
        std::vector<float>* data = fwd.tensor(t.name);
        if (!data) fail(MW_ERR_INTERNAL, "no F32 copy of tensor '" + t.name + "'");
        const std::vector<float> original = *data;
        const int first_layer = first_layer_of(t.name, fwd.config().n_layer);
        for (auto& c : t.cands) {
            quantize_dequant(t.name, c, *data);
            c.loss = window_kl(fwd, windows, ref, &layer_inputs, first_layer);
            *data = original;
        }
        if (tensor_done) tensor_done(t, i);
    }
}

}  // namespace mw::compress
