// Mixed precision: which type each tensor gets under a byte budget.
//
// Sensitivity: for every candidate tensor and every candidate type, the tensor
// alone is quantized (the same way the output will be) and put back into the
// F32 model; the mean KL(original || modified) of the next-token distributions
// over the sensitivity windows of the calibration text is its loss. Losses are
// taken as additive across tensors (first-order: each is small).
//
// Allocation (greedy on loss per byte): every tensor starts at its smallest
// candidate; then, repeatedly, the single upgrade (a tensor to any larger
// candidate with a smaller loss) with the largest loss reduction per added
// byte that still fits the budget is applied, until none fits or helps.
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
    double loss = 0;  // KL (nats) this type alone causes
};

struct PlanTensor {
    std::string name;
    std::vector<Candidate> cands;
};

// Index of the chosen candidate per tensor. MW_ERR_INVALID_ARGUMENT when even
// the smallest candidates exceed the budget (the message gives that minimum).
std::vector<size_t> plan_mixed(const std::vector<PlanTensor>& tensors, uint64_t budget);

// Logits of every window (the reference a modified model is compared with).
std::vector<std::vector<float>> window_logits(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows);
// Mean KL(ref || current fwd) per position over the windows, nats.
double window_kl(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                 const std::vector<std::vector<float>>& ref);

// Fills cands[i].loss of every tensor. quantize_dequant(name, type, data) must
// replace data (the tensor's F32 copy) by its quantized-then-dequantized value.
void measure_sensitivity(F32Forward& fwd, const std::vector<std::vector<int32_t>>& windows,
                         std::vector<PlanTensor>& tensors,
                         const std::function<void(const std::string&, gguf::TensorType, std::vector<float>&)>& quantize_dequant,
                         const std::function<void(int64_t, int64_t)>& progress);

}  // namespace mw::compress
