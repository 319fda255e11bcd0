// Mixed-precision plan choice on synthetic per-tensor losses (no model):
// every candidate plan fits the budget and is distinct, a trade the greedy
// misses is found, the measured chooser keeps the lowest measured loss (the
// measurement is a fake function here), and a budget below the smallest
// plan is refused with the minimum named.
#include "base/error.h"
#include "tools/quantize/mixed_plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "test_util.h"

using namespace mw;
using compress::Candidate;
using compress::Plan;
using compress::PlanTensor;
using gguf::TensorType;

namespace {

const TensorType kTypes[] = {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
                             TensorType::Q5_1, TensorType::Q8_0, TensorType::F16};

// n tensors, each with the six types: bytes grow with the type, losses fall
// (random per tensor, so ratios differ); some tensors only have F16.
std::vector<PlanTensor> random_tensors(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0.2, 1.0);
    std::vector<PlanTensor> ts;
    for (size_t i = 0; i < n; i++) {
        PlanTensor t{"t" + std::to_string(i), {}};
        const uint64_t elems = 32 * (1 + rng() % 8);
        if (i % 5 == 4) {
            t.cands.push_back({TensorType::F16, elems * 2, 1e-6 * u(rng), true});
        } else {
            const double scale = u(rng);
            t.cands.push_back({kTypes[0], elems * 18 / 32, 0.10 * scale * u(rng), true});
            t.cands.push_back({kTypes[1], elems * 20 / 32, 0.07 * scale * u(rng), true});
            t.cands.push_back({kTypes[2], elems * 22 / 32, 0.03 * scale * u(rng), true});
            t.cands.push_back({kTypes[3], elems * 24 / 32, 0.02 * scale * u(rng), true});
            t.cands.push_back({kTypes[4], elems * 34 / 32, 0.001 * scale * u(rng), true});
            t.cands.push_back({kTypes[5], elems * 2, 1e-6 * scale * u(rng), true});
        }
        ts.push_back(t);
    }
    return ts;
}

uint64_t bytes_of(const std::vector<PlanTensor>& ts, const std::vector<size_t>& p) {
    uint64_t b = 0;
    for (size_t i = 0; i < ts.size(); i++) b += ts[i].cands[p[i]].bytes;
    return b;
}

double loss_of(const std::vector<PlanTensor>& ts, const std::vector<size_t>& p) {
    double l = 0;
    for (size_t i = 0; i < ts.size(); i++) l += ts[i].cands[p[i]].loss;
    return l;
}

// Every candidate plan fits, is distinct, has its bytes and predicted loss
// right, and they come best predicted first; the best is no worse than the
// greedy plan_mixed gives, which is among them.
void test_candidates_fit_budget(void**) {
    for (uint32_t seed = 1; seed <= 4; seed++) {
        const auto ts = random_tensors(12, seed);
        uint64_t lo = 0, hi = 0;
        for (const auto& t : ts) {
            lo += t.cands.front().bytes;
            hi += t.cands.back().bytes;
        }
        for (int step = 0; step <= 4; step++) {
            const uint64_t budget = lo + (hi - lo) * (uint64_t)step / 4;
            const std::vector<Plan> plans = compress::candidate_plans(ts, budget);
            assert_true(plans.size() >= 2 || step == 0 || step == 4);
            const std::vector<size_t> greedy = compress::plan_mixed(ts, budget);
            bool greedy_found = false;
            for (size_t i = 0; i < plans.size(); i++) {
                assert_int_equal(plans[i].pick.size(), ts.size());
                assert_true(plans[i].bytes <= budget);
                assert_int_equal(plans[i].bytes, bytes_of(ts, plans[i].pick));
                assert_true(std::fabs(plans[i].predicted - loss_of(ts, plans[i].pick)) < 1e-12);
                if (i > 0) assert_true(plans[i - 1].predicted <= plans[i].predicted);
                for (size_t j = 0; j < i; j++) assert_false(plans[j].pick == plans[i].pick);
                greedy_found = greedy_found || plans[i].pick == greedy;
            }
            assert_true(greedy_found);
            assert_true(plans.front().predicted <= loss_of(ts, greedy) + 1e-15);
            // The whole budget: every tensor at its largest (lowest loss) type.
            if (step == 4) {
                std::vector<size_t> largest;
                for (const auto& t : ts) largest.push_back(t.cands.size() - 1);
                assert_true(plans.front().pick == largest);
            }
        }
    }
}

// A model-sized plan (211 tensors, as SmolLM2-135M) stays quick to plan:
// every trade is a few greedy steps, duplicates are found by lookup.
void test_many_tensors(void**) {
    const auto ts = random_tensors(211, 11);
    uint64_t lo = 0, hi = 0;
    for (const auto& t : ts) {
        lo += t.cands.front().bytes;
        hi += t.cands.back().bytes;
    }
    const std::vector<Plan> plans = compress::candidate_plans(ts, lo + (hi - lo) / 3);
    assert_true(plans.size() > 211);
    for (const Plan& p : plans) assert_true(p.bytes <= lo + (hi - lo) / 3);
}

// Two tensors where greedy on loss per byte spends the budget on B's cheap
// upgrade and cannot afford A's; the trade (A up, B paying for it) is a
// candidate with a lower predicted loss.
std::vector<PlanTensor> knapsack_case() {
    return {{"A", {{TensorType::Q4_0, 10, 1.0, true}, {TensorType::Q8_0, 20, 0.0, true}}},
            {"B", {{TensorType::Q4_0, 10, 0.5, true}, {TensorType::Q8_0, 11, 0.35, true}}}};
}

void test_trade_beats_greedy(void**) {
    const auto ts = knapsack_case();
    const std::vector<size_t> greedy = compress::plan_mixed(ts, 30);
    assert_true(greedy == (std::vector<size_t>{0, 1}));
    const std::vector<Plan> plans = compress::candidate_plans(ts, 30);
    assert_true(plans.front().pick == (std::vector<size_t>{1, 0}));
    assert_false(plans.front().greedy);
    assert_true(plans.front().how.find("A to Q8_0") != std::string::npos);
    assert_true(plans.front().predicted < loss_of(ts, greedy));
}

// The chooser keeps the lowest MEASURED loss, whatever the prediction.
void test_measured_chooser(void**) {
    const auto ts = random_tensors(10, 7);
    uint64_t lo = 0, hi = 0;
    for (const auto& t : ts) {
        lo += t.cands.front().bytes;
        hi += t.cands.back().bytes;
    }
    const std::vector<Plan> plans = compress::candidate_plans(ts, (lo + hi) / 2);
    assert_true(plans.size() >= 4);
    // A measurement that likes the third plan best.
    const std::vector<size_t> liked = plans[2].pick;
    int calls = 0;
    auto measure = [&](const std::vector<size_t>& p) {
        calls++;
        return p == liked ? 0.001 : 1.0 + loss_of(ts, p);
    };
    compress::PlanChoice ch = compress::choose_plan_measured(plans, 4, measure);
    assert_true(ch.plan.pick == liked);
    assert_true(ch.measured == 0.001);
    assert_true(ch.tried.size() >= 4 && ch.tried.size() <= 5);  // + the best greedy, when ranked lower
    assert_int_equal(calls, (int)ch.tried.size());
    // Measuring only the best two (and the best greedy) cannot see it.
    ch = compress::choose_plan_measured(plans, 2, measure);
    if (!plans[2].greedy) assert_false(ch.plan.pick == liked);
    // The knapsack case: the measurement prefers the greedy plan, ranked
    // second by prediction; with one plan to measure it is still measured.
    const auto ks = knapsack_case();
    const std::vector<Plan> kp = compress::candidate_plans(ks, 30);
    ch = compress::choose_plan_measured(kp, 1, [&](const std::vector<size_t>& p) { return p == std::vector<size_t>{0, 1} ? 0.1 : 0.2; });
    assert_int_equal(ch.tried.size(), 2);
    assert_true(ch.plan.greedy);
    assert_true(ch.plan.pick == (std::vector<size_t>{0, 1}));
    // Equal measurements: the better predicted one.
    ch = compress::choose_plan_measured(kp, 8, [](const std::vector<size_t>&) { return 0.5; });
    assert_true(ch.plan.pick == kp.front().pick);
}

// A budget below every tensor at its smallest candidate: refused, naming
// that minimum.
void test_refuses_small_budget(void**) {
    const auto ts = knapsack_case();
    for (int which = 0; which < 3; which++) {
        try {
            if (which == 0) compress::plan_mixed(ts, 19);
            else if (which == 1) compress::candidate_plans(ts, 19);
            else compress::check_budget(ts, 19);
            assert_true(false);
        } catch (const Error& e) {
            assert_int_equal(e.status(), MW_ERR_INVALID_ARGUMENT);
            assert_non_null(strstr(e.what(), "20 bytes"));
        }
    }
    assert_int_equal(compress::candidate_plans(ts, 20).size(), 1);  // only the smallest fits
    compress::check_budget(ts, 20);
}

// Per tensor and type only the lower-loss encoder variant stays.
void test_keep_best_variants(void**) {
    std::vector<PlanTensor> ts = {{"x",
                                   {{TensorType::Q4_0, 18, 0.3, true},
                                    {TensorType::Q4_0, 18, 0.2, false},
                                    {TensorType::Q8_0, 34, 0.01, true},
                                    {TensorType::Q8_0, 34, 0.02, false},
                                    {TensorType::F16, 64, 0.0, true}}}};
    compress::keep_best_variants(ts);
    assert_int_equal(ts[0].cands.size(), 3);
    assert_false(ts[0].cands[0].weighted);
    assert_true(ts[0].cands[0].loss == 0.2);
    assert_true(ts[0].cands[1].weighted);
    assert_true(ts[0].cands[1].loss == 0.01);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_candidates_fit_budget),
        cmocka_unit_test(test_many_tensors),
        cmocka_unit_test(test_trade_beats_greedy),
        cmocka_unit_test(test_measured_chooser),
        cmocka_unit_test(test_refuses_small_budget),
        cmocka_unit_test(test_keep_best_variants),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
