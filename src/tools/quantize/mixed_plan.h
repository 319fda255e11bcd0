// Mixed precision: which type each tensor gets under a byte budget.
//
// Sensitivity: for every candidate tensor and every candidate type, the tensor
// alone is quantized (the same way the output will be) and put back into the
// F32 model; the mean KL(original || modified) of the next-token distributions
// over the sensitivity windows of the calibration text is its loss. Losses are
// taken as additive across tensors (first-order: each is small) to PREDICT a
// plan's loss.
//
// Allocation (greedy on loss per byte): from a start plan, repeatedly, the
// single upgrade (a tensor to any larger candidate with a smaller loss) with
// the largest loss reduction per added byte that still fits the budget is
// applied, until none fits or helps.
//
// The additive prediction is not reliable where losses are small and close
// (e.g. at the Q8_0 size), so candidate_plans() also builds "trade" plans
// (one tensor up, the cheapest-loss downgrades of others paying for it, and
// the reverse) and choose_plan_measured() measures the true KL of the best
// few by prediction and keeps the one with the lowest MEASURED KL.
#pragma once

#include "gguf/tensor_type.h"
#include "tools/calibrate/f32_forward.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mw::compress {

struct Candidate {
    gguf::TensorType type;
    uint64_t bytes = 0;
    double loss = 0;       // KL (nats) this type alone causes
    bool weighted = true;  // quantize: importance-weighted encoder (false: round-to-nearest)
};

struct PlanTensor {
    std::string name;
    std::vector<Candidate> cands;
};

// Index of the chosen candidate per tensor: the best predicted of the greedy
// runs from every start. MW_ERR_INVALID_ARGUMENT when even the smallest
// candidates exceed the budget (the message gives that minimum).
std::vector<size_t> plan_mixed(const std::vector<PlanTensor>& tensors, uint64_t budget);

// Refuses (MW_ERR_INVALID_ARGUMENT, naming the minimum) a budget below every
// tensor at its smallest candidate; needs only the bytes, so it can run
// before the losses are measured.
void check_budget(const std::vector<PlanTensor>& tensors, uint64_t budget);

struct Plan {
    std::vector<size_t> pick;  // candidate index per tensor
    uint64_t bytes = 0;
    double predicted = 0;      // summed per-tensor loss
    std::string how;           // where it came from, for the log
    bool greedy = false;       // a plain greedy result (no trade)
};

// Distinct plans that fit the budget, lowest predicted loss first: the greedy
// result from every start, and around each distinct greedy result every
// single trade: a tensor to each larger candidate, paid for by the downgrades
// of others with the least added loss (then the rest of the budget spent
// greedily), and a tensor to each smaller candidate, the bytes it frees spent
// greedily on the others. Same refusal as plan_mixed.
std::vector<Plan> candidate_plans(const std::vector<PlanTensor>& tensors, uint64_t budget);

struct PlanChoice {
    Plan plan;              // the chosen plan
    double measured = 0;    // its measured loss
    std::vector<std::pair<Plan, double>> tried;  // every measured plan and its measured loss
};

// Measures the first n_measure plans (and the best greedy one, whatever its
// rank) with measure(pick) and keeps the lowest measured loss (on a tie, the
// lower predicted). plans must be non-empty, ordered as candidate_plans gives.
PlanChoice choose_plan_measured(const std::vector<Plan>& plans, size_t n_measure,
                                const std::function<double(const std::vector<size_t>&)>& measure);

// Keeps, per tensor and type, only the candidate with the lowest loss (e.g.
// the better of the importance-weighted and round-to-nearest encoders).
void keep_best_variants(std::vector<PlanTensor>& tensors);

// Logits of every window (the reference a modified model is compared with);
// with layer_inputs, also each window's residual stream at every layer input.
std::vector<std::vector<float>> window_logits(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                                              std::vector<F32Forward::LayerInputs>* layer_inputs = nullptr);
// Mean KL(ref || current fwd) per position over the windows, nats. With
// layer_inputs (from window_logits) and first_layer >= 0, each window resumes
// at that layer: valid when only weights of that layer or later have changed.
double window_kl(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                 const std::vector<std::vector<float>>& ref,
                 const std::vector<F32Forward::LayerInputs>* layer_inputs = nullptr, int first_layer = -1);

// The first layer a weight feeds: N for "blk.N.*", n_layer for output.weight,
// -1 (the whole forward) for token_embd and anything else.
int first_layer_of(const std::string& name, int n_layer);

// Fills cands[i].loss of every tensor. quantize_dequant(name, cand, data) must
// replace data (the tensor's F32 copy) by its quantized-then-dequantized value;
// tensor_done(tensor, i) (optional) is called as each tensor's losses are known.
void measure_sensitivity(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                         std::vector<PlanTensor>& tensors,
                         const std::function<void(const std::string&, const Candidate&, std::vector<float>&)>& quantize_dequant,
                         const std::function<void(const PlanTensor&, size_t)>& tensor_done);

}  // namespace mw::compress
