#include "tools/eval/rounded_base.h"

#include <algorithm>
#include <cmath>

namespace mw::eval {

int32_t RoundedBase::argmax() const {
    int32_t best = 0;
    for (int32_t i = 1; i < (int32_t)steps.size(); i++)
        if (steps[(size_t)i] > steps[(size_t)best]) best = i;
    return best;
}

void round_base(const float* logits, int32_t n_vocab, RoundedBase* out) {
    float mx = logits[0], mn = logits[0];
    for (int32_t i = 1; i < n_vocab; i++) {
        mx = std::max(mx, logits[i]);
        mn = std::min(mn, logits[i]);
    }
    mn = std::max(mn, mx - 16.0f);
    double sum = 0;
    for (int32_t i = 0; i < n_vocab; i++) sum += std::exp(logits[i] - mx);
    const float log_sum = (float)std::log(sum);
    out->min_log_prob = mn - mx - log_sum;
    out->scale = (mx - mn) / 65535.0f;
    out->steps.assign((size_t)n_vocab, 0);
    if (out->scale == 0) return;
    const float inv = 1.0f / out->scale;
    // Round half to even (the default rounding mode), as llama.cpp's nearest_int.
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] > mn) out->steps[(size_t)i] = (uint16_t)std::lrint(inv * (logits[i] - mn));
}

double kl_rounded_base(const RoundedBase& p, const float* q_logits, const Normalizer& q, int32_t n_vocab) {
    const float q_lse = (float)q.lse;
    double kl = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        const float lp = p.logprob(i);
        if (!(lp > kRoundedBaseFloor)) continue;
        kl += (double)(std::exp(lp) * (lp - (q_logits[i] - q_lse)));
    }
    // Not clamped at 0: the stored base does not sum to exactly 1, and
    // llama.cpp reports the sum as it is.
    return kl;
}

}  // namespace mw::eval
